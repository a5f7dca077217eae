"""Oxen.ai's async inference queue for Veo 3.1 Lite (shared/providers.md §4).

submit: POST {OXEN_API_URL}/api/ai/queue (Bearer) → {"generations": [{generation_id, status}]}.
poll: GET {OXEN_API_URL}/api/ai/queue/{id}: queued, processing, succeeded (result_url),
failed (error_message), cancelled. cancel: DELETE the same URL.

Oxen checks only the model, num_generations and credits when a job is queued; every other
parameter is validated when the job runs, so a bad option arrives as `failed` with Oxen's
own error_message, which is shown verbatim.

The still is sent as a data URI in `input_image`. Oxen documents that data URIs "work as an
alternative but aren't recommended for production" (image-editing page; UNCONFIRMED for
Veo Lite) because it expects a public URL; Studio has none to give without publishing the
creator's image, so the data URI is the deliberate choice.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx

from studio.options import ClipOptions
from studio.providers import http
from studio.providers.base import (
    AccountError,
    CancelOutcome,
    ContentPolicyError,
    GenerationRequest,
    Handle,
    HealthCheck,
    InvalidRequestError,
    NotFoundError,
    Phase,
    PollResult,
    ProviderError,
    TransientError,
)
from studio.providers.names import LABELS
from studio.providers.oxen import config
from studio.providers.oxen.capabilities import CAPABILITIES
from studio.providers.oxen.prices import PRICES

# Results are presigned links that expire; their storage host is UNCONFIRMED, so only Oxen's
# own hosts are trusted by default. Add the real one with OXEN_MEDIA_HOSTS after a live check.
MEDIA_HOSTS = ("hub.oxen.ai", "*.oxen.ai")

_POLICY_WORDS = ("policy", "safety", "moderation", "nsfw", "flagged", "prohibited", "blocked")
_ACCOUNT_WORDS = ("insufficient credits", "credit", "balance", "payment", "unauthori")
_INVALID_WORDS = ("invalid", "must be", "should be", "422", "unsupported", "not supported")


class OxenProvider(http.HttpProvider):
    name = "oxen"
    label = LABELS[name]
    poll_interval_seconds = 10.0  # Oxen suggests polling video every 10 to 30 s
    cancels_queued = True
    stops_running = True
    capabilities = CAPABILITIES
    prices = PRICES

    def missing_setup(self) -> str:
        return "" if config.API_KEY.value else "Set OXEN_API_KEY to use Oxen.ai."

    # ----------------------------------------------------------------------- protocol

    def model_id(self, options: ClipOptions) -> str:
        return config.MODEL.value or config.MODEL.default

    def _submit(self, request: GenerationRequest) -> Handle:
        data = self._json(
            self._send("POST", _queue(), json=self._body(request), submitting=True),
            submitting=True,
        )
        try:
            generation_id = str(data["generations"][0]["generation_id"])
        except (KeyError, IndexError, TypeError):
            raise http.malformed_reply(self.label, submitting=True) from None
        return Handle(provider_job_id=generation_id)

    def poll(self, handle: Handle) -> PollResult:
        data = self._json(self._send("GET", f"{_queue()}/{handle.provider_job_id}"))
        status = data.get("status")
        if status == "queued":
            return PollResult(Phase.QUEUED)  # Oxen reports no queue position
        if status == "processing":
            return PollResult(Phase.RUNNING)
        if status == "succeeded":
            url = data.get("result_url")
            if not isinstance(url, str) or not url:
                raise ProviderError(f"{self.label} finished the job but returned no video.")
            return PollResult(Phase.SUCCEEDED, result_url=url)
        if status == "cancelled":
            return PollResult(Phase.CANCELLED)
        if status == "failed":
            raise self._failure(str(data.get("error_message") or "").strip())
        raise TransientError(f"{self.label} reported a status Studio does not know ({status!r}).")

    def check(self) -> HealthCheck:
        # The model's page (models overview): whether it needs the key is not documented, so
        # only a refusal proves anything about it.
        model = config.MODEL.value or config.MODEL.default
        response = self._send(
            "GET", f"{config.API_URL.value.rstrip('/')}/api/ai/models/{model}", check=False
        )
        return http.health_of(response, proves_key=False, proves_model=True)

    def media_hosts(self) -> http.MediaHosts:
        # Presigned links carry their own authorisation, so the key is not sent.
        return http.MediaHosts.build(
            MEDIA_HOSTS, [config.API_URL.value], extra=config.MEDIA_HOSTS.value
        )

    def cancel(self, handle: Handle) -> CancelOutcome:
        # DELETE cancels a queued or in-progress generation; a queued one cost nothing yet,
        # whether one already processing is billed is not documented (research §5). Its
        # phase is read first, so the refund follows what Oxen had done with it.
        try:
            phase = self.poll(handle).phase
        except ProviderError:
            phase = None
        if phase in (Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED):
            return CancelOutcome.CANNOT_STOP  # over already
        with contextlib.suppress(NotFoundError):  # nothing left to stop
            self._send("DELETE", f"{_queue()}/{handle.provider_job_id}")
        return CancelOutcome.STOPPED if phase == Phase.QUEUED else CancelOutcome.STOP_REQUESTED

    # ----------------------------------------------------------------------- building

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        options = request.options
        if options.mode == "first_last":
            raise InvalidRequestError(
                f"{self.label} cannot make first-and-last-frame clips.", field="mode"
            )
        payload: dict[str, Any] = {
            "model": config.MODEL.value or config.MODEL.default,
            "prompt": options.prompt,
            "duration": options.duration,  # an integer: 4, 6 or 8
            "resolution": options.resolution,
            "aspect_ratio": options.fixed_aspect(),
            "num_generations": 1,
        }
        if options.seed is not None:
            payload["seed"] = options.seed
        if options.mode == "image":
            if options.image is None:
                raise InvalidRequestError("This mode needs an image.", field="image")
            payload["input_image"] = http.data_uri(options.image)
        return payload

    def _failure(self, error_message: str) -> ProviderError:
        """A job that ended `failed`: Oxen's words verbatim, classified where they are clear."""
        said = http.said(error_message) if error_message else " and gave no reason."
        text = error_message.lower()
        if any(word in text for word in _ACCOUNT_WORDS):
            return AccountError(f"{self.label} would not run the job{said}")
        if any(word in text for word in _POLICY_WORDS):
            return ContentPolicyError(f"{self.label} refused this request{said}")
        if any(word in text for word in _INVALID_WORDS):
            return InvalidRequestError(f"{self.label} rejected the request{said}")
        return ProviderError(f"{self.label} could not make this clip{said}")

    # ----------------------------------------------------------------------- transport

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {config.API_KEY.value}"}

    def _error(self, response: httpx.Response) -> ProviderError:
        """Oxen's two error shapes (§4): {"error": {type, title, detail}, "status": "error",
        "status_message"} and {"error": {"message"}}."""
        status = response.status_code
        body = http.json_of(response)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            parts = [error.get("title"), error.get("detail"), error.get("message")]
            message = " ".join(str(p).strip() for p in parts if p)
            kind = str(error.get("type") or body.get("status_message") or "")
        else:
            message, kind = str(error or "").strip(), ""
        return http.status_error(
            status,
            who=self.label,
            words=message,
            account=f"{self.label} refused Studio's key or the account cannot pay"
            f"{http.said(message)} An administrator needs to check OXEN_API_KEY and the "
            "Oxen.ai credits.",
            invalid=kind == "invalid_params",
            retry_after=http.retry_after(response),
        )


def _queue() -> str:
    return f"{config.API_URL.value.rstrip('/')}/api/ai/queue"


PROVIDER = OxenProvider
