"""A job's life on its page and a batch's in Studio's queue, in a real browser: the timeline,
the charge and seed as they change (bugs 5 and 6), the tab title and the browser's
notifications, and a batch bigger than the running-jobs limit (bug 4)."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser import choose, sign_in

pytestmark = pytest.mark.browser

# Records what the page asks of the browser's Notification API, which still does the work.
NOTIFICATIONS_SPY = """
window.notified = []; window.askedPermission = 0;
const Real = window.Notification;
window.Notification = class {
  constructor(title, options) { window.notified.push([title, options && options.body]); }
  static get permission() { return Real.permission; }
  static requestPermission() { window.askedPermission += 1; return Real.requestPermission(); }
};
"""


def text_clip(page, prompt: str, *, provider: str = "local") -> None:
    choose(page, "mode", "text")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    choose(page, "provider", provider)
    choose(page, "duration", "4")
    expect(page.locator("#action-bar")).to_contain_text("4 s at 720p")


def test_the_job_page_follows_the_job_live_to_the_end(browser, studio_url):
    context = browser.new_context()
    context.grant_permissions(["notifications"])
    context.add_init_script(NOTIFICATIONS_SPY)
    page = context.new_page()
    sign_in(page, studio_url)
    text_clip(page, "A ferry crossing at dusk, followed live", provider="fal")
    page.get_by_role("button", name="Generate").click()

    # Titled by its prompt; the recipe shows the seed Studio picked (bug 6).
    heading = page.get_by_role("heading", name="A ferry crossing at dusk, followed live")
    expect(heading).to_be_visible()
    expect(page).to_have_title("A ferry crossing at dusk, followed live · Studio")
    expect(page.get_by_test_id("seed")).to_have_text(re.compile(r"^\d+ \(picked by Studio\)$"))
    expect(page.get_by_test_id("charge")).to_contain_text("reserved until the clip is made")
    page.evaluate("window.studioNoReload = true")

    # The timeline shows the way (each stage on its own: tests/test_views.py); at the end the
    # clip takes its place, and charge and status changed without a reload.
    expect(page.get_by_role("list", name="Where the job is")).to_be_attached()
    expect(page.get_by_test_id("status")).to_have_text("Done", timeout=90_000)
    expect(page.get_by_role("list", name="Where the job is")).to_have_count(0)
    expect(page.locator("video")).to_be_visible()
    expect(page.get_by_test_id("charge")).to_have_text("$0.20 · charged")  # bug 5
    assert page.evaluate("window.studioNoReload") is True

    # The tab and the browser say so; the page stops asking.
    expect(page).to_have_title("✓ Clip ready · Studio")
    assert page.evaluate("window.notified") == [
        ["✓ Clip ready", "A ferry crossing at dusk, followed live"]
    ]
    assert page.evaluate("window.askedPermission") == 0  # allowed already: never asked
    polls = []
    page.on("request", lambda request: "/jobs/" in request.url and polls.append(request.url))
    page.wait_for_timeout(2500)
    assert polls == []
    context.close()


def test_notifications_are_asked_for_from_the_button_never_on_load(browser, studio_url):
    context = browser.new_context()
    context.add_init_script(NOTIFICATIONS_SPY)
    page = context.new_page()
    sign_in(page, studio_url)
    text_clip(page, "A slow storm, asked once", provider="fal")
    page.get_by_role("button", name="Generate").click()
    button = page.get_by_role("button", name="Tell me when it's ready")
    expect(button).to_be_visible()
    assert page.evaluate("window.askedPermission") == 0
    button.click()
    expect(button).to_be_hidden()
    assert page.evaluate("window.askedPermission") == 1
    # Headless Chromium refuses it, and the page says what that means.
    expect(page.locator("#notify-state")).to_have_text(
        "Notifications are off for this site in your browser."
    )
    expect(page.get_by_test_id("status")).to_have_text("Done", timeout=90_000)
    expect(page).to_have_title("✓ Clip ready · Studio")
    assert page.evaluate("window.notified") == []
    context.close()


def test_a_provider_without_seeds_says_so(page, studio_url):
    """Bug 6, the other half."""
    sign_in(page, studio_url)
    text_clip(page, "Rain on the harbour, no seed", provider="gemini")
    page.get_by_text("More: negative prompt, seed").click()
    expect(page.locator("#seed-note")).to_have_text(
        "Gemini API takes no seed, so each clip differs."
    )
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_test_id("seed")).to_have_text("none: Gemini API takes no seed")


def test_a_batch_bigger_than_the_running_limit_waits_its_turn_and_is_all_made(page, studio_url):
    """Bug 4: six clips with the default limit of three running could never be submitted."""
    sign_in(page, studio_url)
    text_clip(page, "Waves on the breakwater, six takes")
    page.get_by_text("Variations: several clips at once").click()
    page.get_by_label("Clips per prompt").fill("6")
    page.get_by_label("Clips per prompt").blur()
    expect(page.get_by_test_id("batch-total")).to_have_text("$0.00")
    expect(page.get_by_test_id("blocked")).to_have_count(0)
    page.get_by_role("button", name="Generate 6 clips").click()

    expect(page.get_by_role("heading", name="Batch of 6 clips")).to_be_visible()
    rows = page.get_by_test_id("batch-job")
    expect(rows).to_have_count(6)
    # Three run; the others wait in Studio's queue, in order.
    waiting = rows.filter(has_text=re.compile(r"Waiting for a free slot\s+\d(st|nd|rd|th) in line"))
    expect(waiting).not_to_have_count(0)
    for i in range(6):
        expect(rows.nth(i).locator(".badge")).to_have_text("Done", timeout=120_000)
    expect(page).to_have_title("✓ 6 clips ready · Studio")
    expect(page.get_by_role("link", name="Open clip")).to_have_count(6)
