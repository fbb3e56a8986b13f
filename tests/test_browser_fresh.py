"""A new user's first start: ``./pairlab.sh app`` on a fresh workspace installs the demo workspace from the shipped
checkpoints, and every tab shows real content: compositions, finished runs with curves, a comparison, a feature-space
plot, an example study with votes and its Table 6, and a live translation of an uploaded photo in the Demo tab."""
import time

import pytest

from browser import REPO, browser_or_skip, chromium_page, running_app, screenshot, wait_for

pytestmark = pytest.mark.browser


def test_fresh_start_opens_the_demo_workspace_with_content_in_every_tab(tmp_path):
    browser_or_skip()
    from pairlab.demo import shipped

    names = [s.name for s in shipped.shipped_checkpoints()]
    assert names, "checkpoints/demo/ holds no shipped checkpoints"
    env = {"PAIRLAB_DEMO": "1", "TORCH_HOME": str(tmp_path / "torch_home")}  # the default SynthFaces: no overrides
    t0 = time.time()
    with running_app(tmp_path, env, startup_timeout=600, ready=False) as url, chromium_page() as page:
        # Issue 16, finding 5: the page answers at once with the preparing view (no "connection refused")...
        answered = time.time() - t0
        page.goto(url)
        page.get_by_text("Preparing the workspace").wait_for()
        wait_for(lambda: int(page.locator("#pct").inner_text()) > 0, 120, "progress")
        screenshot(page, "fresh-preparing")
        # ... and turns into the lab by itself (no reload by the user), which opens on the "start here" panel
        page.locator("#ds-table").wait_for(timeout=600_000)
        print(f"port answered after {answered:.1f}s; the lab after {time.time() - t0:.1f}s")
        log = (tmp_path / "app.log").read_text()
        assert "demo workspace ready" in log and "note:" not in log, log[-2000:]
        page.locator("#start-here").get_by_text("This is the demo workspace").wait_for(timeout=60_000)
        screenshot(page, "fresh-start-here")

        # Datasets: the demo compositions
        wait_for(lambda: "demo-cyclegan-alpha0" in page.locator("#ds-table").inner_text(), 60, "compositions")
        assert "demo-pix2pix-pseudo" in page.locator("#ds-table").inner_text()
        screenshot(page, "fresh-datasets")

        # Training: the shipped runs as finished runs, with curves and a sample grid
        page.get_by_role("tab", name="Training").click()
        wait_for(lambda: page.locator("#tr-table").inner_text().count("done") >= len(names), 60, "finished runs")
        # the table shows short names (model, recipe, seed, digest); the full ids are in the run chooser
        assert page.locator("#tr-table").inner_text().count(" s0 #") >= len(names)
        page.locator("#tr-curves .js-plotly-plot .scatterlayer .trace").first.wait_for()
        page.locator("#tr-sample img").first.wait_for()
        screenshot(page, "fresh-training")

        # Compare: the demo comparison reopens by itself (grid, table, plot)
        page.get_by_role("tab", name="Compare").click()
        page.locator("#cmp-status").get_by_text(f"Evaluated {len(names)} of {len(names)} run(s)").wait_for(timeout=180_000)
        page.locator("#cmp-grid img").first.wait_for()
        table = page.locator("#cmp-table").inner_text()
        # rows carry short names (model, recipe, seed, digest); the full ids are in the exports
        assert "pix2pix explicit pseudo" in table and "cyclegan" in table and "Task completion rate" in table
        page.locator("#cmp-plot .js-plotly-plot .scatterlayer .trace").first.wait_for()
        screenshot(page, "fresh-compare")

        # Feature space: the Figure 9 plot of the demo composition and runs
        page.get_by_role("tab", name="Feature space").click()
        page.locator("#feat-plot .js-plotly-plot .scatterlayer .trace").first.wait_for(timeout=180_000)
        assert "explained variance" in page.locator("#feat-explained").inner_text()
        screenshot(page, "fresh-features")

        # User study: the example study with its votes and Table 6
        page.get_by_role("tab", name="User study").click()
        wait_for(lambda: "automatic participant" in page.locator("#st-studies").inner_text(), 60, "the example study")
        page.locator("#st-show").click()
        wait_for(lambda: "CycleGAN" in page.locator("#st-table6").inner_text(), 60, "Table 6")
        assert "vote" in page.locator("#st-summary").inner_text().lower()
        screenshot(page, "fresh-study")

        # Demo: the shipped checkpoints are chosen; upload a photo and translate
        page.get_by_role("tab", name="Demo").click()
        wait_for(lambda: "(shipped)" in page.locator("#demo-checkpoints").inner_text(), 30, "shipped checkpoints")
        page.locator("#demo-input input[type=file]").set_input_files(str(REPO / "assets" / "demo_faces" / "glasses.jpg"))
        page.locator("#demo-input img").first.wait_for()
        page.locator("#demo-translate").click()
        page.locator("#demo-status").get_by_text("Alignment took").wait_for(timeout=120_000)
        captions = page.locator("#demo-results").inner_text()
        assert captions.count(" ms") >= min(len(names), 4), captions
        screenshot(page, "fresh-demo")

        # The "start here" panel hides for good in this workspace
        page.locator("#start-here-hide").click()
        wait_for(lambda: not page.locator("#start-here").is_visible(), 30, "the panel hidden")
        page.reload()
        page.locator("#ds-table").wait_for()
        page.wait_for_timeout(3000)
        assert not page.locator("#start-here").is_visible()
