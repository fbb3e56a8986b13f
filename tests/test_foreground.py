"""Issue 12, finding 4: a foreground `pairlab train` registers its process like a queued run, so one killed with
SIGKILL is settled failed and resumable by `runs list`, and `runs resume` continues it; `runs stop` stops a live one.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pairlab import cli
from pairlab.train.queue import DIED, Queue
from test_queue import TINY, comps, queues, rendered_sources, wait_dead  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parent.parent


def start_train(home: Path, comp: str, name: str, iters: int) -> subprocess.Popen:
    env = dict(os.environ, PAIRLAB_HOME=str(home), PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "pairlab", "train", comp, "--model", "cyclegan", "--preset",
                             "cpu-demo-64", "--set", TINY, "--set", f"max_iters={iters}", "--seed", "1", "--name", name],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(run: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not (run / "checkpoints" / "latest.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no checkpoint in time"
        time.sleep(0.2)


def test_a_killed_foreground_run_is_failed_and_resumable(comps, home, capsys, queues):
    run = home / "runs" / "fgk"
    proc = start_train(home, comps["paired"], "fgk", 2000)
    try:
        wait_for_checkpoint(run, proc)
        registered = json.loads((run / "proc.json").read_text())
        assert registered["pid"] == proc.pid and registered["foreground"] is True
        # while it trains: a second `train` of the same run, and a delete, are refused with one sentence
        second = start_train(home, comps["paired"], "fgk", 2000)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 2 and "already training in another process" in err and "Traceback" not in err
        assert cli.main(["runs", "delete", "fgk"]) == 2
        assert "training in the foreground" in capsys.readouterr().err
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert json.loads((run / "status.json").read_text())["state"] == "running"  # what the killed process left
    assert cli.main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert "failed" in out and DIED in out
    assert not (run / "proc.json").exists()
    q = queues(cpu_slots=1)
    info = q.info("fgk")
    assert info["state"] == "failed" and info["resumable"]
    done_before = info["iteration"]
    # resume continues it from its checkpoint in the queue (a shorter target so the test stays short)
    cfg = json.loads((run / "config.json").read_text())
    assert cli.main(["runs", "resume", "fgk"]) == 0
    info = q.wait("fgk", ("running", "done", "failed"), timeout=60)
    assert info["state"] in ("running", "done"), info
    log = ""
    deadline = time.time() + 120
    while "resumed from" not in log and time.time() < deadline:
        q.tick()
        log = (run / "log.txt").read_text()
        time.sleep(0.3)
    assert "resumed from" in log and cfg["max_iters"] == 2000
    assert q.info("fgk")["iteration"] >= done_before - 4
    q.stop("fgk", wait=60)
    assert q.info("fgk")["state"] == "stopped"


def test_runs_stop_stops_a_live_foreground_run(comps, home, capsys):
    run = home / "runs" / "fgs"
    proc = start_train(home, comps["paired"], "fgs", 2000)
    try:
        wait_for_checkpoint(run, proc)
        assert cli.main(["runs", "stop", "fgs"]) == 0
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "stopped" and "Traceback" not in err
    assert not (run / "proc.json").exists()
    assert Queue(cpu_slots=1).info("fgs")["resumable"]
