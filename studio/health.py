"""Provider health: whether each provider can take jobs now.

A provider is unavailable when it is not set up here (its own `unavailable_reason`: no key),
or when it said it does not serve the model Studio asks for (a submit refused that way, or a
health check) — then for everyone, with its own words and the time, until a check succeeds
again. `check` runs one cheap documented call per configured provider (manage.py providers
check, on worker start and hourly on q2's schedule) and records what it proved.

A check that cannot reach the provider is recorded (and fails the command) but does not mark
it unavailable: a submit would only be retried or failed over, as for any network trouble.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format

from studio import leases
from studio.models import Price, ProviderStatus
from studio.providers.base import HealthCheck, ProviderError
from studio.providers.registry import LABELS, get_provider, label
from studio.redaction import scrub

log = logging.getLogger(__name__)

# A check asked for again within this long is not run again (workers all start at once).
RECHECK_AFTER_SECONDS = 300
CHECK_LEASE = "check-providers"


def unavailable_reasons() -> dict[str, str]:
    """Why each provider cannot take jobs now, for those that cannot (one query)."""
    marked = {
        status.provider: status
        for status in ProviderStatus.objects.filter(available=False, provider__in=list(LABELS))
    }
    reasons = {}
    for name in LABELS:
        reason = get_provider(name).unavailable_reason()
        if not reason and name in marked:
            reason = _marked_reason(marked[name])
        if reason:
            reasons[name] = reason
    return reasons


def unavailable_reason(provider: str) -> str:
    return unavailable_reasons().get(provider, "")


def _marked_reason(status: ProviderStatus) -> str:
    """The provider's reason, its own words included, and since when ("… (since 2 Dec, 14:02)")."""
    since = status.unavailable_since or status.checked_at
    when = f" (since {date_format(timezone.localtime(since), 'j M, H:i')})" if since else ""
    return f"{status.reason.rstrip('.')}{when}"


def marked_unavailable(provider: str) -> str:
    """Why the provider is marked unavailable for everyone, or "" (one query)."""
    status = ProviderStatus.objects.filter(provider=provider, available=False).first()
    return _marked_reason(status) if status else ""


def mark_unavailable(provider: str, reason: str) -> None:
    """The provider said it cannot make clips for anyone (a model it no longer serves)."""
    with transaction.atomic():
        status, _ = ProviderStatus.objects.select_for_update().get_or_create(provider=provider)
        if status.available:
            status.unavailable_since = timezone.now()
        status.available = False
        status.reason = scrub(reason)
        status.save()
    log.warning("%s marked unavailable: %s", provider, reason)


@dataclass(frozen=True)
class CheckRow:
    """One provider's check, as the command prints it."""

    provider: str
    result: HealthCheck | None  # None: the provider could not be reached
    message: str
    latency_ms: int
    price_source: str

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok


def configured() -> list[str]:
    """The providers set up here (a key and what else they need), in the listed order."""
    return [name for name in LABELS if not get_provider(name).unavailable_reason()]


def check(providers: list[str] | None = None) -> list[CheckRow]:
    """Check each provider (default: every configured one), record and mark the results."""
    rows = []
    for name in providers if providers is not None else configured():
        provider = get_provider(name)
        started = time.monotonic()
        result: HealthCheck | None
        try:
            result = provider.check()
            message = result.message
        except ProviderError as exc:
            result, message = None, str(exc)
        latency = round((time.monotonic() - started) * 1000)
        _record(name, result, message, latency)
        rows.append(CheckRow(name, result, message, latency, _price_source(name)))
    return rows


def check_unless_recent() -> list[CheckRow]:
    """`check`, unless another worker is checking or every configured provider was checked
    in the last few minutes (every worker of a cluster asks for one when it starts)."""
    holder = leases.new_holder()
    if not leases.acquire(CHECK_LEASE, holder, seconds=RECHECK_AFTER_SECONDS):
        return []
    try:
        names = configured()
        cutoff = timezone.now() - timedelta(seconds=RECHECK_AFTER_SECONDS)
        recent = ProviderStatus.objects.filter(provider__in=names, checked_at__gte=cutoff)
        if names and recent.count() == len(names):
            return []
        return check(names)
    finally:
        leases.release(CHECK_LEASE, holder)


def _record(provider: str, result: HealthCheck | None, message: str, latency: int) -> None:
    now = timezone.now()
    with transaction.atomic():
        status, _ = ProviderStatus.objects.select_for_update().get_or_create(provider=provider)
        status.checked_at = now
        status.latency_ms = latency
        status.message = scrub(message)
        status.key_ok = result.key_ok if result else None
        status.model_ok = result.model_ok if result else None
        if result is not None and result.ok:
            status.available, status.reason, status.unavailable_since = True, "", None
        elif result is not None:
            if status.available:
                status.unavailable_since = now
            status.available = False
            status.reason = scrub(_failure_reason(provider, result))
        status.save()


def _failure_reason(provider: str, result: HealthCheck) -> str:
    what = "refused Studio's key" if result.key_ok is False else "does not serve its model"
    words = f": {result.message}" if result.message else ""
    return f"{label(provider)} {what}{words}"


def _price_source(provider: str) -> str:
    if get_provider(provider).free:
        return "free"
    prices = Price.objects.filter(provider=provider)
    total = prices.count()
    if not total:
        return "no prices"
    confirmed = prices.filter(confirmed=True).count()
    dates = [d for d in prices.values_list("as_of", flat=True) if d]
    newest = f", as of {max(dates):%Y-%m-%d}" if dates else ""
    return f"{confirmed} of {total} confirmed{newest}"
