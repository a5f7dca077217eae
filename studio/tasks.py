"""django-q2 entry points: each takes ids and calls the domain function that does the work.

Every task may run twice (the ORM broker redelivers after `retry` seconds), so each
domain function is idempotent.
"""

from studio import following, health, images, jobs, notifications, sequences
from studio.providers.local import worker


def submit_job(job_id: int) -> None:
    jobs.submit(job_id)


def finish_job(job_id: int) -> None:
    jobs.finish(job_id)


def render_locally(render_id: str) -> None:
    worker.render(render_id)


def follow_jobs() -> None:
    following.follow()


def cancel_at_provider(job_id: int) -> None:
    jobs.cancel_at_provider(job_id)


def check_providers() -> None:
    health.check_unless_recent()


def notify_job_ended(job_id: int) -> None:
    notifications.send_for(job_id)


def purge_stills() -> None:
    images.purge_unused_stills()


def stitch_sequence(sequence_id: int) -> None:
    sequences.make(sequence_id)
