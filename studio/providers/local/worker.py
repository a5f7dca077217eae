"""The local renderer's server side: the task that makes one LocalRender's clip."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone

from studio.images import open_image
from studio.models import LocalRender
from studio.options import ClipOptions
from studio.providers.local import renderer
from studio.providers.local.client import STALE_AFTER
from studio.video import VideoError

log = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 0.5


class _Cancelled(Exception):
    pass


def render(render_id: str) -> None:
    """Make the clip for one LocalRender. Safe to run twice: only one run claims it."""
    now = timezone.now()
    claimed = (
        LocalRender.objects.filter(pk=render_id)
        .filter(
            Q(status=LocalRender.Status.QUEUED)
            | Q(status=LocalRender.Status.RENDERING, heartbeat_at__lt=now - STALE_AFTER)
        )
        .update(status=LocalRender.Status.RENDERING, heartbeat_at=now, progress=0)
    )
    if not claimed:
        return
    render_row = LocalRender.objects.get(pk=render_id)
    options = ClipOptions.from_json(render_row.spec["options"])
    seed: int = render_row.spec["seed"]
    rendering = LocalRender.objects.filter(pk=render_id, status=LocalRender.Status.RENDERING)
    last_report = 0.0

    def report(fraction: float) -> None:
        nonlocal last_report
        if time.monotonic() - last_report < PROGRESS_EVERY_SECONDS:
            return
        last_report = time.monotonic()
        if not rendering.update(progress=fraction, heartbeat_at=timezone.now()):
            raise _Cancelled

    try:
        width, height = options.frame_size()
        if options.image:
            first = open_image(options.image.name)
        else:
            first = renderer.title_card(options.prompt, seed, (width, height))
        last = open_image(options.last_frame.name) if options.last_frame else None
        spec = renderer.RenderSpec(
            width=width,
            height=height,
            duration=options.duration,
            motion=renderer.motion_for_prompt(options.prompt),
            audio=options.audio,
            seed=seed,
        )
        with tempfile.TemporaryDirectory(prefix="studio-render-") as tmp:
            out = Path(tmp) / "clip.mp4"
            renderer.render_clip(first, last, spec, out, on_progress=report)
            name = f"renders/{render_id}.mp4"
            # A run killed after saving leaves the file: replace it rather than add a copy.
            if default_storage.exists(name):
                default_storage.delete(name)
            with open(out, "rb") as f:
                name = default_storage.save(name, File(f))
    except _Cancelled:
        return
    except Exception as exc:
        log.exception("local render %s failed", render_id)
        reason = str(exc) if isinstance(exc, VideoError) else type(exc).__name__
        rendering.update(
            status=LocalRender.Status.FAILED,
            error=f"The local renderer could not make this clip ({reason}).",
        )
        return
    if not rendering.update(status=LocalRender.Status.DONE, output=name, progress=1.0):
        default_storage.delete(name)  # cancelled while we were saving
