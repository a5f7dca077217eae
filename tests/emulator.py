"""The provider emulator for tests: one server per test process, on a free loopback port.

Each provider test module asks for it with a two-line fixture:

    @pytest.fixture
    def emulator(settings):
        return use_emulator(settings)

which resets the emulator and points Studio's base URLs and keys at it for that test only
(pytest-django's `settings` fixture restores them afterwards).
"""

import atexit
import io
import time

from emulator import Emulator
from studio import images, jobs
from studio.models import Job
from tests.factories import create_job, photo

# Short enough that a test polls a handful of times; long enough to see the queue.
LATENCY = 0.15
HANG_SECONDS = 2.0
KEYS = {
    "FAL_KEY": "test-fal-key",
    "GEMINI_API_KEY": "test-gemini-key",
    "AIMLAPI_KEY": "test-aimlapi-key",
    "OXEN_API_KEY": "test-oxen-key",
    # Vertex AI's key is the service-account file the emulator writes (its settings()).
    "VERTEX_PROJECT": "test-project",
}

_server: Emulator | None = None


def shared_emulator() -> Emulator:
    global _server
    if _server is None:
        _server = Emulator(latency=LATENCY, hang_seconds=HANG_SECONDS).start()
        atexit.register(_server.stop)
    return _server


def use_emulator(settings, **keys) -> Emulator:
    emulator = shared_emulator()
    emulator.reset()
    emulator.latency = LATENCY
    emulator.hang_seconds = HANG_SECONDS
    emulator.fail_times = 1
    for name, value in {**emulator.settings(), **KEYS, **keys}.items():
        setattr(settings, name, value)
    return emulator


def still(creator, width: int = 1600, height: int = 900):
    data = photo(width, height)
    return images.store(creator, images.normalise(io.BytesIO(data), size=len(data)))


def new_job(creator, provider: str, **options) -> Job:
    fields = dict(
        mode=Job.Mode.IMAGE, prompt="Slow pan left over the hills", duration=4,
        resolution="720p", aspect="auto", audio=True, seed=None,
    )  # fmt: skip
    fields.update(options)
    if fields["mode"] != Job.Mode.TEXT and "image" not in fields:
        fields["image"] = still(creator)
    return create_job(creator=creator, provider=provider, **fields)


def submitted(job: Job) -> Job:
    jobs.submit(job.pk)
    job.refresh_from_db()
    return job


def follow(job: Job, timeout: float = 15.0) -> Job:
    """Poll the way the follower does (ignoring next_check_at) until the provider is done."""
    deadline = time.monotonic() + timeout
    while job.status in Job.AT_PROVIDER:
        assert time.monotonic() < deadline, f"job still {job.status} after {timeout} s"
        jobs.refresh_status(job)
        job.refresh_from_db()
        if job.status in Job.AT_PROVIDER:
            time.sleep(0.03)
    return job


def finished(job: Job) -> Job:
    """Submit, follow and finish one job through the real engine."""
    job = follow(submitted(job))
    if job.status == Job.Status.FINISHING:
        jobs.finish(job.pk)
        job.refresh_from_db()
    return job
