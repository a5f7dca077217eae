"""Uploads are refused while they stream in, against gunicorn as `make run` starts it: a
300 MB body is answered with a clear 413 before it is read (the socket takes only what the
kernel's buffers hold), and a still over STUDIO_MAX_UPLOAD_MB inside a body under the cap
is dropped past the limit with the page's own message."""

import os
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from studio.management.commands.serve import gunicorn_command

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
BOUNDARY = "studio-test-boundary"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    var = tmp_path_factory.mktemp("uploads")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "SECRET_KEY": "upload-test-secret-" + "k" * 40,
        "DATABASE_URL": f"sqlite:///{var / 'studio.sqlite3'}",
        "MEDIA_ROOT": str(var / "media"),
        "STATIC_ROOT": str(var / "static"),
    }
    for command in (["migrate", "-v0"], ["collectstatic", "--noinput", "-v0"], ["demo_account"]):
        subprocess.run(
            [sys.executable, "manage.py", *command], env=env, cwd=ROOT, check=True,
            capture_output=True,
        )  # fmt: skip
    port = free_port()
    with open(var / "gunicorn.log", "wb") as log:
        web = subprocess.Popen(
            gunicorn_command("127.0.0.1", port, 2), env=env, cwd=ROOT, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz").text == "ok":
                    break
            except httpx.TransportError:
                pass
            assert web.poll() is None and time.monotonic() < deadline, (
                var / "gunicorn.log"
            ).read_text()
            time.sleep(0.2)
        yield url, port
    finally:
        web.terminate()
        web.wait(timeout=30)


@pytest.fixture(scope="module")
def session(server):
    """The demo account's session cookie and CSRF token, signed in through the page."""
    from django.conf import settings

    url, _ = server
    with httpx.Client(base_url=url) as client:
        page = client.get("/login/").text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        client.post(
            "/login/",
            data={
                "username": settings.STUDIO_DEMO_USERNAME,
                "password": settings.STUDIO_DEMO_PASSWORD,
                "csrfmiddlewaretoken": token,
            },
        )
        cookies = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        return cookies, client.cookies["csrftoken"]


def send_upload(port: int, session, size: int, *, file_bytes: int) -> tuple[int, float, bytes]:
    """POST a still upload of `size` bytes in all (a multipart body whose file part holds
    `file_bytes`), writing as fast as the socket takes it. Returns how many bytes the socket
    accepted before the answer came or the connection was cut, the seconds that took, and
    what the server answered."""
    cookies, token = session
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"'
        "\r\nContent-Type: image/jpeg\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    body_length = max(size, len(head) + file_bytes + len(tail))
    request = (
        f"POST /images/upload/image/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Cookie: {cookies}\r\nX-CSRFToken: {token}\r\nHX-Request: true\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {body_length}\r\n\r\n"
    ).encode()
    chunk = b"\xff" * (256 * 1024)
    sent = 0
    answer = b""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request + head)
        sent = len(head)
        sock.setblocking(False)
        while sent < body_length:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                break  # the server answered before the body was all sent
            if not writable:
                break
            piece = chunk[: min(len(chunk), body_length - len(tail) - sent)] or tail
            try:
                sent += sock.send(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
        elapsed = time.monotonic() - started
        sock.setblocking(True)
        sock.settimeout(10)
        try:
            while data := sock.recv(65536):
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    return sent, elapsed, answer


def test_a_300_mb_body_is_refused_before_it_is_read(server, session):
    _, port = server
    sent, elapsed, answer = send_upload(port, session, 300 * MB, file_bytes=300 * MB)
    print(f"300 MB upload: the socket took {sent / MB:.1f} MB in {elapsed:.2f} s")
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    text = answer.decode(errors="replace")
    assert "This upload is 300.0 MB; Studio takes at most 41.0 MB at once" in text
    assert 'id="image-slot"' in text  # the create page's still slot, which htmx swaps in
    assert sent < 40 * MB, f"{sent / MB:.1f} MB were taken before the refusal"
    assert elapsed < 5


def test_a_still_over_the_limit_is_dropped_as_it_streams_in(server, session):
    _, port = server
    sent, elapsed, answer = send_upload(port, session, 0, file_bytes=30 * MB)
    print(f"30 MB still: the socket took {sent / MB:.1f} MB in {elapsed:.2f} s")
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert "The image is more than 20.0 MB, the limit." in answer.decode(errors="replace")


def test_the_form_says_which_still_was_over_the_limit(signed_in):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from tests.factories import photo

    big = SimpleUploadedFile("big.jpg", photo() + bytes(21 * MB), content_type="image/jpeg")
    response = signed_in.post(
        reverse("create"),
        {"mode": "image", "image": big, "prompt": "Push in", "provider": "local",
         "duration": "4", "resolution": "720p", "aspect": "16:9"},
    )  # fmt: skip
    assert response.status_code == 200
    assert response.context["form"].errors["image"] == [
        "The image is more than 20.0 MB, the limit."
    ]
