"""Verifying the Gemini API's webhooks (shared/providers.md §2.8).

Standard Webhooks: HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{body}" with the
base64 key after "whsec_" (GEMINI_WEBHOOK_SECRET), signatures "v1,<base64>" separated by
spaces. A `video.generated` event names its operation in `data.id`; a per-request webhook's
`user_metadata.job` (Studio's reference) is read too, from `data` or the top level, since
where Gemini echoes it is not documented.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

from studio.providers import http
from studio.providers.base import job_id_in
from studio.providers.gemini import config
from studio.providers.webhooks import (
    Delivery,
    NotConfigured,
    Refused,
    check_timestamp,
    json_object,
    required,
)

log = logging.getLogger(__name__)

HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def verify(headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> Delivery:
    """A Gemini delivery signed with GEMINI_WEBHOOK_SECRET (Standard Webhooks), or Refused."""
    key = _key()
    delivery_id, timestamp, signatures = required(headers, HEADERS)
    check_timestamp(timestamp, now)
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        # Bytes, not str: compare_digest refuses non-ASCII strings with a TypeError.
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return _delivery(delivery_id, expected, json_object(body))
    raise Refused("no v1 signature matches GEMINI_WEBHOOK_SECRET")


def _delivery(delivery_id: str, signature: str, payload: dict[str, Any]) -> Delivery:
    # The thin payload: {"type": "video.generated", "data": {"id": …, …}}.
    data = http.dict_of(payload.get("data"))
    for holder in (data, payload):
        reference = http.dict_of(holder.get("user_metadata")).get("job")
        if isinstance(reference, str) and job_id_in(reference) is not None:
            return Delivery("gemini", delivery_id, signature, payload, reference=reference)
    operation = data.get("id") or data.get("name") or payload.get("name")
    if not isinstance(operation, str) or not operation:
        return Delivery("gemini", delivery_id, signature, payload)
    # The operation's full name ("models/…/operations/abc") or only its id ("abc").
    return Delivery(
        "gemini",
        delivery_id,
        signature,
        payload,
        job_ids=(operation,),
        job_id_endings=(f"/operations/{operation}",),
    )


def _key() -> bytes:
    secret = config.WEBHOOK_SECRET.value
    if not secret:
        raise NotConfigured("GEMINI_WEBHOOK_SECRET is not set")
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        log.error("GEMINI_WEBHOOK_SECRET is not a whsec_ secret (base64 after the prefix)")
        raise NotConfigured("GEMINI_WEBHOOK_SECRET is unusable") from None
