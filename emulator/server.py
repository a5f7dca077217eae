"""The emulator's core: one stdlib HTTP server for every provider, routed by path prefix.

It records each request, serves the routes tests add, and hands the rest to the provider
emulator named by the path's first segment (`PROVIDERS`). What every provider shares lives
here: failures to inject (from a prompt's marker or for every job), the jobs and how far
along each is (queued with a position, running with progress, done), the clips rendered as
real MP4s with the local renderer's `render_clip`, and webhooks POSTed when a job ends.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from emulator import aimlapi, fal, gemini, oxen, vertex
from emulator.base import ClipParams, FailureSpec, Job, ProviderEmulator, Reply, json_reply
from studio.providers.local import renderer

# Every provider the emulator speaks, each under /<name>/; settings() lists theirs in this order.
PROVIDERS: tuple[type[ProviderEmulator], ...] = (
    fal.FalEmulator,
    gemini.GeminiEmulator,
    vertex.VertexEmulator,
    aimlapi.AimlapiEmulator,
    oxen.OxenEmulator,
)

_MARKER = re.compile(r"\[fail:([a-z_]+)(?:@([a-z]+))?\]")

# The share of the generation time a job spends waiting in the queue.
QUEUE_SHARE = 0.3
WEBHOOK_TIMEOUT = 10.0


@dataclass(frozen=True)
class Recorded:
    """One request the emulator received, for tests to inspect."""

    provider: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    raw_path: str = ""  # the path as sent, still percent-encoded

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True)
class SentWebhook:
    """One webhook the emulator POSTed, and the answer it got (0: no answer)."""

    provider: str
    url: str
    body: bytes
    status: int
    sent_at: float = 0.0  # wall clock (time.time()) when the POST began
    answered_in: float = 0.0  # seconds until the answer (or the failure)

    @property
    def json(self):
        return json.loads(self.body)


_clip_cache: dict[tuple, bytes] = {}
_clip_lock = threading.Lock()


def render_mp4(params: ClipParams) -> bytes:
    """A real H.264 MP4 for `params`, cached for the life of the process (tests reuse them)."""
    key = params.key()
    with _clip_lock:  # one render at a time: each already uses both cores
        if key in _clip_cache:
            return _clip_cache[key]
        size = (params.width, params.height)
        first = (
            Image.open(io.BytesIO(params.image))
            if params.image
            else renderer.title_card(params.title, 0, size)
        )
        last = Image.open(io.BytesIO(params.last)) if params.last else None
        spec = renderer.RenderSpec(
            width=params.width,
            height=params.height,
            duration=params.duration,
            motion=params.motion,
            audio=params.audio,
            seed=0,
        )
        with tempfile.TemporaryDirectory(prefix="studio-emulator-") as tmp:
            out = Path(tmp) / "clip.mp4"
            renderer.render_clip(first, last, spec, out)
            data = out.read_bytes()
        _clip_cache[key] = data
        return data


class Emulator:
    """The server's state and behaviour; `start()` serves it from a background thread."""

    def __init__(
        self,
        *,
        latency: float = 10.0,
        fail: list[str] | tuple[str, ...] = (),
        fail_times: int = 1,
        hang_seconds: float = 60.0,
        retry_after: int = 7,
    ):
        # Quote the credentials a request carried in the messages of its reply, as a careless
        # service might: Studio must never show, store or log them (tests/test_secrets.py).
        self.echo_keys = False
        self.latency = latency
        self.fail_times = fail_times
        self.fail = [FailureSpec(*_split(kind), times=fail_times) for kind in fail]
        self.hang_seconds = hang_seconds
        # For load tests: a delay before every answer, and the most requests seen in flight
        # at once per provider (the follower promises a bound).
        self.answer_delay = 0.0
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.retry_after = retry_after
        self.requests: list[Recorded] = []
        self.webhooks_sent: list[SentWebhook] = []
        self.providers: dict[str, ProviderEmulator] = {p.name: p(self) for p in PROVIDERS}
        self._generation = 0  # webhooks still pending from before a reset() are dropped
        self.routes: dict[tuple[str, str], Reply | Callable[[], Reply]] = {}
        self._jobs: dict[str, Job] = {}
        self._failures_left: dict[tuple, int] = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emulator-render")
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # The webhook keys, made fresh for each emulator (nothing to keep secret, nothing to
    # configure), by the names tests sign and verify with.
    @property
    def fal_signing_key(self) -> Ed25519PrivateKey:
        provider = self.providers["fal"]
        assert isinstance(provider, fal.FalEmulator)
        return provider.signing_key

    @property
    def gemini_webhook_secret(self) -> str:
        provider = self.providers["gemini"]
        assert isinstance(provider, gemini.GeminiEmulator)
        return provider.webhook_secret

    @property
    def vertex(self) -> vertex.VertexEmulator:
        """Vertex AI's service accounts and tokens (key_file, forget_tokens, token_lifetime)."""
        provider = self.providers["vertex"]
        assert isinstance(provider, vertex.VertexEmulator)
        return provider

    # ----------------------------------------------------------------------- running

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Emulator:
        self._server = self._make_server(host, port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="provider-emulator", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self, host: str = "127.0.0.1", port: int = 8765) -> None:
        self._server = self._make_server(host, port)
        try:
            self._server.serve_forever()
        finally:
            self.stop()

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
            self._server.server_close()
        self._renderer.shutdown(wait=False, cancel_futures=True)

    def _make_server(self, host: str, port: int) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer((host, port), _Handler)
        server.daemon_threads = True
        server.emulator = self  # type: ignore[attr-defined]
        return server

    @property
    def origin(self) -> str:
        assert self._server is not None, "start the emulator first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def settings(self, origin: str | None = None) -> dict[str, str]:
        """The settings that point Studio here: base URLs, and what verifies the webhooks
        (they are asked for only when Studio's STUDIO_PUBLIC_URL is set too)."""
        origin = origin or self.origin
        settings: dict[str, str] = {}
        for provider in self.providers.values():
            settings.update(provider.settings(origin))
        for provider in self.providers.values():
            settings.update(provider.webhook_settings(origin))
        return settings

    def reset(self) -> None:
        """Forget jobs, uploads, recorded requests and test routes (the clip cache stays)."""
        with self._lock:
            self.requests.clear()
            self.routes.clear()
            self._jobs.clear()
            for provider in self.providers.values():
                provider.reset()
            self._failures_left.clear()
            self.fail = []
            self.webhooks_sent.clear()
            self.in_flight.clear()
            self.max_in_flight.clear()
            self.answer_delay = 0.0
            self.echo_keys = False
            self._generation += 1

    def requests_to(self, provider: str, method: str | None = None) -> list[Recorded]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.provider == provider and (method is None or r.method == method)
            ]

    def job_times(self) -> dict[str, tuple[str, float, float]]:
        """Each job's id → (provider, accepted, done): when the emulator took the job and when
        it was ready (accepted + latency), as wall-clock seconds (`time.time()`), so a
        benchmark can set them against Studio's own timestamps."""
        offset = time.time() - time.monotonic()
        with self._lock:
            return {
                job.id: (job.provider, job.created + offset, job.created + job.latency + offset)
                for job in self._jobs.values()
            }

    def add_route(self, method: str, path: str, reply: Reply | Callable[[], Reply]) -> str:
        """Serve `reply` (or what calling it returns) at `path`, for tests of odd answers:
        redirects, content types, cut transfers. Returns the route's URL."""
        self.routes[(method.upper(), path)] = reply
        return f"{self.origin}{path}"

    # ----------------------------------------------------------------------- dispatch

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(raw_path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        provider = path.strip("/").split("/", 1)[0]
        with self._lock:
            self.requests.append(
                Recorded(provider, method, path, query, headers, body, raw_path=parts.path)
            )
        route = self.routes.get((method, path))
        if route is not None:
            return route() if callable(route) else route
        origin = f"http://{headers.get('host', '')}"
        app = self.providers.get(provider)
        if app is None:
            return json_reply(404, {"error": "no such emulator route"})
        try:
            reply = app.handle(
                method, parts.path if app.raw_paths else path, query, headers, body, origin
            )
        except Exception as exc:  # a bug here should look like a server error, not a hang
            return json_reply(500, {"error": f"emulator error: {type(exc).__name__}: {exc}"})
        return _echo_credentials(reply, headers) if self.echo_keys else reply

    # ----------------------------------------------------------------------- failures

    def failures_for(self, prompt) -> list[FailureSpec]:
        """The failures a new job gets: its prompt's `[fail:KIND@STAGE]` markers, if any,
        else those for every job (`fail`)."""
        specs = []
        if isinstance(prompt, str):
            for kind, stage in _MARKER.findall(prompt):
                specs.append(FailureSpec(kind, stage or None, times=self.fail_times))
        return specs or list(self.fail)

    def take_failure(self, key, specs: list[FailureSpec], stage: str) -> FailureSpec | None:
        """The failure to inject now at `stage`, counting down its remaining times."""
        for spec in specs:
            if spec.stage != stage:
                continue
            if spec.times == 0:
                return spec
            with self._lock:
                slot = (key, spec.kind, stage)
                left = self._failures_left.setdefault(slot, spec.times)
                if left > 0:
                    self._failures_left[slot] = left - 1
                    return spec
        return None

    # ----------------------------------------------------------------------- jobs

    def new_job(self, provider: str, failures: list[FailureSpec], **info) -> Job:
        job = Job(uuid.uuid4().hex, provider, time.monotonic(), self.latency, failures, info=info)
        with self._lock:
            self._jobs[job.id] = job
        return job

    def job(self, provider: str, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.provider == provider else None

    def render_later(self, job: Job, params: ClipParams) -> None:
        if not job.run_failure() and not job.run_error:
            job.clip = self._renderer.submit(render_mp4, params)

    def phase(self, job: Job) -> tuple[str, int | None, float]:
        """("queued", position, 0) | ("running", None, progress) | ("done", None, 1)."""
        elapsed = time.monotonic() - job.created
        queue_end = job.latency * QUEUE_SHARE
        if elapsed >= job.latency:
            return "done", None, 1.0
        if elapsed < queue_end:
            with self._lock:
                ahead = sum(
                    1
                    for other in self._jobs.values()
                    if other.provider == job.provider
                    and other.created < job.created
                    and time.monotonic() - other.created < other.latency * QUEUE_SHARE
                )
            return "queued", ahead, 0.0
        return "running", None, (elapsed - queue_end) / max(job.latency - queue_end, 1e-9)

    # ----------------------------------------------------------------------- webhooks

    def webhook_later(
        self, job: Job, provider: str, url: str, build: Callable[[], Reply | None]
    ) -> None:
        """POST what `build` makes (its body and headers) to `url` once `job` has ended,
        as the provider does; `build` returns None when there is nothing to send."""
        generation = self._generation

        def send() -> None:
            if self._stopping.wait(job.latency):
                return
            if job.clip is not None:
                try:
                    job.clip.result()  # the result is ready when the webhook says so
                except Exception:
                    return  # the emulator is stopping
            reply = build()
            if reply is None or generation != self._generation:
                return
            request = urllib.request.Request(
                url, data=reply.body, method="POST", headers=dict(reply.headers)
            )
            request.add_header("Content-Type", "application/json")
            sent_at, started = time.time(), time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as answer:
                    status = answer.status
            except urllib.error.HTTPError as refused:
                status = refused.code
            except (OSError, ValueError):
                status = 0
            sent = SentWebhook(
                provider, url, reply.body, status, sent_at, time.monotonic() - started
            )
            with self._lock:
                if generation == self._generation:
                    self.webhooks_sent.append(sent)

        threading.Thread(target=send, name="emulator-webhook", daemon=True).start()


def _split(kind: str) -> tuple[str, str | None]:
    kind, _, stage = kind.partition("@")
    return kind, stage or None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "StudioProviderEmulator/1.0"
    # Headers and body go out as two writes; with Nagle's algorithm on, the body waits for
    # the client's delayed ACK (~40 ms on Linux) on every keep-alive request.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args) -> None:
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def _serve(self) -> None:
        emulator: Emulator = self.server.emulator  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        provider = self.path.strip("/").split("/", 1)[0]
        with emulator._lock:
            emulator.in_flight[provider] += 1
            emulator.max_in_flight[provider] = max(
                emulator.max_in_flight[provider], emulator.in_flight[provider]
            )
        try:
            if emulator.answer_delay:
                time.sleep(emulator.answer_delay)
            reply = emulator.handle(self.command, self.path, headers, body)
        finally:
            with emulator._lock:
                emulator.in_flight[provider] -= 1
        if reply.hang and emulator._stopping.wait(emulator.hang_seconds):
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            if reply.content_type:
                self.send_header("Content-Type", reply.content_type)
            if not reply.unsized:
                self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.truncate or reply.unsized:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if reply.truncate:
                self.wfile.write(reply.body[: len(reply.body) // 2])
                self.close_connection = True
            else:
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its timeout), as intended


_MESSAGE_FIELDS = (b'"message": "', b'"detail": "', b'"msg": "', b'"error_message": "')


def _echo_credentials(reply: Reply, headers: dict[str, str]) -> Reply:
    """`reply` with the request's credentials quoted at the start of its first message."""
    quoted = " ".join(
        value for name in ("authorization", "x-goog-api-key") if (value := headers.get(name))
    )
    if not quoted:
        return reply
    for field in _MESSAGE_FIELDS:
        at = reply.body.find(field)
        if at >= 0:
            at += len(field)
            echo = json.dumps(f"(you sent {quoted}) ")[1:-1].encode()
            reply.body = reply.body[:at] + echo + reply.body[at:]
            break
    return reply
