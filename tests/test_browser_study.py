"""The participant page and the Study tab in real headless Chromium.

A participant completes a small study with the keyboard only; a second participant's half-done session is resumed
in a second browser context from the link; then the Study tab (in a small Blocks of its own) shows Table 6.
Screenshots: test-artifacts/study-*.png.
"""
from __future__ import annotations

import re

import pytest

from browser import CHROMIUM, CHROMIUM_ARGS, browser_or_skip, free_port, screenshot, wait_for
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


def vote_six_participants(sid: str) -> None:
    """Six participants who mostly prefer the first run (c0); catch trials answered right."""
    from pairlab.study import session

    svc = session.StudyService()
    for k in range(6):
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


def no_error_state(page) -> None:
    """No Gradio error pill or toast anywhere: errors went to the status line only."""
    assert page.locator(".error, .toast-body").count() == 0
    assert page.get_by_text("Error", exact=True).count() == 0


def test_study_tab_shows_table6(tmp_path, monkeypatch):
    browser_or_skip()
    import time

    import gradio as gr

    from browser import chromium_page
    from pairlab.study import platforms
    from pairlab.ui import study_tab

    monkeypatch.setenv("PAIRLAB_HOME", str(tmp_path / "workspace"))
    sid = plan_mod.freeze(small_design(title="Eyeglasses, three runs"), make_inputs(tmp_path / "imgs", size=64))
    vote_six_participants(sid)
    time.sleep(0.01)
    empty = plan_mod.freeze(small_design(title="Not started yet"), make_inputs(tmp_path / "imgs2", size=64))
    with gr.Blocks() as demo:
        with gr.Tabs():
            with gr.Tab("Other"):
                gr.Markdown("another tab")
            tab = study_tab.build_tab()
        demo.load(tab["refresh"], None, tab["refresh_outputs"])
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                allowed_paths=[str(tmp_path / "workspace")])
    try:
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("tab", name="User study").click()
            page.locator("#st-studies").get_by_test_id("cell-0-0").get_by_text(empty).wait_for()
            # the newest study has no votes: Table 6 says so plainly (no "1 2 3" headers), no warnings, no button needed
            page.locator("#st-table6").get_by_text("No votes yet").last.wait_for()
            head = page.locator("#st-table6 thead").inner_text()
            assert "Table 6" in head and not any(h in head.split() for h in ("1", "2", "3"))
            assert "0 participants" in page.locator("#st-summary").inner_text()
            screenshot(page, "study-results-empty")

            # choosing the study with votes shows its results at once
            page.locator("#st-chosen input").click()
            page.get_by_role("option", name=sid).click()
            page.locator("#st-summary").get_by_text("6 participants").first.wait_for()
            wait_for(lambda: not any("processing" in page.locator(f"#st-{e}").inner_text()
                                     for e in ("summary", "warnings", "table6", "bt-table", "status")), 60, "the results")
            table = page.locator("#st-table6").inner_text()
            for label in LABELS:
                assert label in table
            page.locator("#st-bt .js-plotly-plot").first.wait_for()
            summary = page.locator("#st-summary").inner_text()
            assert "catch-trial pass rate **" not in summary and "1.000" in summary     # catch trials all passed
            assert "Krippendorff's α (nominal)" in summary
            bt = page.locator("#st-bt-table").inner_text()
            assert bt.index(LABELS[0]) < bt.index(LABELS[1])                # the preferred run ranks first
            assert page.locator("#st-warnings").inner_text().strip() == ""  # six participants: nothing to warn
            screenshot(page, "study-results")

            # error path 1: freezing without runs -> one sentence on the status line
            page.locator("#st-freeze").click()
            page.locator("#st-status").get_by_text("Choose 2 to 6 finished runs").first.wait_for()
            # error path 2: a trial that does not exist
            page.locator("#st-preview-box").get_by_text("Preview a trial").click()
            page.locator("#st-trial-no input").fill("999")
            page.locator("#st-preview-btn").click()
            page.locator("#st-status").get_by_text("must be between 1 and 26").first.wait_for()
            # error path 3: Prolific without its completion code
            page.locator("#st-handoff").get_by_text("Crowdsourcing hand-off").click()
            page.locator("#st-platform").get_by_text("prolific").click()
            page.locator("#st-save-handoff").click()
            page.locator("#st-status").get_by_text("Prolific needs the study's completion code").first.wait_for()
            no_error_state(page)
            # everything else kept its last good content
            assert "6 participants" in page.locator("#st-summary").inner_text()
            assert LABELS[0] in page.locator("#st-table6").inner_text()
            screenshot(page, "study-tab-errors")

            # ... and still works: preview a trial, save the hand-off, export
            page.locator("#st-trial-no input").fill("2")
            page.locator("#st-preview-btn").click()
            page.locator("#st-status").get_by_text("Trial 2 of 26").first.wait_for()
            card = page.locator("#st-preview-card")
            assert card.locator("img").count() == 3 and "Which image removes the eyeglasses better?" in card.inner_text()
            assert card.locator("img").evaluate_all("els => els.every(e => e.complete && e.naturalWidth === 64)")
            page.locator("#st-code input, #st-code textarea").first.fill("C0MPL3TE")
            page.locator("#st-save-handoff").click()
            page.locator("#st-status").get_by_text("hands participants off to prolific").first.wait_for()
            assert platforms.study_settings(sid) == {"platform": "prolific", "completion_code": "C0MPL3TE"}
            page.locator("#st-summary").get_by_text("completion code").first.wait_for()
            page.locator("#st-export").click()
            page.locator("#st-files [aria-label='table6.tex']").wait_for()
            no_error_state(page)
            screenshot(page, "study-tab-preview")
    finally:
        demo.close()
        VoteStore.forget()


def test_study_warns_with_two_participants(tmp_path, monkeypatch):
    """Two participants: the results say their intervals rest on too few people, on page load."""
    browser_or_skip()
    import gradio as gr

    from browser import chromium_page
    from pairlab.study import session
    from pairlab.ui import study_tab

    monkeypatch.setenv("PAIRLAB_HOME", str(tmp_path / "workspace"))
    sid = plan_mod.freeze(small_design(), make_inputs(tmp_path / "imgs", size=64))
    svc = session.StudyService()
    for k in range(2):
        tok, st = svc.join(sid)
        while not st["finished"]:
            st = svc.vote(sid, tok, st["trial"]["handle"], ("left", "right")[k], 800)
    with gr.Blocks() as demo:
        tab = study_tab.build_tab()
        demo.load(tab["refresh"], None, tab["refresh_outputs"])
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    try:
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("#st-warnings").get_by_text("Only 2 participants answered").first.wait_for()
            assert "3 distinct resamples" in page.locator("#st-warnings").inner_text()
            screenshot(page, "study-results-warning")
    finally:
        demo.close()
        VoteStore.forget()


def test_prolific_and_mturk_participants_are_handed_back(tmp_path, monkeypatch):
    """A Prolific participant is sent to Prolific's completion URL with the code; an MTurk worker's page posts the
    assignment to externalSubmit (both intercepted in the browser: nothing leaves the machine)."""
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    from pairlab.study import platforms

    monkeypatch.setenv("PAIRLAB_HOME", str(tmp_path / "workspace"))
    design = small_design(trials_per_participant=2, repeats=0, catch_trials=0)
    prolific = plan_mod.freeze(design, make_inputs(tmp_path / "imgs", size=48))
    mturk = plan_mod.freeze(design, make_inputs(tmp_path / "imgs2", size=48))
    platforms.set_study_settings(prolific, "prolific", "CC123")
    platforms.set_study_settings(mturk, "mturk", "MT-77")
    landed, posted = [], []
    with ParticipantServer() as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            ctx = browser.new_context(viewport={"width": 1000, "height": 800})

            def prolific_page(route):
                landed.append(route.request.url)
                route.fulfill(status=200, content_type="text/html", body="<p id='prolific'>Prolific</p>")

            def mturk_page(route):
                posted.append((route.request.url, route.request.method, route.request.post_data))
                route.fulfill(status=200, content_type="text/html", body="<p id='mturk'>MTurk</p>")

            ctx.route("https://app.prolific.com/**", prolific_page)
            ctx.route("https://workersandbox.mturk.com/**", mturk_page)
            page = ctx.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{server.url}/study/{prolific}?PROLIFIC_PID=5f0c1e2d3a4b&STUDY_ID=st1&SESSION_ID=se1")
            page.locator("#consent").check()
            page.locator("#start").click()
            for k in range(2):
                wait_trial(page, k + 1, 2)
                page.keyboard.press("1")
            page.locator("#done").wait_for()
            assert page.locator("#completion").inner_text() == "CC123"
            screenshot(page, "study-prolific-done")
            page.locator("#prolific").wait_for()
            assert landed == ["https://app.prolific.com/submissions/complete?cc=CC123"]
            (person,) = VoteStore.open().participants(prolific)
            assert person["platform_participant"] == "5f0c1e2d3a4b" and person["platform_session"] == "se1"

            # MTurk: the preview cannot start; the accepted HIT posts to externalSubmit
            page = ctx.new_page()
            page.goto(f"{server.url}/study/{mturk}?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=H1")
            page.locator("#preview-note").wait_for()
            assert page.locator("#consent").is_disabled() and page.locator("#start").is_disabled()
            page.goto(f"{server.url}/study/{mturk}?workerId=W123&assignmentId=ASG456&hitId=H1"
                      "&turkSubmitTo=https%3A%2F%2Fworkersandbox.mturk.com")
            page.locator("#consent").check()
            page.locator("#start").click()
            for k in range(2):
                wait_trial(page, k + 1, 2)
                page.keyboard.press("2")
            page.locator("#mturk-submit").wait_for()
            assert page.locator("#completion").inner_text() == "MT-77"
            screenshot(page, "study-mturk-done")
            page.locator("#mturk-submit").click()
            page.locator("#mturk").wait_for()
            assert posted == [("https://workersandbox.mturk.com/mturk/externalSubmit", "POST",
                               "assignmentId=ASG456&completion_code=MT-77")]
        finally:
            browser.close()
    VoteStore.forget()
