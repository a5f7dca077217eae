"""The newcomer's flow in a real browser (Debian's Chromium driven by Playwright) against
Studio started as `make run` starts it: gunicorn and a django-q2 worker, SQLite, the local
renderer, the demo account (in the stack run: PostgreSQL, Redis and S3 instead)."""

import io
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from PIL import Image, ImageChops, ImageStat
from playwright.sync_api import expect, sync_playwright

from tests import stack
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
    emulator_port = free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        "SECRET_KEY": "browser-test-secret-" + "k" * 40,
        "DATABASE_URL": f"sqlite:///{var / 'studio.sqlite3'}",
        "MEDIA_ROOT": str(var / "media"),
        "STATIC_ROOT": str(var / "static"),
        "Q_WORKERS": "2",
        # Every hosted provider, pointed at the emulator (as the README tells a developer).
        "FAL_QUEUE_URL": f"{emulator_url}/fal/queue",
        "FAL_REST_URL": f"{emulator_url}/fal/rest",
        "GEMINI_API_URL": f"{emulator_url}/gemini/v1beta",
        "AIMLAPI_URL": f"{emulator_url}/aimlapi",
        "OXEN_API_URL": f"{emulator_url}/oxen",
        "FAL_KEY": "browser-test",
        "GEMINI_API_KEY": "browser-test",
        "AIMLAPI_KEY": "browser-test",
        "OXEN_API_KEY": "browser-test",
        # In the stack run: its own PostgreSQL database, Redis database and bucket.
        **stack.own_servers(),
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
        emulator = subprocess.Popen(
            [sys.executable, "-m", "emulator", "--port", str(emulator_port), "--latency", "1"],
            env=env, cwd=ROOT, stdout=log, stderr=log,
        )  # fmt: skip
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
            for process in (server, emulator):
                process.terminate()
                process.wait(timeout=30)


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
    page.on("response", lambda r: r.status >= 400 and errors.append(f"HTTP {r.status} {r.url}"))
    page.on(
        "console",
        lambda msg: (
            msg.type == "error"
            and not msg.text.startswith("Failed to load resource")  # reported with its URL above
            and errors.append(msg.text)
        ),
    )
    page.expected_errors = []  # console errors a test provokes on purpose
    yield page
    context.close()
    unexpected = [e for e in errors if not any(x in e for x in page.expected_errors)]
    assert not unexpected, unexpected


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
    expect(page.locator("#image-slot img.still")).to_be_visible()
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

    # And it can be deleted, after a confirmation.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete clip").click()
    expect(page.get_by_role("status")).to_have_text("The clip was deleted.")
    expect(page.locator("main")).not_to_contain_text("Slow push in on the harbour at dawn")


def test_bad_upload_is_explained_on_the_page(page, studio_url, tmp_path):
    sign_in(page, studio_url)
    fake = tmp_path / "holiday.jpg"
    fake.write_text("not really a photo")
    page.get_by_label("Image", exact=True).set_input_files(fake)
    # Checked the moment it is chosen, before anything is submitted.
    expect(page.locator("#image-slot .error")).to_have_text(
        "This file is not an image Studio can read. Upload a JPEG, PNG or WebP."
    )
    # Submitted anyway, the form says the same, and what else is missing.
    page.get_by_role("button", name="Generate clip").click()
    expect(page.locator("#field-image > .error")).to_have_text(
        "This file is not an image Studio can read. Upload a JPEG, PNG or WebP."
    )
    expect(page.locator("#field-prompt .error")).to_contain_text("Write a prompt")


def test_text_mode_hides_the_image_and_unknown_pages_are_404(page, studio_url):
    sign_in(page, studio_url)
    page.get_by_label("Mode").select_option("text")
    expect(page.get_by_label("Image", exact=True)).to_be_hidden()
    page.get_by_label("Mode").select_option("first_last")
    expect(page.get_by_label("Last frame")).to_be_visible()
    page.expected_errors.append("HTTP 404 " + f"{studio_url}/clips/999999/")
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


def crop_box(page) -> tuple[int, int, int, int]:
    return tuple(
        int(page.locator(f"[name=crop_{side}]").input_value())
        for side in ("left", "top", "width", "height")
    )


def picture(page, url: str) -> Image.Image:
    return Image.open(io.BytesIO(page.request.get(url).body())).convert("RGB")


def test_creator_drags_the_crop_frame_and_gets_that_region(page, studio_url, tmp_path):
    sign_in(page, studio_url)
    page.get_by_label("Aspect").select_option("16:9")
    image = tmp_path / "four-by-three.jpg"
    image.write_bytes(photo(1600, 1200))
    page.get_by_label("Image", exact=True).set_input_files(image)
    frame = page.locator(".crop-frame")
    expect(frame).to_be_visible()
    expect(page.locator("#framing-note")).to_contain_text("1600×1200; 16:9 needs a crop")
    assert crop_box(page) == (0, 150, 1600, 900)

    # Drag it down with the mouse, then nudge it up with the keyboard.
    shown = frame.bounding_box()
    scale = page.locator("#image-slot img.still").bounding_box()["width"] / 1600
    page.mouse.move(shown["x"] + shown["width"] / 2, shown["y"] + shown["height"] / 2)
    page.mouse.down()
    page.mouse.move(
        shown["x"] + shown["width"] / 2, shown["y"] + shown["height"] / 2 + 100, steps=5
    )
    page.mouse.up()
    left, top, width, height = crop_box(page)
    assert (left, width, height) == (0, 1600, 900)
    assert abs(top - (150 + 100 / scale)) <= 2 or top == 300
    frame.focus()
    page.keyboard.press("ArrowUp")
    assert crop_box(page)[1] == top - 16
    box = crop_box(page)

    original = picture(
        page, studio_url + page.locator("#image-slot img.still").get_attribute("src")
    )
    page.get_by_label("Prompt", exact=True).fill("tilt down over the rooftops")
    page.get_by_label("Duration").select_option("4")
    page.get_by_role("button", name="Generate clip").click()
    sent = picture(page, studio_url + page.get_by_alt_text("The source image").get_attribute("src"))
    expected = original.crop((box[0], box[1], box[0] + box[2], box[1] + box[3]))
    assert sent.size == expected.size
    assert sum(ImageStat.Stat(ImageChops.difference(sent, expected)).mean) / 3 < 1.5


def test_pad_shows_the_padded_image_and_works_on_a_phone(browser, studio_url, tmp_path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    page = context.new_page()
    sign_in(page, studio_url)
    page.get_by_label("Aspect").select_option("9:16")
    image = tmp_path / "wide.jpg"
    image.write_bytes(photo(1600, 900))
    page.get_by_label("Image", exact=True).set_input_files(image)
    expect(page.locator(".crop-frame")).to_be_visible()
    assert page.locator("#image-slot img.still").bounding_box()["width"] <= 390
    page.get_by_label("Pad with a blurred copy").check()
    padded = page.get_by_alt_text("The image padded to the chosen aspect")
    expect(padded).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=padded.element_handle()
    )
    size = padded.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert abs(size[0] / size[1] - 9 / 16) < 0.01
    assert crop_box_is_empty(page)
    context.close()


def crop_box_is_empty(page) -> bool:
    return all(
        page.locator(f"[name=crop_{side}]").input_value() == ""
        for side in ("left", "top", "width", "height")
    )


def test_switching_provider_changes_options_and_prices(page, studio_url):
    sign_in(page, studio_url)
    page.get_by_label("Resolution").select_option("1080p")
    page.get_by_label("Duration").select_option("4")
    expect(page.locator("#estimate")).to_contain_text("4 s at 1080p")
    prices = page.get_by_role("table", name="The same clip at each provider")
    expect(prices.locator("tr[data-provider=fal]")).to_contain_text("$0.64")  # as 8 s there

    # fal makes 1080p only at 8 s: the switch moves the duration and says what it costs.
    page.get_by_label("Provider", exact=True).select_option("fal")
    expect(page.get_by_label("Duration")).to_have_value("8")
    expect(page.get_by_test_id("estimate")).to_have_text("$0.64")
    expect(prices.locator("tr.current")).to_contain_text("fal.ai")
    expect(page.locator(".problem")).to_have_count(0)

    # Asking for 4 s anyway is explained, with a one-click fix.
    page.get_by_label("Duration").select_option("4")
    problem = page.locator(".problem")
    expect(problem).to_contain_text("fal.ai makes 1080p clips only 8 s long")
    problem.get_by_role("button", name="Use 8 s").click()
    expect(page.get_by_label("Duration")).to_have_value("8")
    expect(page.locator(".problem")).to_have_count(0)

    # Oxen cannot do first and last frame: the switch moves the mode, and the option is off.
    page.get_by_label("Mode").select_option("first_last")
    page.get_by_label("Provider", exact=True).select_option("oxen")
    expect(page.get_by_label("Mode")).to_have_value("image")
    expect(page.get_by_label("Mode").locator("option[value=first_last]")).to_be_disabled()
    expect(page.get_by_test_id("estimate")).to_have_text("$0.80")

    # Gemini takes no seed: typed anyway, it is explained and cleared in one click.
    page.get_by_label("Provider", exact=True).select_option("gemini")
    page.get_by_label("Seed").fill("42")
    page.get_by_label("Seed").dispatch_event("change")
    expect(page.locator(".problem")).to_contain_text("takes no seed")
    page.get_by_role("button", name="Clear the seed").click()
    expect(page.get_by_label("Seed")).to_have_value("")
    expect(page.locator(".problem")).to_have_count(0)


@pytest.mark.parametrize("provider", ["fal", "gemini", "aimlapi", "oxen"])
def test_each_hosted_provider_makes_a_clip_from_the_browser(page, studio_url, tmp_path, provider):
    sign_in(page, studio_url)
    image = tmp_path / "coast.jpg"
    image.write_bytes(photo(1280, 720))
    page.get_by_label("Image", exact=True).set_input_files(image)
    expect(page.locator("#image-slot img.still")).to_be_visible()
    page.get_by_label("Prompt", exact=True).fill(f"Pan right along the coast ({provider})")
    page.get_by_label("Provider", exact=True).select_option(provider)
    expect(page.locator("tr.current")).to_have_attribute("data-provider", provider)
    page.get_by_label("Duration").select_option("4")
    expect(page.locator("#estimate")).to_contain_text("4 s at 720p")
    page.get_by_role("button", name="Generate clip").click()
    expect(page.get_by_test_id("status")).to_have_text("Done", timeout=90_000)
    duration = page.locator("video").evaluate(
        """v => new Promise(resolve => v.readyState >= 1 ? resolve(v.duration)
            : v.addEventListener('loadedmetadata', () => resolve(v.duration)))"""
    )
    assert abs(duration - 4) <= 1 / 24
    page.get_by_role("link", name="Gallery").click()
    expect(page.locator(".gallery")).to_contain_text(f"({provider})")


def admin_sign_in(page, studio_url):
    page.goto(f"{studio_url}/admin/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_admin_lowers_a_budget_and_the_next_submit_is_refused(page, studio_url):
    sign_in(page, studio_url)
    page.get_by_label("Mode").select_option("text")
    page.get_by_label("Prompt", exact=True).fill("A quiet harbour, free")
    page.get_by_label("Duration").select_option("4")
    page.get_by_role("button", name="Generate clip").click()
    expect(page.get_by_test_id("status")).to_be_visible()
    page.context.clear_cookies()

    admin_sign_in(page, studio_url)
    page.goto(f"{studio_url}/admin/studio/creator/?q=demo")
    page.locator("#result_list tbody a").first.click()
    expect(page.locator(".field-this_month")).to_contain_text("of $10.00")
    page.get_by_role("spinbutton", name="Monthly budget").fill("0.10")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    page.context.clear_cookies()

    sign_in(page, studio_url)
    expect(page.get_by_test_id("meter")).to_contain_text("of $0.10")
    page.get_by_label("Mode").select_option("text")
    page.get_by_label("Prompt", exact=True).fill("A storm over the lighthouse")
    page.get_by_label("Provider", exact=True).select_option("fal")
    page.get_by_label("Duration").select_option("8")
    page.get_by_role("button", name="Generate clip").click()
    expect(page.locator(".errors")).to_contain_text(
        "This clip costs $0.40; your monthly budget is $0.10"
    )
    page.context.clear_cookies()

    # Put it back for whoever runs next against this server.
    admin_sign_in(page, studio_url)
    page.goto(f"{studio_url}/admin/studio/creator/?q=demo")
    page.locator("#result_list tbody a").first.click()
    page.get_by_role("spinbutton", name="Monthly budget").fill("")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")


def test_a_batch_of_variations_shows_its_total_then_makes_every_clip(page, studio_url):
    sign_in(page, studio_url)
    page.get_by_label("Mode").select_option("text")
    page.get_by_label("Prompt", exact=True).fill("Slow push in on a quiet harbour")
    page.get_by_label("Provider", exact=True).select_option("fal")
    page.get_by_label("Duration").select_option("8")
    page.get_by_text("Variations: several clips at once").click()
    page.get_by_label("Clips per prompt").fill("2")
    page.get_by_label("Clips per prompt").blur()
    expect(page.get_by_test_id("batch-total")).to_have_text("$0.80")
    expect(page.get_by_test_id("meter")).to_contain_text("these 2 clips: $0.80")
    # Back to the free renderer for the clips themselves; the total follows.
    page.get_by_label("Provider", exact=True).select_option("local")
    expect(page.get_by_test_id("batch-total")).to_have_text("$0.00")
    page.get_by_role("button", name="Generate clip").click()
    expect(page.get_by_role("heading", name="Batch of 2 clips")).to_be_visible()
    rows = page.get_by_test_id("batch-job")
    expect(rows).to_have_count(2)
    for i in range(2):
        expect(rows.nth(i).locator(".badge")).to_have_text("Done", timeout=90_000)
    expect(page.get_by_role("link", name="Open clip")).to_have_count(2)


def test_admin_grants_extra_budget_from_the_creators_list(page, studio_url):
    # To the admin's own account: the demo creator's budget stays as other tests expect it.
    admin_sign_in(page, studio_url)
    page.get_by_role("link", name="Creators").click()
    boss = page.locator("#result_list tbody tr", has_text="boss")
    expect(boss).to_contain_text("$0.00 of $10.00")
    boss.get_by_role("checkbox").check()
    page.locator("select[name='action']").select_option(label="Grant extra budget this month")
    page.get_by_role("button", name="Go").click()
    expect(page.get_by_role("heading", name="Grant extra budget")).to_be_visible()
    page.get_by_label("Extra budget (USD)").fill("0")
    page.get_by_role("button", name="Grant").click()
    expect(page.locator(".errorlist")).to_contain_text("An extra budget must be at least $0.01.")
    page.get_by_label("Extra budget (USD)").fill("2.50")
    page.get_by_role("button", name="Grant").click()
    expect(page.locator(".messagelist")).to_contain_text("Granted boss $2.50 extra")
    expect(boss).to_contain_text("$0.00 of $12.50")

    page.get_by_role("link", name="Near a limit (80% or more)").click()
    expect(page.locator("#result_list tbody tr", has_text="boss")).to_have_count(0)


def test_admin_retries_a_failed_job(page, studio_url):
    sign_in(page, studio_url)
    page.get_by_label("Mode").select_option("text")
    page.get_by_label("Prompt", exact=True).fill("A refused storm [fail:policy@submit]")
    page.get_by_label("Provider", exact=True).select_option("fal")
    page.get_by_label("Duration").select_option("8")
    page.get_by_role("button", name="Generate clip").click()
    expect(page.get_by_test_id("status")).to_have_text("Failed", timeout=30_000)
    page.context.clear_cookies()

    admin_sign_in(page, studio_url)
    page.goto(f"{studio_url}/admin/studio/job/?q=refused+storm")
    page.get_by_role("link", name="Content policy").click()
    failed = page.locator("#result_list tbody tr").first
    expect(failed).to_contain_text("Not charged")
    failed.get_by_role("checkbox").check()
    page.locator("select[name='action']").select_option(
        label="Retry the selected failed or cancelled jobs"
    )
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".messagelist")).to_contain_text("was retried as job #")

    page.goto(f"{studio_url}/admin/studio/ledgerentry/?q=demo")
    expect(page.locator("#result_list")).to_contain_text("Reserved")


def test_admin_edits_a_price_in_the_price_list(page, studio_url):
    admin_sign_in(page, studio_url)
    page.get_by_role("link", name="Prices").click()
    filters = page.locator("#changelist-filter")
    filters.get_by_role("link", name="oxen").click()
    filters.get_by_role("link", name="First and last frame").click()
    filters.get_by_role("link", name="1080p").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)  # with and without audio
    price = rows.first.locator("input[name$='usd_per_second']")
    was = price.input_value()
    price.fill("0.1234")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messagelist")).to_contain_text("1 price was changed successfully.")
    expect(price).to_have_value("0.1234")
    price.fill(was)
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messagelist")).to_contain_text("1 price was changed successfully.")


def test_admin_reads_the_spending_dashboard(page, studio_url):
    from calendar import monthrange

    from studio import quotas

    month = quotas.this_month()
    admin_sign_in(page, studio_url)
    page.get_by_role("link", name="Spending dashboard").click()
    expect(page.get_by_role("heading", name=f"Spending in {month:%B %Y}")).to_be_visible()
    chart = page.get_by_role("img", name=re.compile("Spend per day"))
    expect(chart).to_be_visible()
    expect(chart.locator("rect.bar")).to_have_count(monthrange(month.year, month.month)[1])
    page.get_by_text("Spend per day as figures").click()
    expect(page.locator("#days")).to_be_visible()

    page.get_by_label("Month").fill("2024-02")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="Spending in February 2024")).to_be_visible()
    expect(chart.locator("rect.bar")).to_have_count(29)
    expect(page.get_by_test_id("headline")).to_contain_text("Spent in February 2024: $0.00")

    page.goto(f"{studio_url}/admin/studio/dashboard/?month=2026-13")
    expect(page.locator(".errornote")).to_contain_text("Write the month as YYYY-MM")
    expect(chart).to_be_visible()
