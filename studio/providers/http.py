"""HTTP plumbing every hosted provider shares: the client, its timeouts, the one ladder from
an HTTP status to the engine's error tree, and the one safe way to bring a clip home.

Each provider reads its own error bodies (its `_error` method) and hands what they say to
`status_error`; this module only knows HTTP, never a provider's body shapes.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.utils import timezone

from studio.options import Still
from studio.providers.base import (
    AccountError,
    Billing,
    ContentPolicyError,
    Handle,
    HealthCheck,
    InvalidRequestError,
    ModelUnavailableError,
    NotFoundError,
    Provider,
    ProviderError,
    RateLimitedError,
    SubmitUncertainError,
    TransientError,
)

log = logging.getLogger(__name__)

USER_AGENT = "Studio/0.1 (+httpx)"
# Each call's timeout is STUDIO_PROVIDER_TIMEOUT (30 s: submits carry a base64 still of a few
# MB at most, and polls are small); connecting may take at most this long.
CONNECT_TIMEOUT = 5.0
MAX_REDIRECTS = 5
RETRY_AFTER_CAP = 3600.0
# A whole download must finish well inside the worker's task timeout (Q_CLUSTER "timeout",
# 120 s), or q2 kills the step mid-file; a Veo clip is a few MB, so this is generous.
DOWNLOAD_DEADLINE_SECONDS = 90.0

# What a clip may arrive as. Veo's outputs are MP4 and every documented host labels them
# video/mp4 (fal's File.content_type, Gemini's `encoding`); presigned object storage often
# says application/octet-stream (or S3's binary/octet-stream) instead, so those are taken too,
# but only when the first bytes are an ISO-BMFF `ftyp` box. Anything else (an HTML error
# page, JSON, an image) is refused; jobs.finish then probes what was accepted with PyAV.
VIDEO_TYPES = ("video/",)
OPAQUE_TYPES = ("application/octet-stream", "binary/octet-stream", "")


def timeout() -> httpx.Timeout:
    seconds = float(settings.STUDIO_PROVIDER_TIMEOUT)
    return httpx.Timeout(seconds, connect=min(CONNECT_TIMEOUT, seconds), pool=CONNECT_TIMEOUT)


def make_client() -> httpx.Client:
    """A client with explicit timeouts that never follows redirects on its own."""
    return httpx.Client(
        timeout=timeout(), follow_redirects=False, headers={"User-Agent": USER_AGENT}
    )


_shared: tuple[int, httpx.Client] | None = None
_shared_lock = threading.Lock()


def shared_client() -> httpx.Client:
    """One pooled client per process (the follower polls many jobs; connections are reused).

    Made on first use and again after a fork, so a django-q2 worker never shares sockets
    with its parent.
    """
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():
            _shared = (os.getpid(), make_client())
        return _shared[1]


# --------------------------------------------------------------------------- errors


# What a request can raise without an HTTP answer: every provider's `_send` catches these.
TRANSPORT_ERRORS = (httpx.HTTPError, httpx.InvalidURL)


def transport_error(exc: Exception, who: str, *, submitting: bool = False) -> ProviderError:
    """A request that got no HTTP answer, as the error the engine understands.

    Connect failures never reached the provider and a half-written request is discarded by
    the server, so both are safe to retry. A submit whose reply was lost (read timeout,
    connection cut while reading) may have created a job: SubmitUncertainError, never a
    silent resend.
    """
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ProviderError(f"{who} is configured with an unusable address.")
    if isinstance(exc, httpx.TimeoutException):
        reason = "did not answer in time"
    elif isinstance(exc, httpx.ConnectError):
        reason = "could not be reached"
    else:
        reason = "broke off the connection"
    never_arrived = isinstance(
        exc,
        httpx.ConnectError
        | httpx.ConnectTimeout
        | httpx.PoolTimeout
        | httpx.WriteError
        | httpx.WriteTimeout,
    )
    if submitting and not never_arrived:
        return SubmitUncertainError(
            f"{who} {reason} after receiving the job, so Studio cannot tell whether it was "
            "accepted. It was not sent again, so you will not be charged twice; if it was "
            "accepted, it may still appear in your account at the provider."
        )
    return TransientError(f"{who} {reason}; Studio will try again shortly.")


def malformed_reply(who: str, *, submitting: bool = False) -> ProviderError:
    if submitting:
        return SubmitUncertainError(
            f"{who} accepted the job but its reply could not be read, so Studio cannot find "
            "it again. It was not sent again, so you will not be charged twice."
        )
    return TransientError(f"{who} sent a reply Studio could not read; it will ask again.")


def said(message: str) -> str:
    """A provider's own words appended to our sentence: ": their words." or just "."."""
    message = message.strip()
    if not message:
        return "."
    return f": {message}" if message[-1] in ".!?" else f": {message}."


def dict_of(value: Any) -> dict[str, Any]:
    """`value` when a provider's reply has a JSON object there, else an empty one."""
    return value if isinstance(value, dict) else {}


def json_of(response: httpx.Response) -> Any:
    """The parsed body, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - timezone.now()).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def status_error(
    status: int,
    *,
    who: str,
    words: str = "",
    account: str,
    detail: str = "",
    field: str = "",
    policy: bool = False,
    invalid: bool = False,
    retry_after: float | None = None,
    server_billing: Billing = Billing.MAY_BE_BILLED,
    request_billing: Billing = Billing.MAY_BE_BILLED,
) -> ProviderError:
    """The error an HTTP error reply stands for, the same way at every provider.

    The provider reads its own body and passes what it says: `words` (its message, quoted to
    the creator), `account` (the whole sentence for a refused key or an account that cannot
    pay), `detail` (words right after ours, e.g. " (image)"), the option `field` it names,
    whether it says the request broke a content `policy` or is `invalid`, and its billing
    for server errors and for refused requests. Anything a provider does differently it
    decides before calling this.
    """
    said_ = said(words)
    if status in (401, 402, 403):
        return AccountError(account, words=words)
    if status == 404:
        return NotFoundError(f"{who} no longer knows this job{said_}", words=words)
    if status == 429:
        return RateLimitedError(f"{who} is rate limiting Studio{said_}", retry_after, words=words)
    if status >= 500 or status in (408, 409):
        return TransientError(
            f"{who} had a server problem{detail}{said_}", billing=server_billing, words=words
        )
    if policy:
        return ContentPolicyError(
            f"{who} refused this request under its content policy{said_}",
            billing=request_billing,
            words=words,
        )
    if status in (400, 422) or invalid:
        return InvalidRequestError(
            f"{who} rejected the request{detail}{said_}",
            field=field,
            billing=request_billing,
            words=words,
        )
    return ProviderError(f"{who} refused the request (HTTP {status}){said_}", words=words)


def model_gone(error: ProviderError, who: str) -> ProviderError:
    """A submit's refusal read for what it means: a submit names no job yet, so "not found"
    (or a refusal of the model field) means the provider does not serve the model."""
    refused_model = isinstance(error, InvalidRequestError) and error.field == "model"
    if not (isinstance(error, NotFoundError) or refused_model):
        return error
    return ModelUnavailableError(
        f"{who} no longer offers this model; your job was not sent{said(error.words)}",
        words=error.words,
    )


def health_of(response: httpx.Response, *, proves_key: bool, proves_model: bool) -> HealthCheck:
    """What one health-check reply proved: 2xx proves what the call proves; 401/403 that
    the key was refused; 404 that the model is not served (the key was taken)."""
    status = response.status_code
    words = _words(response)
    if status < 300:
        return HealthCheck(
            key_ok=True if proves_key else None, model_ok=True if proves_model else None
        )
    if status in (401, 403):
        return HealthCheck(key_ok=False, model_ok=None, message=words)
    if status == 404:
        return HealthCheck(key_ok=True if proves_key else None, model_ok=False, message=words)
    if status == 429 or status >= 500:
        raise TransientError(f"could not be checked just now (HTTP {status}){said(words)}")
    return HealthCheck(key_ok=None, model_ok=None, message=f"HTTP {status}{said(words)}")


def _words(response: httpx.Response) -> str:
    """A short message from an error reply, whatever its shape."""
    body = json_of(response)
    if isinstance(body, dict):
        error = body.get("error")
        for source in (error if isinstance(error, dict) else {}, body):
            for key in ("message", "detail", "title"):
                value = source.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()
        if isinstance(error, str):
            return error.strip()
    return ""


class HttpProvider(Provider):
    """A hosted provider: one httpx client (injected in tests), and one place that sends a
    request and turns any HTTP failure into the error tree (each provider's `_error`)."""

    def __init__(self, client: httpx.Client | None = None):
        self._client = client

    @property
    def client(self) -> httpx.Client:
        return self._client or shared_client()

    def auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def media_hosts(self) -> MediaHosts:
        """Where this provider's clips may be downloaded from."""
        raise NotImplementedError

    def download_headers(self) -> dict[str, str]:
        """Credentials a download needs (sent to the clip URL's own origin only); most
        providers' links are CDN or presigned links that need none."""
        return {}

    def fetch(self, handle: Handle, result_url: str, dest: Path) -> None:
        download(
            result_url,
            dest,
            who=self.label,
            hosts=self.media_hosts(),
            headers=self.download_headers(),
            client=self.client,
        )

    def _error(self, response: httpx.Response) -> ProviderError:
        raise NotImplementedError

    def _send(
        self,
        method: str,
        url: str,
        *,
        submitting: bool = False,
        check: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        try:
            response = self.client.request(
                method, url, headers=headers or self.auth_headers(), timeout=timeout(), **kwargs
            )
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, self.label, submitting=submitting) from exc
        if check and response.status_code >= 400:
            error = self._error(response)
            raise model_gone(error, self.label) if submitting else error
        return response

    def _json(self, response: httpx.Response, *, submitting: bool = False) -> dict[str, Any]:
        data = json_of(response)
        if not isinstance(data, dict):
            raise malformed_reply(self.label, submitting=submitting)
        return data


def data_uri(image: Still) -> str:
    return f"data:{image.content_type};base64,{base64.b64encode(image.read()).decode('ascii')}"


# --------------------------------------------------------------------------- trusted hosts


@dataclass(frozen=True)
class MediaHosts:
    """Where one provider's clips may be downloaded from.

    `patterns` are the provider's documented media hosts ("v3.fal.media" or "*.fal.media");
    their addresses must be public. `configured` are (host, port) pairs of the base URLs in
    settings: the operator chose them, so they are trusted as they are (plain http and a
    loopback address included), which is what lets the emulator serve clips.
    """

    patterns: tuple[str, ...]
    configured: tuple[tuple[str, int], ...] = ()

    @classmethod
    def build(
        cls, patterns: Iterable[str], base_urls: Iterable[str], extra: Iterable[str] = ()
    ) -> MediaHosts:
        """`patterns` documented by the provider plus `extra` ones from its settings, and the
        hosts of its configured `base_urls`."""
        configured = []
        for base in base_urls:
            if base:
                url = httpx.URL(base)
                configured.append((_norm(url.host), _port(url)))
        return cls(
            patterns=tuple(_norm(p) for p in [*patterns, *extra] if p),
            configured=tuple(configured),
        )

    def is_configured(self, url: httpx.URL) -> bool:
        return (_norm(url.host), _port(url)) in self.configured

    def matches(self, host: str) -> bool:
        host = _norm(host)
        for pattern in self.patterns:
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                    return True
            elif host == pattern:
                return True
        return False


def _norm(host: str) -> str:
    return host.lower().rstrip(".").strip("[]")


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


# IPv6 addresses that stand for an IPv4 one: a NAT64 gateway (RFC 6052) or a 6to4 relay
# reaches the IPv4 address inside, so they are judged by it. Local-use NAT64 (RFC 8215) is
# a site's own translator: never public.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(address: str) -> bool:
    """True only for globally routable addresses.

    `is_global`, not `not is_private`: 100.64.0.0/10 (carrier-grade NAT) is neither private
    nor global, and must be refused (shared/facts.md). IPv6 that carries an IPv4 address
    (mapped, IPv4-compatible, NAT64, 6to4) is judged by that address: Python calls
    64:ff9b::7f00:1 global, yet through a NAT64 gateway it is 127.0.0.1.
    """
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
            address.split("%", 1)[0]
        )
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _LOCAL_NAT64:
            return False
        ip = _embedded_ipv4(ip) or ip
    return ip.is_global and not ip.is_multicast


class UntrustedURL(ProviderError):
    """The clip's address is not one Studio downloads from."""


def check_url(url: httpx.URL, hosts: MediaHosts, who: str) -> None:
    """Refuse a URL unless it is https on a documented media host with public addresses, or
    on a configured base-URL host. Raises UntrustedURL (provider URLs are never shown)."""
    refused = UntrustedURL(
        f"{who} pointed Studio at a download address it does not trust, so the clip was not "
        "fetched."
    )
    if url.scheme not in ("http", "https") or not url.host:
        raise refused
    if hosts.is_configured(url):
        return
    if url.scheme != "https" or not hosts.matches(url.host):
        log.warning("%s: refused media URL on host %r", who, url.host)
        raise refused
    for address in _addresses(url.host, _port(url), who):
        if not is_public_address(address):
            log.warning("%s: media host %r resolves to non-public %s", who, url.host, address)
            raise refused


def _addresses(host: str, port: int, who: str) -> list[str]:
    host = _norm(host)
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise TransientError(f"{who}'s download host could not be looked up; will retry.") from None
    return [str(info[4][0]) for info in infos]


def _check_peer(response: httpx.Response, url: httpx.URL, hosts: MediaHosts, who: str) -> None:
    """The address actually connected to must be public too (closes DNS rebinding between
    our lookup and httpx's). Behind an HTTP proxy the peer is the proxy, so it is skipped."""
    if hosts.is_configured(url) or urllib.request.getproxies():
        return
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if peer and not is_public_address(str(peer[0])):
        log.warning("%s: media host %r connected to non-public %s", who, url.host, peer[0])
        raise UntrustedURL(
            f"{who} pointed Studio at a download address it does not trust, so the clip was "
            "not fetched."
        )


# --------------------------------------------------------------------------- download


class _CutShort(Exception):
    def __init__(self, got: int, expected: int | None):
        self.got, self.expected = got, expected


def download(
    url: str,
    dest: Path,
    *,
    who: str,
    hosts: MediaHosts,
    headers: dict[str, str] | None = None,
    client: httpx.Client | None = None,
    max_bytes: int | None = None,
) -> None:
    """Stream the clip at `url` to `dest`, safely.

    Redirects are followed by hand, each hop checked by `check_url`; `headers` (an API key)
    go only to the URL's own origin, never to a redirect elsewhere. The body is capped at
    STUDIO_MAX_CLIP_BYTES and must be a video. A transfer cut short is tried once more
    (a network blip), then fails clearly instead of retrying forever.
    """
    client = client or shared_client()
    limit = max_bytes if max_bytes is not None else settings.STUDIO_MAX_CLIP_BYTES
    # One deadline for the whole download, second attempt included.
    deadline = Deadline(DOWNLOAD_DEADLINE_SECONDS)
    for attempt in (1, 2):
        try:
            _download_once(httpx.URL(url), dest, who, hosts, headers or {}, client, limit, deadline)
            return
        except httpx.InvalidURL:
            raise UntrustedURL(f"{who} gave Studio a download address it cannot use.") from None
        except _CutShort as cut:
            dest.unlink(missing_ok=True)
            of = f" of {_mb(cut.expected)}" if cut.expected else ""
            log.warning("%s: download cut short at %d bytes (attempt %d)", who, cut.got, attempt)
            if attempt == 2:
                raise ProviderError(
                    f"The clip from {who} arrived cut short twice ({_mb(cut.got)}{of}), so it "
                    "was not saved."
                ) from None
        except BaseException:
            dest.unlink(missing_ok=True)
            raise


def _download_once(
    url: httpx.URL,
    dest: Path,
    who: str,
    hosts: MediaHosts,
    headers: dict[str, str],
    client: httpx.Client,
    limit: int,
    deadline: Deadline,
) -> None:
    origin = (url.scheme, _norm(url.host), _port(url))
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, hosts, who)
        same_origin = (url.scheme, _norm(url.host), _port(url)) == origin
        try:
            with (
                client.stream(
                    "GET",
                    url,
                    headers=headers if same_origin else {},
                    timeout=deadline.cap(timeout()),
                ) as response,
                deadline.guarding(response),
            ):
                _check_peer(response, url, hosts, who)
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    if not location:
                        raise ProviderError(f"{who} sent a redirect without a destination.")
                    url = url.join(location)
                    continue
                _raise_for_download(response, who, sent_credentials=bool(headers) and same_origin)
                _save_body(response, dest, who, limit, deadline)
                return
        except httpx.HTTPError as exc:
            if deadline.passed():
                raise _too_slow(who) from exc
            raise transport_error(exc, who) from exc
    raise ProviderError(f"{who} redirected the download too many times.")


class Deadline:
    """A download's deadline, kept on every read: each read waits at most what is left, and a
    watchdog shuts the connection when it passes, so a body trickling in a few bytes at a
    time (each read in time, the whole never) ends at the deadline, not at the read timeout.
    """

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.left() <= 0

    def cap(self, limits: httpx.Timeout) -> httpx.Timeout:
        """`limits`, none of them longer than what is left."""
        left = max(0.001, self.left())
        return httpx.Timeout(
            **{
                name: left if value is None else min(value, left)
                for name, value in limits.as_dict().items()
            }
        )

    @contextmanager
    def guarding(self, response: httpx.Response) -> Iterator[None]:
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is None:  # a transport without a socket (tests): the per-read check remains
            yield
            return

        def cut() -> None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(max(0.0, self.left()), cut)
        watchdog.daemon = True
        watchdog.start()
        try:
            yield
        finally:
            watchdog.cancel()


def _too_slow(who: str) -> TransientError:
    return TransientError(f"The clip from {who} is arriving too slowly; will retry.")


def _raise_for_download(response: httpx.Response, who: str, *, sent_credentials: bool) -> None:
    status = response.status_code
    if status < 300:
        return
    if status in (404, 410) or (status in (401, 403) and not sent_credentials):
        # Presigned links answer 403 once they expire; CDNs answer 404 or 410.
        raise NotFoundError(f"The clip is no longer available at {who}: its link has expired.")
    if status in (401, 403):
        raise AccountError(f"{who} refused Studio's credentials for the download.")
    if status == 429:
        raise RateLimitedError(
            f"{who} is busy; the download will be retried.", retry_after(response)
        )
    if status >= 500:
        raise TransientError(f"{who} could not send the clip just now; it will be retried.")
    raise ProviderError(f"{who} refused the download (HTTP {status}).")


def _save_body(
    response: httpx.Response, dest: Path, who: str, limit: int, deadline: Deadline
) -> None:
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    video = content_type.startswith(VIDEO_TYPES)
    if not video and content_type not in OPAQUE_TYPES:
        raise ProviderError(
            f"{who} sent something other than a video ({content_type or 'no type'}), so it "
            "was not saved."
        )
    expected = _content_length(response)
    if expected is not None and expected > limit:
        raise ProviderError(_too_big(who, limit))
    got = 0
    head = b""
    try:
        with open(dest, "wb") as out:
            # Each piece as it arrives (one network read), so the deadline is checked after
            # every read, however few bytes it brought.
            for chunk in response.iter_bytes():
                got += len(chunk)
                if got > limit:
                    raise ProviderError(_too_big(who, limit))
                if deadline.passed():
                    raise _too_slow(who)
                if len(head) < 12:
                    head += chunk[: 12 - len(head)]
                out.write(chunk)
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.TimeoutException) as exc:
        if deadline.passed():  # the watchdog shut the connection, or the last read timed out
            raise _too_slow(who) from exc
        if isinstance(exc, httpx.TimeoutException):
            raise
        # h11 raises this when the peer closes before Content-Length bytes arrived.
        raise _CutShort(got, expected) from exc
    if deadline.passed():  # a body without a length ends when the watchdog shuts it
        raise _too_slow(who)
    if expected is not None and got < expected:
        raise _CutShort(got, expected)
    if got == 0:
        raise _CutShort(0, expected)
    if not video and head[4:8] != b"ftyp":
        raise ProviderError(f"{who} sent a file that is not an MP4 video, so it was not saved.")


def _content_length(response: httpx.Response) -> int | None:
    # Content-Length counts encoded bytes; MP4 is never worth compressing, but if a host does,
    # the length cannot be compared with the decoded bytes we count.
    if response.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
        return None
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


def _too_big(who: str, limit: int) -> str:
    return f"The clip from {who} is larger than Studio accepts ({_mb(limit)}), so it was not saved."


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
