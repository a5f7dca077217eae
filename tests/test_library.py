"""The library through the test client: the grid, its filters and pages at a fixed number of
queries, the tray and its retries (through the same reservation as a new job), favourites,
recipes for the create page, downloads named from the prompt, and the ZIP export."""

import io
import json
import zipfile
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from studio import library, storage, video
from studio.models import Clip, Job, Quota, download_name
from tests.factories import text_job
from tests.test_views import finished_job


def copies_of(job: Job, count: int, **fields) -> list[Job]:
    """`count` more finished jobs sharing `job`'s clip files (rows only: fast)."""
    made = []
    for n in range(count):
        copy = Job.objects.create(
            creator=job.creator, prompt=f"copy {n}", duration=4, resolution="720p",
            aspect="16:9", provider="local", status=Job.Status.SUCCEEDED, **fields,
        )  # fmt: skip
        clip = job.clip
        Clip.objects.create(
            job=copy, file=clip.file.name, poster=clip.poster.name, width=clip.width,
            height=clip.height, duration=clip.duration, fps=clip.fps,
            has_audio=clip.has_audio, size_bytes=clip.size_bytes,
        )  # fmt: skip
        made.append(copy)
    return made


def failed(creator, prompt="a refused clip", error="The provider refused it.", **fields):
    job = text_job(creator, prompt)
    job.move([job.status], Job.Status.FAILED, error=error, **fields)
    return job


def tiles(response) -> list[Job]:
    return [Job.objects.get(pk=tile.job_id) for tile in response.context["page"].tiles]


def test_the_library_lists_clips_newest_first_and_respects_their_aspect(signed_in, creator):
    older = finished_job(creator)
    newer = finished_job(creator)
    Clip.objects.filter(pk=older.clip.pk).update(width=720, height=1280)
    response = signed_in.get(reverse("library"))
    assert tiles(response) == [newer, older]
    html = response.content.decode()
    assert html.count('class="tile portrait"') == 1
    assert html.count('class="tile landscape"') == 1
    assert 'width="720" height="1280"' in html


def test_the_library_pages_by_keyset_at_the_same_query_count(signed_in, creator):
    first = finished_job(creator)
    copies_of(first, library.PAGE_SIZE + 5)
    failed(creator)  # the tray costs its queries too
    with CaptureQueriesContext(connection) as few:
        signed_in.get(reverse("library"))
    copies_of(first, 200)
    with CaptureQueriesContext(connection) as many:
        page_one = signed_in.get(reverse("library"))
    assert len(many.captured_queries) == len(few.captured_queries) <= 6
    assert len(tiles(page_one)) == library.PAGE_SIZE
    older = page_one.context["older_url"]
    assert "older_than=" in older
    page_two = signed_in.get(reverse("library") + older)
    assert tiles(page_two)[0].pk < tiles(page_one)[-1].pk
    assert not set(tiles(page_one)) & set(tiles(page_two))
    # The next tiles for infinite scroll: the tiles alone, with the next loader.
    more = signed_in.get(reverse("library") + older, headers={"HX-Request": "true"})
    assert b"<html" not in more.content and b'data-testid="tile"' in more.content


def test_failed_and_cancelled_jobs_are_in_the_tray_not_the_grid(signed_in, creator):
    made = finished_job(creator)
    refused = failed(
        creator, error="Refused: the audio was flagged. You were not charged.", audio=True
    )
    response = signed_in.get(reverse("library"))
    assert tiles(response) == [made]
    tray = response.context["tray"]
    assert [row.job for row in tray.rows] == [refused]
    assert tray.count_words == "1 clip didn't make it"
    assert "the audio was flagged" in response.content.decode()
    hows = [retry.how for retry in tray.rows[0].retries]
    assert hows[:3] == ["same", "new_seed", "no_audio"]
    # Shown in the grid when asked for.
    assert tiles(signed_in.get(reverse("library"), {"show": "failed"})) == [refused]


def test_no_audio_retry_is_offered_only_when_the_refusal_was_about_sound(creator):
    job = failed(creator, error="The provider refused the prompt.")
    assert "no_audio" not in [r.how for r in library.retries(job, {})]


def test_a_retry_goes_through_the_form_and_its_reservation(signed_in, creator):
    job = failed(creator, "a lighthouse at night", error="Refused: audio.", audio=True)
    response = signed_in.post(reverse("job_retry", args=[job.pk]), {"how": "no_audio"})
    new = creator.jobs.latest("pk")
    assert response["Location"] == reverse("job", args=[new.pk])
    assert (new.prompt, new.audio, new.charge) == ("a lighthouse at night", False, "reserved")
    job.refresh_from_db()
    assert job.dismissed_at is not None  # the retried job leaves the tray


def test_a_retry_past_the_creators_budget_is_refused_with_the_reason(signed_in, creator):
    job = failed(creator)
    Quota.objects.filter(creator=creator).update(monthly_seconds=5)
    before = creator.jobs.count()
    response = signed_in.post(reverse("job_retry", args=[job.pk]), {"how": "same"}, follow=True)
    assert creator.jobs.count() == before
    assert "This retry could not be made" in response.content.decode()


def test_retry_at_another_provider_is_priced_there(signed_in, creator, settings):
    settings.FAL_KEY = "test-key"
    job = failed(creator, error="fal is down.")
    assert "provider:fal" in [r.how for r in library.tray(creator).rows[0].retries]
    signed_in.post(reverse("job_retry", args=[job.pk]), {"how": "provider:fal"})
    new = creator.jobs.latest("pk")
    assert new.provider == "fal" and new.estimated_cost > Decimal("0")


def test_only_failed_or_cancelled_jobs_can_be_retried(signed_in, creator):
    job = text_job(creator)
    assert signed_in.post(reverse("job_retry", args=[job.pk]), {"how": "same"}).status_code == 404


def test_dismissing_empties_the_tray(signed_in, creator):
    one, two = failed(creator), failed(creator)
    signed_in.post(reverse("tray_dismiss"), {"job": one.pk})
    assert [r.job for r in library.tray(creator).rows] == [two]
    signed_in.post(reverse("tray_dismiss"))
    assert library.tray(creator).rows == []


def test_favourites_and_filters(signed_in, creator):
    first = finished_job(creator)
    silent, fal, portrait = copies_of(first, 3)
    Clip.objects.filter(job=silent).update(has_audio=False)
    Job.objects.filter(pk=fal.pk).update(provider="fal", prompt="a lighthouse push in")
    Clip.objects.filter(job=portrait).update(width=720, height=1280)
    signed_in.post(reverse("clip_favourite", args=[portrait.clip.pk]), {"favourite": "on"})
    url = reverse("library")
    assert tiles(signed_in.get(url, {"favourites": "on"})) == [portrait]
    assert tiles(signed_in.get(url, {"aspect": "9:16"})) == [portrait]
    assert tiles(signed_in.get(url, {"audio": "without"})) == [silent]
    assert tiles(signed_in.get(url, {"provider": "fal"})) == [fal]
    assert tiles(signed_in.get(url, {"q": "LIGHTHOUSE push"})) == [fal]
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert tiles(signed_in.get(url, {"since": tomorrow})) == []
    assert len(tiles(signed_in.get(url, {"until": tomorrow}))) == 4
    # A value that is not a choice is ignored, not an error.
    assert len(tiles(signed_in.get(url, {"provider": "nobody", "since": "soon"}))) == 4
    signed_in.post(reverse("clip_favourite", args=[portrait.clip.pk]), {"favourite": "off"})
    assert tiles(signed_in.get(url, {"favourites": "on"})) == []


def test_download_names_come_from_the_prompt():
    assert download_name("Lighthouse: push in!", 42) == "lighthouse-push-in-42.mp4"
    assert download_name("Café über ☃", 7) == "cafe-uber-7.mp4"
    assert download_name("☃☃", 7) == "studio-clip-7.mp4"
    long = download_name("word " * 60, 123456)
    assert len(long) <= 80 and long.endswith("-123456.mp4") and "--" not in long


def test_finish_keeps_the_clips_last_frame(creator, tmp_path):
    clip = finished_job(creator).clip
    assert clip.last_frame.name.endswith("-last.jpg")
    with default_storage.open(clip.last_frame.name, "rb") as f:
        assert f.read(3) == b"\xff\xd8\xff"
    path = storage.local_path(clip.file.name, tmp_path / "clip.mp4")  # from S3 too
    assert video.last_frame(path) != video.probe_with_poster(path)[1]


def test_use_these_settings_fills_the_create_page(signed_in, creator):
    job = finished_job(creator)
    Job.objects.filter(pk=job.pk).update(seed=1234, negative_prompt="blur")
    response = signed_in.get(reverse("create"), {"recipe": job.pk})
    form = response.context["form"]
    assert form["prompt"].value() == "pan right"
    assert form["seed"].value() == "1234" and form["negative_prompt"].value() == "blur"
    assert response.context["stills"]["image"] == job.image
    assert b'<details class="variations">' in response.content
    varied = signed_in.get(reverse("create"), {"recipe": job.pk, "variations": ""})
    assert b'<details class="variations" open>' in varied.content


def test_continue_from_here_starts_from_the_last_frame(signed_in, creator):
    job = finished_job(creator)
    response = signed_in.get(reverse("create"), {"recipe": job.pk, "continue": ""})
    still = response.context["stills"]["image"]
    assert still != job.image and (still.width, still.height) == (1280, 720)
    assert response.context["form"]["mode"].value() == "image"


def test_another_creators_recipe_is_not_found(client, creator, other_creator):
    job = finished_job(creator)
    client.force_login(other_creator)
    assert client.get(reverse("create"), {"recipe": job.pk}).status_code == 404
    assert client.post(reverse("library_export"), {"clip": job.clip.pk}).status_code == 404
    assert client.post(reverse("clip_favourite", args=[job.clip.pk])).status_code == 404


def unzip(content: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(content))


def test_export_streams_a_zip_with_the_clips_and_their_recipe(signed_in, creator):
    one, two = finished_job(creator), finished_job(creator)
    response = signed_in.post(reverse("library_export"), {"clip": [one.clip.pk, two.clip.pk]})
    assert response.streaming and response["Content-Type"] == "application/zip"
    archive = unzip(b"".join(response.streaming_content))
    names = set(archive.namelist())
    assert {"recipe.csv", "recipe.json", one.clip.download_name, two.clip.download_name} <= names
    rows = json.loads(archive.read("recipe.json"))["clips"]
    assert [row["job"] for row in rows] == [two.pk, one.pk]
    row = rows[0]
    assert row["prompt"] == "pan right" and row["provider"] == "local" and row["has_audio"]
    assert archive.read(row["file"]) == default_storage.open(two.clip.file.name).read()
    assert row["image_file"] in names
    assert archive.read("recipe.csv").decode().splitlines()[0].startswith("clip,job,file,")


def test_export_needs_a_selection(signed_in, creator):
    response = signed_in.post(reverse("library_export"), {}, follow=True)
    assert "Choose at least one clip." in response.content.decode()


def test_the_export_command_writes_the_same_zip(creator, tmp_path):
    job = finished_job(creator)
    other = finished_job(creator)
    Clip.objects.filter(pk=job.clip.pk).update(favourite=True)
    out = tmp_path / "clips.zip"
    call_command("export", str(out), "--user", creator.username, "--favourites")
    archive = zipfile.ZipFile(out)
    assert job.clip.download_name in archive.namelist()
    assert other.clip.download_name not in archive.namelist()
    since = (timezone.localdate() + timedelta(days=1)).isoformat()
    with pytest.raises(Exception, match="No clips match"):
        call_command("export", str(out), "--user", creator.username, "--since", since)


def test_tiles_escape_the_prompt(signed_in, creator):
    job = finished_job(creator)
    Job.objects.filter(pk=job.pk).update(prompt='"><script>alert(1)</script> & more')
    html = signed_in.get(reverse("library")).content.decode()
    assert "<script>alert(1)" not in html
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html


def test_a_deleted_clip_leaves_the_grid(signed_in, creator):
    kept, gone = finished_job(creator), finished_job(creator)
    signed_in.post(reverse("clip_delete", args=[gone.clip.pk]))
    assert tiles(signed_in.get(reverse("library"))) == [kept]
    assert tiles(signed_in.get(reverse("library"), {"show": "ready"})) == [kept]
