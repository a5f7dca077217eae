"""Creators' limits and the ledger: the only code that writes usage.

Submitting reserves a clip's price and seconds (a batch of variations: all of them or none);
success settles the reservation, failure or cancellation refunds it. An admin's grant,
reset, suspend and resume go through here too, each with its ledger row.

Running slots are Studio's own queue: a reserved job waits (Job.Status.WAITING) holding its
money and seconds but no slot until `admit` gives it one of its creator's running slots,
oldest waiting job first. A slot freed by a job that ends is handed over when that end
commits; the follower admits whatever a lost hand-over or a raised limit left free
(`admit_waiting`, fair across creators).

Every check-and-take is one conditional UPDATE (`WHERE used + this <= limit`,
`WHERE running_jobs < limit`), which is exact under concurrent submits and frees on SQLite
and PostgreSQL alike (shared/facts.md: read-check-write is not). Each change to usage is
written with its ledger row in one transaction, and a job's `charge` moves reserved →
settled | refunded by a conditional update, so nothing is settled or refunded twice however
often a task runs; a slot is given back once per job (`Job.holds_slot`).
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, models, transaction
from django.db.models import F, Min, Q, Sum
from django.utils import timezone

from studio import throttle
from studio.models import Job, LedgerEntry, Quota, Usage

# Ledger rows that make up what a job holds while it is reserved.
HOLDING = (LedgerEntry.Kind.RESERVE, LedgerEntry.Kind.REPRICE)
# Jobs the follower's sweep admits at most in one pass (the rest in the next, a moment later).
ADMIT_PER_PASS = 500


class QuotaExceeded(Exception):
    """The job would go past a limit; the message names it, for the creator."""


@dataclass(frozen=True)
class Limits:
    monthly_budget: Decimal
    monthly_seconds: int
    concurrent_jobs: int
    suspended: bool
    providers: frozenset[str]  # empty: every provider
    resolutions: frozenset[str]  # empty: every resolution

    def allows_provider(self, provider: str) -> bool:
        return not self.providers or provider in self.providers

    def allows_resolution(self, resolution: str) -> bool:
        return not self.resolutions or resolution in self.resolutions

    def resolution_refusal(self, resolution: str) -> str:
        """Why this account may not make `resolution`, or "" when it may."""
        if self.allows_resolution(resolution):
            return ""
        allowed = " or ".join(sorted(self.resolutions))
        return f"Your account may make {allowed} clips, not {resolution}; ask the studio's admin."


@dataclass(frozen=True)
class Meter:
    """This month so far, for the usage meter."""

    limits: Limits
    usd: Decimal
    seconds: int
    running: int
    granted: Decimal = Decimal("0")  # extra budget an admin granted for this month
    waiting: int = 0  # jobs in Studio's queue for a free running slot

    @property
    def budget(self) -> Decimal:
        return self.limits.monthly_budget + self.granted

    @property
    def usd_left(self) -> Decimal:
        return max(Decimal("0"), self.budget - self.usd)


def this_month() -> date:
    """The first day of the current calendar month in the site's time zone (TIME_ZONE), not
    whichever zone a request may have activated."""
    return timezone.localdate(timezone=timezone.get_default_timezone()).replace(day=1)


def _limits(quota: Quota | None) -> Limits:
    """The quota's own limits, the site's defaults where it has none."""

    def pick(name: str, default: Any) -> Any:
        value = getattr(quota, name, None) if quota else None
        return default if value in (None, []) else value

    return Limits(
        monthly_budget=Decimal(pick("monthly_budget", settings.STUDIO_DEFAULT_MONTHLY_BUDGET)),
        monthly_seconds=pick("monthly_seconds", settings.STUDIO_DEFAULT_MONTHLY_SECONDS),
        concurrent_jobs=pick("concurrent_jobs", settings.STUDIO_DEFAULT_CONCURRENT_JOBS),
        suspended=bool(quota and quota.suspended),
        providers=frozenset(pick("allowed_providers", settings.STUDIO_DEFAULT_PROVIDERS)),
        resolutions=frozenset(pick("allowed_resolutions", settings.STUDIO_DEFAULT_RESOLUTIONS)),
    )


def limits_of(creator: User) -> Limits:
    return _limits(Quota.objects.filter(creator=creator).first())


def meter(creator: User) -> Meter:
    usage = Usage.objects.filter(creator=creator, month=this_month()).first()
    quota = Quota.objects.filter(creator=creator).first()
    return Meter(
        limits=_limits(quota),
        usd=usage.usd if usage else Decimal("0"),
        seconds=usage.seconds if usage else 0,
        running=quota.running_jobs if quota else 0,
        granted=usage.granted_usd if usage else Decimal("0"),
        waiting=Job.objects.filter(creator=creator, status=Job.Status.WAITING).count(),
    )


_Row = TypeVar("_Row", bound=models.Model)


def _row(model: type[_Row], **key: Any) -> _Row:
    """The row for `key`, created if missing (two creators of it at once: one wins)."""
    manager = model._default_manager
    row = manager.filter(**key).first()
    if row is None:
        try:
            with transaction.atomic():
                row = manager.create(**key)
        except IntegrityError:
            row = manager.get(**key)
    return row


@transaction.atomic
def reserve(*batch: Job) -> None:
    """Take the jobs' prices and seconds, all or nothing, or raise QuotaExceeded naming the
    limit. No running slot is taken: the jobs wait for one (`admit`).

    Call it in the transaction that creates the jobs, so refused jobs are never saved.
    """
    creator = batch[0].creator
    cost = sum((job.estimated_cost for job in batch), Decimal("0"))
    seconds = sum(job.duration for job in batch)
    quota = _row(Quota, creator=creator)
    limits = _limits(quota)
    if limits.suspended:
        raise QuotaExceeded("Your account is suspended; ask the studio's admin.")
    if limits.concurrent_jobs < 1:
        # Its jobs would wait for a slot that never comes.
        raise QuotaExceeded("Your account may not run any jobs at once; ask the studio's admin.")
    for job in batch:
        _check_allowed(job, limits)
    month = this_month()
    usage = _row(Usage, creator=creator, month=month)
    took = Usage.objects.filter(
        pk=usage.pk,
        usd__lte=F("granted_usd") + (limits.monthly_budget - cost),
        seconds__lte=limits.monthly_seconds - seconds,
    ).update(usd=F("usd") + cost, seconds=F("seconds") + seconds)
    if not took:
        usage.refresh_from_db()
        raise QuotaExceeded(_which_limit(usage, limits, cost, seconds, len(batch)))
    rows = [
        LedgerEntry(creator=creator, job=job, kind=LedgerEntry.Kind.RESERVE,
                    usd=job.estimated_cost, seconds=job.duration, month=month, reason="submitted")
        for job in batch
    ]  # fmt: skip
    LedgerEntry.objects.bulk_create(rows)
    Job.objects.filter(pk__in=[job.pk for job in batch]).update(charge=Job.Charge.RESERVED)
    for job in batch:
        job.charge = Job.Charge.RESERVED


def admit(creator_id: int) -> list[Job]:
    """Give the creator's free running slots to their oldest waiting jobs, one at a time,
    and return the jobs admitted (now *queued*, their submits queued on commit).

    Each admission is its own short transaction: one conditional UPDATE takes the slot
    (`running_jobs < limit`), so two workers freeing slots at once never admit more than the
    limit allows, and the job leaves *waiting* in the same commit. A waiting job of a
    suspended creator stays waiting until they are resumed.
    """
    admitted = []
    while (job := _admit_next(creator_id)) is not None:
        admitted.append(job)
    return admitted


def _admit_next(creator_id: int) -> Job | None:
    """The creator's oldest waiting job given a slot, or None: none waits, or none is free."""
    if not Job.objects.waiting().filter(creator_id=creator_id).exists():
        return None
    limits = _limits(Quota.objects.filter(creator_id=creator_id).first())
    if limits.suspended:
        return None
    now = timezone.now()
    with transaction.atomic():
        # The slot first: on PostgreSQL its row lock then orders the creator's admitters, so
        # each takes the oldest job still waiting; SQLite serialises writers anyway.
        if not Quota.objects.filter(
            creator_id=creator_id, running_jobs__lt=limits.concurrent_jobs
        ).update(running_jobs=F("running_jobs") + 1):
            return None
        # A job locked meanwhile is being cancelled: skip it rather than wait for it (a
        # submit admitting in its own transaction holds the usage row that cancel wants).
        # Should that leave none to admit, the follower's sweep gives the slot out later.
        job: Job | None = (
            Job.objects.waiting()
            .filter(creator_id=creator_id)
            .select_for_update(skip_locked=True)
            .first()
        )
        if job is None or not job.move(
            [Job.Status.WAITING],
            Job.Status.QUEUED,
            holds_slot=True,
            admitted_at=now,
            lease_until=None,
            # Should its submit task be lost, the follower sends it then (as any queued job).
            next_check_at=now + Job.TASK_GRACE,
        ):
            transaction.set_rollback(True)  # the slot goes back
            return None
        transaction.on_commit(lambda: _queue_submit(job.pk))
    return job


def _queue_submit(job_id: int) -> None:
    throttle.queue_submits([job_id])


def _hand_over(creator_id: int) -> None:
    """A slot of the creator's was freed and committed: give it to their next waiting job."""
    admit(creator_id)


def admit_waiting(*, at_most: int = ADMIT_PER_PASS) -> list[Job]:
    """The follower's backstop: admit waiting jobs wherever a slot is free and nobody took
    it: a hand-over lost with its worker (once `Quota.admit_due_at` has passed), a limit
    raised, an account resumed. Returns the jobs admitted, in the order they were.

    Fair across creators: slots are each creator's own, so one creator's queue never holds
    another's job back, and this sweep goes round by round over the creators with a job
    waiting and a slot free, ordered by their oldest waiting job, admitting one job of each
    per round (the creator's oldest). However long one creator's queue, every other
    creator's next job is admitted in the first round.
    """
    now = timezone.now()
    due = Q(creator__quota__admit_due_at__isnull=True) | Q(creator__quota__admit_due_at__lte=now)
    creators = list(
        Job.objects.filter(due, status=Job.Status.WAITING)
        .values("creator_id")
        .annotate(oldest=Min("created_at"))
        .order_by("oldest", "creator_id")
        .values_list("creator_id", flat=True)
    )
    if not creators:
        return []
    free = set()
    for quota in Quota.objects.filter(creator_id__in=creators):
        limits = _limits(quota)
        if not limits.suspended and quota.running_jobs < limits.concurrent_jobs:
            free.add(quota.creator_id)
    order = [creator_id for creator_id in creators if creator_id in free]
    admitted: list[Job] = []
    while order and len(admitted) < at_most:
        still = []
        for creator_id in order[: at_most - len(admitted)]:
            if (job := _admit_next(creator_id)) is not None:
                admitted.append(job)
                still.append(creator_id)
        order = still
    return admitted


def _check_allowed(job: Job, limits: Limits) -> None:
    if not limits.allows_provider(job.provider):
        raise QuotaExceeded(
            f"{job.provider_label} is not among the providers your account may use; "
            "ask the studio's admin."
        )
    if refusal := limits.resolution_refusal(job.resolution):
        raise QuotaExceeded(refusal)


def _clips(count: int) -> str:
    return "This clip" if count == 1 else f"These {count} clips"


def _which_limit(usage: Usage, limits: Limits, cost: Decimal, seconds: int, count: int) -> str:
    budget = limits.monthly_budget + usage.granted_usd
    verb = "costs" if count == 1 else "cost"
    if usage.usd + cost > budget:
        left = max(Decimal("0"), budget - usage.usd)
        if usage.granted_usd:
            which = (
                f"your budget this month is ${budget} (${limits.monthly_budget} plus "
                f"${usage.granted_usd} granted)"
            )
        else:
            which = f"your monthly budget is ${budget}"
        return f"{_clips(count)} {verb} ${cost}; {which} and ${left:.2f} is left this month."
    seconds_left = max(0, limits.monthly_seconds - usage.seconds)
    verb = "is" if count == 1 else "are"
    return (
        f"{_clips(count)} {verb} {seconds} s; your monthly allowance is "
        f"{limits.monthly_seconds} s of video and {seconds_left} s is left this month."
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
        seconds=0, month=_reserved_month(job), reason=reason[:200],
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


@transaction.atomic
def reprice(job: Job, cost: Decimal, *, reason: str) -> None:
    """Change a reserved job's price (failover to another provider): a rise must fit the
    month's budget (QuotaExceeded otherwise), a fall gives the difference back."""
    difference = cost - job.estimated_cost
    month = _reserved_month(job)
    if difference > 0:
        limits = limits_of(job.creator)
        took = Usage.objects.filter(
            creator_id=job.creator_id,
            month=month,
            usd__lte=F("granted_usd") + (limits.monthly_budget - difference),
        ).update(usd=F("usd") + difference)
        if not took:
            raise QuotaExceeded(f"The other provider costs ${difference} more than is left.")
    else:
        Usage.objects.filter(creator_id=job.creator_id, month=month).update(
            usd=F("usd") + difference
        )
    LedgerEntry.objects.create(
        creator_id=job.creator_id, job=job, kind=LedgerEntry.Kind.REPRICE, usd=difference,
        seconds=0, month=month, reason=reason[:200],
    )  # fmt: skip


def _reservation(job: Job) -> LedgerEntry:
    """What the job holds: its reservation, with any repricing, in the month it was made."""
    held = LedgerEntry.objects.filter(job=job, kind__in=HOLDING).aggregate(
        usd=Sum("usd"), seconds=Sum("seconds")
    )
    return LedgerEntry(usd=held["usd"], seconds=held["seconds"], month=_reserved_month(job))


def _reserved_month(job: Job) -> date:
    """The month the job's reservation counts in (it stays there when the month turns)."""
    return (
        LedgerEntry.objects.filter(job=job, kind=LedgerEntry.Kind.RESERVE)
        .values_list("month", flat=True)
        .get()
    )


def _free_slot(job: Job) -> None:
    """Give back the job's running slot (once; a waiting job holds none), and hand it to the
    creator's next waiting job once this commits. The follower admits that job itself
    should the hand-over be lost, from `admit_due_at` on."""
    if not Job.objects.filter(pk=job.pk, holds_slot=True).update(holds_slot=False):
        return
    job.holds_slot = False
    Quota.objects.filter(creator_id=job.creator_id, running_jobs__gt=0).update(
        running_jobs=F("running_jobs") - 1, admit_due_at=timezone.now() + Job.TASK_GRACE
    )
    creator_id = job.creator_id
    transaction.on_commit(lambda: _hand_over(creator_id))


# An admin's changes to a creator's allowance, each written with its ledger row.


@transaction.atomic
def grant(creator: User, usd: Decimal, *, by: str) -> None:
    """Extra budget for this month only, on top of the creator's monthly budget."""
    if usd <= 0:
        raise ValueError("An extra budget must be more than $0.")
    month = this_month()
    usage = _row(Usage, creator=creator, month=month)
    Usage.objects.filter(pk=usage.pk).update(granted_usd=F("granted_usd") + usd)
    LedgerEntry.objects.create(
        creator=creator, kind=LedgerEntry.Kind.GRANT, usd=usd, seconds=0, month=month,
        reason=f"granted by {by}",
    )  # fmt: skip


@transaction.atomic
def reset_month(creator: User, *, by: str) -> None:
    """Start the creator's month afresh: spend and seconds go back to what jobs still
    running have reserved (their settle or refund comes later, as usual)."""
    month = this_month()
    usage = _row(Usage, creator=creator, month=month)
    # Locked, so no reservation or refund lands between reading and writing.
    usage = Usage.objects.select_for_update().get(pk=usage.pk)
    held = LedgerEntry.objects.filter(
        creator=creator, month=month, kind__in=HOLDING, job__charge=Job.Charge.RESERVED
    ).aggregate(usd=Sum("usd"), seconds=Sum("seconds"))
    usd = usage.usd - (held["usd"] or Decimal("0"))
    seconds = usage.seconds - (held["seconds"] or 0)
    Usage.objects.filter(pk=usage.pk).update(usd=F("usd") - usd, seconds=F("seconds") - seconds)
    LedgerEntry.objects.create(
        creator=creator, kind=LedgerEntry.Kind.RESET, usd=-usd, seconds=-seconds, month=month,
        reason=f"reset by {by}",
    )  # fmt: skip


def suspend(creator: User, *, by: str) -> bool:
    """No new jobs until resumed; jobs already running finish, and those waiting for a slot
    wait until then. False if already suspended."""
    return _set_suspended(creator, True, LedgerEntry.Kind.SUSPEND, f"suspended by {by}")


def resume(creator: User, *, by: str) -> bool:
    """New jobs again, and the jobs that waited meanwhile start as slots allow."""
    resumed = _set_suspended(creator, False, LedgerEntry.Kind.RESUME, f"resumed by {by}")
    if resumed:
        admit(creator.pk)
    return resumed


@transaction.atomic
def _set_suspended(creator: User, suspended: bool, kind: str, reason: str) -> bool:
    quota = _row(Quota, creator=creator)
    if not Quota.objects.filter(pk=quota.pk, suspended=not suspended).update(suspended=suspended):
        return False
    LedgerEntry.objects.create(
        creator=creator, kind=kind, usd=Decimal("0"), seconds=0, month=this_month(),
        reason=reason,
    )  # fmt: skip
    return True
