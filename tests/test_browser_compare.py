"""The Compare tab in real headless Chromium: three finished tiny runs on compositions of alpha 0 and 1 (trained
in-process with the normal ``train()``, so status.json says done) plus a copy without checkpoints; select them,
evaluate, see the grid, the table and the plot, export the CSV; the bad run gets one sentence, the rest still shows."""
import csv
import io
import shutil
import time

import pytest

from browser import browser_or_skip, chromium_page, running_app, screenshot, wait_for

pytestmark = pytest.mark.browser

KEEP = {"MSE to ground truth", "L1 to ground truth"}


def no_error_pills(page) -> bool:
    """No component is left in Gradio's error state (the red 'Error' pill that blanks it and blocks clicks)."""
    return page.locator(".error:visible").count() == 0 and page.get_by_text("Error", exact=True).count() == 0


def test_compare_tab_evaluate_grid_table_plot_csv(tmp_path, monkeypatch):
    browser_or_skip()
    from pairlab import lab
    from pairlab.data.recipes import Recipe
    from pairlab.eval import REGISTRY
    from pairlab.train import TrainConfig, train

    start = time.time()
    monkeypatch.setenv("PAIRLAB_HOME", str(tmp_path / "workspace"))
    source = lab.synthfaces_source(count=120, size=64, seed=0)
    runs = tmp_path / "workspace" / "runs"
    cfg = dict(image_size=32, ngf=8, ndf=8, n_blocks=1, max_iters=2, n_epochs=1, n_epochs_decay=1, save_every=2,
               sample_every=2, log_every=1, threads=2, n_samples=1)
    for a in (0.0, 1.0):
        comp = lab.build_composition(source, Recipe(kind="alpha-paired", alpha=a, n=8, n_test=4), name=f"cmp-a{a:.0f}")
        for seed in ((0, 1) if a else (0,)):
            train(comp, runs / f"a{a:.0f}-s{seed}", TrainConfig(seed=seed, **cfg))
    shutil.copytree(runs / "a0-s0", runs / "no-ckpt")
    shutil.rmtree(runs / "no-ckpt" / "checkpoints")
    print(f"workspace ready after {time.time() - start:.1f}s")
    env = {"PAIRLAB_SYNTHFACES_COUNT": "120", "PAIRLAB_SYNTHFACES_SIZE": "64", "PAIRLAB_CPU_SLOTS": "1",
           "TORCH_HOME": str(tmp_path / "torch_home")}
    t0 = time.time()
    with running_app(tmp_path, env) as url, chromium_page() as page:
        print(f"app up after {time.time() - t0:.1f}s")
        page.goto(url)
        page.get_by_role("tab", name="Compare").click()
        page.locator("#cmp-evaluate").wait_for()
        # only the metrics that can run here are ticked (no palette, no LPIPS weights): label scores and LPIPS off
        checked = {lab_.inner_text().strip() for lab_ in page.locator("#cmp-metrics label").all()
                   if lab_.locator("input").is_checked()}
        assert not any("LPIPS" in c for c in checked) and "MSE to ground truth" in checked
        # two error paths -> one status line, nothing left in an error state, and the page still works after
        page.locator("#cmp-evaluate").click()
        page.locator("#cmp-status").get_by_text("Choose at least one finished run").wait_for(timeout=30_000)
        page.locator("#cmp-show").click()
        wait_for(lambda: "Choose at least one" in page.locator("#cmp-status").inner_text(), timeout=30, what="grid error")
        assert no_error_pills(page)
        # pick the runs in the multi-select
        for run_id in ("a1-s0", "a0-s0", "a1-s1", "no-ckpt"):
            page.locator("#cmp-runs input").first.click()
            page.locator("#cmp-runs [role=option]", has_text=f"· {run_id}").first.click()
        page.keyboard.press("Escape")
        wait_for(lambda: all(r in page.locator("#cmp-runs").inner_text() for r in ("a1-s0", "a0-s0", "no-ckpt")),
                 timeout=20, what="runs selected")
        # only the cheap ground-truth metrics for speed
        for name, metric in REGISTRY.items():
            box = page.locator("#cmp-metrics label", has_text=metric.label).first
            if (metric.label in KEEP) != box.locator("input").is_checked():
                box.click()
        t1 = time.time()
        page.locator("#cmp-evaluate").click()
        page.locator("#cmp-status").get_by_text("Evaluated 3 of 4 run(s)").wait_for(timeout=120_000)
        print(f"evaluated in {time.time() - t1:.1f}s")
        status = page.locator("#cmp-status").inner_text()
        assert "no-ckpt" in status and "no checkpoints" in status and "Traceback" not in status

        # the grid, the table and the plot
        page.locator("#cmp-grid img").first.wait_for()
        info = page.locator("#cmp-grid-info").inner_text()
        assert "source (A)" in info and "ground truth (B)" in info
        assert info.index("alpha 0.00") < info.index("alpha 1.00")
        table = page.locator("#cmp-table").inner_text()
        # short names (model, recipe, seed, hash), the test-set size, the full id only in the exports
        assert "cyclegan" in table and " s1 #" in table and "MSE to ground truth" in table
        assert "test images" in table
        assert no_error_pills(page)
        assert "no checkpoints" in table
        assert "input unchanged (identity map)" in table  # the baseline row, on the same test images
        page.locator("#cmp-plot .js-plotly-plot .scatterlayer .trace").first.wait_for()
        assert "against alpha" in page.locator("#cmp-plot").inner_text()
        screenshot(page, "compare-evaluated")

        # export the CSV through the browser
        link = page.locator("#cmp-files a[download='comparison.csv']").first
        with page.expect_download() as dl:
            link.click()
        text = open(dl.value.path()).read()
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0][:4] == ["run", "recipe", "dir", "alpha"] and [r[0] for r in rows[1:4]] == ["a0-s0", "a1-s0", "a1-s1"]
        assert rows[4][:2] == ["input unchanged (identity map)", "baseline"]
        assert page.locator("#cmp-files a[download='comparison.tex']").count() == 1
        assert page.locator("#cmp-files a[download='grid.png']").count() == 1

        # one row per alpha, over seeds; next page of the grid
        page.locator("#cmp-aggregate input").click()
        wait_for(lambda: "0, 1" in page.locator("#cmp-table").inner_text(), timeout=20, what="aggregated table")
        page.locator("#cmp-page input").first.fill("1")
        page.locator("#cmp-rows input[type=number]").first.fill("3")
        page.locator("#cmp-rows input[type=number]").first.press("Tab")
        page.locator("#cmp-show").click()
        page.locator("#cmp-grid-info").get_by_text("Page 2 of 2").wait_for(timeout=30_000)
        # the exports follow the table shown (aggregated now) and the grid shown (page 2)
        with page.expect_download() as dl:
            page.locator("#cmp-files a[download='comparison.csv']").first.click()
        rows = list(csv.reader(io.StringIO(open(dl.value.path()).read())))
        assert rows[0][:3] == ["run", "recipe", "seeds"] and rows[2][2] == "0, 1"
        assert page.locator("#cmp-files a[download='grid.png']").count() == 1
        screenshot(page, "compare-aggregated-page2")

        # the attribute region outlined on the grid
        page.locator("#cmp-outline input").click()
        page.locator("#cmp-grid-info").get_by_text("attribute region outlined").wait_for(timeout=30_000)
        screenshot(page, "compare-outlined")
