"""Clips out of Studio: one ZIP with their MP4s, the stills they were made from, and their
recipes as `recipe.csv` and `recipe.json` (one row per clip: everything its page shows,
plus the names of its files in the archive).

The archive is written as it is sent: the standard library's zipfile writes to a pipe that
is emptied after every chunk of every file, so neither the archive nor a whole clip is ever
held in memory (zipfile, given a stream it cannot seek, writes each member's sizes after
its data). The browser's download and `manage.py export` use the same generator.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.utils import timezone

from studio.models import Clip, Job, download_name

CHUNK = 256 * 1024
COLUMNS = (
    "clip", "job", "file", "image_file", "last_frame_file", "prompt", "negative_prompt",
    "mode", "duration_requested", "duration", "resolution", "aspect", "width", "height",
    "fps", "audio_requested", "has_audio", "seed", "seed_picked_by_studio", "provider",
    "model", "provider_request_id", "cost_usd", "charge", "favourite", "created_at", "started_at",
    "finished_at", "size_bytes",
)  # fmt: skip


def clips_for_export(clips: QuerySet[Clip]) -> list[Clip]:
    """`clips` with what a recipe reads, newest first (one query)."""
    return list(clips.select_related("job__image", "job__last_frame").order_by("-pk"))


def recipe(clip: Clip) -> dict[str, Any]:
    """One clip's row: its recipe, as on its page, and its files' names in the archive."""
    job: Job = clip.job
    started = job.submitted_at or job.admitted_at
    return {
        "clip": clip.pk,
        "job": job.pk,
        "file": clip.download_name,
        "image_file": _still_name(job, "image") if job.image_id else "",
        "last_frame_file": _still_name(job, "last-frame") if job.last_frame_id else "",
        "prompt": job.prompt,
        "negative_prompt": job.negative_prompt,
        "mode": job.mode,
        "duration_requested": job.duration,
        "duration": round(clip.duration, 3),
        "resolution": job.resolution,
        "aspect": job.aspect,
        "width": clip.width,
        "height": clip.height,
        "fps": round(clip.fps, 3),
        "audio_requested": job.audio,
        "has_audio": clip.has_audio,
        "seed": job.seed,
        "seed_picked_by_studio": job.seed_drawn,
        "provider": job.provider,
        "model": job.model,
        "provider_request_id": job.provider_job_id,
        "cost_usd": str(job.estimated_cost),
        "charge": job.get_charge_display() if job.charge else "",
        "favourite": clip.favourite,
        "created_at": job.created_at.isoformat(),
        "started_at": started.isoformat() if started else "",
        "finished_at": job.finished_at.isoformat() if job.finished_at else "",
        "size_bytes": clip.size_bytes,
    }


def _still_name(job: Job, role: str) -> str:
    return "stills/" + download_name(job.prompt, job.pk, f"-{role}.jpg")


def recipe_csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def recipe_json(rows: list[dict[str, Any]]) -> bytes:
    return json.dumps({"clips": rows}, indent=2, ensure_ascii=False).encode()


class _Pipe(io.RawIOBase):
    """What zipfile writes to: the bytes written since last taken. Not seekable, so
    zipfile streams (data descriptors after each member)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def stream(clips: Iterable[Clip]) -> Iterator[bytes]:
    """The ZIP of `clips` (see clips_for_export), a piece at a time."""
    clips = list(clips)
    rows = [recipe(clip) for clip in clips]
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_member("recipe.csv", deflate=True), recipe_csv(rows))
        archive.writestr(_member("recipe.json", deflate=True), recipe_json(rows))
        yield pipe.take()
        for clip, row in zip(clips, rows, strict=True):
            files = [(row["file"], clip.file.name)]
            for column, still in (
                ("image_file", clip.job.image),
                ("last_frame_file", clip.job.last_frame),
            ):
                if still is not None:
                    files.append((row[column], still.file.name))
            for name, stored in files:
                # MP4 and JPEG are compressed already: stored as they are.
                with (
                    default_storage.open(stored, "rb") as source,
                    archive.open(_member(name, deflate=False), "w") as member,
                ):
                    while chunk := source.read(CHUNK):
                        member.write(chunk)
                        yield pipe.take()
                yield pipe.take()
    yield pipe.take()


def _member(name: str, *, deflate: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=timezone.localtime().timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def archive_name(count: int) -> str:
    return f"studio-{count}-clip{'s' if count != 1 else ''}-{timezone.localdate():%Y-%m-%d}.zip"
