"""Keeping secrets out of everything Studio shows or logs.

A provider's error may quote what it received (a key, a bearer token): every provider message
is scrubbed of each configured secret before it is stored, shown or logged. The secrets are
the settings declared secret (each provider's key in its config.py, the webhook secrets),
SECRET_KEY, and tokens learned at run time (`remember`: Vertex AI's bearer tokens).
"""

from __future__ import annotations

import logging
import threading

from studio.environment import SECRET_SETTINGS

REDACTED = "[redacted]"
# Shorter values are not secrets worth the name, and would redact ordinary words.
SHORTEST = 8

_learned: set[str] = set()
_lock = threading.Lock()


def remember(secret: str) -> None:
    """A secret learned while running (a token), scrubbed from then on."""
    if len(secret) >= SHORTEST:
        with _lock:
            _learned.add(secret)


def secrets() -> list[str]:
    """Every secret to scrub, longest first (so one inside another goes whole)."""
    from django.conf import settings

    values = {str(getattr(settings, name, "") or "") for name in SECRET_SETTINGS}
    values.add(str(getattr(settings, "SECRET_KEY", "") or ""))
    with _lock:
        values |= _learned
    return sorted((v for v in values if len(v) >= SHORTEST), key=len, reverse=True)


def scrub(text: str) -> str:
    for secret in secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class ScrubbingFilter(logging.Filter):
    """Scrubs every record a handler writes (settings.LOGGING), its arguments included."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return True
