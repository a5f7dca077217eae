from decimal import Decimal

import pytest
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.urls import reverse, reverse_lazy

from studio import jobs, quotas
from studio.models import Job, LedgerEntry, Quota
from studio.providers.base import Billing
from tests.factories import create_job, create_jobs, make_creator, text_job


def test_admin_cancel_action_goes_through_the_job_engine(client, creator):
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    queued = text_job(creator, "rain")
    done = text_job(creator, "sun")
    done.move([Job.Status.QUEUED], Job.Status.SUCCEEDED)
    response = client.post(
        reverse("admin:studio_job_changelist"),
        {"action": "cancel_jobs", helpers.ACTION_CHECKBOX_NAME: [queued.pk, done.pk]},
        follow=True,
    )
    queued.refresh_from_db()
    done.refresh_from_db()
    assert (queued.status, done.status) == (Job.Status.CANCELLED, Job.Status.SUCCEEDED)
    assert b"Cancelled 1 job(s)." in response.content
    assert b"1 job(s) had already finished" in response.content


def test_jobs_cannot_be_edited_by_hand_in_the_admin(client, creator):
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    job = text_job(creator, "rain")
    url = reverse("admin:studio_job_change", args=[job.pk])
    assert client.get(url).status_code == 200
    client.post(url, {"status": "succeeded", "prompt": "changed"})
    job.refresh_from_db()
    assert (job.status, job.prompt) == (Job.Status.QUEUED, "rain")


# The creators list


@pytest.fixture
def boss(client, db):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return user


CREATORS = reverse_lazy("admin:studio_creator_changelist")


def fal_job(creator, duration: int = 8) -> Job:
    """$0.05 a second (fal, 720p, with audio)."""
    return create_job(
        creator=creator, provider="fal", mode="text", prompt="rain", duration=duration,
        resolution="720p", aspect="16:9", audio=True,
    )  # fmt: skip


def act(client, action: str, *creators, **data):
    return client.post(
        CREATORS,
        {"action": action, helpers.ACTION_CHECKBOX_NAME: [c.pk for c in creators], **data},
        follow=True,
    )


def said(response) -> list[str]:
    """The admin's messages on the page a response ended at."""
    return [message.message for message in response.context["messages"]]


def listed(response) -> list[str]:
    return [row.username for row in response.context["cl"].result_list]


def test_the_creators_list_shows_this_months_spend_against_the_limits(client, boss, creator):
    Quota.objects.create(
        creator=creator, monthly_budget=Decimal("2.00"), concurrent_jobs=4,
        allowed_providers=["local", "fal"], allowed_resolutions=["720p"],
    )  # fmt: skip
    fal_job(creator)
    quotas.grant(creator, Decimal("0.50"), by="boss")
    page = client.get(CREATORS).content.decode()
    assert "$0.40 of $2.50 (16%)" in page
    assert "8 s of 600 s" in page and "1 of 4" in page
    assert "Local renderer, fal.ai" in page and ">720p<" in page
    assert "$0.00 of $10.00" in page  # boss: the site's defaults
    assert ">all<" in page


def test_the_creators_list_costs_the_same_queries_for_many_rows(client, boss):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(CREATORS).status_code == 200
        return len(captured)

    make_creator("ana")
    few = queries()
    for n in range(12):
        creator = make_creator(f"c{n}")
        Quota.objects.create(creator=creator, allowed_providers=["fal"])
        fal_job(creator)
    assert queries() == few


def test_creators_can_be_filtered_by_how_near_their_limits_they_are(client, boss, creator):
    near, over, calm = creator, make_creator("ben"), make_creator("cy")
    Quota.objects.create(creator=near, monthly_budget=Decimal("0.50"))
    Quota.objects.create(creator=over, monthly_seconds=8)
    for each in (near, over, calm):
        fal_job(each)
    quotas.suspend(calm, by="boss")
    assert listed(client.get(CREATORS, {"limit": "near"})) == ["ana", "ben"]
    assert listed(client.get(CREATORS, {"limit": "over"})) == ["ben"]
    assert listed(client.get(CREATORS, {"suspended": "yes"})) == ["cy"]
    assert listed(client.get(CREATORS, {"suspended": "no"})) == ["ana", "ben", "boss"]


def test_granting_extra_budget_asks_the_amount_then_goes_through_the_ledger(
    client, boss, creator, other_creator
):
    asked = act(client, "grant_budget", creator, other_creator)
    assert asked.status_code == 200
    assert "Extra budget (USD)" in asked.content.decode()
    assert not LedgerEntry.objects.exists()

    granted = act(client, "grant_budget", creator, other_creator, usd="2.50", apply="Grant")
    month = f"{quotas.this_month():%B %Y}"
    assert said(granted) == [
        f"Granted ana $2.50 extra for {month}: their budget this month is now $12.50.",
        f"Granted ben $2.50 extra for {month}: their budget this month is now $12.50.",
    ]
    assert quotas.meter(creator).budget == Decimal("12.50")
    assert LedgerEntry.objects.filter(kind="grant", reason="granted by boss").count() == 2


def test_granting_and_resetting_take_their_own_permission(client, creator):
    client.force_login(staff("view_creator", "change_creator"))
    actions = (
        client.get(CREATORS)
        .context["cl"]
        .model_admin.get_actions(client.get(CREATORS).wsgi_request)
    )
    assert "grant_budget" not in actions and "reset_month" not in actions
    assert "suspend" in actions
    act(client, "grant_budget", creator, usd="2.50", apply="Grant")
    assert not LedgerEntry.objects.exists()


def test_nobody_grants_their_own_account_extra_budget(client, creator):
    granter = staff("view_creator", "grant_budget")
    client.force_login(granter)
    granted = act(client, "grant_budget", granter, creator, usd="2.50", apply="Grant")
    assert (
        "No extra budget for eve: nobody grants their own account money; ask another admin."
    ) in said(granted)
    assert [e.creator for e in LedgerEntry.objects.all()] == [creator]
    reset = act(client, "reset_month", granter)
    assert said(reset) == [
        "Month not reset for eve: nobody resets their own account's spend; ask another admin."
    ]


def test_a_grant_names_who_granted_it_in_the_ledger_and_the_admin_log(client, creator):
    from django.contrib.admin.models import LogEntry

    client.force_login(staff("view_creator", "grant_budget"))
    act(client, "grant_budget", creator, usd="2.50", apply="Grant")
    act(client, "reset_month", creator)
    assert LedgerEntry.objects.get(kind="grant").reason == "granted by eve"
    logged = LogEntry.objects.order_by("pk")
    assert [(e.user.username, e.object_id, e.get_change_message()) for e in logged] == [
        ("eve", str(creator.pk), f"Granted $2.50 extra budget for {quotas.this_month():%B %Y}."),
        ("eve", str(creator.pk), f"Reset {quotas.this_month():%B %Y}: $0.00 → $0.00, 0 s → 0 s."),
    ]


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ("", "Enter the extra budget in dollars"),
        ("lots", "Enter the extra budget in dollars"),
        ("0", "must be at least $0.01"),
        ("-5", "must be at least $0.01"),
        ("1.005", "at most 2 decimal places"),
        ("1e400", "can be at most $999999.99"),
        ("NaN", "Enter the extra budget in dollars"),
    ],
)
def test_a_bad_grant_amount_is_explained_on_the_form(client, boss, creator, amount, says):
    response = act(client, "grant_budget", creator, usd=amount, apply="Grant")
    assert response.status_code == 200
    assert says in response.content.decode()
    assert not LedgerEntry.objects.exists()


def test_resetting_a_month_keeps_what_running_jobs_hold(client, boss, creator):
    quotas.settle(fal_job(creator))
    fal_job(creator, duration=4)
    response = act(client, "reset_month", creator)
    assert said(response) == [
        "Reset ana's month: $0.60 → $0.20, 12 s → 4 s (what jobs still running hold)."
    ]
    assert LedgerEntry.objects.get(kind="reset").reason == "reset by boss"


def test_suspending_and_resuming_say_what_happened_to_each(client, boss, creator, other_creator):
    quotas.suspend(other_creator, by="someone")
    suspended = act(client, "suspend", creator, other_creator)
    assert said(suspended) == [
        "Suspended ana: no new jobs until resumed; jobs running now finish.",
        "ben was already suspended.",
    ]
    assert quotas.limits_of(creator).suspended
    assert said(act(client, "resume", creator, other_creator)) == ["Resumed ana.", "Resumed ben."]
    assert [e.reason for e in LedgerEntry.objects.order_by("pk")] == [
        "suspended by someone", "suspended by boss", "resumed by boss", "resumed by boss",
    ]  # fmt: skip


def limits_form(**values) -> dict:
    return {
        "quota-TOTAL_FORMS": "1", "quota-INITIAL_FORMS": "0", "quota-MIN_NUM_FORMS": "0",
        "quota-MAX_NUM_FORMS": "1", "quota-0-monthly_budget": "", "quota-0-monthly_seconds": "",
        "quota-0-concurrent_jobs": "", **{f"quota-0-{k}": v for k, v in values.items()},
    }  # fmt: skip


def test_the_creator_page_edits_limits_and_names_the_site_defaults(client, boss, creator, settings):
    settings.STUDIO_DEFAULT_MONTHLY_BUDGET = "12.00"
    url = reverse("admin:studio_creator_change", args=[creator.pk])
    page = client.get(url).content.decode()
    assert "Empty: the site default, $12.00 (USD)." in page
    assert "None ticked: the site default, every provider." in page
    response = client.post(url, limits_form(
        monthly_budget="0.50", concurrent_jobs="1", allowed_providers=["local", "gemini"],
        allowed_resolutions=["720p"], suspended="on",
    ), follow=True)  # fmt: skip
    assert "was changed successfully" in response.content.decode()
    limits = quotas.limits_of(creator)
    assert (limits.monthly_budget, limits.monthly_seconds, limits.concurrent_jobs) == (
        Decimal("0.50"), 600, 1,
    )  # fmt: skip
    assert (limits.providers, limits.resolutions) == ({"local", "gemini"}, {"720p"})
    assert not limits.suspended  # suspension goes through the actions only


def test_editing_limits_leaves_the_running_count_and_suspension_as_quotas_wrote_them(
    client, boss, creator
):
    fal_job(creator)
    quotas.suspend(creator, by="boss")
    quota = Quota.objects.get(creator=creator)
    url = reverse("admin:studio_creator_change", args=[creator.pk])
    client.post(url, {**limits_form(monthly_seconds="100", id=quota.pk, creator=creator.pk),
                      "quota-INITIAL_FORMS": "1"})  # fmt: skip
    quota.refresh_from_db()
    assert (quota.monthly_seconds, quota.running_jobs, quota.suspended) == (100, 1, True)


def test_a_bad_limit_is_a_form_error(client, boss, creator):
    url = reverse("admin:studio_creator_change", args=[creator.pk])
    response = client.post(url, limits_form(monthly_budget="-1", allowed_providers=["nobody"]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "greater than or equal to 0" in page
    assert "Select a valid choice. nobody is not one of the available choices." in page
    assert not Quota.objects.exists()


def test_creators_are_not_added_or_deleted_here(client, boss, creator):
    assert client.get(reverse("admin:studio_creator_add")).status_code == 403
    assert client.get(reverse("admin:studio_creator_delete", args=[creator.pk])).status_code == 403


# Jobs

JOBS = reverse_lazy("admin:studio_job_changelist")


def shown_jobs(client, **filters) -> set[int]:
    return {job.pk for job in client.get(JOBS, filters).context["cl"].result_list}


def test_jobs_can_be_filtered_by_charge_provider_error_kind_and_batch(client, boss, creator):
    charged, refunded = fal_job(creator), fal_job(creator)
    reserved = text_job(creator)
    quotas.settle(charged)
    jobs.fail(
        refunded,
        [Job.Status.QUEUED],
        "No.",
        billing=Billing.NOT_BILLED,
        kind=Job.ErrorKind.CONTENT_POLICY,
    )
    batch = create_jobs(
        creator=creator, provider="local", mode="text", prompt="rain", duration=4,
        resolution="720p", aspect="16:9", audio=False, variations=[{"seed": 1}, {"seed": 2}],
    )  # fmt: skip
    assert shown_jobs(client, charge="settled") == {charged.pk}
    assert shown_jobs(client, charge="refunded") == {refunded.pk}
    assert shown_jobs(client, charge="reserved") == {reserved.pk, *(job.pk for job in batch)}
    assert shown_jobs(client, provider="fal") == {charged.pk, refunded.pk}
    assert shown_jobs(client, error_kind="content_policy") == {refunded.pk}
    assert shown_jobs(client, batch="yes") == {job.pk for job in batch}
    assert shown_jobs(client, batch="no") == {charged.pk, refunded.pk, reserved.pk}
    assert shown_jobs(client, status="failed") == {refunded.pk}
    page = client.get(JOBS).content.decode()
    assert "$0.40" in page and "Charged" in page and "Not charged" in page
    assert "Content policy" in page and "fal.ai" in page


def retry(client, *jobs_):
    return client.post(
        JOBS,
        {"action": "retry_jobs", helpers.ACTION_CHECKBOX_NAME: [job.pk for job in jobs_]},
        follow=True,
    )


def test_retrying_a_failed_job_makes_a_new_one_with_the_same_settings(client, boss, creator):
    failed = create_job(
        creator=creator, provider="fal", mode="text", prompt="rain at dusk",
        negative_prompt="people", duration=6, resolution="1080p", aspect="9:16", audio=False,
        seed=42,
    )  # fmt: skip
    jobs.fail(
        failed,
        [Job.Status.QUEUED],
        "Busy.",
        billing=Billing.NOT_BILLED,
        kind=Job.ErrorKind.TRANSIENT,
    )
    response = retry(client, failed)
    new = Job.objects.latest("pk")
    assert said(response) == [
        f"Job #{failed.pk} of ana was retried as job #{new.pk} ($0.30 reserved)."
    ]
    same = ["creator", "provider", "mode", "prompt", "negative_prompt", "duration", "resolution",
            "aspect", "audio", "seed", "price_per_second", "estimated_cost"]  # fmt: skip
    assert [getattr(new, f) for f in same] == [getattr(failed, f) for f in same]
    assert (new.status, new.charge, new.batch) == (Job.Status.QUEUED, Job.Charge.RESERVED, None)
    assert quotas.meter(creator).usd == Decimal("0.30")  # the failure was refunded
    failed.refresh_from_db()
    assert failed.status == Job.Status.FAILED


def test_a_retry_past_a_limit_names_it_and_only_finished_jobs_are_retried(client, boss, creator):
    Quota.objects.create(creator=creator, monthly_budget=Decimal("0.50"), concurrent_jobs=5)
    cancelled, running = fal_job(creator), text_job(creator)
    jobs.cancel(cancelled)
    fal_job(creator)  # $0.40 of $0.50 now
    response = retry(client, cancelled, running)
    assert set(said(response)) == {
        f"Job #{cancelled.pk} of ana was not retried: This clip costs $0.40; your monthly "
        "budget is $0.50 and $0.10 is left this month.",
        f"Job #{running.pk} of ana was not retried: Job #{running.pk} is queued; only failed "
        "or cancelled jobs can be retried.",
    }
    assert Job.objects.count() == 3


def staff(*codenames: str):
    """A staff account with only these permissions."""
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("eve", password="pw-eve", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    assert user.user_permissions.count() == len(codenames)
    return user


def test_cancelling_and_retrying_take_the_right_to_change_jobs(client, creator):
    client.force_login(staff("view_job"))
    actions = client.get(JOBS).context["cl"].model_admin.get_actions(client.get(JOBS).wsgi_request)
    assert "cancel_jobs" not in actions and "retry_jobs" not in actions
    job = text_job(creator)
    client.post(JOBS, {"action": "cancel_jobs", helpers.ACTION_CHECKBOX_NAME: [job.pk]})
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED


def test_staff_who_may_change_jobs_cancel_them(client, creator):
    client.force_login(staff("view_job", "change_job"))
    job = text_job(creator)
    client.post(JOBS, {"action": "cancel_jobs", helpers.ACTION_CHECKBOX_NAME: [job.pk]})
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED


def test_jobs_are_not_deleted_in_the_admin(client, boss, creator):
    job = text_job(creator)
    assert client.get(reverse("admin:studio_job_delete", args=[job.pk])).status_code == 403
    choices = client.get(JOBS).context["action_form"].fields["action"].choices
    assert "delete_selected" not in [name for name, _ in choices]


# Prices


def test_a_new_price_applies_to_new_jobs_and_never_to_a_charged_one(client, boss, creator):
    from studio.models import Price

    before = fal_job(creator)
    price = Price.objects.get(provider="fal", mode="text", resolution="720p", audio=True)
    url = reverse("admin:studio_price_changelist")
    filters = "?provider__exact=fal&mode__exact=text&resolution__exact=720p&audio__exact=1"
    listed_prices = client.get(url + filters).context["cl"].result_list
    assert list(listed_prices) == [price]
    response = client.post(url + filters, {
        "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000", "form-0-id": price.pk, "form-0-usd_per_second": "0.07",
        "_save": "Save",
    }, follow=True)  # fmt: skip
    assert "1 price was changed successfully." in said(response)
    after = fal_job(creator)
    before.refresh_from_db()
    assert (before.price_per_second, before.estimated_cost) == (Decimal("0.05"), Decimal("0.40"))
    assert (after.price_per_second, after.estimated_cost) == (Decimal("0.07"), Decimal("0.56"))
    quotas.settle(before)
    before.refresh_from_db()
    assert before.estimated_cost == Decimal("0.40")


def test_a_negative_price_is_refused_on_the_list(client, boss):
    from studio.models import Price

    price = Price.objects.filter(provider="fal").first()
    url = reverse("admin:studio_price_changelist") + f"?provider__exact=fal&id__exact={price.pk}"
    response = client.post(url, {
        "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000", "form-0-id": price.pk, "form-0-usd_per_second": "-1",
        "_save": "Save",
    })  # fmt: skip
    assert response.status_code == 200
    assert "Please correct the error below." in response.content.decode()
    price.refresh_from_db()
    assert price.usd_per_second >= 0


# The ledger


def test_the_ledger_is_read_only_and_filters_by_creator(client, boss, creator, other_creator):
    job = fal_job(creator)
    fal_job(other_creator)
    quotas.grant(creator, Decimal("1.00"), by="boss")
    url = reverse("admin:studio_ledgerentry_changelist")
    mine = client.get(url, {"creator__id__exact": creator.pk})
    assert {(e.creator, e.kind) for e in mine.context["cl"].result_list} == {
        (creator, "reserve"), (creator, "grant"),
    }  # fmt: skip
    page = mine.content.decode()
    assert f'href="/admin/studio/job/{job.pk}/change/">#{job.pk}</a>' in page
    assert "granted by boss" in page
    assert len(client.get(url, {"q": "ben"}).context["cl"].result_list) == 1
    entry = LedgerEntry.objects.first()
    change = reverse("admin:studio_ledgerentry_change", args=[entry.pk])
    client.post(change, {"usd": "100", "reason": "edited"})
    entry.refresh_from_db()
    assert entry.reason != "edited"
    assert client.get(reverse("admin:studio_ledgerentry_add")).status_code == 403


# The spending dashboard

DASHBOARD = reverse_lazy("admin_dashboard")


def test_the_dashboard_shows_a_months_figures_and_its_chart(client, boss, creator):
    from calendar import monthrange
    from datetime import timedelta

    from django.utils import timezone

    charged = fal_job(creator)
    sent = timezone.now()
    charged.move([Job.Status.QUEUED], Job.Status.SUCCEEDED, submitted_at=sent,
                 finished_at=sent + timedelta(seconds=90))  # fmt: skip
    quotas.settle(charged)
    failed = fal_job(creator, duration=4)
    jobs.fail(
        failed,
        [Job.Status.QUEUED],
        "No.",
        billing=Billing.NOT_BILLED,
        kind=Job.ErrorKind.CONTENT_POLICY,
    )
    fal_job(creator, duration=6)  # in flight
    month = quotas.this_month()
    response = client.get(DASHBOARD, {"month": f"{month:%Y-%m}"})
    assert response.status_code == 200
    page = response.content.decode()
    assert f"Spending in {month:%B %Y}" in page
    assert f"Spent in {month:%B %Y}: <strong>$0.40</strong>" in page
    assert "still reserved by jobs in flight: $0.30" in page
    assert '<svg class="spend-chart" role="img" aria-labelledby="chart-title chart-desc"' in page
    assert page.count('<rect class="bar"') == monthrange(month.year, month.month)[1]
    day = timezone.localdate(charged.created_at)
    assert f"<title>{day.day} {day:%B}: $0.40</title>" in page
    assert '<td class="number">50%</td>' in page  # fal: one failed of two ended
    assert '<td class="number">90 s</td>' in page
    assert f'href="/admin/studio/creator/{creator.pk}/change/">ana</a>' in page


def test_a_month_without_jobs_says_so(client, boss):
    page = client.get(DASHBOARD, {"month": "2024-02"}).content.decode()
    assert "Spent in February 2024: <strong>$0.00</strong>" in page
    assert page.count('<rect class="bar"') == 29
    assert "No jobs in February 2024." in page and "Nobody was charged in February 2024." in page


def test_the_dashboard_defaults_to_this_month(client, boss):
    page = client.get(DASHBOARD).content.decode()
    assert f"Spending in {quotas.this_month():%B %Y}" in page


@pytest.mark.parametrize("month", ["2026-13", "november", "2026-11-05", "9999-12", "0001-01", ""])
def test_a_bad_month_is_explained_and_this_month_shown(client, boss, month):
    response = client.get(DASHBOARD, {"month": month})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="errornote"' in page
    assert f"Showing {quotas.this_month():%B %Y} instead." in page


def test_the_dashboard_is_for_staff_who_may_see_the_ledger(client, creator):
    from django.contrib.auth.models import Permission

    client.force_login(creator)
    assert client.get(DASHBOARD)["Location"].startswith("/admin/login/")
    staff = get_user_model().objects.create_user("eve", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(DASHBOARD).status_code == 403
    assert "Spending dashboard" not in client.get(reverse("admin:index")).content.decode()
    staff.user_permissions.add(Permission.objects.get(codename="view_ledgerentry"))
    assert client.get(DASHBOARD).status_code == 200
    assert 'href="/admin/studio/dashboard/">Spending dashboard</a>' in (
        client.get(reverse("admin:index")).content.decode()
    )


def test_raising_a_creators_limit_starts_their_waiting_jobs_at_once(client, boss, creator):
    Quota.objects.create(creator=creator, concurrent_jobs=1)
    made = [text_job(creator) for _ in range(3)]
    assert [job.status for job in made] == ["queued", "waiting", "waiting"]
    listing = client.get(CREATORS).content.decode()
    assert "1 of 1 · 2 waiting" in listing
    quota = Quota.objects.get(creator=creator)
    url = reverse("admin:studio_creator_change", args=[creator.pk])
    client.post(url, {**limits_form(concurrent_jobs="2", id=quota.pk, creator=creator.pk),
                      "quota-INITIAL_FORMS": "1"})  # fmt: skip
    statuses = list(Job.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["queued", "queued", "waiting"]
