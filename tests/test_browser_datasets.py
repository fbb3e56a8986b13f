"""The Datasets tab in real headless Chromium, with the app started by the README's start command."""
import shutil
from pathlib import Path

import pytest

from browser import browser_or_skip, chromium_page, running_app, screenshot, set_number

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/shots/datasets")


def no_error_pills(page) -> bool:
    """No component is left in Gradio's error state (the red 'Error' pill that blanks it and blocks clicks)."""
    return page.locator(".error:visible").count() == 0 and page.get_by_text("Error", exact=True).count() == 0


def keep_shot(path, name):
    try:
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SHOTS / name)
    except OSError:
        pass


def test_datasets_tab_builds_a_composition(tmp_path):
    browser_or_skip()
    env = {"PAIRLAB_SYNTHFACES_COUNT": "300", "PAIRLAB_SYNTHFACES_SIZE": "64"}
    with running_app(tmp_path, env) as url, chromium_page() as page:
        page.goto(url)
        page.get_by_text("Build alpha-paired datasets").wait_for()
        # A pseudo-paired eyeglasses composition from the default SynthFaces.
        set_number(page, "ds-n", 20)
        set_number(page, "ds-ntest", 5)
        page.locator("#ds-preview").click()
        page.locator("#ds-status").get_by_text("Preview of").wait_for()
        assert page.locator("#ds-gallery img").count() >= 3
        page.locator("#ds-build").click()
        page.locator("#ds-status").get_by_text("Built").wait_for(timeout=120_000)
        status = page.locator("#ds-status").inner_text()
        assert "measured alpha 0.500" in status
        page.locator("#ds-chart .js-plotly-plot").first.wait_for()
        assert page.locator("#ds-gallery img").count() >= 3
        assert "pseudo-paired" in page.locator("#ds-table").inner_text()
        page.locator("#ds-comp-gallery img").first.wait_for()  # the new composition opens by itself
        shot = screenshot(page, "datasets-built")
        assert shot.stat().st_size > 20_000
        built = page.locator("#ds-chosen input").input_value()

        # Issue 16, finding 1: an error (N = 0 on Build, then on Preview) is one line in the status; the gallery, the
        # chart, the table and the Composition dropdown keep their content and stay usable.
        set_number(page, "ds-n", 0)
        for button in ("#ds-build", "#ds-preview"):
            page.locator(button).click()
            page.locator("#ds-status").get_by_text("N must be at least 1").wait_for()
            assert no_error_pills(page)
            assert page.locator("#ds-gallery img").count() >= 3
            assert page.locator("#ds-chart .js-plotly-plot").count() >= 1
            assert "pseudo-paired" in page.locator("#ds-table").inner_text()
            assert page.locator("#ds-chosen input").input_value() == built
        keep_shot(screenshot(page, "datasets-error"), "after_error.png")
        page.locator("#ds-open-comp").click()  # the dropdown and Open still work (and clear the old sentence)
        page.locator("#ds-comp-gallery img").first.wait_for()
        page.wait_for_function("() => !document.querySelector('#ds-status').innerText.includes('N must be')")
        # finding 2: table cells do not wrap mid-word (one line per row)
        row_h = page.locator("#ds-table tbody tr").first.bounding_box()["height"]
        assert row_h < 60, row_h
        set_number(page, "ds-n", 20)

        # Bad input: a folder outside the allowed roots gives one sentence and the app keeps serving.
        page.get_by_label("CelebA folder").check()
        page.locator("#ds-folder textarea, #ds-folder input").first.fill("/etc")
        page.locator("#ds-open").click()
        page.locator("#ds-status").get_by_text("outside the allowed folders").first.wait_for()
        assert no_error_pills(page)
        screenshot(page, "datasets-bad-folder")
        # Alpha-paired on SynthFaces (a paired source) still works afterwards.
        page.get_by_label("SynthFaces (embedded)").check()
        page.get_by_label("alpha-paired").check()
        page.locator("#ds-preview").click()
        page.locator("#ds-status").get_by_text("eyeglasses-alpha0.50", exact=False).wait_for()
        assert "measured alpha 0.500" in page.locator("#ds-status").inner_text()

        # The recipe is read from the named fields: a cleared N is one sentence naming it, the seed is the seed.
        set_number(page, "ds-n", "")
        page.locator("#ds-preview").click()
        page.locator("#ds-status").get_by_text("Please fill in N per domain.").first.wait_for()
        assert no_error_pills(page)
        set_number(page, "ds-n", 20)
        set_number(page, "ds-seed", 7)
        page.locator("#ds-preview").click()
        page.locator("#ds-status").get_by_text("eyeglasses-alpha0.50-n20-s7", exact=False).wait_for()

        # Delete asks first: one click only asks, the second (Confirm delete) deletes.
        page.locator("#ds-delete").click()
        page.locator("#ds-status").get_by_text("Click Confirm delete").wait_for()
        assert built in page.locator("#ds-table").inner_text()
        page.locator("#ds-delete").click()
        page.locator("#ds-status").get_by_text(f"Deleted {built}").wait_for()
        assert built not in page.locator("#ds-table").inner_text()
