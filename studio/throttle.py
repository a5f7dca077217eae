"""Backpressure: submits to the providers at most STUDIO_SUBMITS_PER_SECOND, across every host.

A burst that reaches the providers faster than Studio can finish clips comes back done
faster than it can be taken in, and its clips queue after the provider (README: The job
engine). Paced, the queue stands before the provider instead, where a job is still free to
cancel or move, and every clip is taken in as soon as its provider is done.

The pace is one token bucket in the database (a row of the lease table whose time is the
bucket's "theoretical arrival time", GCRA), so every web server and worker on every host
shares it; a second's worth of submits may go at once. A token is taken while the job is
still *queued*, before any step claims it: a worker that dies after taking one leaves the job
queued, and the follower sends it again (studio/following.py). Jobs that find no token wait
queued and due; the follower hands out tokens to them, oldest first, on each pass.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.tasks import async_task

from studio import leases
from studio.models import Job, Lease

PACE = "submit-pace"
# How often the follower hands out tokens while jobs wait for them.
WAITING_PASS_SECONDS = 0.25


def paced() -> bool:
    return bool(settings.STUDIO_SUBMITS_PER_SECOND)


def take(wanted: int) -> int:
    """Take up to `wanted` submit tokens now; how many were granted (all of them, unpaced)."""
    rate = float(settings.STUDIO_SUBMITS_PER_SECOND)
    if not rate or wanted <= 0:
        return max(0, wanted)
    burst = timedelta(seconds=max(1.0, rate) / rate)  # a second's worth, at least one
    for _ in range(20):  # lost races with other takers: they were granted, so try again
        now = timezone.now()
        tat = Lease.objects.filter(name=PACE).values_list("expires_at", flat=True).first()
        if tat is None:
            _create(now - burst)
            continue
        start = max(tat, now - burst)
        granted = min(wanted, int((now - start).total_seconds() * rate + 1e-6))
        if granted <= 0:
            return 0
        after = start + timedelta(seconds=granted / rate)
        if Lease.objects.filter(name=PACE, expires_at=tat).update(expires_at=after):
            return granted
    return 0


def queue_submits(job_ids: list[int]) -> None:
    """Queue the jobs' submits, as many as the pace allows now; the rest wait queued and
    due, and the follower sends them as it hands out tokens."""
    granted = take(len(job_ids))
    for job_id in job_ids[:granted]:
        async_task("studio.tasks.submit_job", job_id)
    if waiting := job_ids[granted:]:
        Job.objects.filter(pk__in=waiting, status=Job.Status.QUEUED).update(
            next_check_at=timezone.now()
        )
        leases.start_follower_unless_running()


def _create(tat: datetime) -> None:
    try:
        with transaction.atomic():
            Lease.objects.create(name=PACE, holder="token bucket", expires_at=tat)
    except IntegrityError:
        pass  # another taker made it first
