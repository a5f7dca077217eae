"""Verifying fal.ai's webhooks (shared/providers.md §1.8).

fal signs "{request id}\n{user id}\n{timestamp}\n{sha256 hex of the body}" with Ed25519; the
hex signature is checked against every key of fal's JWKS (FAL_JWKS_URL), fetched with httpx
and cached. A verified delivery names the job by fal's request id (and gateway_request_id,
which differs only when fal retried the request, §1.3).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from studio.providers import http
from studio.providers.fal import config
from studio.providers.webhooks import (
    Delivery,
    KeysUnavailable,
    Malformed,
    Refused,
    check_timestamp,
    json_object,
    required,
)

log = logging.getLogger(__name__)

HEADERS = (
    "X-Fal-Webhook-Request-Id",
    "X-Fal-Webhook-User-Id",
    "X-Fal-Webhook-Timestamp",
    "X-Fal-Webhook-Signature",
)
# fal's keys are cached for at most a day (§1.8) ...
JWKS_MAX_AGE_SECONDS = 24 * 60 * 60
# ... and fetched again early only when a signature matches none of them, at most this
# often, so forged deliveries cannot make Studio hammer fal's JWKS URL.
JWKS_MIN_REFETCH_SECONDS = 60
JWKS_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def verify(headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> Delivery:
    """A fal delivery whose Ed25519 signature verifies against fal's JWKS, or Refused."""
    request_id, user_id, timestamp, signature_hex = required(headers, HEADERS)
    check_timestamp(timestamp, now)
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise Malformed("the signature is not hex") from None
    if len(signature) != 64:
        raise Malformed(f"the signature is {len(signature)} bytes, not 64")
    # The message is built from the headers exactly as sent and the raw body's digest.
    message = "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()
    keys = KEYS.current()
    if not _any_verifies(keys, signature, message):
        # fal may have rotated its keys since we fetched them.
        fresher = KEYS.current(after_failure=True)
        if fresher is keys or not _any_verifies(fresher, signature, message):
            raise Refused("the signature matches none of fal's keys")
    payload = json_object(body)
    named = [payload.get("request_id"), payload.get("gateway_request_id"), request_id]
    return Delivery(
        "fal",
        request_id,
        signature.hex(),
        payload,
        job_ids=tuple(dict.fromkeys(i for i in named if isinstance(i, str))),
    )


def _any_verifies(keys: tuple[Ed25519PublicKey, ...], signature: bytes, message: bytes) -> bool:
    for key in keys:
        try:
            key.verify(signature, message)
            return True
        except InvalidSignature:
            continue
    return False


@dataclass(frozen=True)
class _KeySet:
    url: str
    keys: tuple[Ed25519PublicKey, ...]
    fetched_at: float  # time.monotonic()


class KeyCache:
    """fal's public keys: cached for up to JWKS_MAX_AGE_SECONDS, fetched again sooner only
    after a signature failed against them, and never more than once per
    JWKS_MIN_REFETCH_SECONDS (failed fetches included)."""

    def __init__(self) -> None:
        self._keys: _KeySet | None = None
        self._last_fetch: tuple[str, float] | None = None  # (url, monotonic) of the last try
        self._lock = threading.Lock()

    def current(self, *, after_failure: bool = False) -> tuple[Ed25519PublicKey, ...]:
        """The keys for FAL_JWKS_URL as it is now; raises KeysUnavailable."""
        url = config.JWKS_URL.value
        with self._lock:
            now = time.monotonic()
            cached = self._keys if self._keys is not None and self._keys.url == url else None
            if cached is not None and now - cached.fetched_at > JWKS_MAX_AGE_SECONDS:
                cached = None
            if cached is not None and not after_failure:
                return cached.keys
            recently = (
                self._last_fetch is not None
                and self._last_fetch[0] == url
                and now - self._last_fetch[1] < JWKS_MIN_REFETCH_SECONDS
            )
            if recently:
                if cached is not None:
                    return cached.keys
                raise KeysUnavailable(
                    "fal's keys could not be fetched a moment ago; not retried yet"
                )
            self._last_fetch = (url, now)
            try:
                keys = _fetch(url)
            except KeysUnavailable:
                if cached is not None:
                    return cached.keys
                raise
            self._keys = _KeySet(url, keys, now)
            return keys


# One cache per process (tests give each test a fresh one).
KEYS = KeyCache()


def _fetch(url: str) -> tuple[Ed25519PublicKey, ...]:
    try:
        # The URL is the operator's, not the sender's, so its redirects are followed.
        response = http.shared_client().get(url, timeout=JWKS_TIMEOUT, follow_redirects=True)
    except http.TRANSPORT_ERRORS as exc:
        log.warning("fetching fal's webhook keys failed: %s", type(exc).__name__)
        raise KeysUnavailable("fal's keys could not be fetched") from None
    data = http.json_of(response) if response.status_code == 200 else None
    entries = data.get("keys") if isinstance(data, dict) else None
    keys = tuple(key for key in map(_ed25519_key, entries or []) if key is not None)
    if not keys:
        log.warning("fal's JWKS (HTTP %s) holds no Ed25519 key", response.status_code)
        raise KeysUnavailable("fal's JWKS holds no usable key")
    return keys


def _ed25519_key(entry: Any) -> Ed25519PublicKey | None:
    """One JWK {"kty": "OKP", "crv": "Ed25519", "x": <base64url of 32 bytes>}, or None."""
    if not isinstance(entry, dict) or (entry.get("kty"), entry.get("crv")) != ("OKP", "Ed25519"):
        return None
    x = entry.get("x")
    if not isinstance(x, str):
        return None
    try:
        raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    except (binascii.Error, ValueError):
        return None
    return Ed25519PublicKey.from_public_bytes(raw) if len(raw) == 32 else None
