"""The follower: one leased step that follows every job at a provider to its end.

It runs for most of a minute (STUDIO_FOLLOW_STEP_SECONDS), then hands over to a fresh
task; only one runs at a time anywhere (a lease row in the database, not a process-local
lock), and q2's schedule starts one every minute as the backstop for a lost hand-over. Each
pass:

- asks the providers about every job that is due, many at once (a bounded thread pool per
  provider, STUDIO_POLL_CONCURRENCY; the calls are HTTP only) and applies each answer in
  this thread as it arrives, so no database write waits on a slow provider;
- plans each job's next call (studio/pacing.py), and when one job is found done asks at once
  about the provider's older jobs, which are likely done too;
- fails jobs past the ceiling (STUDIO_JOB_TIMEOUT_MINUTES) as timed out, refunded: counted
  from the submit, or from taking a running slot for a job never sent; a job waiting in
  Studio's own queue for a slot never times out for waiting;
- starts again any step whose task was lost: the database is the source of truth, the queue
  only a nudge; admits waiting jobs to slots a lost hand-over left free (studio/quotas.py);
  and discards the local renders of jobs that ended without doing so.

Once a step it also forgets webhook deliveries too old to be replayed (studio/webhooks.py).
"""

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from studio import jobs, leases, quotas, sequences, throttle, webhooks
from studio.models import Job, LocalRender
from studio.providers.base import Billing, Phase, PollResult
from studio.providers.registry import get_provider, provider_classes

log = logging.getLogger(__name__)

LEASE = jobs.FOLLOWER_LEASE
# Jobs asked about in one pass at most; the rest are due in the next pass, a moment later.
PASS_LIMIT = 2000


def follow() -> None:
    """Follow jobs for one step, then hand over if any are still at a provider."""
    step = settings.STUDIO_FOLLOW_STEP_SECONDS
    # A pass may run past the step; q2 kills the task at its timeout, so a dead follower's
    # lease need not outlive that (and the next follower starts no later).
    lease = min(step + 30, jobs.step_lease_seconds())
    holder = leases.new_holder()
    if not leases.acquire(LEASE, holder, seconds=lease):
        return
    deadline = time.monotonic() + step
    try:
        webhooks.forget_old_deliveries()
        while True:
            follow_once()
            # Followed while any job is unfinished, not only while one is at a provider: a
            # step lost with its worker (Redis loses the task; a host cut off keeps it) is
            # taken up as soon as its lease or grace runs out, not at the next schedule.
            if not following_needed() or time.monotonic() >= deadline:
                break
            most = throttle.WAITING_PASS_SECONDS if _waiting_for_tokens() else 1.0
            time.sleep(max(0.05, next_check_in(max_wait=most)))
            leases.renew(LEASE, holder, seconds=lease)
    finally:
        leases.release(LEASE, holder)
    # Checked after releasing: a job submitted meanwhile either found the lease free and
    # started its own follower, or is seen here.
    if Job.objects.unfinished().exists():
        async_task("studio.tasks.follow_jobs")


def _waiting_for_tokens() -> bool:
    """Whether paced jobs are queued and due, waiting for the follower to send them."""
    return throttle.paced() and (
        Job.objects.filter(status=Job.Status.QUEUED, next_check_at__lte=timezone.now())
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=timezone.now()))
        .exists()
    )


def follow_once() -> int:
    """One pass over everything that is due; returns how many jobs were asked about."""
    now = timezone.now()
    _time_out(now)
    due = list(
        Job.objects.at_provider()
        .filter(Q(next_check_at__isnull=True) | Q(next_check_at__lte=now))
        .order_by("next_check_at")[:PASS_LIMIT]
    )
    asked = ask_about(due)
    _take_up_lost_steps(timezone.now())
    return asked


def ask_about(due: list[Job]) -> int:
    """Ask about every job in `due`, at most STUDIO_POLL_CONCURRENCY at once per provider."""
    by_provider: dict[str, list[Job]] = defaultdict(list)
    for job in due:
        by_provider[job.provider].append(job)
    pools, futures = [], {}
    try:
        for name, group in by_provider.items():
            if get_provider(name).runs_here:
                # Its "status call" is a query: ask in this thread, inside its transaction.
                for job in group:
                    _apply_safely(job, partial(jobs.fetch_status, job))
                continue
            pool = ThreadPoolExecutor(
                max_workers=settings.STUDIO_POLL_CONCURRENCY, thread_name_prefix=f"poll-{name}"
            )
            pools.append(pool)
            futures.update({pool.submit(jobs.fetch_status, job): job for job in group})
        for future in as_completed(futures):
            _apply_safely(futures[future], future.result)
    finally:
        for pool in pools:
            pool.shutdown(wait=True)
    return len(due)


def _apply_safely(job: Job, get_status: Callable[[], jobs.Status]) -> None:
    """Apply one job's status; a bug with one job (say, provider state it cannot read) is
    logged and that job asked again later, so it never stops the others being followed."""
    try:
        _apply_and_hurry_older(job, get_status())
    except Exception:
        log.exception("following job %s failed; asking again in a minute", job.pk)
        Job.objects.filter(pk=job.pk).update(next_check_at=timezone.now() + jobs.TASK_GRACE)


def _apply_and_hurry_older(job: Job, status: jobs.Status) -> None:
    jobs.apply_status(job, status)
    if isinstance(status, PollResult) and status.phase == Phase.SUCCEEDED and job.submitted_at:
        # Same provider, submitted earlier: probably finished too, so ask now, not later.
        Job.objects.at_provider().filter(
            provider=job.provider,
            submitted_at__lte=job.submitted_at,
            next_check_at__gt=timezone.now(),
        ).update(next_check_at=timezone.now())


def _time_out(now: datetime) -> None:
    """Fail, refunded, every job not finished within the ceiling; tell its provider. The
    ceiling counts from the submit, or for a job never sent from when it took its slot: a
    job waiting for a slot is not late, however long it waits (the jobs ahead of it each
    end within the ceiling)."""
    ceiling = now - timedelta(minutes=settings.STUDIO_JOB_TIMEOUT_MINUTES)
    late = Job.objects.filter(
        Q(status__in=Job.AT_PROVIDER, submitted_at__lt=ceiling)
        | Q(status=Job.Status.QUEUED, admitted_at__lt=ceiling)
        # Queued before Studio kept its own queue (or made outside it): from its creation.
        | Q(status=Job.Status.QUEUED, admitted_at__isnull=True, created_at__lt=ceiling)
    )
    minutes = settings.STUDIO_JOB_TIMEOUT_MINUTES
    for job in late:
        was_at_provider = job.status in Job.AT_PROVIDER
        failed = jobs.fail(
            job,
            [job.status],
            f"The job did not finish within {minutes} minutes, so Studio stopped waiting. "
            "You were not charged.",
            billing=Billing.NOT_BILLED,
            kind=Job.ErrorKind.TIMED_OUT,
        )
        if failed and was_at_provider:
            async_task("studio.tasks.cancel_at_provider", job.pk)


def _take_up_lost_steps(now: datetime) -> None:
    """Start again any step whose task never ran or whose worker died (its lease expired),
    and hand over running slots that were freed without being handed over."""
    quotas.admit_waiting()
    lost = Job.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
        Q(next_check_at__isnull=True) | Q(next_check_at__lte=now),
        status__in=[Job.Status.QUEUED, Job.Status.SUBMITTING, Job.Status.FINISHING],
    ).order_by("next_check_at", "pk")
    # A cancel the provider was never asked about (its task was lost).
    unasked = Job.objects.at_provider().filter(
        cancel_requested_at__lt=now - jobs.TASK_GRACE, cancel_outcome=""
    )
    for job_id in unasked.values_list("pk", flat=True):
        async_task("studio.tasks.cancel_at_provider", job_id)
    # Queued jobs are sent as the pace allows (studio/throttle.py), oldest turn first; the
    # rest stay due for the next pass.
    queued = [job for job in lost if job.status == Job.Status.QUEUED]
    tokens = throttle.take(len(queued))
    held_back = {job.pk for job in queued[tokens:]}
    for job in lost:
        if job.pk in held_back:
            continue
        Job.objects.filter(pk=job.pk).update(next_check_at=now + jobs.TASK_GRACE)
        if job.status == Job.Status.FINISHING:
            async_task("studio.tasks.finish_job", job.pk)
        elif job.status == Job.Status.QUEUED or get_provider(job.provider).idempotent_submit:
            async_task("studio.tasks.submit_job", job.pk)
        else:
            jobs.reconcile_interrupted_submit(job)
    sequences.take_up_lost(now)
    _discard_leftovers()


def _discard_leftovers() -> None:
    """Discard the local renderer's copy of every clip whose job has ended. A finish whose
    worker died after the job succeeded, before it discarded the render, would otherwise
    leave the render's MP4 in storage for good."""
    made = LocalRender.objects.exclude(
        status__in=[LocalRender.Status.QUEUED, LocalRender.Status.RENDERING]
    ).values_list("pk", flat=True)
    here = [name for name, cls in provider_classes().items() if cls.runs_here]
    ended = Job.objects.filter(
        provider__in=here, status__in=Job.TERMINAL, provider_job_id__in=[str(pk) for pk in made]
    )
    for job in ended:
        get_provider(job.provider).discard(jobs.handle_for(job))


def following_needed() -> bool:
    """Whether any job has a step to come (a job waiting for a running slot has none until
    a running one ends, and that one is followed)."""
    return Job.objects.unfinished().exclude(status=Job.Status.WAITING).exists()


def next_check_in(max_wait: float) -> float:
    """Seconds until the next job at a provider is due (at most `max_wait`)."""
    soonest = (
        Job.objects.at_provider()
        .exclude(next_check_at__isnull=True)
        .order_by("next_check_at")
        .values_list("next_check_at", flat=True)
        .first()
    )
    if soonest is None:
        return max_wait
    wait: float = (soonest - timezone.now()).total_seconds()
    return max(0.0, min(max_wait, wait))
