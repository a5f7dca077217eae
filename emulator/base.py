"""What the emulator's core and its provider modules share.

A provider's emulator is a `ProviderEmulator` subclass in its own module: it answers every
request under `/<name>/` on the emulator's port, speaking that provider's protocol, and keeps
its jobs, failures and webhooks in the shared server (`self.server`, an `Emulator`). Besides
the base class, this module holds the vocabulary both sides use: the `Reply` a provider
returns, the `Job` it tracks, the `ClipParams` it asks the renderer for, the failures that
can be injected, and the small decoders every provider needs for what it receives.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from PIL import Image, UnidentifiedImageError

if TYPE_CHECKING:
    from emulator.server import Emulator

KINDS = ("policy", "rate_limit", "server_error", "timeout", "malformed", "expired", "truncated")
STAGES = ("submit", "poll", "run", "download")
TRANSIENT_KINDS = ("rate_limit", "server_error", "timeout", "malformed")
DEFAULT_STAGE = {
    "policy": "run",
    "rate_limit": "poll",
    "server_error": "submit",
    "timeout": "poll",
    "malformed": "poll",
    "expired": "download",
    "truncated": "download",
}

REJECTED_KEY = "invalid"
NO_CREDIT_KEY = "no-credit"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


class FailureSpec:
    """One failure to inject: which kind, at which stage, how many times (0 = always)."""

    def __init__(self, kind: str, stage: str | None = None, times: int = 1):
        if kind not in KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; choose from {', '.join(KINDS)}")
        stage = stage or DEFAULT_STAGE[kind]
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; choose from {', '.join(STAGES)}")
        self.kind, self.stage = kind, stage
        self.times = times if kind in TRANSIENT_KINDS else 0

    def __repr__(self) -> str:
        return f"FailureSpec({self.kind!r}, {self.stage!r}, times={self.times})"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # answer only after the emulator's hang time
    truncate: bool = False  # promise the whole body, send half, drop the connection
    unsized: bool = False  # no Content-Length: the body ends when the connection closes


def json_reply(status: int, data, headers: dict | None = None) -> Reply:
    return Reply(status, json.dumps(data).encode(), headers=dict(headers or {}))


def transient(spec: FailureSpec, shapes: dict[str, Callable[[], Reply]]) -> Reply:
    """The reply for a transient failure: `shapes` holds the provider's own "rate_limit" and
    "server_error" replies, and "ok", the reply a timeout hangs before sending."""
    if spec.kind == "timeout":
        reply = shapes["ok"]()
        reply.hang = True
        return reply
    if spec.kind == "malformed":
        return Reply(200, b'{"status": "IN_PROG', content_type="application/json")
    return shapes[spec.kind]()


@dataclass(frozen=True)
class ClipParams:
    width: int
    height: int
    duration: int
    audio: bool
    motion: str
    title: str
    image: bytes | None = None
    last: bytes | None = None

    def key(self) -> tuple:
        digest = [hashlib.sha256(b).hexdigest() if b else None for b in (self.image, self.last)]
        title = "" if self.image else self.title  # the title card is used only without a still
        return (self.width, self.height, self.duration, self.audio, self.motion, title, *digest)


@dataclass
class Job:
    id: str
    provider: str
    created: float
    latency: float
    failures: list[FailureSpec]
    clip: Future | None = None
    run_error: str = ""  # a validation error found when the job runs (Oxen)
    cancelled: bool = False
    info: dict = field(default_factory=dict)

    def run_failure(self) -> str:
        """The kind ("policy" or "server_error") when the generation itself is to fail, else ""."""
        for spec in self.failures:
            if spec.stage == "run":
                return "policy" if spec.kind == "policy" else "server_error"
        return ""


class ProviderEmulator:
    """One provider's protocol, served under `/<name>/`.

    To add a provider: a new module with one subclass that sets `name` and `key_setting`,
    returns Studio's settings for it from `settings()`, and answers in `handle()`; then list
    the class in `emulator.server.PROVIDERS`.
    """

    # The first segment of its paths, and how its requests and jobs are labelled: Studio's
    # name for the provider.
    name: ClassVar[str]
    # Studio's setting for its API key (any non-empty value is accepted).
    key_setting: ClassVar[str]
    # True: `handle` gets the path as sent, still percent-encoded (where an encoded slash
    # means something, as in Cloud Storage's object names); else decoded.
    raw_paths: ClassVar[bool] = False

    def __init__(self, server: Emulator):
        self.server = server

    def settings(self, origin: str) -> dict[str, str]:
        """Studio's base-URL settings that point this provider at `origin`."""
        raise NotImplementedError

    def webhook_settings(self, origin: str) -> dict[str, str]:
        """What Studio needs to verify this provider's webhooks from here, if it sends any."""
        return {}

    def reset(self) -> None:
        """Forget what this provider keeps beyond the shared jobs (called under the lock)."""

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        origin: str,
    ) -> Reply:
        """Answer one request: `path` starts with `/<name>/`, `headers` are lower-cased,
        `origin` is where the client reached the emulator (for the URLs in replies)."""
        raise NotImplementedError

    # ------------------------------------------------------------------- for subclasses

    def new_job(self, failures: list[FailureSpec], **info) -> Job:
        return self.server.new_job(self.name, failures, **info)

    def job(self, job_id: str) -> Job | None:
        """This provider's job `job_id`, or None (another provider's ids are unknown here)."""
        return self.server.job(self.name, job_id)

    def download(self, job: Job, expired: Callable[[], Reply]) -> Reply:
        """The clip's MP4, or `expired()` (the provider's answer for a file that is gone),
        with the download stage's failures injected."""
        spec = self.server.take_failure(job.id, job.failures, "download")
        if spec is not None and spec.kind == "expired":
            return expired()
        if job.clip is None:
            return expired()
        reply = Reply(200, job.clip.result(), content_type="video/mp4")
        if spec is not None and spec.kind == "truncated":
            reply.truncate = True
        elif spec is not None and spec.kind in TRANSIENT_KINDS:
            return transient(
                spec,
                {
                    "ok": lambda: reply,
                    "rate_limit": lambda: Reply(
                        429, b"Too Many Requests", "text/plain", {"Retry-After": "1"}
                    ),
                    "server_error": lambda: Reply(503, b"Service Unavailable", "text/plain"),
                },
            )
        return reply


# --------------------------------------------------------------------------- decoding input


def load(body: bytes):
    try:
        return json.loads(body or b"null")
    except ValueError:
        return None


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def b64(value) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def data_uri_bytes(uri) -> bytes | None:
    match = re.fullmatch(r"data:(image/[\w.+-]+);base64,(.*)", uri or "", re.DOTALL)
    return b64(match.group(2)) if match else None


def image_size(data: bytes | None) -> tuple[int, int] | None:
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError):
        return None
