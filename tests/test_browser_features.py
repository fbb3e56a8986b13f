"""The Feature space tab in real headless Chromium: a pseudo-pair composition and two finished tiny runs (Pix2Pix and
CycleGAN, trained in-process) plus a copy without checkpoints; plot them, toggle a group from the legend, hover a
point to see its thumbnail and provenance, switch the ellipses to 2 sigma and find the PNG / HTML / CSV exports.
The run without checkpoints gets one sentence; the rest of the plot still shows."""
import shutil
import time

import pytest

from browser import browser_or_skip, chromium_page, running_app, screenshot, wait_for

pytestmark = pytest.mark.browser

# Where a group's most isolated point is on the page (WebGL points are not DOM elements; plotly hovers the nearest
# point of any trace, so the test picks one with no neighbour close by): plotly's own axis mapping.
POINT_XY = """(key) => {
  const gd = document.querySelector('#feat-plot .js-plotly-plot');
  const r = gd.getBoundingClientRect();
  const px = (t, i) => {
    const xa = gd._fullLayout['xaxis' + t.xaxis.slice(1)], ya = gd._fullLayout['yaxis' + t.yaxis.slice(1)];
    return [r.left + xa._offset + xa.l2p(t.x[i]), r.top + ya._offset + ya.l2p(t.y[i])];
  };
  const traces = gd._fullData.filter(d => d.type === 'scattergl' && d.visible === true);
  const mine = traces.find(d => d.legendgroup === key);
  const others = [];
  traces.forEach(t => { if (t.xaxis === mine.xaxis) for (let i = 0; i < t.x.length; i++)
    if (!(t === mine)) others.push(px(t, i)); });
  let best = null, bestD = -1;
  for (let i = 0; i < mine.x.length; i++) {
    const p = px(mine, i);
    let d = Infinity;
    others.forEach(o => { d = Math.min(d, Math.hypot(o[0] - p[0], o[1] - p[1])); });
    for (let j = 0; j < mine.x.length; j++) if (j !== i) {
      const q = px(mine, j); d = Math.min(d, Math.hypot(q[0] - p[0], q[1] - p[1]) + 1e-6); }
    if (d > bestD) { bestD = d; best = p; }
  }
  return best;
}"""
# plotly's hover event for the group's point nearest (x, y), as a real hover there would emit it.
EMIT_HOVER = """({key, x, y}) => {
  const gd = document.querySelector('#feat-plot .js-plotly-plot');
  const r = gd.getBoundingClientRect();
  const t = gd._fullData.find(d => d.type === 'scattergl' && d.visible === true && d.legendgroup === key);
  const xa = gd._fullLayout['xaxis' + t.xaxis.slice(1)], ya = gd._fullLayout['yaxis' + t.yaxis.slice(1)];
  let best = 0, bestD = Infinity;
  for (let i = 0; i < t.x.length; i++) {
    const d = Math.hypot(r.left + xa._offset + xa.l2p(t.x[i]) - x, r.top + ya._offset + ya.l2p(t.y[i]) - y);
    if (d < bestD) { bestD = d; best = i; }
  }
  gd.emit('plotly_hover', {points: [{data: t, customdata: t.customdata[best], pointNumber: best,
                                     curveNumber: t.index}], event: {clientX: x, clientY: y}});
}"""
VISIBLE = """(key) => {
  const gd = document.querySelector('#feat-plot .js-plotly-plot');
  return gd._fullData.filter(d => d.legendgroup === key).map(d => d.visible);
}"""


def fake_classifier(source, attribute="Eyeglasses"):
    """A seeded, untrained simple CNN in the attribute-classifier cache: the tab needs its features, not accuracy."""
    import torch

    from pairlab.eval import encoders

    torch.manual_seed(0)
    net = encoders.SimpleCNN(out_dim=1, width=16, feat_dim=128).eval()
    encoders._save(encoders.attribute_cache_file(source.fingerprint(), attribute), net,
                   {"kind": "attribute-classifier", "attribute": attribute, "heldout_accuracy": None})


def no_error_pills(page) -> bool:
    """No component is left in Gradio's error state (the red 'Error' pill that blanks it and blocks clicks)."""
    return page.locator(".error:visible").count() == 0 and page.get_by_text("Error", exact=True).count() == 0


def test_features_tab_plot_toggle_hover_export(tmp_path, monkeypatch):
    browser_or_skip()
    from pairlab import lab
    from pairlab.data.recipes import Recipe
    from pairlab.train import TrainConfig, train

    start = time.time()
    monkeypatch.setenv("PAIRLAB_HOME", str(tmp_path / "workspace"))
    source = lab.synthfaces_source(count=120, size=64, seed=0)
    comp = lab.build_composition(source, Recipe(kind="explicit", pairs_from="pseudo", n=10, n_test=6, image_size=32),
                                 name="feat-explicit")
    runs = tmp_path / "workspace" / "runs"
    cfg = dict(image_size=32, ngf=8, ndf=8, n_blocks=1, max_iters=2, n_epochs=1, n_epochs_decay=1, save_every=2,
               sample_every=2, log_every=1, threads=2, n_samples=1)
    train(comp, runs / "p2p", TrainConfig(model="pix2pix", **cfg))
    train(comp, runs / "cyc", TrainConfig(model="cyclegan", **cfg))
    shutil.copytree(runs / "cyc", runs / "no-ckpt")
    shutil.rmtree(runs / "no-ckpt" / "checkpoints")
    fake_classifier(source)
    print(f"workspace ready after {time.time() - start:.1f}s")
    env = {"PAIRLAB_SYNTHFACES_COUNT": "120", "PAIRLAB_SYNTHFACES_SIZE": "64", "PAIRLAB_CPU_SLOTS": "1",
           "TORCH_HOME": str(tmp_path / "torch_home")}
    with running_app(tmp_path, env) as url, chromium_page(1400, 1100) as page:
        page.goto(url)
        page.get_by_role("tab", name="Feature space").click()
        page.locator("#feat-plot-btn").wait_for()
        # two error paths: Plot with nothing chosen, exports before any plot -> one status line, no error pills
        page.locator("#feat-plot-btn").click()
        page.locator("#feat-status").get_by_text("Choose a composition").wait_for(timeout=30_000)
        page.locator("#feat-export").click()
        page.locator("#feat-status").get_by_text("Plot a feature space first").wait_for(timeout=30_000)
        assert no_error_pills(page)
        page.locator("#feat-comp input").first.click()
        page.locator("[role=option]", has_text="feat-explicit").first.click()
        # the run chooser shows short labels (model, recipe, seed, digest), as the other tabs do, not the ids
        labels = lab.short_labels(lab.finished_runs())
        assert len(set(labels.values())) == 3 and all(" s0 #" in labels[i] for i in ("p2p", "cyc", "no-ckpt"))
        page.locator("#feat-runs input").first.click()  # a multi-select keeps its options open
        for run_id in ("p2p", "cyc", "no-ckpt"):
            page.locator("#feat-runs [role=option]", has_text=labels[run_id]).first.click()
        page.keyboard.press("Escape")
        wait_for(lambda: all(labels[r] in page.locator("#feat-runs").inner_text() for r in ("p2p", "cyc", "no-ckpt")),
                 timeout=20, what="runs selected")
        t0 = time.time()
        page.locator("#feat-plot-btn").click()
        page.locator("#feat-status").get_by_text("Plotted").wait_for(timeout=120_000)
        print(f"plotted in {time.time() - t0:.1f}s")
        status = page.locator("#feat-status").inner_text()
        assert "no-ckpt" in status and "no checkpoints" in status and "Traceback" not in status
        assert "PC1" in page.locator("#feat-explained").inner_text()
        legend = page.locator("#feat-plot .legend").first.text_content()
        p2p, cyc = f"Pix2Pix outputs ({labels['p2p']})", f"CycleGAN outputs ({labels['cyc']})"  # short labels
        for name in ("all data", "generated pseudo-samples", p2p, cyc):
            assert name in legend, name
        assert "Space of training data" in page.locator("#feat-plot").text_content()
        table = page.locator("#feat-table").inner_text()
        assert p2p in table and "generated pseudo-samples" in table
        page.wait_for_timeout(800)  # the WebGL layer draws after the SVG
        screenshot(page, "features-plotted")

        # the legend toggles a group in both panels (points and ellipse)
        assert all(v is True for v in page.evaluate(VISIBLE, "pseudo"))
        page.locator("#feat-plot .legend .traces", has_text="generated pseudo-samples").first.click()
        wait_for(lambda: all(v == "legendonly" for v in page.evaluate(VISIBLE, "pseudo")), timeout=10,
                 what="pseudo group hidden")
        assert all(v is True for v in page.evaluate(VISIBLE, "run:p2p"))
        page.wait_for_timeout(500)
        screenshot(page, "features-pseudo-hidden")

        # hovering a Pix2Pix output shows its thumbnail and provenance beside the cursor
        x, y = page.evaluate(POINT_XY, "run:p2p")
        box = page.locator("#feat-hover-box")
        for dx in (0, 1, -1, 2):  # plotly picks the nearest point on mouse move
            page.mouse.move(x + dx + 30, y + 30)
            page.mouse.move(x + dx, y)
            try:
                box.wait_for(state="visible", timeout=3000)
                break
            except Exception:
                continue
        assert box.is_visible() and box.inner_text().strip()  # a real mouse hover opens the box
        # Which point plotly picks under the cursor is plotly's business (the gray all-data cloud may lie nearest);
        # the box's content is ours: hover the chosen Pix2Pix output through plotly's own event and check it.
        page.evaluate(EMIT_HOVER, {"key": "run:p2p", "x": x, "y": y})
        text = box.inner_text()
        assert p2p in text and "Pix2Pix output of A-image" in text and "(run p2p," in text, text
        thumb = box.locator(".pairlab-thumb")
        assert "data:image/jpeg;base64" in thumb.evaluate("e => getComputedStyle(e).backgroundImage")
        assert thumb.bounding_box()["width"] >= 90
        screenshot(page, "features-hover")
        page.mouse.move(5, 5)

        # 2 sigma: the ellipses grow, the title says so
        before = page.evaluate("""() => { const gd = document.querySelector('#feat-plot .js-plotly-plot');
            const t = gd._fullData.find(d => d.name.startsWith('all data ellipse'));
            return Math.max(...t.x) - Math.min(...t.x); }""")
        t_sigma = time.time()
        page.locator("#feat-sigma label", has_text="2σ").click()
        wait_for(lambda: "2σ" in (page.locator("#feat-plot .gtitle").first.text_content() or ""), timeout=60, what="2 sigma title")
        after = page.evaluate("""() => { const gd = document.querySelector('#feat-plot .js-plotly-plot');
            const t = gd._fullData.find(d => d.name.startsWith('all data ellipse'));
            return Math.max(...t.x) - Math.min(...t.x); }""")
        print(f"sigma switch in {time.time() - t_sigma:.1f}s")
        assert after == pytest.approx(2 * before, rel=0.02)

        # exports
        # the sigma switch redraws only (no export is written): it is quick, and the exports come on request
        assert page.locator("#feat-files a[download]").count() == 0
        page.locator("#feat-export").click()
        page.locator("#feat-files a[download='feature-space.png']").wait_for(timeout=60_000)
        assert no_error_pills(page)
        for name in ("feature-space.png", "feature-space.html", "groups.csv"):
            assert page.locator(f"#feat-files a[download='{name}']").count() == 1, name
        with page.expect_download() as dl:
            page.locator("#feat-files a[download='feature-space.html']").first.click()
        html_text = open(dl.value.path()).read()
        assert "pairlabAttachHover" in html_text and "Space of test data" in html_text
        screenshot(page, "features-2sigma")
