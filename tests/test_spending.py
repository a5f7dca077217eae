from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from studio import quotas, spending
from studio.models import Job, Quota
from tests.factories import create_job, make_creator


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def job(creator, provider: str, cost: str, created: str, status: str, charge: str, **fields):
    """A job as it stands after its life: only the figures the dashboard reads."""
    return Job.objects.create(
        creator=creator, provider=provider, mode="text", prompt="rain", duration=8,
        resolution="720p", aspect="16:9", estimated_cost=Decimal(cost), created_at=at(created),
        status=status, charge=charge, **fields,
    )  # fmt: skip


def succeeded(creator, provider: str, cost: str, created: str, seconds: int):
    start = at(created) + timedelta(seconds=5)
    return job(
        creator, provider, cost, created, Job.Status.SUCCEEDED, Job.Charge.SETTLED,
        submitted_at=start, finished_at=start + timedelta(seconds=seconds),
    )  # fmt: skip


@pytest.fixture
def november(creator, other_creator):
    """A month of jobs at two providers, with one job either side of the month."""
    ana, ben = creator, other_creator
    succeeded(ana, "fal", "0.40", "2026-11-02T10:00:00", seconds=60)
    succeeded(ana, "fal", "0.24", "2026-11-02T18:00:00", seconds=90)
    succeeded(ben, "fal", "0.80", "2026-11-17T09:00:00", seconds=120)
    succeeded(ben, "gemini", "0.64", "2026-11-30T23:59:59", seconds=200)
    # Billed failures count as spend; refunded ones and cancels do not.
    job(ana, "fal", "0.40", "2026-11-03T10:00:00", Job.Status.FAILED, Job.Charge.SETTLED)
    job(ana, "gemini", "0.40", "2026-11-04T10:00:00", Job.Status.FAILED, Job.Charge.REFUNDED)
    job(ben, "gemini", "0.40", "2026-11-05T10:00:00", Job.Status.CANCELLED, Job.Charge.REFUNDED)
    job(ben, "gemini", "0.32", "2026-11-20T10:00:00", Job.Status.RUNNING, Job.Charge.RESERVED)
    # Outside November.
    succeeded(ana, "fal", "9.99", "2026-10-31T23:59:59", seconds=10)
    succeeded(ana, "fal", "9.99", "2026-12-01T00:00:00", seconds=10)


def test_spend_is_settled_charges_counted_on_their_day(november):
    figures = spending.month_figures(date(2026, 11, 1))
    assert figures.usd == Decimal("2.48")
    assert figures.held_usd == Decimal("0.32")
    assert figures.in_flight == 1
    assert len(figures.days) == 30
    spent = {day.day.day: day.usd for day in figures.days if day.usd}
    assert spent == {
        2: Decimal("0.64"), 3: Decimal("0.40"), 17: Decimal("0.80"), 30: Decimal("0.64")
    }  # fmt: skip
    assert sum(day.usd for day in figures.days) == figures.usd


def test_spend_per_provider_with_failure_rate_and_median_generation_time(november):
    fal, gemini = spending.month_figures(date(2026, 11, 1)).providers
    assert (fal.provider, fal.label, fal.usd) == ("fal", "fal.ai", Decimal("1.84"))
    assert (fal.jobs, fal.succeeded, fal.failed, fal.cancelled, fal.in_flight) == (4, 3, 1, 0, 0)
    assert fal.failed / fal.ended == 0.25
    assert fal.median_generation == timedelta(seconds=90)
    assert (gemini.usd, gemini.jobs, gemini.in_flight) == (Decimal("0.64"), 4, 1)
    # One success and one failure; the cancelled job is neither.
    assert gemini.failed / gemini.ended == 0.5
    assert gemini.median_generation == timedelta(seconds=200)


def test_spend_per_creator_biggest_first(november, creator, other_creator):
    rows = spending.month_figures(date(2026, 11, 1)).creators
    assert [(row.username, row.usd, row.charged_jobs) for row in rows] == [
        ("ben", Decimal("1.44"), 2),
        ("ana", Decimal("1.04"), 3),
    ]


def test_a_month_without_jobs_is_all_zero(db):
    figures = spending.month_figures(date(2027, 2, 1))
    assert (figures.usd, figures.held_usd, figures.in_flight) == (Decimal("0"), Decimal("0"), 0)
    assert len(figures.days) == 28 and not figures.providers and not figures.creators


def test_an_even_number_of_generation_times_takes_the_middle_two(creator):
    for seconds in (10, 20, 40, 1000):
        succeeded(creator, "fal", "0.40", "2026-11-10T10:00:00", seconds=seconds)
    (fal,) = spending.month_figures(date(2026, 11, 1)).providers
    assert fal.median_generation == timedelta(seconds=30)


def test_months_and_days_are_the_sites_time_zone(creator, settings):
    # 30 Nov 12:00 UTC is already 1 Dec in Auckland (UTC+13 in summer).
    succeeded(creator, "fal", "0.40", "2026-11-30T10:59:59", seconds=60)
    succeeded(creator, "fal", "0.80", "2026-11-30T12:00:00", seconds=60)
    settings.TIME_ZONE = "Pacific/Auckland"
    november = spending.month_figures(date(2026, 11, 1))
    december = spending.month_figures(date(2026, 12, 1))
    assert (november.usd, november.days[-1].usd) == (Decimal("0.40"), Decimal("0.40"))
    assert (december.usd, december.days[0].usd) == (Decimal("0.80"), Decimal("0.80"))
    settings.TIME_ZONE = "UTC"
    assert spending.month_figures(date(2026, 11, 1)).days[-1].usd == Decimal("1.20")
    assert spending.month_figures(date(2026, 12, 1)).usd == Decimal("0")


def test_a_delivered_clip_through_the_engine_is_spend(creator):
    made = create_job(
        creator=creator, provider="fal", mode="text", prompt="rain", duration=8,
        resolution="720p", aspect="16:9", audio=True,
    )  # fmt: skip
    held = spending.month_figures(quotas.this_month())
    assert (held.usd, held.held_usd) == (Decimal("0"), Decimal("0.40"))
    quotas.settle(made)
    charged = spending.month_figures(quotas.this_month())
    assert (charged.usd, charged.held_usd) == (Decimal("0.40"), Decimal("0"))


# Each creator's month against their limits, as the creators list shows it.


def fal_job(creator, duration: int = 8) -> Job:
    """$0.05 a second (fal, 720p, audio)."""
    return create_job(
        creator=creator, provider="fal", mode="text", prompt="rain", duration=duration,
        resolution="720p", aspect="16:9", audio=True,
    )  # fmt: skip


def creators():
    return spending.with_meter(get_user_model().objects.all(), quotas.this_month())


def test_the_meter_columns_agree_with_the_quotas_meter(creator, other_creator, settings):
    settings.STUDIO_DEFAULT_MONTHLY_BUDGET = "7.50"
    Quota.objects.create(
        creator=creator, monthly_budget=Decimal("2.00"), monthly_seconds=100, concurrent_jobs=5
    )
    fal_job(creator)
    quotas.settle(fal_job(creator, 4))
    quotas.grant(creator, Decimal("1.25"), by="boss")
    Quota.objects.create(creator=other_creator, concurrent_jobs=1)
    fal_job(other_creator)
    fal_job(other_creator)  # waits for a slot
    quotas.suspend(other_creator, by="boss")
    make_creator("cy")  # no quota, no usage
    for row in creators():
        meter = quotas.meter(row)
        assert (row.spent_usd, row.granted_usd, row.budget_usd) == (
            meter.usd, meter.granted, meter.budget,
        )  # fmt: skip
        assert (row.used_seconds, row.seconds_limit) == (
            meter.seconds,
            meter.limits.monthly_seconds,
        )
        assert (row.running, row.concurrent_limit) == (meter.running, meter.limits.concurrent_jobs)
        assert row.waiting == meter.waiting
        assert row.is_suspended == meter.limits.suspended
    ana = creators().get(username="ana")
    assert (ana.spent_usd, ana.budget_usd, ana.used_seconds, ana.running) == (
        Decimal("0.60"), Decimal("3.25"), 12, 1,
    )  # fmt: skip
    assert (creators().get(username="ben").running, creators().get(username="ben").waiting) == (
        1, 1,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("budget", "seconds", "near", "over"),
    [
        ("0.51", 600, False, False),  # $0.40 of $0.51: 78%
        ("0.50", 600, True, False),  # exactly 80%
        ("0.40", 600, True, True),  # exactly 100%
        ("0.30", 600, True, True),  # past it: the budget was lowered after the spend
        ("10", 11, False, False),  # 8 s of 11 s: 73%
        ("10", 10, True, False),  # 8 s of 10 s: 80%
        ("10", 8, True, True),
    ],
)
def test_near_and_over_a_limit(creator, budget, seconds, near, over):
    fal_job(creator)  # $0.40 and 8 s
    Quota.objects.filter(creator=creator).update(
        monthly_budget=Decimal(budget), monthly_seconds=seconds
    )
    assert spending.using_at_least(creators(), 80).exists() is near
    assert spending.using_at_least(creators(), 100).exists() is over


def test_grants_count_in_the_budget_a_share_is_taken_of(creator):
    Quota.objects.create(creator=creator, monthly_budget=Decimal("0.40"))
    fal_job(creator)
    assert spending.using_at_least(creators(), 100).exists()
    quotas.grant(creator, Decimal("0.10"), by="boss")
    assert not spending.using_at_least(creators(), 100).exists()
    assert spending.using_at_least(creators(), 80).exists()
