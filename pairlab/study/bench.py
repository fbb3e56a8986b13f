"""Load benchmark of the vote server: ``bench_votes(participants=50, votes=40)``.

Freezes a throw-away study (3 runs of plain generated images) in a temporary studies folder, starts the real
participant server (uvicorn, its own process) on 127.0.0.1 on a free port, and drives ``participants`` concurrent
participants through the HTTP interface -- join, then ``votes`` votes each, every one acknowledged before the
next -- each on its own keep-alive connection. Prints the votes stored (counted in SQLite afterwards) and the
p50 / p95 / max submission latency as seen by the clients. Target on the 2-core machine: all stored, p95 < 100 ms.

Two load models (``bench_votes_models`` runs both, as ``python -m pairlab bench votes`` does):

- **participants thinking** (the realistic one): each participant looks at a trial for a think time drawn from a
  log-normal distribution (median ``think_median_s`` = 2 s, sigma 0.5, clipped to 0.5-15 s) before answering, and
  participants arrive spread over the first think time, so 50 of them offer about 22 votes/s.
- **saturation (closed loop)**: no think time -- every participant sends its next vote the moment the previous
  one is acknowledged, so the server is never idle; this measures the most the server takes on this machine, not
  what participants see.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _make_study(root: Path, votes: int) -> str:
    from PIL import Image

    from .plan import StudyDesign, freeze
    from .sources import candidates_from_folders

    n_samples = max(4, -(-votes // 6))  # 6 comparisons per sample (3 pairs + 3 against the source)
    rng = np.random.default_rng(0)
    folders = {}
    for label in ("src", "run-a", "run-b", "run-c"):
        d = root.parent / "bench-images" / label
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n_samples):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / f"s{i:03d}.png")
        folders[label] = d
    inputs = candidates_from_folders({k: v for k, v in folders.items() if k != "src"}, folders["src"])
    design = StudyDesign(title="bench", sample_count=n_samples, trials_per_participant=votes, repeats=0, catch_trials=0)
    return freeze(design, inputs, root=root)


def _request(conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """One request; when the server has closed an idle keep-alive connection (a participant who thought longer
    than its keep-alive timeout) it reconnects and sends again, as a browser does (a repeated vote is harmless)."""
    data = json.dumps(body).encode() if body is not None else None
    for attempt in (0, 1):
        try:
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"null")
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            conn.close()
            if attempt:
                raise
    raise AssertionError("unreachable")


def think_time(rng: np.random.Generator, median_s: float) -> float:
    """Seconds a participant looks at a trial before answering: log-normal (sigma 0.5) around the median."""
    return float(np.clip(rng.lognormal(np.log(median_s), 0.5), 0.25 * median_s, 7.5 * median_s))


def _participant(port: int, sid: str, votes: int, barrier: threading.Barrier, latencies: list, errors: list,
                 think_median_s: float = 0.0) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    rng = np.random.default_rng(threading.get_ident() % 2**32)
    try:
        barrier.wait()
        if think_median_s > 0:  # arrivals spread over the first think time, not all at once
            time.sleep(float(rng.uniform(0, think_median_s)))
        status, data = _request(conn, "POST", f"/study/{sid}/api/join", {"consent": True})
        if status != 200:
            errors.append(f"join {status}: {data}")
            return
        token, state = data["token"], data["state"]
        for _ in range(votes):
            if think_median_s > 0:
                time.sleep(think_time(rng, think_median_s))
            choice = ("left", "right", "both", "neither")[int(rng.integers(0, 4))]
            body = {"p": token, "handle": state["trial"]["handle"], "choice": choice, "client_ms": 500}
            t0 = time.perf_counter()
            status, state = _request(conn, "POST", f"/study/{sid}/api/vote", body)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(f"vote {status}: {state}")
                return
    except Exception as exc:  # noqa: BLE001 - counted and reported
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_votes(participants: int = 50, votes: int = 40, root=None, quiet: bool = False,
                think_median_s: float = 0.0) -> dict:
    """Drive ``participants`` concurrent participants x ``votes`` votes through HTTP; return and print figures.

    ``think_median_s`` = 0 is the closed loop (saturation); > 0 models participants who think between votes."""
    from .store import VoteStore

    with tempfile.TemporaryDirectory(prefix="pairlab-bench-votes-") as tmp:
        studies = Path(root) if root else Path(tmp) / "studies"
        studies.mkdir(parents=True, exist_ok=True)
        sid = _make_study(studies, votes)
        port = _free_port()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        log = open(Path(tmp) / "server.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "pairlab.study.server", "--host", "127.0.0.1", "--port", str(port),
                                 "--root", str(studies), "--exit-after", "900"], stdout=log, stderr=subprocess.STDOUT,
                                env=env, cwd=Path(__file__).resolve().parents[2])
        try:
            deadline = time.time() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.time() > deadline:
                        raise RuntimeError("the participant server did not start: " + (Path(tmp) / "server.log").read_text()[-2000:])
                    time.sleep(0.1)
            latencies: list[float] = []
            errors: list[str] = []
            barrier = threading.Barrier(participants)
            threads = [threading.Thread(target=_participant, args=(port, sid, votes, barrier, latencies, errors,
                                                                   think_median_s))
                       for _ in range(participants)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
        VoteStore.forget(studies)
        stored = VoteStore.open(studies).counts(sid)["votes"]
        VoteStore.forget(studies)
    lat = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    result = {"participants": participants, "votes_each": votes, "expected": participants * votes, "stored": stored,
              "acknowledged": len(latencies) - len([e for e in errors if e.startswith("vote")]),
              "errors": len(errors), "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
              "max_ms": float(np.max(lat)), "wall_s": wall, "votes_per_s": len(latencies) / wall,
              "cpus": os.cpu_count(), "load": _load_name(think_median_s)}
    if not quiet:
        print(f"bench votes ({result['load']}): {participants} concurrent participants x {votes} votes over HTTP "
              f"(uvicorn, 127.0.0.1, {os.cpu_count()} CPUs)")
        print(f"  stored {stored} of {participants * votes} votes ({result['errors']} errors)")
        print(f"  submission latency p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms, max {result['max_ms']:.1f} ms")
        print(f"  {result['votes_per_s']:.0f} votes/s over {wall:.1f} s")
        for e in errors[:5]:
            print("  error:", e)
    return result


def _load_name(think_median_s: float) -> str:
    if think_median_s > 0:
        return f"participants thinking, log-normal think time with median {think_median_s:g} s"
    return "saturation, closed loop without think time"


def bench_votes_models(participants: int = 50, votes: int = 40, think_median_s: float = 2.0,
                       quiet: bool = False) -> dict:
    """Both load models: participants who think between votes (what a study sees) and the closed-loop saturation."""
    return {"participants thinking": bench_votes(participants, votes, quiet=quiet, think_median_s=think_median_s),
            "saturation (closed loop)": bench_votes(participants, votes, quiet=quiet, think_median_s=0.0)}


if __name__ == "__main__":
    bench_votes_models()
