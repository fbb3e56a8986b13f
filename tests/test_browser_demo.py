"""The Demo tab in real headless Chromium: a shipped checkpoint (a fake shipped folder made from a tiny trained run,
pointed at with PAIRLAB_SHIPPED_DIR) and the finished run itself; upload a face photo, translate with both, see the
aligned crop, the two results with their times, the pseudo-sample and the download; then a photo without a face gets
one sentence, so does a file that is not an image, and the tab keeps working."""
import json
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from browser import REPO, browser_or_skip, chromium_page, running_app, screenshot, wait_for

pytestmark = pytest.mark.browser

FACE = REPO / "assets" / "demo_faces" / "glasses.jpg"


def test_demo_tab_translates_an_uploaded_photo(tmp_path, monkeypatch):
    browser_or_skip()
    from conftest import tiny_config
    from pairlab import lab
    from pairlab.data.recipes import Recipe
    from pairlab.demo.shipped import FORMAT, export_generator
    from pairlab.train import train

    start = time.time()
    monkeypatch.setenv("PAIRLAB_HOME", str(tmp_path / "workspace"))
    source = lab.synthfaces_source(count=120, size=64, seed=0)
    comp = lab.build_composition(source, Recipe(kind="alpha-paired", alpha=1.0, n=8, n_test=2), name="demo-b")
    run = tmp_path / "workspace" / "runs" / "tiny-run"
    train(comp, run, tiny_config(image_size=64))
    shipped = tmp_path / "shipped" / "tiny-shipped"
    shipped.mkdir(parents=True)
    export_generator(run, shipped / "model.pt")
    (shipped / "manifest.json").write_text(json.dumps({
        "format": FORMAT, "name": "tiny-shipped", "title": "Tiny demo model", "model": "cyclegan", "image_size": 64,
        "direction": "AtoB", "task": "eyeglasses", "domains": {"A": "eyeglasses", "B": "no eyeglasses"},
        "landmark_template": (np.array([[0.388, 0.509], [0.604, 0.509], [0.496, 0.618], [0.395, 0.692],
                                        [0.596, 0.692]]) * 64).round(2).tolist(), "metrics": {}, "command": "test"}))
    notes = tmp_path / "notes.png"
    notes.write_text("a text file, not a photo")
    sky = tmp_path / "sky.png"
    Image.new("RGB", (300, 200), (120, 160, 210)).save(sky)
    print(f"workspace ready after {time.time() - start:.1f}s")
    env = {"PAIRLAB_SYNTHFACES_COUNT": "120", "PAIRLAB_SYNTHFACES_SIZE": "64", "PAIRLAB_CPU_SLOTS": "1",
           "PAIRLAB_SHIPPED_DIR": str(tmp_path / "shipped"), "TORCH_HOME": str(tmp_path / "torch_home")}
    t0 = time.time()
    with running_app(tmp_path, env) as url, chromium_page() as page:
        print(f"app up after {time.time() - t0:.1f}s")
        page.goto(url)
        page.get_by_role("tab", name="Demo").click()
        page.locator("#demo-translate").wait_for()
        # the shipped checkpoint is chosen on load; add the finished run
        wait_for(lambda: "Tiny demo model" in page.locator("#demo-checkpoints").inner_text(), timeout=30,
                 what="the shipped checkpoint preselected")
        page.locator("#demo-checkpoints input").first.click()
        page.locator("#demo-checkpoints [role=option]", has_text="cyclegan α1.00").first.click()
        page.keyboard.press("Escape")
        wait_for(lambda: "cyclegan α1.00" in page.locator("#demo-checkpoints").inner_text(), timeout=20,
                 what="run chosen (by its short name)")
        assert "synthetic-to-real gap" in page.locator("#demo-gap-note").inner_text()
        # a CycleGAN run translates both ways, so the direction shows
        page.locator("#demo-direction").wait_for(timeout=20_000)

        page.locator("#demo-input input[type=file]").set_input_files(str(FACE))
        page.locator("#demo-input img").first.wait_for(timeout=30_000)
        page.locator("#demo-pseudo input").check()
        t1 = time.time()
        page.locator("#demo-translate").click()
        page.locator("#demo-status").get_by_text("Found one face").wait_for(timeout=120_000)
        print(f"translated in {time.time() - t1:.1f}s")
        status = page.locator("#demo-status").inner_text()
        assert "Translated with 2 checkpoint(s)" in status and "⚠" not in status, status
        page.locator("#demo-aligned img").first.wait_for()
        wait_for(lambda: page.locator("#demo-results img").count() >= 3, timeout=30, what="three gallery images")
        captions = page.locator("#demo-results").inner_text()
        assert "Tiny demo model (shipped) — " in captions and "cyclegan α1.00 s0 #" in captions, captions
        assert captions.count(" ms") >= 2 and "pseudo-sample M(x)" in captions and "opacity" in captions, captions
        page.locator("#demo-detected img").first.wait_for()  # the face that was used, outlined
        link = page.locator("#demo-download a").first
        link.wait_for()
        screenshot(page, "demo-translated")
        with page.expect_download() as dl:
            link.click()
        names = set(zipfile.ZipFile(dl.value.path()).namelist())
        assert {"glasses_aligned.png", "glasses_pseudo.png", "glasses_tiny-shipped.png", "glasses_tiny-run.png",
                "timings.json"} <= names, names
        page.locator("#demo-reroll").click()  # a new pseudo-sample: its parameters change
        def rerolled():
            text = page.locator("#demo-results").inner_text()
            return "Finding the face" not in text and "opacity" in text and text != captions
        wait_for(rerolled, timeout=90, what="re-rolled M(x) with new parameters")
        # the screenshot after Gradio's progress overlay is gone (it shows the results, not the spinner)
        wait_for(lambda: page.locator("#demo-results .progress-text:visible, #demo-results .eta-bar:visible").count() == 0,
                 timeout=60, what="progress overlay gone")
        screenshot(page, "demo-rerolled")

        # a photo without a face: one sentence, nothing stale left on the page
        page.locator("#demo-input button[aria-label='Remove Image']").first.click()
        page.locator("#demo-input input[type=file]").set_input_files(str(sky))
        page.locator("#demo-input img").first.wait_for(timeout=30_000)
        page.locator("#demo-translate").click()
        page.locator("#demo-status").get_by_text("No face was found in this image").wait_for(timeout=60_000)
        # the last good results stay on the page; the status says which photo they belong to
        assert page.locator("#demo-results img").count() >= 3
        assert page.get_by_text("Error", exact=True).count() == 0
        screenshot(page, "demo-no-face")

        # a file that is not an image at all: one sentence too (Gradio's own check is bypassed on purpose)
        page.locator("#demo-input button[aria-label='Remove Image']").first.click()
        page.locator("#demo-input input[type=file]").set_input_files(str(notes))
        page.locator("#demo-input button[aria-label='Remove Image']").first.wait_for(timeout=30_000)
        page.locator("#demo-translate").click()
        page.locator("#demo-status").get_by_text("notes.png is not an image").wait_for(timeout=60_000)

        # and the tab still translates afterwards
        page.locator("#demo-input button[aria-label='Remove Image']").first.click()
        page.locator("#demo-input input[type=file]").set_input_files(str(REPO / "assets" / "demo_faces" / "two_people.jpg"))
        page.locator("#demo-input img").first.wait_for(timeout=30_000)
        page.locator("#demo-translate").click()
        page.locator("#demo-status").get_by_text("Found 2 faces; using the largest one.").wait_for(timeout=60_000)
        wait_for(lambda: page.locator("#demo-results img").count() >= 3, timeout=30, what="results again")
        screenshot(page, "demo-two-faces")
