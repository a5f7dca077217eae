"""The local renderer: a free provider that makes the clip in our own worker with PyAV.

It speaks the same protocol as a hosted provider. Its "server side" is the LocalRender
table and the `render` function, which a worker task runs; submit, poll and fetch only look
at that table, exactly as they would call out to a provider's API.
"""

import logging
import shutil
import tempfile
import time
import zlib
from datetime import timedelta
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from studio import video
from studio.images import open_image
from studio.models import LocalRender
from studio.providers.base import (
    GenerationRequest,
    Handle,
    NotFoundError,
    Phase,
    PollResult,
    Provider,
)
from studio.providers.capabilities import Capabilities

log = logging.getLogger(__name__)

# A render reports progress at least this often; one silent for longer was killed.
STALE_AFTER = timedelta(seconds=30)
PROGRESS_EVERY_SECONDS = 0.5

_PHASES = {
    LocalRender.Status.QUEUED: Phase.QUEUED,
    LocalRender.Status.RENDERING: Phase.RUNNING,
    LocalRender.Status.DONE: Phase.SUCCEEDED,
    LocalRender.Status.FAILED: Phase.FAILED,
    LocalRender.Status.CANCELLED: Phase.CANCELLED,
}


class LocalProvider(Provider):
    name = "local"
    label = "Local renderer"
    idempotent_submit = True  # one render per job reference, however often it is sent
    poll_interval_seconds = 1.0
    reads_database = True
    capabilities = Capabilities(label="The local renderer")  # every option, no extra rules

    def submit(self, request: GenerationRequest) -> Handle:
        image_size = (request.image.width, request.image.height) if request.image else None
        width, height = video.output_size(request.aspect, request.resolution, image_size)
        seed = request.seed if request.seed is not None else zlib.crc32(request.reference.encode())
        spec = {
            "mode": request.mode,
            "prompt": request.prompt,
            "duration": request.duration,
            "width": width,
            "height": height,
            "audio": request.audio,
            "seed": seed,
            "image": request.image.name if request.image else None,
            "last_frame": request.last_frame.name if request.last_frame else None,
        }
        render, _ = LocalRender.objects.get_or_create(
            client_reference=request.reference, defaults={"spec": spec}
        )
        if render.status == LocalRender.Status.QUEUED:
            _enqueue_render(render)
        return Handle(provider_job_id=str(render.pk))

    def poll(self, handle: Handle) -> PollResult:
        render = _get(handle)
        if render.status == LocalRender.Status.QUEUED:
            ahead = LocalRender.objects.filter(
                status=LocalRender.Status.QUEUED, created_at__lt=render.created_at
            ).count()
            return PollResult(Phase.QUEUED, queue_position=ahead)
        if render.status == LocalRender.Status.RENDERING and _is_stale(render):
            # The worker rendering it died; the broker redelivers the task eventually,
            # but a nudge costs nothing because render() claims before working.
            _enqueue_render(render)
        return PollResult(
            _PHASES[render.status],
            progress=render.progress,
            result_url=render.output,
            error=render.error,
        )

    def fetch(self, handle: Handle, result_url: str, dest: Path) -> None:
        render = _get(handle)
        if render.status != LocalRender.Status.DONE or not render.output:
            raise NotFoundError("The local render has no finished clip.")
        with default_storage.open(render.output, "rb") as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 1024 * 1024)

    def cancel(self, handle: Handle) -> None:
        LocalRender.objects.filter(
            pk=handle.provider_job_id,
            status__in=[LocalRender.Status.QUEUED, LocalRender.Status.RENDERING],
        ).update(status=LocalRender.Status.CANCELLED)

    def discard(self, handle: Handle) -> None:
        render = LocalRender.objects.filter(pk=handle.provider_job_id).first()
        if render:
            if render.output:
                default_storage.delete(render.output)
            render.delete()


def _get(handle: Handle) -> LocalRender:
    try:
        return LocalRender.objects.get(pk=handle.provider_job_id)
    except (LocalRender.DoesNotExist, ValueError):
        raise NotFoundError("The local renderer has no such job.") from None


def _is_stale(render: LocalRender) -> bool:
    return render.heartbeat_at is None or render.heartbeat_at < timezone.now() - STALE_AFTER


def _enqueue_render(render: LocalRender) -> None:
    transaction.on_commit(lambda: async_task("studio.tasks.render_locally", str(render.pk)))


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
    job = LocalRender.objects.get(pk=render_id)
    spec = job.spec
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
        size = (spec["width"], spec["height"])
        first = (
            open_image(spec["image"])
            if spec["image"]
            else video.title_card(spec["prompt"], spec["seed"], size)
        )
        last = open_image(spec["last_frame"]) if spec["last_frame"] else None
        clip_spec = video.RenderSpec(
            width=spec["width"],
            height=spec["height"],
            duration=spec["duration"],
            motion=video.motion_for_prompt(spec["prompt"]),
            audio=spec["audio"],
            seed=spec["seed"],
        )
        with tempfile.TemporaryDirectory(prefix="studio-render-") as tmp:
            out = Path(tmp) / "clip.mp4"
            video.render_clip(first, last, clip_spec, out, on_progress=report)
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
        reason = str(exc) if isinstance(exc, video.VideoError) else type(exc).__name__
        rendering.update(
            status=LocalRender.Status.FAILED,
            error=f"The local renderer could not make this clip ({reason}).",
        )
        return
    if not rendering.update(status=LocalRender.Status.DONE, output=name, progress=1.0):
        default_storage.delete(name)  # cancelled while we were saving
