import io
import re

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from studio import images, jobs
from studio.models import Clip, Job
from studio.providers.local import worker
from tests.factories import create_job, photo, price_of, text_job, upload


def form_data(**overrides):
    data = {
        "mode": "image", "prompt": "Gentle push in on the lighthouse", "negative_prompt": "",
        "provider": "local", "duration": "4", "resolution": "720p", "aspect": "16:9",
        "audio": "on", "seed": "",
    }  # fmt: skip
    data.update(overrides)
    return data


def post_create(client, image=None, **overrides):
    data = form_data(**overrides)
    if image is not None:
        data["image"] = image
    return client.post(reverse("create"), data)


def finished_job(creator) -> Job:
    data = photo(1280, 720)
    image = images.store(creator, images.normalise(io.BytesIO(data), size=len(data)))
    job = create_job(
        creator=creator, provider="local", mode="image", prompt="pan right", duration=4,
        resolution="720p", aspect="16:9", audio=True, image=image,
    )  # fmt: skip
    jobs.submit(job.pk)
    job.refresh_from_db()
    worker.render(job.provider_job_id)
    jobs.refresh_status(job)
    jobs.finish(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    return job


@pytest.mark.parametrize("name", ["create", "library"])
def test_pages_need_sign_in(client, db, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_create_page_shows_the_free_estimate(signed_in):
    response = signed_in.get(reverse("create"))
    assert response.status_code == 200
    assert b'data-testid="estimate">$0.00<' in response.content


def test_options_panel_prices_the_current_choices(signed_in):
    response = signed_in.get(
        reverse("options"), {"provider": "local", "duration": "6", "resolution": "1080p"}
    )
    assert b'data-testid="estimate">$0.00<' in response.content
    assert b"6 s at 1080p, no audio" in response.content
    assert b"<html" not in response.content


def test_options_panel_says_so_when_options_are_invalid(signed_in):
    response = signed_in.get(
        reverse("options"), {"provider": "local", "duration": "5", "resolution": "720p"}
    )
    assert b"Pick the options to see the price" in response.content


def test_submit_creates_a_job_with_the_estimate_shown(signed_in, creator):
    response = post_create(signed_in, upload(photo()), duration="8", resolution="1080p")
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("job", args=[job.pk])
    assert (job.creator, job.duration, job.resolution, job.aspect, job.audio) == (
        creator,
        8,
        "1080p",
        "16:9",
        True,
    )
    shown = signed_in.get(
        reverse("options"),
        {"provider": "local", "duration": "8", "resolution": "1080p", "audio": "on"},
    )
    assert f"${job.estimated_cost}".encode() in shown.content
    assert job.estimated_cost == price_of(
        provider="local", mode="image", resolution="1080p", audio=True, seconds=8
    )
    assert job.image.width == 1280


@pytest.mark.parametrize(
    ("image", "overrides", "field", "message"),
    [
        (
            lambda: upload(b"just some text", name="cat.jpg"),
            {},
            "image",
            "not an image Studio can read",
        ),
        (lambda: upload(photo(600, 400)), {}, "image", "short side must be at least 512 px"),
        (
            lambda: upload(photo(800, 600, "GIF"), name="x.gif"),
            {},
            "image",
            "GIF images are not accepted",
        ),
        (lambda: None, {}, "image", "Choose an image to animate."),
        (lambda: upload(photo()), {"prompt": "   "}, "prompt", "Write a prompt"),
        (
            lambda: upload(photo()),
            {"duration": "5"},
            "duration",
            "Duration must be 4, 6 or 8 seconds; 5 is not allowed.",
        ),
        (
            lambda: upload(photo()),
            {"resolution": "4k"},
            "resolution",
            "Resolution must be 720p or 1080p; 4k is not allowed.",
        ),
        (
            lambda: upload(photo()),
            {"aspect": "4:3"},
            "aspect",
            "Aspect ratio must be 16:9, 9:16 or auto",
        ),
        (
            lambda: upload(photo()),
            {"provider": "nope"},
            "provider",
            "Provider must be one of those listed",
        ),
        (lambda: upload(photo()), {"seed": "-1"}, "seed", "greater than or equal to 0"),
        (lambda: upload(photo()), {"mode": "first_last"}, "last_frame", "needs a last frame"),
    ],
)
def test_bad_input_is_named_and_nothing_is_queued(signed_in, image, overrides, field, message):
    response = post_create(signed_in, image(), **overrides)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert message.encode() in response.content.replace(b"&#x27;", b"'")
    assert not Job.objects.exists()


def test_an_image_over_the_size_limit_is_refused(signed_in, settings):
    settings.STUDIO_MAX_UPLOAD_BYTES = 100_000
    response = post_create(signed_in, upload(photo(1600, 900, "PNG") + b"\0" * 200_000))
    # Dropped while it streamed in, at the limit: how much more there was is never read.
    assert response.context["form"].errors["image"] == ["The image is more than 0.1 MB, the limit."]
    assert not Job.objects.exists()


def test_a_soft_image_is_accepted_with_a_warning(signed_in):
    response = post_create(
        signed_in,
        upload(photo(1000, 600)),
    )
    page = signed_in.get(response["Location"])
    assert b"will look soft" in page.content


def test_status_partial_polls_until_terminal_then_answers_286(signed_in, creator):
    job = text_job(creator, "a quiet harbour at dawn")
    url = reverse("job", args=[job.pk])
    running = signed_in.get(url, headers={"HX-Request": "true"})
    assert running.status_code == 200
    assert b'hx-trigger="every 1s"' in running.content
    assert b"<html" not in running.content
    job.move([Job.Status.QUEUED], Job.Status.FAILED, error="The provider said no.")
    done = signed_in.get(url, headers={"HX-Request": "true"})
    assert done.status_code == 286
    assert b"The provider said no." in done.content
    assert b"hx-trigger" not in done.content
    assert "HX-Request" in done["Vary"]


def test_job_page_without_htmx_is_a_whole_page(signed_in, creator):
    job = text_job(creator, "a harbour")
    response = signed_in.get(reverse("job", args=[job.pk]))
    assert response.status_code == 200
    assert b"<html" in response.content
    assert b"a harbour" in response.content


def test_clip_video_answers_range_requests(signed_in, creator):
    clip = finished_job(creator).clip
    url = reverse("clip_video", args=[clip.pk])
    whole = signed_in.get(url)
    body = b"".join(whole.streaming_content)
    assert (whole.status_code, whole["Accept-Ranges"], len(body)) == (200, "bytes", clip.size_bytes)
    part = signed_in.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{clip.size_bytes}"
    assert b"".join(part.streaming_content) == body[100:200]
    tail = signed_in.get(url, headers={"Range": "bytes=-10"})
    assert b"".join(tail.streaming_content) == body[-10:]
    beyond = signed_in.get(url, headers={"Range": f"bytes={clip.size_bytes}-"})
    assert (beyond.status_code, beyond["Content-Range"]) == (416, f"bytes */{clip.size_bytes}")


def test_download_link_sends_the_mp4_as_an_attachment(signed_in, creator):
    clip = finished_job(creator).clip
    response = signed_in.get(reverse("clip_video", args=[clip.pk]) + "?download")
    assert response["Content-Disposition"] == f'attachment; filename="pan-right-{clip.job_id}.mp4"'
    assert response["Content-Type"] == "video/mp4"


def test_clip_page_has_a_player_and_the_figures_read_from_the_file(signed_in, creator):
    clip = finished_job(creator).clip
    response = signed_in.get(reverse("clip", args=[clip.pk]))
    assert b"<video" in response.content
    assert b"1280\xc3\x97720" in response.content
    assert b"4.00 s at 24 fps" in response.content


def test_another_creators_ids_are_not_found(client, creator, other_creator):
    job = finished_job(creator)
    client.force_login(other_creator)
    for url in [
        reverse("job", args=[job.pk]),
        reverse("clip", args=[job.clip.pk]),
        reverse("clip_video", args=[job.clip.pk]),
        reverse("clip_poster", args=[job.clip.pk]),
        reverse("source_image", args=[job.image.pk]),
    ]:
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("job_cancel", args=[job.pk])).status_code == 404
    assert other_creator.jobs.count() == 0
    assert f'href="/clips/{job.clip.pk}/"' not in client.get(reverse("library")).content.decode()


def test_cancel_button_cancels_a_queued_job(signed_in, creator):
    job = text_job(creator, "rain")
    response = signed_in.post(reverse("job_cancel", args=[job.pk]), follow=True)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert b"The job was cancelled." in response.content
    again = signed_in.post(reverse("job_cancel", args=[job.pk]), follow=True)
    assert b"it cannot be cancelled now" in again.content


def test_health_check(client, db):
    assert client.get(reverse("health")).content == b"ok"


def test_favicon_is_served_for_pages_without_our_template(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("favicon.svg")


def test_a_creator_can_delete_a_clip_and_its_files(
    signed_in, creator, django_capture_on_commit_callbacks
):
    job = finished_job(creator)
    clip = job.clip
    names = [clip.file.name, clip.poster.name]
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(reverse("clip_delete", args=[clip.pk]), follow=True)
    assert b"The clip was deleted." in response.content
    assert not Clip.objects.exists()
    assert not any(default_storage.exists(name) for name in names)
    assert signed_in.get(reverse("clip", args=[clip.pk])).status_code == 404
    page = signed_in.get(reverse("job", args=[job.pk]))
    assert b"You deleted this clip." in page.content


def test_another_creators_clip_cannot_be_deleted(client, creator, other_creator):
    clip = finished_job(creator).clip
    client.force_login(other_creator)
    assert client.post(reverse("clip_delete", args=[clip.pk])).status_code == 404
    assert client.get(reverse("clip_delete", args=[clip.pk])).status_code in (404, 405)
    assert Clip.objects.filter(pk=clip.pk).exists()


def test_the_job_page_shows_where_the_job_is_on_its_timeline(signed_in, creator, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from studio import pacing

    monkeypatch.setattr(pacing, "typical_seconds", lambda provider: 60.0)
    job = text_job(creator, "a lighthouse, mid-render")
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING,
        submitted_at=timezone.now() - timedelta(seconds=42),
        provider_job_id="r1",
    )
    page = signed_in.get(reverse("job", args=[job.pk]), headers={"HX-Request": "true"})
    html = page.content.decode()
    states = re.findall(r'<li class="([^"]+)"[^>]*data-stage="(\w+)"', html)
    assert states == [
        ("done", "queue"), ("done", "provider"), ("now", "generating"),
        ("todo", "finishing"), ("todo", "done"),
    ]  # fmt: skip
    assert re.search(r'data-testid="headline">0:4[23] so far, about 0:1[78] left<', html)
    # Without a reported percentage, the bar is the estimate: elapsed of about the whole.
    assert re.search(r'<progress max="60" value="4[23]"', html)
    Job.objects.filter(pk=job.pk).update(progress=70)
    html = signed_in.get(reverse("job", args=[job.pk]), headers={"HX-Request": "true"})
    assert '<progress max="100" value="70"' in html.content.decode()
    assert "left · 70%<" in html.content.decode()
