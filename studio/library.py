"""The creator's library: their jobs newest first, filtered and searched, a page at a time;
the tray of jobs that did not make it, with the retries that make sense for each; and a
job's recipe as the create form reads it (retries, "Use these settings", "Continue").

A page costs the same at 50 clips and at 5,000: it is one query that walks the creator's
jobs newest first by primary key and stops after a page (keyset pagination: "older than
job N", never an OFFSET or a COUNT), plus one for the tray.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, time

from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from studio import health, images
from studio.models import Clip, Job, SourceImage
from studio.options import Aspect, Mode
from studio.providers.capabilities import preflight
from studio.providers.registry import LABELS, capabilities_of

PAGE_SIZE = 24
# The tray lists this many; past it, it says there are more.
TRAY_SIZE = 20
ENDED_BADLY = (Job.Status.FAILED, Job.Status.CANCELLED)


class Show:
    """Which jobs the grid shows (the status filter)."""

    DEFAULT = ""  # clips, and jobs still being made; what did not make it is in the tray
    READY = "ready"
    MAKING = "making"
    FAILED = "failed"
    CHOICES = (
        (DEFAULT, "Clips and jobs in progress"),
        (READY, "Finished clips"),
        (MAKING, "In progress"),
        (FAILED, "Failed or cancelled"),
    )


@dataclass(frozen=True)
class Filters:
    """What the creator narrowed the library to; every field is a URL parameter."""

    show: str = Show.DEFAULT
    provider: str = ""
    aspect: str = ""  # 16:9 or 9:16
    resolution: str = ""
    audio: bool | None = None
    since: date | None = None
    until: date | None = None
    favourites: bool = False
    q: str = ""

    @property
    def narrowed(self) -> bool:
        return self != Filters()


@dataclass(frozen=True)
class Tile:
    """What the grid shows of one job: read as plain values (a page is 24 of these, and
    building 24 full Job and Clip models cost more than rendering them)."""

    job_id: int
    prompt: str
    status: str
    progress: int | None
    provider: str
    duration: int
    resolution: str
    aspect: str
    error: str
    clip_id: int | None
    width: int | None
    height: int | None
    length: float | None
    has_audio: bool | None
    favourite: bool | None

    @property
    def portrait(self) -> bool:
        if self.width and self.height:
            return self.width < self.height
        return self.aspect == Aspect.PORTRAIT

    @property
    def status_label(self) -> str:
        return str(Job.Status(self.status).label)

    @property
    def provider_label(self) -> str:
        return LABELS.get(self.provider, self.provider)

    @property
    def short_prompt(self) -> str:
        return _shorter(self.prompt, 90)

    @property
    def label_prompt(self) -> str:
        return _shorter(self.prompt, 60)

    @property
    def made(self) -> str:
        """The clip's resolution and aspect as read from its file: `720p · 9:16`."""
        if not (self.width and self.height):
            return ""
        return f"{min(self.width, self.height)}p · {'9:16' if self.portrait else '16:9'}"


def _shorter(text: str, most: int) -> str:
    """`text` cut to `most` characters with an ellipsis (Django's truncatechars, at a tenth
    of the cost: it is called three times a tile)."""
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


TILE_COLUMNS = (
    "pk", "prompt", "status", "progress", "provider", "duration", "resolution", "aspect",
    "error", "clip__pk", "clip__width", "clip__height", "clip__duration", "clip__has_audio",
    "clip__favourite",
)  # fmt: skip


@dataclass(frozen=True)
class Page:
    tiles: list[Tile]
    # The job to continue after ("older than this"), or None on the last page.
    older_than: int | None


def page(
    creator: User, filters: Filters, *, older_than: int | None = None, size: int = PAGE_SIZE
) -> Page:
    """One page of the creator's jobs matching `filters`, newest first (one query)."""
    found = filtered(creator, filters)
    if older_than is not None:
        found = found.filter(pk__lt=older_than)
    rows = [Tile(*row) for row in found.order_by("-pk").values_list(*TILE_COLUMNS)[: size + 1]]
    more = len(rows) > size
    rows = rows[:size]
    return Page(tiles=rows, older_than=rows[-1].job_id if more else None)


def filtered(creator: User, filters: Filters) -> QuerySet[Job]:
    jobs: QuerySet[Job] = creator.jobs.all()
    # A finished job whose clip was deleted has nothing to show.
    jobs = jobs.exclude(status=Job.Status.SUCCEEDED, clip__isnull=True)
    if filters.show == Show.READY:
        jobs = jobs.filter(status=Job.Status.SUCCEEDED)
    elif filters.show == Show.MAKING:
        jobs = jobs.exclude(status__in=Job.TERMINAL)
    elif filters.show == Show.FAILED:
        jobs = jobs.filter(status__in=ENDED_BADLY)
    else:
        jobs = jobs.exclude(status__in=ENDED_BADLY)
    if filters.provider:
        jobs = jobs.filter(provider=filters.provider)
    if filters.aspect:
        # A clip's shape is read from its file; a job without one goes by what it asked for.
        landscape = Q(clip__width__gte=F("clip__height"))
        portrait = Q(clip__width__lt=F("clip__height"))
        made = landscape if filters.aspect == Aspect.LANDSCAPE else portrait
        jobs = jobs.filter(made | Q(clip__isnull=True, aspect=filters.aspect))
    if filters.resolution:
        jobs = jobs.filter(resolution=filters.resolution)
    if filters.audio is not None:
        jobs = jobs.filter(
            Q(clip__has_audio=filters.audio) | Q(clip__isnull=True, audio=filters.audio)
        )
    if filters.since:
        jobs = jobs.filter(created_at__gte=_day_start(filters.since))
    if filters.until:
        jobs = jobs.filter(created_at__lt=_day_start(filters.until, next_day=True))
    if filters.favourites:
        jobs = jobs.filter(clip__favourite=True)
    for word in filters.q.split():
        jobs = jobs.filter(prompt__icontains=word)
    return jobs


def _day_start(day: date, *, next_day: bool = False) -> datetime:
    start = datetime.combine(day, time.min)
    if next_day:
        start = datetime.combine(date.fromordinal(day.toordinal() + 1), time.min)
    return timezone.make_aware(start)


# ----------------------------------------------------------------------------- the tray


@dataclass(frozen=True)
class Retry:
    """One way to try a job again: `how` is what the retry view is posted."""

    how: str
    label: str


@dataclass(frozen=True)
class TrayRow:
    job: Job
    retries: list[Retry]


@dataclass(frozen=True)
class Tray:
    rows: list[TrayRow]
    more: bool

    @property
    def count_words(self) -> str:
        count = f"{len(self.rows)}+" if self.more else str(len(self.rows))
        clips = "clip" if count == "1" else "clips"
        return f"{count} {clips} didn't make it"


def tray(creator: User) -> Tray:
    """The creator's failed and cancelled jobs not put away yet, newest first, each with
    the retries that make sense for it (one query, and one more when there are any)."""
    rows = list(
        # Newest first by time, not id: ordered by id, SQLite walks every one of the
        # creator's jobs in id order instead of the few failed ones in (creator, status).
        creator.jobs.filter(status__in=ENDED_BADLY, dismissed_at__isnull=True).order_by(
            "-created_at", "-pk"
        )[: TRAY_SIZE + 1]
    )
    shown = rows[:TRAY_SIZE]
    unavailable = health.unavailable_reasons() if shown else {}
    return Tray(
        rows=[TrayRow(job, retries(job, unavailable)) for job in shown],
        more=len(rows) > TRAY_SIZE,
    )


def retries(job: Job, unavailable: dict[str, str]) -> list[Retry]:
    """The retries that make sense for `job`: the same inputs; a new seed where the
    provider takes one; sound off when the refusal was about sound; another provider that
    can make the same clip. Each goes through the create form, and so through the same
    checks and reservation as a new job."""
    found: list[Retry] = []
    here = job.provider in LABELS and job.provider not in unavailable
    caps = capabilities_of(job.provider) if job.provider in LABELS else None
    if here:
        found.append(Retry("same", "Try again"))
        if caps is not None and caps.seed:
            found.append(Retry("new_seed", "New seed"))
        if job.audio and "audio" in job.error.lower() and caps is not None and caps.audio_toggle:
            found.append(Retry("no_audio", "Without sound"))
    options = job.options
    for name, label in LABELS.items():
        if name == job.provider or name in unavailable:
            continue
        if not preflight(capabilities_of(name), options):
            found.append(Retry(f"provider:{name}", f"Try at {label}"))
    return found


def retry_changes(job: Job, how: str) -> dict[str, str] | None:
    """The changes a retry makes to the job's recipe, or None for a `how` that is not one."""
    if how == "same":
        return {}
    if how == "new_seed":
        return {"seed": ""}
    if how == "no_audio":
        return {"audio": ""}
    if how.startswith("provider:") and how.removeprefix("provider:") in LABELS:
        return {"provider": how.removeprefix("provider:")}
    return None


def dismiss(creator: User, job_ids: list[int] | None = None) -> int:
    """Put failed and cancelled jobs away (all of them, or those of `job_ids`)."""
    jobs = creator.jobs.filter(status__in=ENDED_BADLY, dismissed_at__isnull=True)
    if job_ids is not None:
        jobs = jobs.filter(pk__in=job_ids)
    return jobs.update(dismissed_at=timezone.now())


# ---------------------------------------------------------------------------- recipes


def recipe_data(job: Job, **changes: str) -> dict[str, str]:
    """The job's recipe as the create form's data: what a retry posts, and what "Use these
    settings" fills the page with. Its stills are the ones it was made from, already fitted
    to its aspect."""
    data = {
        "mode": job.mode,
        "prompt": job.prompt,
        "negative_prompt": job.negative_prompt,
        "provider": job.provider,
        "duration": str(job.duration),
        "resolution": job.resolution,
        "aspect": job.aspect,
        "audio": "on" if job.audio else "",
        "seed": "" if job.seed is None else str(job.seed),
        "framing": job.framing or "crop",
        "image_id": str(job.image_id or ""),
        "last_frame_id": str(job.last_frame_id or ""),
        "copies": "1",
        "allow_failover": "on" if job.allow_failover else "",
    }
    data.update(changes)
    return {name: value for name, value in data.items() if value != ""}


def continue_data(clip: Clip) -> dict[str, str]:
    """A new clip that starts where `clip` ends: its last frame as the image, same settings."""
    still = last_frame_still(clip)
    return recipe_data(
        clip.job, mode=Mode.IMAGE, image_id=str(still.pk), last_frame_id="", framing=""
    )


def last_frame_still(clip: Clip) -> SourceImage:
    """The clip's last frame as one of the creator's stills (stored once, however often)."""
    with default_storage.open(clip.last_frame.name, "rb") as f:
        data = f.read()
    normalised = images.normalise(io.BytesIO(data), size=len(data))
    return images.store(clip.job.creator, normalised)
