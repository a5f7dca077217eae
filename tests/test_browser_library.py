"""The library in a real browser: search and filters in the URL (and the back button), the
tray of clips that didn't make it with its retries, favourites, selection with Shift-click,
the ZIP export, hover previews, and a clip's page with its actions. axe-core and
screenshots at both widths for each new page.

The demo creator is shared by every browser test of the session, so each test finds its own
clips by a word only its prompts contain."""

import io
import json
import re
import secrets
import zipfile

import pytest
from playwright.sync_api import expect

from tests.browser import DESKTOP, PHONE, assert_accessible, choose, screenshot, sign_in

pytestmark = pytest.mark.browser


def look(page, name: str) -> None:
    assert_accessible(page, name)
    screenshot(page, name)


def make_batch(page, studio_url, prompts: list[str], *, provider: str = "local") -> None:
    """Several text clips from one submit (variations: one prompt a line), made to the end."""
    page.goto(f"{studio_url}/")
    choose(page, "mode", "text")
    page.get_by_label("Prompt", exact=True).fill(prompts[0])
    choose(page, "provider", provider)
    choose(page, "duration", "4")
    page.get_by_text("Variations: several clips at once").click()
    page.get_by_label("More prompts").fill("\n".join(prompts[1:]))
    page.get_by_label("More prompts").blur()
    page.get_by_role("button", name=f"Generate {len(prompts)} clips").click()
    rows = page.get_by_test_id("batch-job")
    expect(rows).to_have_count(len(prompts))
    for i in range(len(prompts)):
        expect(rows.nth(i).locator(".badge")).to_have_text("Done", timeout=120_000)


@pytest.fixture(scope="module")
def three_clips(browser, studio_url):
    """Three finished clips of the demo creator, found by `word`."""
    word = "lib" + secrets.token_hex(3)
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, studio_url)
    make_batch(
        page,
        studio_url,
        [f"Harbour at dawn {word} one", f"Lighthouse push in {word} two",
         f"Gulls over the quay {word} three"],
    )  # fmt: skip
    context.close()
    return word


def test_search_filters_favourites_and_the_back_button(page, studio_url, three_clips):
    word = three_clips
    sign_in(page, studio_url)
    page.get_by_role("link", name="Library").click()
    page.get_by_label("Search prompts").fill(word)
    tiles = page.get_by_test_id("tile")
    expect(tiles).to_have_count(3)
    expect(page).to_have_url(re.compile(rf"q={word}"))
    # Newest first: the batch's last clip is made last.
    expect(tiles.first).to_contain_text("three")

    page.get_by_label("Search prompts").fill(f"{word} lighthouse")
    expect(tiles).to_have_count(1)
    tiles.first.get_by_test_id("star").click()
    expect(tiles.first.get_by_test_id("star")).to_have_attribute("aria-pressed", "true")

    page.get_by_label("Search prompts").fill(word)
    expect(tiles).to_have_count(3)
    page.get_by_label("★ Favourites").check()
    expect(tiles).to_have_count(1)
    expect(tiles.first).to_contain_text("Lighthouse")
    expect(page).to_have_url(re.compile(r"favourites=on"))
    # A bookmark of the filtered view shows the same.
    page.goto(page.url)
    expect(page.get_by_test_id("tile")).to_have_count(1)
    page.go_back()
    expect(page.get_by_label("★ Favourites")).not_to_be_checked()
    expect(page.get_by_test_id("tile")).to_have_count(3)

    page.get_by_label("Aspect").select_option("9:16")
    expect(page.get_by_text("No clips match these filters.")).to_be_visible()
    page.get_by_label("Aspect").select_option("16:9")
    page.get_by_label("Sound").select_option("with")
    expect(page.get_by_test_id("tile")).to_have_count(3)  # made with sound
    page.get_by_label("Sound").select_option("without")
    expect(page.get_by_text("No clips match these filters.")).to_be_visible()
    page.locator("select[name=show]").select_option("failed")
    expect(page.get_by_text("No clips match these filters.")).to_be_visible()


def test_shift_click_selects_a_range_and_export_zips_it(page, studio_url, three_clips, tmp_path):
    word = three_clips
    sign_in(page, studio_url)
    page.goto(f"{studio_url}/library/?q={word}")
    picks = page.locator(".library .pick")
    expect(picks).to_have_count(3)
    export = page.get_by_role("button", name="Export ZIP")
    expect(export).to_be_disabled()
    picks.nth(0).click()
    picks.nth(2).click(modifiers=["Shift"])
    expect(page.get_by_test_id("selected-count")).to_have_text("3 clips selected")
    for i in range(3):
        expect(picks.nth(i)).to_be_checked()
    picks.nth(1).click()
    expect(page.get_by_test_id("selected-count")).to_have_text("2 clips selected")
    picks.nth(1).click()

    with page.expect_download() as download:
        export.click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name.endswith(".zip")
    archive = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    rows = json.loads(archive.read("recipe.json"))["clips"]
    assert sorted(row["prompt"].split()[-1] for row in rows) == ["one", "three", "two"]
    for row in rows:
        assert row["file"].endswith(f"-{row['job']}.mp4") and word in row["file"]
        assert archive.read(row["file"])[4:8] == b"ftyp"
        assert (row["duration_requested"], row["provider"], row["mode"]) == (4, "local", "text")
    csv_lines = archive.read("recipe.csv").decode().splitlines()
    assert len(csv_lines) == 4 and csv_lines[0].startswith("clip,job,file,")


def test_hover_and_focus_play_a_muted_preview(page, studio_url, three_clips):
    sign_in(page, studio_url)
    page.goto(f"{studio_url}/library/?q={three_clips}")
    media = page.locator(".tile-media").first
    media.hover()
    video = media.locator("video")
    expect(video).to_have_count(1)
    page.wait_for_function(
        "v => v.muted && v.currentTime > 0.2", arg=video.element_handle(), timeout=10_000
    )
    page.mouse.move(0, 0)
    expect(media.locator("video")).to_have_count(0)
    media.focus()
    expect(media.locator("video")).to_have_count(1)
    page.keyboard.press("Tab")
    expect(media.locator("video")).to_have_count(0)


def test_the_tray_says_why_and_a_retry_is_a_new_reserved_job(page, studio_url):
    word = "tray" + secrets.token_hex(3)
    sign_in(page, studio_url)
    choose(page, "mode", "text")
    page.get_by_label("Prompt", exact=True).fill(f"A refused storm {word} [fail:policy@submit]")
    choose(page, "provider", "fal")
    choose(page, "duration", "8")
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_test_id("status")).to_have_text("Failed", timeout=30_000)

    page.get_by_role("link", name="Library").click()
    tray = page.get_by_test_id("tray")
    expect(tray).to_contain_text("didn't make it")
    tray.locator("summary").click()
    row = tray.get_by_test_id("tray-job").filter(has_text=word)
    expect(row.get_by_test_id("tray-reason")).to_be_visible()
    expect(row.get_by_test_id("tray-charge")).to_have_text("Not charged")
    expect(row.get_by_role("button", name="New seed")).to_be_visible()
    expect(row.get_by_role("button", name="Try at Local renderer")).to_be_visible()
    for viewport, name in ((DESKTOP, "library-tray"), (PHONE, "library-tray")):
        page.set_viewport_size(viewport)
        look(page, name)
    page.set_viewport_size(DESKTOP)

    row.get_by_role("button", name="Try at Local renderer").click()
    # The retry is a new job, through the same form and reservation, on its own page.
    expect(page.get_by_role("heading", name=re.compile(word))).to_be_visible()
    expect(page.get_by_test_id("provider")).to_contain_text("Local renderer")
    expect(page.get_by_test_id("status")).to_have_text("Done", timeout=90_000)
    page.get_by_role("link", name="Library").click()
    expect(page.get_by_test_id("tray-job").filter(has_text=word)).to_have_count(0)

    # Dismiss all puts the rest away.
    if page.get_by_test_id("tray").count():
        page.get_by_role("button", name="Dismiss all").click()
    expect(page.get_by_test_id("tray")).to_have_count(0)


def test_a_clips_page_has_its_recipe_and_its_actions(page, studio_url, three_clips):
    word = three_clips
    sign_in(page, studio_url)
    page.goto(f"{studio_url}/library/?q={word}+gulls")
    page.get_by_test_id("tile").first.locator(".tile-prompt").click()
    heading = page.get_by_role("heading", name=re.compile(f"Gulls over the quay {word}"))
    expect(heading).to_be_visible()
    for label in ("Prompt", "Mode", "Duration", "Resolution", "Aspect", "Audio", "Seed",
                  "Provider", "Cost", "Request id", "Started", "Finished"):  # fmt: skip
        expect(page.locator("dt", has_text=re.compile(f"^{label}$")).first).to_be_visible()
    download = page.get_by_test_id("download")
    expect(download).to_have_attribute(
        "download", re.compile(rf"^gulls-over-the-quay-{word}-three-\d+\.mp4$")
    )
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        look(page, "clip-recipe")
    page.set_viewport_size(DESKTOP)
    with page.expect_download() as got:
        download.click()
    assert got.value.suggested_filename.startswith(f"gulls-over-the-quay-{word}-three-")

    clip_page = page.url
    page.get_by_role("link", name="Use these settings").click()
    prompt = page.get_by_label("Prompt", exact=True)
    expect(prompt).to_have_value(f"Gulls over the quay {word} three")
    expect(page.locator("input[name=mode]:checked")).to_have_value("text")
    expect(page.locator("input[name=duration]:checked")).to_have_value("4")
    expect(page.locator("details.variations")).not_to_have_attribute("open", "")

    page.goto(clip_page)
    page.get_by_role("link", name="Make variations").click()
    expect(page.locator("details.variations")).to_have_attribute("open", "")

    page.goto(clip_page)
    page.get_by_role("link", name="Continue from here").click()
    expect(page.locator("input[name=mode]:checked")).to_have_value("image")
    expect(page.locator("#image-slot img.still")).to_be_visible()
    expect(page.get_by_test_id("image-size")).to_have_text("1280×720 px")
    look(page, "create-continued")
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_test_id("status")).to_have_text("Done", timeout=90_000)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_library_is_accessible_and_photographed(browser, studio_url, three_clips, viewport):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    sign_in(page, studio_url)
    page.goto(f"{studio_url}/library/")
    expect(page.get_by_test_id("tile").first).to_be_visible()
    page.locator(".tile-media img").first.evaluate(
        "img => img.complete || new Promise(r => img.addEventListener('load', r))"
    )
    look(page, "library")
    page.locator(".library .pick").first.check()
    look(page, "library-selected")
    context.close()


def test_a_sequence_of_three_clips_is_one_film(page, studio_url, three_clips, tmp_path):
    import av

    sign_in(page, studio_url)
    page.goto(f"{studio_url}/library/?q={three_clips}")
    picks = page.locator(".library .pick")
    expect(picks.first).to_be_visible()
    # The three made first (a test above continued one of them into a fourth).
    last = picks.count() - 1
    picks.nth(last).click()
    picks.nth(last - 2).click(modifiers=["Shift"])
    expect(page.get_by_test_id("selected-count")).to_have_text("3 clips selected")
    page.get_by_role("button", name="Make a sequence").click()
    expect(page.get_by_role("heading", name="New sequence")).to_be_visible()
    parts = page.get_by_test_id("part")
    expect(parts).to_have_count(3)
    # Oldest first, as they were made; a half-second crossfade before each but the first.
    expect(parts.nth(0)).to_contain_text("one")
    expect(page.get_by_test_id("total")).to_have_text("11.00 s")
    page.get_by_label("Transition into clip 3").select_option("1")
    expect(page.get_by_test_id("total")).to_have_text("10.50 s")
    # The keyboard reorders: clip 3 one place earlier keeps its transition.
    page.get_by_role("button", name="Move clip 3 earlier").focus()
    page.keyboard.press("Enter")
    expect(parts.nth(1)).to_contain_text("three")
    expect(page).to_have_url(re.compile(r"/sequences/new/\?clip="))
    expect(page.get_by_test_id("total")).to_have_text("10.50 s")
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        look(page, "sequence-new")
    page.set_viewport_size(DESKTOP)

    page.get_by_role("button", name="Make the film").click()
    expect(page.get_by_test_id("status")).to_have_text("Done", timeout=90_000)
    expect(page.get_by_test_id("length")).to_have_text("10.50 s")
    look(page, "sequence")
    page.set_viewport_size(PHONE)
    look(page, "sequence")
    src = page.locator("video").get_attribute("src")
    film = tmp_path / "film.mp4"
    film.write_bytes(page.request.get(f"{studio_url}{src}").body())
    with av.open(str(film)) as container:
        lengths = {s.type: float(s.duration * s.time_base) for s in container.streams}
    assert abs(lengths["video"] - 10.5) <= 1 / 24
    assert abs(lengths["audio"] - 10.5) <= 1 / 24
    page.goto(f"{studio_url}/library/")
    expect(page.get_by_test_id("sequence").first).to_contain_text("3 clips · 10.5 s")
