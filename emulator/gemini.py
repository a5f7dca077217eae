"""The Gemini API's long-running video generation for Veo 3.1 Lite (shared/providers.md §2).

    GEMINI_API_URL = {origin}/gemini/v1beta

`models/{model}:predictLongRunning` answers with an operation name; the operation is polled
until `done`, and its response names the video's file, downloaded with `?alt=media`. Errors
have Google's shape (`{"error": {"code", "message", "status"}}`); the key goes in
`x-goog-api-key`. Images come inline as base64 (§2.4), and parameters the API does not take
on Veo (seed, generateAudio) are refused as the SDK refuses them.

Webhooks: a job submitted with `webhookConfig` is POSTed a `video.generated` event when its
clip is made, signed the Standard Webhooks way with the emulator's own `whsec_` secret
(`GEMINI_WEBHOOK_SECRET`). Gemini documents no event for a failed video, so a failure sends
none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from emulator.base import (
    IMAGE_TYPES,
    NO_CREDIT_KEY,
    REJECTED_KEY,
    ClipParams,
    Job,
    ProviderEmulator,
    Reply,
    b64,
    image_size,
    is_int,
    json_reply,
    load,
    transient,
)
from emulator.google import google_error
from studio.frames import frame_size
from studio.providers.local import renderer

if TYPE_CHECKING:
    from emulator.server import Emulator

# Google shut the preview Veo 3.1 ids down on 2026-10-22: a submit to one answers 404 "is no
# longer available" (a reseller's notice quotes it). Whether the Gemini API serves Veo 3.1
# Lite under another id is unconfirmed (Studio's own default is none), so the emulator
# serves the one a test or an operator asks for, `model` (by default the id Vertex AI has).
RETIRED_MODELS = (
    "veo-3.1-lite-generate-preview",
    "veo-3.1-generate-preview",
    "veo-3.1-fast-generate-preview",
)
SERVED_MODEL = "veo-3.1-lite-generate-001"
_RESPONSE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"


class GeminiEmulator(ProviderEmulator):
    name = "gemini"
    key_setting = "GEMINI_API_KEY"

    def __init__(self, server: Emulator):
        super().__init__(server)
        # Made fresh for each emulator: nothing to keep secret, nothing to configure.
        self.webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.model = SERVED_MODEL

    def reset(self) -> None:
        self.model = SERVED_MODEL

    def settings(self, origin: str) -> dict[str, str]:
        return {"GEMINI_API_URL": f"{origin}/gemini/v1beta", "GEMINI_VEO_MODEL": self.model}

    def webhook_settings(self, origin: str) -> dict[str, str]:
        return {"GEMINI_WEBHOOK_SECRET": self.webhook_secret}

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        origin: str,
    ) -> Reply:
        route = path[len("/gemini/v1beta/") :] if path.startswith("/gemini/v1beta/") else None
        if route is None:
            return google_error(404, "NOT_FOUND", "Not found.")
        key = headers.get("x-goog-api-key", "")
        if not key:
            return google_error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if key == REJECTED_KEY:
            return google_error(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."
            )
        if key == NO_CREDIT_KEY:
            return google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details.",
            )
        match = re.fullmatch(r"models/([\w.-]+):predictLongRunning", route)
        if match and method == "POST":
            if match.group(1) != self.model:
                return self._unknown_model(match.group(1), "predictLongRunning")
            return self._submit(body, origin)
        match = re.fullmatch(r"models/([\w.-]+)", route)
        if match and method == "GET":
            return self._model(match.group(1))
        match = re.fullmatch(rf"models/{re.escape(self.model)}/operations/(\w+)", route)
        if match and method == "GET":
            return self._operation(match.group(1), origin)
        match = re.fullmatch(r"files/(\w+):download", route)
        if match and method == "GET":
            job = self.job(match.group(1))
            if job is None or query.get("alt") != ["media"]:
                return google_error(404, "NOT_FOUND", "File not found.")
            return self.download(
                job, lambda: google_error(404, "NOT_FOUND", "The file has expired.")
            )
        return google_error(404, "NOT_FOUND", f"Method not found: {method} /{route}")

    def _unknown_model(self, model: str, method: str) -> Reply:
        if model in RETIRED_MODELS:
            return google_error(
                404,
                "NOT_FOUND",
                f"This model models/{model} is no longer available. Please update your code to "
                "use a newer model for the latest features and improvements.",
            )
        return google_error(
            404,
            "NOT_FOUND",
            f"models/{model} is not found for API version v1beta, or is not supported for "
            f"{method}. Call ListModels to see the list of available models and their "
            "supported methods.",
        )

    def _model(self, model: str) -> Reply:
        """models.get (§1.4): the cheap call that proves the key and the model."""
        if model != self.model:
            return self._unknown_model(model, "get")
        return json_reply(
            200,
            {
                "name": f"models/{model}",
                "displayName": "Veo 3.1 Lite",
                "description": "Video generation (emulated).",
                "version": "001",
                "supportedGenerationMethods": ["predictLongRunning"],
            },
        )

    def _submit(self, body: bytes, origin: str) -> Reply:
        data = load(body)
        instances = data.get("instances") if isinstance(data, dict) else None
        instance = instances[0] if isinstance(instances, list) and instances else {}
        prompt = instance.get("prompt") if isinstance(instance, dict) else None
        failures = self.server.failures_for(prompt)
        spec = self.server.take_failure(("gemini-submit", prompt), failures, "submit")
        if spec is not None and spec.kind not in ("timeout", "malformed"):
            if spec.kind == "policy":
                return google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "The prompt could not be submitted. This prompt contains words that "
                    "violate Google's Responsible AI practices.",
                )
            return transient(spec, _google_shapes(self.server.retry_after))
        problem = _validate(data)
        if problem:
            return google_error(400, "INVALID_ARGUMENT", problem)
        parameters = data.get("parameters", {})
        first = b64(instance["image"]["bytesBase64Encoded"]) if "image" in instance else None
        last = b64(instance["lastFrame"]["bytesBase64Encoded"]) if "lastFrame" in instance else None
        width, height = frame_size(
            parameters.get("aspectRatio", "16:9"), parameters.get("resolution", "720p"), None
        )
        job = self.new_job(failures)
        config = data.get("webhookConfig")
        if isinstance(config, dict):
            for uri in config.get("uris") or []:
                self.server.webhook_later(
                    job,
                    "gemini",
                    uri,
                    lambda: self._webhook(job, origin, config.get("user_metadata")),
                )
        self.server.render_later(
            job,
            ClipParams(
                width,
                height,
                parameters.get("durationSeconds", 8),
                True,  # Veo on the Gemini API always makes sound
                renderer.motion_for_prompt(prompt),
                "Gemini API emulator",
                first,
                last,
            ),
        )
        reply = json_reply(200, {"name": f"models/{self.model}/operations/{job.id}"})
        if spec is not None:
            return transient(spec, {"ok": lambda: reply})
        return reply

    def _webhook(self, job: Job, origin: str, metadata) -> Reply | None:
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
                self.webhook_secret, message_id, timestamp, body
            ),
        }
        return Reply(200, body, headers=headers)

    def _operation(self, job_id: str, origin: str) -> Reply:
        job = self.job(job_id)
        if job is None:
            return google_error(404, "NOT_FOUND", "Operation not found.")
        spec = self.server.take_failure(job.id, job.failures, "poll")
        phase, _, _ = self.server.phase(job)
        name = f"models/{self.model}/operations/{job.id}"
        if phase != "done":
            reply = json_reply(
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
            reply = json_reply(
                200,
                {
                    "name": name,
                    "done": True,
                    "error": {"code": 13, "message": "Video generation failed (emulated)."},
                },
            )
        elif job.run_failure() == "policy":
            reply = json_reply(
                200,
                {
                    "name": name,
                    "done": True,
                    "response": {
                        "@type": _RESPONSE,
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
            reply = json_reply(
                200,
                {
                    "name": name,
                    "done": True,
                    "response": {
                        "@type": _RESPONSE,
                        "generateVideoResponse": {"generatedSamples": [{"video": {"uri": uri}}]},
                    },
                },
            )
        if spec is not None:
            return transient(spec, {**_google_shapes(self.server.retry_after), "ok": lambda: reply})
        return reply


# --------------------------------------------------------------------------- Google's shapes


def _google_shapes(retry_after: int) -> dict[str, Callable[[], Reply]]:
    return {
        "rate_limit": lambda: google_error(
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
        "server_error": lambda: google_error(
            503, "UNAVAILABLE", "The service is currently unavailable."
        ),
    }


_PARAMETERS = {
    "sampleCount",
    "durationSeconds",
    "aspectRatio",
    "resolution",
    "personGeneration",
    "negativePrompt",
    "enhancePrompt",
}


def _validate(data) -> str:
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
            problem = _validate_image(name, instance[name])
            if problem:
                return problem
    if "lastFrame" in instance and "image" not in instance:
        return "lastFrame needs a first frame (image)."
    parameters = data.get("parameters", {})
    if not isinstance(parameters, dict):
        return "parameters must be an object."
    extra = sorted(set(parameters) - _PARAMETERS)
    if extra:
        # seed and generateAudio land here: the SDK refuses them on the Gemini API (§2.4).
        return (
            f"`{extra[0]}` isn't supported by this model. Please remove it or refer to the "
            "Gemini API documentation for supported usage."
        )
    duration = parameters.get("durationSeconds", 8)
    if not is_int(duration) or duration not in (4, 6, 8):
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
    if parameters.get("sampleCount", 1) != 1 and not is_int(parameters.get("sampleCount")):
        return "sampleCount must be an integer."
    if "negativePrompt" in parameters and not isinstance(parameters["negativePrompt"], str):
        return "negativePrompt must be a string."
    return ""


def _validate_image(name: str, image) -> str:
    if not isinstance(image, dict):
        return f"{name} must be an object."
    if "gcsUri" in image:
        return f"{name}.gcsUri isn't supported by the Gemini API; send bytesBase64Encoded."
    extra = set(image) - {"bytesBase64Encoded", "mimeType"}
    if extra:
        return f"Invalid JSON payload received. Unknown name \"{sorted(extra)[0]}\" at '{name}'."
    if image.get("mimeType") not in IMAGE_TYPES:
        return f"{name}.mimeType must be image/jpeg, image/png or image/webp."
    data = b64(image.get("bytesBase64Encoded"))
    if data is None:
        return (
            f"Invalid value at '{name}.bytes_base64_encoded' (TYPE_BYTES), Base64 decoding failed."
        )
    if image_size(data) is None:
        return f"Unable to process input image ({name})."
    return ""


# --------------------------------------------------------------------------- webhook signing
# The signing side of studio/webhooks.py, written separately from it on purpose: two readings
# of the same documents that agree are better evidence than one function used twice.


def standard_webhook_signature(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """A Standard Webhooks `webhook-signature` value: "v1," + base64 HMAC-SHA256 of
    "id.timestamp.body" with the base64 key after "whsec_"."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()
