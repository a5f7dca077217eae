"""Named leases in the database: at most one holder at a time across every worker and host."""

import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.tasks import async_task

from studio.models import Lease

# The follower's lease (studio/following.py): one follower at a time across every host.
FOLLOWER = "follow-jobs"


def new_holder() -> str:
    return uuid.uuid4().hex


def acquire(name: str, holder: str, *, seconds: float) -> bool:
    """Take the lease if it is free or expired (one conditional UPDATE, or the first INSERT)."""
    now = timezone.now()
    until = now + timedelta(seconds=seconds)
    if Lease.objects.filter(name=name, expires_at__lt=now).update(holder=holder, expires_at=until):
        return True
    try:
        with transaction.atomic():
            Lease.objects.create(name=name, holder=holder, expires_at=until)
        return True
    except IntegrityError:
        return False


def held(name: str) -> bool:
    """Whether someone holds the lease now (it may be released a moment later)."""
    return Lease.objects.filter(name=name, expires_at__gte=timezone.now()).exists()


def renew(name: str, holder: str, *, seconds: float) -> bool:
    until = timezone.now() + timedelta(seconds=seconds)
    return bool(Lease.objects.filter(name=name, holder=holder).update(expires_at=until))


def release(name: str, holder: str) -> None:
    Lease.objects.filter(name=name, holder=holder).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def start_follower_unless_running() -> None:
    if not held(FOLLOWER):
        async_task("studio.tasks.follow_jobs")
