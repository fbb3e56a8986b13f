"""The participant server through HTTP: no lost votes across a hard restart, blindness, forged and replayed
submissions, and that nothing of the lab is served or linked from the participant page."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pairlab.study import plan as plan_mod
from pairlab.study.store import VoteStore
from pairlab.study.server import create_app
from test_study import LABELS, RUN_DIRS, make_inputs, small_design
from browser import free_port

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def study(tmp_path):
    root = tmp_path / "studies"
    root.mkdir()
    sid = plan_mod.freeze(small_design(), make_inputs(tmp_path / "imgs"), root=root)
    yield root, sid
    VoteStore.forget(root)


def start_server(root: Path, port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "pairlab.study.server", "--root", str(root), "--port", str(port),
                             "--exit-after", "120"], cwd=REPO, stdout=open(log, "a"), stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("participant server did not start: " + log.read_text()[-2000:])
            time.sleep(0.05)


def http(method: str, url: str, body=None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_no_vote_lost_across_a_hard_restart(study, tmp_path):
    root, sid = study
    port = free_port()
    base = f"http://127.0.0.1:{port}/study/{sid}"
    proc = start_server(root, port, tmp_path / "server.log")
    acknowledged = []
    try:
        status, data = http("POST", f"{base}/api/join", {"consent": True})
        assert status == 200
        token, state = data["token"], data["state"]
        total = state["total"]
        for k in range(total // 2):
            choice = ("left", "right", "both", "neither")[k % 4]
            status, new = http("POST", f"{base}/api/vote", {"p": token, "handle": state["trial"]["handle"],
                                                            "choice": choice, "client_ms": 400 + k})
            assert status == 200
            acknowledged.append((state["trial"]["handle"], choice))
            state = new
    finally:
        proc.send_signal(signal.SIGKILL)          # no clean shutdown: only committed data survives
        proc.wait(10)
    proc = start_server(root, port, tmp_path / "server.log")
    try:
        status, resumed = http("GET", f"{base}/api/state?p={token}")
        assert status == 200
        assert resumed["done"] == len(acknowledged) and resumed["trial"]["handle"] == state["trial"]["handle"]
        # replaying an acknowledged vote after the restart is harmless
        status, again = http("POST", f"{base}/api/vote", {"p": token, "handle": acknowledged[-1][0], "choice": acknowledged[-1][1]})
        assert status == 200 and again["duplicate"] and again["done"] == len(acknowledged)
        state = resumed
        while not state["finished"]:
            status, state = http("POST", f"{base}/api/vote", {"p": token, "handle": state["trial"]["handle"], "choice": "left",
                                                               "client_ms": 321})
            assert status == 200
        assert re.fullmatch(r"[0-9A-F]{5}-[0-9A-F]{5}", state["completion_code"])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    VoteStore.forget(root)
    votes = VoteStore.open(root).votes(sid)
    assert len(votes) == total and sorted(v["position"] for v in votes) == list(range(total))
    assert [v["choice"] for v in votes[:len(acknowledged)]] == [c for _, c in acknowledged]
    assert all(v["client_ms"] is not None and v["server_ms"] is not None for v in votes)


def collect_participant_session(client: TestClient, sid: str, n_participants: int = 3) -> tuple[str, list[str]]:
    """Everything a participant's browser receives: page HTML, JSON bodies, URLs and response headers."""
    seen, urls = [], []

    def get(url, **kw):
        urls.append(url)
        r = client.get(url, **kw)
        seen.append(r.text if "image" not in r.headers.get("content-type", "") else "")
        seen.append(json.dumps(dict(r.headers)))
        return r

    def post(url, body):
        urls.append(url)
        r = client.post(url, json=body)
        seen.append(r.text)
        seen.append(json.dumps(dict(r.headers)))
        return r

    for _ in range(n_participants):
        client.cookies.clear()
        page = get(f"/study/{sid}")
        assert page.status_code == 200
        data = post(f"/study/{sid}/api/join", {"consent": True}).json()
        token, state = data["token"], data["state"]
        get(f"/study/{sid}?p={token}")
        while not state["finished"]:
            t = state["trial"]
            assert set(t) == {"handle", "source", "left", "right"}
            for name in (t["source"], t["left"], t["right"]):
                img = get(f"/study/{sid}/media/{name}")
                assert img.status_code == 200 and img.headers["content-type"] == "image/png"
            get(f"/study/{sid}/api/state?p={token}")
            state = post(f"/study/{sid}/api/vote", {"p": token, "handle": t["handle"], "choice": "left", "client_ms": 5}).json()
    return "\n".join(seen + urls), urls


def test_participant_page_is_blind(study, tmp_path):
    root, sid = study
    plan = plan_mod.load_plan(sid, root)
    with TestClient(create_app(root)) as client:
        text, urls = collect_participant_session(client, sid)
    forbidden = list(LABELS) + list(RUN_DIRS) + [str(tmp_path), "cyclegan", "zeta", "pct", "alpha0"]
    forbidden += list(plan.data["samples"]) + [t["id"] for t in plan.data["trials"]] + ["catch-", "\"catch\"", "truth", "vs_source"]
    low = text.lower()
    for word in forbidden:
        assert word.lower() not in low, f"the participant saw {word!r}"
    for url in urls:
        assert re.fullmatch(rf"/study/{sid}(\?p=[0-9a-f]+\.[0-9a-f]+|/api/(join|vote|state\?p=[0-9a-f.]+)|/media/[0-9a-f]{{24}}\.png)?", url), url
    # the candidate ids themselves ("c0", "c1", "source") never appear as JSON values either
    assert not re.search(r':\s*"(c\d|source|catch-good|catch-bad)"', text)
    # order tells nothing: every run appears on both sides across trials and participants
    votes = VoteStore.open(root).votes(sid)
    for cand in ("c0", "c1", "c2", "source"):
        assert {v["left_cand"] for v in votes} >= {cand} and {v["right_cand"] for v in votes} >= {cand}


def test_forged_and_replayed_submissions_are_refused(study):
    root, sid = study
    other = plan_mod.freeze(small_design(), make_inputs(root.parent / "imgs2", n=6), root=root)
    store = VoteStore.open(root)
    with TestClient(create_app(root)) as client:
        data = client.post(f"/study/{sid}/api/join", json={"consent": True}).json()
        token, state = data["token"], data["state"]
        handle = state["trial"]["handle"]
        other_data = client.post(f"/study/{other}/api/join", json={"consent": True}).json()
        pid, mac = token.split(".")
        pos, hmac_ = handle.split(".")
        bad = [
            ({"p": pid + "." + "0" * 32, "handle": handle, "choice": "left"}, 403, "participant link is not valid"),
            ({"p": other_data["token"], "handle": handle, "choice": "left"}, 403, "participant link is not valid"),
            ({"p": "ffff" + token[4:], "handle": handle, "choice": "left"}, 403, "participant link is not valid"),
            ({"p": token, "handle": f"{int(pos) + 1}.{hmac_}", "choice": "left"}, 403, "not given to you"),
            ({"p": token, "handle": other_data["state"]["trial"]["handle"], "choice": "left"}, 403, "not given to you"),
            ({"p": token, "handle": "999.0123456789abcdef", "choice": "left"}, 403, "not given to you"),
            ({"p": token, "handle": handle, "choice": "maybe"}, 422, "must be one of"),
            ({"p": token, "handle": handle, "choice": "left", "client_ms": "fast"}, 422, "milliseconds"),
            ({"p": token, "handle": handle}, 422, "must be one of"),
            ({}, 403, "participant link"),
        ]
        for body, status, message in bad:
            r = client.post(f"/study/{sid}/api/vote", json=body)
            assert r.status_code == status and message in r.json()["error"], (body, r.text)
        for raw, message in ((b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object"), (b"x" * 10_000, "too large")):
            r = client.post(f"/study/{sid}/api/vote", content=raw, headers={"Content-Type": "application/json"})
            assert 400 <= r.status_code < 500 and message in r.json()["error"]
        r = client.post("/study/000000000000/api/vote", json={"p": token, "handle": handle, "choice": "left"})
        assert r.status_code == 404 and "not valid" in r.json()["error"]
        r = client.post(f"/study/{sid}/api/join", json={"consent": False})
        assert r.status_code == 422 and "agree" in r.json()["error"]
        assert client.get("/study/000000000000").status_code == 404
        assert client.get("/study/..%2F..%2Fetc").status_code == 404
        for name in ("0" * 24 + ".png", "..%2Fplan.json", "plan.json", "../votes.sqlite"):
            assert client.get(f"/study/{sid}/media/{name}").status_code == 404
        other_media = other_data["state"]["trial"]["left"]
        assert client.get(f"/study/{sid}/media/{other_media}").status_code == 404   # another study's image
        assert store.counts(sid)["votes"] == 0                                      # nothing stored wrongly

        # a valid vote still works after all that; replay is harmless, a changed answer refused
        r = client.post(f"/study/{sid}/api/vote", json={"p": token, "handle": handle, "choice": "both", "client_ms": 700})
        assert r.status_code == 200 and r.json()["done"] == 1
        r = client.post(f"/study/{sid}/api/vote", json={"p": token, "handle": handle, "choice": "both"})
        assert r.status_code == 200 and r.json()["duplicate"]
        r = client.post(f"/study/{sid}/api/vote", json={"p": token, "handle": handle, "choice": "left"})
        assert r.status_code == 409 and "cannot be changed" in r.json()["error"]
        assert store.counts(sid)["votes"] == 1 and store.votes(sid)[0]["choice"] == "both"

        # a closed study: one sentence, 410, for votes, joins and the page's state
        store.set_state(sid, "closed")
        nxt = r = client.get(f"/study/{sid}/api/state?p={token}")
        assert nxt.status_code == 410 and "closed" in nxt.json()["error"]
        r = client.post(f"/study/{sid}/api/join", json={"consent": True})
        assert r.status_code == 410
        assert store.counts(sid)["votes"] == 1


def test_the_lab_is_not_reachable_from_the_participant_app(study):
    root, sid = study
    with TestClient(create_app(root)) as client:
        page = client.get(f"/study/{sid}")
        html = page.text
        assert "<a " not in html.lower() and "href" not in html.lower()       # no links at all
        for word in ("gradio", "pairlab", "datasets", "training", "workspace", "/config", "/runs", "user study"):
            assert word not in html.lower(), word
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp
        assert page.headers["referrer-policy"] == "no-referrer"
        for path in ("/", "/config", "/gradio_api/info", "/gradio_api/queue/join", "/docs", "/openapi.json", "/redoc",
                     "/study", "/study/", "/file=plan.json", "/assets/index.js", "/theme.css", "/login"):
            r = client.get(path)
            assert r.status_code in (404, 405), (path, r.status_code)
            assert "gradio" not in r.text.lower()
        # a returning browser (cookie) is sent back to its session
        data = client.post(f"/study/{sid}/api/join", json={"consent": True}).json()
        r = client.get(f"/study/{sid}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/study/{sid}?p={data['token']}"
        cookie = r.request.headers.get("cookie", "")
        assert data["token"] in cookie


# ------------------------------------------------------------------------------------------ closed studies, hand-off
def get_page(url: str) -> tuple[int, str, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), dict(err.headers)


def finish_all(base: str, token: str, state: dict) -> dict:
    while not state["finished"]:
        status, state = http("POST", f"{base}/api/vote", {"p": token, "handle": state["trial"]["handle"], "choice": "left"})
        assert status == 200
    return state


def test_a_closed_study_refuses_before_instructions_and_consent(study):
    from pairlab.study.server import ParticipantServer

    root, sid = study
    store = VoteStore.open(root)
    with ParticipantServer(root=root) as server:
        base = f"{server.url}/study/{sid}"
        status, page, _ = get_page(base)
        assert status == 200 and 'id="consent"' in page
        status, data = http("POST", f"{base}/api/join", {"consent": True})
        done_token = data["token"]
        finish_all(base, done_token, data["state"])
        status, data = http("POST", f"{base}/api/join", {"consent": True})
        half_token = data["token"]
        store.set_state(sid, "closed")
        for url in (base, f"{base}?p={half_token}", f"{base}?PROLIFIC_PID=abc"):
            status, page, headers = get_page(url)
            assert status == 410, url
            assert "This study is closed and takes no more answers." in page
            for word in ('id="consent"', 'id="instructions"', "I agree", ">Start<", "Comparison", "<script"):
                assert word not in page, (url, word)
        # a participant who finished may still see their code
        status, page, _ = get_page(f"{base}?p={done_token}")
        assert status == 200
        status, state = http("GET", f"{base}/api/state?p={done_token}")
        assert status == 200 and state["finished"] and state["completion_code"]
        store.set_state(sid, "open")
        assert get_page(base)[0] == 200


def test_prolific_hand_off_through_the_participant_server(study, tmp_path):
    from pairlab.study import platforms
    from pairlab.study.export import export_study
    from pairlab.study.server import ParticipantServer

    root, sid = study
    platforms.set_study_settings(sid, "prolific", "C0MPL3TE", root=root)
    ids = {"PROLIFIC_PID": "5f0c1e2d3a4b5c6d7e8f9a0b", "STUDY_ID": "60aa11bb22cc", "SESSION_ID": "sess_01-x"}
    query = "&".join(f"{k}={v}" for k, v in ids.items())
    with ParticipantServer(root=root) as server:
        base = f"{server.url}/study/{sid}"
        status, page, headers = get_page(f"{base}?{query}")
        assert status == 200 and json.dumps(ids)[1:-1] in page          # the ids go back with the join
        # a bad id is refused at once, with one sentence, on the page and at the join
        for bad in ("PROLIFIC_PID=a%20b", "PROLIFIC_PID=%3Cscript%3E", "PROLIFIC_PID=" + "x" * 65,
                    "PROLIFIC_PID=p1&workerId=w1&assignmentId=a1", "STUDY_ID=only"):
            status, page, _ = get_page(f"{base}?{bad}")
            assert status == 422 and 'id="consent"' not in page, bad
            assert re.search(r'<p class="msg">[^<]+\.</p>', page), page
        status, data = http("POST", f"{base}/api/join", {"consent": True, "platform": {"PROLIFIC_PID": "bad id!"}})
        assert status == 422 and data["error"] == "The link's PROLIFIC_PID must be 1 to 64 letters, digits, '_' or '-'."
        status, data = http("POST", f"{base}/api/join", {"consent": True, "platform": "PROLIFIC_PID=x"})
        assert status == 422 and "named values" in data["error"]
        assert VoteStore.open(root).counts(sid)["participants"] == 0
        # join with the ids: stored; the same PROLIFIC_PID again resumes the same participant
        status, data = http("POST", f"{base}/api/join", {"consent": True, "platform": ids})
        assert status == 200
        token = data["token"]
        status, again = http("POST", f"{base}/api/join", {"consent": True, "platform": ids})
        assert status == 200 and again["token"] == token
        assert data["state"]["completion_url"] is None
        end = finish_all(base, token, data["state"])
        assert end["completion_code"] == "C0MPL3TE"
        assert end["completion_url"] == "https://app.prolific.com/submissions/complete?cc=C0MPL3TE"
        status, state = http("GET", f"{base}/api/state?p={token}")
        assert state["completion_url"] == end["completion_url"]
    (person,) = VoteStore.open(root).participants(sid)
    assert (person["platform"], person["platform_participant"], person["platform_study"], person["platform_session"]) == (
        "prolific", ids["PROLIFIC_PID"], ids["STUDY_ID"], ids["SESSION_ID"])
    paths = export_study(sid, tmp_path / "out", root=root, bootstrap=20)
    import csv

    rows = list(csv.DictReader(open(paths["votes.csv"])))
    assert rows and all(r["platform"] == "prolific" and r["platform_participant"] == ids["PROLIFIC_PID"]
                        and r["platform_session"] == ids["SESSION_ID"] for r in rows)
    (prow,) = list(csv.DictReader(open(paths["participants.csv"])))
    assert prow["platform_study"] == ids["STUDY_ID"]
    summary = json.loads(paths["summary.json"].read_text())
    assert summary["settings"] == {"platform": "prolific", "completion_code": "C0MPL3TE"}


def test_mturk_hand_off_through_the_participant_server(study):
    from pairlab.study import platforms
    from pairlab.study.server import ParticipantServer

    root, sid = study
    platforms.set_study_settings(sid, "mturk", "MT-0042", root=root)
    with ParticipantServer(root=root) as server:
        base = f"{server.url}/study/{sid}"
        # the HIT preview (not accepted yet): the page says so and the join is refused
        status, page, headers = get_page(f"{base}?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=H1")
        assert status == 200 and '"preview": true' in page
        assert "form-action https://www.mturk.com https://workersandbox.mturk.com" in headers["content-security-policy"]
        status, data = http("POST", f"{base}/api/join", {"consent": True, "platform": {
            "assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": "H1"}})
        assert status == 409 and "accept the HIT" in data["error"]
        # a foreign submit address is refused
        status, page, _ = get_page(f"{base}?workerId=W1&assignmentId=A1&turkSubmitTo=https%3A%2F%2Fevil.example")
        assert status == 422 and "MTurk&#x27;s own address" in page
        ids = {"workerId": "A1B2C3D4E5", "assignmentId": "3XYZASSIGN0001", "hitId": "3HITHIT01",
               "turkSubmitTo": "https://workersandbox.mturk.com"}
        status, data = http("POST", f"{base}/api/join", {"consent": True, "platform": ids})
        assert status == 200
        end = finish_all(base, data["token"], data["state"])
        assert end["completion_code"] == "MT-0042" and end["completion_url"] is None
        assert end["submit"] == {"action": "https://workersandbox.mturk.com/mturk/externalSubmit", "assignmentId": "3XYZASSIGN0001"}
    (person,) = VoteStore.open(root).participants(sid)
    assert (person["platform"], person["platform_participant"], person["platform_session"], person["platform_study"]) == (
        "mturk", "A1B2C3D4E5", "3XYZASSIGN0001", "3HITHIT01")
    # without a platform the page keeps its strict CSP and shows the participant's own code
    platforms.set_study_settings(sid, "none", None, root=root)
    with TestClient(create_app(root)) as client:
        assert "form-action 'none'" in client.get(f"/study/{sid}").headers["content-security-policy"]
