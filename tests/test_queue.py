"""The background queue: real worker processes on a tiny composition.

Lifecycle (submit, run, stop with a checkpoint, app restart, resume, done), a SIGKILLed worker reconciled to a
resumable failure and retried, the slot limit, sweeps, bad input (one sentence, nothing queued) and delete.
Tiny networks (ngf 8, 2 blocks, 32x32) keep every run to a few seconds on 2 cores.
"""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from pairlab import cli, lab
from pairlab.data.recipes import Recipe
from pairlab.errors import UserError
from pairlab.train.jobs import parse_overrides, parse_seeds
from pairlab.train.queue import DIED, Queue, proc_start_time

TINY = "ngf=8, ndf=8, n_blocks=2, image_size=32, load_size=0, log_every=2, save_every=4, sample_every=4, threads=1"


@pytest.fixture(scope="module")
def rendered_sources(tmp_path_factory):
    """A 120-face SynthFaces source, rendered once for this module (workspaces get a copy)."""
    root = tmp_path_factory.mktemp("queue-src")
    saved = os.environ.get("PAIRLAB_HOME")
    os.environ["PAIRLAB_HOME"] = str(root)
    try:
        lab.synthfaces_source(count=120, size=64, seed=0)
    finally:
        if saved is None:
            os.environ.pop("PAIRLAB_HOME")
        else:
            os.environ["PAIRLAB_HOME"] = saved
    return root / "sources"


@pytest.fixture
def comps(home, rendered_sources):
    """Two small compositions in the workspace: pseudo-paired (has pairs) and unpaired (no pairs)."""
    import shutil

    shutil.copytree(rendered_sources, home / "sources", dirs_exist_ok=True)
    source = lab.synthfaces_source(count=120, size=64, seed=0)
    paired = lab.build_composition(source, Recipe(kind="pseudo", n=16, n_test=4, image_size=32), name="paired")
    unpaired = lab.build_composition(source, Recipe(kind="pseudo", augmentation="none", n=16, n_test=4, image_size=32),
                                     name="unpaired")
    return {"paired": paired.name, "unpaired": unpaired.name}


@pytest.fixture
def queues():
    made = []

    def make(**kw):
        q = Queue(cpu_slots=kw.pop("cpu_slots", 1), gpu_slots=kw.pop("gpu_slots", 1), grace_s=kw.pop("grace_s", 30), **kw)
        made.append(q)
        return q

    yield make
    # Never leave worker processes behind.
    for q in made:
        for r in q.list_runs():
            if r["pid"]:
                try:
                    os.killpg(r["pid"], signal.SIGKILL)
                except OSError:
                    pass


def wait_dead(pid, timeout=30):
    deadline = time.time() + timeout
    while proc_start_time(pid) is not None:
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        except ChildProcessError:
            pass
        assert time.time() < deadline, f"process {pid} did not end"
        time.sleep(0.05)


def wait_until(q, run_id, pred, timeout=90):
    deadline = time.time() + timeout
    while True:
        q.tick()
        info = q.info(run_id)
        if pred(info):
            return info
        assert time.time() < deadline, f"timed out; run is {info}"
        time.sleep(0.2)


def test_lifecycle_submit_stop_restart_resume_done(comps, queues, home):
    q = queues()
    run_id = q.submit(comps["paired"], "cyclegan", "cpu-demo-64", TINY + ", max_iters=80", seed=3)
    folder = home / "runs" / run_id
    job = json.loads((folder / "job.json").read_text())
    assert job["config"]["max_iters"] == 80 and job["config"]["seed"] == 3 and job["config"]["ngf"] == 8
    proc = json.loads((folder / "proc.json").read_text())
    assert proc["start"] == proc_start_time(proc["pid"])  # the pid with its start time names the process

    info = wait_until(q, run_id, lambda i: i["state"] == "running" and i["iteration"] >= 6)
    assert info["device"] == "cpu" and info["pid"] == proc["pid"]
    # An app restart while the run trains keeps it running (its process is alive and is the one we started).
    restarted = queues()
    restarted.reconcile()
    assert restarted.info(run_id)["state"] == "running" and restarted.info(run_id)["pid"] == proc["pid"]
    listed = {r["id"]: r for r in q.list_runs()}[run_id]
    for key in ("composition", "model", "preset", "seed", "state", "progress", "iteration", "total", "eta_s",
                "device", "error"):
        assert key in listed
    assert listed["composition"] == comps["paired"] and listed["model"] == "cyclegan" and listed["total"] == 80

    q.stop(run_id)
    info = q.wait(run_id, ("stopped",), timeout=60)
    assert 6 <= info["iteration"] < 80 and info["resumable"]
    assert (folder / "checkpoints" / "latest.pt").exists()
    stopped_at = info["iteration"]
    wait_dead(proc["pid"])

    # The app restarts: a new Queue object reconciles with the processes that really exist.
    q2 = queues()
    q2.reconcile()
    assert q2.info(run_id)["state"] == "stopped"
    assert not (folder / "proc.json").exists()
    q2.resume(run_id)
    info = q2.wait(run_id, ("done", "failed"), timeout=120)
    assert info["state"] == "done", info
    assert info["iteration"] == 80 and info["progress"] == 1.0
    log = (folder / "log.txt").read_text()
    assert f"resumed from latest.pt at iteration {stopped_at}" in log
    metrics = [json.loads(line) for line in (folder / "losses.jsonl").read_text().splitlines()]
    assert metrics[-1]["iter"] == 80
    assert list((folder / "samples").glob("iter_*.png"))
    # Finished runs cannot be stopped or resumed; the sentence says why.
    with pytest.raises(UserError, match="is not running"):
        q2.stop(run_id)
    with pytest.raises(UserError, match="Only a stopped or failed run"):
        q2.resume(run_id)


def test_killed_worker_is_reconciled_to_failed_and_retried(comps, queues, home):
    q = queues()
    run_id = q.submit(comps["paired"], "hybrid", "cpu-demo-64", TINY + ", max_iters=60", seed=0)
    folder = home / "runs" / run_id
    wait_until(q, run_id, lambda i: (folder / "checkpoints" / "latest.pt").exists() and i["iteration"] >= 8)
    pid = json.loads((folder / "proc.json").read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)
    wait_dead(pid)

    q2 = queues()  # the app restarts after the worker died
    q2.reconcile()
    info = q2.info(run_id)
    assert info["state"] == "failed" and info["error"] == DIED and info["resumable"]
    assert not (folder / "proc.json").exists()
    q2.retry(run_id)
    info = q2.wait(run_id, ("done", "failed"), timeout=120)
    assert info["state"] == "done" and info["iteration"] == 60, info
    assert "resumed from" in (folder / "log.txt").read_text()


def test_slot_limit_queues_the_second_run(comps, queues, home):
    q = queues(cpu_slots=1)
    a = q.submit(comps["paired"], "cyclegan", "cpu-demo-64", TINY + ", max_iters=2000", seed=0)
    b = q.submit(comps["paired"], "cyclegan", "cpu-demo-64", TINY + ", max_iters=2000", seed=0)
    assert a != b  # the same settings twice make two runs
    q.tick()
    states = {r["id"]: r["state"] for r in q.list_runs()}
    assert states == {a: "running", b: "queued"}
    assert (home / "runs" / a / "proc.json").exists() and not (home / "runs" / b / "proc.json").exists()
    # A run that does not react to SIGTERM (frozen with SIGSTOP here) is killed after the grace period, ends
    # 'stopped' (resumable), and its slot goes to the queued run.
    q.grace_s = 0.0
    pid = json.loads((home / "runs" / a / "proc.json").read_text())["pid"]
    os.kill(pid, signal.SIGSTOP)
    q.stop(a)
    assert q.info(a)["shown_state"] == "stopping"
    info = q.wait(a, ("stopped",), timeout=30)
    assert "killed" in info["message"] and info["resumable"]
    wait_dead(pid)
    q.tick()
    assert q.info(b)["state"] == "running"
    c = q.submit(comps["paired"], "cyclegan", "cpu-demo-64", TINY + ", max_iters=2000", seed=1)
    # Stopping a queued run that never started marks it stopped at once.
    q.stop(c)
    assert q.info(c)["state"] == "stopped" and not (home / "runs" / c / "proc.json").exists()
    q.delete(b)  # delete kills a running run's process group and removes its folder
    assert not (home / "runs" / b).exists()
    for run_id in (a, c):
        q.delete(run_id)
    assert q.list_runs() == []


def test_sweep_queues_one_run_per_composition_and_seed(comps, queues, home):
    q = queues(cpu_slots=0)  # no slot: everything stays queued, nothing starts
    ids = q.sweep([comps["paired"], comps["unpaired"]], "cyclegan", "cpu-demo-64", "0,1,2", TINY)
    assert len(ids) == 6 and len(set(ids)) == 6
    runs = q.list_runs()
    assert {r["state"] for r in runs} == {"queued"}
    assert sorted((r["composition"], r["seed"]) for r in runs) == sorted(
        (c, s) for c in (comps["paired"], comps["unpaired"]) for s in (0, 1, 2))
    # One bad member queues nothing.
    with pytest.raises(UserError):
        q.sweep([comps["paired"], "no-such-composition"], "cyclegan", "cpu-demo-64", "0", TINY)
    assert len(q.list_runs()) == 6
    for run_id in ids:
        q.delete(run_id)


@pytest.mark.parametrize("args, sentence", [
    (("paired", "cyclegan", "no-such-preset", TINY), "Unknown preset 'no-such-preset'"),
    (("paired", "cyclegan", "cpu-demo-64", TINY + ", lr=-0.1"), "lr must be positive"),
    (("paired", "cyclegan", "cpu-demo-64", TINY + ", warp=3"), "Unknown training setting 'warp'"),
    (("paired", "cyclegan", "cpu-demo-64", TINY + ", max_iters=many"), "must be a whole number"),
    (("paired", "cyclegan", "cpu-demo-64", "max_iters"), "Overrides are written key=value"),
    (("paired", "pix2pix", "cpu-demo-64", TINY + ", image_size=48"), "power-of-two image_size"),
    (("unpaired", "pix2pix", "cpu-demo-64", TINY), "pix2pix needs explicit pairs"),
    (("missing", "cyclegan", "cpu-demo-64", TINY), "There is no composition named 'missing'"),
    (("paired", "stylegan", "cpu-demo-64", TINY), "Unknown model 'stylegan'"),
    (("paired", "cyclegan", "cpu-demo-64", TINY + ", device=cuda:7"), "cuda"),
])
def test_bad_input_is_one_sentence_and_queues_nothing(comps, queues, home, args, sentence):
    import torch

    if "cuda:7" in args[3] and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    q = queues()
    comp = comps.get(args[0], args[0])
    with pytest.raises(UserError) as err:
        q.submit(comp, *args[1:], seed=0)
    text = str(err.value)
    assert sentence in text and "\n" not in text and text.endswith(".")
    assert q.list_runs() == [] and not [p for p in (home / "runs").iterdir() if not p.name.startswith(".")]


def test_outside_path_and_bad_seeds_are_refused(comps, queues, tmp_path):
    q = queues()
    with pytest.raises(UserError, match="outside the allowed folders"):
        q.submit("/etc", "cyclegan", "cpu-demo-64", TINY)
    with pytest.raises(UserError, match="Seeds"):
        q.sweep([comps["paired"]], "cyclegan", "cpu-demo-64", "0,x", TINY)
    assert parse_seeds("0-2, 5") == [0, 1, 2, 5] and parse_seeds(None) == [0]
    assert parse_overrides("lr=1e-4, init_from=a,b.pt\nngf=8") == ["lr=1e-4", "init_from=a,b.pt", "ngf=8"]
    with pytest.raises(UserError, match="no run named"):
        q.stop("nope")


def test_named_run_and_failure_in_the_worker(comps, queues, home):
    import shutil

    idle = queues(cpu_slots=0)  # nothing starts while we break the composition
    run_id = idle.submit(comps["unpaired"], "cyclegan", "cpu-demo-64", TINY + ", max_iters=4", seed=0, name="my run")
    assert run_id == "my-run"
    with pytest.raises(UserError, match="already exists"):
        idle.submit(comps["paired"], "cyclegan", "cpu-demo-64", TINY, seed=0, name="my run")
    # The composition loses its trainA after the run was queued: the worker fails with one sentence.
    shutil.rmtree(home / "compositions" / comps["unpaired"] / "trainA")
    q = queues(cpu_slots=1)
    info = q.wait(run_id, ("done", "failed"), timeout=90)
    assert info["state"] == "failed" and "\n" not in info["error"] and "missing" in info["error"], info
    assert not info["error"].startswith("The run's process ended")
    # The queue goes on: the next run trains.
    ok = q.submit(comps["paired"], "pix2pix", "cpu-demo-64", TINY + ", max_iters=4", seed=0)
    assert q.wait(ok, ("done", "failed"), timeout=90)["state"] == "done"


def test_runs_cli(comps, queues, home, capsys):
    assert cli.main(["runs", "submit", comps["paired"], "--set", TINY, "--set", "max_iters=4", "--seeds", "0"]) == 0
    out = capsys.readouterr().out
    run_id = out.split("queued ", 1)[1].split()[0]
    assert cli.main(["runs", "serve", "--interval", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "Nothing queued or running." in out
    assert cli.main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert run_id in out and "done" in out and "slots:" in out
    assert cli.main(["runs", "stop", run_id]) == 2
    assert "is not running" in capsys.readouterr().err
    assert cli.main(["runs", "delete", run_id]) == 0
    assert not (home / "runs" / run_id).exists()


def test_train_cli_in_the_foreground(comps, home, capsys):
    code = cli.main(["train", comps["unpaired"], "--model", "cyclegan", "--preset", "cpu-demo-64", "--set", TINY,
                     "--set", "max_iters=3", "--seed", "2", "--name", "fg"])
    out = capsys.readouterr().out
    assert code == 0 and "Run fg is done at iteration 3/3" in out
    assert (home / "runs" / "fg" / "checkpoints" / "latest.pt").exists()
    # The queue lists foreground runs too, and can resume them (here: nothing left to do, it is done).
    q = Queue(cpu_slots=1)
    (info,) = q.list_runs()
    assert info["id"] == "fg" and info["state"] == "done" and info["preset"] == "(command line)"
    from pairlab.train.loop import write_status

    write_status(home / "runs" / "fg", state="failed", error="Something broke.")  # as if it had crashed
    q.retry("fg")  # the queue adopts the foreground run (job.json from its config.json and run.json)
    info = q.wait("fg", ("done", "failed"), timeout=90)
    assert info["state"] == "done" and info["iteration"] == 3, info
    assert json.loads((home / "runs" / "fg" / "job.json").read_text())["config"]["max_iters"] == 3
    # Bad input from the command line: one sentence, exit code 2.
    assert cli.main(["train", comps["unpaired"], "--model", "pix2pix", "--set", TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: pix2pix needs explicit pairs") and len(err.splitlines()) == 1


def test_gpu_slots_pin_one_gpu_each(comps, monkeypatch, tmp_path):
    """Without a GPU here, pretend two CUDA devices: slots per GPU, CUDA_VISIBLE_DEVICES pinning, cuda:N requests."""
    import torch

    from pairlab.train import queue as queue_mod

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    slots = queue_mod.detect_slots(cpu_slots=1, gpu_slots=2)
    assert [s.id for s in slots] == ["cuda:0/0", "cuda:0/1", "cuda:1/0", "cuda:1/1", "cpu/0"]
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in slots] == ["0", "0", "1", "1", ""]
    assert queue_mod.default_kind(slots) == "cuda"
    q = Queue(root=tmp_path / "runs-gpu", cpu_slots=1, gpu_slots=2)
    job = q._prepare(comps["paired"], "cyclegan", "cpu-demo-64", TINY + ", device=cuda:1", 0)
    assert job["device_request"] == "cuda:1" and job["config"]["device"] == "cuda"  # pinned: cuda inside the worker
    assert q._free_slot(job, set(), "cuda").id == "cuda:1/0"
    assert q._free_slot(job, {"cuda:1/0", "cuda:1/1"}, "cuda") is None
    auto = q._prepare(comps["paired"], "cyclegan", "cpu-demo-64", TINY, 0)
    assert q._free_slot(auto, {"cuda:0/0"}, "cuda").id == "cuda:0/1"
    cpu = q._prepare(comps["paired"], "cyclegan", "cpu-demo-64", TINY + ", device=cpu", 0)
    assert q._free_slot(cpu, set(), "cuda").id == "cpu/0"
    monkeypatch.setenv("PAIRLAB_GPU_SLOTS", "3")
    assert len([s for s in queue_mod.detect_slots() if s.kind == "cuda"]) == 6


def test_cpu_slots_from_the_machine(monkeypatch):
    """Without a GPU: one 1-thread CPU slot per core (as memory allows); PAIRLAB_CPU_SLOTS overrides; with a GPU 1."""
    import torch

    from pairlab.train import queue as queue_mod

    monkeypatch.delenv("PAIRLAB_CPU_SLOTS", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    memory = {"bytes": 64 * 1024**3}
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096}.get(name, memory["bytes"] // 4096))
    threads = lambda slots: [(s.id, s.env["PAIRLAB_WORKER_THREADS"]) for s in slots]
    assert threads(queue_mod.detect_slots()) == [(f"cpu/{k}", "1") for k in range(4)]
    memory["bytes"] = 4 * 1024**3  # 2 GiB per run: two slots of 2 threads
    assert threads(queue_mod.detect_slots()) == [("cpu/0", "2"), ("cpu/1", "2")]
    monkeypatch.setenv("PAIRLAB_CPU_SLOTS", "1")
    assert threads(queue_mod.detect_slots()) == [("cpu/0", "4")]
    assert threads(queue_mod.detect_slots(cpu_slots=3)) == [("cpu/0", "1"), ("cpu/1", "1"), ("cpu/2", "1")]
    monkeypatch.delenv("PAIRLAB_CPU_SLOTS")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert [s.id for s in queue_mod.detect_slots(gpu_slots=2) if s.kind == "cpu"] == ["cpu/0"]
