"""Vertex AI's OAuth2 access tokens, the way Google Cloud users expect them (issue 12
research §2.3): a service-account key file (VERTEX_CREDENTIALS), or application default
credentials when it is empty, both scoped to cloud-platform.

google-auth does the work: it reads the key, signs the JWT-bearer assertion and parses the
token service's answer. Its HTTP goes through `HttpxRequest`, an adapter to google-auth's
transport interface over Studio's own httpx client and timeouts, so a token refresh is an
ordinary HTTP call that the emulator answers in tests.

The credentials are kept once per process and refreshed when google-auth counts their token
as expired (3 min 45 s before Google's expiry). The follower polls from threads, so one lock
covers loading and refreshing: a thread that finds the token expired refreshes it while the
others wait for that token instead of asking for sixteen.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport
import httpx
from google.oauth2 import service_account

from studio import redaction
from studio.providers import http
from studio.providers.base import AccountError, TransientError
from studio.providers.names import LABELS
from studio.providers.vertex import config

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
# A service-account key is about 2.3 KB; anything this large is not one.
MAX_KEY_BYTES = 64 * 1024
TOKEN_SERVICE = "Google's token service"
_KEY_FIELDS = ("client_email", "private_key", "token_uri")
_WHO = LABELS["vertex"]


class HttpxRequest(google.auth.transport.Request):
    """google-auth's transport interface over an httpx client (its token refreshes)."""

    def __init__(self, client: httpx.Client):
        self._client = client

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> HttpxResponse:
        try:
            response = self._client.request(
                method,
                url,
                content=body,
                headers=dict(headers or {}),
                timeout=http.timeout() if timeout is None else timeout,
            )
        except http.TRANSPORT_ERRORS as exc:
            raise google.auth.exceptions.TransportError(str(exc)) from exc
        return HttpxResponse(response)


class HttpxResponse(google.auth.transport.Response):
    def __init__(self, response: httpx.Response):
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def data(self) -> bytes:
        return self._response.content


@dataclass
class _Kept:
    key: tuple[int, str, int]  # process, VERTEX_CREDENTIALS, the key file's mtime
    credentials: google.auth.credentials.Credentials


_lock = threading.Lock()
_kept: _Kept | None = None


def problem() -> str:
    """Why the configured credentials cannot be used, for the creator ("" when they can, as
    far as can be told without a network call: application default credentials are only
    looked up when a token is needed)."""
    if not config.CREDENTIALS.value:
        return ""
    try:
        with _lock:
            _credentials()
    except AccountError as unusable:
        return str(unusable)
    return ""


def bearer(client: httpx.Client, *, renew: bool = False) -> str:
    """A valid access token, refreshed over `client` when it has expired (or `renew`: Google
    refused the one we had). Raises AccountError when the credentials cannot be used or
    Google refuses them, TransientError when the token service cannot be reached."""
    with _lock:
        credentials = _credentials()
        if renew or not credentials.valid:
            _refresh(credentials, client)
        token = credentials.token
    if not isinstance(token, str) or not token:
        raise TransientError(f"{TOKEN_SERVICE} answered without a token; Studio will try again.")
    redaction.remember(token)  # never shown or logged, should Google quote it back
    return token


def forget() -> None:
    """Drop the process's credentials (tests start each case afresh)."""
    global _kept
    with _lock:
        _kept = None


def _credentials() -> google.auth.credentials.Credentials:
    """The process's credentials, loaded again when the setting or the key file changed.
    Called with the lock held."""
    global _kept
    path = config.CREDENTIALS.value
    key = (os.getpid(), path, _modified(path) if path else 0)
    if _kept is None or _kept.key != key:
        loaded = _from_key_file(path) if path else _application_default()
        _kept = _Kept(key, loaded)
    return _kept.credentials


def _refresh(credentials: google.auth.credentials.Credentials, client: httpx.Client) -> None:
    fix = (
        "An administrator needs to check VERTEX_CREDENTIALS."
        if config.CREDENTIALS.value
        else "An administrator needs to check the application default credentials."
    )
    try:
        credentials.refresh(HttpxRequest(client))
    except google.auth.exceptions.TransportError as exc:
        cause = exc.__cause__
        if isinstance(cause, Exception) and isinstance(cause, http.TRANSPORT_ERRORS):
            # Nothing reached Vertex yet, so even during a submit this is safe to retry.
            raise http.transport_error(cause, TOKEN_SERVICE) from exc
        raise TransientError(f"{TOKEN_SERVICE} could not be reached; will retry.") from exc
    except google.auth.exceptions.RefreshError as exc:
        # The token service's own words ("invalid_grant: Invalid JWT Signature."): never a
        # secret, since only the error and its description are quoted.
        words = exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""
        if exc.retryable:
            raise TransientError(f"{TOKEN_SERVICE} is not answering{http.said(words)}") from exc
        raise AccountError(f"Google refused {_WHO}'s credentials{http.said(words)} {fix}") from exc


def _modified(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1  # _from_key_file says why


def _from_key_file(path: str) -> google.auth.credentials.Credentials:
    """The service account in the key file at `path`, or AccountError saying what is wrong
    with the file (never its path or contents)."""
    what = f"{_WHO}'s key file (VERTEX_CREDENTIALS)"
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_KEY_BYTES + 1)
    except FileNotFoundError:
        raise AccountError(f"{what} does not exist.") from None
    except PermissionError:
        raise AccountError(f"{what} cannot be read: permission denied.") from None
    except IsADirectoryError:
        raise AccountError(f"{what} is a folder, not a key file.") from None
    except OSError as exc:
        raise AccountError(f"{what} cannot be read ({exc.strerror or 'error'}).") from None
    if len(raw) > MAX_KEY_BYTES:
        raise AccountError(f"{what} is too large to be a service-account key.")
    try:
        info = json.loads(raw)
    except ValueError:
        raise AccountError(f"{what} is not JSON.") from None
    if not isinstance(info, dict):
        raise AccountError(f"{what} is not a service-account key.")
    kind = info.get("type")
    if kind != "service_account":
        named = f" (its type is {json.dumps(kind)})" if isinstance(kind, str) else ""
        raise AccountError(
            f"{what} is not a service-account key{named}; for other credentials leave "
            "VERTEX_CREDENTIALS empty and use application default credentials."
        )
    missing = [name for name in _KEY_FIELDS if not isinstance(info.get(name), str)]
    if missing:
        raise AccountError(f"{what} lacks {', '.join(missing)}.")
    try:
        return service_account.Credentials.from_service_account_info(  # type: ignore[no-any-return]
            info, scopes=SCOPES
        )
    except (ValueError, TypeError):
        # What google-auth says about a bad key could quote it: our own words instead.
        raise AccountError(f"{what} has a private key that cannot be read.") from None


def _application_default() -> google.auth.credentials.Credentials:
    try:
        credentials, _ = google.auth.default(scopes=SCOPES)
    except google.auth.exceptions.DefaultCredentialsError:
        raise AccountError(
            f"No application default credentials were found for {_WHO}. An administrator "
            "needs to set VERTEX_CREDENTIALS to a service-account key file, or "
            "GOOGLE_APPLICATION_CREDENTIALS."
        ) from None
    return credentials
