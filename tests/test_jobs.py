import io
import threading
import time
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from studio import following, images, jobs, leases, pacing
from studio.models import Clip, Job, LocalRender
from studio.providers.base import Handle, Phase, PollResult, Provider, TransientError
from studio.providers.local import client as local
from studio.providers.local import worker
from tests.factories import create_job, make_creator, photo, price_of, set_price


@pytest.fixture
def image(creator):
    data = photo(1600, 900)
    return images.store(creator, images.normalise(io.BytesIO(data), size=len(data)))


def new_job(creator, image, **options) -> Job:
    fields = dict(
        provider="local", mode=Job.Mode.IMAGE, prompt="Slow pan left over the hills",
        duration=4, resolution="720p", aspect="auto", audio=False, seed=7, image=image,
    )  # fmt: skip
    fields.update(options)
    return create_job(creator=creator, **fields)


def render_and_follow(job: Job) -> Job:
    """Drive one job through the real local provider, one step at a time."""
    jobs.submit(job.pk)
    job.refresh_from_db()
    worker.render(job.provider_job_id)
    jobs.refresh_status(job)
    jobs.finish(job.pk)
    job.refresh_from_db()
    return job


def test_create_job_stores_the_estimate_and_queues_its_submit_on_commit(
    creator, image, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        job = new_job(creator, image, resolution="1080p", duration=8, audio=True)
    assert job.status == Job.Status.QUEUED
    assert job.estimated_cost == price_of(
        provider="local", mode="image", resolution="1080p", audio=True, seconds=8
    )
    assert len(callbacks) == 1


def test_a_job_goes_from_queued_to_a_clip_read_back_from_the_file(creator, image):
    job = new_job(creator, image, audio=True)
    job = render_and_follow(job)
    assert job.status == Job.Status.SUCCEEDED
    clip = job.clip
    assert (clip.width, clip.height) == (1280, 720)
    assert abs(clip.duration - 4) <= 1 / 24
    assert clip.fps == 24
    assert clip.has_audio is True
    assert clip.size_bytes == default_storage.size(clip.file.name)
    poster = Image.open(default_storage.open(clip.poster.name))
    assert (poster.format, poster.size) == ("JPEG", (1280, 720))
    # The provider's copy is discarded once ours is stored.
    assert not LocalRender.objects.exists()


def test_running_every_step_again_changes_nothing(creator, image):
    job = render_and_follow(new_job(creator, image))
    clip = job.clip
    jobs.submit(job.pk)
    jobs.refresh_status(job)
    jobs.finish(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert list(Clip.objects.values_list("pk", flat=True)) == [clip.pk]


def test_a_duplicate_submit_sends_the_job_once(creator, image):
    job = new_job(creator, image)
    jobs.submit(job.pk)
    jobs.submit(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUBMITTED
    assert LocalRender.objects.count() == 1
    assert job.provider_job_id == str(LocalRender.objects.get().pk)


def test_queue_position_and_progress_are_recorded(creator, image):
    first, second = new_job(creator, image), new_job(creator, image, seed=8)
    jobs.submit(first.pk)
    jobs.submit(second.pk)
    second.refresh_from_db()
    jobs.refresh_status(second)
    assert (second.status, second.queue_position) == (Job.Status.SUBMITTED, 1)
    LocalRender.objects.filter(pk=second.provider_job_id).update(
        status=LocalRender.Status.RENDERING, progress=0.42, heartbeat_at=timezone.now()
    )
    jobs.refresh_status(second)
    second.refresh_from_db()
    assert (second.status, second.progress, second.queue_position) == (Job.Status.RUNNING, 42, None)


def test_a_failed_render_fails_the_job_with_a_readable_message(creator, image):
    job = new_job(creator, image)
    jobs.submit(job.pk)
    default_storage.delete(image.file.name)
    job = render_and_follow(job)
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("The local renderer could not make this clip")
    assert not Clip.objects.exists()


def test_a_clip_of_the_wrong_length_fails_the_job(creator, image):
    job = new_job(creator, image, duration=4)
    jobs.submit(job.pk)
    job.refresh_from_db()
    worker.render(job.provider_job_id)
    jobs.refresh_status(job)
    Job.objects.filter(pk=job.pk).update(duration=8)
    jobs.finish(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "returned a 4.0 s clip; 8 s was asked for" in job.error


def test_cancelled_before_submit_is_never_sent(creator, image):
    job = new_job(creator, image)
    assert jobs.cancel(job)
    jobs.submit(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert not LocalRender.objects.exists()


def test_cancel_at_the_provider_stops_the_local_render(
    creator, image, tasks_inline, django_capture_on_commit_callbacks
):
    job = new_job(creator, image)
    jobs.submit(job.pk)
    job.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.cancel(job)  # the provider is told by a task, after the commit
    worker.render(job.provider_job_id)
    render = LocalRender.objects.get()
    assert (render.status, render.output) == (LocalRender.Status.CANCELLED, "")
    assert not jobs.cancel(job)


@pytest.mark.django_db(transaction=True)
def test_cancel_during_a_render_leaves_no_clip_behind():
    creator = make_creator("cat")
    data = photo(1600, 900)
    image = images.store(creator, images.normalise(io.BytesIO(data), size=len(data)))
    job = new_job(creator, image, duration=8)
    jobs.submit(job.pk)
    job.refresh_from_db()
    rendering = threading.Thread(target=worker.render, args=(job.provider_job_id,))
    rendering.start()
    while not LocalRender.objects.filter(status=LocalRender.Status.RENDERING).exists():
        time.sleep(0.01)
    jobs.cancel(job)
    jobs.cancel_at_provider(job.pk)  # the task jobs.cancel queued
    rendering.join(timeout=60)
    render = LocalRender.objects.get()
    assert render.status == LocalRender.Status.CANCELLED
    assert not default_storage.exists(f"renders/{render.pk}.mp4")


def test_the_follower_takes_up_a_submit_whose_task_was_lost(creator, image, tasks_inline):
    job = new_job(creator, image)  # its on-commit submit never runs inside the test transaction
    Job.objects.filter(pk=job.pk).update(next_check_at=timezone.now() - timedelta(seconds=1))
    following.follow_once()
    job.refresh_from_db()
    assert job.status == Job.Status.SUBMITTED


def test_the_follower_takes_up_a_finish_whose_worker_died(creator, image, tasks_inline):
    job = new_job(creator, image)
    jobs.submit(job.pk)
    job.refresh_from_db()
    worker.render(job.provider_job_id)
    jobs.refresh_status(job)  # the finish task it queues on commit never runs here
    past = timezone.now() - timedelta(seconds=1)
    Job.objects.filter(pk=job.pk).update(lease_until=past, next_check_at=past)
    following.follow_once()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED


def test_a_step_whose_worker_died_is_taken_up_when_its_lease_ends(creator, image, tasks_inline):
    job = new_job(creator, image)
    jobs.submit(job.pk)
    job.refresh_from_db()
    worker.render(job.provider_job_id)
    jobs.refresh_status(
        job
    )  # finishing: its finish task is queued (and due again only after a grace)
    job.refresh_from_db()
    assert job.next_check_at > timezone.now() + timedelta(seconds=30)
    # A finish claims the job for a lease of 0 s, and its worker dies at once.
    assert job.claim(Job.Status.FINISHING, for_seconds=0)
    time.sleep(0.01)
    following.follow_once()
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED


def test_the_followers_lease_is_no_longer_than_a_task_may_run(db, settings, monkeypatch):
    settings.STUDIO_FOLLOW_STEP_SECONDS = 0
    monkeypatch.setattr(jobs, "step_lease_seconds", lambda: 7)
    taken = []
    acquire = leases.acquire
    monkeypatch.setattr(
        leases, "acquire", lambda *a, seconds: taken.append(seconds) or acquire(*a, seconds=seconds)
    )
    following.follow()
    assert taken == [7]


def test_a_render_left_by_a_finish_killed_after_its_success_is_discarded(
    creator, image, monkeypatch
):
    job = new_job(creator, image)
    jobs.submit(job.pk)
    job.refresh_from_db()
    worker.render(job.provider_job_id)
    jobs.refresh_status(job)
    # The worker dies after the job succeeded, before it discarded the render.
    with monkeypatch.context() as patched:
        patched.setattr(local.LocalProvider, "discard", lambda self, handle: None)
        jobs.finish(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    output = LocalRender.objects.get(pk=job.provider_job_id).output
    assert default_storage.exists(output)
    following.follow_once()
    assert not LocalRender.objects.filter(pk=job.provider_job_id).exists()
    assert not default_storage.exists(output)
    assert default_storage.exists(job.clip.file.name)


class OneShotProvider(Provider):
    """A provider that may charge for every submit it receives, and is busy when polled."""

    name = "oneshot"
    label = "One shot"

    def submit(self, request):
        return Handle("remote-1")

    def poll(self, handle):
        raise TransientError("The provider is busy.")


@pytest.fixture
def oneshot(register_provider):
    register_provider(OneShotProvider)
    set_price("oneshot", "0.10")


def test_an_interrupted_submit_is_not_resent_where_that_could_charge_twice(creator, image, oneshot):
    job = new_job(creator, image, provider="oneshot")
    past = timezone.now() - timedelta(seconds=1)
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.SUBMITTING, lease_until=past, next_check_at=past
    )
    following.follow_once()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "cannot be charged twice" in job.error
    assert job.error_kind == Job.ErrorKind.INTERRUPTED


def test_an_interrupted_local_submit_is_simply_sent_again(creator, image, tasks_inline):
    job = new_job(creator, image)
    past = timezone.now() - timedelta(seconds=1)
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.SUBMITTING, lease_until=past, next_check_at=past
    )
    following.follow_once()
    job.refresh_from_db()
    assert job.status == Job.Status.SUBMITTED


def test_a_transient_poll_error_backs_off_and_keeps_the_job(creator, image, oneshot):
    job = new_job(creator, image, provider="oneshot")
    jobs.submit(job.pk)
    job.refresh_from_db()
    before = timezone.now()
    jobs.refresh_status(job)
    job.refresh_from_db()
    assert job.status == Job.Status.SUBMITTED
    assert job.next_check_at > before + timedelta(seconds=0.9)


def test_a_poll_result_moves_only_from_the_expected_states(creator, image):
    job = new_job(creator, image)
    jobs.apply_status(job, PollResult(Phase.RUNNING, progress=0.5))
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED  # a queued job is not at the provider yet


def test_only_one_holder_gets_a_lease_until_it_expires(db):
    assert leases.acquire("x", "a", seconds=30)
    assert not leases.acquire("x", "b", seconds=30)
    assert leases.renew("x", "a", seconds=30)
    assert not leases.renew("x", "b", seconds=30)
    leases.release("x", "a")
    assert leases.acquire("x", "b", seconds=30)
    assert not leases.acquire("x", "a", seconds=30)
    assert leases.held("x")
    leases.release("x", "b")
    assert not leases.held("x")


def test_a_submit_queues_the_follower_only_when_none_is_running(
    db, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(leases, "async_task", lambda func, *args: queued.append(func))
    with django_capture_on_commit_callbacks(execute=True):
        jobs.nudge_follower()
    assert queued == ["studio.tasks.follow_jobs"]
    # One runs: it looks for jobs after releasing its lease, so nothing more is queued.
    assert leases.acquire(following.LEASE, "follower", seconds=60)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.nudge_follower()
    assert queued == ["studio.tasks.follow_jobs"]
    leases.release(following.LEASE, "follower")
    with django_capture_on_commit_callbacks(execute=True):
        jobs.nudge_follower()
    assert queued == ["studio.tasks.follow_jobs"] * 2


def test_a_follower_stopping_with_jobs_at_a_provider_hands_over(
    creator, image, monkeypatch, settings
):
    """What lets a submit skip queueing one while a follower runs: the follower looks for
    jobs at a provider after it has let go of its lease, and queues the next one."""
    settings.STUDIO_FOLLOW_STEP_SECONDS = 0
    queued = []
    monkeypatch.setattr(following, "async_task", lambda func, *args: queued.append(func))
    monkeypatch.setattr(following, "follow_once", lambda: 0)
    job = new_job(creator, image)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUBMITTED)
    following.follow()
    assert queued == ["studio.tasks.follow_jobs"]
    assert not leases.held(following.LEASE)


def test_pacing_looks_again_within_a_second_while_nothing_is_learned(creator):
    assert pacing.typical_seconds("fal") is None
    now = timezone.now()
    Job.objects.create(
        creator=creator, provider="fal", mode=Job.Mode.TEXT, prompt="rain", duration=4,
        resolution="720p", aspect="16:9", status=Job.Status.FINISHING,
        submitted_at=now - timedelta(seconds=20), provider_done_at=now,
    )  # fmt: skip
    assert pacing.typical_seconds("fal") is None  # asked a moment ago
    learned_at, _ = pacing._typical["fal"]
    pacing._typical["fal"] = (learned_at - pacing.UNKNOWN_RELEARN_SECONDS, None)
    assert pacing.typical_seconds("fal") == 20.0
    # Once known, it is kept for RELEARN_SECONDS.
    Job.objects.filter(provider="fal").update(submitted_at=now - timedelta(seconds=40))
    learned_at, _ = pacing._typical["fal"]
    pacing._typical["fal"] = (learned_at - pacing.UNKNOWN_RELEARN_SECONDS, 20.0)
    assert pacing.typical_seconds("fal") == 20.0


class UnreachableClipProvider(OneShotProvider):
    """Finishes at once, but its clip can never be downloaded for now."""

    name = "unreachable"

    def poll(self, handle):
        return PollResult(Phase.SUCCEEDED, result_url="https://media.example/clip.mp4")

    def fetch(self, handle, result_url, dest):
        raise TransientError("The media host is not answering.")


def test_a_clip_out_of_reach_is_retried_then_fails_after_the_ceiling(
    creator, image, register_provider
):
    register_provider(UnreachableClipProvider)
    set_price("unreachable", "0")
    job = new_job(creator, image, provider="unreachable")
    jobs.submit(job.pk)
    job.refresh_from_db()
    jobs.refresh_status(job)
    jobs.finish(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FINISHING
    assert job.next_check_at > timezone.now()
    Job.objects.filter(pk=job.pk).update(
        submitted_at=timezone.now() - jobs.FETCH_CEILING - timedelta(minutes=1), lease_until=None
    )
    jobs.finish(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == (
        "The clip could not be downloaded: The media host is not answering. "
        "You were not charged."  # the clip was free
    )


def test_pacing_heeds_a_queue_position_only_where_nothing_better_is_known():
    # Nothing learned: a second per job ahead, at most COLD_MAX.
    assert pacing.interval(5, None, queue_position=8) == 8
    assert pacing.interval(5, None, queue_position=300) == pacing.COLD_MAX
    # Learned: the plan holds however many of our own jobs are ahead at the provider.
    assert pacing.interval(5, 20.0, queue_position=300) == pytest.approx(11.0)
    assert pacing.interval(17, 20.0, queue_position=300) == 2.0
    # Late: backing off, and a long queue backs off more.
    assert pacing.interval(40, 20.0) == 4.0
    assert pacing.interval(40, 20.0, queue_position=25) == 25
    assert pacing.interval(40, 20.0, queue_position=300) == pacing.LATE_MAX
