"""The create page's image intake: upload on selection, then crop or pad to the aspect."""

import io

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image, ImageChops, ImageStat

from studio.models import Job, SourceImage
from tests.factories import photo, upload


def uploaded(client, data: bytes, role: str = "image") -> SourceImage:
    response = client.post(reverse("upload_still", args=[role]), {role: upload(data)})
    assert response.status_code == 200, response.content
    assert f'name="{role}_id"'.encode() in response.content
    return SourceImage.objects.latest("pk")


def create(client, **fields):
    data = {
        "mode": "image", "prompt": "push in", "provider": "local", "duration": "4",
        "resolution": "720p", "aspect": "16:9", "audio": "on", "framing": "crop",
    }  # fmt: skip
    data.update({k: str(v) for k, v in fields.items()})
    return client.post(reverse("create"), data)


def pixels(still: SourceImage) -> Image.Image:
    with default_storage.open(still.file.name, "rb") as f:
        return Image.open(io.BytesIO(f.read())).convert("RGB")


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def test_upload_answers_with_a_preview_to_frame(signed_in, creator):
    response = signed_in.post(
        reverse("upload_still", args=["image"]), {"image": upload(photo(1200, 900))}
    )
    still = creator.images.get()
    assert f'name="image_id" value="{still.pk}"'.encode() in response.content
    assert b'data-width="1200" data-height="900"' in response.content
    assert b'class="crop-frame"' in response.content
    assert b"<html" not in response.content


def test_upload_explains_what_is_wrong_and_stores_nothing(signed_in, creator):
    response = signed_in.post(
        reverse("upload_still", args=["image"]), {"image": upload(b"GIF89a nope")}
    )
    assert b'role="alert"' in response.content
    assert b"image_id" not in response.content
    assert not creator.images.exists()


def test_upload_of_a_last_frame_has_no_crop_frame(signed_in):
    response = signed_in.post(
        reverse("upload_still", args=["last_frame"]), {"last_frame": upload(photo(1200, 900))}
    )
    assert b'name="last_frame_id"' in response.content
    assert b"crop-frame" not in response.content


def test_upload_roles_are_only_image_and_last_frame(signed_in):
    response = signed_in.post(reverse("upload_still", args=["avatar"]), {"avatar": upload(photo())})
    assert response.status_code == 404


def test_crop_box_sent_with_the_form_is_cut_exactly(signed_in, creator):
    original = uploaded(signed_in, photo(1200, 900))
    box = {"crop_left": 37, "crop_top": 211, "crop_width": 1152, "crop_height": 648}
    response = create(signed_in, image_id=original.pk, **box)
    assert response.status_code == 302, response.context["form"].errors
    job = Job.objects.get()
    assert (job.framing, job.image.derived_from) == ("crop", original)
    assert (job.image.width, job.image.height) == (1152, 648)
    expected = pixels(original).crop((37, 211, 37 + 1152, 211 + 648))
    assert mean_difference(pixels(job.image), expected) < 1.5


def test_no_crop_box_means_the_centred_crop(signed_in):
    original = uploaded(signed_in, photo(1200, 900))
    create(signed_in, image_id=original.pk)
    job = Job.objects.get()
    assert (job.image.width, job.image.height) == (1200, 675)
    expected = pixels(original).crop((0, 112, 1200, 787))
    assert mean_difference(pixels(job.image), expected) < 1.5


def test_pad_keeps_the_whole_image_on_a_blurred_fill(signed_in):
    original = uploaded(signed_in, photo(1200, 900))
    create(signed_in, image_id=original.pk, framing="pad")
    job = Job.objects.get()
    assert job.framing == "pad"
    assert abs(job.image.width / job.image.height - 16 / 9) < 0.01
    assert job.image.height == 900
    left = (job.image.width - 1200) // 2
    middle = pixels(job.image).crop((left, 0, left + 1200, 900))
    assert mean_difference(middle, pixels(original)) < 2


def test_the_padded_preview_is_what_gets_stored(signed_in):
    original = uploaded(signed_in, photo(1200, 900))
    preview = signed_in.get(reverse("padded_preview", args=[original.pk]), {"aspect": "16:9"})
    create(signed_in, image_id=original.pk, framing="pad")
    shown = Image.open(io.BytesIO(preview.content)).convert("RGB")
    assert mean_difference(shown, pixels(Job.objects.get().image)) < 0.5


def test_an_image_that_fits_is_sent_as_it_is(signed_in):
    original = uploaded(signed_in, photo(1280, 720))
    create(signed_in, image_id=original.pk, crop_left=0, crop_top=0, crop_width=10, crop_height=10)
    job = Job.objects.get()
    assert (job.image, job.framing) == (original, "")


@pytest.mark.parametrize(
    "box",
    [
        {"crop_left": 100, "crop_top": 0, "crop_width": 1200, "crop_height": 675},  # off the right
        {"crop_left": 0, "crop_top": 0, "crop_width": 900, "crop_height": 900},  # not 16:9
    ],
)
def test_a_bad_crop_box_is_named_and_nothing_is_queued(signed_in, box):
    original = uploaded(signed_in, photo(1200, 900))
    response = create(signed_in, image_id=original.pk, **box)
    assert response.status_code == 200
    assert "crop frame" in " ".join(response.context["form"].errors["framing"]).lower()
    assert not Job.objects.exists()


def test_another_creators_image_cannot_be_used(signed_in, creator, other_creator):
    theirs = SourceImage.objects.create(
        owner=other_creator, file="images/x.jpg", upload_sha256="0" * 64, width=1280,
        height=720, content_type="image/jpeg",
    )  # fmt: skip
    response = create(signed_in, image_id=theirs.pk)
    assert "no longer available" in response.context["form"].errors["image"][0]
    assert not Job.objects.exists()
    assert signed_in.get(reverse("padded_preview", args=[theirs.pk])).status_code == 404


def test_a_form_error_keeps_the_uploaded_image(signed_in):
    original = uploaded(signed_in, photo(1200, 900))
    response = create(signed_in, image_id=original.pk, prompt="")
    assert f'name="image_id" value="{original.pk}"'.encode() in response.content
    assert reverse("source_image", args=[original.pk]).encode() in response.content


def test_last_frame_must_match_the_first_frames_size(signed_in):
    first = uploaded(signed_in, photo(1280, 720))
    last = uploaded(signed_in, photo(1024, 768), role="last_frame")
    response = create(signed_in, mode="first_last", image_id=first.pk, last_frame_id=last.pk)
    assert "1280×720" in " ".join(response.context["form"].errors["last_frame"])
    assert not Job.objects.exists()


def test_first_and_last_frames_get_the_same_crop(signed_in):
    first = uploaded(signed_in, photo(1200, 900))
    last = uploaded(signed_in, photo(1200, 900, mode="L"), role="last_frame")
    box = {"crop_left": 10, "crop_top": 20, "crop_width": 1152, "crop_height": 648}
    create(signed_in, mode="first_last", image_id=first.pk, last_frame_id=last.pk, **box)
    job = Job.objects.get()
    assert (job.last_frame.width, job.last_frame.height) == (1152, 648)
    expected = pixels(last).crop((10, 20, 1162, 668))
    assert mean_difference(pixels(job.last_frame), expected) < 1.5
