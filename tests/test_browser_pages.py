"""Every page a creator sees, at a desktop and a phone width: checked by axe-core (no serious
or critical violation) and photographed into var/screenshots/ to be looked at; and the whole
way from sign-in to a finished clip with the keyboard alone."""

import pytest
from playwright.sync_api import expect

from tests.browser import (
    DESKTOP,
    PHONE,
    assert_accessible,
    choose,
    screenshot,
    sign_in,
    watch_csp,
)
from tests.factories import photo

pytestmark = pytest.mark.browser


def look(page, name: str) -> None:
    assert_accessible(page, name)
    screenshot(page, name)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_page_is_accessible_and_photographed(browser, studio_url, tmp_path, viewport):
    context = browser.new_context(viewport=viewport)
    violations = watch_csp(context)
    page = context.new_page()
    page.goto(studio_url)
    look(page, "sign-in")
    sign_in(page, studio_url)
    look(page, "create")

    image = tmp_path / "harbour.jpg"
    image.write_bytes(photo(1600, 1200))
    page.get_by_label("Image", exact=True).set_input_files(image)
    expect(page.locator(".crop-frame")).to_be_visible()
    page.get_by_label("Prompt", exact=True).fill("Slow push in on the harbour at dawn")
    choose(page, "provider", "fal")
    choose(page, "resolution", "1080p")
    choose(page, "duration", "4")
    expect(page.locator(".problem")).to_be_visible()
    look(page, "create-with-a-problem")
    page.get_by_role("button", name="Use 8 s").click()
    expect(page.get_by_test_id("estimate")).to_have_text("$0.64")
    choose(page, "resolution", "720p")
    expect(page.get_by_test_id("estimate")).to_have_text("$0.40")

    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_test_id("status")).to_be_visible()
    look(page, "job-running")
    expect(page.get_by_test_id("status")).to_have_text("Done", timeout=90_000)
    look(page, "job-done")
    page.get_by_role("link", name="Open clip").click()
    look(page, "clip")
    page.get_by_role("link", name="Library").click()
    look(page, "library")

    page.get_by_role("link", name="Create").click()
    choose(page, "mode", "text")
    page.get_by_label("Prompt", exact=True).fill("Rain on a tin roof, two takes")
    page.get_by_text("Variations: several clips at once").click()
    page.get_by_label("Clips per prompt").fill("2")
    page.get_by_label("Clips per prompt").blur()
    expect(page.get_by_test_id("batch-total")).to_have_text("$0.00")
    page.get_by_role("button", name="Generate 2 clips").click()
    expect(page.get_by_role("heading", name="Batch of 2 clips")).to_be_visible()
    look(page, "batch")

    page.expected_errors = ["HTTP 404"]
    page.goto(f"{studio_url}/clips/999999/")
    look(page, "not-found")
    context.close()
    assert violations == []


def tab_to(page, selector: str, *, limit: int = 120) -> None:
    """Press Tab until `selector` has focus, as a keyboard user would (fails past `limit`)."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement?.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_the_keyboard_alone_goes_from_sign_in_to_a_finished_clip(page, studio_url, tmp_path):
    page.goto(studio_url)
    tab_to(page, "input[name=username]")
    page.keyboard.type("demo")
    page.keyboard.press("Tab")
    page.keyboard.type("studio-demo")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="New clip")).to_be_visible()

    # The skip link comes first and jumps over the navigation.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

    # The drop zone's file input opens the file chooser from the keyboard.
    image = tmp_path / "four-by-three.jpg"
    image.write_bytes(photo(1600, 1200))
    tab_to(page, "input[type=file][name=image]")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(image)
    expect(page.locator(".crop-frame")).to_be_visible()

    # The crop frame moves with the arrow keys.
    tab_to(page, ".crop-frame")
    top = int(page.locator("[name=crop_top]").input_value())
    page.keyboard.press("ArrowDown")
    expect(page.locator("[name=crop_top]")).to_have_value(str(top + 16))

    tab_to(page, "textarea[name=prompt]")
    page.keyboard.type("Slow push in on the harbour, by keyboard")
    # Radio groups: Tab into the group, arrows to choose.
    tab_to(page, "input[name=duration]:checked")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("input[name=duration]:checked")).to_have_value("4")
    expect(page.locator("#action-bar")).to_contain_text("4 s at 720p")
    tab_to(page, "#generate")
    page.keyboard.press("Enter")

    expect(page.get_by_test_id("status")).to_have_text("Done", timeout=90_000)
    tab_to(page, "video")
    page.keyboard.press("Space")  # plays
    page.wait_for_function("() => document.querySelector('video').currentTime > 0")
    expect(
        page.get_by_role("heading", name="Slow push in on the harbour, by keyboard")
    ).to_be_visible()
    expect(page).to_have_title("✓ Clip ready · Studio")
