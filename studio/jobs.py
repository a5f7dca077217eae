"""The job state machine: create, submit, follow, finish, cancel, retry.

    waiting → queued → submitting → submitted → running → finishing → succeeded
    Any state before succeeded may end failed; before finishing, cancelled.

A job waits in Studio's own queue until one of its creator's running slots is free
(studio/quotas.py admits it, oldest first); *queued* and every state after it hold a slot.

Every change is a conditional update from the state the step expects (`Job.move`,
`Job.claim`), so a step run twice, or by two workers at once, takes effect once. No
transaction or lock is held across a provider call: call first, then write the outcome.
"""

from __future__ import annotations

import logging
import random
import secrets
import tempfile
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_q.tasks import async_task

from studio import (
    failover,
    health,
    leases,
    notifications,
    pacing,
    pricing,
    quotas,
    storage,
    video,
)
from studio.models import Clip, Job
from studio.options import MAX_SEED, Aspect, ClipOptions
from studio.providers.base import (
    Billing,
    CancelOutcome,
    GenerationRequest,
    Handle,
    ModelUnavailableError,
    Phase,
    PollResult,
    ProviderError,
    RateLimitedError,
    SubmitUncertainError,
    TransientError,
    reference_for,
)
from studio.providers.http import said
from studio.providers.registry import capabilities_of, get_provider
from studio.redaction import scrub

log = logging.getLogger(__name__)

# What one status call told us: where the job is, or why the provider could not say.
Status = PollResult | ProviderError

MAX_BACKOFF_SECONDS = 300
# How long a queued task may wait for a free worker before the follower sends it again.
TASK_GRACE = Job.TASK_GRACE
# A clip still out of reach this long after submitting (generation takes minutes) fails the job.
FETCH_CEILING = timedelta(hours=2)
# The follower's lease (studio/following.py, which imports this module).
FOLLOWER_LEASE = leases.FOLLOWER
# A finished clip may differ from the request by this much and still be accepted.
DURATION_TOLERANCE = 0.5


def step_lease_seconds() -> int:
    """How long a submit or finish step holds its job: longer than any can take (it is q2's
    task timeout), so a step's lease outlives a killed worker by at most this much before
    another worker takes the job up again."""
    timeout: int = settings.Q_TIMEOUT  # q2's task timeout (Q_CLUSTER "timeout")
    return timeout


def create_job(
    *, creator: User, provider: str, options: ClipOptions, allow_failover: bool = False
) -> Job:
    """Record a job with its price, reserve it against the creator's limits (raises
    quotas.QuotaExceeded), and queue its submission once the row is committed, or let it
    wait for a free running slot."""
    return create_jobs(
        creator=creator, provider=provider, batch=[options], allow_failover=allow_failover
    )[0]


@transaction.atomic
def create_jobs(
    *,
    creator: User,
    provider: str,
    batch: list[ClipOptions],
    allow_failover: bool = False,
) -> list[Job]:
    """One job per options in `batch`, reserved together: all of them are accepted, or none
    (QuotaExceeded). More than one share a batch id. As many as the creator has running
    slots free start at once (after any of theirs already waiting); the rest wait. A seed
    left empty is Studio's to pick (where the provider takes one), and the job shows it: a
    clip worth making again can be."""
    batch_id = uuid.uuid4() if len(batch) > 1 else None
    made = []
    for options in batch:
        drawn = options.seed is None and capabilities_of(provider).seed
        if drawn:
            options = options.replace(seed=secrets.randbelow(MAX_SEED + 1))
        price = pricing.quote(provider, options)
        made.append(
            Job.objects.create(
                creator=creator,
                batch=batch_id,
                provider=provider,
                **options.columns(),
                seed_drawn=drawn,
                allow_failover=allow_failover,
                price_per_second=price.usd_per_second,
                estimated_cost=price.cost,
                status=Job.Status.WAITING,
            )
        )
    quotas.reserve(*made)
    admitted = {job.pk: job for job in quotas.admit(creator.pk)}
    return [admitted.get(job.pk, job) for job in made]


def generation_request(job: Job) -> GenerationRequest:
    return GenerationRequest(
        reference=reference_for(job.pk), options=job.options, webhook_url=_webhook_url(job)
    )


def _webhook_url(job: Job) -> str:
    """Where the job's provider should send its webhook, or "" when STUDIO_PUBLIC_URL is not
    set and jobs are followed by polling alone (providers without webhooks ignore it)."""
    if not settings.STUDIO_PUBLIC_URL:
        return ""
    return settings.STUDIO_PUBLIC_URL + reverse("webhook", args=[job.provider])


def handle_for(job: Job) -> Handle:
    return Handle(provider_job_id=job.provider_job_id, state=job.provider_state)


def submit(job_id: int) -> None:
    """Send a queued job to its provider."""
    job = Job.objects.select_related("image", "last_frame").get(pk=job_id)
    provider = get_provider(job.provider)
    lease = step_lease_seconds()
    took = job.claim(Job.Status.QUEUED, for_seconds=lease, to=Job.Status.SUBMITTING)
    if not took and provider.idempotent_submit:
        # A submit interrupted by a crash may be sent again where that cannot charge twice.
        took = job.claim(Job.Status.SUBMITTING, for_seconds=lease)
    if not took:
        return
    if marked := health.marked_unavailable(job.provider):
        # Nobody's job can be made there until a check succeeds again: not sent.
        _not_sent(job, f"{marked}. Your job was not sent.")
        return
    try:
        if job.provider in settings.STUDIO_PROVIDERS_DOWN:
            raise TransientError(f"{provider.label} is marked down by the studio.")
        handle = provider.submit(generation_request(job))
    except ModelUnavailableError as exc:
        # Not the job's fault, and the same for everyone's: marked until a check succeeds.
        health.mark_unavailable(
            job.provider,
            f"{provider.label} no longer offers the model Studio uses{said(exc.words)}",
        )
        _not_sent(job, str(exc))
        return
    except TransientError as exc:
        if failover.move_on(job, str(exc)):
            return
        job.move(
            [Job.Status.SUBMITTING],
            Job.Status.QUEUED,
            lease_until=None,
            error=f"Retrying: {exc}",
            next_check_at=_backoff(job, exc),
        )
        return
    except ProviderError as exc:
        # Refused before it was accepted: not charged, unless the answer was lost.
        lost = isinstance(exc, SubmitUncertainError)
        billing = Billing.MAY_BE_BILLED if lost else Billing.NOT_BILLED
        fail(job, [Job.Status.SUBMITTING], str(exc), billing=billing, kind=exc.kind)
        return
    now = timezone.now()
    job.submitted_at = now
    submitted = job.move(
        [Job.Status.SUBMITTING],
        Job.Status.SUBMITTED,
        provider_job_id=handle.provider_job_id,
        provider_state=handle.state,
        model=provider.model_id(job.options),
        submitted_at=now,
        lease_until=None,
        error="",
        next_check_at=pacing.next_check(job, now),
    )
    if submitted:
        nudge_follower()
        if Job.objects.filter(pk=job.pk, cancel_requested_at__isnull=False).exists():
            # The creator cancelled while we were sending it: now the provider can be asked.
            transaction.on_commit(lambda: async_task("studio.tasks.cancel_at_provider", job.pk))
    else:
        # Ended meanwhile (timed out, say): tell the provider too.
        job.refresh_from_db()
        if job.status in (Job.Status.CANCELLED, Job.Status.FAILED):
            _stop_at_provider(job, handle)


def _not_sent(job: Job, reason: str) -> None:
    """A job in *submitting* that its provider cannot make: moved on where the creator let it
    (failover), else failed, not charged."""
    if not failover.move_on(job, reason):
        fail(
            job, [Job.Status.SUBMITTING], reason, billing=Billing.NOT_BILLED,
            kind=Job.ErrorKind.MODEL_UNAVAILABLE,
        )  # fmt: skip


def nudge_follower() -> None:
    """Make sure the follower (studio/following.py) runs.

    Not queued while one holds its lease: that one looks for jobs at a provider after it
    releases the lease, and this job is committed by then, so it is followed either way. A
    burst of submits thus queues a follower or two, not one no-op task per job."""
    transaction.on_commit(_start_follower_unless_running)


def _start_follower_unless_running() -> None:
    leases.start_follower_unless_running()


def refresh_status(job: Job) -> None:
    """Ask the provider once about a job it is working on, and move the job by the answer."""
    apply_status(job, fetch_status(job))


def fetch_status(job: Job) -> Status:
    """One status call for a job at its provider: HTTP only, nothing written, so the
    follower can ask about many jobs at once and apply the answers itself."""
    try:
        return get_provider(job.provider).poll(handle_for(job))
    except ProviderError as exc:
        return exc


def apply_status(job: Job, status: Status) -> None:
    """Move the job by what its provider said, and plan when to ask again."""
    if isinstance(status, TransientError):
        job.move(Job.AT_PROVIDER, job.status, next_check_at=_backoff(job, status))
        return
    if isinstance(status, ProviderError):
        fail(job, Job.AT_PROVIDER, str(status), billing=status.billing, kind=status.kind)
        return
    _advance(job, status)


def _advance(job: Job, result: PollResult) -> None:
    next_check = pacing.next_check(job, timezone.now(), result.queue_position)
    if result.phase == Phase.QUEUED:
        job.move(
            Job.AT_PROVIDER,
            Job.Status.SUBMITTED,
            queue_position=result.queue_position,
            next_check_at=next_check,
        )
    elif result.phase == Phase.RUNNING:
        progress = None if result.progress is None else round(result.progress * 100)
        job.move(
            Job.AT_PROVIDER,
            Job.Status.RUNNING,
            queue_position=None,
            progress=progress,
            next_check_at=next_check,
        )
    elif result.phase == Phase.SUCCEEDED:
        if job.move(
            Job.AT_PROVIDER,
            Job.Status.FINISHING,
            queue_position=None,
            progress=100,
            result_url=result.result_url,
            provider_done_at=timezone.now(),
            next_check_at=timezone.now() + TASK_GRACE,
        ):
            transaction.on_commit(lambda: async_task("studio.tasks.finish_job", job.pk))
    elif result.phase == Phase.CANCELLED:
        with transaction.atomic():
            if job.move(
                Job.AT_PROVIDER,
                Job.Status.CANCELLED,
                finished_at=timezone.now(),
                next_check_at=None,
            ):
                if job.cancel_outcome == CancelOutcome.STOP_REQUESTED:
                    # Stopped at our request after it had started: it may bill for that.
                    quotas.settle(job, f"cancel: {_label(job)} stopped it after it had started")
                else:
                    quotas.refund(job, "cancelled at the provider")
                notifications.job_ended(job)
    else:
        reason = result.error or "The provider reported a failure without a reason."
        fail(
            job, Job.AT_PROVIDER, reason, billing=Billing.NOT_BILLED, kind=Job.ErrorKind.GENERATION
        )


def finish(job_id: int) -> None:
    """Bring the finished MP4 home, check it, make its poster and show it in the gallery."""
    job = Job.objects.get(pk=job_id)
    if not job.claim(Job.Status.FINISHING, for_seconds=step_lease_seconds()):
        return
    provider = get_provider(job.provider)
    handle = handle_for(job)
    with tempfile.TemporaryDirectory(prefix="studio-finish-") as tmp:
        path = Path(tmp) / "clip.mp4"
        try:
            provider.fetch(handle, job.result_url, path)
        except TransientError as exc:
            if job.submitted_at and timezone.now() - job.submitted_at > FETCH_CEILING:
                message = f"The clip could not be downloaded: {exc}"
                fail(
                    job, [Job.Status.FINISHING], message, billing=Billing.MAY_BE_BILLED,
                    kind=Job.ErrorKind.DOWNLOAD,
                )  # fmt: skip
                return
            # Stay finishing; the follower tries again after the backoff.
            log.warning("fetching job %s failed for now: %s", job.pk, exc)
            job.move(
                [Job.Status.FINISHING],
                Job.Status.FINISHING,
                lease_until=None,
                next_check_at=_backoff(job, exc),
            )
            return
        except ProviderError as exc:
            # The provider made the clip; whether it bills for one we never got is its rule.
            message = f"The clip could not be downloaded: {exc}"
            fail(
                job, [Job.Status.FINISHING], message, billing=exc.billing,
                kind=Job.ErrorKind.DOWNLOAD,
            )  # fmt: skip
            return
        try:
            info, poster = video.probe_with_poster(path)
            _check_clip(job, info)
            last_frame = video.last_frame(path)
        except video.VideoError as exc:
            fail(
                job, [Job.Status.FINISHING], str(exc), billing=Billing.MAY_BE_BILLED,
                kind=Job.ErrorKind.BAD_CLIP,
            )  # fmt: skip
            return
        # Names are fixed per job, so a run killed half-way leaves nothing behind to orphan.
        clip_name = replace_file(f"clips/{job.creator_id}/job-{job.pk}.mp4", path)
        poster_name = replace_file(f"clips/{job.creator_id}/job-{job.pk}.jpg", ContentFile(poster))
        last_frame_name = replace_file(
            f"clips/{job.creator_id}/job-{job.pk}-last.jpg", ContentFile(last_frame)
        )
    with transaction.atomic():
        if not job.move(
            [Job.Status.FINISHING],
            Job.Status.SUCCEEDED,
            finished_at=timezone.now(),
            lease_until=None,
        ):
            return
        quotas.settle(job, _delivered_reason(job))
        notifications.job_ended(job)
        Clip.objects.create(
            job=job,
            file=clip_name,
            poster=poster_name,
            last_frame=last_frame_name,
            width=info.width,
            height=info.height,
            duration=info.duration,
            fps=info.fps,
            has_audio=info.has_audio,
            size_bytes=info.size_bytes,
        )
    provider.discard(handle)


def _check_clip(job: Job, info: video.ClipInfo) -> None:
    if abs(info.duration - job.duration) > DURATION_TOLERANCE:
        raise video.VideoError(
            f"The provider returned a {info.duration:.1f} s clip; {job.duration} s was asked for."
        )
    expected = job.options.frame_size()
    allowed = {expected}
    if job.aspect == Aspect.AUTO:
        allowed.add((expected[1], expected[0]))
    if (info.width, info.height) not in allowed:
        raise video.VideoError(
            f"The provider returned a {info.width}×{info.height} clip; "
            f"{expected[0]}×{expected[1]} was asked for."
        )


def replace_file(name: str, content: Path | ContentFile[bytes]) -> str:
    """Store `content` under exactly `name`, replacing what is there (fixed names per job or
    sequence: a step run again replaces its files instead of orphaning them)."""
    storage.abort_unfinished_uploads(name)  # a step killed mid-upload (object storage)
    if default_storage.exists(name):
        default_storage.delete(name)
    if isinstance(content, Path):
        with open(content, "rb") as f:
            return default_storage.save(name, File(f))
    return default_storage.save(name, content)


def cancel(job: Job) -> str:
    """The creator asks to stop a job; returns what happens, for them ("" when it is past
    cancelling). Only what the provider will not bill is refunded:

    - not sent yet (waiting for a slot, or queued): cancelled, and nothing is charged;
    - at the provider: it is asked (cancel_at_provider, a task): a job still in a queue it
      removes without charge (fal, Oxen, the local renderer) is cancelled and refunded; one
      it had started is asked to stop and keeps its charge; where it cannot stop a job
      (Gemini API, AI/ML API) the clip is still delivered and the charge stays.
    """
    with transaction.atomic():
        if job.move(
            Job.NOT_SENT, Job.Status.CANCELLED, finished_at=timezone.now(), next_check_at=None
        ):
            quotas.refund(job, "cancel: not sent yet, so nothing is charged")
            notifications.job_ended(job)
            return "The job was cancelled."
    asked = Job.objects.filter(
        pk=job.pk,
        status__in=[Job.Status.SUBMITTING, *Job.AT_PROVIDER],
        cancel_requested_at__isnull=True,
    ).update(cancel_requested_at=timezone.now())
    if not asked:
        return ""
    transaction.on_commit(lambda: async_task("studio.tasks.cancel_at_provider", job.pk))
    return f"Cancelling: {cancel_terms(job)}"


def cancel_terms(job: Job) -> str:
    """What cancelling the job now does, said before the creator confirms it."""
    provider = get_provider(job.provider)
    cost = f"${job.estimated_cost:.2f}"
    if job.status in Job.NOT_SENT:
        return "It has not been sent yet, so nothing is charged."
    if provider.free or not job.estimated_cost:
        return f"{provider.label} stops it, and nothing is charged."
    if provider.cancels_queued and job.status in (Job.Status.SUBMITTING, Job.Status.SUBMITTED):
        started = (
            f"if it has started, it is asked to stop and the {cost} stays charged"
            if provider.stops_running
            else f"if it has started, the clip is still delivered and the {cost} stays charged"
        )
        return (
            f"If {provider.label} has not started it yet, it is removed and you are not "
            f"charged; {started}."
        )
    if provider.stops_running and job.status == Job.Status.RUNNING:
        return (
            f"{provider.label} has started it: it is asked to stop, and the {cost} stays charged."
        )
    return (
        f"{provider.label} can't stop a job it has started; the {cost} stays charged and the "
        "clip will still be delivered."
    )


def cancel_note(job: Job) -> str:
    """What came of the creator's cancel, once they asked and the job went on."""
    if not job.cancel_requested_at or job.status == Job.Status.CANCELLED:
        return ""
    label, cost = _label(job), f"${job.estimated_cost:.2f}"
    if not job.cancel_outcome:
        return f"You asked to cancel; {label} is being asked to stop."
    if job.cancel_outcome == CancelOutcome.STOP_REQUESTED:
        return (
            f"You asked to cancel: {label} had started, so it was asked to stop; the {cost} "
            "stays charged."
        )
    return (
        f"You asked to cancel: {label} can't stop a job it has started, so the clip is still "
        f"delivered and the {cost} stays charged."
    )


def cancel_at_provider(job_id: int) -> None:
    """Ask the provider to stop a job: one the creator cancelled (and apply what it did), or
    one Studio gave up on (timed out)."""
    job = Job.objects.get(pk=job_id)
    if job.provider_job_id and job.status in (Job.Status.CANCELLED, Job.Status.FAILED):
        _stop_at_provider(job, handle_for(job))
        return
    if job.status not in Job.AT_PROVIDER or not job.cancel_requested_at or job.cancel_outcome:
        return  # still being sent (submit asks once it is), ended, or asked already
    outcome = _stop_at_provider(job, handle_for(job))
    if outcome == CancelOutcome.STOPPED:
        with transaction.atomic():
            if job.move(
                Job.AT_PROVIDER,
                Job.Status.CANCELLED,
                cancel_outcome=outcome,
                finished_at=timezone.now(),
                next_check_at=None,
            ):
                rule = (
                    "free"
                    if job.estimated_cost == 0
                    else "removed from its queue before it started"
                )
                quotas.refund(job, f"cancel: {_label(job)} {rule}, so nothing is charged")
                notifications.job_ended(job)
        return
    # It goes on: stopped (maybe) by the provider later, or delivered; the charge stays.
    Job.objects.filter(pk=job.pk, cancel_outcome="").update(cancel_outcome=outcome)


def _stop_at_provider(job: Job, handle: Handle) -> CancelOutcome:
    try:
        return get_provider(job.provider).cancel(handle)
    except ProviderError as exc:
        # Nothing is refunded on a cancel the provider did not confirm: it may finish the job.
        log.warning("cancelling job %s at %s failed: %s", job.pk, job.provider, exc)
        return CancelOutcome.CANNOT_STOP


def _delivered_reason(job: Job) -> str:
    if job.cancel_requested_at:
        return f"clip delivered: {_label(job)} could not stop it when it was cancelled"
    return "clip delivered"


def _label(job: Job) -> str:
    return get_provider(job.provider).label


def delete_clip(clip: Clip) -> None:
    """Remove a clip at its creator's request; its files go once the row is gone for good."""
    names = [name for name in (clip.file.name, clip.poster.name, clip.last_frame.name) if name]
    with transaction.atomic():
        clip.delete()
        transaction.on_commit(lambda: _delete_files(names))


def _delete_files(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def fail(
    job: Job, from_states: Iterable[str], message: str, *, billing: Billing, kind: str
) -> bool:
    """Fail the job and settle its reservation by the provider's billing for this failure:
    refunded when it is not billed, kept when it is or may be, with the reason said on the
    job."""
    free = billing == Billing.NOT_BILLED or not job.estimated_cost
    if free:
        note = "You were not charged."
    elif billing == Billing.BILLED:
        note = f"The provider bills for this, so ${job.estimated_cost} was charged."
    else:
        note = f"The provider may bill for this, so ${job.estimated_cost} counts as charged."
    shown = scrub(message if "not charged" in message.lower() else f"{message} {note}")
    # The end and its charge commit together: a worker killed between them would otherwise
    # leave a failed job holding its reservation and its running slot.
    with transaction.atomic():
        if not job.move(
            from_states,
            Job.Status.FAILED,
            error=shown,
            error_kind=kind,
            finished_at=timezone.now(),
            lease_until=None,
            next_check_at=None,
        ):
            return False
        if free:
            quotas.refund(job, "failed")
        else:
            quotas.settle(job, note)
        notifications.job_ended(job)
    return True


def _backoff(job: Job, exc: TransientError) -> datetime:
    """When to try again after a transient error: the provider's retry-after, else
    exponential backoff with jitter on the job's age."""
    if isinstance(exc, RateLimitedError) and exc.retry_after:
        delay = exc.retry_after
    else:
        age = (timezone.now() - job.created_at).total_seconds()
        delay = min(MAX_BACKOFF_SECONDS, max(2.0, age / 4)) * random.uniform(0.5, 1.0)
    return timezone.now() + timedelta(seconds=delay)


def reconcile_interrupted_submit(job: Job) -> None:
    """A job left in *submitting* by a dead worker, at a provider where sending it again
    could make (and bill) a second clip.

    The provider's job id is written in the same update that leaves *submitting*, so such a
    job has none, and none of the hosted providers can be asked "did you get request
    studio-job-N?" (no lookup by our reference is documented). So it is failed as
    interrupted and the creator is not charged; it is never sent again.
    """
    fail(
        job,
        [Job.Status.SUBMITTING],
        "Studio was interrupted while sending this job and cannot tell whether the provider "
        "received it; it was not sent again, so it cannot be charged twice. "
        "You were not charged.",
        billing=Billing.NOT_BILLED,
        kind=Job.ErrorKind.INTERRUPTED,
    )


def retry(job: Job) -> Job:
    """A new job with the settings of a failed or cancelled one, made as any new job is: at
    today's price, reserved against the creator's limits (raises quotas.QuotaExceeded) and
    queued. The old job stays as it ended; the new one is on its own, outside any batch."""
    if job.status not in (Job.Status.FAILED, Job.Status.CANCELLED):
        raise ValueError(
            f"Job #{job.pk} is {job.get_status_display().lower()}; "
            "only failed or cancelled jobs can be retried."
        )
    return create_job(
        creator=job.creator,
        provider=job.provider,
        options=job.options,
        allow_failover=job.allow_failover,
    )
