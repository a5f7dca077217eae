"""AI/ML API's video generations for the Veo 3.1 Lite models (shared/providers.md §3).

    AIMLAPI_URL = {origin}/aimlapi

`POST /v2/video/generations` answers with the generation's id; `GET` with `?generation_id=`
reports it `queued`, `generating`, then `completed` with the video's URL (or `error`). Each
model is checked against its own OpenAPI file, zod-style, and errors have AI/ML API's
documented shape (`message`, `path`, `requestId`, `statusCode`, `timestamp`). It sends no
webhooks.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from emulator.base import (
    NO_CREDIT_KEY,
    REJECTED_KEY,
    ClipParams,
    Job,
    ProviderEmulator,
    Reply,
    b64,
    data_uri_bytes,
    image_size,
    is_int,
    json_reply,
    load,
    transient,
)
from studio.frames import frame_size
from studio.providers.local import renderer

AIMLAPI_MODELS = {
    # Exactly the ids AI/ML API documents for Veo 3.1 Lite (the id and its catalogue alias):
    # (resolutions, last-frame field) as the model's OpenAPI file has them. Any other id,
    # the old preview spelling included, is refused as the service refuses an unknown enum.
    "google/veo-3.1-lite-generate-001": (("720P", "1080P"), "last_image_url"),
    "veo-3.1-lite-generate-001": (("720P", "1080P"), "last_image_url"),
}


class AimlapiEmulator(ProviderEmulator):
    name = "aimlapi"
    key_setting = "AIMLAPI_KEY"

    def settings(self, origin: str) -> dict[str, str]:
        return {"AIMLAPI_URL": f"{origin}/aimlapi"}

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        origin: str,
    ) -> Reply:
        route = path[len("/aimlapi") :]
        if route.startswith("/model/") and method == "GET":
            # The model catalogue needs no key (§3.5): 404 for a name that is no id or alias.
            model = route[len("/model/") :]
            if model not in AIMLAPI_MODELS:
                return _error(404, "Not Found", route)
            return json_reply(200, {"object": "model", "data": {"id": model, "type": "video"}})
        match = re.fullmatch(r"/cdn/generations/(\w+)\.mp4", route)
        if match and method == "GET":
            job = self.job(match.group(1))
            gone = lambda: Reply(410, b"Gone", "text/plain")  # noqa: E731
            return gone() if job is None else self.download(job, gone)
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not key or key == REJECTED_KEY:
            return _error(
                401,
                "This request requires a valid API key. You can create a new API key on the "
                "Billing page: https://aimlapi.com/app/keys",
                route,
            )
        if key == NO_CREDIT_KEY:
            return _error(
                403,
                "You've run out of credits. Please top up your balance or update your payment "
                "method to continue: https://aimlapi.com/app/billing/",
                route,
            )
        if route == "/v2/billing" and method == "GET":
            return json_reply(200, {"current_balance": 12.5, "currency": "USD"})
        if route != "/v2/video/generations":
            return _error(404, "Not Found", route)
        if method == "POST":
            return self._submit(body, route, origin)
        if method == "GET":
            job_id = query.get("generation_id", [""])[0]
            job = self.job(job_id)
            if job is None:
                return _error(404, "Generation not found", route)
            return self._poll(job, route, origin)
        return _error(404, "Not Found", route)

    def _submit(self, body: bytes, route: str, origin: str) -> Reply:
        data = load(body)
        prompt = data.get("prompt") if isinstance(data, dict) else None
        failures = self.server.failures_for(prompt)
        spec = self.server.take_failure(("aimlapi-submit", prompt), failures, "submit")
        if spec is not None and spec.kind not in ("timeout", "malformed"):
            if spec.kind == "policy":
                return _error(
                    400, "Your prompt was rejected by the content moderation system.", route
                )
            return transient(spec, _shapes(self.server.retry_after, route))
        problem = _validate(data)
        if problem:
            path, message = problem
            return _error(
                400, "Body validation error!", route, meta=[{"path": path, "message": message}]
            )
        last_field = AIMLAPI_MODELS[data["model"]][1]
        first = _image(data.get("image_url"))
        last = _image(data.get(last_field))
        width, height = frame_size(
            data.get("aspect_ratio", "16:9"), str(data.get("resolution", "1080p")).lower(), None
        )
        job = self.new_job(failures)
        self.server.render_later(
            job,
            ClipParams(
                width,
                height,
                int(data.get("duration", 8)),
                bool(data.get("generate_audio", True)),
                renderer.motion_for_prompt(prompt),
                "AI/ML API emulator",
                first,
                last,
            ),
        )
        reply = json_reply(200, {"id": job.id, "status": "queued"})
        if spec is not None:
            return transient(spec, {"ok": lambda: reply})
        return reply

    def _poll(self, job: Job, route: str, origin: str) -> Reply:
        spec = self.server.take_failure(job.id, job.failures, "poll")
        phase, _, _ = self.server.phase(job)
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
            entry["meta"] = {"usage": {"credits_used": 0}}  # the fetch schema (§3.3)
        else:
            entry["status"] = "completed"
            entry["video"] = {"url": f"{origin}/aimlapi/cdn/generations/{job.id}.mp4"}
            entry["meta"] = {"usage": {"credits_used": 120000}}
        reply = json_reply(200, entry)
        if spec is not None:
            return transient(spec, {**_shapes(self.server.retry_after, route), "ok": lambda: reply})
        return reply


# --------------------------------------------------------------------------- AI/ML API's shapes


def _error(status: int, message: str, path: str, meta: list | None = None, headers=None) -> Reply:
    body = {
        "message": message,
        "path": path,
        "requestId": uuid.uuid4().hex,
        "statusCode": status,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    if meta:
        body["meta"] = meta
    return json_reply(status, body, headers)


def _shapes(retry_after: int, path: str) -> dict[str, Callable[[], Reply]]:
    return {
        "rate_limit": lambda: _error(
            429, "Too Many Requests", path, headers={"Retry-After": str(retry_after)}
        ),
        "server_error": lambda: _error(503, "Service unavailable", path),
    }


_COMMON = {"model", "prompt", "image_url", "aspect_ratio", "resolution", "duration"}
_COMMON |= {"generate_audio"}


def _validate(data) -> tuple[list, str] | None:
    """Each Lite model's OpenAPI schema (§3), zod-style: (path, "Expected …, received …")."""
    if not isinstance(data, dict):
        return [], "Expected object, received " + type(data).__name__
    model = data.get("model")
    if model not in AIMLAPI_MODELS:
        expected = " | ".join(f"'{m}'" for m in AIMLAPI_MODELS)
        return ["model"], f"Invalid enum value. Expected {expected}, received '{model}'"
    resolutions, last_field = AIMLAPI_MODELS[model]
    allowed = _COMMON | {last_field}
    if model.endswith("-001"):
        allowed |= {"person_generation"}
    extra = sorted(set(data) - allowed)
    if extra:
        return [extra[0]], f"Unrecognized key(s) in object: '{extra[0]}'"
    if not isinstance(data.get("prompt"), str) or not data["prompt"]:
        return ["prompt"], "Required"
    for name in ("image_url", last_field):
        if name in data and _image(data[name]) is None:
            return [name], "Expected a URL or a Base64-encoded image"
    if last_field in data and "image_url" not in data:
        return [last_field], f"{last_field} needs image_url"
    duration = data.get("duration", 8)
    if not is_int(duration):
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


def _image(value) -> bytes | None:
    """An image_url: a URL (not fetched here), a data URI, or bare base64."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith(("http://", "https://")):
        return b""  # valid, but there is no network to fetch it: the clip gets a title card
    data = data_uri_bytes(value) if value.startswith("data:") else b64(value)
    return data if data and image_size(data) else None
