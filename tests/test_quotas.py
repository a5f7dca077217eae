import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse

from studio import jobs, quotas
from studio.models import Job, LedgerEntry, Quota, Usage
from studio.providers.base import (
    AccountError,
    Billing,
    ContentPolicyError,
    Handle,
    InvalidRequestError,
    Provider,
    ProviderError,
    SubmitUncertainError,
)
from tests.factories import (
    create_job,
    create_jobs,
    make_creator,
    price_of,
    radio,
    set_price,
    text_job,
)


def fal_job(creator, duration=8):
    """A $0.40 job (fal, 720p, audio, 8 s) that is never sent anywhere."""
    return create_job(
        creator=creator, provider="fal", mode="text", prompt="rain", duration=duration,
        resolution="720p", aspect="16:9", audio=True,
    )  # fmt: skip


def usage(creator) -> Usage:
    return Usage.objects.get(creator=creator, month=quotas.this_month())


def test_submitting_reserves_price_seconds_and_a_free_slot(creator):
    job = fal_job(creator)
    assert (job.charge, job.status, job.holds_slot) == (Job.Charge.RESERVED, "queued", True)
    assert (usage(creator).usd, usage(creator).seconds) == (Decimal("0.40"), 8)
    assert Quota.objects.get(creator=creator).running_jobs == 1
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.usd, entry.seconds, entry.job) == ("reserve", Decimal("0.40"), 8, job)


def test_success_settles_once_and_frees_the_slot(creator):
    job = fal_job(creator)
    quotas.settle(job)
    quotas.settle(job)
    job.refresh_from_db()
    assert job.charge == Job.Charge.SETTLED
    assert usage(creator).usd == Decimal("0.40")
    assert Quota.objects.get(creator=creator).running_jobs == 0
    assert list(LedgerEntry.objects.values_list("kind", flat=True)) == ["settle", "reserve"]


def test_failure_refunds_exactly_once(creator):
    job = fal_job(creator)
    jobs.fail(
        job,
        [Job.Status.QUEUED],
        "The provider said no.",
        billing=Billing.NOT_BILLED,
        kind="provider",
    )
    quotas.refund(job, "again")
    job.refresh_from_db()
    assert job.charge == Job.Charge.REFUNDED
    assert (usage(creator).usd, usage(creator).seconds) == (Decimal("0.00"), 0)
    assert Quota.objects.get(creator=creator).running_jobs == 0
    assert LedgerEntry.objects.filter(kind="refund").count() == 1


def test_cancel_refunds(creator):
    job = fal_job(creator)
    jobs.cancel(job)
    job.refresh_from_db()
    assert (job.charge, usage(creator).usd) == (Job.Charge.REFUNDED, Decimal("0.00"))


def test_ledger_rows_add_up_to_usage(creator):
    made, failed, cancelled = fal_job(creator), fal_job(creator, 4), fal_job(creator, 6)
    quotas.settle(made)
    quotas.refund(failed, "failed")
    jobs.cancel(cancelled)
    rows = LedgerEntry.objects.filter(creator=creator)
    assert sum(r.usd for r in rows) == usage(creator).usd == Decimal("0.40")
    assert sum(r.seconds for r in rows) == usage(creator).seconds == 8


def test_budget_limit_is_named(creator):
    Quota.objects.create(creator=creator, monthly_budget=Decimal("0.50"))
    fal_job(creator)
    with pytest.raises(quotas.QuotaExceeded) as refused:
        fal_job(creator)
    assert str(refused.value) == (
        "This clip costs $0.40; your monthly budget is $0.50 and $0.10 is left this month."
    )


def test_seconds_limit_is_named(creator):
    Quota.objects.create(creator=creator, monthly_seconds=10)
    text_job(creator)
    text_job(creator)
    with pytest.raises(quotas.QuotaExceeded, match="monthly allowance is 10 s of video and 2 s"):
        text_job(creator)


def test_a_job_past_the_running_jobs_limit_waits_and_starts_when_a_slot_frees(
    creator, django_capture_on_commit_callbacks
):
    Quota.objects.create(creator=creator, concurrent_jobs=1)
    first = text_job(creator)
    second = text_job(creator)
    assert (second.status, second.charge, second.holds_slot) == ("waiting", "reserved", False)
    assert Quota.objects.get(creator=creator).running_jobs == 1
    with django_capture_on_commit_callbacks(execute=True):
        jobs.cancel(first)
    second.refresh_from_db()
    assert (second.status, second.holds_slot) == ("queued", True)
    assert Quota.objects.get(creator=creator).running_jobs == 1


def test_an_account_that_may_run_no_jobs_at_once_is_refused(creator):
    Quota.objects.create(creator=creator, concurrent_jobs=0)
    with pytest.raises(quotas.QuotaExceeded, match="may not run any jobs at once"):
        text_job(creator)
    assert not Job.objects.exists()


def test_a_suspended_creator_cannot_submit(creator):
    Quota.objects.create(creator=creator, suspended=True)
    with pytest.raises(quotas.QuotaExceeded, match="suspended"):
        text_job(creator)


def test_a_refused_submit_names_the_limit_on_the_form_and_queues_nothing(
    signed_in, creator, settings
):
    settings.FAL_KEY = "k"
    Quota.objects.create(creator=creator, monthly_budget=Decimal("0.30"))
    response = signed_in.post(
        reverse("create"),
        {"mode": "text", "prompt": "rain", "provider": "fal", "duration": "8",
         "resolution": "720p", "aspect": "16:9", "audio": "on"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "your monthly budget is $0.30 and $0.30 is left" in response.content.decode()
    assert not Job.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_the_meter_shows_what_is_left(signed_in, creator):
    Quota.objects.create(creator=creator, monthly_budget=Decimal("10"), monthly_seconds=200)
    fal_job(creator)
    page = signed_in.get(reverse("create")).content.decode()
    assert "This month: $0.40 of $10.00" in page
    assert "8 s of 200 s" in page and "1 of 3 running" in page
    assert "waiting" not in page


def test_the_meter_counts_the_jobs_waiting_for_a_slot(signed_in, creator):
    Quota.objects.create(creator=creator, concurrent_jobs=1)
    for _ in range(3):
        fal_job(creator)
    assert (quotas.meter(creator).running, quotas.meter(creator).waiting) == (1, 2)
    page = signed_in.get(reverse("create")).content.decode()
    assert "1 of 1 running · 2 waiting" in page


def test_the_job_says_it_was_not_charged(signed_in, creator):
    job = fal_job(creator)
    jobs.fail(
        job,
        [Job.Status.QUEUED],
        "The provider said no.",
        billing=Billing.NOT_BILLED,
        kind="provider",
    )
    page = signed_in.get(reverse("job", args=[job.pk])).content.decode()
    assert "$0.40 · not charged" in page


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_submits_against_room_for_ten_accept_exactly_ten():
    creator = make_creator("race")
    cost = price_of(provider="fal", mode="text", resolution="720p", audio=True, seconds=8)
    Quota.objects.create(creator=creator, monthly_budget=cost * 10, concurrent_jobs=50)
    accepted, refused = [], []
    start = threading.Barrier(50)

    def submit():
        start.wait()
        try:
            fal_job(creator)
            accepted.append(1)
        except quotas.QuotaExceeded:
            refused.append(1)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(accepted), len(refused)) == (10, 40)
    assert Job.objects.count() == 10
    assert usage(creator).usd == cost * 10
    assert LedgerEntry.objects.count() == 10


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_start_at_most_the_running_jobs_limit():
    creator = make_creator("race2")
    Quota.objects.create(creator=creator, concurrent_jobs=3)
    results = []
    start = threading.Barrier(20)

    def submit():
        start.wait()
        try:
            text_job(creator)
            results.append(True)
        except quotas.QuotaExceeded:
            results.append(False)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 20  # all accepted: the rest wait for a slot
    statuses = list(Job.objects.values_list("status", flat=True))
    assert (statuses.count("queued"), statuses.count("waiting")) == (3, 17)
    assert Quota.objects.get(creator=creator).running_jobs == 3
    assert Job.objects.filter(holds_slot=True).count() == 3


class BillingProvider(Provider):
    """Accepts a job, then fails it at poll as it is told to (a test double for billing)."""

    name = "billing"
    label = "Billing test"
    error: ProviderError = ProviderError("It broke.")
    submit_error: ProviderError | None = None

    def submit(self, request):
        if self.submit_error:
            raise self.submit_error
        return Handle("remote-1")

    def poll(self, handle):
        raise self.error


@pytest.fixture
def billing(register_provider):
    register_provider(BillingProvider)
    set_price("billing", "0.05")
    return BillingProvider


def run_to_failure(creator) -> Job:
    job = create_job(
        creator=creator, provider="billing", mode="text", prompt="rain", duration=8,
        resolution="720p", aspect="16:9", audio=True,
    )  # fmt: skip
    jobs.submit(job.pk)
    job.refresh_from_db()
    if job.status == Job.Status.SUBMITTED:
        jobs.refresh_status(job)
        job.refresh_from_db()
    return job


@pytest.mark.parametrize(
    ("error", "charge", "says"),
    [
        (
            ContentPolicyError("No.", billing=Billing.NOT_BILLED),
            "refunded",
            "You were not charged.",
        ),
        (ProviderError("Refused.", billing=Billing.BILLED), "settled", "so $0.40 was charged."),
        (
            InvalidRequestError("422.", billing=Billing.MAY_BE_BILLED),
            "settled",
            "may bill for this",
        ),
    ],
)
def test_a_failure_at_the_provider_follows_its_billing(
    creator, billing, monkeypatch, error, charge, says
):
    monkeypatch.setattr(billing, "error", error)
    job = run_to_failure(creator)
    assert (job.status, job.charge) == (Job.Status.FAILED, charge)
    assert says in job.error
    spent = Decimal("0.40") if charge == "settled" else Decimal("0.00")
    assert usage(creator).usd == spent
    assert Quota.objects.get(creator=creator).running_jobs == 0


def test_a_refused_submit_is_never_charged(creator, billing, monkeypatch):
    monkeypatch.setattr(billing, "submit_error", AccountError("No credit."))
    job = run_to_failure(creator)
    assert (job.status, job.charge) == (Job.Status.FAILED, "refunded")
    assert job.error == "No credit. You were not charged."
    assert job.error_kind == Job.ErrorKind.ACCOUNT


def test_a_lost_submit_answer_counts_as_charged(creator, billing, monkeypatch):
    monkeypatch.setattr(billing, "submit_error", SubmitUncertainError("The answer was lost."))
    job = run_to_failure(creator)
    assert (job.status, job.charge) == (Job.Status.FAILED, "settled")
    assert job.error_kind == Job.ErrorKind.SUBMIT_UNCERTAIN
    assert usage(creator).usd == Decimal("0.40")


def ledger_adds_up(creator) -> bool:
    """Usage is what the ledger says: reservations, refunds and resets sum to the spend and
    seconds, grants to the extra budget."""
    rows = LedgerEntry.objects.filter(creator=creator, month=quotas.this_month())
    moves = rows.filter(kind__in=["reserve", "refund", "reset", "settle"])
    row = usage(creator)
    return (
        sum(r.usd for r in moves) == row.usd
        and sum(r.seconds for r in moves) == row.seconds
        and sum(r.usd for r in rows.filter(kind="grant")) == row.granted_usd
    )


def fal_batch(creator, count: int, **options) -> list[Job]:
    return create_jobs(
        creator=creator, provider="fal", mode="text", prompt="rain", duration=8,
        resolution="720p", aspect="16:9", audio=True,
        variations=[{"seed": seed} for seed in range(count)], **options,
    )  # fmt: skip


def test_a_batch_is_reserved_all_together(creator):
    made = fal_batch(creator, 3)
    assert [job.seed for job in made] == [0, 1, 2]
    assert len({job.batch for job in made}) == 1 and made[0].batch is not None
    assert (usage(creator).usd, usage(creator).seconds) == (Decimal("1.20"), 24)
    assert Quota.objects.get(creator=creator).running_jobs == 3
    assert LedgerEntry.objects.filter(kind="reserve").count() == 3
    assert ledger_adds_up(creator)


def test_a_batch_that_does_not_fit_the_budget_is_refused_whole(creator):
    Quota.objects.create(creator=creator, monthly_budget=Decimal("1.00"), concurrent_jobs=10)
    with pytest.raises(quotas.QuotaExceeded, match=r"These 3 clips cost \$1.20.*\$1.00 is left"):
        fal_batch(creator, 3)
    assert not Job.objects.exists() and not LedgerEntry.objects.exists()
    assert Quota.objects.get(creator=creator).running_jobs == 0
    assert len(fal_batch(creator, 2)) == 2  # what does fit still goes through


def test_a_batch_bigger_than_the_free_slots_starts_what_fits_and_the_rest_wait(creator):
    Quota.objects.create(creator=creator, concurrent_jobs=3)
    fal_job(creator)
    made = fal_batch(creator, 3)
    assert [job.status for job in made] == ["queued", "queued", "waiting"]
    assert all(job.charge == Job.Charge.RESERVED for job in made)
    assert usage(creator).usd == Decimal("1.60")  # every clip's money, all together
    assert Quota.objects.get(creator=creator).running_jobs == 3
    assert ledger_adds_up(creator)


def test_a_creator_may_be_limited_to_some_providers_and_resolutions(creator):
    Quota.objects.create(creator=creator, allowed_providers=["local"], allowed_resolutions=["720p"])
    with pytest.raises(quotas.QuotaExceeded, match=r"fal\.ai is not among the providers"):
        fal_job(creator)
    with pytest.raises(quotas.QuotaExceeded, match="may make 720p clips, not 1080p"):
        create_job(
            creator=creator, provider="local", mode="text", prompt="rain", duration=4,
            resolution="1080p", aspect="16:9", audio=False,
        )  # fmt: skip
    assert text_job(creator).charge == Job.Charge.RESERVED
    assert Job.objects.count() == 1


def test_site_defaults_limit_providers_for_creators_without_their_own(creator, settings):
    settings.STUDIO_DEFAULT_PROVIDERS = ["local"]
    with pytest.raises(quotas.QuotaExceeded, match="not among the providers"):
        fal_job(creator)
    Quota.objects.create(creator=creator, allowed_providers=["fal", "local"])
    assert fal_job(creator).charge == Job.Charge.RESERVED


def test_the_form_disables_what_the_account_may_not_use(signed_in, creator):
    Quota.objects.create(creator=creator, allowed_providers=["local"], allowed_resolutions=["720p"])
    page = signed_in.get(reverse("create")).content.decode()
    assert " disabled" in radio(page, "provider", "fal")
    assert " disabled" in radio(page, "resolution", "1080p")
    assert " disabled" not in radio(page, "resolution", "720p")
    panel = signed_in.get(
        reverse("options"), {"provider": "fal", "duration": "8", "resolution": "720p"}
    ).content.decode()
    assert "your account may not use it" in panel
    sent = signed_in.post(reverse("create"), {
        "mode": "text", "prompt": "rain", "provider": "local", "duration": "4",
        "resolution": "1080p", "aspect": "16:9",
    })  # fmt: skip
    assert "may make 720p clips, not 1080p" in sent.content.decode()
    assert not Job.objects.exists()


def test_a_grant_raises_this_months_budget_only(creator):
    Quota.objects.create(creator=creator, monthly_budget=Decimal("0.40"), concurrent_jobs=5)
    fal_job(creator)
    with pytest.raises(quotas.QuotaExceeded, match=r"monthly budget is \$0.40 and"):
        fal_job(creator)
    quotas.grant(creator, Decimal("0.80"), by="admin")
    fal_job(creator)
    fal_job(creator)
    with pytest.raises(
        quotas.QuotaExceeded,
        match=r"budget this month is \$1.20 \(\$0.40 plus \$0.80 granted\) and \$0.00 is left",
    ):
        fal_job(creator)
    assert quotas.meter(creator).budget == Decimal("1.20")
    assert LedgerEntry.objects.get(kind="grant").reason == "granted by admin"
    assert ledger_adds_up(creator)
    with pytest.raises(ValueError, match="more than"):
        quotas.grant(creator, Decimal("0"), by="admin")


def test_a_reset_keeps_what_running_jobs_hold_and_refunds_still_balance(creator):
    done, running = fal_job(creator), fal_job(creator, duration=4)
    quotas.settle(done)
    quotas.reset_month(creator, by="admin")
    assert (usage(creator).usd, usage(creator).seconds) == (Decimal("0.20"), 4)
    quotas.refund(running, "failed")
    assert (usage(creator).usd, usage(creator).seconds) == (Decimal("0.00"), 0)
    reset = LedgerEntry.objects.get(kind="reset")
    assert (reset.usd, reset.seconds, reset.reason) == (Decimal("-0.40"), -8, "reset by admin")
    assert ledger_adds_up(creator)


def test_suspending_stops_new_jobs_until_resumed_each_once(creator):
    running = fal_job(creator)
    assert quotas.suspend(creator, by="admin")
    assert not quotas.suspend(creator, by="admin")
    with pytest.raises(quotas.QuotaExceeded, match="suspended"):
        fal_job(creator)
    quotas.settle(running)  # work in flight still finishes and is charged
    assert quotas.resume(creator, by="admin")
    assert not quotas.resume(creator, by="admin")
    assert fal_job(creator).charge == Job.Charge.RESERVED
    kinds = list(LedgerEntry.objects.filter(kind__in=["suspend", "resume"]).values_list("kind"))
    assert kinds == [("resume",), ("suspend",)]


@pytest.mark.parametrize(
    ("zone", "utc", "month"),
    [
        # 30 Nov 12:00 UTC is already 1 Dec in Auckland (UTC+13 in summer).
        ("Pacific/Auckland", "2026-11-30T12:00:00", "2026-12-01"),
        ("Pacific/Auckland", "2026-11-30T10:59:59", "2026-11-01"),
        # 1 Dec 03:00 UTC is still 30 Nov in Los Angeles (UTC-8).
        ("America/Los_Angeles", "2026-12-01T03:00:00", "2026-11-01"),
        ("America/Los_Angeles", "2026-12-01T08:00:00", "2026-12-01"),
        ("UTC", "2026-12-31T23:59:59", "2026-12-01"),
        ("UTC", "2027-01-01T00:00:00", "2027-01-01"),
    ],
)
def test_months_are_calendar_months_in_the_sites_time_zone(
    creator, settings, monkeypatch, zone, utc, month
):
    from datetime import UTC, datetime

    from django.utils import timezone

    settings.TIME_ZONE = zone
    moment = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: moment)
    with timezone.override("Asia/Tokyo"):  # a zone a request might activate does not count
        job = fal_job(creator)
    assert str(LedgerEntry.objects.get(job=job).month) == month
    assert str(Usage.objects.get(creator=creator).month) == month


def test_a_refund_after_the_month_turns_gives_back_to_the_month_it_was_taken_from(
    creator, monkeypatch
):
    from datetime import UTC, datetime

    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 11, 30, 23, 0, tzinfo=UTC))
    job = fal_job(creator)
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    quotas.refund(job, "failed")
    november = Usage.objects.get(creator=creator, month="2026-11-01")
    assert (november.usd, november.seconds) == (Decimal("0.00"), 0)
    assert not Usage.objects.filter(creator=creator, month="2026-12-01").exists()
    assert quotas.meter(creator).usd == Decimal("0")
