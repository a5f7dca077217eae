"""fal.ai's queue API for Veo 3.1 Lite (shared/providers.md §1).

submit: POST {FAL_QUEUE_URL}/{endpoint} → request_id + status/response/cancel URLs, kept in
Handle.state as returned (they name only `fal-ai/veo3.1`, not the endpoint's sub-path, so
they are never rebuilt). poll: GET {status_url}?logs=1 (202 while pending, 200 when done);
the result is GET {response_url} → video.url. cancel: PUT {cancel_url}. With
STUDIO_PUBLIC_URL set, submit adds ?fal_webhook= (§1.8; webhook.py verifies them).

Stills go through fal's storage (the two-step upload of §1.9) by default; FAL_IMAGE_UPLOAD =
"data_uri" sends them inline instead, which fal documents only for "some models"
(UNCONFIRMED for Veo Lite, and the request body grows by a third of the image).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from studio.options import ClipOptions, Still
from studio.providers import http
from studio.providers.base import (
    Billing,
    CancelOutcome,
    GenerationRequest,
    Handle,
    HealthCheck,
    InvalidRequestError,
    Phase,
    PollResult,
    ProviderError,
    TransientError,
)
from studio.providers.fal import config, webhook
from studio.providers.fal.capabilities import CAPABILITIES
from studio.providers.fal.prices import PRICES
from studio.providers.names import LABELS
from studio.providers.webhooks import Delivery

ENDPOINTS = {
    "text": "fal-ai/veo3.1/lite",
    "image": "fal-ai/veo3.1/lite/image-to-video",
    "first_last": "fal-ai/veo3.1/lite/first-last-frame-to-video",
}
# fal's CDN (v3.fal.media, v3b.fal.media...). FAL_MEDIA_HOSTS (optional setting) adds more.
MEDIA_HOSTS = ("fal.media", "*.fal.media")
# Uploaded stills only need to outlive the job; fal-client's X-Fal-Object-Lifecycle header.
UPLOAD_LIFETIME_SECONDS = 24 * 60 * 60

# Our option names for fal's input fields, so a 422 names the field the creator sees.
_FIELDS = {
    "image_url": "image",
    "first_frame_url": "image",
    "last_frame_url": "last_frame",
    "aspect_ratio": "aspect",
    "generate_audio": "audio",
    "negative_prompt": "negative_prompt",
    "prompt": "prompt",
    "duration": "duration",
    "resolution": "resolution",
    "seed": "seed",
}
# fal's typed errors name a content-policy rejection by `type` (e.g. content_policy_violation,
# UNCONFIRMED for Veo Lite); endpoints not yet migrated only say so in `msg`.
_POLICY_MARKERS = ("content_policy", "policy", "safety", "nsfw", "moderation", "flagged")


class FalProvider(http.HttpProvider):
    name = "fal"
    label = LABELS[name]
    poll_interval_seconds = 5.0
    cancels_queued = True
    stops_running = True
    capabilities = CAPABILITIES
    prices = PRICES

    def missing_setup(self) -> str:
        return "" if config.KEY.value else "Set FAL_KEY to use fal.ai."

    # ----------------------------------------------------------------------- protocol

    def model_id(self, options: ClipOptions) -> str:
        return ENDPOINTS[options.mode]

    def _submit(self, request: GenerationRequest) -> Handle:
        endpoint = ENDPOINTS[request.options.mode]
        payload = self._input(request)
        url = f"{config.QUEUE_URL.value.rstrip('/')}/{endpoint}"
        extra: dict[str, Any] = {}
        if request.webhook_url:
            # §1.8: fal POSTs there when the job ends.
            extra["params"] = {"fal_webhook": request.webhook_url}
        data = self._json(
            self._send("POST", url, json=payload, submitting=True, **extra), submitting=True
        )
        try:
            state = {key: str(data[key]) for key in ("status_url", "response_url", "cancel_url")}
            request_id = str(data["request_id"])
        except (KeyError, TypeError):
            raise http.malformed_reply(self.label, submitting=True) from None
        return Handle(provider_job_id=request_id, state=state)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> Delivery:
        return webhook.verify(headers, body)

    def check(self) -> HealthCheck:
        # The Platform API's pricing needs the key ("Authentication: Required") and names
        # the endpoints: both proven in one call (research notes §4.2).
        response = self._send(
            "GET",
            f"{config.API_URL.value.rstrip('/')}/v1/models/pricing",
            params=[("endpoint_id", endpoint) for endpoint in ENDPOINTS.values()],
            check=False,
        )
        return http.health_of(response, proves_key=True, proves_model=True)

    def poll(self, handle: Handle) -> PollResult:
        status_url = handle.state["status_url"]
        data = self._json(self._send("GET", status_url, params={"logs": "1"}))
        status = data.get("status")
        if status == "IN_QUEUE":
            position = data.get("queue_position")
            return PollResult(Phase.QUEUED, queue_position=position if _is_int(position) else None)
        if status == "IN_PROGRESS":
            return PollResult(Phase.RUNNING)
        if status == "COMPLETED":
            if data.get("error") or data.get("error_type"):
                raise self._run_failure(handle, data)
            return PollResult(Phase.SUCCEEDED, result_url=self._video_url(handle))
        # FAILED / CANCELED appear only in a third-party schema (UNCONFIRMED); honour them.
        if status in ("CANCELED", "CANCELLED"):
            return PollResult(Phase.CANCELLED)
        if status == "FAILED":
            raise self._run_failure(handle, data)
        raise TransientError(f"{self.label} reported a status Studio does not know ({status!r}).")

    def cancel(self, handle: Handle) -> CancelOutcome:
        # §4.3 of the research notes: a queued request is removed ("OK") and never billed
        # ("never charged for time spent waiting in the queue"); a running one is sent a
        # cancellation signal ("CANCELLATION_REQUESTED"), which fal may still bill.
        response = self._send("PUT", handle.state["cancel_url"], check=False)
        status = http.dict_of(http.json_of(response)).get("status")
        if status == "OK" and response.status_code < 300:
            return CancelOutcome.STOPPED
        if status == "CANCELLATION_REQUESTED" or (response.status_code < 300 and not status):
            return CancelOutcome.STOP_REQUESTED
        if status in ("ALREADY_COMPLETED", "NOT_FOUND"):
            return CancelOutcome.CANNOT_STOP  # nothing left to stop: it ends as it ends
        raise self._error(response)

    # ----------------------------------------------------------------------- building

    def _input(self, request: GenerationRequest) -> dict[str, Any]:
        options = request.options
        aspect = options.aspect
        if options.mode == "text" and aspect == "auto":
            aspect = "16:9"  # T2V has no "auto"; without an image, auto means landscape
        payload: dict[str, Any] = {
            "prompt": options.prompt,
            "duration": f"{options.duration}s",  # a string enum, "4s" / "6s" / "8s"
            "resolution": options.resolution,
            "aspect_ratio": aspect,
            "generate_audio": options.audio,
        }
        if options.negative_prompt:
            payload["negative_prompt"] = options.negative_prompt
        if options.seed is not None:
            payload["seed"] = options.seed
        if options.mode == "image":
            payload["image_url"] = self._image_url(options.image)
        elif options.mode == "first_last":
            payload["first_frame_url"] = self._image_url(options.image)
            payload["last_frame_url"] = self._image_url(options.last_frame)
        return payload

    def _image_url(self, image: Still | None) -> str:
        if image is None:
            raise InvalidRequestError("This mode needs an image.", field="image")
        if config.IMAGE_UPLOAD.value == "data_uri":
            return http.data_uri(image)
        rest = config.REST_URL.value.rstrip("/")
        token = self._json(
            self._send(
                "POST", f"{rest}/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={}
            )
        )
        try:
            upload_to = httpx.URL(str(token["base_url"]).rstrip("/") + "/files/upload")
            authorization = f"{token['token_type']} {token['token']}"
        except (KeyError, TypeError):
            raise http.malformed_reply(self.label) from None
        # The upload host comes from fal's reply; the creator's still goes only to fal's own.
        try:
            http.check_url(upload_to, self.media_hosts(), self.label)
        except http.UntrustedURL:
            raise ProviderError(
                f"{self.label} offered an upload address Studio does not trust."
            ) from None
        reply = self._json(
            self._send(
                "POST",
                str(upload_to),
                content=image.read(),
                headers={
                    "Authorization": authorization,
                    "Content-Type": image.content_type,
                    "X-Fal-File-Name": Path(image.name).name,
                    "X-Fal-Object-Lifecycle": json.dumps(
                        {"expiration_duration_seconds": UPLOAD_LIFETIME_SECONDS}
                    ),
                },
            )
        )
        access_url = reply.get("access_url")
        if not isinstance(access_url, str) or not access_url:
            raise http.malformed_reply(self.label)
        return access_url

    def _video_url(self, handle: Handle) -> str:
        response = self._result(handle)
        if response.status_code >= 400:
            raise self._result_error(response)
        data = self._json(response)
        video = data.get("video")
        url = video.get("url") if isinstance(video, dict) else None
        if not isinstance(url, str) or not url:
            raise ProviderError(f"{self.label} finished the job but returned no video.")
        return url

    def _run_failure(self, handle: Handle, status: dict[str, Any]) -> ProviderError:
        """The terminal error of a run that COMPLETED with `error`: its body is at
        response_url, with the failure's own status code (§1.4). The run is over, so the
        answer is final however transient its status reads: asking again changes nothing
        (shared/facts.md), and fal bills no server error."""
        response = self._result(handle)
        if response.status_code >= 400:
            error = self._error(response)
            if error.retryable:
                return ProviderError(f"{error} You were not charged.", billing=error.billing)
            return error
        reason = str(status.get("error") or status.get("error_type") or "")
        return ProviderError(f"{self.label} could not make this clip{http.said(reason)}")

    def _result(self, handle: Handle) -> httpx.Response:
        return self._send("GET", handle.state["response_url"], check=False)

    def _result_error(self, response: httpx.Response) -> ProviderError:
        """An error reply from response_url. With x-fal-request-id it is the run's own
        outcome, final however transient its cause (fal does not bill 5xx); without it, it
        came from fal's ingress (fal-client's rule) and asking again later is right."""
        error = self._error(response)
        if error.retryable and "x-fal-request-id" in response.headers:
            return ProviderError(f"{error} You were not charged.", billing=error.billing)
        return error

    def media_hosts(self) -> http.MediaHosts:
        # fal-client downloads without credentials: the key never goes to a CDN.
        return http.MediaHosts.build(
            MEDIA_HOSTS,
            [config.QUEUE_URL.value, config.REST_URL.value],
            extra=config.MEDIA_HOSTS.value,
        )

    # ----------------------------------------------------------------------- transport

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {config.KEY.value}"}

    def _error(self, response: httpx.Response) -> ProviderError:
        """Every fal error reply, translated (§1.7): typed `detail` lists, plain-string
        details, and request errors with `error_type`."""
        status = response.status_code
        body = http.json_of(response)
        body = body if isinstance(body, dict) else {}
        message, field, kind = _describe(body.get("detail"))
        error_type = str(body.get("error_type") or response.headers.get("x-fal-error-type") or "")
        kind = kind or error_type
        retryable = _header_bool(response, "x-fal-retryable", "x-fal-needs-retry")
        what = f" ({kind})" if kind else ""
        if (status >= 500 or status in (408, 409)) and retryable is False:
            # X-Fal-Retryable: false means the same request will fail again; server errors
            # are never charged (fal FAQ).
            return ProviderError(
                f"{self.label} could not run this job{what}{http.said(message)}",
                billing=Billing.NOT_BILLED,
            )
        server = status >= 500 or status in (408, 409)
        return http.status_error(
            status,
            who=self.label,
            words=message,
            account=f"{self.label} refused Studio's key or the account cannot pay"
            f"{http.said(message)} An administrator needs to check FAL_KEY and the fal.ai "
            "balance.",
            detail=what if server else (f" ({field})" if field else ""),
            field=field,
            policy=_is_policy(kind, message),
            retry_after=http.retry_after(response),
            server_billing=Billing.NOT_BILLED,
            # A 422 "may still be charged" (fal FAQ).
            request_billing=Billing.MAY_BE_BILLED,
        )


def _describe(detail: Any) -> tuple[str, str, str]:
    """(message, our field name, error type) from fal's `detail` in any of its shapes."""
    if isinstance(detail, str):
        return detail, "", ""
    if isinstance(detail, dict):  # some endpoints: {"error": "...", "message": "..."}
        return (
            str(detail.get("msg") or detail.get("message") or detail.get("error") or ""),
            "",
            str(detail.get("type") or detail.get("error") or ""),
        )
    if isinstance(detail, list) and detail:
        messages, field, kind = [], "", ""
        for item in detail:
            if not isinstance(item, dict):
                continue
            messages.append(str(item.get("msg", "")).strip())
            loc = [part for part in item.get("loc") or [] if part != "body"]
            if not field and loc:
                field = _FIELDS.get(str(loc[0]), str(loc[0]))
            kind = kind or str(item.get("type") or "")
        return "; ".join(m for m in messages if m), field, kind
    return "", "", ""


def _is_policy(kind: str, message: str) -> bool:
    kind = kind.lower()
    if any(marker in kind for marker in _POLICY_MARKERS):
        return True
    text = message.lower()
    return any(word in text for word in ("content policy", "content checker", "safety", "nsfw"))


def _header_bool(response: httpx.Response, *names: str) -> bool | None:
    for name in names:
        value: str | None = response.headers.get(name)
        if value is not None:
            return value.strip().lower() == "true"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


PROVIDER = FalProvider
