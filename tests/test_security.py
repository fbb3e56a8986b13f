"""Issue 12, finding 1: neither the lab (Gradio) nor the participant server hands out a workspace's secrets.

One real lab process (``lab_app.py``, loopback only, stops by itself) on a workspace with a frozen study that has
votes; every sensitive file is asked for through real HTTP on both ports, plainly and with path tricks (``..``,
encoded and doubled slashes, double encoding, symlinks in the served cache), and each request must be refused
without a byte of the file in the answer. A handed-out file (a copy in Gradio's cache) and a study image still load.
"""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from browser import free_port, stop_process_group

REPO = Path(__file__).resolve().parent.parent


def raw_get(port: int, target: str, method: str = "GET", body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, bytes]:
    """A request with the target exactly as written (no client-side normalisation of '..' or '%2F')."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A lab on loopback with a frozen study that has a participant and a vote; yields ports, paths, secrets."""
    with lab_server(tmp_path_factory.mktemp("security")) as info:
        yield info


@contextmanager
def lab_server(tmp: Path):
    from pairlab.study import plan as plan_mod
    from pairlab.study.store import VoteStore
    from test_study import make_inputs, small_design

    ws = tmp / "workspace"
    studies = ws / "studies"
    studies.mkdir(parents=True)
    sid = plan_mod.freeze(small_design(), make_inputs(tmp / "imgs"), root=studies)
    VoteStore.forget(studies)
    # secret-bearing files of a lab at work: a run with config, checkpoint and job; a composition manifest
    run = ws / "runs" / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "latest.pt").write_bytes(b"CHECKPOINT-BYTES-r1")
    (run / "config.json").write_text(json.dumps({"model": "cyclegan", "marker": "CONFIG-r1"}))
    (run / "job.json").write_text(json.dumps({"marker": "JOB-r1"}))
    (run / "samples").mkdir()
    comp = ws / "compositions" / "c1"
    (comp / "trainA").mkdir(parents=True)
    (comp / "manifest.json").write_text(json.dumps({"marker": "MANIFEST-c1"}))
    (ws / "presets").mkdir()
    (ws / "presets" / "mine.json").write_text(json.dumps({"marker": "PRESET"}))
    gradio_dir = tmp / "gradio"
    (gradio_dir / "handed").mkdir(parents=True)
    (gradio_dir / "handed" / "shown.png").write_bytes(b"\x89PNG-handed-out")
    port, study_port = free_port(), free_port()
    env = dict(os.environ, PAIRLAB_HOME=str(ws), GRADIO_TEMP_DIR=str(gradio_dir), GRADIO_ANALYTICS_ENABLED="False",
               PYTHONPATH=str(REPO), PAIRLAB_DEMO="0", PYTHONUNBUFFERED="1", PAIRLAB_CPU_SLOTS="0")
    env.pop("PAIRLAB_AUTH", None)
    env.pop("PAIRLAB_STUDY_URL", None)
    log = open(tmp / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, str(REPO / "lab_app.py"), "--host", "127.0.0.1", "--port", str(port),
                             "--study-port", str(study_port), "--no-default-source", "--empty", "--exit-after", "400"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 240
        while True:
            try:
                if raw_get(port, "/")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("the lab did not start:\n" + (tmp / "lab.log").read_text()[-3000:])
            time.sleep(0.5)
        # a participant joins and votes, so votes.sqlite (and its WAL) exist and hold data
        status, body = raw_get(study_port, f"/study/{sid}/api/join", "POST", json.dumps({"consent": True}).encode(),
                               {"Content-Type": "application/json"})
        assert status == 200, body
        data = json.loads(body)
        trial = data["state"]["trial"]
        status, body = raw_get(study_port, f"/study/{sid}/api/vote", "POST",
                               json.dumps({"p": data["token"], "handle": trial["handle"], "choice": "left",
                                           "client_ms": 900}).encode(), {"Content-Type": "application/json"})
        assert status == 200, body
        # symlinks planted where files are served from, pointing at the secret and the plan
        (gradio_dir / "handed" / "evil.png").symlink_to(studies / ".secret")
        (gradio_dir / "handed" / "evil-dir").symlink_to(studies / sid)
        media = studies / sid / "media"
        (media / ("ab" * 12 + ".png")).symlink_to(studies / ".secret")
        yield {"port": port, "study_port": study_port, "ws": ws, "studies": studies, "sid": sid, "run": run,
               "comp": comp, "gradio": gradio_dir, "trial": trial, "proc": proc, "log": tmp / "lab.log"}
    finally:
        stop_process_group(proc)
        log.close()
        VoteStore.forget(studies)


def sensitive_files(lab) -> list[Path]:
    ws, studies, sid = lab["ws"], lab["studies"], lab["sid"]
    files = [studies / ".secret", studies / sid / "plan.json", studies / "votes.sqlite", lab["run"] / "config.json",
             lab["run"] / "job.json", lab["run"] / "checkpoints" / "latest.pt", lab["comp"] / "manifest.json",
             ws / "presets" / "mine.json"]
    files += [p for p in studies.glob("votes.sqlite-*")]
    for f in files:
        assert f.is_file(), f
    return files


def tricks(path: Path, ws: Path) -> list[str]:
    """Ways to name ``path`` in a ``file=`` URL."""
    text = str(path)
    rel = path.relative_to(ws)
    return [
        text,
        quote(text, safe=""),                                        # every slash encoded
        quote(quote(text, safe=""), safe=""),                        # encoded twice
        text.replace("/", "//"),                                     # doubled slashes
        f"{ws}/compositions/../{rel}",                               # dot-dot through an allowed folder
        f"{ws}/compositions/%2E%2E/{rel}",                           # encoded dot-dot
        f"{ws}/compositions/..%2F{quote(str(rel), safe='')}",        # dot-dot with an encoded slash
        f"{lab_cache_prefix(ws)}/../../{path.relative_to('/')}",     # up out of the served cache
        f"file://{text}",
        str(rel),                                                    # relative to the app's folder
    ]


def lab_cache_prefix(ws: Path) -> str:
    return str(ws.parent / "gradio" / "handed")


def test_lab_serves_no_workspace_file(lab):
    port = lab["port"]
    secrets = {f: f.read_bytes() for f in sensitive_files(lab)}
    refused = 0
    for f, content in secrets.items():
        for name in tricks(f, lab["ws"]):
            for prefix in ("/gradio_api/file=", "/file=", "/gradio_api/proxy=", "/proxy="):
                status, body = raw_get(port, prefix + name)
                assert status in (403, 404), (prefix + name, status)
                assert content[:32] not in body or len(content) < 8, prefix + name
                refused += 1
    # symlinks inside the served cache that point at the secret and at a study folder
    for name in (f"{lab['gradio']}/handed/evil.png", f"{lab['gradio']}/handed/evil-dir/plan.json"):
        status, body = raw_get(port, "/gradio_api/file=" + name)
        assert status in (403, 404), name
        refused += 1
    assert refused > 300
    # what the pages hand out (a copy in Gradio's cache) is still served, and the lab keeps serving
    status, body = raw_get(port, f"/gradio_api/file={lab['gradio']}/handed/shown.png")
    assert status == 200 and body == b"\x89PNG-handed-out"
    assert raw_get(port, "/")[0] == 200
    status, body = raw_get(port, "/config")
    assert status == 200 and secrets[lab["studies"] / ".secret"].hex() not in body.decode("utf-8", "replace")


def test_lab_hands_out_workspace_images_only_as_copies(lab):
    """A handler returning a workspace image still works: Gradio copies it into the served cache."""
    import gradio as gr

    from pairlab.ui.serving import blocked_paths, is_served

    img = lab["comp"] / "trainA" / "x.png"
    img.write_bytes(b"not served directly")
    status, _ = raw_get(lab["port"], f"/gradio_api/file={img}")
    assert status in (403, 404)
    assert not is_served(str(img)) and not is_served(str(lab["studies"] / ".secret"))
    assert str(lab["studies"] / ".secret") in blocked_paths(lab["ws"])
    assert gr.__version__.split(".")[0] >= "5"


def test_participant_server_serves_only_opaque_images(lab):
    port, sid, studies = lab["study_port"], lab["sid"], lab["studies"]
    trial = lab["trial"]
    status, body = raw_get(port, f"/study/{sid}/media/{trial['left']}")
    assert status == 200 and body[:4] == b"\x89PNG"
    secrets = {f: f.read_bytes() for f in sensitive_files(lab)}
    targets = []
    for f in secrets:
        rel = f.relative_to(studies) if studies in f.parents else f.relative_to(lab["ws"])
        for name in (str(rel), quote(str(rel), safe=""), f"../{rel}", f"..%2F{quote(str(rel), safe='')}",
                     f"%2E%2E%2F{quote(str(rel), safe='')}", f"..%252F{rel}"):
            targets += [f"/study/{sid}/media/{name}", f"/study/{sid}/{name}", f"/{name}", f"/studies/{name}",
                        f"/study/{name}", f"/gradio_api/file={f}", f"/file={f}", f"/study/{sid}/media/../../{name}"]
    targets += [f"/study/{sid}/media/{'ab' * 12}.png",                  # a symlink to the secret with a media name
                f"/study/{sid}/plan.json", f"/study/{sid}/api/plan", "/study/..%2F.secret", f"/study/{sid}/media/"]
    for target in targets:
        status, body = raw_get(port, target)
        assert status in (404, 405, 422), (target, status)
        for content in secrets.values():
            assert content[:32] not in body or len(content) < 8, target
    assert len(targets) > 300
    # the study keeps serving
    assert raw_get(port, f"/study/{sid}")[0] == 200


def test_served_cache_under_a_dot_folder_still_serves(tmp_path, monkeypatch):
    """Only dot-names *below* the served cache are refused (a TMPDIR like ~/.cache still works)."""
    from pairlab.ui.serving import is_served

    cache = tmp_path / ".cache" / "gradio"
    (cache / "abc").mkdir(parents=True)
    (cache / "abc" / "shown.png").write_bytes(b"x")
    (cache / "abc" / ".hidden").write_bytes(b"x")
    (cache / "abc" / "link.png").symlink_to("/etc/passwd")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    assert is_served(str(cache / "abc" / "shown.png"))
    assert is_served(f"{cache}/abc/../abc/shown.png".replace("/", "%2F"))
    assert not is_served(str(cache / "abc" / ".hidden")) and not is_served(str(cache / "abc" / "link.png"))
    assert not is_served(str(cache / "abc")) and not is_served("") and not is_served("http://127.0.0.1/x")
    assert not is_served(str(cache / "abc" / "shown.png") + "\x00")
