"""Uploaded stills no job uses are purged STUDIO_STILL_RETENTION_DAYS (30) after they were
last uploaded, by a task django-q2's scheduler runs every day; their files go after the
rows. Stills a job uses stay, whatever their age. Tested by moving the clock forward."""

import io
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from django_q.models import Schedule

from studio import images, tasks
from studio.models import SourceImage
from tests.factories import create_job, photo


def stored(creator, width=1280, height=720):
    data = photo(width, height)
    return images.store(creator, images.normalise(io.BytesIO(data), size=len(data)))


@pytest.fixture
def later(monkeypatch):
    """Travel forward in time: `later(days)` makes timezone.now() that many days ahead."""
    real_now = timezone.now

    def travel(days: float) -> None:
        monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(days=days))

    return travel


def test_a_still_no_job_uses_is_purged_after_the_retention_with_its_file(
    creator, later, django_capture_on_commit_callbacks
):
    still = stored(creator)
    name = still.file.name
    later(29.9)
    assert images.purge_unused_stills() == 0
    assert SourceImage.objects.filter(pk=still.pk).exists()
    later(30.1)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert images.purge_unused_stills() == 1
        # The file is still there until the rows' deletion has committed.
        assert default_storage.exists(name)
    assert callbacks
    assert not SourceImage.objects.filter(pk=still.pk).exists()
    assert not default_storage.exists(name)


def test_stills_jobs_use_are_kept_whatever_their_age(creator, later):
    first, last = stored(creator), stored(creator, 1280, 721)
    create_job(
        creator=creator, provider="local", mode="first_last", prompt="dusk", duration=4,
        resolution="720p", aspect="16:9", audio=False, image=first, last_frame=last,
    )  # fmt: skip
    later(400)
    assert images.purge_unused_stills() == 0
    assert SourceImage.objects.count() == 2


def test_the_original_of_a_framed_still_a_job_uses_can_go(creator, later):
    original = stored(creator, 1600, 1200)
    cropped = images.framed(original, ratio=(16, 9), framing="crop")
    create_job(
        creator=creator, provider="local", mode="image", prompt="pan", duration=4,
        resolution="720p", aspect="16:9", audio=False, image=cropped,
    )  # fmt: skip
    later(31)
    assert images.purge_unused_stills() == 1
    cropped.refresh_from_db()
    assert cropped.derived_from is None


def test_uploading_the_same_still_again_starts_its_retention_afresh(creator, later):
    still = stored(creator)
    later(25)
    assert stored(creator) == still
    later(40)
    assert images.purge_unused_stills() == 0
    later(56)
    assert images.purge_unused_stills() == 1


def test_the_retention_is_a_setting(creator, later, settings):
    settings.STUDIO_STILL_RETENTION_DAYS = 2
    stored(creator)
    later(1)
    assert images.purge_unused_stills() == 0
    later(3)
    assert images.purge_unused_stills() == 1


def test_the_scheduler_runs_the_purge_every_day(creator, later):
    schedule = Schedule.objects.get(name="purge-stills")
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == (
        "studio.tasks.purge_stills", Schedule.DAILY, -1,
    )  # fmt: skip
    stored(creator)
    later(31)
    tasks.purge_stills()
    assert not SourceImage.objects.exists()
