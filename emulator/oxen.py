"""Oxen.ai's async queue for Veo 3.1 Lite (shared/providers.md §4).

    OXEN_API_URL = {origin}/oxen

`POST /api/ai/queue` enqueues a generation, checking only the model, `num_generations` and
credits (async_queue.mdx); `GET /api/ai/queue/{id}` reports it `queued`, `processing`, then
`succeeded` with a presigned link to the MP4, or `failed`; `DELETE` cancels it. The model's
own parameter checks run only when the job starts, so a bad duration or resolution arrives
as a failed generation with the model's message, not as a refused submit. An expired link
gets S3's `AccessDenied` answer. It sends no webhooks.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

from emulator.base import (
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

OXEN_MODEL = "google-veo-3-1-lite"


class OxenEmulator(ProviderEmulator):
    name = "oxen"
    key_setting = "OXEN_API_KEY"

    def settings(self, origin: str) -> dict[str, str]:
        return {"OXEN_API_URL": f"{origin}/oxen"}

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        origin: str,
    ) -> Reply:
        route = path[len("/oxen") :]
        match = re.fullmatch(r"/files/(\w+)\.mp4", route)
        if match and method == "GET":
            job = self.job(match.group(1))
            expired = lambda: Reply(  # noqa: E731 - S3's answer to an expired presigned link
                403,
                b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
                b"<Message>Request has expired</Message></Error>",
                "application/xml",
            )
            return expired() if job is None else self.download(job, expired)
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not key or key == REJECTED_KEY:
            return _error(401, "unauthorized", "Invalid or missing API key")
        match = re.fullmatch(r"/api/ai/models/([\w.-]+)", route)
        if match and method == "GET":
            if match.group(1) != OXEN_MODEL:
                return _error(
                    404, "resource_not_found", "The requested resource could not be found"
                )
            return json_reply(
                200,
                {
                    "id": OXEN_MODEL,
                    "object": "model",
                    "display_name": "Veo 3.1 Lite",
                    "model_type": "video",
                    "pricing": {"method": "per_video_output_second", "cost_per_second": 0.05},
                },
            )
        if route == "/api/ai/queue" and method == "POST":
            if key == NO_CREDIT_KEY:
                return _error(402, "insufficient_credits", "Insufficient credits")
            return self._submit(body, origin)
        match = re.fullmatch(r"/api/ai/queue/([\w-]+)", route)
        if match:
            job = self.job(match.group(1))
            if job is None:
                return _error(404, "resource_not_found", "Generation not found")
            if method == "GET":
                return self._poll(job, origin)
            if method == "DELETE":
                if self._status(job) in ("queued", "processing"):
                    job.cancelled = True
                return json_reply(200, {"status": "success", "generation_id": job.id})
        return _error(404, "resource_not_found", "Not found")

    def _submit(self, body: bytes, origin: str) -> Reply:
        data = load(body)
        if not isinstance(data, dict):
            return _error(400, "invalid_params", "Invalid JSON body")
        prompt = data.get("prompt")
        failures = self.server.failures_for(prompt)
        spec = self.server.take_failure(("oxen-submit", prompt), failures, "submit")
        if spec is not None and spec.kind not in ("timeout", "malformed", "policy"):
            return transient(spec, _shapes(self.server.retry_after))
        # Enqueue checks only the model, num_generations and credits (async_queue.mdx).
        if data.get("model") != OXEN_MODEL:
            return json_reply(404, {"error": {"message": f"Model not found: {data.get('model')}"}})
        count = data.get("num_generations", 1)
        if not is_int(count) or not 1 <= count <= 4:
            return _error(
                400,
                "invalid_params",
                "Invalid parameters",
                "num_generations must be an integer between 1 and 4",
            )
        job = self.new_job(failures, prompt=prompt)
        job.run_error = _validate(data)
        if not job.run_error:
            first = data_uri_bytes(data["input_image"]) if "input_image" in data else None
            width, height = frame_size(
                data.get("aspect_ratio", "16:9"), data.get("resolution", "720p"), None
            )
            self.server.render_later(
                job,
                ClipParams(
                    width,
                    height,
                    data.get("duration", 8),
                    True,  # "native synchronized audio"
                    renderer.motion_for_prompt(prompt),
                    "Oxen.ai emulator",
                    first,
                ),
            )
        job.info.update(
            aspect_ratio=data.get("aspect_ratio", "16:9"), duration=data.get("duration", 8)
        )
        reply = json_reply(200, {"generations": [{"generation_id": job.id, "status": "queued"}]})
        if spec is not None and spec.kind != "policy":
            return transient(spec, {"ok": lambda: reply})
        return reply

    def _status(self, job: Job) -> str:
        phase, _, _ = self.server.phase(job)
        if job.cancelled:
            return "cancelled"
        if phase == "queued":
            return "queued"
        if job.run_error or job.run_failure() or any(s.kind == "policy" for s in job.failures):
            return "failed"  # found when the job starts, as Oxen validates at run time
        return "processing" if phase == "running" else "succeeded"

    def _poll(self, job: Job, origin: str) -> Reply:
        spec = self.server.take_failure(job.id, job.failures, "poll")
        status = self._status(job)
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
        reply = json_reply(200, entry)
        if spec is not None:
            return transient(spec, {**_shapes(self.server.retry_after), "ok": lambda: reply})
        return reply


# --------------------------------------------------------------------------- Oxen's shapes


def _error(status: int, kind: str, title: str, detail: str = "") -> Reply:
    error = {"type": kind, "title": title}
    if detail:
        error["detail"] = detail
    return json_reply(status, {"error": error, "status": "error", "status_message": kind})


def _shapes(retry_after: int) -> dict[str, Callable[[], Reply]]:
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
        "server_error": lambda: _error(500, "internal_error", "Internal server error"),
    }


_FIELDS = {"model", "prompt", "input_image", "aspect_ratio", "resolution", "duration"}
_FIELDS |= {"seed", "num_generations", "target_namespace"}


def _validate(data: dict) -> str:
    """The model's own checks, which Oxen runs only when the job starts (§4)."""

    def failed(text: str) -> str:
        return f"Getting model response error: 422 - {text}"

    extra = sorted(set(data) - _FIELDS)
    if extra:
        return failed(f"{extra[0]}: Extra inputs are not permitted")
    if not isinstance(data.get("prompt"), str) or not data["prompt"]:
        return failed("prompt: Field required")
    duration = data.get("duration", 8)
    if not is_int(duration) or duration not in (4, 6, 8):
        return failed(f"duration: Input should be 4, 6 or 8 (got {json.dumps(duration)})")
    resolution = data.get("resolution", "720p")
    if resolution not in ("720p", "1080p"):
        return failed("resolution: Input should be '720p' or '1080p'")
    if resolution == "1080p" and duration != 8:
        return failed("1080p requires an 8 second duration")
    if data.get("aspect_ratio", "16:9") not in ("16:9", "9:16"):
        return failed("aspect_ratio: Input should be '16:9' or '9:16'")
    if "seed" in data and not is_int(data["seed"]):
        return failed("seed: Input should be a valid integer")
    if "input_image" in data:
        value = data["input_image"]
        if not isinstance(value, str) or not value.startswith(("http://", "https://", "data:")):
            return failed("input_image: Input should be a valid URL")
        if value.startswith("data:") and image_size(data_uri_bytes(value)) is None:
            return failed("input_image: could not decode the image")
    return ""
