"""The newcomer's flow in a real browser (Debian's Chromium driven by Playwright) against
Studio started as `make run` starts it: gunicorn and a django-q2 worker, SQLite, the local
renderer, the demo account."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from playwright.sync_api import expect, sync_playwright

from tests.factories import photo

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
ADMIN_PASSWORD = "boss-password-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def studio_url(tmp_path_factory):
    """Studio as `make run` brings it up, on a throwaway database and media folder."""
    var = tmp_path_factory.mktemp("studio")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "SECRET_KEY": "browser-test-secret-" + "k" * 40,
        "DATABASE_URL": f"sqlite:///{var / 'studio.sqlite3'}",
        "MEDIA_ROOT": str(var / "media"),
        "STATIC_ROOT": str(var / "static"),
        "Q_WORKERS": "2",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    for command in (
        ["migrate", "-v0"],
        ["collectstatic", "--noinput", "-v0"],
        ["demo_account"],
        ["createsuperuser", "--noinput", "--username", "boss", "--email", "boss@example.com"],
    ):
        subprocess.run(
            [*manage, *command],
            env={**env, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD},
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(var / "serve.log", "wb") as log:
        server = subprocess.Popen(
            [*manage, "serve", "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz").text == "ok":
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((var / "serve.log").read_text())
                time.sleep(0.2)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors


def sign_in(page, url):
    page.goto(url)
    expect(page).to_have_url(f"{url}/login/?next=/")
    page.get_by_label("Username").fill(settings.STUDIO_DEMO_USERNAME)
    page.get_by_label("Password").fill(settings.STUDIO_DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="New clip")).to_be_visible()


def test_newcomer_makes_plays_and_downloads_a_clip(page, studio_url, tmp_path):
    sign_in(page, studio_url)

    image = tmp_path / "harbour.jpg"
    image.write_bytes(photo(1600, 1000))
    page.get_by_label("Image", exact=True).set_input_files(image)
    expect(page.locator("#image-preview")).to_be_visible()
    page.get_by_label("Prompt", exact=True).fill("Slow push in on the harbour at dawn")
    page.get_by_label("Duration").select_option("4")
    expect(page.locator("#estimate")).to_contain_text("4 s at 720p with audio")
    expect(page.get_by_test_id("estimate")).to_have_text("$0.00")
    page.get_by_label("Aspect").select_option("16:9")
    page.get_by_role("button", name="Generate clip").click()

    # The status changes live, without a reload, until the clip is there.
    expect(page.get_by_role("heading", name="Job")).to_be_visible()
    page.evaluate("window.studioNoReload = true")
    expect(page.get_by_test_id("status")).to_have_text("Done", timeout=90_000)
    assert page.evaluate("window.studioNoReload") is True

    page.get_by_role("link", name="Gallery").click()
    poster = page.locator(".gallery img").first
    expect(poster).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth === 1280", arg=poster.element_handle()
    )
    expect(page.locator(".gallery")).to_contain_text("Slow push in on the harbour at dawn")
    expect(page.locator(".gallery")).to_contain_text("4.0 s")

    poster.click()
    video = page.locator("video")
    duration = video.evaluate(
        """v => new Promise((resolve, reject) => {
            if (v.readyState >= 1) return resolve(v.duration);
            v.addEventListener('loadedmetadata', () => resolve(v.duration));
            v.addEventListener('error', () => reject(new Error('video error ' + v.error.code)));
        })"""
    )
    assert abs(duration - 4) <= 1 / 24
    played = video.evaluate(
        """async v => { v.muted = true; await v.play();
            await new Promise(r => setTimeout(r, 700)); v.pause(); return v.currentTime; }"""
    )
    assert played > 0.2
    # Seeking needs the server to answer Range requests.
    seeked = video.evaluate(
        """v => new Promise(resolve => {
            v.addEventListener('seeked', () => resolve(v.currentTime), {once: true});
            v.currentTime = 3.0; })"""
    )
    assert abs(seeked - 3.0) < 0.1

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download MP4").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".mp4")
    data = Path(download.path()).read_bytes()
    assert data[4:8] == b"ftyp"
    assert page.request.get(studio_url + video.get_attribute("src")).body() == data


def test_bad_upload_is_explained_on_the_page(page, studio_url, tmp_path):
    sign_in(page, studio_url)
    fake = tmp_path / "holiday.jpg"
    fake.write_text("not really a photo")
    page.get_by_label("Image", exact=True).set_input_files(fake)
    page.get_by_label("Prompt", exact=True).fill("pan left")
    page.get_by_role("button", name="Generate clip").click()
    expect(page.locator("#field-image .error")).to_have_text(
        "This file is not an image Studio can read. Upload a JPEG, PNG or WebP."
    )
    page.get_by_label("Prompt", exact=True).fill("")
    page.get_by_role("button", name="Generate clip").click()
    expect(page.locator("#field-prompt .error")).to_contain_text("Write a prompt")


def test_text_mode_hides_the_image_and_unknown_pages_are_404(page, studio_url):
    sign_in(page, studio_url)
    page.get_by_label("Mode").select_option("text")
    expect(page.get_by_label("Image", exact=True)).to_be_hidden()
    page.get_by_label("Mode").select_option("first_last")
    expect(page.get_by_label("Last frame")).to_be_visible()
    response = page.goto(f"{studio_url}/clips/999999/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_admin_can_see_every_creators_jobs(page, studio_url):
    sign_in(page, studio_url)
    page.get_by_label("Mode").select_option("text")
    page.get_by_label("Prompt", exact=True).fill("A lighthouse in a storm, text only")
    page.get_by_role("button", name="Generate clip").click()
    expect(page.get_by_test_id("status")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()

    page.goto(f"{studio_url}/admin/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Jobs").click()
    expect(page.locator("#result_list")).to_contain_text("demo")
    page.locator("#result_list tbody a").first.click()
    expect(page.locator(".field-prompt")).to_contain_text("A lighthouse in a storm, text only")
