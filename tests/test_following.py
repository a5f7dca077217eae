"""The follower: concurrent, bounded polling; learned pacing; timeouts; failover."""

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from studio import failover, following, jobs, pacing
from studio.models import Job, LedgerEntry, Usage
from studio.providers.base import TransientError
from studio.templatetags.studio_jobs import seed_text
from tests.emulator import new_job, submitted, use_emulator


@pytest.fixture
def emulator(settings):
    return use_emulator(settings)


# ---------------------------------------------------------------- pacing


def test_before_anything_is_learned_polls_widen_from_the_providers_interval():
    assert pacing.interval(0, None, cold_min=5) == 5
    assert pacing.interval(0, None, cold_min=1) == 1
    assert pacing.interval(20, None, cold_min=5) == 10
    assert pacing.interval(600, None, cold_min=5) == 15


@pytest.mark.parametrize(
    ("age", "wait"),
    [
        (0, 16.0),  # nothing to see before 80% of the typical 20 s
        (10, 6.0),
        (16, 2.0),  # then every tenth of it
        (25, 2.0),
        (30, 3.0),  # past 1.5 times: back off for the straggler
        (200, 20.0),
        (1000, 30.0),
    ],
)
def test_a_learned_typical_time_spends_the_calls_where_the_job_should_finish(age, wait):
    assert pacing.interval(age, 20.0) == pytest.approx(wait)


def test_a_twenty_second_job_costs_at_most_four_calls_and_two_seconds():
    typical, age, calls = 20.0, 0.0, 0
    while True:
        age += pacing.interval(age, typical)
        calls += 1
        if age >= typical:
            break
    assert calls <= 4
    assert age - typical <= 2.0


@pytest.mark.parametrize("done_at", [1.0, 1.1, 1.5])
def test_a_long_job_is_asked_every_two_seconds_near_its_time_within_the_call_budget(done_at):
    typical = 160.0
    ages, age = [], 0.0
    while not ages or ages[-1] < done_at * typical:
        age += pacing.interval(age, typical)
        ages.append(age)
    near = [b - a for a, b in itertools.pairwise(ages) if 0.8 * typical <= a < 1.1 * typical]
    assert near and max(near) <= 2.0
    assert ages[-1] - done_at * typical <= 3.0  # noticed within one call's spacing
    assert len(ages) / (ages[-1] / 60) <= 12  # status calls per minute of generation


def test_a_queue_position_is_heeded_only_where_nothing_better_is_known():
    # Before anything is learned, and once late: about a second per job ahead.
    assert pacing.interval(0, None, queue_position=12, cold_min=5) == 12
    assert pacing.interval(0, None, queue_position=500, cold_min=5) == 15
    assert pacing.interval(60, 20.0, queue_position=12) == 12
    assert pacing.interval(60, 20.0, queue_position=500) == 30
    # Within the learned window the learned time already holds the usual queueing.
    assert pacing.interval(16, 20.0, queue_position=12) == 2


def test_the_typical_time_is_the_median_of_the_providers_last_finished_jobs(creator):
    now = timezone.now()
    for seconds in (18, 20, 60):
        job = new_job(creator, "local", mode="text")
        Job.objects.filter(pk=job.pk).update(
            submitted_at=now - timedelta(seconds=seconds), provider_done_at=now
        )
    assert pacing.typical_seconds("local") == pytest.approx(20.0)
    assert pacing.typical_seconds("fal") is None


# ---------------------------------------------------------------- polling


def test_the_follower_polls_many_jobs_at_once_within_the_per_provider_bound(
    emulator, creator, settings
):
    from studio.models import Quota

    Quota.objects.create(creator=creator, concurrent_jobs=200, monthly_budget=Decimal("1000"))
    settings.STUDIO_POLL_CONCURRENCY = 6
    made = [submitted(new_job(creator, "fal", mode="text")) for _ in range(60)]
    emulator.requests.clear()
    emulator.max_in_flight.clear()
    emulator.answer_delay = 0.05
    Job.objects.update(next_check_at=timezone.now())
    assert following.follow_once() == 60
    statuses = [r for r in emulator.requests_to("fal", "GET") if r.path.endswith("/status")]
    assert len(statuses) == 60
    assert emulator.max_in_flight["fal"] == 6  # bounded, and the bound was used
    assert all(job.next_check_at > timezone.now() for job in Job.objects.filter(pk__in=[
        j.pk for j in made
    ]))  # fmt: skip


def test_a_job_found_done_brings_the_same_providers_older_jobs_forward(emulator, creator):
    older = submitted(new_job(creator, "fal", mode="text"))
    emulator.latency = 0
    done = submitted(new_job(creator, "fal", mode="text"))
    later = timezone.now() + timedelta(minutes=5)
    Job.objects.filter(pk=older.pk).update(next_check_at=later)
    Job.objects.filter(pk=done.pk).update(next_check_at=timezone.now())
    following.follow_once()
    done.refresh_from_db()
    older.refresh_from_db()
    assert done.status == Job.Status.FINISHING and done.provider_done_at is not None
    assert older.next_check_at <= timezone.now()


# ---------------------------------------------------------------- the ceiling


def test_a_job_past_the_ceiling_fails_as_timed_out_and_is_refunded(emulator, creator, settings):
    settings.FAL_KEY = "test-fal-key"
    job = submitted(new_job(creator, "fal", mode="text"))
    Job.objects.filter(pk=job.pk).update(
        submitted_at=timezone.now() - timedelta(minutes=settings.STUDIO_JOB_TIMEOUT_MINUTES + 1)
    )
    following.follow_once()
    job.refresh_from_db()
    assert (job.status, job.error_kind, job.charge) == ("failed", "timed_out", "refunded")
    assert "did not finish within 30 minutes" in job.error
    assert "You were not charged." in job.error
    assert Usage.objects.get(creator=creator).usd == Decimal("0")


def test_a_job_that_could_never_be_sent_times_out_too(creator, settings):
    job = new_job(creator, "local", mode="text")
    # The ceiling counts from when it took its running slot (it may have waited for one).
    Job.objects.filter(pk=job.pk).update(admitted_at=timezone.now() - timedelta(hours=1))
    following.follow_once()
    job.refresh_from_db()
    assert (job.status, job.error_kind) == ("failed", "timed_out")


# ---------------------------------------------------------------- failover


@pytest.fixture
def failover_on(settings, emulator):
    settings.STUDIO_FAILOVER = True
    return emulator


def test_a_provider_marked_down_moves_an_opted_in_job_to_the_next_that_fits(
    failover_on, creator, signed_in, settings, django_capture_on_commit_callbacks
):
    settings.STUDIO_PROVIDERS_DOWN = ["fal"]
    job = new_job(creator, "fal", mode="text", allow_failover=True, duration=8)
    with django_capture_on_commit_callbacks() as queued:
        jobs.submit(job.pk)
    assert len(queued) == 1  # its submit, again, at the new provider
    job.refresh_from_db()
    assert "fal.ai could not take the job (fal.ai is marked down by the studio)" in job.error
    jobs.submit(job.pk)
    job.refresh_from_db()
    assert (job.provider, job.failed_over_from) == ("gemini", "fal")
    assert job.status == Job.Status.SUBMITTED  # and sent there
    assert job.estimated_cost == Decimal("0.40")  # Gemini's 8 s at 720p with audio
    assert not failover_on.requests_to("fal", "POST")
    kinds = list(LedgerEntry.objects.filter(job=job).values_list("kind", flat=True))
    assert sorted(kinds) == ["reprice", "reserve"]
    page = signed_in.get(reverse("job", args=[job.pk])).content.decode()
    assert "Gemini API (moved from fal.ai)" in page


def test_a_seed_studio_picked_moves_to_a_provider_without_seeds_and_a_chosen_one_does_not(
    failover_on, creator, settings
):
    settings.STUDIO_PROVIDERS_DOWN = ["fal"]
    picked = new_job(creator, "fal", mode="text", allow_failover=True, duration=8)
    assert picked.seed is not None and picked.seed_drawn
    chosen = new_job(creator, "fal", mode="text", allow_failover=True, duration=8, seed=7)
    assert not chosen.seed_drawn
    for job in (picked, chosen):
        jobs.submit(job.pk)
        job.refresh_from_db()
    # Gemini takes no seed: Studio's pick is dropped there, and the job says so.
    assert (picked.provider, picked.seed, picked.seed_drawn) == ("gemini", None, False)
    assert seed_text(picked) == "none: Gemini API takes no seed"
    # The creator's own seed must be honoured: only a provider that takes one will do.
    assert (chosen.provider, chosen.seed, seed_text(chosen)) == ("vertex", 7, "7")


def test_the_create_page_offers_failover_only_when_the_site_allows_it(signed_in, settings):
    settings.STUDIO_FAILOVER = False
    assert (
        "use another that makes the same clip"
        not in signed_in.get(reverse("create")).content.decode()
    )
    settings.STUDIO_FAILOVER = True
    assert (
        "use another that makes the same clip" in signed_in.get(reverse("create")).content.decode()
    )


def test_without_the_opt_in_a_transient_submit_error_is_retried_in_place(
    failover_on, creator, monkeypatch
):
    job = new_job(creator, "fal", mode="text", duration=8)

    def busy(self, request):
        raise TransientError("fal.ai is busy.")

    monkeypatch.setattr(type(jobs.get_provider("fal")), "submit", busy)
    jobs.submit(job.pk)
    job.refresh_from_db()
    assert (job.provider, job.status) == ("fal", Job.Status.QUEUED)
    assert job.error.startswith("Retrying: fal.ai is busy.")


def test_failover_skips_providers_that_cannot_make_the_clip_as_chosen(failover_on, creator):
    # A seed: Gemini and AI/ML take none, so only Vertex AI and Oxen can make it unchanged.
    job = new_job(creator, "fal", mode="text", allow_failover=True, duration=8, seed=7)
    assert [name for name, _ in failover.candidates(job)] == ["vertex", "oxen"]


def test_a_dearer_provider_must_fit_what_is_left(failover_on, creator, settings):
    from studio.models import Quota

    settings.VERTEX_PROJECT = ""  # Vertex AI would make it at fal's price

    job = new_job(creator, "fal", mode="text", allow_failover=True, duration=8, audio=False)
    Quota.objects.filter(creator=creator).update(monthly_budget=Decimal("0.24"))  # fal's only
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUBMITTING)
    job.refresh_from_db()
    assert not failover.move_on(job, "fal.ai is busy.")
    job.refresh_from_db()
    assert (job.provider, job.estimated_cost) == ("fal", Decimal("0.24"))
    assert Usage.objects.get(creator=creator).usd == Decimal("0.24")


def test_a_refund_after_failover_gives_back_the_new_price(failover_on, creator, settings):
    settings.VERTEX_PROJECT = ""  # Vertex AI would make it at fal's price
    job = new_job(creator, "fal", mode="text", allow_failover=True, duration=8, audio=False)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUBMITTING)
    job.refresh_from_db()
    assert failover.move_on(job, "fal.ai is busy.")
    job.refresh_from_db()
    # Gemini cannot make it silent, so AI/ML API at its provisional $0.06 a second.
    assert (job.provider, job.estimated_cost) == ("aimlapi", Decimal("0.48"))
    assert Usage.objects.get(creator=creator).usd == Decimal("0.48")
    assert jobs.cancel(job)
    assert Usage.objects.get(creator=creator).usd == Decimal("0.00")


def test_one_job_that_breaks_the_poll_does_not_stop_the_others(emulator, creator, caplog):
    emulator.latency = 0
    fine, broken = (submitted(new_job(creator, "fal", mode="text")) for _ in range(2))
    Job.objects.filter(pk=broken.pk).update(provider_state={})  # no status_url to ask
    Job.objects.update(next_check_at=timezone.now())
    following.follow_once()
    broken.refresh_from_db()
    fine.refresh_from_db()
    assert fine.status == Job.Status.FINISHING
    assert broken.status == Job.Status.SUBMITTED
    assert broken.next_check_at > timezone.now() + timedelta(seconds=30)
    assert f"following job {broken.pk} failed" in caplog.text
