import io

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from studio import images, jobs
from studio.models import Clip, Job, LocalRender, SourceImage
from studio.web.media import parse_range
from tests.factories import photo, text_job
from tests.test_views import finished_job


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-2000", (990, 999)),
        ("bytes=0-0", (0, 0)),
        ("", None),
        ("bytes=0-1,5-6", None),  # several ranges: send the whole file
        ("items=0-5", None),
        ("bytes=-", None),
    ],
)
def test_parse_range(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5-4", "bytes=-0"])
def test_unsatisfiable_ranges_raise(header):
    with pytest.raises(ValueError):
        parse_range(header, 1000)


@given(
    first=st.one_of(st.none(), st.integers(0, 5000)),
    last=st.one_of(st.none(), st.integers(0, 5000)),
    size=st.integers(1, 4000),
)
def test_any_range_is_within_the_file_or_refused(first, last, size):
    header = f"bytes={'' if first is None else first}-{'' if last is None else last}"
    try:
        result = parse_range(header, size)
    except ValueError:
        return
    if result is not None:
        start, end = result
        assert 0 <= start <= end < size


# What media views serve: only the kinds Studio writes, decided by the stored bytes.

PLANTED = b"<!doctype html><html><body><script>fetch('/admin/')</script></body></html>"


@pytest.fixture
def staff_still(creator):
    """A still row whose file is a web page (what the admin's add form allowed a staff
    member to plant), labelled as a page."""
    name = default_storage.save("images/planted.html", ContentFile(PLANTED))
    return SourceImage.objects.create(
        owner=creator, file=name, upload_sha256="0" * 64, width=1000, height=1000,
        content_type="text/html", size_bytes=len(PLANTED),
    )  # fmt: skip


def test_a_planted_page_is_never_served_from_a_still(signed_in, staff_still):
    response = signed_in.get(reverse("source_image", args=[staff_still.pk]))
    assert response.status_code == 404
    assert PLANTED not in response.content


def test_a_planted_page_is_never_served_as_a_clip_or_its_poster(signed_in, creator):
    clip = finished_job(creator).clip
    for name in (clip.file.name, clip.poster.name):
        with default_storage.open(name, "wb") as f:
            f.write(PLANTED)
    for url in (reverse("clip_video", args=[clip.pk]), reverse("clip_poster", args=[clip.pk])):
        response = signed_in.get(url)
        assert response.status_code == 404, url
        assert PLANTED not in b"".join(getattr(response, "streaming_content", [response.content]))


def test_media_are_served_as_what_they_are_sandboxed_and_never_sniffed(signed_in, creator):
    job = finished_job(creator)
    for url, content_type in (
        (reverse("clip_video", args=[job.clip.pk]), "video/mp4"),
        (reverse("clip_poster", args=[job.clip.pk]), "image/jpeg"),
        (reverse("source_image", args=[job.image.pk]), "image/jpeg"),
        (reverse("padded_preview", args=[job.image.pk]) + "?aspect=9:16", "image/jpeg"),
    ):
        response = signed_in.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"] == content_type
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == "sandbox"


@pytest.fixture
def boss(client, db):
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw-boss"))
    return client


@pytest.mark.parametrize("model", ["sourceimage", "clip", "localrender"])
def test_the_admin_cannot_add_or_edit_stills_clips_or_renders(boss, creator, model):
    job = finished_job(creator)
    jobs.submit(text_job(creator).pk)
    row = {"sourceimage": job.image, "clip": job.clip, "localrender": LocalRender.objects.get()}
    assert boss.get(reverse(f"admin:studio_{model}_add")).status_code == 403
    change = reverse(f"admin:studio_{model}_change", args=[row[model].pk])
    page = boss.get(change)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert (
        boss.post(change, {"file": "elsewhere.html", "content_type": "text/html"}).status_code
        == 403
    )
    refreshed = type(row[model]).objects.get(pk=row[model].pk)
    assert getattr(refreshed, "file", None) == getattr(row[model], "file", None)


def test_the_admin_deletes_a_clip_with_its_files(boss, creator, django_capture_on_commit_callbacks):
    clip = finished_job(creator).clip
    names = [clip.file.name, clip.poster.name]
    with django_capture_on_commit_callbacks(execute=True):
        boss.post(reverse("admin:studio_clip_delete", args=[clip.pk]), {"post": "yes"})
    assert not Clip.objects.exists()
    assert not any(default_storage.exists(name) for name in names)
    assert Job.objects.filter(pk=clip.job_id).exists()


def test_the_admin_deletes_an_unused_still_with_its_file_but_not_one_a_job_uses(
    boss, creator, django_capture_on_commit_callbacks
):
    job = finished_job(creator)
    data = photo(900, 1600)
    unused = images.store(creator, images.normalise(io.BytesIO(data), size=len(data)))
    with django_capture_on_commit_callbacks(execute=True):
        boss.post(reverse("admin:studio_sourceimage_delete", args=[unused.pk]), {"post": "yes"})
        refused = boss.post(
            reverse("admin:studio_sourceimage_delete", args=[job.image.pk]), {"post": "yes"}
        )
    assert not SourceImage.objects.filter(pk=unused.pk).exists()
    assert not default_storage.exists(unused.file.name)
    assert b"Cannot delete source image" in refused.content
    assert default_storage.exists(job.image.file.name)


def test_the_admin_cannot_delete_a_render(boss, creator):
    jobs.submit(text_job(creator).pk)
    render = LocalRender.objects.get()
    boss.post(reverse("admin:studio_localrender_delete", args=[render.pk]), {"post": "yes"})
    assert LocalRender.objects.filter(pk=render.pk).exists()
