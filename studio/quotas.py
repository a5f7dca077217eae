"""Creators' limits and the ledger: the only code that writes usage.

Submitting reserves a clip's price and seconds and one running slot; success settles the
reservation, failure or cancellation refunds it. Every check-and-take is one conditional
UPDATE (`WHERE used + this <= limit`), which is exact under concurrent submits on SQLite
and PostgreSQL alike (shared/facts.md: read-check-write is not). Each change to usage is
written with its ledger row in one transaction, and a job's `charge` moves
reserved → settled | refunded by a conditional update, so nothing is settled or refunded
twice however often a task runs.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from studio.models import Job, LedgerEntry, Quota, Usage


class QuotaExceeded(Exception):
    """The job would go past a limit; the message names it, for the creator."""


@dataclass(frozen=True)
class Limits:
    monthly_budget: Decimal
    monthly_seconds: int
    concurrent_jobs: int
    suspended: bool


@dataclass(frozen=True)
class Meter:
    """This month so far, for the usage meter."""

    limits: Limits
    usd: Decimal
    seconds: int
    running: int

    @property
    def usd_left(self) -> Decimal:
        return max(Decimal("0"), self.limits.monthly_budget - self.usd)

    @property
    def seconds_left(self) -> int:
        return max(0, self.limits.monthly_seconds - self.seconds)


def this_month() -> date:
    """The first day of the current calendar month, in the site's time zone."""
    return timezone.localdate().replace(day=1)


def _limits(quota: Quota | None) -> Limits:
    """The quota's own limits, the site's defaults where it has none."""

    def pick(name: str, default):
        value = getattr(quota, name, None) if quota else None
        return default if value is None else value

    return Limits(
        monthly_budget=Decimal(pick("monthly_budget", settings.STUDIO_DEFAULT_MONTHLY_BUDGET)),
        monthly_seconds=pick("monthly_seconds", settings.STUDIO_DEFAULT_MONTHLY_SECONDS),
        concurrent_jobs=pick("concurrent_jobs", settings.STUDIO_DEFAULT_CONCURRENT_JOBS),
        suspended=bool(quota and quota.suspended),
    )


def meter(creator) -> Meter:
    usage = Usage.objects.filter(creator=creator, month=this_month()).first()
    quota = Quota.objects.filter(creator=creator).first()
    return Meter(
        limits=_limits(quota),
        usd=usage.usd if usage else Decimal("0"),
        seconds=usage.seconds if usage else 0,
        running=quota.running_jobs if quota else 0,
    )


def _row(model, **key):
    """The row for `key`, created if missing (two creators of it at once: one wins)."""
    row = model.objects.filter(**key).first()
    if row is None:
        try:
            with transaction.atomic():
                row = model.objects.create(**key)
        except IntegrityError:
            row = model.objects.get(**key)
    return row


@transaction.atomic
def reserve(job: Job) -> None:
    """Take the job's price, seconds and a running slot, or raise QuotaExceeded.

    Call it in the transaction that creates the job, so a refused job is never saved.
    """
    creator, cost, seconds = job.creator, job.estimated_cost, job.duration
    quota = _row(Quota, creator=creator)
    limits = _limits(quota)
    if limits.suspended:
        raise QuotaExceeded("Your account is suspended; ask the studio's admin.")
    if not Quota.objects.filter(pk=quota.pk, running_jobs__lt=limits.concurrent_jobs).update(
        running_jobs=F("running_jobs") + 1
    ):
        raise QuotaExceeded(
            f"You have {limits.concurrent_jobs} of {limits.concurrent_jobs} jobs running; "
            "wait for one to finish."
        )
    month = this_month()
    usage = _row(Usage, creator=creator, month=month)
    took = Usage.objects.filter(
        pk=usage.pk,
        usd__lte=limits.monthly_budget - cost,
        seconds__lte=limits.monthly_seconds - seconds,
    ).update(usd=F("usd") + cost, seconds=F("seconds") + seconds)
    if not took:
        usage.refresh_from_db()
        raise QuotaExceeded(_which_limit(usage, limits, cost, seconds))
    LedgerEntry.objects.create(
        creator=creator, job=job, kind=LedgerEntry.Kind.RESERVE, usd=cost, seconds=seconds,
        month=month, reason="submitted",
    )  # fmt: skip
    Job.objects.filter(pk=job.pk).update(charge=Job.Charge.RESERVED)
    job.charge = Job.Charge.RESERVED


def _which_limit(usage: Usage, limits: Limits, cost: Decimal, seconds: int) -> str:
    if usage.usd + cost > limits.monthly_budget:
        left = max(Decimal("0"), limits.monthly_budget - usage.usd)
        return (
            f"This clip costs ${cost}; your monthly budget is ${limits.monthly_budget} and "
            f"${left:.2f} is left this month."
        )
    left = max(0, limits.monthly_seconds - usage.seconds)
    return (
        f"This clip is {seconds} s; your monthly allowance is {limits.monthly_seconds} s of "
        f"video and {left} s is left this month."
    )


@transaction.atomic
def settle(job: Job, reason: str = "clip delivered") -> None:
    """The reservation becomes the charge (the clip was made, or the provider bills for
    its failure), and the running slot is free."""
    if not Job.objects.filter(pk=job.pk, charge=Job.Charge.RESERVED).update(
        charge=Job.Charge.SETTLED
    ):
        return
    LedgerEntry.objects.create(
        creator_id=job.creator_id, job=job, kind=LedgerEntry.Kind.SETTLE, usd=Decimal("0"),
        seconds=0, month=_reservation(job).month, reason=reason[:200],
    )  # fmt: skip
    _free_slot(job)


@transaction.atomic
def refund(job: Job, reason: str) -> None:
    """The clip was not made (failed or cancelled): give back what was reserved."""
    if not Job.objects.filter(pk=job.pk, charge=Job.Charge.RESERVED).update(
        charge=Job.Charge.REFUNDED
    ):
        return
    # Give back exactly what was taken, in the month it was taken from.
    taken = _reservation(job)
    Usage.objects.filter(creator_id=job.creator_id, month=taken.month).update(
        usd=F("usd") - taken.usd, seconds=F("seconds") - taken.seconds
    )
    LedgerEntry.objects.create(
        creator_id=job.creator_id, job=job, kind=LedgerEntry.Kind.REFUND,
        usd=-taken.usd, seconds=-taken.seconds, month=taken.month, reason=reason[:200],
    )  # fmt: skip
    _free_slot(job)


def _reservation(job: Job) -> LedgerEntry:
    return LedgerEntry.objects.get(job=job, kind=LedgerEntry.Kind.RESERVE)


def _free_slot(job: Job) -> None:
    Quota.objects.filter(creator_id=job.creator_id, running_jobs__gt=0).update(
        running_jobs=F("running_jobs") - 1
    )
