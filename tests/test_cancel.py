"""Cancel refunds only what the provider will not bill, per provider, over real HTTP.

Before the provider has the job, cancel is free. A provider that removes a job still in its
queue without charge (fal, Oxen, the local renderer) has it removed and refunded; one that
had started is asked to stop and keeps the charge; where a provider cannot stop a job
(Gemini API, AI/ML API) the clip is still delivered and the charge stays. The creator is told
which before confirming, and the ledger row says which rule applied.
"""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from studio import following, jobs, quotas
from studio.models import Job, LedgerEntry, Quota, Usage
from tests.emulator import finished, follow, new_job, submitted, use_emulator


@pytest.fixture
def emulator(settings):
    return use_emulator(settings)


def cancel_now(job: Job, capture) -> str:
    """The creator's cancel, and the task it queues, run as the worker would."""
    with capture(execute=True):
        said = jobs.cancel(job)
    job.refresh_from_db()
    return said


def ledger(job: Job) -> list[tuple[str, str]]:
    return [(row.kind, row.reason) for row in LedgerEntry.objects.filter(job=job).order_by("pk")]


def test_a_job_not_sent_yet_is_cancelled_for_nothing(emulator, creator):
    job = new_job(creator, "fal")
    assert jobs.cancel_terms(job) == "It has not been sent yet, so nothing is charged."
    assert jobs.cancel(job) == "The job was cancelled."
    job.refresh_from_db()
    assert (job.status, job.charge) == (Job.Status.CANCELLED, Job.Charge.REFUNDED)
    assert ledger(job)[-1] == ("refund", "cancel: not sent yet, so nothing is charged")


def test_fal_removes_a_queued_job_and_it_is_refunded(
    emulator, tasks_inline, django_capture_on_commit_callbacks, creator
):
    emulator.latency = 30  # queued for its first 9 s
    job = submitted(new_job(creator, "fal"))
    assert jobs.cancel_terms(job).startswith(
        "If fal.ai has not started it yet, it is removed and you are not charged;"
    )
    said = cancel_now(job, django_capture_on_commit_callbacks)
    assert said.startswith("Cancelling: If fal.ai has not started it yet")
    assert (job.status, job.charge, job.cancel_outcome) == (
        Job.Status.CANCELLED, Job.Charge.REFUNDED, "stopped",
    )  # fmt: skip
    assert ledger(job)[-1] == (
        "refund", "cancel: fal.ai removed from its queue before it started, so nothing is charged",
    )  # fmt: skip
    assert Usage.objects.get(creator=creator).usd == Decimal("0.00")


def test_fal_is_asked_to_stop_a_started_job_and_the_charge_stays(
    emulator, tasks_inline, django_capture_on_commit_callbacks, creator
):
    emulator.latency = 2
    job = submitted(new_job(creator, "fal"))
    time.sleep(0.7)  # past its time in fal's queue: generating
    jobs.refresh_status(job)
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING
    assert jobs.cancel_terms(job) == (
        "fal.ai has started it: it is asked to stop, and the $0.20 stays charged."
    )
    cancel_now(job, django_capture_on_commit_callbacks)
    assert job.cancel_outcome == "stop_requested"
    assert job.status in Job.AT_PROVIDER  # followed until fal says how it ended
    job = follow(job)
    assert job.status == Job.Status.FAILED
    assert job.charge == Job.Charge.SETTLED
    assert Usage.objects.get(creator=creator).usd == Decimal("0.20")


@pytest.mark.parametrize("provider", ["gemini", "aimlapi"])
def test_a_provider_that_cannot_stop_still_delivers_and_the_charge_stays(
    emulator, tasks_inline, django_capture_on_commit_callbacks, creator, signed_in, provider
):
    job = submitted(new_job(creator, provider, duration=8))
    label = {"gemini": "Gemini API", "aimlapi": "AI/ML API"}[provider]
    terms = (
        f"{label} can't stop a job it has started; the ${job.estimated_cost} stays charged "
        "and the clip will still be delivered."
    )
    assert jobs.cancel_terms(job) == terms
    page = signed_in.get(reverse("job", args=[job.pk])).content.decode()
    assert f'data-confirm="Cancel this job? {terms}"'.replace("'", "&#x27;") in page
    cancel_now(job, django_capture_on_commit_callbacks)
    assert job.cancel_outcome == "cannot_stop"
    page = signed_in.get(reverse("job", args=[job.pk])).content.decode()
    assert "can&#x27;t stop a job it has started, so the clip is still delivered" in page
    assert "Cancel job" not in page  # asked once; nothing more to ask
    job = finished(job)
    assert (job.status, job.charge) == (Job.Status.SUCCEEDED, Job.Charge.SETTLED)
    assert job.clip is not None
    assert ledger(job)[-1] == (
        "settle",
        f"clip delivered: {label} could not stop it when it was cancelled",
    )


def test_oxen_removes_a_queued_job_and_stops_a_started_one_keeping_its_charge(
    emulator, tasks_inline, django_capture_on_commit_callbacks, creator
):
    emulator.latency = 30
    queued = submitted(new_job(creator, "oxen"))
    cancel_now(queued, django_capture_on_commit_callbacks)
    assert (queued.status, queued.charge) == (Job.Status.CANCELLED, Job.Charge.REFUNDED)
    emulator.latency = 2
    started = submitted(new_job(creator, "oxen"))
    time.sleep(0.7)
    cancel_now(started, django_capture_on_commit_callbacks)
    assert started.cancel_outcome == "stop_requested"
    started = follow(started)
    assert (started.status, started.charge) == (Job.Status.CANCELLED, Job.Charge.SETTLED)
    assert ledger(started)[-1] == ("settle", "cancel: Oxen.ai stopped it after it had started")


def test_the_local_renderer_stops_for_free(
    creator, tasks_inline, django_capture_on_commit_callbacks
):
    job = new_job(creator, "local", mode="text")
    jobs.submit(job.pk)
    job.refresh_from_db()
    assert jobs.cancel_terms(job) == "Local renderer stops it, and nothing is charged."
    cancel_now(job, django_capture_on_commit_callbacks)
    assert (job.status, job.charge) == (Job.Status.CANCELLED, Job.Charge.REFUNDED)
    assert ledger(job)[-1] == ("refund", "cancel: Local renderer free, so nothing is charged")


def test_a_cancel_while_sending_is_asked_once_the_provider_has_the_job(
    emulator, django_capture_on_commit_callbacks, creator
):
    emulator.latency = 30
    job = new_job(creator, "fal")
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUBMITTING)
    job.refresh_from_db()
    with django_capture_on_commit_callbacks() as queued:
        assert jobs.cancel(job)
    job.refresh_from_db()
    jobs.cancel_at_provider(job.pk)  # the task it queued: still sending, so nothing yet
    assert not emulator.requests_to("fal", "PUT")
    assert len(queued) == 1
    Job.objects.filter(pk=job.pk).update(status=Job.Status.QUEUED)  # as if the send resumed
    with django_capture_on_commit_callbacks() as after_submit:
        jobs.submit(job.pk)
    assert len(after_submit) == 2  # the follower's nudge, and asking fal to cancel
    jobs.cancel_at_provider(job.pk)
    job.refresh_from_db()
    assert (job.status, job.charge) == (Job.Status.CANCELLED, Job.Charge.REFUNDED)
    assert len(emulator.requests_to("fal", "PUT")) == 1


def test_a_cancel_whose_task_was_lost_is_taken_up_by_the_follower(emulator, creator, tasks_inline):
    emulator.latency = 30
    job = submitted(new_job(creator, "fal"))
    Job.objects.filter(pk=job.pk).update(
        cancel_requested_at=timezone.now() - jobs.TASK_GRACE - timedelta(seconds=1)
    )
    following.follow_once()
    job.refresh_from_db()
    assert (job.status, job.charge) == (Job.Status.CANCELLED, Job.Charge.REFUNDED)


def test_submit_then_cancel_cannot_spend_past_the_budget(
    emulator, tasks_inline, django_capture_on_commit_callbacks, creator
):
    # Gemini keeps generating a cancelled job (and bills it): its charge stays, so the loop
    # that used to refund every cancel now meets the budget.
    Quota.objects.create(creator=creator, monthly_budget=Decimal("1.00"), concurrent_jobs=5)
    for _ in range(2):
        job = submitted(new_job(creator, "gemini", duration=8))  # $0.40 each
        cancel_now(job, django_capture_on_commit_callbacks)
    with pytest.raises(quotas.QuotaExceeded, match=r"\$0\.20 is left this month"):
        new_job(creator, "gemini", duration=8)
