"""Google's Gemini API (Veo 3.1 Lite, long-running operations; shared/providers.md §2).

Called directly over REST: google-genai ≥ 3.0 refuses video generation with an API key, and
the request shapes below are those its last 2.x release sent (§2.1, §2.4).

submit: POST {GEMINI_API_URL}/models/{model}:predictLongRunning → an operation name.
poll: GET {GEMINI_API_URL}/{name} until `done`. The video is downloaded with the API key.
No cancel is documented. With STUDIO_PUBLIC_URL and GEMINI_WEBHOOK_SECRET set, submit adds a
webhookConfig (§2.4, §2.8; webhook.py verifies the events).

Not sent, deliberately: `seed` and `generateAudio`. The SDK refuses both on the Gemini API
("only supported in … Agent Platform mode"), so there is no documented way to set a seed or
turn sound off; capabilities say so and pre-flight tells the creator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from studio.options import ClipOptions
from studio.providers import google, http
from studio.providers.base import (
    Billing,
    ContentPolicyError,
    GenerationRequest,
    Handle,
    HealthCheck,
    Phase,
    PollResult,
    ProviderError,
)
from studio.providers.gemini import config, webhook
from studio.providers.gemini.capabilities import CAPABILITIES
from studio.providers.gemini.prices import PRICES
from studio.providers.names import LABELS
from studio.providers.webhooks import Delivery

# Generated files are served by the API host itself (…/files/{id}:download?alt=media).
# Google's downloads commonly redirect to googleusercontent.com storage: UNCONFIRMED for this
# API, trusted because it is Google's (GEMINI_MEDIA_HOSTS adds more).
MEDIA_HOSTS = ("generativelanguage.googleapis.com", "*.googleusercontent.com")


class GeminiProvider(http.HttpProvider):
    name = "gemini"
    label = LABELS[name]
    poll_interval_seconds = 10.0  # the cookbook polls every 10 s; a clip takes about a minute
    capabilities = CAPABILITIES
    prices = PRICES

    def missing_setup(self) -> str:
        if not config.VEO_MODEL.value:
            return "Set GEMINI_VEO_MODEL to a Veo 3.1 Lite id the Gemini API serves."
        return "" if config.API_KEY.value else "Set GEMINI_API_KEY to use the Gemini API."

    def unavailable_reason(self) -> str:
        if not config.VEO_MODEL.value:
            return "Gemini API no longer offers Veo 3.1 Lite; use Vertex AI."
        return super().unavailable_reason()

    # ----------------------------------------------------------------------- protocol

    def model_id(self, options: ClipOptions) -> str:
        return config.VEO_MODEL.value

    def _submit(self, request: GenerationRequest) -> Handle:
        model = config.VEO_MODEL.value
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
                billing=Billing.NOT_BILLED,
            )
        raise ProviderError(
            f"{self.label} finished without a clip and gave no reason. You were not charged.",
            billing=Billing.NOT_BILLED,
        )

    def media_hosts(self) -> http.MediaHosts:
        return http.MediaHosts.build(
            MEDIA_HOSTS, [config.API_URL.value], extra=config.MEDIA_HOSTS.value
        )

    def download_headers(self) -> dict[str, str]:
        # The file needs the key (§2.6); download() sends it only to the uri's own origin.
        return {"x-goog-api-key": config.API_KEY.value}

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> Delivery:
        return webhook.verify(headers, body)

    def check(self) -> HealthCheck:
        # models.get (§1.4): a refused key answers 400 "API key not valid", an unknown or
        # retired model 404.
        response = self._send("GET", f"{_base()}/models/{config.VEO_MODEL.value}", check=False)
        error = http.dict_of(http.dict_of(http.json_of(response)).get("error"))
        message = str(error.get("message") or "")
        if response.status_code == 400 and "api key" in message.lower():
            return HealthCheck(key_ok=False, model_ok=None, message=message)
        return http.health_of(response, proves_key=True, proves_model=True)

    # ----------------------------------------------------------------------- building

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        options = request.options
        instance: dict[str, Any] = {"prompt": options.prompt}
        if options.mode in ("image", "first_last"):
            instance["image"] = google.inline(options.image, "image")
        if options.mode == "first_last":
            instance["lastFrame"] = google.inline(options.last_frame, "last_frame")
        parameters: dict[str, Any] = {
            "sampleCount": 1,
            "durationSeconds": options.duration,  # an int
            "aspectRatio": options.fixed_aspect(),
            "resolution": options.resolution,
            "personGeneration": "allow_adult",
        }
        if options.negative_prompt:
            parameters["negativePrompt"] = options.negative_prompt
        body: dict[str, Any] = {"instances": [instance], "parameters": parameters}
        if request.webhook_url and config.WEBHOOK_SECRET.value:
            # A per-request webhook (§2.4, §2.8); user_metadata finds the job again.
            body["webhookConfig"] = {
                "uris": [request.webhook_url],
                "user_metadata": {"job": request.reference},
            }
        return body

    # ----------------------------------------------------------------------- transport

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": config.API_KEY.value}

    def _error(self, response: httpx.Response) -> ProviderError:
        """An HTTP error reply, `{"error": {"code", "message", "status"}}` (§2.7)."""
        error, delay = google.error_of(response)
        return self._status_error(error, http_status=response.status_code, retry_after=delay)

    def _status_error(
        self,
        error: dict[str, Any],
        *,
        http_status: int | None,
        terminal: bool = False,
        retry_after: float | None = None,
    ) -> ProviderError:
        return google.status_error(
            error,
            who=self.label,
            credential="key",
            account="An administrator needs to check GEMINI_API_KEY.",
            http_status=http_status,
            terminal=terminal,
            retry_after=retry_after,
        )


def _base() -> str:
    return config.API_URL.value.rstrip("/")


PROVIDER = GeminiProvider
