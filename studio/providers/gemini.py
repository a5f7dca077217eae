"""Google's Gemini API (Veo 3.1 Lite, long-running operations; shared/providers.md §2).

Called directly over REST: google-genai ≥ 3.0 refuses video generation with an API key, and
the request shapes below are those its last 2.x release sent (§2.1, §2.4).

submit: POST {GEMINI_API_URL}/models/{model}:predictLongRunning → an operation name.
poll: GET {GEMINI_API_URL}/{name} until `done`. The video is downloaded with the API key.
No cancel is documented. With STUDIO_PUBLIC_URL and GEMINI_WEBHOOK_SECRET set, submit adds a
webhookConfig (§2.4, §2.8; studio/webhooks.py verifies the events).

Not sent, deliberately: `seed` and `generateAudio`. The SDK refuses both on the Gemini API
("only supported in … Agent Platform mode"), so there is no documented way to set a seed or
turn sound off; capabilities say so and pre-flight tells the creator.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import httpx
from django.conf import settings

from studio.providers import http
from studio.providers.base import (
    AccountError,
    ContentPolicyError,
    GenerationRequest,
    Handle,
    ImageInput,
    InvalidRequestError,
    NotFoundError,
    Phase,
    PollResult,
    ProviderError,
    RateLimitedError,
    TransientError,
)
from studio.providers.capabilities import Capabilities

MODEL = "veo-3.1-lite-generate-preview"  # GEMINI_VEO_MODEL (optional setting) overrides
# Generated files are served by the API host itself (…/files/{id}:download?alt=media).
# Google's downloads commonly redirect to googleusercontent.com storage: UNCONFIRMED for this
# API, trusted because it is Google's (GEMINI_MEDIA_HOSTS adds more).
MEDIA_HOSTS = ("generativelanguage.googleapis.com", "*.googleusercontent.com")

_POLICY_WORDS = ("safety", "responsible ai", "prohibited", "violat", "blocked", "sensitive")
_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")


class GeminiProvider(http.HttpProvider):
    name = "gemini"
    label = "Gemini API"
    poll_interval_seconds = 10.0  # the cookbook polls every 10 s; a clip takes about a minute
    capabilities = Capabilities(
        label="Gemini API",
        audio_toggle=False,
        audio_always=True,
        seed=False,
        notes=(
            "1080p at 4 or 6 s is unconfirmed for Lite on the Gemini API (fal and Oxen "
            "require 8 s); it is allowed here and the API's own answer is shown.",
            "First and last frame (lastFrame) is unconfirmed for Lite on the Gemini API.",
            "Image size limit for inline images is unconfirmed.",
        ),
    )

    def unavailable_reason(self) -> str:
        return "" if settings.GEMINI_API_KEY else "Set GEMINI_API_KEY to use the Gemini API."

    # ----------------------------------------------------------------------- protocol

    def submit(self, request: GenerationRequest) -> Handle:
        model = settings.GEMINI_VEO_MODEL or MODEL
        url = f"{_base()}/models/{model}:predictLongRunning"
        data = self._json(
            self._send("POST", url, json=self._body(request), submitting=True), submitting=True
        )
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise http.malformed_reply(self.label, submitting=True)
        return Handle(provider_job_id=name)

    def poll(self, handle: Handle) -> PollResult:
        data = self._json(self._send("GET", f"{_base()}/{handle.provider_job_id}"))
        if not data.get("done"):
            # metadata.progressPercent appears only in third-party docs (UNCONFIRMED).
            metadata = data.get("metadata")
            percent = metadata.get("progressPercent") if isinstance(metadata, dict) else None
            progress = percent / 100 if isinstance(percent, int | float) else None
            return PollResult(Phase.RUNNING, progress=progress)
        if isinstance(data.get("error"), dict):
            raise self._status_error(data["error"], http_status=None, terminal=True)
        response = data.get("response") or {}
        result = response.get("generateVideoResponse") if isinstance(response, dict) else None
        result = result if isinstance(result, dict) else {}
        for sample in result.get("generatedSamples") or []:
            uri = (sample.get("video") or {}).get("uri") if isinstance(sample, dict) else None
            if isinstance(uri, str) and uri:
                return PollResult(Phase.SUCCEEDED, result_url=uri)
        if result.get("raiMediaFilteredCount") or result.get("raiMediaFilteredReasons"):
            reasons = [str(r) for r in result.get("raiMediaFilteredReasons") or [] if r]
            said = http.said(" ".join(reasons))
            # Google bills only clips that are made (third-party copies of its pricing page).
            raise ContentPolicyError(
                f"Google's safety filters blocked this clip{said} "
                "No clip was made, so you were not charged.",
                charged_on_failure=False,
            )
        raise ProviderError(
            f"{self.label} finished without a clip and gave no reason. You were not charged.",
            charged_on_failure=False,
        )

    def fetch(self, handle: Handle, result_url: str, dest: Path) -> None:
        # The file needs the key (§2.6); download() sends it only to the uri's own origin.
        http.download(
            result_url,
            dest,
            who=self.label,
            hosts=http.MediaHosts.build(
                MEDIA_HOSTS, [settings.GEMINI_API_URL], extra_setting="GEMINI_MEDIA_HOSTS"
            ),
            headers={"x-goog-api-key": settings.GEMINI_API_KEY},
            client=self.client,
        )

    # ----------------------------------------------------------------------- building

    def _body(self, request: GenerationRequest) -> dict:
        instance: dict = {"prompt": request.prompt}
        if request.mode in ("image", "first_last"):
            instance["image"] = _inline(request.image, "image")
        if request.mode == "first_last":
            instance["lastFrame"] = _inline(request.last_frame, "last_frame")
        parameters: dict = {
            "sampleCount": 1,
            "durationSeconds": request.duration,  # an int
            "aspectRatio": request.fixed_aspect(),
            "resolution": request.resolution,
            "personGeneration": "allow_adult",
        }
        if request.negative_prompt:
            parameters["negativePrompt"] = request.negative_prompt
        body = {"instances": [instance], "parameters": parameters}
        webhook = http.webhook_url(self.name)
        if webhook and settings.GEMINI_WEBHOOK_SECRET:
            # A per-request webhook (§2.4, §2.8); user_metadata finds the job again.
            body["webhookConfig"] = {"uris": [webhook], "user_metadata": {"job": request.reference}}
        return body

    # ----------------------------------------------------------------------- transport

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": settings.GEMINI_API_KEY}

    def _error(self, response: httpx.Response) -> ProviderError:
        """An HTTP error reply, `{"error": {"code", "message", "status"}}` (§2.7)."""
        body = http.json_of(response)
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            error = {}
        delay = http.retry_after(response) or _retry_delay(error)
        return self._status_error(error, http_status=response.status_code, retry_after=delay)

    def _status_error(
        self,
        error: dict,
        *,
        http_status: int | None,
        terminal: bool = False,
        retry_after: float | None = None,
    ) -> ProviderError:
        """One translation for a google.rpc.Status, whether it came as an HTTP error or as a
        finished operation's `error` (`terminal`: the job is over, nothing to retry)."""
        status = str(error.get("status") or "")
        message = str(error.get("message") or "").strip()
        said = http.said(message)
        code = http_status or _HTTP_FOR_RPC.get(error.get("code"), 500)
        lowered = message.lower()
        if (
            "api key" in lowered
            or status in ("UNAUTHENTICATED", "PERMISSION_DENIED")
            or code
            in (
                401,
                403,
            )
        ):
            return AccountError(
                f"{self.label} refused Studio's key{said} An administrator needs to check "
                "GEMINI_API_KEY."
            )
        if code < 500 and code != 429 and any(word in lowered for word in _POLICY_WORDS):
            return ContentPolicyError(
                f"Google refused this request{said} You were not charged.",
                charged_on_failure=False,
            )
        if code == 404 or status == "NOT_FOUND":
            return NotFoundError(f"{self.label} no longer knows this job{said}")
        if code == 429 or status == "RESOURCE_EXHAUSTED":
            if terminal:
                return ProviderError(f"{self.label} ran out of capacity{said}")
            return RateLimitedError(f"{self.label} is rate limiting Studio{said}", retry_after)
        if code >= 500 or status in ("UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED"):
            if terminal:
                return ProviderError(
                    f"{self.label} failed to make this clip{said} You were not charged.",
                    charged_on_failure=False,
                )
            return TransientError(f"{self.label} had a server problem{said}")
        if code == 400 or status in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"):
            return InvalidRequestError(
                f"{self.label} rejected the request{said}", field=_field(message)
            )
        return ProviderError(f"{self.label} refused the request{said}")


# google.rpc.Code → HTTP status, for a finished operation's `error.code`.
_HTTP_FOR_RPC = {3: 400, 5: 404, 7: 403, 8: 429, 9: 400, 13: 500, 14: 503, 16: 401, 4: 504}

_FIELD_NAMES = {
    "durationSeconds": "duration",
    "aspectRatio": "aspect",
    "resolution": "resolution",
    "negativePrompt": "negative_prompt",
    "lastFrame": "last_frame",
    "image": "image",
    "prompt": "prompt",
}


def _field(message: str) -> str:
    for name, ours in _FIELD_NAMES.items():
        if name in message:
            return ours
    return ""


def _retry_delay(error: dict) -> float | None:
    """google.rpc.RetryInfo in `details`, e.g. {"retryDelay": "37s"}."""
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and "retryDelay" in detail:
            match = _RETRY_DELAY.match(str(detail["retryDelay"]))
            if match:
                return min(float(match.group(1)), http.RETRY_AFTER_CAP)
    return None


def _base() -> str:
    return settings.GEMINI_API_URL.rstrip("/")


def _inline(image: ImageInput | None, field: str) -> dict:
    if image is None:
        raise InvalidRequestError("This mode needs an image.", field=field)
    return {
        "bytesBase64Encoded": base64.b64encode(image.read()).decode("ascii"),
        "mimeType": image.content_type,
    }
