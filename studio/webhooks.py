"""Webhooks: a provider tells Studio a job is done, so it finishes at once instead of at the
next poll.

Asked for only where a provider offers them and STUDIO_PUBLIC_URL is set (the providers add
the callback URL to their submit). A delivery is trusted only when its signature verifies
over the raw body and its timestamp is within WINDOW_SECONDS of our clock; the same delivery
twice (a replay) has no second effect. A verified delivery is never trusted for the result
itself: the job is polled once (`jobs.check`), which records what the provider says and
queues the finishing step. Polling stays as the backstop for lost or refused webhooks.

fal (shared/providers.md §1.8): Ed25519 over
  "{request id}\\n{user id}\\n{timestamp}\\n{sha256 hex of the body}"
with the hex signature checked against every key of fal's JWKS (fetched, cached).
Gemini (§2.8): Standard Webhooks, HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{body}"
with the base64 key after "whsec_", signatures "v1,<base64>" separated by spaces.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from studio import jobs
from studio.models import Job, WebhookDelivery
from studio.providers import http

log = logging.getLogger(__name__)

# Both providers' window (fal's guide and Standard Webhooks: 5 minutes), either direction.
WINDOW_SECONDS = 300
# Deliveries are remembered well past the window: a replay older than that is stale anyway.
REMEMBER = timedelta(hours=1)
# fal's keys are cached for at most a day (§1.8) ...
JWKS_MAX_AGE_SECONDS = 24 * 60 * 60
# ... and fetched again early only when a signature matches none of them, at most this
# often, so forged deliveries cannot make Studio hammer fal's JWKS URL.
JWKS_MIN_REFETCH_SECONDS = 60
JWKS_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Longer ids than this are not ids (and would not fit the delivery table).
MAX_ID_LENGTH = 255

FAL_HEADERS = (
    "X-Fal-Webhook-Request-Id",
    "X-Fal-Webhook-User-Id",
    "X-Fal-Webhook-Timestamp",
    "X-Fal-Webhook-Signature",
)
GEMINI_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
# jobs.generation_request names each job "studio-job-<pk>"; Gemini echoes it in user_metadata.
_REFERENCE = re.compile(r"studio-job-(\d{1,18})")


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
    """fal's keys could not be fetched, so nothing can be verified just now; fal retries."""

    status = 503


@dataclass(frozen=True)
class Delivery:
    """A verified webhook."""

    provider: str
    delivery_id: str
    signature: str  # the signature that verified, spelt canonically
    payload: dict


# --------------------------------------------------------------------------- receiving


def deliver(delivery: Delivery) -> None:
    """Act on a verified delivery: once per delivery, poll its job (which finishes it)."""
    if not _first_time(delivery):
        log.info("%s webhook %s came again; ignored", delivery.provider, delivery.delivery_id)
        return
    job = _job_for(delivery)
    if job is None:
        log.info(
            "%s webhook %s is for no job Studio is waiting on; ignored",
            delivery.provider,
            delivery.delivery_id,
        )
        return
    log.info("%s webhook for job %s: checking it now", delivery.provider, job.pk)
    jobs.check(job)


def _first_time(delivery: Delivery) -> bool:
    _, created = WebhookDelivery.objects.get_or_create(
        provider=delivery.provider, delivery_id=delivery.delivery_id, signature=delivery.signature
    )
    return created


def forget_old_deliveries() -> None:
    """Drop deliveries past REMEMBER. The follower does it once a step rather than each
    delivery doing it, so a burst of webhooks does not add a delete to every one."""
    WebhookDelivery.objects.filter(received_at__lt=timezone.now() - REMEMBER).delete()


def _job_for(delivery: Delivery) -> Job | None:
    waiting = Job.objects.at_provider().filter(provider=delivery.provider)
    payload = delivery.payload
    if delivery.provider == "fal":
        # gateway_request_id differs from request_id only when fal retried the request (§1.3).
        ids = [payload.get("request_id"), payload.get("gateway_request_id"), delivery.delivery_id]
        return waiting.filter(provider_job_id__in=[i for i in ids if isinstance(i, str)]).first()
    # Gemini's thin payload: {"type": "video.generated", "data": {"id": …, …}}. Where it
    # echoes a dynamic webhook's user_metadata is not documented, so both places are read.
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    for holder in (data, payload):
        metadata = holder.get("user_metadata")
        reference = metadata.get("job") if isinstance(metadata, dict) else None
        match = _REFERENCE.fullmatch(reference) if isinstance(reference, str) else None
        if match:
            return waiting.filter(pk=int(match.group(1))).first()
    operation = data.get("id") or data.get("name") or payload.get("name")
    if isinstance(operation, str) and operation:
        # The operation's full name ("models/…/operations/abc") or only its id ("abc").
        return waiting.filter(
            Q(provider_job_id=operation) | Q(provider_job_id__endswith=f"/operations/{operation}")
        ).first()
    return None


# --------------------------------------------------------------------------- fal


def verify_fal(headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> Delivery:
    """A fal delivery whose Ed25519 signature verifies against fal's JWKS, or Refused."""
    request_id, user_id, timestamp, signature_hex = _required(headers, FAL_HEADERS)
    _check_timestamp(timestamp, now)
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise Malformed("the signature is not hex") from None
    if len(signature) != 64:
        raise Malformed(f"the signature is {len(signature)} bytes, not 64")
    # The message is built from the headers exactly as sent and the raw body's digest.
    message = "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()
    keys = fal_keys()
    if not _any_verifies(keys, signature, message):
        # fal may have rotated its keys since we fetched them.
        fresher = fal_keys(after_failure=True)
        if fresher is keys or not _any_verifies(fresher, signature, message):
            raise Refused("the signature matches none of fal's keys")
    return Delivery("fal", request_id, signature.hex(), _json_object(body))


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


_jwks: _KeySet | None = None
_last_fetch: tuple[str, float] | None = None  # (url, monotonic) of the last attempt, ok or not
_jwks_lock = threading.Lock()


def fal_keys(*, after_failure: bool = False) -> tuple[Ed25519PublicKey, ...]:
    """fal's public keys: cached for up to JWKS_MAX_AGE_SECONDS, fetched again sooner only
    after a signature failed against them, and never more than once per
    JWKS_MIN_REFETCH_SECONDS (failed fetches included). Raises KeysUnavailable."""
    global _jwks, _last_fetch
    url = settings.FAL_JWKS_URL
    with _jwks_lock:
        now = time.monotonic()
        cached = _jwks if _jwks is not None and _jwks.url == url else None
        if cached is not None and now - cached.fetched_at > JWKS_MAX_AGE_SECONDS:
            cached = None
        if cached is not None and not after_failure:
            return cached.keys
        recently = (
            _last_fetch is not None
            and _last_fetch[0] == url
            and now - _last_fetch[1] < JWKS_MIN_REFETCH_SECONDS
        )
        if recently:
            if cached is not None:
                return cached.keys
            raise KeysUnavailable("fal's keys could not be fetched a moment ago; not retried yet")
        _last_fetch = (url, now)
        try:
            keys = _fetch_fal_keys(url)
        except KeysUnavailable:
            if cached is not None:
                return cached.keys
            raise
        _jwks = _KeySet(url, keys, now)
        return keys


def forget_fal_keys() -> None:
    """Drop the cached keys and the fetch history (tests, or after changing FAL_JWKS_URL)."""
    global _jwks, _last_fetch
    with _jwks_lock:
        _jwks = _last_fetch = None


def _fetch_fal_keys(url: str) -> tuple[Ed25519PublicKey, ...]:
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


def _ed25519_key(entry) -> Ed25519PublicKey | None:
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


# --------------------------------------------------------------------------- Gemini


def verify_gemini(headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> Delivery:
    """A Gemini delivery signed with GEMINI_WEBHOOK_SECRET (Standard Webhooks), or Refused."""
    key = _gemini_key()
    delivery_id, timestamp, signatures = _required(headers, GEMINI_HEADERS)
    _check_timestamp(timestamp, now)
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        # Bytes, not str: compare_digest refuses non-ASCII strings with a TypeError.
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return Delivery("gemini", delivery_id, expected, _json_object(body))
    raise Refused("no v1 signature matches GEMINI_WEBHOOK_SECRET")


def _gemini_key() -> bytes:
    secret = settings.GEMINI_WEBHOOK_SECRET
    if not secret:
        raise NotConfigured("GEMINI_WEBHOOK_SECRET is not set")
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        log.error("GEMINI_WEBHOOK_SECRET is not a whsec_ secret (base64 after the prefix)")
        raise NotConfigured("GEMINI_WEBHOOK_SECRET is unusable") from None


# --------------------------------------------------------------------------- shared


def _required(headers: Mapping[str, str], names: tuple[str, ...]) -> list[str]:
    values = []
    for name in names:
        value = (headers.get(name) or "").strip()
        if not value:
            raise Malformed(f"the {name} header is missing")
        if len(value) > MAX_ID_LENGTH and "signature" not in name.lower():
            raise Malformed(f"the {name} header is too long")
        values.append(value)
    return values


def _check_timestamp(timestamp: str, now: float | None) -> None:
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Malformed("the timestamp is not unix seconds")
    skew = (time.time() if now is None else now) - int(timestamp)
    if abs(skew) > WINDOW_SECONDS:
        raise Refused(f"the timestamp is {int(skew)} s away from now (window {WINDOW_SECONDS} s)")


def _json_object(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise Malformed("the body is not JSON") from None
    if not isinstance(data, dict):
        raise Malformed("the body is not a JSON object")
    return data
