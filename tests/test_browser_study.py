"""The participant page and the Study tab in real headless Chromium.

A participant completes a small study with the keyboard only; a second participant's half-done session is resumed
in a second browser context from the link; then the Study tab (in a small Blocks of its own) shows Table 6.
Screenshots: test-artifacts/study-*.png.
"""
from __future__ import annotations

import re

import pytest

from browser import CHROMIUM, CHROMIUM_ARGS, browser_or_skip, free_port, screenshot
from pairlab.study import plan as plan_mod
from pairlab.study.store import VoteStore
from pairlab.study.server import ParticipantServer
from test_study import LABELS, make_inputs, small_design

pytestmark = pytest.mark.browser

KEYS = {"ArrowLeft": "left", "ArrowRight": "right", "ArrowUp": "both", "ArrowDown": "neither",
        "1": "left", "2": "right", "3": "both", "4": "neither"}


def wait_trial(page, k: int, total: int) -> None:
    page.locator("#progress-text").get_by_text(f"Comparison {k} of {total}").wait_for()
    page.wait_for_function("() => !document.querySelector('#images').classList.contains('loading')")
    page.locator("#answer-left:not([disabled])").wait_for()


def test_participant_completes_with_keyboard_and_resumes_elsewhere(tmp_path, monkeypatch):
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("PAIRLAB_HOME", str(tmp_path / "workspace"))
    sid = plan_mod.freeze(small_design(trials_per_participant=5, repeats=1, catch_trials=1),
                          make_inputs(tmp_path / "imgs", size=128))
    total = 7
    with ParticipantServer() as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            # ---- participant 1: the whole study with the keyboard only
            ctx = browser.new_context(viewport={"width": 1100, "height": 900})
            page = ctx.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{server.url}/study/{sid}")
            page.locator("#welcome").wait_for()
            assert page.locator("#start").is_disabled()
            assert page.locator("a").count() == 0
            screenshot(page, "study-consent")
            page.keyboard.press("Tab")
            page.locator("#consent").check()
            page.locator("#code").fill("P-7")
            page.locator("#start").click()
            keys = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "1", "2", "3"]
            for k, key in enumerate(keys):
                wait_trial(page, k + 1, total)
                if k == 1:
                    screenshot(page, "study-trial")
                    alts = sorted(page.locator("img").evaluate_all("els => els.map(e => e.alt)"))
                    assert alts == ["left option", "original photo", "right option"]
                    srcs = page.locator("img").evaluate_all("els => els.map(e => e.getAttribute('src'))")
                    assert all(re.fullmatch(rf"/study/{sid}/media/[0-9a-f]{{24}}\.png", s) for s in srcs)
                page.keyboard.press(key)
            page.locator("#done").wait_for()
            code = page.locator("#completion").inner_text()
            assert re.fullmatch(r"[0-9A-F]{5}-[0-9A-F]{5}", code)
            screenshot(page, "study-done")
            store = VoteStore.open()
            p1 = [p for p in store.participants(sid) if p["code"] == "P-7"][0]
            votes = [v for v in store.votes(sid) if v["participant_id"] == p1["participant_id"]]
            assert [v["choice"] for v in votes] == [KEYS[k] for k in keys]
            assert all(v["client_ms"] and v["client_ms"] > 0 and v["server_ms"] > 0 for v in votes)
            assert p1["completion_code"] == code
            ctx.close()

            # ---- participant 2: three answers, a reload (cookie), then another browser from the link
            ctx = browser.new_context(viewport={"width": 1100, "height": 900})
            page = ctx.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{server.url}/study/{sid}")
            page.locator("#consent").check()
            page.locator("#start").click()
            for k in range(2):
                wait_trial(page, k + 1, total)
                page.keyboard.press("4")
            wait_trial(page, 3, total)
            page.goto(f"{server.url}/study/{sid}")        # no ?p=: the cookie brings the session back
            wait_trial(page, 3, total)
            page.keyboard.press("ArrowLeft")
            wait_trial(page, 4, total)
            link = page.url
            assert re.fullmatch(rf"{re.escape(server.url)}/study/{sid}\?p=[0-9a-f]+\.[0-9a-f]+", link)
            ctx.close()

            other = browser.new_context(viewport={"width": 1100, "height": 900})   # no cookies at all
            page = other.new_page()
            page.set_default_timeout(20_000)
            page.goto(link)
            wait_trial(page, 4, total)
            assert float(page.locator("#bar").evaluate("e => e.style.width").rstrip("%")) == pytest.approx(100 * 3 / total, abs=0.01)
            screenshot(page, "study-resumed")
            for k in range(4, total + 1):
                wait_trial(page, k, total)
                page.keyboard.press("ArrowRight")
            page.locator("#done").wait_for()
            other.close()

            # ---- a broken link says so in one sentence
            page = browser.new_context().new_page()
            page.goto(f"{server.url}/study/{sid}?p=forged.0000")
            page.locator("#problem").get_by_text("participant link is not valid").wait_for()
            page.goto(f"{server.url}/study/ffffffffffff")
            assert "This study link is not valid." in page.inner_text("body")
        finally:
            browser.close()
    counts = VoteStore.open().counts(sid)
    assert counts["votes"] == 2 * total and counts["finished"] == 2
    VoteStore.forget()


def test_study_tab_shows_table6(tmp_path, monkeypatch):
    browser_or_skip()
    import gradio as gr

    from browser import chromium_page
    from pairlab.study import session
    from pairlab.ui import study_tab

    monkeypatch.setenv("PAIRLAB_HOME", str(tmp_path / "workspace"))
    sid = plan_mod.freeze(small_design(title="Eyeglasses, three runs"), make_inputs(tmp_path / "imgs", size=64))
    svc = session.StudyService()
    for k in range(6):   # six participants who mostly prefer the first run
        tok, st = svc.join(sid)
        n = 0
        while not st["finished"]:
            row = VoteStore.open().where(sid, svc.participant_id(sid, tok))["next"]
            if row["kind"] == "catch":
                choice = row["correct_side"]
            elif row["left_cand"] == "c0":
                choice = "left" if n % 5 else "both"
            elif row["right_cand"] == "c0":
                choice = "right"
            else:
                choice = ("left", "right", "neither")[(n + k) % 3]
            st = svc.vote(sid, tok, st["trial"]["handle"], choice, 900 + 10 * n)
            n += 1
    with gr.Blocks() as demo:
        with gr.Tabs():
            tab = study_tab.build_tab()
        demo.load(tab["refresh"], None, tab["refresh_outputs"])
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                allowed_paths=[str(tmp_path / "workspace")])
    try:
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("#st-studies").get_by_test_id("cell-0-0").get_by_text(sid).wait_for()
            page.locator("#st-show").click()
            page.locator("#st-summary").get_by_text("6 participants").wait_for()
            table = page.locator("#st-table6").inner_text()
            for label in LABELS:
                assert label in table
            page.locator("#st-bt .js-plotly-plot").first.wait_for()
            assert "catch-trial pass rate **" not in page.locator("#st-summary").inner_text()
            assert "1.000" in page.locator("#st-summary").inner_text()     # catch trials all passed
            bt = page.locator("#st-bt-table").inner_text()
            assert bt.index(LABELS[0]) < bt.index(LABELS[1])                # the preferred run ranks first
            screenshot(page, "study-results")
            page.locator("#st-export").click()
            page.locator("#st-files [aria-label='table6.tex']").wait_for()
            # a bad design: one sentence, the tab keeps working
            page.locator("#st-freeze").click()
            page.get_by_text("Choose 2 to 6 finished runs").first.wait_for()
            screenshot(page, "study-tab-error")
    finally:
        demo.close()
        VoteStore.forget()
