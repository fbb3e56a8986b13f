"""Helpers for the browser tests: start the app with the README's start command, drive headless Chromium.

Screenshots go to ``test-artifacts/`` at the repository root (ignored by git) so a person can look at them.
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser_or_skip():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed (./pairlab.sh test installs it)")
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed")


@contextmanager
def running_app(tmp_path: Path, extra_env: dict | None = None, startup_timeout: float = 300, ready: bool = True):
    """Start ``./pairlab.sh app`` on a free loopback port with its own workspace; yield the URL once the lab
    answers 200 (``ready=False``: once the port answers at all, e.g. the 503 "preparing the workspace" page)."""
    port = free_port()
    env = dict(os.environ)
    for name in ("home", "tmp", "gradio"):
        (tmp_path / name).mkdir(exist_ok=True)
    env.update({
        "PAIRLAB_HOME": str(tmp_path / "workspace"), "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"), "TMPDIR": str(tmp_path / "tmp"), "HOME": str(tmp_path / "home"),
        "PAIRLAB_EXIT_AFTER": "900", "PYTHONUNBUFFERED": "1", "PAIRLAB_DEMO": "0",  # empty workspace unless a test asks
    })
    env.update(extra_env or {})
    log = open(tmp_path / "app.log", "w")
    proc = subprocess.Popen([str(REPO / "pairlab.sh"), "app", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError("the app exited during start-up:\n" + (tmp_path / "app.log").read_text()[-3000:])
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except urllib.error.HTTPError:
                if not ready:
                    break
                if time.time() > deadline:
                    raise RuntimeError("the app did not start in time:\n" + (tmp_path / "app.log").read_text()[-3000:])
                time.sleep(0.5)
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("the app did not start in time:\n" + (tmp_path / "app.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url
    finally:
        stop_process_group(proc)
        log.close()


def stop_process_group(proc, grace: float = 20) -> None:
    """End a server started in its own session: SIGTERM to its group, SIGKILL after ``grace`` seconds; a group
    that is gone already is fine."""
    for sig, wait in ((15, grace), (9, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except Exception:
            continue


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_for(pred, timeout=120, what="condition") -> None:
    """Poll ``pred`` until it holds; fail the test with ``what`` after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while not pred():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input").first
    box.fill(str(value))
    box.press("Tab")
