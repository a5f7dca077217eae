"""Where a job stands, for the job page's timeline: the stage, with what is known of it, in
words and figures the page can show as they are.

    in Studio's queue (place in line) → at the provider (its queue position) →
    generating (elapsed, about how long is left, a fraction where reported) → finishing →
    done | failed | cancelled

The job page polls its status every second, so this is cheap: nothing but the job for most
stages, one count for a job waiting for a slot (its place in line), and the provider's
learned generation time (studio/pacing.py, cached in the process) while it generates.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from studio import pacing
from studio.models import Job
from studio.providers.registry import label


class Stage(enum.StrEnum):
    QUEUE = "queue"  # in Studio's own queue: waiting for a slot, or being sent
    PROVIDER = "provider"  # accepted by the provider, in its queue
    GENERATING = "generating"
    FINISHING = "finishing"  # the clip is made; Studio is bringing it home
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


# The way a job goes when all is well, in order.
TIMELINE = (Stage.QUEUE, Stage.PROVIDER, Stage.GENERATING, Stage.FINISHING, Stage.DONE)
STAGE_LABELS = {
    Stage.QUEUE: "In Studio's queue",
    Stage.PROVIDER: "At the provider",
    Stage.GENERATING: "Generating",
    Stage.FINISHING: "Finishing",
    Stage.DONE: "Done",
    Stage.FAILED: "Failed",
    Stage.CANCELLED: "Cancelled",
}
_STAGES = {
    Job.Status.WAITING: Stage.QUEUE,
    Job.Status.QUEUED: Stage.QUEUE,
    Job.Status.SUBMITTING: Stage.QUEUE,
    Job.Status.SUBMITTED: Stage.PROVIDER,
    Job.Status.RUNNING: Stage.GENERATING,
    Job.Status.FINISHING: Stage.FINISHING,
    Job.Status.SUCCEEDED: Stage.DONE,
    Job.Status.FAILED: Stage.FAILED,
    Job.Status.CANCELLED: Stage.CANCELLED,
}
CHARGE_WORDS = {
    Job.Charge.RESERVED: "reserved",
    Job.Charge.SETTLED: "charged",
    Job.Charge.REFUNDED: "not charged",
}
# A fraction this small says too little to estimate the rest from.
ESTIMATE_FROM_FRACTION = 0.05


@dataclass(frozen=True)
class Step:
    """One stage of the timeline: "done", "current" or "todo"."""

    stage: Stage
    label: str
    state: str


@dataclass(frozen=True)
class Progress:
    """Where one job stands. Figures are None where they are not known (or do not apply)."""

    stage: Stage
    steps: tuple[Step, ...]
    # In Studio's queue: 1 is next to be given a running slot (waiting jobs only).
    place_in_line: int | None = None
    # At the provider: 1 is next in its queue, as the provider reports it.
    provider_position: int | None = None
    # Since the provider accepted the job, and about how much longer it should take (from
    # the provider's learned generation time, else from its reported fraction); 0 once late.
    elapsed_seconds: int | None = None
    seconds_left: int | None = None
    fraction: float | None = None  # 0 to 1, where the provider reports progress
    charge: str = ""  # "reserved", "charged", "not charged"; "" before anything is reserved
    ended: bool = False  # done, failed or cancelled: the page stops polling
    provider: str = ""  # the provider's label

    @property
    def headline(self) -> str:
        """The stage in a line: "Waiting for a free slot (2nd in line)", "At fal.ai (position
        3 in its queue)", "Generating · 0:42, about 0:20 left", "Finishing: saving the clip"."""
        if self.place_in_line is not None:
            return f"Waiting for a free slot ({self.place_words})"
        if self.stage == Stage.QUEUE:
            return f"Sending to {self.provider}"
        if self.stage == Stage.PROVIDER:
            if self.provider_position is not None:
                return f"At {self.provider} (position {self.provider_position} in its queue)"
            return f"At {self.provider}, waiting to start"
        if self.stage == Stage.GENERATING:
            said = ", ".join(part for part in (self.elapsed, self.left) if part)
            return f"Generating · {said}" if said else "Generating"
        if self.stage == Stage.FINISHING:
            return "Finishing: saving the clip"
        return STAGE_LABELS[self.stage]

    @property
    def percent(self) -> int | None:
        return None if self.fraction is None else round(self.fraction * 100)

    @property
    def elapsed(self) -> str:
        """Time since the provider accepted the job, as 0:42; "" when not known."""
        return "" if self.elapsed_seconds is None else clock(self.elapsed_seconds)

    @property
    def left(self) -> str:
        """How long is left: "about 0:20 left", "any moment now" once late, "" if unknown."""
        if self.seconds_left is None:
            return ""
        if self.seconds_left == 0:
            return "any moment now"
        return f"about {clock(self.seconds_left)} left"

    @property
    def place_words(self) -> str:
        """A waiting job's place: "2nd in line" ("" for a job not waiting)."""
        return "" if self.place_in_line is None else f"{ordinal(self.place_in_line)} in line"


def of(job: Job, *, now: datetime | None = None, place_in_line: int | None = None) -> Progress:
    """Where `job` stands at `now` (by default, now). A waiting job's place in line is
    counted unless given (`places_in_line` gives a batch's in one query)."""
    now = now or timezone.now()
    stage = _STAGES[Job.Status(job.status)]
    provider = label(job.provider)
    place = position = elapsed = left = None
    fraction = None
    if job.status == Job.Status.WAITING:
        place = place_in_line if place_in_line is not None else _place_in_line(job)
    if stage in (Stage.PROVIDER, Stage.GENERATING) and job.submitted_at:
        elapsed = max(0, int((now - job.submitted_at).total_seconds()))
        if job.status == Job.Status.RUNNING and job.progress is not None:
            fraction = min(1.0, job.progress / 100)
        left = _seconds_left(job.provider, elapsed, fraction)
    if stage == Stage.PROVIDER and job.queue_position is not None:
        position = job.queue_position + 1  # providers count the jobs ahead
    return Progress(
        stage=stage,
        steps=_steps(job, stage),
        place_in_line=place,
        provider_position=position,
        elapsed_seconds=elapsed,
        seconds_left=left,
        fraction=fraction,
        charge=CHARGE_WORDS.get(Job.Charge(job.charge), "") if job.charge else "",
        ended=job.is_terminal,
        provider=provider,
    )


def of_jobs(jobs: Iterable[Job], *, now: datetime | None = None) -> dict[int, Progress]:
    """Where each of `jobs` (one creator's, say a batch) stands, by job id: one query for
    their places in line, whatever their number."""
    jobs = list(jobs)
    now = now or timezone.now()
    places: dict[int, int] = {}
    for creator_id in {job.creator_id for job in jobs if job.status == Job.Status.WAITING}:
        places.update(places_in_line(creator_id))
    return {job.pk: of(job, now=now, place_in_line=places.get(job.pk)) for job in jobs}


def places_in_line(creator_id: int) -> dict[int, int]:
    """Each of the creator's waiting jobs' place in line (1: the next to start), by job id."""
    waiting = Job.objects.waiting().filter(creator_id=creator_id).values_list("pk", flat=True)
    return {pk: place for place, pk in enumerate(waiting, start=1)}


def _place_in_line(job: Job) -> int:
    # Slots are the creator's own, so only their own older waiting jobs are ahead (the order
    # studio/quotas.py admits them in).
    ahead = (
        Job.objects.waiting()
        .filter(creator_id=job.creator_id)
        .filter(Q(created_at__lt=job.created_at) | Q(created_at=job.created_at, pk__lt=job.pk))
        .count()
    )
    return int(ahead) + 1


def _seconds_left(provider: str, elapsed: int, fraction: float | None) -> int | None:
    typical = pacing.typical_seconds(provider)
    if typical is not None:
        return max(0, round(typical - elapsed))
    if fraction is not None and fraction >= ESTIMATE_FROM_FRACTION:
        return max(0, round(elapsed / fraction - elapsed))
    return None


def _steps(job: Job, stage: Stage) -> tuple[Step, ...]:
    """The timeline: stages passed are done, this one current, the rest to do. A job that
    failed or was cancelled shows the stages it passed, then how it ended."""
    if stage in TIMELINE:
        at = TIMELINE.index(stage)
        states = ["done"] * at + ["current"] + ["todo"] * (len(TIMELINE) - at - 1)
        if stage == Stage.DONE:
            states[-1] = "done"
        return tuple(
            Step(s, STAGE_LABELS[s], state) for s, state in zip(TIMELINE, states, strict=True)
        )
    reached = (
        Stage.FINISHING
        if job.provider_done_at
        else Stage.PROVIDER
        if job.submitted_at
        else Stage.QUEUE
    )
    passed = TIMELINE[: TIMELINE.index(reached) + 1]
    return (
        *(Step(s, STAGE_LABELS[s], "done") for s in passed),
        Step(stage, STAGE_LABELS[stage], "current"),
    )


def clock(seconds: int) -> str:
    """0:42, 2:05, 1:02:03."""
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 22nd, 101st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
