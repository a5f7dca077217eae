"""The local renderer's side of the provider protocol.

It speaks the same protocol as a hosted provider. Its "server side" is the LocalRender table
and the render task (worker.py); submit, poll and fetch only look at that table, exactly as
they would call out to a provider's API.
"""

from __future__ import annotations

import shutil
import zlib
from datetime import timedelta
from pathlib import Path

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from studio.models import LocalRender
from studio.options import ClipOptions
from studio.providers.base import (
    CancelOutcome,
    GenerationRequest,
    Handle,
    HealthCheck,
    NotFoundError,
    Phase,
    PollResult,
    Provider,
)
from studio.providers.local.capabilities import CAPABILITIES
from studio.providers.names import LABELS

# A render reports progress at least this often; one silent for longer was killed.
STALE_AFTER = timedelta(seconds=30)

_PHASES = {
    LocalRender.Status.QUEUED: Phase.QUEUED,
    LocalRender.Status.RENDERING: Phase.RUNNING,
    LocalRender.Status.DONE: Phase.SUCCEEDED,
    LocalRender.Status.FAILED: Phase.FAILED,
    LocalRender.Status.CANCELLED: Phase.CANCELLED,
}


class LocalProvider(Provider):
    name = "local"
    label = LABELS[name]
    idempotent_submit = True  # one render per job reference, however often it is sent
    poll_interval_seconds = 1.0
    free = True
    runs_here = True
    cancels_queued = True
    stops_running = True
    capabilities = CAPABILITIES

    def check(self) -> HealthCheck:
        return HealthCheck(key_ok=None, model_ok=None, message="runs here: nothing to check")

    def model_id(self, options: ClipOptions) -> str:
        return "studio-local-renderer"

    def _submit(self, request: GenerationRequest) -> Handle:
        options = request.options
        seed = options.seed if options.seed is not None else zlib.crc32(request.reference.encode())
        spec = {"options": options.to_json(), "seed": seed}
        render, _ = LocalRender.objects.get_or_create(
            client_reference=request.reference, defaults={"spec": spec}
        )
        if render.status == LocalRender.Status.QUEUED:
            enqueue(render)
        return Handle(provider_job_id=str(render.pk))

    def poll(self, handle: Handle) -> PollResult:
        render = _get(handle)
        if render.status == LocalRender.Status.QUEUED:
            ahead = LocalRender.objects.filter(
                status=LocalRender.Status.QUEUED, created_at__lt=render.created_at
            ).count()
            return PollResult(Phase.QUEUED, queue_position=ahead)
        if render.status == LocalRender.Status.RENDERING and is_stale(render):
            # The worker rendering it died; the broker redelivers the task eventually,
            # but a nudge costs nothing because the task claims before working.
            enqueue(render)
        return PollResult(
            _PHASES[LocalRender.Status(render.status)],
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

    def cancel(self, handle: Handle) -> CancelOutcome:
        stopped = LocalRender.objects.filter(
            pk=handle.provider_job_id,
            status__in=[LocalRender.Status.QUEUED, LocalRender.Status.RENDERING],
        ).update(status=LocalRender.Status.CANCELLED)
        return CancelOutcome.STOPPED if stopped else CancelOutcome.CANNOT_STOP

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


def is_stale(render: LocalRender) -> bool:
    return render.heartbeat_at is None or render.heartbeat_at < timezone.now() - STALE_AFTER


def enqueue(render: LocalRender) -> None:
    transaction.on_commit(lambda: async_task("studio.tasks.render_locally", str(render.pk)))


PROVIDER = LocalProvider
