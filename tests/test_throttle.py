"""Backpressure: submits paced by one token bucket in the database (studio/throttle.py)."""

import time

import pytest
from django.utils import timezone

from studio import following, jobs, leases, throttle
from studio.models import Job
from tests.emulator import new_job, use_emulator


@pytest.fixture
def queued(monkeypatch):
    """What the steps queue, instead of a cluster running it."""
    made: list[tuple] = []
    enqueue = lambda func, *args: made.append((func, *args))  # noqa: E731
    monkeypatch.setattr(jobs, "async_task", enqueue)
    for module in (following, throttle, leases):
        monkeypatch.setattr(module, "async_task", enqueue)
    return made


def submits(queued: list[tuple]) -> list[int]:
    return [args[0] for func, *args in queued if func == "studio.tasks.submit_job"]


@pytest.mark.django_db
def test_unpaced_every_token_is_granted(settings):
    settings.STUDIO_SUBMITS_PER_SECOND = 0
    assert throttle.take(500) == 500


@pytest.mark.django_db
def test_a_second_s_worth_goes_at_once_then_the_rate(settings):
    settings.STUDIO_SUBMITS_PER_SECOND = 10
    assert throttle.take(25) == 10
    assert throttle.take(5) == 0
    time.sleep(0.35)
    assert throttle.take(25) in (3, 4)
    assert throttle.take(1) == 0


@pytest.mark.django_db
def test_a_burst_waits_queued_and_the_follower_sends_it_at_the_pace(
    settings, creator, queued, django_capture_on_commit_callbacks
):
    use_emulator(settings)
    settings.STUDIO_SUBMITS_PER_SECOND = 2
    settings.STUDIO_DEFAULT_CONCURRENT_JOBS = 6
    with django_capture_on_commit_callbacks(execute=True):
        made = [new_job(creator, "fal", prompt=f"Slow push in, paced {n}") for n in range(6)]
    # Tokens for the first two only (a second's worth).
    first = [job.pk for job in made[:2]]
    assert submits(queued) == first
    waiting = Job.objects.exclude(pk__in=first)
    assert set(waiting.values_list("status", flat=True)) == {Job.Status.QUEUED}
    assert all(job.next_check_at <= timezone.now() for job in waiting)
    # A follower was asked for, to hand the tokens out.
    assert ("studio.tasks.follow_jobs",) in queued
    assert following._waiting_for_tokens()

    queued.clear()
    following.follow_once()
    assert submits(queued) == []  # no token yet
    time.sleep(0.55)
    following.follow_once()
    sent = submits(queued)
    assert sent == [made[2].pk]  # the oldest first
    time.sleep(1.05)
    following.follow_once()
    sent = submits(queued)
    assert sent == [made[2].pk, made[3].pk, made[4].pk]
    # Each job is sent once: the ones handed a token are not due again for a while.
    following.follow_once()
    assert submits(queued) == sent


@pytest.mark.django_db
def test_a_job_whose_worker_died_after_its_token_is_still_queued_and_sent_again(
    settings, creator, queued, django_capture_on_commit_callbacks
):
    use_emulator(settings)
    settings.STUDIO_SUBMITS_PER_SECOND = 5
    with django_capture_on_commit_callbacks(execute=True):
        job = new_job(creator, "fal")
    assert submits(queued) == [job.pk]
    # The submit task is lost with its worker (Redis): the job never left *queued*.
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED
    Job.objects.filter(pk=job.pk).update(next_check_at=timezone.now())
    queued.clear()
    following.follow_once()
    assert submits(queued) == [job.pk]
    jobs.submit(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUBMITTED
