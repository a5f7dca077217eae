"""Sequences: the creator's clips stitched into one film, in the worker, with PyAV
(studio/stitch.py).

A sequence is planned from clips the creator owns (their order and a cut or a crossfade of
0.25-1 s before each but the first), recorded with that recipe, and stitched by a task that
takes its id. The rules of any job hold: the task claims the row with one conditional
UPDATE under a lease (a second delivery does nothing), the film is written under a fixed
name per sequence (a run killed half-way is simply run again), and its end is one UPDATE
from *stitching*. The follower takes up a sequence whose task was lost or whose worker died
(`take_up_lost`). It costs nothing and counts against no limit: it is local work, and the
limits are on what providers are paid to make.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from studio import jobs, stitch, storage, video
from studio.models import Clip, Job, Sequence

log = logging.getLogger(__name__)

FADES = (0.25, 0.5, 0.75, 1.0)
MAX_CLIPS = 50
# A progress write at most this often (fractions of the film).
_PROGRESS_STEP = 0.05


class SequenceRefused(ValueError):
    """The clips or transitions asked for cannot make a film (the message says why)."""


@dataclass(frozen=True)
class Plan:
    """A film before it is made: its clips in order, the fade before each (0: a cut; the
    first is always 0), its length, and what it will change about the clips."""

    clips: list[Clip]
    fades: list[float]

    @property
    def length(self) -> float:
        return stitch.total_length([clip.duration for clip in self.clips], self.fades)

    @property
    def warnings(self) -> list[str]:
        shapes = [
            stitch.Shape(clip.width, clip.height, _fps(clip.fps), clip.duration, clip.has_audio)
            for clip in self.clips
        ]
        return stitch.warnings_for(shapes)


def _fps(value: float) -> stitch.Fraction:
    return stitch.Fraction(value).limit_denominator(1001)


def plan(creator: User, clip_ids: list[int], fades: list[float]) -> Plan:
    """The film of the creator's clips `clip_ids`, in that order, each begun by its fade in
    `fades` (the first clip's is ignored; missing ones are cuts). One query."""
    if not clip_ids:
        raise SequenceRefused("Choose the clips to stitch.")
    if len(clip_ids) > MAX_CLIPS:
        raise SequenceRefused(f"A sequence can have at most {MAX_CLIPS} clips.")
    found = {
        clip.pk: clip
        for clip in Clip.objects.filter(job__creator=creator, pk__in=clip_ids).select_related("job")
    }
    clips = [found[pk] for pk in clip_ids if pk in found]
    if len(clips) != len(clip_ids):
        raise SequenceRefused("One of those clips is not in your library any more.")
    fades = [0.0, *(list(fades[1:]) + [0.0] * len(clips))[: len(clips) - 1]]
    for fade, clip in zip(fades[1:], clips[1:], strict=True):
        if fade and fade not in FADES:
            raise SequenceRefused("A crossfade lasts 0.25, 0.5, 0.75 or 1 s.")
        if fade * 2 > clip.duration:
            raise SequenceRefused(f"A {fade:g} s crossfade is too long for a clip that short.")
    return Plan(clips=clips, fades=fades)


def create(creator: User, planned: Plan) -> Sequence:
    """Record the sequence with its recipe and stitch it in the worker once committed."""
    with transaction.atomic():
        sequence = Sequence.objects.create(
            creator=creator,
            title=planned.clips[0].job.prompt[:200],
            parts=[
                {
                    "clip": clip.pk,
                    "job": clip.job_id,
                    "prompt": clip.job.prompt,
                    "duration": clip.duration,
                    "fade": fade,
                }
                for clip, fade in zip(planned.clips, planned.fades, strict=True)
            ],
            warnings=planned.warnings,
        )
        transaction.on_commit(lambda: queue(sequence.pk))
    return sequence


def queue(sequence_id: int) -> None:
    async_task("studio.tasks.stitch_sequence", sequence_id)


def make(sequence_id: int) -> None:
    """Stitch the sequence (the task): at most one worker at a time, idempotent."""
    sequence = Sequence.objects.get(pk=sequence_id)
    if not sequence.claim(for_seconds=jobs.step_lease_seconds()):
        return
    clips = {c.pk: c for c in Clip.objects.filter(pk__in=[p["clip"] for p in sequence.parts])}
    missing = [p for p in sequence.parts if p["clip"] not in clips]
    if missing:
        _fail(sequence, f"“{missing[0]['prompt'][:60]}” was deleted before the film was made.")
        return
    done = {"at": 0.0}

    def on_progress(fraction: float) -> None:
        if fraction - done["at"] >= _PROGRESS_STEP:
            done["at"] = fraction
            Sequence.objects.filter(pk=sequence.pk, status=Sequence.Status.STITCHING).update(
                progress=int(fraction * 100)
            )

    with tempfile.TemporaryDirectory(prefix="studio-stitch-") as tmp:
        path = Path(tmp) / "film.mp4"
        pieces = [
            stitch.Piece(
                str(storage.local_path(clips[part["clip"]].file.name, Path(tmp) / f"{n}.mp4")),
                part["fade"],
            )
            for n, part in enumerate(sequence.parts)
        ]
        try:
            made = stitch.stitch(pieces, path, on_progress)
            info, poster = video.probe_with_poster(path)
        except video.VideoError as exc:
            _fail(sequence, str(exc))
            return
        # Fixed names per sequence: a run killed half-way leaves nothing to orphan.
        base = f"sequences/{sequence.creator_id}/sequence-{sequence.pk}"
        file_name = jobs.replace_file(f"{base}.mp4", path)
        poster_name = jobs.replace_file(f"{base}.jpg", ContentFile(poster))
    Sequence.objects.filter(pk=sequence.pk, status=Sequence.Status.STITCHING).update(
        status=Sequence.Status.SUCCEEDED,
        progress=100,
        file=file_name,
        poster=poster_name,
        width=info.width,
        height=info.height,
        fps=info.fps,
        duration=info.duration,
        has_audio=info.has_audio,
        size_bytes=info.size_bytes,
        warnings=made.warnings,
        lease_until=None,
        finished_at=timezone.now(),
    )


def _fail(sequence: Sequence, message: str) -> None:
    Sequence.objects.filter(pk=sequence.pk, status=Sequence.Status.STITCHING).update(
        status=Sequence.Status.FAILED, error=message, lease_until=None, finished_at=timezone.now()
    )


def take_up_lost(now: datetime) -> int:
    """Queue again each sequence whose task was lost (queued a while) or whose worker died
    (stitching, its lease run out), at most once per grace period each; the claim keeps
    it to one worker. Called by the follower."""
    Sequence.objects.filter(status=Sequence.Status.STITCHING, lease_until__lt=now).update(
        status=Sequence.Status.QUEUED, lease_until=None
    )
    lost = list(
        Sequence.objects.filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now),
            status=Sequence.Status.QUEUED,
            created_at__lt=now - Job.TASK_GRACE,
        ).values_list("pk", flat=True)
    )
    for pk in lost:
        log.warning("taking up sequence %s, whose stitching was lost", pk)
        Sequence.objects.filter(pk=pk, status=Sequence.Status.QUEUED).update(
            lease_until=now + Job.TASK_GRACE
        )
        queue(pk)
    return len(lost)


def delete(sequence: Sequence) -> None:
    names = [name for name in (sequence.file.name, sequence.poster.name) if name]
    with transaction.atomic():
        sequence.delete()
        transaction.on_commit(lambda: _delete_files(names))


def _delete_files(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)
