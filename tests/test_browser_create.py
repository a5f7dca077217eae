"""The create page in a real browser: the bugs creators met with the default settings
(issue 14, bugs 1, 3, 7, 8 and 10; bugs 2 and 9 are in test_browser.py), the drop zone,
camera moves and recent prompts."""

import pytest
from playwright.sync_api import expect

from tests.browser import choose, chosen, sign_in
from tests.factories import photo

pytestmark = pytest.mark.browser


def still(tmp_path, name: str, width: int, height: int):
    path = tmp_path / name
    path.write_bytes(photo(width, height))
    return path


def give(page, label: str, path) -> None:
    """Choose `path` for the still labelled `label` ("Image", "First frame", "Last frame")."""
    page.get_by_label(label, exact=True).set_input_files(path)


def broken_images(page) -> list[str]:
    """Images the creator can see that did not load (a broken-image icon)."""
    return page.evaluate(
        """() => [...document.images]
            .filter(img => img.checkVisibility() && img.complete && img.naturalWidth === 0)
            .map(img => img.alt || img.src)"""
    )


def test_no_broken_padded_image_under_a_still_or_a_last_frame(page, studio_url, tmp_path):
    """Bug 1: `img.padded{display:block}` overrode `hidden`."""
    sign_in(page, studio_url)
    choose(page, "mode", "first_last")
    page.get_by_label("First frame", exact=True).set_input_files(
        still(tmp_path, "a.jpg", 1600, 1200)
    )
    expect(page.locator("#image-slot img.still")).to_be_visible()
    expect(page.locator(".crop-frame")).to_be_visible()  # 4:3 in a 16:9 clip: a crop
    page.get_by_label("Last frame", exact=True).set_input_files(
        still(tmp_path, "b.jpg", 1600, 1200)
    )
    expect(page.locator("#last_frame-slot img.still")).to_be_visible()
    expect(page.locator("#image-slot img.padded")).to_be_hidden()
    expect(page.locator("#last_frame-slot img.padded")).to_be_hidden()
    assert broken_images(page) == []
    # Padding shows the padded image, loaded, in place of the crop.
    choose(page, "framing", "pad")
    padded = page.locator("#image-slot img.padded")
    expect(padded).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=padded.element_handle()
    )
    assert broken_images(page) == []


def test_one_price_for_one_clip_and_what_a_provider_cannot_make_is_greyed(page, studio_url):
    """Bug 3: the estimate and the comparison gave the same clip two prices, and priced
    Oxen for a first-and-last-frame clip it cannot make."""
    sign_in(page, studio_url)
    choose(page, "mode", "first_last")
    choose(page, "provider", "fal")
    choose(page, "duration", "8")
    estimate = page.get_by_test_id("estimate")
    expect(estimate).to_have_text("$0.40")
    expect(page.locator("#price-fal")).to_have_text("$0.40")
    oxen = page.locator(".provider-card[data-provider=oxen]")
    expect(oxen.locator(".provider-note.cannot")).to_contain_text(
        "cannot make first and last frame clips"
    )
    expect(oxen.locator(".amount")).to_have_count(0)
    # At 4 s fal cannot make it either: no price anywhere for fal, and the reason instead.
    choose(page, "duration", "4")
    expect(page.locator("#price-fal")).to_contain_text("only 8 s long")
    expect(estimate).to_have_count(0)
    expect(page.locator("#action-bar")).to_contain_text("Fix the choices fal.ai can't make")
    # Every priced card shows the price of exactly this clip: the local renderer's 4 s.
    choose(page, "provider", "local")
    expect(page.get_by_test_id("estimate")).to_have_text(
        page.locator("#price-local .amount").inner_text()
    )


def test_an_uploaded_still_shows_itself_not_no_file_chosen(page, studio_url, tmp_path):
    """Bug 7: the native file input said "No file chosen" beside an uploaded still."""
    sign_in(page, studio_url)
    give(page, "Image", still(tmp_path, "c.jpg", 1280, 720))
    expect(page.get_by_test_id("image-size")).to_have_text("1280×720 px")
    field = page.locator("#field-image")
    expect(field.get_by_text("Replace image")).to_be_visible()
    expect(field.get_by_text("Drop an image here")).to_be_hidden()
    box = page.get_by_label("Image", exact=True).bounding_box()
    assert box["width"] <= 1 and box["height"] <= 1  # the native control is never drawn
    # The still is sent by id from now on; the file input is empty, never sent again.
    assert page.get_by_label("Image", exact=True).evaluate("input => input.files.length") == 0
    assert page.locator("[name=image_id]").input_value().isdigit()


def test_a_last_frame_of_another_size_is_refused_at_upload(page, studio_url, tmp_path):
    """Bug 8: said only at Generate before."""
    sign_in(page, studio_url)
    choose(page, "mode", "first_last")
    page.get_by_label("First frame", exact=True).set_input_files(
        still(tmp_path, "d.jpg", 1280, 720)
    )
    expect(page.locator("#image-slot img.still")).to_be_visible()
    give(page, "Last frame", still(tmp_path, "e.jpg", 720, 1280))
    expect(page.locator("#last_frame-slot .error")).to_have_text(
        "The last frame is 720×1280 but the first frame is 1280×720; "
        "both frames must be the same size."
    )
    expect(page.locator("#last_frame-slot img.still")).to_have_count(0)
    # The right size is taken.
    give(page, "Last frame", still(tmp_path, "f.jpg", 1280, 720))
    expect(page.locator("#last_frame-slot img.still")).to_be_visible()
    expect(page.locator("#last_frame-slot .error")).to_have_count(0)


def test_after_a_form_error_the_first_error_has_focus_in_view(page, studio_url):
    """Bug 10: the page reloaded at the top with the error below the fold."""
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, studio_url)
    choose(page, "mode", "text")
    page.get_by_role("button", name="Generate").click()
    error = page.locator("#field-prompt .error")
    expect(error).to_contain_text("Write a prompt")
    prompt = page.get_by_label("Prompt", exact=True)
    expect(prompt).to_be_focused()
    expect(prompt).to_be_in_viewport()
    expect(chosen(page, "mode")).to_have_value("text")  # and nothing chosen was lost


def test_camera_moves_write_one_phrase_and_recent_prompts_come_back(page, studio_url):
    sign_in(page, studio_url)
    choose(page, "mode", "text")
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("A lighthouse at dusk.")
    page.get_by_role("button", name="Orbit").click()
    expect(prompt).to_have_value("A lighthouse at dusk. Camera orbits around the subject.")
    expect(page.get_by_role("button", name="Orbit")).to_have_attribute("aria-pressed", "true")
    # One move at a time: another replaces it; pressing it again takes it out.
    page.get_by_role("button", name="Handheld").click()
    expect(prompt).to_have_value("A lighthouse at dusk. Handheld camera, gentle sway.")
    expect(page.get_by_role("button", name="Orbit")).to_have_attribute("aria-pressed", "false")
    page.get_by_role("button", name="Handheld").click()
    expect(prompt).to_have_value("A lighthouse at dusk.")
    page.get_by_role("button", name="Static").click()
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_test_id("status")).to_be_visible()

    page.get_by_role("link", name="Create").click()
    page.get_by_text("Recent prompts").click()
    page.get_by_role("button", name="A lighthouse at dusk. Static camera, locked off.").click()
    expect(prompt).to_have_value("A lighthouse at dusk. Static camera, locked off.")
    expect(page.get_by_role("button", name="Static", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )


# A PNG the page itself draws, as a DataTransfer holding it (what a paste or a drop carries).
DRAWN_FILE = """async ([width, height]) => {
    const canvas = Object.assign(document.createElement("canvas"), {width, height});
    const g = canvas.getContext("2d");
    g.fillStyle = "#3060c0"; g.fillRect(0, 0, width, height);
    g.fillStyle = "#f0c020"; g.fillRect(width / 3, height / 3, width / 4, height / 4);
    const blob = await new Promise(resolve => canvas.toBlob(resolve, "image/png"));
    const data = new DataTransfer();
    data.items.add(new File([blob], "drawn.png", {type: "image/png"}));
    return data;
}"""


def test_a_pasted_image_becomes_the_still(page, studio_url):
    sign_in(page, studio_url)
    data = page.evaluate_handle(DRAWN_FILE, [1280, 720])
    page.evaluate(
        """data => document.dispatchEvent(
            new ClipboardEvent("paste", {clipboardData: data, bubbles: true}))""",
        data,
    )
    expect(page.get_by_test_id("image-size")).to_have_text("1280×720 px")


def test_a_dropped_image_becomes_the_still(page, studio_url):
    sign_in(page, studio_url)
    data = page.evaluate_handle(DRAWN_FILE, [720, 1280])
    page.evaluate(
        """data => {
            const zone = document.querySelector(".dropzone[data-role=image]");
            const event = (type) => new DragEvent(type, {dataTransfer: data, bubbles: true});
            zone.dispatchEvent(event("dragover"));
            zone.dispatchEvent(event("drop"));
        }""",
        data,
    )
    expect(page.get_by_test_id("image-size")).to_have_text("720×1280 px")
    # The aspect tiles show the still framed in each aspect.
    expect(page.locator(".aspect-tile[data-aspect='9:16'] img.frame-still")).to_be_visible()
