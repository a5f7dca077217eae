"""Studio's own queue: jobs past the running-jobs limit are accepted and wait for a slot
(their money and seconds reserved), start oldest first as slots free, fairly across
creators, and the hand-over of a freed slot is race-safe and survives a lost task."""

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from studio import following, jobs, leases, quotas, tasks, throttle
from studio.models import Clip, Job, LedgerEntry, Quota, Usage
from studio.providers.base import Billing
from tests.emulator import use_emulator
from tests.factories import create_job, create_jobs, make_creator


def fal_job(creator, prompt: str = "rain") -> Job:
    """A $0.40 job (fal, 720p, audio, 8 s), sent nowhere unless a test submits it."""
    return create_job(
        creator=creator, provider="fal", mode="text", prompt=prompt, duration=8,
        resolution="720p", aspect="16:9", audio=True,
    )  # fmt: skip


def fal_batch(creator, count: int) -> list[Job]:
    return create_jobs(
        creator=creator, provider="fal", mode="text", prompt="rain", duration=8,
        resolution="720p", aspect="16:9", audio=True,
        variations=[{"seed": seed} for seed in range(count)],
    )  # fmt: skip


def succeed(job: Job) -> None:
    """End a job not sent anywhere as if its clip were made (the end and its charge commit
    together, as jobs.finish does)."""
    with transaction.atomic():
        assert job.move(Job.NOT_SENT, Job.Status.SUCCEEDED, finished_at=timezone.now())
        quotas.settle(job)


def statuses(*made: Job) -> list[str]:
    found = dict(Job.objects.filter(pk__in=[job.pk for job in made]).values_list("pk", "status"))
    return [found[job.pk] for job in made]


def slots(creator) -> tuple[int, int]:
    """The creator's running slots as counted, and the jobs holding one: always equal."""
    running = Quota.objects.get(creator=creator).running_jobs
    return running, Job.objects.filter(creator=creator, holds_slot=True).count()


def ledger_is_usage(creator) -> bool:
    rows = LedgerEntry.objects.filter(creator=creator)
    usage = Usage.objects.get(creator=creator, month=quotas.this_month())
    return (sum(r.usd for r in rows), sum(r.seconds for r in rows)) == (usage.usd, usage.seconds)


@pytest.fixture
def submits(monkeypatch):
    """The submit tasks queued for admitted jobs (job ids, in order), instead of q2's queue."""
    queued: list[int] = []
    lock = threading.Lock()

    def record(func, *args):
        assert func == "studio.tasks.submit_job"
        with lock:
            queued.append(args[0])

    monkeypatch.setattr(throttle, "async_task", record)
    return queued


# ---------------------------------------------------------------- waiting and admission


def test_a_job_past_the_limit_is_accepted_and_waits_holding_money_but_no_slot(creator, submits):
    Quota.objects.create(creator=creator, concurrent_jobs=1)
    running, waiting = fal_job(creator), fal_job(creator)
    assert (waiting.status, waiting.charge, waiting.holds_slot) == ("waiting", "reserved", False)
    assert waiting.admitted_at is None
    usage = Usage.objects.get(creator=creator)
    assert (usage.usd, usage.seconds) == (Decimal("0.80"), 16)  # both reserved
    assert slots(creator) == (1, 1)
    jobs.submit(waiting.pk)  # a stray submit task: a waiting job is not sent
    assert statuses(running, waiting) == ["queued", "waiting"]


def test_a_freed_slot_goes_to_the_oldest_waiting_job_once_the_end_commits(
    creator, submits, django_capture_on_commit_callbacks
):
    Quota.objects.create(creator=creator, concurrent_jobs=1)
    running, older, newer = fal_job(creator), fal_job(creator), fal_job(creator)
    submits.clear()
    with django_capture_on_commit_callbacks() as handing_over:
        quotas.settle(running)
    assert statuses(older, newer) == ["waiting", "waiting"]  # not before the end commits
    assert slots(creator) == (0, 0)
    with django_capture_on_commit_callbacks(execute=True):
        for hand_over in handing_over:
            hand_over()
    assert statuses(older, newer) == ["queued", "waiting"]
    older.refresh_from_db()
    assert older.holds_slot and older.admitted_at is not None
    # Should its submit task be lost, the follower sends it a grace period later.
    assert older.next_check_at > timezone.now() + jobs.TASK_GRACE - timedelta(seconds=5)
    assert submits == [older.pk]
    assert slots(creator) == (1, 1)


def test_a_waiting_job_starts_when_the_job_ahead_fails_or_is_cancelled(
    creator, submits, django_capture_on_commit_callbacks
):
    Quota.objects.create(creator=creator, concurrent_jobs=1)
    first, second, third = fal_job(creator), fal_job(creator), fal_job(creator)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.fail(first, Job.NOT_SENT, "It broke.", billing=Billing.NOT_BILLED, kind="provider")
    assert statuses(first, second, third) == ["failed", "queued", "waiting"]
    with django_capture_on_commit_callbacks(execute=True):
        jobs.cancel(second)
    assert statuses(first, second, third) == ["failed", "cancelled", "queued"]
    assert slots(creator) == (1, 1)
    assert ledger_is_usage(creator)


def test_oldest_first_within_a_creator_across_requests(
    creator, submits, django_capture_on_commit_callbacks
):
    Quota.objects.create(creator=creator, concurrent_jobs=1)
    running = fal_job(creator)
    batch = fal_batch(creator, 3)
    single = fal_job(creator)
    order = []
    current = running
    for _ in range(4):
        with django_capture_on_commit_callbacks(execute=True):
            succeed(current)
        current = Job.objects.get(creator=creator, status=Job.Status.QUEUED)
        order.append(current.pk)
    assert order == [*[job.pk for job in batch], single.pk]


def test_a_batch_bigger_than_the_limit_is_accepted_whole_with_the_default_limits(
    signed_in, creator, settings, submits
):
    assert settings.STUDIO_DEFAULT_CONCURRENT_JOBS == 3 and settings.STUDIO_MAX_BATCH == 12
    sent = signed_in.post(
        reverse("create"),
        {"mode": "text", "prompt": "Rain on the harbour", "provider": "local", "duration": "4",
         "resolution": "720p", "aspect": "16:9", "copies": "12"},
    )  # fmt: skip
    made = list(Job.objects.order_by("pk"))
    assert sent.status_code == 302 and sent["Location"] == reverse("batch", args=[made[0].batch])
    assert [job.status for job in made] == ["queued"] * 3 + ["waiting"] * 9
    assert LedgerEntry.objects.filter(kind="reserve").count() == 12
    page = signed_in.get(sent["Location"]).content.decode()
    assert page.count("Waiting for a free slot") == 9


def test_a_batch_over_the_budget_is_still_refused_whole_in_todays_words(creator, submits):
    Quota.objects.create(creator=creator, monthly_budget=Decimal("1.00"))
    with pytest.raises(quotas.QuotaExceeded, match=r"These 3 clips cost \$1.20.*\$1.00 is left"):
        fal_batch(creator, 3)
    assert not Job.objects.exists() and not LedgerEntry.objects.exists()
    assert submits == []


# ---------------------------------------------------------------- cancelling


def test_cancelling_a_waiting_job_refunds_it_and_it_is_never_sent(
    signed_in, creator, submits, django_capture_on_commit_callbacks
):
    Quota.objects.create(creator=creator, concurrent_jobs=1)
    running, waiting = fal_job(creator), fal_job(creator)
    page = signed_in.get(reverse("job", args=[waiting.pk])).content.decode()
    assert "Cancel job" in page and "It has not been sent yet, so nothing is charged." in page
    with django_capture_on_commit_callbacks(execute=True):
        signed_in.post(reverse("job_cancel", args=[waiting.pk]))
    waiting.refresh_from_db()
    assert (waiting.status, waiting.charge, waiting.holds_slot) == ("cancelled", "refunded", False)
    kinds = sorted(LedgerEntry.objects.filter(job=waiting).values_list("kind", flat=True))
    assert kinds == ["refund", "reserve"]
    assert Usage.objects.get(creator=creator).usd == Decimal("0.40")  # the running one's
    assert slots(creator) == (1, 1)  # the running job keeps its slot
    with django_capture_on_commit_callbacks(execute=True):
        quotas.settle(running)
    assert statuses(waiting) == ["cancelled"]
    assert submits == []  # nothing was handed the slot: the cancelled job is never sent
    assert slots(creator) == (0, 0)
    assert ledger_is_usage(creator)


# ---------------------------------------------------------------- the follower's part


def test_a_lost_hand_over_is_taken_up_by_the_follower_once_due(creator, submits):
    Quota.objects.create(creator=creator, concurrent_jobs=1)
    running, waiting = fal_job(creator), fal_job(creator)
    quotas.settle(running)  # its hand-over (on commit) never runs: the worker died
    following.follow_once()
    assert statuses(waiting) == ["waiting"]  # the hand-over may still come
    Quota.objects.filter(creator=creator).update(admit_due_at=timezone.now() - timedelta(seconds=1))
    following.follow_once()
    assert statuses(waiting) == ["queued"]
    assert slots(creator) == (1, 1)


def test_an_admitted_job_whose_submit_was_lost_is_sent_by_the_follower(creator, monkeypatch):
    sent = []
    monkeypatch.setattr(following, "async_task", lambda func, *args: sent.append((func, *args)))
    job = fal_job(creator)  # admitted; its submit task (on commit) is lost
    following.follow_once()
    assert sent == []
    Job.objects.filter(pk=job.pk).update(next_check_at=timezone.now() - timedelta(seconds=1))
    following.follow_once()
    assert sent == [("studio.tasks.submit_job", job.pk)]


def test_a_raised_limit_admits_waiting_jobs_at_the_next_follower_pass(creator, submits):
    quota = Quota.objects.create(creator=creator, concurrent_jobs=1)
    made = [fal_job(creator) for _ in range(4)]
    Quota.objects.filter(pk=quota.pk).update(concurrent_jobs=3)
    following.follow_once()
    assert statuses(*made) == ["queued", "queued", "queued", "waiting"]
    assert slots(creator) == (3, 3)


def test_a_suspended_creators_waiting_jobs_wait_until_resumed(
    creator, submits, django_capture_on_commit_callbacks
):
    Quota.objects.create(creator=creator, concurrent_jobs=1)
    running, waiting = fal_job(creator), fal_job(creator)
    quotas.suspend(creator, by="admin")
    with django_capture_on_commit_callbacks(execute=True):
        quotas.settle(running)
    following.follow_once()
    assert statuses(waiting) == ["waiting"]
    quotas.resume(creator, by="admin")
    assert statuses(waiting) == ["queued"]


def test_a_waiting_job_does_not_time_out_for_waiting(creator, settings, submits):
    Quota.objects.create(creator=creator, concurrent_jobs=1)
    fal_job(creator)
    waiting = fal_job(creator)
    hours_ago = timezone.now() - timedelta(hours=2)
    Job.objects.filter(pk=waiting.pk).update(created_at=hours_ago)
    following.follow_once()
    assert statuses(waiting) == ["waiting"]


def test_the_ceiling_counts_from_taking_a_slot(creator, settings, submits):
    job = fal_job(creator)
    minutes = settings.STUDIO_JOB_TIMEOUT_MINUTES
    # It waited two hours, then took a slot a moment ago: not late.
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=2))
    following.follow_once()
    assert statuses(job) == ["queued"]
    # Admitted longer ago than the ceiling and never sent: timed out, refunded, slot freed.
    Job.objects.filter(pk=job.pk).update(
        admitted_at=timezone.now() - timedelta(minutes=minutes + 1)
    )
    following.follow_once()
    job.refresh_from_db()
    assert (job.status, job.error_kind, job.charge) == ("failed", "timed_out", "refunded")
    assert slots(creator) == (0, 0)


# ---------------------------------------------------------------- fairness across creators


def test_one_creators_batch_of_twelve_never_holds_back_anothers_job(
    creator, other_creator, submits, django_capture_on_commit_callbacks
):
    batch = fal_batch(creator, 12)
    single = fal_job(other_creator)
    assert single.status == "queued"  # slots are each creator's own
    assert [job.status for job in batch] == ["queued"] * 3 + ["waiting"] * 9
    # The batch's slots go to the batch's own next clips, in order.
    with django_capture_on_commit_callbacks(execute=True):
        succeed(batch[0])
    assert statuses(*batch[3:5]) == ["queued", "waiting"]


def test_the_follower_admits_round_robin_by_creator_over_each_ones_oldest_waiting_job(
    creator, other_creator, submits
):
    Quota.objects.create(creator=other_creator, concurrent_jobs=1)
    batch = fal_batch(creator, 12)  # 3 start, 9 wait
    theirs = [fal_job(other_creator), fal_job(other_creator)]  # 1 starts, 1 waits
    # Every running job ends and every hand-over is lost (no on-commit in this test).
    for job in [*batch[:3], theirs[0]]:
        succeed(job)
    Quota.objects.update(admit_due_at=timezone.now() - timedelta(seconds=1))
    # However many the first creator has waiting, the other's is admitted in the first round.
    first_pass = quotas.admit_waiting(at_most=2)
    assert [job.pk for job in first_pass] == [batch[3].pk, theirs[1].pk]
    second_pass = quotas.admit_waiting(at_most=2)
    assert [job.pk for job in second_pass] == [batch[4].pk, batch[5].pk]
    assert quotas.admit_waiting() == []  # every slot is taken again
    assert (slots(creator), slots(other_creator)) == ((3, 3), (1, 1))


# ---------------------------------------------------------------- races


def run_at_once(*calls) -> None:
    """Run each call in its own thread, released together, each with its own connection."""
    start = threading.Barrier(len(calls))
    errors = []

    def run(call) -> None:
        try:
            start.wait()
            call()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_frees_admit_exactly_as_many_as_the_limit_allows(submits):
    creator = make_creator("frees")
    Quota.objects.create(creator=creator, concurrent_jobs=3)
    running = [fal_job(creator, f"running {n}") for n in range(3)]
    waiting = [fal_job(creator, f"waiting {n}") for n in range(10)]
    submits.clear()
    # Three jobs end at once (each hands its slot over on commit) while seven more workers
    # try to admit the creator's waiting jobs.
    frees = [lambda job=job: quotas.settle(job) for job in running]
    admitters = [lambda: quotas.admit(creator.pk)] * 7
    run_at_once(*frees, *admitters)
    assert statuses(*waiting) == ["queued"] * 3 + ["waiting"] * 7  # the three oldest
    assert slots(creator) == (3, 3)
    assert sorted(submits) == [job.pk for job in waiting[:3]]  # each queued once


@pytest.mark.django_db(transaction=True)
def test_concurrent_frees_and_cancels_never_admit_a_cancelled_job(submits):
    creator = make_creator("cancels")
    Quota.objects.create(creator=creator, concurrent_jobs=2)
    running = [fal_job(creator, f"running {n}") for n in range(2)]
    waiting = [fal_job(creator, f"waiting {n}") for n in range(6)]
    frees = [lambda job=job: quotas.settle(job) for job in running]
    cancels = [lambda job=job: jobs.cancel(job) for job in waiting]
    run_at_once(*frees, *cancels)
    # Each waiting job was cancelled, whether before or after it took a slot, and refunded;
    # every slot it took was given back.
    for job in waiting:
        job.refresh_from_db()
        assert (job.status, job.charge, job.holds_slot) == ("cancelled", "refunded", False)
    assert slots(creator) == (0, 0)
    assert Usage.objects.get(creator=creator).usd == Decimal("0.80")
    assert ledger_is_usage(creator)


@pytest.mark.django_db(transaction=True)
def test_concurrent_follower_sweeps_admit_each_job_once(submits, monkeypatch):
    ana, ben = make_creator("sweep-ana"), make_creator("sweep-ben")
    Quota.objects.create(creator=ana, concurrent_jobs=3)
    Quota.objects.create(creator=ben, concurrent_jobs=2)
    with monkeypatch.context() as lost:
        # Every admission is lost (say, a worker killed each time): all six of each wait.
        lost.setattr(quotas, "admit", lambda creator_id: [])
        made = {who: [fal_job(who) for _ in range(6)] for who in (ana, ben)}
    assert set(Job.objects.values_list("status", flat=True)) == {"waiting"}
    run_at_once(*[quotas.admit_waiting] * 6)
    assert statuses(*made[ana]) == ["queued"] * 3 + ["waiting"] * 3
    assert statuses(*made[ben]) == ["queued"] * 2 + ["waiting"] * 4
    assert (slots(ana), slots(ben)) == ((3, 3), (2, 2))
    assert len(submits) == len(set(submits)) == 5


# ---------------------------------------------------------------- the engine, end to end


@pytest.mark.django_db(transaction=True)
def test_a_batch_of_twelve_with_the_default_limits_runs_three_at_a_time_to_the_end(
    settings, monkeypatch, tmp_path
):
    emulator = use_emulator(settings)
    settings.MEDIA_ROOT = tmp_path
    creator = make_creator("twelve")
    queued: list[tuple[str, tuple]] = []  # q2's queue, worked through below

    def enqueue(func: str, *args) -> None:
        if func != "studio.tasks.follow_jobs":  # the loop below follows the jobs itself
            queued.append((func, args))

    for module in (jobs, throttle, leases, following):
        monkeypatch.setattr(module, "async_task", enqueue)
    made = create_jobs(
        creator=creator, provider="fal", mode="text", prompt="Rain on the harbour (twelve)",
        duration=4, resolution="720p", aspect="16:9", audio=False,
        variations=[{"seed": n} for n in range(12)],
    )  # fmt: skip
    assert [job.status for job in made] == ["queued"] * 3 + ["waiting"] * 9
    most_started = 0
    deadline = time.monotonic() + 120
    while Job.objects.exclude(status__in=Job.TERMINAL).exists():
        assert time.monotonic() < deadline, statuses(*made)
        started = Job.objects.exclude(status__in=[Job.Status.WAITING, *Job.TERMINAL]).count()
        most_started = max(most_started, started)
        assert slots(creator) == (started, started) and started <= 3
        if queued:
            func, args = queued.pop(0)
            getattr(tasks, func.rsplit(".", 1)[1])(*args)
        else:
            time.sleep(emulator.latency)
            Job.objects.at_provider().update(next_check_at=timezone.now())
            following.follow_once()
    assert most_started == 3
    assert statuses(*made) == ["succeeded"] * 12
    assert Clip.objects.filter(job__in=made).count() == 12
    assert slots(creator) == (0, 0)
    assert ledger_is_usage(creator)
    posts = [r for r in emulator.requests_to("fal", "POST") if b"(twelve)" in r.body]
    assert len(posts) == 12  # each sent once
