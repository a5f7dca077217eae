"""django-q2 entry points: each takes ids and calls the domain function that does the work.

Every task may run twice (the ORM broker redelivers after `retry` seconds), so each
domain function is idempotent.
"""

import time

from django.conf import settings
from django_q.tasks import async_task

from studio import jobs, leases
from studio.models import Job
from studio.providers import local

FOLLOWER_LEASE = "follow-jobs"


def submit_job(job_id: int) -> None:
    jobs.submit(job_id)


def finish_job(job_id: int) -> None:
    jobs.finish(job_id)


def render_locally(render_id: str) -> None:
    local.render(render_id)


def follow_jobs() -> None:
    """Poll every job at a provider for most of a minute, then hand over to a fresh task.

    Only one runs at a time (a lease row, not a process-local lock). Also run by the
    scheduler every minute as the backstop for a lost hand-over.
    """
    step = settings.STUDIO_FOLLOW_STEP_SECONDS
    holder = leases.new_holder()
    if not leases.acquire(FOLLOWER_LEASE, holder, seconds=step + 30):
        return
    deadline = time.monotonic() + step
    try:
        while True:
            jobs.follow_once()
            if not Job.objects.at_provider().exists() or time.monotonic() >= deadline:
                break
            time.sleep(max(0.2, jobs.next_check_in(max_wait=1.0)))
            leases.renew(FOLLOWER_LEASE, holder, seconds=step + 30)
    finally:
        leases.release(FOLLOWER_LEASE, holder)
    # Checked after releasing: a job submitted meanwhile either found the lease free and
    # started its own follower, or is seen here.
    if Job.objects.at_provider().exists():
        async_task("studio.tasks.follow_jobs")
