"""A local stand-in for every hosted provider: fal.ai, the Gemini API, AI/ML API and Oxen.ai.

One stdlib HTTP server, routed by path prefix, speaking each protocol as shared/providers.md
describes it: the same URL shapes, field names and types, status codes and error bodies. It
checks what it receives the way the real service would (and a little more strictly: unknown
fields are refused, so a misspelt field shows up here rather than being silently ignored in
production), and its clips are real MP4s of the requested size and length, made with the
local renderer's `render_clip`.

    base URL settings (with any non-empty keys):
      FAL_QUEUE_URL   = {origin}/fal/queue
      FAL_REST_URL    = {origin}/fal/rest
      GEMINI_API_URL  = {origin}/gemini/v1beta
      AIMLAPI_URL     = {origin}/aimlapi
      OXEN_API_URL    = {origin}/oxen

Failures are injected per request with a marker in the prompt, `[fail:KIND]` or
`[fail:KIND@STAGE]`, or for every job with `fail=[...]` (`--fail` on the command). KINDs:
policy, rate_limit, server_error, timeout, malformed, expired, truncated. STAGEs: submit,
poll, run (the generation itself), download. Transient kinds (rate_limit, server_error,
timeout, malformed) fail `fail_times` times per job and stage, then recover (0 = always).

Keys: "invalid" is refused as a bad key and "no-credit" as an account without credit; any
other non-empty key is accepted.

Webhooks: a fal job submitted with `?fal_webhook=URL` is POSTed its webhook (§1.8: `OK` with
the video, or `ERROR` with the error) when it ends, signed with an Ed25519 key made at start
whose JWKS is served at {origin}/fal/jwks.json. A Gemini job submitted with `webhookConfig`
is POSTed a `video.generated` event when its clip is made, signed the Standard Webhooks way
with `gemini_webhook_secret` (Gemini documents no event for a failed video, so a failure
sends none). `settings()` carries both for Studio.

No Django here: the emulator runs in a test's thread or under `manage.py provider_emulator`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import re
import secrets
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from PIL import Image, UnidentifiedImageError

from studio import video

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
_MARKER = re.compile(r"\[fail:([a-z_]+)(?:@([a-z]+))?\]")

REJECTED_KEY = "invalid"
NO_CREDIT_KEY = "no-credit"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")

# The share of the generation time a job spends waiting in the queue.
QUEUE_SHARE = 0.3

FAL_ENDPOINTS = {
    "fal-ai/veo3.1/lite": "text",
    "fal-ai/veo3.1/lite/image-to-video": "image",
    "fal-ai/veo3.1/lite/first-last-frame-to-video": "first_last",
}
FAL_APP = "fal-ai/veo3.1"
GEMINI_MODEL = "veo-3.1-lite-generate-preview"
AIMLAPI_MODELS = {
    # model id: (resolutions, last-frame field) as each model's OpenAPI file has them
    "google/veo-3-1-lite-generate-preview": (("720p", "1080p"), "last_image_url"),
    "veo-3.1-lite-generate-001": (("720P", "1080P"), "last_image_url"),
}
OXEN_MODEL = "google-veo-3-1-lite"
# Who the emulator's fal webhooks say they are for (X-Fal-Webhook-User-Id).
FAL_USER_ID = "emulator-user"
WEBHOOK_TIMEOUT = 10.0


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


@dataclass(frozen=True)
class Recorded:
    """One request the emulator received, for tests to inspect."""

    provider: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

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


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # answer only after the emulator's hang time
    truncate: bool = False  # promise the whole body, send half, drop the connection
    unsized: bool = False  # no Content-Length: the body ends when the connection closes


def _json(status: int, data, headers: dict | None = None) -> Reply:
    return Reply(status, json.dumps(data).encode(), headers=dict(headers or {}))


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
            else video.title_card(params.title, 0, size)
        )
        last = Image.open(io.BytesIO(params.last)) if params.last else None
        spec = video.RenderSpec(
            width=params.width,
            height=params.height,
            duration=params.duration,
            motion=params.motion,
            audio=params.audio,
            seed=0,
        )
        with tempfile.TemporaryDirectory(prefix="studio-emulator-") as tmp:
            out = Path(tmp) / "clip.mp4"
            video.render_clip(first, last, spec, out)
            data = out.read_bytes()
        _clip_cache[key] = data
        return data


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
        # Made fresh for each emulator: nothing to keep secret, nothing to configure.
        self.fal_signing_key = Ed25519PrivateKey.generate()
        self.gemini_webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self._generation = 0  # webhooks still pending from before a reset() are dropped
        self.routes: dict[tuple[str, str], Reply | Callable[[], Reply]] = {}
        self._jobs: dict[str, Job] = {}
        self._uploads: dict[str, tuple[str, bytes]] = {}
        self._tokens: set[str] = set()
        self._failures_left: dict[tuple, int] = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emulator-render")
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

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
        return {
            "FAL_QUEUE_URL": f"{origin}/fal/queue",
            "FAL_REST_URL": f"{origin}/fal/rest",
            "GEMINI_API_URL": f"{origin}/gemini/v1beta",
            "AIMLAPI_URL": f"{origin}/aimlapi",
            "OXEN_API_URL": f"{origin}/oxen",
            "FAL_JWKS_URL": f"{origin}/fal/jwks.json",
            "GEMINI_WEBHOOK_SECRET": self.gemini_webhook_secret,
        }

    def reset(self) -> None:
        """Forget jobs, uploads, recorded requests and test routes (the clip cache stays)."""
        with self._lock:
            self.requests.clear()
            self.routes.clear()
            self._jobs.clear()
            self._uploads.clear()
            self._failures_left.clear()
            self.fail = []
            self.webhooks_sent.clear()
            self.in_flight.clear()
            self.max_in_flight.clear()
            self.answer_delay = 0.0
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
            self.requests.append(Recorded(provider, method, path, query, headers, body))
        route = self.routes.get((method, path))
        if route is not None:
            return route() if callable(route) else route
        origin = f"http://{headers.get('host', '')}"
        apps: dict[str, Callable[..., Reply]] = {
            "fal": self._fal,
            "gemini": self._gemini,
            "aimlapi": self._aimlapi,
            "oxen": self._oxen,
        }
        app = apps.get(provider)
        if app is None:
            return _json(404, {"error": "no such emulator route"})
        try:
            return app(method, path, query, headers, body, origin)
        except Exception as exc:  # a bug here should look like a server error, not a hang
            return _json(500, {"error": f"emulator error: {type(exc).__name__}: {exc}"})

    # ----------------------------------------------------------------------- shared

    def _failures_for(self, prompt) -> list[FailureSpec]:
        specs = []
        if isinstance(prompt, str):
            for kind, stage in _MARKER.findall(prompt):
                specs.append(FailureSpec(kind, stage or None, times=self.fail_times))
        return specs or list(self.fail)

    def _take_failure(self, key, specs: list[FailureSpec], stage: str) -> FailureSpec | None:
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

    def _new_job(self, provider: str, failures: list[FailureSpec], **info) -> Job:
        job = Job(uuid.uuid4().hex, provider, time.monotonic(), self.latency, failures, info=info)
        with self._lock:
            self._jobs[job.id] = job
        return job

    def _job(self, provider: str, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.provider == provider else None

    def _render_later(self, job: Job, params: ClipParams) -> None:
        if not job.run_failure() and not job.run_error:
            job.clip = self._renderer.submit(render_mp4, params)

    def _phase(self, job: Job) -> tuple[str, int | None, float]:
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

    def _webhook_later(self, job: Job, provider: str, url: str, build: Callable[[], Reply]):
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

    def _hang_then(self, reply: Reply) -> Reply:
        reply.hang = True
        return reply

    def _transient(self, spec: FailureSpec, shapes: dict[str, Callable[[], Reply]]) -> Reply:
        if spec.kind == "timeout":
            return self._hang_then(shapes["ok"]())
        if spec.kind == "malformed":
            return Reply(200, b'{"status": "IN_PROG', content_type="application/json")
        return shapes[spec.kind]()

    # ======================================================================= fal.ai

    def _fal(self, method, path, query, headers, body, origin) -> Reply:
        rest = path[len("/fal/") :]
        if rest.startswith("rest/"):
            return self._fal_rest(method, rest[len("rest/") :], query, headers, origin)
        if rest.startswith("cdn/"):
            return self._fal_cdn(method, rest[len("cdn/") :], headers, body, origin)
        if rest == "jwks.json" and method == "GET":
            return _json(200, fal_jwks(self.fal_signing_key.public_key()))
        if not rest.startswith("queue/"):
            return _fal_error(404, "Not Found")
        route = rest[len("queue/") :]
        auth = _fal_auth(headers)
        if auth is not None:
            return auth
        if method == "POST" and route in FAL_ENDPOINTS:
            return self._fal_submit(route, body, origin, query.get("fal_webhook", [""])[0])
        match = re.fullmatch(rf"{re.escape(FAL_APP)}/requests/([0-9a-f]+)(/status|/cancel)?", route)
        if not match:
            # Includes URLs rebuilt with the endpoint's sub-path: fal's are owner/alias only.
            return _fal_error(404, "Not Found")
        job = self._job("fal", match.group(1))
        if job is None:
            return _fal_error(404, "Request not found")
        action = match.group(2) or ""
        if action == "/status" and method == "GET":
            return self._fal_status(job, query, origin)
        if action == "/cancel" and method == "PUT":
            return self._fal_cancel(job)
        if action == "" and method == "GET":
            return self._fal_result(job, origin)
        return _fal_error(405, "Method Not Allowed")

    def _fal_urls(self, job: Job, origin: str) -> dict:
        base = f"{origin}/fal/queue/{FAL_APP}/requests/{job.id}"
        return {
            "request_id": job.id,
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }

    def _fal_submit(self, endpoint: str, body: bytes, origin: str, webhook: str) -> Reply:
        data = _load(body)
        prompt = data.get("prompt") if isinstance(data, dict) else None
        failures = self._failures_for(prompt)
        spec = self._take_failure(("fal-submit", prompt), failures, "submit")
        if spec is not None and spec.kind != "timeout" and spec.kind != "malformed":
            if spec.kind == "policy":
                return _fal_policy()
            return self._transient(spec, _fal_shapes(self.retry_after))
        if not isinstance(data, dict):
            return _fal_validation([(["body"], "Input should be a valid dictionary", "dict_type")])
        problems = _fal_validate(FAL_ENDPOINTS[endpoint], data)
        if problems:
            return _fal_validation(problems)
        mode = FAL_ENDPOINTS[endpoint]
        first = self._fal_image(data.get("image_url") or data.get("first_frame_url"))
        last = self._fal_image(data.get("last_frame_url"))
        job = self._new_job("fal", failures, endpoint=endpoint)
        image_size = _image_size(first)
        aspect = data.get("aspect_ratio", "16:9" if mode == "text" else "auto")
        width, height = video.output_size(aspect, data.get("resolution", "720p"), image_size)
        self._render_later(
            job,
            ClipParams(
                width,
                height,
                int(data.get("duration", "8s")[:-1]),
                bool(data.get("generate_audio", True)),
                video.motion_for_prompt(prompt),
                "fal.ai emulator",
                first,
                last,
            ),
        )
        if webhook.startswith(("http://", "https://")):
            self._webhook_later(job, "fal", webhook, lambda: self._fal_webhook(job, origin))
        reply = _json(
            200, {**self._fal_urls(job, origin), "status": "IN_QUEUE", "queue_position": 0}
        )
        if spec is not None:  # timeout / malformed: the job exists, the answer is lost
            return self._transient(spec, {"ok": lambda: reply})
        return reply

    def _fal_webhook(self, job: Job, origin: str) -> Reply:
        """The signed webhook of a fal job that has ended (§1.8)."""
        envelope = {"request_id": job.id, "gateway_request_id": job.id}
        result = self._fal_result(job, origin)
        if result.status == 200:
            envelope.update(status="OK", payload=json.loads(result.body))
        else:
            envelope.update(
                status="ERROR",
                error=f"Invalid status code: {result.status}",
                payload=json.loads(result.body),
            )
        body = json.dumps(envelope).encode()
        timestamp = str(int(time.time()))
        signature = fal_webhook_signature(
            self.fal_signing_key, job.id, FAL_USER_ID, timestamp, body
        )
        headers = {
            "X-Fal-Webhook-Request-Id": job.id,
            "X-Fal-Webhook-User-Id": FAL_USER_ID,
            "X-Fal-Webhook-Timestamp": timestamp,
            "X-Fal-Webhook-Signature": signature,
        }
        return Reply(200, body, headers=headers)

    def _fal_image(self, url) -> bytes | None:
        if not isinstance(url, str):
            return None
        if url.startswith("data:"):
            return _data_uri_bytes(url)
        match = re.search(r"/fal/cdn/files/([0-9a-f]+)/", url)
        if match:
            upload = self._uploads.get(match.group(1))
            return upload[1] if upload else None
        return None  # a public URL: no network here, so the clip gets a title card

    def _fal_status(self, job: Job, query, origin: str) -> Reply:
        spec = self._take_failure(job.id, job.failures, "poll")
        phase, position, progress = self._phase(job)
        body = self._fal_urls(job, origin)
        logs = query.get("logs", ["0"])[0] in ("1", "true")
        if job.cancelled:
            reply = _json(200, {**body, "status": "COMPLETED", "error": "Request was cancelled"})
        elif phase == "queued":
            reply = _json(202, {**body, "status": "IN_QUEUE", "queue_position": position})
        elif phase == "running":
            entry = {**body, "status": "IN_PROGRESS"}
            if logs:
                entry["logs"] = [_fal_log(f"Generating video: {round(progress * 100)}%")]
            reply = _json(202, entry)
        else:
            done = {**body, "status": "COMPLETED", "metrics": {"inference_time": job.latency}}
            if logs:
                done["logs"] = [_fal_log("Video generated")]
            if job.run_failure() == "policy":
                done["error"] = "Content policy violation"
                done["error_type"] = "content_policy_violation"
            elif job.run_failure():
                done["error"] = "Runner disconnected"
                done["error_type"] = "runner_disconnected"
            reply = _json(200, done)
        if spec is not None:
            return self._transient(spec, {**_fal_shapes(self.retry_after), "ok": lambda: reply})
        return reply

    def _fal_result(self, job: Job, origin: str) -> Reply:
        phase, _, _ = self._phase(job)
        if job.cancelled:
            reply = _fal_error(400, "Request was cancelled")
        elif phase != "done":
            reply = _fal_error(400, "Request is still in progress")
        elif job.run_failure() == "policy":
            reply = _fal_policy()
        elif job.run_failure():
            reply = _json(
                503,
                {"detail": "Runner disconnected", "error_type": "runner_disconnected"},
                {"X-Fal-Error-Type": "runner_disconnected"},
            )
        else:
            url = f"{origin}/fal/cdn/files/{job.id}/output.mp4"
            reply = _json(
                200,
                {"video": {"url": url, "content_type": "video/mp4", "file_name": "output.mp4"}},
            )
        reply.headers["x-fal-request-id"] = job.id  # every reply about the request carries it
        return reply

    def _fal_cancel(self, job: Job) -> Reply:
        phase, _, _ = self._phase(job)
        if phase == "done" and not job.cancelled:
            return _json(400, {"status": "ALREADY_COMPLETED"})
        job.cancelled = True
        return _json(202, {"status": "CANCELLATION_REQUESTED"})

    def _fal_rest(self, method, route, query, headers, origin) -> Reply:
        auth = _fal_auth(headers)
        if auth is not None:
            return auth
        if method == "POST" and route == "storage/auth/token":
            if query.get("storage_type") != ["fal-cdn-v3"]:
                return _fal_error(422, "storage_type must be fal-cdn-v3")
            token = uuid.uuid4().hex
            self._tokens.add(token)
            return _json(
                200,
                {
                    "token": token,
                    "token_type": "Bearer",
                    "base_url": f"{origin}/fal/cdn",
                    "expires_at": datetime.now(UTC).isoformat(),
                },
            )
        return _fal_error(404, "Not Found")

    def _fal_cdn(self, method, route, headers, body, origin) -> Reply:
        if method == "POST" and route == "files/upload":
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme != "Bearer" or token not in self._tokens:
                return _fal_error(401, "Invalid or missing upload token")
            content_type = headers.get("content-type", "")
            if content_type not in IMAGE_TYPES or not body:
                return _fal_error(422, f"Unsupported upload: {content_type or 'no type'}")
            file_id = uuid.uuid4().hex
            name = re.sub(r"[^\w.-]", "_", headers.get("x-fal-file-name", "upload"))
            self._uploads[file_id] = (content_type, body)
            return _json(200, {"access_url": f"{origin}/fal/cdn/files/{file_id}/{name}"})
        match = re.fullmatch(r"files/([0-9a-f]+)/[\w.-]+", route)
        if method == "GET" and match:
            if match.group(1) in self._uploads:
                content_type, data = self._uploads[match.group(1)]
                return Reply(200, data, content_type=content_type)
            job = self._job("fal", match.group(1))
            if job is None:
                return _fal_error(404, "Not Found")
            return self._download(job, lambda: _fal_error(404, "Not Found"))
        return _fal_error(404, "Not Found")

    def _download(self, job: Job, expired: Callable[[], Reply]) -> Reply:
        spec = self._take_failure(job.id, job.failures, "download")
        if spec is not None and spec.kind == "expired":
            return expired()
        if job.clip is None:
            return expired()
        reply = Reply(200, job.clip.result(), content_type="video/mp4")
        if spec is not None and spec.kind == "truncated":
            reply.truncate = True
        elif spec is not None and spec.kind in TRANSIENT_KINDS:
            return self._transient(
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

    # ======================================================================= Gemini API

    def _gemini(self, method, path, query, headers, body, origin) -> Reply:
        route = path[len("/gemini/v1beta/") :] if path.startswith("/gemini/v1beta/") else None
        if route is None:
            return _google_error(404, "NOT_FOUND", "Not found.")
        key = headers.get("x-goog-api-key", "")
        if not key:
            return _google_error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if key == REJECTED_KEY:
            return _google_error(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."
            )
        if key == NO_CREDIT_KEY:
            return _google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details.",
            )
        match = re.fullmatch(r"models/([\w.-]+):predictLongRunning", route)
        if match and method == "POST":
            if match.group(1) != GEMINI_MODEL:
                return _google_error(
                    404,
                    "NOT_FOUND",
                    f"models/{match.group(1)} is not found for API version v1beta, or is not "
                    "supported for predictLongRunning.",
                )
            return self._gemini_submit(body, origin)
        match = re.fullmatch(rf"models/{re.escape(GEMINI_MODEL)}/operations/(\w+)", route)
        if match and method == "GET":
            return self._gemini_operation(match.group(1), origin)
        match = re.fullmatch(r"files/(\w+):download", route)
        if match and method == "GET":
            job = self._job("gemini", match.group(1))
            if job is None or query.get("alt") != ["media"]:
                return _google_error(404, "NOT_FOUND", "File not found.")
            return self._download(
                job, lambda: _google_error(404, "NOT_FOUND", "The file has expired.")
            )
        return _google_error(404, "NOT_FOUND", f"Method not found: {method} /{route}")

    def _gemini_submit(self, body: bytes, origin: str) -> Reply:
        data = _load(body)
        instances = data.get("instances") if isinstance(data, dict) else None
        instance = instances[0] if isinstance(instances, list) and instances else {}
        prompt = instance.get("prompt") if isinstance(instance, dict) else None
        failures = self._failures_for(prompt)
        spec = self._take_failure(("gemini-submit", prompt), failures, "submit")
        if spec is not None and spec.kind not in ("timeout", "malformed"):
            if spec.kind == "policy":
                return _google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "The prompt could not be submitted. This prompt contains words that "
                    "violate Google's Responsible AI practices.",
                )
            return self._transient(spec, _google_shapes(self.retry_after))
        problem = _gemini_validate(data)
        if problem:
            return _google_error(400, "INVALID_ARGUMENT", problem)
        parameters = data.get("parameters", {})
        first = _b64(instance["image"]["bytesBase64Encoded"]) if "image" in instance else None
        last = (
            _b64(instance["lastFrame"]["bytesBase64Encoded"]) if "lastFrame" in instance else None
        )
        width, height = video.output_size(
            parameters.get("aspectRatio", "16:9"), parameters.get("resolution", "720p"), None
        )
        job = self._new_job("gemini", failures)
        config = data.get("webhookConfig")
        if isinstance(config, dict):
            for uri in config.get("uris") or []:
                self._webhook_later(
                    job,
                    "gemini",
                    uri,
                    lambda: self._gemini_webhook(job, origin, config.get("user_metadata")),
                )
        self._render_later(
            job,
            ClipParams(
                width,
                height,
                parameters.get("durationSeconds", 8),
                True,  # Veo on the Gemini API always makes sound
                video.motion_for_prompt(prompt),
                "Gemini API emulator",
                first,
                last,
            ),
        )
        reply = _json(200, {"name": f"models/{GEMINI_MODEL}/operations/{job.id}"})
        if spec is not None:
            return self._transient(spec, {"ok": lambda: reply})
        return reply

    def _gemini_webhook(self, job: Job, origin: str, metadata) -> Reply | None:
        """The signed `video.generated` event of a Gemini job whose clip was made (§2.8)."""
        if job.run_failure() or job.clip is None:
            return None
        data = {
            "id": job.id,
            "output_file_uri": f"{origin}/gemini/v1beta/files/{job.id}:download?alt=media",
            "file_name": f"files/{job.id}",
        }
        if metadata is not None:
            data["user_metadata"] = metadata  # where it comes back is UNCONFIRMED
        event = {
            "type": "video.generated",
            "version": "v1",
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": data,
        }
        body = json.dumps(event).encode()
        message_id = f"msg_{uuid.uuid4().hex}"
        timestamp = str(int(time.time()))
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": standard_webhook_signature(
                self.gemini_webhook_secret, message_id, timestamp, body
            ),
        }
        return Reply(200, body, headers=headers)

    def _gemini_operation(self, job_id: str, origin: str) -> Reply:
        job = self._job("gemini", job_id)
        if job is None:
            return _google_error(404, "NOT_FOUND", "Operation not found.")
        spec = self._take_failure(job.id, job.failures, "poll")
        phase, _, _ = self._phase(job)
        name = f"models/{GEMINI_MODEL}/operations/{job.id}"
        if phase != "done":
            reply = _json(
                200,
                {
                    "name": name,
                    "metadata": {
                        "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
                        "GenerateVideoMetadata"
                    },
                },
            )
        elif job.run_failure() == "server_error":
            reply = _json(
                200,
                {
                    "name": name,
                    "done": True,
                    "error": {"code": 13, "message": "Video generation failed (emulated)."},
                },
            )
        elif job.run_failure() == "policy":
            reply = _json(
                200,
                {
                    "name": name,
                    "done": True,
                    "response": {
                        "@type": _GEMINI_RESPONSE,
                        "generateVideoResponse": {
                            "raiMediaFilteredCount": 1,
                            "raiMediaFilteredReasons": [
                                "We encountered an issue with the content of this request "
                                "(emulated safety filter)."
                            ],
                        },
                    },
                },
            )
        else:
            uri = f"{origin}/gemini/v1beta/files/{job.id}:download?alt=media"
            reply = _json(
                200,
                {
                    "name": name,
                    "done": True,
                    "response": {
                        "@type": _GEMINI_RESPONSE,
                        "generateVideoResponse": {"generatedSamples": [{"video": {"uri": uri}}]},
                    },
                },
            )
        if spec is not None:
            return self._transient(spec, {**_google_shapes(self.retry_after), "ok": lambda: reply})
        return reply

    # ======================================================================= AI/ML API

    def _aimlapi(self, method, path, query, headers, body, origin) -> Reply:
        route = path[len("/aimlapi") :]
        match = re.fullmatch(r"/cdn/generations/(\w+)\.mp4", route)
        if match and method == "GET":
            job = self._job("aimlapi", match.group(1))
            gone = lambda: Reply(410, b"Gone", "text/plain")  # noqa: E731
            return gone() if job is None else self._download(job, gone)
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not key or key == REJECTED_KEY:
            return _aiml_error(
                401,
                "This request requires a valid API key. You can create a new API key on the "
                "Billing page: https://aimlapi.com/app/keys",
                route,
            )
        if key == NO_CREDIT_KEY:
            return _aiml_error(
                403,
                "You've run out of credits. Please top up your balance or update your payment "
                "method to continue: https://aimlapi.com/app/billing/",
                route,
            )
        if route != "/v2/video/generations":
            return _aiml_error(404, "Not Found", route)
        if method == "POST":
            return self._aimlapi_submit(body, route, origin)
        if method == "GET":
            job_id = query.get("generation_id", [""])[0]
            job = self._job("aimlapi", job_id)
            if job is None:
                return _aiml_error(404, "Generation not found", route)
            return self._aimlapi_poll(job, route, origin)
        return _aiml_error(404, "Not Found", route)

    def _aimlapi_submit(self, body: bytes, route: str, origin: str) -> Reply:
        data = _load(body)
        prompt = data.get("prompt") if isinstance(data, dict) else None
        failures = self._failures_for(prompt)
        spec = self._take_failure(("aimlapi-submit", prompt), failures, "submit")
        if spec is not None and spec.kind not in ("timeout", "malformed"):
            if spec.kind == "policy":
                return _aiml_error(
                    400, "Your prompt was rejected by the content moderation system.", route
                )
            return self._transient(spec, _aiml_shapes(self.retry_after, route))
        problem = _aimlapi_validate(data)
        if problem:
            path, message = problem
            return _aiml_error(
                400, "Body validation error!", route, meta=[{"path": path, "message": message}]
            )
        last_field = AIMLAPI_MODELS[data["model"]][1]
        first = _aiml_image(data.get("image_url"))
        last = _aiml_image(data.get(last_field))
        width, height = video.output_size(
            data.get("aspect_ratio", "16:9"), str(data.get("resolution", "1080p")).lower(), None
        )
        job = self._new_job("aimlapi", failures)
        self._render_later(
            job,
            ClipParams(
                width,
                height,
                int(data.get("duration", 8)),
                bool(data.get("generate_audio", True)),
                video.motion_for_prompt(prompt),
                "AI/ML API emulator",
                first,
                last,
            ),
        )
        reply = _json(200, {"id": job.id, "status": "queued"})
        if spec is not None:
            return self._transient(spec, {"ok": lambda: reply})
        return reply

    def _aimlapi_poll(self, job: Job, route: str, origin: str) -> Reply:
        spec = self._take_failure(job.id, job.failures, "poll")
        phase, _, _ = self._phase(job)
        entry = {"id": job.id, "status": "", "video": None, "error": None, "meta": None}
        if phase == "queued":
            entry["status"] = "queued"
        elif phase == "running":
            entry["status"] = "generating"
        elif job.run_failure():
            entry["status"] = "error"
            entry["error"] = (
                {
                    "name": "ContentModerationError",
                    "message": "The generated video was blocked by the provider's safety filters.",
                }
                if job.run_failure() == "policy"
                else {"name": "GenerationError", "message": "Generation failed upstream."}
            )
            entry["meta"] = {"usage": {"credits_used": 0, "usd_spent": 0}}
        else:
            entry["status"] = "completed"
            entry["video"] = {"url": f"{origin}/aimlapi/cdn/generations/{job.id}.mp4"}
            entry["meta"] = {"usage": {"credits_used": 120000, "usd_spent": 0.06}}
        reply = _json(200, entry)
        if spec is not None:
            return self._transient(
                spec, {**_aiml_shapes(self.retry_after, route), "ok": lambda: reply}
            )
        return reply

    # ======================================================================= Oxen.ai

    def _oxen(self, method, path, query, headers, body, origin) -> Reply:
        route = path[len("/oxen") :]
        match = re.fullmatch(r"/files/(\w+)\.mp4", route)
        if match and method == "GET":
            job = self._job("oxen", match.group(1))
            expired = lambda: Reply(  # noqa: E731 - S3's answer to an expired presigned link
                403,
                b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
                b"<Message>Request has expired</Message></Error>",
                "application/xml",
            )
            return expired() if job is None else self._download(job, expired)
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not key or key == REJECTED_KEY:
            return _oxen_error(401, "unauthorized", "Invalid or missing API key")
        if route == "/api/ai/queue" and method == "POST":
            if key == NO_CREDIT_KEY:
                return _oxen_error(402, "insufficient_credits", "Insufficient credits")
            return self._oxen_submit(body, origin)
        match = re.fullmatch(r"/api/ai/queue/([\w-]+)", route)
        if match:
            job = self._job("oxen", match.group(1))
            if job is None:
                return _oxen_error(404, "resource_not_found", "Generation not found")
            if method == "GET":
                return self._oxen_poll(job, origin)
            if method == "DELETE":
                if self._oxen_status(job) in ("queued", "processing"):
                    job.cancelled = True
                return _json(200, {"status": "success", "generation_id": job.id})
        return _oxen_error(404, "resource_not_found", "Not found")

    def _oxen_submit(self, body: bytes, origin: str) -> Reply:
        data = _load(body)
        if not isinstance(data, dict):
            return _oxen_error(400, "invalid_params", "Invalid JSON body")
        prompt = data.get("prompt")
        failures = self._failures_for(prompt)
        spec = self._take_failure(("oxen-submit", prompt), failures, "submit")
        if spec is not None and spec.kind not in ("timeout", "malformed", "policy"):
            return self._transient(spec, _oxen_shapes(self.retry_after))
        # Enqueue checks only the model, num_generations and credits (async_queue.mdx).
        if data.get("model") != OXEN_MODEL:
            return _json(404, {"error": {"message": f"Model not found: {data.get('model')}"}})
        count = data.get("num_generations", 1)
        if not _is_int(count) or not 1 <= count <= 4:
            return _oxen_error(
                400,
                "invalid_params",
                "Invalid parameters",
                "num_generations must be an integer between 1 and 4",
            )
        job = self._new_job("oxen", failures, prompt=prompt)
        job.run_error = _oxen_validate(data)
        if not job.run_error:
            first = _data_uri_bytes(data["input_image"]) if "input_image" in data else None
            width, height = video.output_size(
                data.get("aspect_ratio", "16:9"), data.get("resolution", "720p"), None
            )
            self._render_later(
                job,
                ClipParams(
                    width,
                    height,
                    data.get("duration", 8),
                    True,  # "native synchronized audio"
                    video.motion_for_prompt(prompt),
                    "Oxen.ai emulator",
                    first,
                ),
            )
        job.info.update(
            aspect_ratio=data.get("aspect_ratio", "16:9"), duration=data.get("duration", 8)
        )
        reply = _json(200, {"generations": [{"generation_id": job.id, "status": "queued"}]})
        if spec is not None and spec.kind != "policy":
            return self._transient(spec, {"ok": lambda: reply})
        return reply

    def _oxen_status(self, job: Job) -> str:
        phase, _, _ = self._phase(job)
        if job.cancelled:
            return "cancelled"
        if phase == "queued":
            return "queued"
        if job.run_error or job.run_failure() or any(s.kind == "policy" for s in job.failures):
            return "failed"  # found when the job starts, as Oxen validates at run time
        return "processing" if phase == "running" else "succeeded"

    def _oxen_poll(self, job: Job, origin: str) -> Reply:
        spec = self._take_failure(job.id, job.failures, "poll")
        status = self._oxen_status(job)
        created = int(time.time() - (time.monotonic() - job.created))
        entry = {
            "generation_id": job.id,
            "model_name": OXEN_MODEL,
            "prompt": job.info.get("prompt"),
            "media_type": "video",
            "status": status,
            "result_url": None,
            "error_message": None,
            "enqueued_at": created,
            "started_at": created + 1 if status != "queued" else None,
            "completed_at": int(time.time()) if status in ("succeeded", "failed") else None,
            "aspect_ratio": job.info.get("aspect_ratio"),
            "duration": job.info.get("duration"),
        }
        if status == "failed":
            entry["error_message"] = job.run_error or (
                "Getting model response error: 500 - Internal server error (emulated)."
                if job.run_failure() == "server_error"
                else "Getting model response error: 400 - The prompt was flagged by the "
                "provider's safety system (emulated)."
            )
        elif status == "succeeded":
            entry["result_url"] = f"{origin}/oxen/files/{job.id}.mp4?X-Amz-Expires=3600"
        reply = _json(200, entry)
        if spec is not None:
            return self._transient(spec, {**_oxen_shapes(self.retry_after), "ok": lambda: reply})
        return reply


_GEMINI_RESPONSE = (
    "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
)


# --------------------------------------------------------------------------- fal shapes


def _fal_error(status: int, detail, headers: dict | None = None) -> Reply:
    return _json(status, {"detail": detail}, headers)


def _fal_auth(headers: dict[str, str]) -> Reply | None:
    scheme, _, key = headers.get("authorization", "").partition(" ")
    if scheme != "Key" or not key:
        return _fal_error(401, "Authentication is required to access this application.")
    if key == REJECTED_KEY:
        return _fal_error(401, "Invalid API key.")
    if key == NO_CREDIT_KEY:
        return _fal_error(403, "User is locked. Reason: Exhausted balance.")
    return None


def _fal_validation(problems: list[tuple[list, str, str]]) -> Reply:
    detail = [
        {"loc": loc, "msg": msg, "type": kind, "url": f"https://docs.fal.ai/errors#{kind}"}
        for loc, msg, kind in problems
    ]
    return _fal_error(422, detail, {"X-Fal-Retryable": "false"})


def _fal_policy() -> Reply:
    # The typed shape of fal's Model Errors doc; the exact type for Veo Lite is UNCONFIRMED.
    return _fal_validation(
        [
            (
                ["body", "prompt"],
                "The content could not be processed because it contained material flagged "
                "by a content checker.",
                "content_policy_violation",
            )
        ]
    )


def _fal_shapes(retry_after: int) -> dict[str, Callable[[], Reply]]:
    return {
        "rate_limit": lambda: _fal_error(
            429, "Rate limit exceeded", {"Retry-After": str(retry_after)}
        ),
        "server_error": lambda: _json(
            503,
            {"detail": "Runner scheduling failure", "error_type": "runner_scheduling_failure"},
            {"X-Fal-Error-Type": "runner_scheduling_failure"},
        ),
    }


def _fal_log(message: str) -> dict:
    return {
        "message": message,
        "level": "INFO",
        "source": "USER",
        "timestamp": datetime.now(UTC).isoformat(),
    }


_FAL_COMMON = {"prompt", "duration", "resolution", "generate_audio", "negative_prompt", "seed"}
_FAL_COMMON |= {"auto_fix", "safety_tolerance", "aspect_ratio"}
_FAL_FIELDS = {
    "text": _FAL_COMMON,
    "image": _FAL_COMMON | {"image_url"},
    "first_last": _FAL_COMMON | {"first_frame_url", "last_frame_url"},
}


def _fal_validate(mode: str, data: dict) -> list[tuple[list, str, str]]:
    """fal's input schema for the three Lite endpoints (§1.2), as 422 `detail` items."""
    problems = []

    def bad(name: str, msg: str, kind: str) -> None:
        problems.append((["body", name], msg, kind))

    for name in sorted(set(data) - _FAL_FIELDS[mode]):
        bad(name, "Extra inputs are not permitted", "extra_forbidden")
    if not isinstance(data.get("prompt"), str) or not data.get("prompt"):
        bad("prompt", "Field required", "missing")
    duration = data.get("duration", "8s")
    if duration not in ("4s", "6s", "8s"):
        bad("duration", "Input should be '4s', '6s' or '8s'", "literal_error")
    resolution = data.get("resolution", "720p")
    if resolution not in ("720p", "1080p"):
        bad("resolution", "Input should be '720p' or '1080p'", "literal_error")
    aspects = ("16:9", "9:16") if mode == "text" else ("auto", "16:9", "9:16")
    if data.get("aspect_ratio", aspects[0]) not in aspects:
        bad(
            "aspect_ratio",
            f"Input should be {' or '.join(repr(a) for a in aspects)}",
            "literal_error",
        )
    if "generate_audio" in data and not isinstance(data["generate_audio"], bool):
        bad("generate_audio", "Input should be a valid boolean", "bool_type")
    if "seed" in data and not _is_int(data["seed"]):
        bad("seed", "Input should be a valid integer", "int_type")
    if "negative_prompt" in data and not isinstance(data["negative_prompt"], str):
        bad("negative_prompt", "Input should be a valid string", "string_type")
    needed = {"image": ["image_url"], "first_last": ["first_frame_url", "last_frame_url"]}
    for name in needed.get(mode, []):
        value = data.get(name)
        if not isinstance(value, str) or not value.startswith(("http://", "https://", "data:")):
            bad(name, "Field required: a URL to the image", "missing")
    if resolution == "1080p" and duration != "8s" and not problems:
        bad("duration", "1080p resolution requires an 8s duration", "value_error")
    if mode == "first_last" and duration != "8s" and not problems:
        bad("duration", "First-last-frame video is 8s long", "value_error")
    return problems


# --------------------------------------------------------------------------- Google shapes


def _google_error(
    code: int, status: str, message: str, details: list | None = None, headers=None
) -> Reply:
    error = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return _json(code, {"error": error}, headers)


def _google_shapes(retry_after: int) -> dict[str, Callable[[], Reply]]:
    return {
        "rate_limit": lambda: _google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
            [
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{retry_after}s",
                }
            ],
            {"Retry-After": str(retry_after)},
        ),
        "server_error": lambda: _google_error(
            503, "UNAVAILABLE", "The service is currently unavailable."
        ),
    }


_GEMINI_PARAMETERS = {
    "sampleCount",
    "durationSeconds",
    "aspectRatio",
    "resolution",
    "personGeneration",
    "negativePrompt",
    "enhancePrompt",
}


def _gemini_validate(data) -> str:
    """The request checks of the Gemini API's predictLongRunning for Veo (§2.4)."""
    if not isinstance(data, dict):
        return "Invalid JSON payload received."
    extra = sorted(set(data) - {"instances", "parameters", "webhookConfig"})
    if extra:
        return f'Invalid JSON payload received. Unknown name "{extra[0]}": Cannot find field.'
    config = data.get("webhookConfig", {})
    if not isinstance(config, dict) or set(config) - {"uris", "user_metadata"}:
        return "webhookConfig takes uris and user_metadata."
    uris = config.get("uris", [])
    if not isinstance(uris, list) or not all(isinstance(u, str) and u for u in uris):
        return "webhookConfig.uris must be a list of URLs."
    if not isinstance(config.get("user_metadata", {}), dict):
        return "webhookConfig.user_metadata must be an object."
    instances = data.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        return "* instances: exactly one instance is required."
    instance = instances[0]
    extra = sorted(set(instance) - {"prompt", "image", "lastFrame", "referenceImages", "video"})
    if extra:
        return f"Invalid JSON payload received. Unknown name \"{extra[0]}\" at 'instances[0]'."
    if not isinstance(instance.get("prompt"), str) or not instance["prompt"].strip():
        return "* instances[0].prompt: a text prompt is required."
    for name in ("image", "lastFrame"):
        if name in instance:
            problem = _gemini_image(name, instance[name])
            if problem:
                return problem
    if "lastFrame" in instance and "image" not in instance:
        return "lastFrame needs a first frame (image)."
    parameters = data.get("parameters", {})
    if not isinstance(parameters, dict):
        return "parameters must be an object."
    extra = sorted(set(parameters) - _GEMINI_PARAMETERS)
    if extra:
        # seed and generateAudio land here: the SDK refuses them on the Gemini API (§2.4).
        return (
            f"`{extra[0]}` isn't supported by this model. Please remove it or refer to the "
            "Gemini API documentation for supported usage."
        )
    duration = parameters.get("durationSeconds", 8)
    if not _is_int(duration) or duration not in (4, 6, 8):
        return (
            f"The value of durationSeconds is {json.dumps(duration)}, but it must be an "
            "integer 4, 6 or 8."
        )
    if parameters.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
        return "aspectRatio must be 16:9 or 9:16."
    if parameters.get("resolution", "720p") not in ("720p", "1080p"):
        return "resolution must be 720p or 1080p."
    if parameters.get("personGeneration", "allow_adult") not in (
        "allow_adult",
        "dont_allow",
        "allow_all",
    ):
        return "personGeneration must be dont_allow, allow_adult or allow_all."
    if "image" in instance and parameters.get("personGeneration", "allow_adult") == "allow_all":
        return "allow_all for personGeneration is not supported with an input image."
    if parameters.get("sampleCount", 1) != 1 and not _is_int(parameters.get("sampleCount")):
        return "sampleCount must be an integer."
    if "negativePrompt" in parameters and not isinstance(parameters["negativePrompt"], str):
        return "negativePrompt must be a string."
    return ""


def _gemini_image(name: str, image) -> str:
    if not isinstance(image, dict):
        return f"{name} must be an object."
    if "gcsUri" in image:
        return f"{name}.gcsUri isn't supported by the Gemini API; send bytesBase64Encoded."
    extra = set(image) - {"bytesBase64Encoded", "mimeType"}
    if extra:
        return f"Invalid JSON payload received. Unknown name \"{sorted(extra)[0]}\" at '{name}'."
    if image.get("mimeType") not in IMAGE_TYPES:
        return f"{name}.mimeType must be image/jpeg, image/png or image/webp."
    data = _b64(image.get("bytesBase64Encoded"))
    if data is None:
        return (
            f"Invalid value at '{name}.bytes_base64_encoded' (TYPE_BYTES), Base64 decoding failed."
        )
    if _image_size(data) is None:
        return f"Unable to process input image ({name})."
    return ""


# --------------------------------------------------------------------------- AI/ML shapes


def _aiml_error(
    status: int, message: str, path: str, meta: list | None = None, headers=None
) -> Reply:
    body = {
        "message": message,
        "path": path,
        "requestId": uuid.uuid4().hex,
        "statusCode": status,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    if meta:
        body["meta"] = meta
    return _json(status, body, headers)


def _aiml_shapes(retry_after: int, path: str) -> dict[str, Callable[[], Reply]]:
    return {
        "rate_limit": lambda: _aiml_error(
            429, "Too Many Requests", path, headers={"Retry-After": str(retry_after)}
        ),
        "server_error": lambda: _aiml_error(503, "Service unavailable", path),
    }


_AIML_COMMON = {"model", "prompt", "image_url", "aspect_ratio", "resolution", "duration"}
_AIML_COMMON |= {"generate_audio"}


def _aimlapi_validate(data) -> tuple[list, str] | None:
    """Each Lite model's OpenAPI schema (§3), zod-style: (path, "Expected …, received …")."""
    if not isinstance(data, dict):
        return [], "Expected object, received " + type(data).__name__
    model = data.get("model")
    if model not in AIMLAPI_MODELS:
        expected = " | ".join(f"'{m}'" for m in AIMLAPI_MODELS)
        return ["model"], f"Invalid enum value. Expected {expected}, received '{model}'"
    resolutions, last_field = AIMLAPI_MODELS[model]
    allowed = _AIML_COMMON | {last_field}
    if model.endswith("-001"):
        allowed |= {"person_generation"}
    extra = sorted(set(data) - allowed)
    if extra:
        return [extra[0]], f"Unrecognized key(s) in object: '{extra[0]}'"
    if not isinstance(data.get("prompt"), str) or not data["prompt"]:
        return ["prompt"], "Required"
    for name in ("image_url", last_field):
        if name in data and _aiml_image(data[name]) is None:
            return [name], "Expected a URL or a Base64-encoded image"
    if last_field in data and "image_url" not in data:
        return [last_field], f"{last_field} needs image_url"
    duration = data.get("duration", 8)
    if not _is_int(duration):
        return ["duration"], f"Expected number, received {type(duration).__name__}"
    if duration not in (4, 6, 8):
        return ["duration"], f"Invalid enum value. Expected 4 | 6 | 8, received '{duration}'"
    if last_field in data and duration != 8 and not model.endswith("-001"):
        return ["duration"], "duration can only be 8s when a last frame is given"
    resolution = data.get("resolution", resolutions[-1])
    if resolution not in resolutions:
        expected = " | ".join(f"'{r}'" for r in resolutions)
        return ["resolution"], f"Invalid enum value. Expected {expected}, received '{resolution}'"
    if data.get("aspect_ratio", "16:9") not in ("16:9", "9:16"):
        return ["aspect_ratio"], "Invalid enum value. Expected '16:9' | '9:16'"
    if "generate_audio" in data and not isinstance(data["generate_audio"], bool):
        return ["generate_audio"], "Expected boolean"
    return None


def _aiml_image(value) -> bytes | None:
    """An image_url: a URL (not fetched here), a data URI, or bare base64."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith(("http://", "https://")):
        return b""  # valid, but there is no network to fetch it: the clip gets a title card
    data = _data_uri_bytes(value) if value.startswith("data:") else _b64(value)
    return data if data and _image_size(data) else None


# --------------------------------------------------------------------------- Oxen shapes


def _oxen_error(status: int, kind: str, title: str, detail: str = "") -> Reply:
    error = {"type": kind, "title": title}
    if detail:
        error["detail"] = detail
    return _json(status, {"error": error, "status": "error", "status_message": kind})


def _oxen_shapes(retry_after: int) -> dict[str, Callable[[], Reply]]:
    # Oxen's rate-limit body is UNCONFIRMED; this follows its documented error format.
    return {
        "rate_limit": lambda: Reply(
            429,
            json.dumps(
                {
                    "error": {"type": "rate_limited", "title": "Too many requests"},
                    "status": "error",
                    "status_message": "rate_limited",
                }
            ).encode(),
            headers={"Retry-After": str(retry_after)},
        ),
        "server_error": lambda: _oxen_error(500, "internal_error", "Internal server error"),
    }


_OXEN_FIELDS = {"model", "prompt", "input_image", "aspect_ratio", "resolution", "duration"}
_OXEN_FIELDS |= {"seed", "num_generations", "target_namespace"}


def _oxen_validate(data: dict) -> str:
    """The model's own checks, which Oxen runs only when the job starts (§4)."""

    def failed(text: str) -> str:
        return f"Getting model response error: 422 - {text}"

    extra = sorted(set(data) - _OXEN_FIELDS)
    if extra:
        return failed(f"{extra[0]}: Extra inputs are not permitted")
    if not isinstance(data.get("prompt"), str) or not data["prompt"]:
        return failed("prompt: Field required")
    duration = data.get("duration", 8)
    if not _is_int(duration) or duration not in (4, 6, 8):
        return failed(f"duration: Input should be 4, 6 or 8 (got {json.dumps(duration)})")
    resolution = data.get("resolution", "720p")
    if resolution not in ("720p", "1080p"):
        return failed("resolution: Input should be '720p' or '1080p'")
    if resolution == "1080p" and duration != 8:
        return failed("1080p requires an 8 second duration")
    if data.get("aspect_ratio", "16:9") not in ("16:9", "9:16"):
        return failed("aspect_ratio: Input should be '16:9' or '9:16'")
    if "seed" in data and not _is_int(data["seed"]):
        return failed("seed: Input should be a valid integer")
    if "input_image" in data:
        value = data["input_image"]
        if not isinstance(value, str) or not value.startswith(("http://", "https://", "data:")):
            return failed("input_image: Input should be a valid URL")
        if value.startswith("data:") and _image_size(_data_uri_bytes(value)) is None:
            return failed("input_image: could not decode the image")
    return ""


# --------------------------------------------------------------------------- webhook signing
# The signing side of studio/webhooks.py, written separately from it on purpose: two readings
# of the same documents that agree are better evidence than one function used twice.


def fal_webhook_signature(
    key: Ed25519PrivateKey, request_id: str, user_id: str, timestamp: str, body: bytes
) -> str:
    """fal's signature (§1.8): Ed25519 over the ids, the timestamp and the body's SHA-256, hex."""
    message = f"{request_id}\n{user_id}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}"
    return key.sign(message.encode()).hex()


def fal_jwks(*keys: Ed25519PublicKey) -> dict:
    """A JWKS of Ed25519 public keys, as fal serves at /.well-known/jwks.json."""
    entries = []
    for key in keys:
        raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        entries.append({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": x[:8], "alg": "EdDSA"})
    return {"keys": entries}


def standard_webhook_signature(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """A Standard Webhooks `webhook-signature` value: "v1," + base64 HMAC-SHA256 of
    "id.timestamp.body" with the base64 key after "whsec_"."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# --------------------------------------------------------------------------- helpers


def _split(kind: str) -> tuple[str, str | None]:
    kind, _, stage = kind.partition("@")
    return kind, stage or None


def _load(body: bytes):
    try:
        return json.loads(body or b"null")
    except ValueError:
        return None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _b64(value) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _data_uri_bytes(uri) -> bytes | None:
    match = re.fullmatch(r"data:(image/[\w.+-]+);base64,(.*)", uri or "", re.DOTALL)
    return _b64(match.group(2)) if match else None


def _image_size(data: bytes | None) -> tuple[int, int] | None:
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError):
        return None


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
