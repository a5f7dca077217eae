"""What Google's two APIs for Veo share: the Gemini API (gemini/) and Vertex AI (vertex/).

Both answer errors as a google.rpc.Status, `{"error": {"code", "message", "status",
"details"}}`, over HTTP, and a finished long-running operation that failed carries the same
Status in its `error` with a gRPC code instead of an HTTP one (shared/providers.md §2.7;
issue 12 research §2.2, §2.3). Both take stills inline as `{bytesBase64Encoded, mimeType}`.
This module reads those shapes once and hands what they say to `http.status_error`.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx

from studio.options import Still
from studio.providers import http
from studio.providers.base import (
    AccountError,
    Billing,
    ContentPolicyError,
    InvalidRequestError,
    ProviderError,
)

_POLICY_WORDS = ("safety", "responsible ai", "prohibited", "violat", "blocked", "sensitive")
_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")

# google.rpc.Code → HTTP status, for a finished operation's `error.code`.
HTTP_FOR_RPC = {3: 400, 5: 404, 7: 403, 8: 429, 9: 400, 13: 500, 14: 503, 16: 401, 4: 504}

# The request fields Google's messages name, as the option a creator sees.
_FIELD_NAMES = {
    "durationSeconds": "duration",
    "aspectRatio": "aspect",
    "resolution": "resolution",
    "negativePrompt": "negative_prompt",
    "lastFrame": "last_frame",
    "image": "image",
    "prompt": "prompt",
}


def error_of(response: httpx.Response) -> tuple[dict[str, Any], float | None]:
    """The Status in an HTTP error reply (empty when the body is not Google's), and how long
    it asks us to wait: Retry-After, or a google.rpc.RetryInfo in its details."""
    body = http.json_of(response)
    error = http.dict_of(body.get("error") if isinstance(body, dict) else None)
    return error, http.retry_after(response) or _retry_delay(error)


def status_error(
    error: dict[str, Any],
    *,
    who: str,
    credential: str,
    account: str,
    http_status: int | None,
    terminal: bool = False,
    retry_after: float | None = None,
) -> ProviderError:
    """One translation for a google.rpc.Status, whether it came as an HTTP error or as a
    finished operation's `error` (`terminal`: the job is over, nothing to retry).

    A refused `credential` ("key", "credentials") is said in Google's own words, then
    `account`, which says what to check ("An administrator needs to check GEMINI_API_KEY.").
    """
    status = str(error.get("status") or "")
    message = str(error.get("message") or "").strip()
    said = http.said(message)
    rpc_code = error.get("code")
    code = http_status or HTTP_FOR_RPC.get(rpc_code if isinstance(rpc_code, int) else -1, 500)
    lowered = message.lower()
    refused = f"{who} refused Studio's {credential}{said} {account}"
    if "api key" in lowered or status in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return AccountError(refused)
    if code < 500 and code not in (401, 402, 403, 429) and _is_policy(lowered):
        return ContentPolicyError(
            f"Google refused this request{said} You were not charged.",
            billing=Billing.NOT_BILLED,
        )
    # The status name says more than a generic code: read it as the code it stands for.
    if code == 404 or status == "NOT_FOUND":
        code = 404
    elif code == 429 or status == "RESOURCE_EXHAUSTED":
        code = 429
    elif code >= 500 or status in ("UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED"):
        code = max(code, 500)
    elif status in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"):
        code = 400
    if terminal and code == 429:
        return ProviderError(f"{who} ran out of capacity{said}")
    if terminal and code >= 500:
        return ProviderError(
            f"{who} failed to make this clip{said} You were not charged.",
            billing=Billing.NOT_BILLED,
        )
    return http.status_error(
        code,
        who=who,
        words=message,
        account=refused,
        field=_field(message),
        retry_after=retry_after,
    )


def inline(image: Still | None, field: str) -> dict[str, str]:
    """A still as Google's APIs take it inline."""
    if image is None:
        raise InvalidRequestError("This mode needs an image.", field=field)
    return {
        "bytesBase64Encoded": base64.b64encode(image.read()).decode("ascii"),
        "mimeType": image.content_type,
    }


def _is_policy(lowered: str) -> bool:
    return any(word in lowered for word in _POLICY_WORDS)


def _field(message: str) -> str:
    for name, ours in _FIELD_NAMES.items():
        if name in message:
            return ours
    return ""


def _retry_delay(error: dict[str, Any]) -> float | None:
    """google.rpc.RetryInfo in `details`, e.g. {"retryDelay": "37s"}."""
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and "retryDelay" in detail:
            match = _RETRY_DELAY.match(str(detail["retryDelay"]))
            if match:
                return min(float(match.group(1)), http.RETRY_AFTER_CAP)
    return None
