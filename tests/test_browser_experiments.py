"""The Experiments tab in real headless Chromium: plan paper 000's ``explicit`` experiment on the tiny profile
(4 runs of 2 iterations), start it, watch the app's scheduler train the runs, report (claims with verdicts, the
table in the paper's layout, plot, grid, downloads), open the written report.html; a reload reopens it all; bad
input is one sentence in the status line while the page keeps its content."""
import time

import pytest

from browser import ARTIFACTS, browser_or_skip, chromium_page, running_app, screenshot, wait_for

pytestmark = pytest.mark.browser


def text(page, elem_id: str) -> str:
    loc = page.locator(f"#{elem_id}")
    return loc.inner_text() if loc.count() else ""


def fill(page, elem_id: str, value: str) -> None:
    page.locator(f"#{elem_id} textarea, #{elem_id} input").first.fill(value)


def choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").first.click()
    page.locator("[role=option]", has_text=option).first.click()
    wait_for(lambda: page.locator(f"#{elem_id} input").first.input_value() == option, timeout=20,
             what=f"{option} chosen")


def run_rows(page) -> list[str]:
    rows = [" ".join(r.split()) for r in page.locator("#ex-runs [role=row]").all_inner_texts()]
    return [r for r in rows if r.startswith("x-eyeglasses-tiny-")]


def test_experiments_tab_plan_start_report(tmp_path, monkeypatch):
    browser_or_skip()
    monkeypatch.setenv("PAIRLAB_HOME", str(tmp_path / "workspace"))
    env = {"PAIRLAB_SYNTHFACES_COUNT": "120", "PAIRLAB_SYNTHFACES_SIZE": "64", "PAIRLAB_CPU_SLOTS": "2",
           "PAIRLAB_EXIT_AFTER": "2400"}  # a loaded machine: measuring, training and evaluating take minutes
    folder = tmp_path / "workspace" / "experiments" / "eyeglasses-tiny"
    try:
        with running_app(tmp_path, env) as url, chromium_page(1400, 1000) as page:
            page.goto(url)
            page.get_by_role("tab", name="Experiments").click()
            page.locator("#ex-plan").wait_for()
            assert page.locator("#ex-experiment input").first.input_value() == "explicit"
            choose(page, "ex-profile", "tiny")
            wait_for(lambda: "plumbing only" in text(page, "ex-profile-info"), timeout=20, what="profile description")
            fill(page, "ex-seeds", "0,1")

            # Report before anything exists: one sentence, nothing else changes.
            page.locator("#ex-report").click()
            page.locator("#ex-status").get_by_text("Nothing to report yet").wait_for()
            assert "press Start first" in text(page, "ex-status")
            assert "No report yet" in text(page, "ex-claims") and "plumbing only" in text(page, "ex-profile-info")
            assert page.locator(".error, .toast-body").count() == 0
            screenshot(page, "experiments-report-too-early")

            # Plan: the runs table at once, then the measured estimate.
            page.locator("#ex-plan").click()
            page.locator("#ex-status").get_by_text("Planned").wait_for()
            wait_for(lambda: len(run_rows(page)) == 4, timeout=60, what="4 planned runs")
            assert all("not queued" in r and "0/2" in r for r in run_rows(page)), run_rows(page)
            assert "4 runs" in text(page, "ex-estimate")
            wait_for(lambda: "Measured here" in text(page, "ex-estimate"), timeout=600, what="the measured estimate")
            est = text(page, "ex-estimate")
            assert "cyclegan" in est and "pix2pix" in est and "wall time about" in est, est
            screenshot(page, "experiments-planned")

            # Bad seeds: one sentence in the status line; the plan, its table and estimate stay.
            fill(page, "ex-seeds", "x")
            page.locator("#ex-plan").click()
            page.locator("#ex-status").get_by_text("Seeds are whole numbers").wait_for()
            assert len(run_rows(page)) == 4 and "Measured here" in text(page, "ex-estimate")
            assert "Traceback" not in text(page, "ex-status") and page.locator(".toast-body").count() == 0
            time.sleep(1.0)
            assert "Measured here" in text(page, "ex-estimate")  # no measurement of the old plan started
            screenshot(page, "experiments-bad-seeds")
            fill(page, "ex-seeds", "0,1")

            # Start: compositions built, 4 runs queued; the app's scheduler trains them and the timer shows it.
            page.locator("#ex-start").click()
            page.locator("#ex-status").get_by_text("Started").wait_for(timeout=600_000)
            assert "4 run(s) queued" in text(page, "ex-status")
            wait_for(lambda: any(s in text(page, "ex-runs") for s in ("queued", "running", "done")), timeout=60,
                     what="queued runs in the table")
            screenshot(page, "experiments-started")
            wait_for(lambda: "4/4 done" in text(page, "ex-overall"), timeout=1200, what="4 runs done")
            assert all(" done" in r and "2/2" in r for r in run_rows(page)), run_rows(page)
            assert "Measured here" in text(page, "ex-estimate")  # the estimate of this plan stays
            screenshot(page, "experiments-done")

            # Report: claims with verdicts, the table in the paper's layout, plot, grid and downloads.
            page.locator("#ex-report").click()
            page.locator("#ex-status").get_by_text("Report of").wait_for(timeout=600_000)
            assert "from 4 of 4 finished runs" in text(page, "ex-status")
            claims = text(page, "ex-claims")
            assert page.locator("#ex-claims .ex-verdict").count() >= 1
            assert "explicit-implicit-removes-more" in claims
            assert any(v in claims for v in ("holds", "not significant", "reversed", "too few seeds")), claims
            table = text(page, "ex-table")
            assert "implicit" in table and "input unchanged" in table and "gt_l1" in table
            page.locator("#ex-plot .js-plotly-plot").first.wait_for()
            page.locator("#ex-grid img").first.wait_for()
            files = "".join(text(page, "ex-files").split())  # the names are split over lines
            for name in ("report.html", "table.csv", "table.tex", "claims.csv"):
                assert name in files, files
            report = folder / "explicit" / "report.html"
            assert report.exists() and (folder / "explicit" / "grid.png").exists()
            page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
            screenshot(page, "experiments-report")

            # A reload reopens the plan, its finished runs and its report from the workspace.
            page.reload()
            page.get_by_role("tab", name="Experiments").click()
            wait_for(lambda: len(run_rows(page)) == 4 and "4/4 done" in text(page, "ex-overall"), timeout=60,
                     what="the plan reopened")
            assert page.locator("#ex-profile input").first.input_value() == "tiny"
            assert page.locator("#ex-seeds textarea, #ex-seeds input").first.input_value() == "0,1"
            wait_for(lambda: page.locator("#ex-claims .ex-verdict").count() >= 1, timeout=30, what="report reopened")
            assert "report.html" in "".join(text(page, "ex-files").split())
            screenshot(page, "experiments-reloaded")

            # The standalone report.
            page.goto(report.as_uri())
            page.get_by_text("Claims of the implicit-pairs paper").first.wait_for()
            assert "explicit-implicit-removes-more" in page.content()
            screenshot(page, "experiments-report-html")
            page.screenshot(path=str(ARTIFACTS / "experiments-report-html-top.png"))
    finally:
        # Workers run in their own sessions (they survive app restarts by design): end them here.
        from pairlab.train.queue import Queue

        q = Queue(cpu_slots=0)
        for r in q.list_runs():
            try:
                q.delete(r["id"])
            except Exception:
                pass
