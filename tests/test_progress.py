"""The job page's timeline (studio/progress.py): its numbers at fixed moments, and its cost."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from studio import progress
from studio.models import Job, Quota
from studio.progress import Stage
from studio.templatetags.studio_jobs import seed_text
from tests.factories import create_job, create_jobs

T = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def fal_job(creator, **fields) -> Job:
    options = dict(
        mode="text", prompt="rain", duration=8, resolution="720p", aspect="16:9", audio=True
    )
    return create_job(creator=creator, provider=fields.pop("provider", "fal"), **options, **fields)


def at(job: Job, status: str, **fields) -> Job:
    """The job as the engine would have left it (in memory: `progress.of` reads nothing else)."""
    job.status = status
    for name, value in fields.items():
        setattr(job, name, value)
    return job


def learned(provider: str, *spans: int) -> None:
    """Finished jobs at `provider` that took these many seconds from submit to done."""
    for seconds in spans:
        Job.objects.create(
            creator=Job.objects.first().creator, provider=provider, prompt="x", duration=4,
            resolution="720p", aspect="16:9", status=Job.Status.SUCCEEDED,
            submitted_at=T - timedelta(hours=1),
            provider_done_at=T - timedelta(hours=1) + timedelta(seconds=seconds),
        )  # fmt: skip


def states(p: progress.Progress) -> list[tuple[str, str]]:
    return [(step.stage.value, step.state) for step in p.steps]


def test_a_waiting_job_knows_its_place_in_line_in_one_query(creator, django_assert_num_queries):
    Quota.objects.create(creator=creator, concurrent_jobs=1)
    made = [fal_job(creator) for _ in range(4)]  # one runs, three wait
    with django_assert_num_queries(1):
        p = progress.of(made[2], now=T)
    assert (p.stage, p.place_in_line, p.place_words) == (Stage.QUEUE, 2, "2nd in line")
    assert p.headline == "Waiting for a free slot (2nd in line)"
    assert states(p) == [
        ("queue", "current"), ("provider", "todo"), ("generating", "todo"),
        ("finishing", "todo"), ("done", "todo"),
    ]  # fmt: skip
    assert (p.charge, p.ended, p.elapsed_seconds, p.seconds_left) == ("reserved", False, None, None)


def test_a_batchs_places_in_line_cost_one_query(creator, django_assert_num_queries):
    made = create_jobs(
        creator=creator, provider="fal", mode="text", prompt="rain", duration=4,
        resolution="720p", aspect="16:9", audio=False,
        variations=[{"seed": n} for n in range(12)],
    )  # fmt: skip
    with django_assert_num_queries(1):
        found = progress.of_jobs(made, now=T)
    assert [found[job.pk].place_in_line for job in made] == [None] * 3 + list(range(1, 10))
    assert found[made[3].pk].headline == "Waiting for a free slot (1st in line)"
    assert found[made[0].pk].headline == "Sending to fal.ai"


def test_a_job_being_sent_costs_no_query(creator, django_assert_num_queries):
    job = fal_job(creator)
    with django_assert_num_queries(0):
        p = progress.of(at(job, Job.Status.SUBMITTING), now=T)
    assert (p.stage, p.place_in_line, p.headline) == (Stage.QUEUE, None, "Sending to fal.ai")


def test_at_the_provider_it_shows_the_providers_queue_position_and_the_time_so_far(creator):
    job = at(fal_job(creator), Job.Status.SUBMITTED, submitted_at=T, queue_position=2)
    p = progress.of(job, now=T + timedelta(seconds=12))
    assert (p.stage, p.provider_position, p.elapsed_seconds) == (Stage.PROVIDER, 3, 12)
    assert p.seconds_left is None  # nothing learned about fal yet
    assert p.headline == "At fal.ai (position 3 in its queue)"
    assert states(p)[:2] == [("queue", "done"), ("provider", "current")]
    job.queue_position = None
    assert progress.of(job, now=T).headline == "At fal.ai, waiting to start"


def test_generating_estimates_what_is_left_from_the_learned_generation_time(
    creator, django_assert_max_num_queries, django_assert_num_queries
):
    job = at(fal_job(creator), Job.Status.RUNNING, submitted_at=T, progress=40)
    learned("fal", 50, 60, 70)  # median 60 s
    with django_assert_max_num_queries(1):
        p = progress.of(job, now=T + timedelta(seconds=42))
    assert (p.elapsed_seconds, p.seconds_left, p.fraction, p.percent) == (42, 18, 0.4, 40)
    assert (p.elapsed, p.left) == ("0:42", "about 0:18 left")
    assert p.headline == "Generating · 0:42, about 0:18 left"
    with django_assert_num_queries(0):  # the learned time is kept a while in the process
        late = progress.of(job, now=T + timedelta(seconds=75))
    assert (late.seconds_left, late.left) == (0, "any moment now")
    assert late.headline == "Generating · 1:15, any moment now"


def test_without_a_learned_time_the_reported_fraction_gives_the_estimate(creator):
    job = at(fal_job(creator, provider="local"), Job.Status.RUNNING, submitted_at=T, progress=25)
    p = progress.of(job, now=T + timedelta(seconds=10))
    assert (p.fraction, p.seconds_left) == (0.25, 30)  # a quarter in 10 s: 30 s to go
    job.progress = 2  # too little to say
    assert progress.of(job, now=T + timedelta(seconds=10)).seconds_left is None
    job.progress = None
    assert progress.of(job, now=T + timedelta(seconds=10)).headline == "Generating · 0:10"


def test_finishing_and_done(creator):
    job = at(fal_job(creator), Job.Status.FINISHING, submitted_at=T, provider_done_at=T)
    p = progress.of(job, now=T)
    assert (p.stage, p.headline, p.elapsed_seconds) == (
        Stage.FINISHING, "Finishing: saving the clip", None,
    )  # fmt: skip
    assert [state for _, state in states(p)] == ["done", "done", "done", "current", "todo"]
    done = progress.of(at(job, Job.Status.SUCCEEDED, charge=Job.Charge.SETTLED), now=T)
    assert (done.stage, done.headline, done.charge, done.ended) == (
        Stage.DONE, "Done", "charged", True,
    )  # fmt: skip
    assert [state for _, state in states(done)] == ["done"] * 5


@pytest.mark.parametrize(
    ("fields", "passed"),
    [
        ({}, ["queue"]),  # never sent
        ({"submitted_at": T}, ["queue", "provider"]),
        (
            {"submitted_at": T, "provider_done_at": T},
            ["queue", "provider", "generating", "finishing"],
        ),
    ],
)
def test_a_failed_job_shows_the_stages_it_passed_then_how_it_ended(creator, fields, passed):
    job = at(fal_job(creator), Job.Status.FAILED, charge=Job.Charge.REFUNDED, **fields)
    p = progress.of(job, now=T)
    assert states(p) == [*[(stage, "done") for stage in passed], ("failed", "current")]
    assert (p.stage, p.headline, p.charge, p.ended) == (Stage.FAILED, "Failed", "not charged", True)
    cancelled = progress.of(at(job, Job.Status.CANCELLED), now=T)
    assert (cancelled.stage, cancelled.steps[-1].label) == (Stage.CANCELLED, "Cancelled")


def test_the_seed_is_said_as_the_provider_uses_it(creator, settings):
    assert seed_text(fal_job(creator, seed=42)) == "42"
    picked = fal_job(creator)  # left empty: Studio picks it, and says so
    assert seed_text(picked) == f"{picked.seed} (picked by Studio)"
    assert seed_text(fal_job(creator, provider="gemini")) == "none: Gemini API takes no seed"


def test_times_and_places_in_words():
    assert [progress.clock(s) for s in (0, 42, 125, 3723)] == ["0:00", "0:42", "2:05", "1:02:03"]
    numbers = (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111, 112)
    assert [progress.ordinal(n) for n in numbers] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st",
        "111th", "112th",
    ]  # fmt: skip


def test_the_job_page_and_its_polled_status_say_the_place_in_line(signed_in, creator):
    Quota.objects.create(creator=creator, concurrent_jobs=1)
    made = [fal_job(creator) for _ in range(3)]
    page = signed_in.get(reverse("job", args=[made[2].pk])).content.decode()
    assert "Waiting for a free slot" in page and "(2nd in line)" in page
    polled = signed_in.get(reverse("job", args=[made[1].pk]), headers={"HX-Request": "true"})
    assert polled.status_code == 200 and "(1st in line)" in polled.content.decode()
    running = signed_in.get(reverse("job", args=[made[0].pk])).content.decode()
    assert "in line" not in running
