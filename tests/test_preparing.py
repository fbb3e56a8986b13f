"""The page the lab's port answers during start-up (issue 16, finding 5: no more "connection refused" for minutes):
503 + Retry-After with the progress as HTML or JSON, never backwards, and the port freed for Gradio on close."""
import json
import socket
import urllib.error
import urllib.request

import pytest

from pairlab.ui.preparing import Preparing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, accept: str = "text/html"):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": accept}), timeout=5)
    return err.value


def test_preparing_page_answers_503_with_progress_then_frees_the_port():
    port = free_port()
    prep = Preparing("127.0.0.1", port)
    try:
        url = f"http://127.0.0.1:{port}/"
        page = get(url)
        assert page.code == 503 and page.headers["Retry-After"] == "2" and page.headers["X-Pairlab-Preparing"] == "1"
        body = page.read().decode()
        assert "Preparing the workspace" in body and "Starting" in body and "location.reload" in body

        step = prep.phase(0.3, 0.9, "The demo workspace: ")
        step(0.5, "Evaluating the <demo> runs")
        got = json.loads(get(url + "anything/else", "application/json").read())
        assert got["preparing"] and got["fraction"] == pytest.approx(0.6)
        assert got["message"] == "The demo workspace: Evaluating the <demo> runs"
        assert "60</span>%" in get(url).read().decode()
        assert "&lt;demo&gt;" in get(url).read().decode()  # messages are escaped
        prep.update(0.2, "an earlier step reporting late")  # the bar never moves backwards
        assert json.loads(get(url, "application/json").read())["fraction"] == pytest.approx(0.6)
        with pytest.raises(OSError):  # the port is taken while it prepares
            Preparing("127.0.0.1", port)
    finally:
        prep.close()
    with socket.socket() as s:  # freed for Gradio
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
