"""The SLURM executor against a real single-node SLURM cluster started in a temporary folder (tests/slurm_cluster.py).

A tiny run finishes as a SLURM job; a 2 x 2 sweep is one job array and a restarted queue reconciles every job;
scancel mid-run then resume ends bit-identical to an uninterrupted run; scontrol requeue resumes from the
checkpoint; a bad cluster config is one sentence. Skipped with the reason when the cluster cannot start here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from slurm_cluster import SlurmCluster, Unavailable  # noqa: E402

from pairlab import cli, lab  # noqa: E402
from pairlab.data.recipes import Recipe  # noqa: E402
from pairlab.errors import UserError  # noqa: E402
from pairlab.train.queue import Queue  # noqa: E402
from pairlab.train.slurm import cluster_config  # noqa: E402

TINY = ("ngf=8, ndf=8, n_blocks=2, image_size=32, load_size=0, log_every=2, save_every=4, sample_every=100, "
        "threads=1, deterministic=true")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        c = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    except Unavailable as exc:
        pytest.skip(f"no SLURM cluster here: {exc}")
    saved = os.environ.get("SLURM_CONF")
    os.environ.update(c.env)
    yield c
    c.stop()
    if saved is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = saved


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("slurm-src")
    saved = os.environ.get("PAIRLAB_HOME")
    os.environ["PAIRLAB_HOME"] = str(root)
    try:
        lab.synthfaces_source(count=120, size=64, seed=0)
    finally:
        os.environ.pop("PAIRLAB_HOME") if saved is None else os.environ.__setitem__("PAIRLAB_HOME", saved)
    return root / "sources"


@pytest.fixture
def comps(home, rendered):
    import shutil

    shutil.copytree(rendered, home / "sources", dirs_exist_ok=True)
    source = lab.synthfaces_source(count=120, size=64, seed=0)
    a = lab.build_composition(source, Recipe(kind="pseudo", n=16, n_test=4, image_size=32), name="paired")
    b = lab.build_composition(source, Recipe(kind="pseudo", augmentation="none", n=16, n_test=4, image_size=32),
                              name="unpaired")
    return [a.name, b.name]


def squeue(*args) -> str:
    return subprocess.run(["squeue", "-h", *args], capture_output=True, text=True).stdout


def until(q, run_id, pred, timeout=180):
    import time

    deadline = time.time() + timeout
    while True:
        q.tick()
        info = q.info(run_id)
        if pred(info):
            return info
        assert time.time() < deadline, f"timed out: {info} {squeue('-o', '%i %T %r')}"
        time.sleep(0.2)


def test_tiny_run_finishes_as_a_slurm_job_and_runs_list_shows_it(cluster, comps, home, capsys):
    assert cli.main(["runs", "submit", comps[0], "--set", TINY, "--set", "max_iters=4", "--executor", "slurm"]) == 0
    run_id = capsys.readouterr().out.split("queued ", 1)[1].split()[0]
    q = Queue(cpu_slots=0)  # no local slot: only SLURM can train it
    proc = json.loads((home / "runs" / run_id / "proc.json").read_text())
    assert proc["executor"] == "slurm" and proc["job_id"].isdigit()
    info = q.wait(run_id, ("done", "failed"), timeout=180)
    assert info["state"] == "done" and info["iteration"] == 4, (info, q.logs(run_id))
    assert info["executor"] == "slurm" and info["job_id"] == proc["job_id"]
    # the worker has written 'done'; the job itself ends a moment later (submitit saves its result)
    info = until(q, run_id, lambda i: i["job_state"] in ("COMPLETED", "ended"), timeout=60)
    assert (home / "runs" / run_id / "checkpoints" / "latest.pt").exists()
    assert cli.main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert f"slurm {proc['job_id']}" in out and run_id in out


def test_sweep_is_one_job_array_and_a_restart_reconciles_every_job(cluster, comps, home, monkeypatch):
    monkeypatch.setenv("PAIRLAB_SLURM_ARRAY_PARALLELISM", "2")
    q = Queue(cpu_slots=0)
    ids = q.sweep(comps, "cyclegan", "cpu-demo-64", "0,1", TINY + ", max_iters=6", executor="slurm")
    procs = {r: json.loads((home / "runs" / r / "proc.json").read_text()) for r in ids}
    arrays = {p["job_id"].split("_")[0] for p in procs.values()}
    assert len(ids) == 4 and len(arrays) == 1, procs  # one job array
    assert sorted(p["job_id"].split("_")[1] for p in procs.values()) == ["0", "1", "2", "3"]
    # The lab restarts mid-sweep: a new queue reconciles every job from SLURM.
    restarted = Queue(cpu_slots=0)
    restarted.reconcile()
    for r in ids:
        info = restarted.info(r)
        assert info["job_id"] == procs[r]["job_id"] and info["state"] in ("queued", "running", "done"), info
    for r in ids:
        info = restarted.wait(r, ("done", "failed"), timeout=240)
        assert info["state"] == "done", (info, restarted.logs(r))
    for r in ids:  # the worker wrote 'done'; each array task ends a moment later
        until(restarted, r, lambda i: i["job_state"] in ("COMPLETED", "ended"), timeout=60)
    print("sweep:", {r: (restarted.info(r)["job_id"], restarted.info(r)["job_state"]) for r in ids})


def test_experiment_on_slurm_is_one_job_array(cluster, comps, home, capsys):
    plan = lab.plan_experiment("explicit", profile="tiny", seeds="0,1")
    lab.start_experiment(plan, executor="slurm")
    ids = list(lab.experiment_status(plan)["runs"])
    procs = [json.loads((home / "runs" / r["id"] / "proc.json").read_text()) for r in ids]
    assert len(procs) == len(plan.runs) >= 4 and len({p["job_id"].split("_")[0] for p in procs}) == 1, procs
    st = lab.wait_for_experiment(plan, interval=0.5, echo=lambda *a: None, timeout=300)
    assert all(r["state"] == "done" for r in st["runs"]), st["runs"]
    assert cli.main(["runs", "list"]) == 0 and f"slurm {procs[0]['job_id']}" in capsys.readouterr().out


def _reference(comps, home, max_iters):
    from pairlab.train.config import TrainConfig
    from pairlab.train.jobs import prepare_job
    from pairlab.train.loop import train

    job = prepare_job(comps[0], "cyclegan", "cpu-demo-64", TINY + f", max_iters={max_iters}", 0, "reference")
    ref = home / "reference"
    train(job["composition"], ref, TrainConfig.from_dict(job["config"]))
    return ref


def _same_weights(a: Path, b: Path) -> None:
    from pairlab.train.checkpoint import load_checkpoint
    from test_training import assert_same

    assert_same(load_checkpoint(a / "checkpoints" / "latest.pt"), load_checkpoint(b / "checkpoints" / "latest.pt"))


def test_scancel_mid_run_then_resume_is_bit_identical(cluster, comps, home):
    q = Queue(cpu_slots=0)
    run_id = q.submit(comps[0], "cyclegan", "cpu-demo-64", TINY + ", max_iters=150", seed=0, executor="slurm")
    folder = home / "runs" / run_id
    until(q, run_id, lambda i: i["state"] == "running" and (folder / "checkpoints" / "latest.pt").exists())
    job_id = json.loads((folder / "proc.json").read_text())["job_id"]
    # scancel at once, while it is mid-run (150 iterations take over 10 s). Not on a suspended job: SLURM kills a
    # suspended job outright (no SIGTERM), which is the 'stopped before it saved' path of the requeue test below.
    q.stop(run_id)  # scancel: SIGTERM; the worker saves a checkpoint and ends 'stopped'
    info = q.wait(run_id, ("stopped", "failed"), timeout=60)
    assert info["state"] == "stopped" and 0 < info["iteration"] < 150, (info, q.logs(run_id))
    stopped_at = info["iteration"]
    q.resume(run_id)
    info = q.wait(run_id, ("done", "failed"), timeout=180)
    assert info["state"] == "done" and info["job_id"] != job_id, info
    log = (folder / "log.txt").read_text()
    assert f"resumed from latest.pt at iteration {stopped_at}" in log, log
    _same_weights(folder, _reference(comps, home, 150))
    print(f"scancel: job {job_id} stopped at iteration {stopped_at}; resumed as job {info['job_id']}; "
          f"latest.pt identical to an uninterrupted run")


def test_scontrol_requeue_resumes_from_the_checkpoint(cluster, comps, home):
    q = Queue(cpu_slots=0)
    run_id = q.submit(comps[0], "cyclegan", "cpu-demo-64", TINY + ", max_iters=60", seed=0, executor="slurm")
    folder = home / "runs" / run_id
    until(q, run_id, lambda i: i["state"] == "running" and (folder / "checkpoints" / "latest.pt").exists())
    job_id = json.loads((folder / "proc.json").read_text())["job_id"]
    subprocess.run(["scontrol", "suspend", job_id], check=True)
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    until(q, run_id, lambda i: i["state"] == "queued" and "requeued by SLURM" in i["message"], timeout=60)
    # a requeued job waits (BeginTime) and a suspended one comes back held: release it and start it now
    subprocess.run(["scontrol", "release", job_id], capture_output=True)
    subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], check=True)  # skip the requeue delay
    info = q.wait(run_id, ("done", "failed"), timeout=180)
    assert info["state"] == "done" and info["job_id"] == job_id, (info, q.logs(run_id))
    log = (folder / "log.txt").read_text()
    assert "resumed from latest.pt at iteration" in log
    _same_weights(folder, _reference(comps, home, 60))


@pytest.mark.parametrize("text, env, sentence", [
    ("{not json", {}, "is not valid JSON"),
    ('{"partiton": "gpu"}', {}, "unknown key(s) partiton"),
    ('{"gpus_per_job": -1}', {}, "gpus_per_job must be at least 0"),
    ('{"time_min": "soon"}', {}, "time_min must be whole minutes"),
    ("[]", {}, "must be a JSON object"),
    (None, {"PAIRLAB_SLURM_MEM_GB": "lots"}, "PAIRLAB_SLURM_MEM_GB: mem_gb must be a number of GiB"),
    (None, {"PAIRLAB_SLURM_SBATCH": "account=lab"}, "PAIRLAB_SLURM_SBATCH must be a JSON object"),
])
def test_bad_cluster_config_is_one_sentence(home, monkeypatch, text, env, sentence):
    home.mkdir(parents=True, exist_ok=True)
    if text is not None:
        (home / "cluster.json").write_text(text)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(UserError) as err:
        cluster_config()
    msg = str(err.value)
    assert sentence in msg and "\n" not in msg and msg.endswith("."), msg


def test_cluster_config_file_and_environment(home, monkeypatch):
    assert cluster_config() is None
    home.mkdir(parents=True, exist_ok=True)
    (home / "cluster.json").write_text('{"partition": "gpu", "gpus_per_job": 1, "sbatch": {"account": "lab"}}')
    monkeypatch.setenv("PAIRLAB_SLURM_TIME_MIN", "30")
    cfg = cluster_config()
    assert cfg["partition"] == "gpu" and cfg["gpus_per_job"] == 1 and cfg["time_min"] == 30
    assert cfg["sbatch"] == {"account": "lab"} and cfg["array_parallelism"] == 64


def test_tabs_offer_slurm_only_with_a_cluster_config(home, monkeypatch, tmp_path):
    from pairlab.train.executor import available_executors, check_executor

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sbatch", "squeue", "scontrol", "scancel", "srun"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert available_executors() == ["local"]  # no cluster config: the tabs hide the choice
    home.mkdir(parents=True, exist_ok=True)
    (home / "cluster.json").write_text('{"partition": "debug"}')
    assert available_executors() == ["local", "slurm"]
    (home / "cluster.json").write_text('{"partiton": "debug"}')
    assert available_executors() == ["local"]  # a bad config offers nothing it cannot run
    with pytest.raises(UserError, match="Unknown executor 'k8s'"):
        check_executor("k8s")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UserError, match="SLURM is not available here"):
        check_executor("slurm")
