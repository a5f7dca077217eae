"""fal.ai's queue API for Veo 3.1 Lite (shared/providers.md §1), with its storage upload.

    FAL_QUEUE_URL = {origin}/fal/queue
    FAL_REST_URL  = {origin}/fal/rest

A submit to one of the three Lite endpoints answers with the request's URLs, which use the
app's owner/alias only (`fal-ai/veo3.1/requests/{id}`): a URL rebuilt with the endpoint's
sub-path is a 404, as at fal. Status is 202 until the request is completed, then 200; the
result is the video's URL on the emulated CDN. Input is checked against the endpoints'
schema (§1.2) and refused with fal's 422 `detail` items. Stills go through the storage
upload: a token from `{FAL_REST_URL}/storage/auth/token`, then a POST of the bytes to the
CDN, which serves them back by URL.

Webhooks: a job submitted with `?fal_webhook=URL` is POSTed its webhook (§1.8: `OK` with the
video, or `ERROR` with the error) when it ends, signed with an Ed25519 key made at start whose
JWKS is served at {origin}/fal/jwks.json (`FAL_JWKS_URL`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from emulator.base import (
    IMAGE_TYPES,
    NO_CREDIT_KEY,
    REJECTED_KEY,
    ClipParams,
    Job,
    ProviderEmulator,
    Reply,
    data_uri_bytes,
    image_size,
    is_int,
    json_reply,
    load,
    transient,
)
from studio.frames import frame_size
from studio.providers.local import renderer

if TYPE_CHECKING:
    from emulator.server import Emulator

FAL_ENDPOINTS = {
    "fal-ai/veo3.1/lite": "text",
    "fal-ai/veo3.1/lite/image-to-video": "image",
    "fal-ai/veo3.1/lite/first-last-frame-to-video": "first_last",
}
FAL_APP = "fal-ai/veo3.1"
# Who the emulator's fal webhooks say they are for (X-Fal-Webhook-User-Id).
FAL_USER_ID = "emulator-user"


class FalEmulator(ProviderEmulator):
    name = "fal"
    key_setting = "FAL_KEY"

    def __init__(self, server: Emulator):
        super().__init__(server)
        # Made fresh for each emulator: nothing to keep secret, nothing to configure.
        self.signing_key = Ed25519PrivateKey.generate()
        self._uploads: dict[str, tuple[str, bytes]] = {}
        self._tokens: set[str] = set()

    def settings(self, origin: str) -> dict[str, str]:
        return {
            "FAL_QUEUE_URL": f"{origin}/fal/queue",
            "FAL_REST_URL": f"{origin}/fal/rest",
            "FAL_API_URL": f"{origin}/fal/api",
        }

    def webhook_settings(self, origin: str) -> dict[str, str]:
        return {"FAL_JWKS_URL": f"{origin}/fal/jwks.json"}

    def reset(self) -> None:
        self._uploads.clear()

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        origin: str,
    ) -> Reply:
        rest = path[len("/fal/") :]
        if rest.startswith("rest/"):
            return self._rest(method, rest[len("rest/") :], query, headers, origin)
        if rest.startswith("cdn/"):
            return self._cdn(method, rest[len("cdn/") :], headers, body, origin)
        if rest == "jwks.json" and method == "GET":
            return json_reply(200, fal_jwks(self.signing_key.public_key()))
        if rest == "api/v1/models/pricing" and method == "GET":
            return self._pricing(headers, query)
        if not rest.startswith("queue/"):
            return _error(404, "Not Found")
        route = rest[len("queue/") :]
        auth = _auth(headers)
        if auth is not None:
            return auth
        if method == "POST" and route in FAL_ENDPOINTS:
            return self._submit(route, body, origin, query.get("fal_webhook", [""])[0])
        match = re.fullmatch(rf"{re.escape(FAL_APP)}/requests/([0-9a-f]+)(/status|/cancel)?", route)
        if not match:
            # Includes URLs rebuilt with the endpoint's sub-path: fal's are owner/alias only.
            return _error(404, "Not Found")
        job = self.job(match.group(1))
        if job is None:
            return _error(404, "Request not found")
        action = match.group(2) or ""
        if action == "/status" and method == "GET":
            return self._status(job, query, origin)
        if action == "/cancel" and method == "PUT":
            return self._cancel(job)
        if action == "" and method == "GET":
            return self._result(job, origin)
        return _error(405, "Method Not Allowed")

    def _pricing(self, headers: dict[str, str], query: dict[str, list[str]]) -> Reply:
        """The Platform API's model pricing (§4.2 of the research): the cheap call that
        proves the key (authentication required) and the endpoint."""
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if scheme != "Key" or not key or key == REJECTED_KEY:
            return json_reply(
                401,
                {"error": {"type": "authorization_error", "message": "Authentication required"}},
            )
        endpoints = query.get("endpoint_id", [])
        unknown = [e for e in endpoints if e not in FAL_ENDPOINTS]
        if not endpoints or unknown:
            return json_reply(
                404,
                {
                    "error": {
                        "type": "not_found",
                        "message": f"Endpoint {unknown or endpoints} not found",
                    }
                },
            )
        return json_reply(
            200,
            {
                "prices": [
                    {"endpoint_id": e, "unit_price": 0.05, "unit": "seconds", "currency": "USD"}
                    for e in endpoints
                ],
                "next_cursor": None,
                "has_more": False,
            },
        )

    def _urls(self, job: Job, origin: str) -> dict:
        base = f"{origin}/fal/queue/{FAL_APP}/requests/{job.id}"
        return {
            "request_id": job.id,
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }

    def _submit(self, endpoint: str, body: bytes, origin: str, webhook: str) -> Reply:
        data = load(body)
        prompt = data.get("prompt") if isinstance(data, dict) else None
        failures = self.server.failures_for(prompt)
        spec = self.server.take_failure(("fal-submit", prompt), failures, "submit")
        if spec is not None and spec.kind != "timeout" and spec.kind != "malformed":
            if spec.kind == "policy":
                return _policy()
            return transient(spec, _shapes(self.server.retry_after))
        if not isinstance(data, dict):
            return _validation([(["body"], "Input should be a valid dictionary", "dict_type")])
        problems = _validate(FAL_ENDPOINTS[endpoint], data)
        if problems:
            return _validation(problems)
        mode = FAL_ENDPOINTS[endpoint]
        first = self._image(data.get("image_url") or data.get("first_frame_url"))
        last = self._image(data.get("last_frame_url"))
        job = self.new_job(failures, endpoint=endpoint)
        size = image_size(first)
        aspect = data.get("aspect_ratio", "16:9" if mode == "text" else "auto")
        width, height = frame_size(aspect, data.get("resolution", "720p"), size)
        self.server.render_later(
            job,
            ClipParams(
                width,
                height,
                int(data.get("duration", "8s")[:-1]),
                bool(data.get("generate_audio", True)),
                renderer.motion_for_prompt(prompt),
                "fal.ai emulator",
                first,
                last,
            ),
        )
        if webhook.startswith(("http://", "https://")):
            self.server.webhook_later(job, "fal", webhook, lambda: self._webhook(job, origin))
        reply = json_reply(
            200, {**self._urls(job, origin), "status": "IN_QUEUE", "queue_position": 0}
        )
        if spec is not None:  # timeout / malformed: the job exists, the answer is lost
            return transient(spec, {"ok": lambda: reply})
        return reply

    def _webhook(self, job: Job, origin: str) -> Reply:
        """The signed webhook of a fal job that has ended (§1.8)."""
        envelope = {"request_id": job.id, "gateway_request_id": job.id}
        result = self._result(job, origin)
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
        signature = fal_webhook_signature(self.signing_key, job.id, FAL_USER_ID, timestamp, body)
        headers = {
            "X-Fal-Webhook-Request-Id": job.id,
            "X-Fal-Webhook-User-Id": FAL_USER_ID,
            "X-Fal-Webhook-Timestamp": timestamp,
            "X-Fal-Webhook-Signature": signature,
        }
        return Reply(200, body, headers=headers)

    def _image(self, url) -> bytes | None:
        if not isinstance(url, str):
            return None
        if url.startswith("data:"):
            return data_uri_bytes(url)
        match = re.search(r"/fal/cdn/files/([0-9a-f]+)/", url)
        if match:
            upload = self._uploads.get(match.group(1))
            return upload[1] if upload else None
        return None  # a public URL: no network here, so the clip gets a title card

    def _status(self, job: Job, query, origin: str) -> Reply:
        spec = self.server.take_failure(job.id, job.failures, "poll")
        phase, position, progress = self.server.phase(job)
        body = self._urls(job, origin)
        logs = query.get("logs", ["0"])[0] in ("1", "true")
        if job.cancelled:
            reply = json_reply(
                200, {**body, "status": "COMPLETED", "error": "Request was cancelled"}
            )
        elif phase == "queued":
            reply = json_reply(202, {**body, "status": "IN_QUEUE", "queue_position": position})
        elif phase == "running":
            entry = {**body, "status": "IN_PROGRESS"}
            if logs:
                entry["logs"] = [_log(f"Generating video: {round(progress * 100)}%")]
            reply = json_reply(202, entry)
        else:
            done = {**body, "status": "COMPLETED", "metrics": {"inference_time": job.latency}}
            if logs:
                done["logs"] = [_log("Video generated")]
            if job.run_failure() == "policy":
                done["error"] = "Content policy violation"
                done["error_type"] = "content_policy_violation"
            elif job.run_failure():
                done["error"] = "Runner disconnected"
                done["error_type"] = "runner_disconnected"
            reply = json_reply(200, done)
        if spec is not None:
            return transient(spec, {**_shapes(self.server.retry_after), "ok": lambda: reply})
        return reply

    def _result(self, job: Job, origin: str) -> Reply:
        phase, _, _ = self.server.phase(job)
        if job.cancelled:
            reply = _error(400, "Request was cancelled")
        elif phase != "done":
            reply = _error(400, "Request is still in progress")
        elif job.run_failure() == "policy":
            reply = _policy()
        elif job.run_failure():
            reply = json_reply(
                503,
                {"detail": "Runner disconnected", "error_type": "runner_disconnected"},
                {"X-Fal-Error-Type": "runner_disconnected"},
            )
        else:
            url = f"{origin}/fal/cdn/files/{job.id}/output.mp4"
            reply = json_reply(
                200,
                {"video": {"url": url, "content_type": "video/mp4", "file_name": "output.mp4"}},
            )
        reply.headers["x-fal-request-id"] = job.id  # every reply about the request carries it
        return reply

    def _cancel(self, job: Job) -> Reply:
        """A queued request is removed ("OK"); a running one is sent a cancellation signal
        ("CANCELLATION_REQUESTED") and stops; a finished one is "ALREADY_COMPLETED"."""
        phase, _, _ = self.server.phase(job)
        if phase == "done" and not job.cancelled:
            return json_reply(400, {"status": "ALREADY_COMPLETED"})
        job.cancelled = True
        if phase == "queued":
            return json_reply(200, {"status": "OK"})
        return json_reply(202, {"status": "CANCELLATION_REQUESTED"})

    def _rest(self, method, route, query, headers, origin) -> Reply:
        auth = _auth(headers)
        if auth is not None:
            return auth
        if method == "POST" and route == "storage/auth/token":
            if query.get("storage_type") != ["fal-cdn-v3"]:
                return _error(422, "storage_type must be fal-cdn-v3")
            token = uuid.uuid4().hex
            self._tokens.add(token)
            return json_reply(
                200,
                {
                    "token": token,
                    "token_type": "Bearer",
                    "base_url": f"{origin}/fal/cdn",
                    "expires_at": datetime.now(UTC).isoformat(),
                },
            )
        return _error(404, "Not Found")

    def _cdn(self, method, route, headers, body, origin) -> Reply:
        if method == "POST" and route == "files/upload":
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme != "Bearer" or token not in self._tokens:
                return _error(401, "Invalid or missing upload token")
            content_type = headers.get("content-type", "")
            if content_type not in IMAGE_TYPES or not body:
                return _error(422, f"Unsupported upload: {content_type or 'no type'}")
            file_id = uuid.uuid4().hex
            name = re.sub(r"[^\w.-]", "_", headers.get("x-fal-file-name", "upload"))
            self._uploads[file_id] = (content_type, body)
            return json_reply(200, {"access_url": f"{origin}/fal/cdn/files/{file_id}/{name}"})
        match = re.fullmatch(r"files/([0-9a-f]+)/[\w.-]+", route)
        if method == "GET" and match:
            if match.group(1) in self._uploads:
                content_type, data = self._uploads[match.group(1)]
                return Reply(200, data, content_type=content_type)
            job = self.job(match.group(1))
            if job is None:
                return _error(404, "Not Found")
            return self.download(job, lambda: _error(404, "Not Found"))
        return _error(404, "Not Found")


# --------------------------------------------------------------------------- fal's shapes


def _error(status: int, detail, headers: dict | None = None) -> Reply:
    return json_reply(status, {"detail": detail}, headers)


def _auth(headers: dict[str, str]) -> Reply | None:
    scheme, _, key = headers.get("authorization", "").partition(" ")
    if scheme != "Key" or not key:
        return _error(401, "Authentication is required to access this application.")
    if key == REJECTED_KEY:
        return _error(401, "Invalid API key.")
    if key == NO_CREDIT_KEY:
        return _error(403, "User is locked. Reason: Exhausted balance.")
    return None


def _validation(problems: list[tuple[list, str, str]]) -> Reply:
    detail = [
        {"loc": loc, "msg": msg, "type": kind, "url": f"https://docs.fal.ai/errors#{kind}"}
        for loc, msg, kind in problems
    ]
    return _error(422, detail, {"X-Fal-Retryable": "false"})


def _policy() -> Reply:
    # The typed shape of fal's Model Errors doc; the exact type for Veo Lite is UNCONFIRMED.
    return _validation(
        [
            (
                ["body", "prompt"],
                "The content could not be processed because it contained material flagged "
                "by a content checker.",
                "content_policy_violation",
            )
        ]
    )


def _shapes(retry_after: int) -> dict[str, Callable[[], Reply]]:
    return {
        "rate_limit": lambda: _error(429, "Rate limit exceeded", {"Retry-After": str(retry_after)}),
        "server_error": lambda: json_reply(
            503,
            {"detail": "Runner scheduling failure", "error_type": "runner_scheduling_failure"},
            {"X-Fal-Error-Type": "runner_scheduling_failure"},
        ),
    }


def _log(message: str) -> dict:
    return {
        "message": message,
        "level": "INFO",
        "source": "USER",
        "timestamp": datetime.now(UTC).isoformat(),
    }


_COMMON = {"prompt", "duration", "resolution", "generate_audio", "negative_prompt", "seed"}
_COMMON |= {"auto_fix", "safety_tolerance", "aspect_ratio"}
_FIELDS = {
    "text": _COMMON,
    "image": _COMMON | {"image_url"},
    "first_last": _COMMON | {"first_frame_url", "last_frame_url"},
}


def _validate(mode: str, data: dict) -> list[tuple[list, str, str]]:
    """fal's input schema for the three Lite endpoints (§1.2), as 422 `detail` items."""
    problems = []

    def bad(name: str, msg: str, kind: str) -> None:
        problems.append((["body", name], msg, kind))

    for name in sorted(set(data) - _FIELDS[mode]):
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
    if "seed" in data and not is_int(data["seed"]):
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
