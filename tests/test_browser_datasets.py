"""The Datasets tab in real headless Chromium, with the app started by the README's start command."""
import pytest

from browser import browser_or_skip, chromium_page, running_app, screenshot, set_number

pytestmark = pytest.mark.browser


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

        # Bad input: a folder outside the allowed roots gives one sentence and the app keeps serving.
        page.get_by_label("CelebA folder").check()
        page.locator("#ds-folder textarea, #ds-folder input").first.fill("/etc")
        page.locator("#ds-open").click()
        page.get_by_text("outside the allowed folders").first.wait_for()
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
        page.get_by_text("Please fill in N per domain.").first.wait_for()
        set_number(page, "ds-n", 20)
        set_number(page, "ds-seed", 7)
        page.locator("#ds-preview").click()
        page.locator("#ds-status").get_by_text("eyeglasses-alpha0.50-n20-s7", exact=False).wait_for()
