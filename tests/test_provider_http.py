"""Bringing a clip home safely: trusted hosts only, public addresses only, capped, typed."""

import httpx
import pytest

from emulator import Reply
from studio.providers import http
from studio.providers.base import (
    AccountError,
    NotFoundError,
    ProviderError,
    SubmitUncertainError,
    TransientError,
)
from tests.emulator import use_emulator

MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(5000)


@pytest.fixture
def emulator(settings):
    return use_emulator(settings)


@pytest.fixture
def hosts(emulator):
    """The emulator is a configured base URL; the patterns stand for a provider's CDN."""
    return http.MediaHosts.build(["cdn.example.com", "*.media.example"], [emulator.origin])


def fetch(url, tmp_path, hosts, **kwargs):
    dest = tmp_path / "clip.mp4"
    http.download(url, dest, who="Test provider", hosts=hosts, **kwargs)
    return dest.read_bytes()


def test_a_video_from_a_configured_host_is_saved(emulator, hosts, tmp_path):
    url = emulator.add_route("GET", "/media/clip.mp4", Reply(200, MP4, "video/mp4"))
    assert fetch(url, tmp_path, hosts) == MP4


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/clip.mp4",  # not a provider's host
        "https://cdn.example.com.evil.example/clip.mp4",  # only looks like one
        "https://evilmedia.example/clip.mp4",  # "*.media.example" needs a dot before it
        "http://cdn.example.com/clip.mp4",  # a provider's CDN, but not over https
        "ftp://cdn.example.com/clip.mp4",
    ],
)
def test_untrusted_addresses_are_refused_without_a_request(hosts, tmp_path, url):
    with pytest.raises(http.UntrustedURL, match="does not trust"):
        fetch(url, tmp_path, hosts)
    assert not (tmp_path / "clip.mp4").exists()


@pytest.mark.parametrize(
    "address",
    ["10.1.2.3", "100.64.0.1", "169.254.169.254", "192.168.0.10", "127.0.0.1", "::1", "fd00::1"],
)
def test_a_trusted_name_on_a_non_public_address_is_refused(tmp_path, address):
    # Even a host on the list is refused when it is internal: 100.64/10 is not "private"
    # but not global either, and ::1 is loopback unless it is the configured base URL.
    hosts = http.MediaHosts.build([address], [])
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(http.UntrustedURL):
        fetch(f"https://{host}/clip.mp4", tmp_path, hosts)


def test_a_name_that_resolves_to_loopback_is_refused(tmp_path):
    hosts = http.MediaHosts.build(["localhost"], [])
    with pytest.raises(http.UntrustedURL):
        fetch("https://localhost/clip.mp4", tmp_path, hosts)


def test_loopback_on_another_port_or_address_is_not_the_configured_host(emulator, tmp_path):
    hosts = http.MediaHosts.build([], [emulator.origin])
    port = httpx.URL(emulator.origin).port
    for url in (f"http://127.0.0.1:{port + 1}/clip.mp4", f"http://[::1]:{port}/clip.mp4"):
        with pytest.raises(http.UntrustedURL):
            fetch(url, tmp_path, hosts)


def test_public_address_check():
    assert http.is_public_address("8.8.8.8")
    assert http.is_public_address("2001:4860:4860::8888")
    for address in ("10.0.0.1", "100.64.0.1", "169.254.1.1", "127.0.0.1", "0.0.0.0", "::1"):
        assert not http.is_public_address(address), address
    assert not http.is_public_address("::ffff:10.0.0.1")  # IPv4-mapped private
    assert not http.is_public_address("224.0.0.1")
    assert not http.is_public_address("not an address")


def test_a_redirect_within_the_trusted_host_is_followed(emulator, hosts, tmp_path):
    emulator.add_route("GET", "/media/final.mp4", Reply(200, MP4, "video/mp4"))
    url = emulator.add_route(
        "GET", "/media/start", Reply(302, headers={"Location": "/media/final.mp4"})
    )
    assert fetch(url, tmp_path, hosts) == MP4


def test_a_redirect_to_an_untrusted_host_is_refused(emulator, hosts, tmp_path):
    url = emulator.add_route(
        "GET", "/media/away", Reply(302, headers={"Location": "http://169.254.169.254/latest"})
    )
    with pytest.raises(http.UntrustedURL):
        fetch(url, tmp_path, hosts)


def test_credentials_go_only_to_the_urls_own_origin(emulator, tmp_path):
    port = httpx.URL(emulator.origin).port
    other = f"http://localhost:{port}"
    hosts = http.MediaHosts.build([], [emulator.origin, other])
    emulator.add_route("GET", "/media/elsewhere.mp4", Reply(200, MP4, "video/mp4"))
    url = emulator.add_route(
        "GET", "/media/key", Reply(307, headers={"Location": f"{other}/media/elsewhere.mp4"})
    )
    fetch(url, tmp_path, hosts, headers={"x-goog-api-key": "secret"})
    first, second = emulator.requests[-2:]
    assert first.headers["x-goog-api-key"] == "secret"
    assert "x-goog-api-key" not in second.headers


def test_endless_redirects_give_up(emulator, hosts, tmp_path):
    url = emulator.add_route("GET", "/media/loop", Reply(302, headers={"Location": "/media/loop"}))
    with pytest.raises(ProviderError, match="redirected the download too many times"):
        fetch(url, tmp_path, hosts)


def test_a_clip_over_the_cap_is_refused_from_its_length(emulator, hosts, tmp_path):
    url = emulator.add_route("GET", "/media/big.mp4", Reply(200, MP4, "video/mp4"))
    with pytest.raises(ProviderError, match="larger than Studio accepts"):
        fetch(url, tmp_path, hosts, max_bytes=1000)
    assert not (tmp_path / "clip.mp4").exists()


def test_a_clip_over_the_cap_is_refused_while_streaming(emulator, hosts, tmp_path):
    url = emulator.add_route(
        "GET", "/media/unsized.mp4", Reply(200, MP4 * 40, "video/mp4", unsized=True)
    )
    with pytest.raises(ProviderError, match="larger than Studio accepts"):
        fetch(url, tmp_path, hosts, max_bytes=100_000)
    assert not (tmp_path / "clip.mp4").exists()


def test_the_cap_comes_from_settings(emulator, hosts, settings, tmp_path):
    settings.STUDIO_MAX_CLIP_BYTES = 1000
    url = emulator.add_route("GET", "/media/capped.mp4", Reply(200, MP4, "video/mp4"))
    with pytest.raises(ProviderError, match=r"\(0.0 MB\)"):
        fetch(url, tmp_path, hosts)


@pytest.mark.parametrize("content_type", ["text/html", "application/json", "image/jpeg"])
def test_something_other_than_a_video_is_refused(emulator, hosts, tmp_path, content_type):
    url = emulator.add_route("GET", "/media/page", Reply(200, b"<html>", content_type))
    with pytest.raises(ProviderError, match=f"other than a video \\({content_type}\\)"):
        fetch(url, tmp_path, hosts)


def test_octet_stream_is_accepted_only_when_it_is_an_mp4(emulator, hosts, tmp_path):
    ok = emulator.add_route("GET", "/media/a", Reply(200, MP4, "application/octet-stream"))
    assert fetch(ok, tmp_path, hosts) == MP4
    bad = emulator.add_route("GET", "/media/b", Reply(200, b"x" * 100, "binary/octet-stream"))
    with pytest.raises(ProviderError, match="not an MP4"):
        fetch(bad, tmp_path, hosts)
    untyped = emulator.add_route("GET", "/media/c", Reply(200, b"x" * 100, content_type=""))
    with pytest.raises(ProviderError, match="not an MP4"):
        fetch(untyped, tmp_path, hosts)


def test_one_cut_transfer_is_tried_again(emulator, hosts, tmp_path):
    replies = iter([Reply(200, MP4, "video/mp4", truncate=True), Reply(200, MP4, "video/mp4")])
    url = emulator.add_route("GET", "/media/flaky.mp4", lambda: next(replies))
    assert fetch(url, tmp_path, hosts) == MP4


def test_a_transfer_cut_twice_fails_clearly(emulator, hosts, tmp_path):
    url = emulator.add_route("GET", "/media/cut.mp4", Reply(200, MP4, "video/mp4", truncate=True))
    with pytest.raises(ProviderError, match=r"arrived cut short twice \(0.0 MB of 0.0 MB\)"):
        fetch(url, tmp_path, hosts)
    assert not (tmp_path / "clip.mp4").exists()


@pytest.mark.parametrize(
    ("status", "credentials", "error"),
    [
        (404, False, NotFoundError),
        (410, False, NotFoundError),
        (403, False, NotFoundError),  # an expired presigned link
        (403, True, AccountError),  # our key was refused
        (503, False, TransientError),
        (429, False, TransientError),
    ],
)
def test_error_statuses(emulator, hosts, tmp_path, status, credentials, error):
    url = emulator.add_route("GET", f"/media/{status}", Reply(status, b"no", "text/plain"))
    headers = {"x-goog-api-key": "k"} if credentials else None
    with pytest.raises(error):
        fetch(url, tmp_path, hosts, headers=headers)


def test_a_lost_submit_answer_is_uncertain_but_a_refused_connection_is_not():
    request = httpx.Request("POST", "https://queue.example/x")
    lost = http.transport_error(httpx.ReadTimeout("t", request=request), "P", submitting=True)
    assert isinstance(lost, SubmitUncertainError) and not lost.retryable
    refused = http.transport_error(httpx.ConnectError("c", request=request), "P", submitting=True)
    assert isinstance(refused, TransientError)
    polled = http.transport_error(httpx.ReadTimeout("t", request=request), "P")
    assert isinstance(polled, TransientError)


def test_retry_after_reads_seconds_and_dates():
    def response(value):
        return httpx.Response(429, headers={"Retry-After": value})

    assert http.retry_after(response("7")) == 7
    assert http.retry_after(response("Wed, 21 Oct 2015 07:28:00 GMT")) == 0  # in the past
    assert http.retry_after(response("soon")) is None
    assert http.retry_after(response("999999")) == http.RETRY_AFTER_CAP


def test_the_address_actually_connected_to_is_checked_too(emulator, monkeypatch):
    # Between our DNS lookup and httpx's connect a name can be re-pointed inside (DNS
    # rebinding); the peer of the open connection is checked before any byte is read.
    monkeypatch.setattr("urllib.request.getproxies", dict)
    url = emulator.add_route("GET", "/media/peer.mp4", Reply(200, MP4, "video/mp4"))
    not_configured = http.MediaHosts.build(["127.0.0.1"], [])
    with httpx.Client() as client, client.stream("GET", url) as response:
        with pytest.raises(http.UntrustedURL):
            http._check_peer(response, httpx.URL(url), not_configured, "Test provider")
        configured = http.MediaHosts.build([], [emulator.origin])
        http._check_peer(response, httpx.URL(url), configured, "Test provider")


def test_an_unparseable_address_is_refused(hosts, tmp_path):
    with pytest.raises(http.UntrustedURL, match="cannot use"):
        fetch("https://cdn.example.com\x00/clip.mp4", tmp_path, hosts)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254, the metadata service
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::a00:1", False),  # local-use NAT64 (RFC 8215)
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("2002:6440:1::", False),  # 6to4 of 100.64.0.1
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("::127.0.0.1", False),  # IPv4-compatible
        ("::10.0.0.1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("::ffff:169.254.169.254", False),
        ("::ffff:8.8.8.8", True),
    ],
)
def test_ipv6_that_carries_an_ipv4_address_is_judged_by_it(address, public):
    assert http.is_public_address(address) is public


def test_a_trusted_name_on_a_nat64_or_6to4_loopback_is_refused(tmp_path):
    for address in ("64:ff9b::7f00:1", "2002:7f00:1::", "::127.0.0.1"):
        hosts = http.MediaHosts.build([address], [])
        with pytest.raises(http.UntrustedURL):
            fetch(f"https://[{address}]/clip.mp4", tmp_path, hosts)


class Trickle:
    """An HTTP server on loopback that sends a video's headers at once, then its body at
    `rate` bytes a second (or nothing at all), for at most `give_up_after` seconds."""

    def __init__(self, rate: int, *, sized: bool = True, give_up_after: float = 20):
        import socket
        import threading

        self.rate, self.sized, self.give_up_after = rate, sized, give_up_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.origin = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.sent = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import time

        conn, _ = self.listener.accept()
        with conn:
            conn.recv(65536)
            length = f"Content-Length: {len(MP4) * 100}\r\n" if self.sized else ""
            conn.sendall(
                f"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\n{length}\r\n".encode() + MP4[:12]
            )
            started = time.monotonic()
            try:
                while time.monotonic() - started < self.give_up_after:
                    time.sleep(1)
                    if self.rate:
                        conn.sendall(b"\0" * self.rate)
                        self.sent += self.rate
            except OSError:  # the client hung up: what we are waiting for
                pass

    def close(self):
        self.listener.close()


@pytest.mark.parametrize(
    ("rate", "sized"), [(10, True), (10, False), (0, True)], ids=["trickle", "unsized", "stall"]
)
def test_a_slow_download_ends_at_the_deadline_not_the_read_timeout(
    tmp_path, settings, monkeypatch, rate, sized
):
    import time

    settings.STUDIO_PROVIDER_TIMEOUT = 30  # each read may wait this long
    monkeypatch.setattr(http, "DOWNLOAD_DEADLINE_SECONDS", 2.0)
    server = Trickle(rate, sized=sized)
    hosts = http.MediaHosts.build([], [server.origin])
    started = time.monotonic()
    try:
        with pytest.raises(TransientError, match="arriving too slowly"):
            fetch(f"{server.origin}/clip.mp4", tmp_path, hosts, client=httpx.Client())
    finally:
        server.close()
    assert time.monotonic() - started < 3.5
    assert not (tmp_path / "clip.mp4").exists()
