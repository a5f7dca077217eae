"""What every provider's webhook verification shares: the verified `Delivery`, the ways a
delivery is refused, and the checks of headers, timestamps and bodies.

Each provider verifies its own signatures in its package (fal/webhook.py, gemini/webhook.py);
what a verified delivery then does is the engine's (studio/webhooks.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Both providers' window (fal's guide and Standard Webhooks: 5 minutes), either direction.
WINDOW_SECONDS = 300
# Longer ids than this are not ids (and would not fit the delivery table).
MAX_ID_LENGTH = 255


@dataclass(frozen=True)
class Delivery:
    """A verified webhook, and what in it finds the job it is about."""

    provider: str
    delivery_id: str
    signature: str  # the signature that verified, spelt canonically
    payload: dict[str, Any]
    job_ids: tuple[str, ...] = ()  # provider job ids it names
    # Endings of a provider job id it names (Gemini may send an operation's id, not its name).
    job_id_endings: tuple[str, ...] = ()
    reference: str = ""  # Studio's own reference for the job, where the provider echoes it


class Refused(Exception):
    """A delivery Studio cannot trust or use. `str()` says why, for the log (never a secret);
    `status` is the HTTP answer."""

    status = 401


class Malformed(Refused):
    """Missing or garbled headers, or a body that is not a JSON object."""

    status = 400


class NotConfigured(Refused):
    """Webhooks of this provider are not switched on here."""

    status = 404


class KeysUnavailable(Refused):
    """The provider's keys could not be fetched, so nothing can be verified just now; the
    provider retries."""

    status = 503


def required(headers: Mapping[str, str], names: tuple[str, ...]) -> list[str]:
    values = []
    for name in names:
        value = (headers.get(name) or "").strip()
        if not value:
            raise Malformed(f"the {name} header is missing")
        if len(value) > MAX_ID_LENGTH and "signature" not in name.lower():
            raise Malformed(f"the {name} header is too long")
        values.append(value)
    return values


def check_timestamp(timestamp: str, now: float | None) -> None:
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Malformed("the timestamp is not unix seconds")
    skew = (time.time() if now is None else now) - int(timestamp)
    if abs(skew) > WINDOW_SECONDS:
        raise Refused(f"the timestamp is {int(skew)} s away from now (window {WINDOW_SECONDS} s)")


def json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise Malformed("the body is not JSON") from None
    if not isinstance(data, dict):
        raise Malformed("the body is not a JSON object")
    return data
