"""What the studio spends, read for the admin: each creator's month against their limits, and
a month's figures for the dashboard. Read-only; studio/quotas.py writes usage and limits.

*Spend* is money charged: the price of every job whose charge is settled (a delivered clip,
or a failure the provider bills or may bill for), counted on the day the job was submitted,
in the site's time zone (TIME_ZONE), like the quotas' months. Reservations of jobs still in
flight are not spend yet and are counted apart; refunds are never spend; grants and resets
change a creator's allowance, not what was spent.
"""

from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Round, TruncDate
from django.db.models.lookups import GreaterThanOrEqual
from django.utils import timezone

from studio.models import Job, Usage
from studio.pricing import CENT
from studio.providers.registry import LABELS, label

ZERO = Decimal("0.00")


def _cents(usd: Decimal | None) -> Decimal:
    # Sums come back from SQLite with a float's digits; money is kept to the cent.
    return (usd or ZERO).quantize(CENT)


def with_meter(creators: QuerySet, month: date) -> QuerySet:
    """`creators` (users) annotated with `month`'s meter as quotas.meter reads it, in the same
    query whatever the number of rows: spent_usd, granted_usd, budget_usd (the monthly budget
    plus grants), used_seconds, seconds_limit, running, concurrent_limit, waiting (jobs in
    Studio's queue for a slot), is_suspended.
    On SQLite the dollar figures come with a float's digits: show them to the cent."""
    usage = Usage.objects.filter(creator=OuterRef("pk"), month=month)

    def used(field: str, zero: object) -> Coalesce:
        return Coalesce(Subquery(usage.values(field)[:1]), Value(zero))

    annotated: QuerySet = creators.annotate(
        spent_usd=used("usd", ZERO),
        granted_usd=used("granted_usd", ZERO),
        used_seconds=used("seconds", 0),
        # A quota's empty field means the site's default, as in quotas.limits_of.
        budget_usd=Coalesce(
            "quota__monthly_budget", Value(Decimal(settings.STUDIO_DEFAULT_MONTHLY_BUDGET))
        )
        + F("granted_usd"),
        seconds_limit=Coalesce(
            "quota__monthly_seconds", Value(settings.STUDIO_DEFAULT_MONTHLY_SECONDS)
        ),
        running=Coalesce("quota__running_jobs", Value(0)),
        concurrent_limit=Coalesce(
            "quota__concurrent_jobs", Value(settings.STUDIO_DEFAULT_CONCURRENT_JOBS)
        ),
        is_suspended=Coalesce("quota__suspended", Value(False)),
        waiting=Coalesce(
            Subquery(
                Job.objects.filter(creator=OuterRef("pk"), status=Job.Status.WAITING)
                .order_by()
                .values("creator")
                .annotate(n=Count("pk"))
                .values("n")[:1]
            ),
            Value(0),
        ),
    )
    return annotated


def using_at_least(creators: QuerySet, percent: int) -> QuerySet:
    """Creators from `with_meter` who have used at least `percent` of their budget (grants
    included) or of their seconds."""

    def cents(name: str) -> Cast:
        # Whole cents, so 80% of $0.35 is compared exactly; SQLite keeps decimals as floats.
        return Cast(Round(F(name) * 100), IntegerField())

    return creators.filter(
        Q(GreaterThanOrEqual(cents("spent_usd") * 100, cents("budget_usd") * percent))
        | Q(GreaterThanOrEqual(F("used_seconds") * 100, F("seconds_limit") * percent))
    )


@dataclass(frozen=True)
class DaySpend:
    day: date
    usd: Decimal


@dataclass(frozen=True)
class ProviderMonth:
    provider: str
    label: str
    usd: Decimal  # charged
    jobs: int
    succeeded: int
    failed: int
    cancelled: int
    in_flight: int
    median_generation: timedelta | None  # submitted → finished, of succeeded jobs

    @property
    def ended(self) -> int:
        """Jobs that succeeded or failed; a cancelled job is neither."""
        return self.succeeded + self.failed

    @property
    def median_seconds(self) -> float | None:
        if self.median_generation is None:
            return None
        return self.median_generation.total_seconds()


@dataclass(frozen=True)
class CreatorMonth:
    creator_id: int
    username: str
    usd: Decimal
    charged_jobs: int


@dataclass(frozen=True)
class MonthFigures:
    month: date
    usd: Decimal  # spend: settled charges
    held_usd: Decimal  # reserved by jobs still in flight: not spend yet
    in_flight: int
    days: list[DaySpend]  # every day of the month, spend or not
    providers: list[ProviderMonth]
    creators: list[CreatorMonth]  # the biggest spenders first


def month_span(month: date) -> tuple[datetime, datetime]:
    """The month's first instant and the next month's, in the site's time zone."""
    zone = timezone.get_default_timezone()
    after = next_month(month)
    return (
        datetime(month.year, month.month, 1, tzinfo=zone),
        datetime(after.year, after.month, 1, tzinfo=zone),
    )


def next_month(month: date) -> date:
    """The first day of the next month."""
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def jobs_of(month: date) -> QuerySet:
    """Jobs submitted in `month` (created, that is: when their price was reserved)."""
    start, end = month_span(month)
    return Job.objects.filter(created_at__gte=start, created_at__lt=end)


def month_figures(month: date) -> MonthFigures:
    jobs = jobs_of(month)
    charged = jobs.filter(charge=Job.Charge.SETTLED)
    per_day = dict(
        charged.annotate(day=TruncDate("created_at", tzinfo=timezone.get_default_timezone()))
        .values("day")
        .annotate(usd=Sum("estimated_cost"))
        .values_list("day", "usd")
    )
    days = [
        DaySpend(day, _cents(per_day.get(day)))
        for day in (
            month.replace(day=n) for n in range(1, monthrange(month.year, month.month)[1] + 1)
        )
    ]
    providers = _providers(jobs)
    held = jobs.filter(charge=Job.Charge.RESERVED).aggregate(usd=Sum("estimated_cost"))["usd"]
    creators = [
        CreatorMonth(row["creator_id"], row["creator__username"], _cents(row["usd"]), row["count"])
        for row in charged.values("creator_id", "creator__username")
        .annotate(usd=Sum("estimated_cost"), count=Count("pk"))
        .order_by("-usd", "creator__username")
    ]
    return MonthFigures(
        month=month,
        usd=sum((day.usd for day in days), ZERO),
        held_usd=_cents(held),
        in_flight=sum(row.in_flight for row in providers),
        days=days,
        providers=providers,
        creators=creators,
    )


def _providers(jobs: QuerySet) -> list[ProviderMonth]:
    def count(status_q: Q) -> Count:
        return Count("pk", filter=status_q)

    rows = jobs.values("provider").annotate(
        usd=Sum("estimated_cost", filter=Q(charge=Job.Charge.SETTLED)),
        jobs=Count("pk"),
        succeeded=count(Q(status=Job.Status.SUCCEEDED)),
        failed=count(Q(status=Job.Status.FAILED)),
        cancelled=count(Q(status=Job.Status.CANCELLED)),
        in_flight=count(~Q(status__in=Job.TERMINAL)),
    )
    times: dict[str, list[timedelta]] = {}
    for provider, submitted, finished in jobs.filter(
        status=Job.Status.SUCCEEDED, submitted_at__isnull=False, finished_at__isnull=False
    ).values_list("provider", "submitted_at", "finished_at"):
        times.setdefault(provider, []).append(finished - submitted)
    order = list(LABELS)
    return sorted(
        (
            ProviderMonth(
                provider=row["provider"],
                label=label(row["provider"]),
                usd=_cents(row["usd"]),
                jobs=row["jobs"],
                succeeded=row["succeeded"],
                failed=row["failed"],
                cancelled=row["cancelled"],
                in_flight=row["in_flight"],
                median_generation=_median(times.get(row["provider"], [])),
            )
            for row in rows
        ),
        key=lambda p: (order.index(p.provider) if p.provider in order else len(order), p.provider),
    )


def _median(times: list[timedelta]) -> timedelta | None:
    # statistics.median wants numbers; the middle of the sorted times is the same median.
    if not times:
        return None
    ordered = sorted(times)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
