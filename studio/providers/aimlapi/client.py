"""AI/ML API's video generations for Veo 3.1 Lite (shared/providers.md §3).

submit: POST {AIMLAPI_URL}/v2/video/generations (Bearer) → {id, status}.
poll: GET {AIMLAPI_URL}/v2/video/generations?generation_id=<id>; statuses queued,
generating, completed (video.url), error (error.{name, message}). No cancel is documented.

AI/ML's docs disagree with themselves about Lite (§3), so the spelling is a "dialect" read
from its settings (config.py) at call time. Defaults follow the OpenAPI file of the model its
Veo 3.1 Lite page documents (aimlapi/api-docs, 2026-08-21):
  AIMLAPI_MODEL              "google/veo-3.1-lite-generate-001" (alias "veo-3.1-lite-generate-001")
  AIMLAPI_RESOLUTION_CASE    "upper" ("720P") for the -001 model, "lower" ("720p") for others
  AIMLAPI_DURATION_TYPE      "int" (8) or "str" ("8", the -001 markdown samples)
  AIMLAPI_LAST_FRAME_FIELD   "last_image_url" (or "tail_image_url", the -001 markdown)
  AIMLAPI_IMAGE_FORMAT       "data_uri" or "base64"
Stills go inline: `image_url` is "a direct link … or a Base64-encoded local image" typed as a
URI, and a data URI is both, so it is the default; "base64" sends the bare string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from studio.options import ClipOptions, Still
from studio.providers import http
from studio.providers.aimlapi import config
from studio.providers.aimlapi.capabilities import CAPABILITIES
from studio.providers.aimlapi.prices import PRICES
from studio.providers.base import (
    AccountError,
    Billing,
    ContentPolicyError,
    GenerationRequest,
    Handle,
    HealthCheck,
    InvalidRequestError,
    Phase,
    PollResult,
    ProviderError,
    TransientError,
)
from studio.providers.names import LABELS

# The docs' example result is on cdn.aimlapi.com. The preview model may fall back to fal.ai
# ("provider": auto), whose results live on fal's CDN: UNCONFIRMED whether AI/ML re-hosts
# them. AIMLAPI_MEDIA_HOSTS (optional setting) adds more.
MEDIA_HOSTS = ("cdn.aimlapi.com", "*.aimlapi.com", "fal.media", "*.fal.media")

_POLICY_WORDS = ("policy", "safety", "moderation", "nsfw", "flagged", "prohibited", "blocked")
_FIELDS = {
    "image_url": "image",
    "last_image_url": "last_frame",
    "tail_image_url": "last_frame",
    "aspect_ratio": "aspect",
    "generate_audio": "audio",
    "duration": "duration",
    "resolution": "resolution",
    "prompt": "prompt",
    "model": "model",
}


@dataclass(frozen=True)
class Dialect:
    model: str
    upper_resolution: bool
    duration_as_string: bool
    last_frame_field: str
    bare_base64: bool

    @classmethod
    def from_settings(cls) -> Dialect:
        model = config.MODEL.value or config.MODEL.default
        case = config.RESOLUTION_CASE.value or ("upper" if model.endswith("-001") else "lower")
        return cls(
            model=model,
            upper_resolution=case == "upper",
            duration_as_string=config.DURATION_TYPE.value == "str",
            last_frame_field=config.LAST_FRAME_FIELD.value or "last_image_url",
            bare_base64=config.IMAGE_FORMAT.value == "base64",
        )


class AimlapiProvider(http.HttpProvider):
    name = "aimlapi"
    label = LABELS[name]
    poll_interval_seconds = 10.0  # the docs' example polls every 15 s; a clip takes ~1 min
    capabilities = CAPABILITIES
    prices = PRICES

    def missing_setup(self) -> str:
        return "" if config.KEY.value else "Set AIMLAPI_KEY to use AI/ML API."

    # ----------------------------------------------------------------------- protocol

    def model_id(self, options: ClipOptions) -> str:
        return config.MODEL.value or config.MODEL.default

    def _submit(self, request: GenerationRequest) -> Handle:
        payload = self._body(request, Dialect.from_settings())
        data = self._json(
            self._send("POST", _endpoint(), json=payload, submitting=True), submitting=True
        )
        generation_id = data.get("id")
        if not isinstance(generation_id, str) or not generation_id:
            raise http.malformed_reply(self.label, submitting=True)
        if data.get("status") == "error":
            raise self._failure(data)
        return Handle(provider_job_id=generation_id)

    def poll(self, handle: Handle) -> PollResult:
        response = self._send("GET", _endpoint(), params={"generation_id": handle.provider_job_id})
        data = self._json(response)
        status = data.get("status")
        if status == "queued":
            return PollResult(Phase.QUEUED)
        if status == "generating":
            return PollResult(Phase.RUNNING)
        if status == "completed":
            video_info = data.get("video")
            url = video_info.get("url") if isinstance(video_info, dict) else None
            if not isinstance(url, str) or not url:
                raise ProviderError(f"{self.label} finished the job but returned no video.")
            return PollResult(Phase.SUCCEEDED, result_url=url)
        if status == "error":
            raise self._failure(data)
        raise TransientError(f"{self.label} reported a status Studio does not know ({status!r}).")

    def check(self) -> HealthCheck:
        # Two cheap documented calls (§3.5): the balance proves the key; the model catalogue
        # (no key needed) proves the id, its alias included.
        base = config.URL.value.rstrip("/")
        key = http.health_of(
            self._send("GET", f"{base}/v2/billing", check=False),
            proves_key=True,
            proves_model=False,
        )
        if key.key_ok is False:
            return key
        model = http.health_of(
            self._send("GET", f"{base}/model/{Dialect.from_settings().model}", check=False),
            proves_key=False,
            proves_model=True,
        )
        return HealthCheck(key_ok=key.key_ok, model_ok=model.model_ok, message=model.message)

    def media_hosts(self) -> http.MediaHosts:
        # CDN links: the API key is not sent with them.
        return http.MediaHosts.build(
            MEDIA_HOSTS, [config.URL.value], extra=config.MEDIA_HOSTS.value
        )

    # ----------------------------------------------------------------------- building

    def _body(self, request: GenerationRequest, dialect: Dialect) -> dict[str, Any]:
        options = request.options
        resolution = options.resolution.upper() if dialect.upper_resolution else options.resolution
        payload: dict[str, Any] = {
            "model": dialect.model,
            "prompt": options.prompt,
            "aspect_ratio": options.fixed_aspect(),
            "resolution": resolution,
            "duration": str(options.duration) if dialect.duration_as_string else options.duration,
            "generate_audio": options.audio,
        }
        if options.mode in ("image", "first_last"):
            payload["image_url"] = _image(options.image, dialect, "image")
        if options.mode == "first_last":
            payload[dialect.last_frame_field] = _image(options.last_frame, dialect, "last_frame")
        return payload

    def _failure(self, data: dict[str, Any]) -> ProviderError:
        """A generation that ended in status "error" (shape UNCONFIRMED beyond name/message)."""
        error = http.dict_of(data.get("error"))
        name = str(error.get("name") or "")
        message = str(error.get("message") or "").strip()
        said = http.said(message)
        billing = _billing(http.dict_of(http.dict_of(data.get("meta")).get("usage")))
        text = f"{name} {message}".lower()
        if any(word in text for word in _POLICY_WORDS):
            return ContentPolicyError(
                f"{self.label} refused this request under its content policy{said}",
                billing=billing,
            )
        if "validation" in text:
            return InvalidRequestError(f"{self.label} rejected the request{said}", billing=billing)
        return ProviderError(f"{self.label} could not make this clip{said}", billing=billing)

    # ----------------------------------------------------------------------- transport

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {config.KEY.value}"}

    def _error(self, response: httpx.Response) -> ProviderError:
        """`{message, path, requestId, statusCode, timestamp}` error replies (§3)."""
        status = response.status_code
        body = http.json_of(response)
        body = body if isinstance(body, dict) else {}
        message = str(body.get("message") or "").strip()
        hint, field = _validation_detail(body)
        words = f"{message} ({hint})" if hint else message
        if status == 403:  # "You've run out of credits…"
            return AccountError(f"{self.label} would not run the job{http.said(words)}")
        return http.status_error(
            status,
            who=self.label,
            words=words,
            account=f"{self.label} refused Studio's key{http.said(words)} An administrator "
            "needs to check AIMLAPI_KEY.",
            field=field,
            policy=any(word in message.lower() for word in _POLICY_WORDS),
            retry_after=http.retry_after(response),
        )


def _billing(usage: dict[str, Any]) -> Billing:
    """What a failed generation cost, from `meta.usage`: the fetch schema documents only
    `credits_used` (§3.3); `usd_spent`, in the submit schema, is read where it appears."""
    for name in ("usd_spent", "credits_used"):
        spent = usage.get(name)
        if isinstance(spent, int | float) and not isinstance(spent, bool):
            return Billing.BILLED if spent > 0 else Billing.NOT_BILLED
    return Billing.MAY_BE_BILLED


def _validation_detail(body: dict[str, Any]) -> tuple[str, str]:
    """The first "Expected … received …" hint and its field, wherever the reply puts it
    (the docs only say the details follow the message: UNCONFIRMED key names)."""
    for key in ("meta", "details", "errors", "issues"):
        items = body.get(key)
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, dict):
                continue
            path = item.get("path") or item.get("field") or []
            path = [path] if isinstance(path, str) else path
            name = str(path[-1]) if path else ""
            text = str(item.get("message") or "").strip()
            if text:
                return (f"{name}: {text}" if name else text), _FIELDS.get(name, name)
    return "", ""


def _endpoint() -> str:
    return f"{config.URL.value.rstrip('/')}/v2/video/generations"


def _image(image: Still | None, dialect: Dialect, field: str) -> str:
    if image is None:
        raise InvalidRequestError("This mode needs an image.", field=field)
    uri = http.data_uri(image)
    return uri.split(",", 1)[1] if dialect.bare_base64 else uri


PROVIDER = AimlapiProvider
