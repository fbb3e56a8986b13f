"""An experiment folder: build its compositions, queue its runs, evaluate them, read their numbers per seed.

    workspace/experiments/<task>-<profile>[-n<N>]/
        manifest.json     profile, task, seeds, code version, machine; per arm its recipe, model, composition and
                          run per seed (what ``experiment`` built and queued)
        <experiment>/     results.json, the tables (CSV, LaTeX), claims.csv, report.html, grid.png (``report``)

One folder holds every experiment of a task and profile, so the runs they share are trained once. Everything is
idempotent: ``start`` builds only missing compositions and queues only missing runs (a failed or stopped run is
resumed from its last checkpoint), so re-running the command continues where it stopped. Runs go through the
queue, so they survive restarts and show in the Training tab.
"""
from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

from .. import __version__, workspace
from ..data.library import build_composition, synthfaces_source
from ..errors import UserError
from ..train.run import Run, format_eta
from .plan import DIRECTIONS_OF, PROFILES, Plan

FORMAT = "pairlab-experiment-1"


def _queue():
    """The workspace's queue (its runs train where the app's or this process's scheduler runs them)."""
    from ..train.queue import default_queue

    return default_queue()


def experiment_dir(plan: Plan) -> Path:
    prof = plan.profile
    suffix = f"-n{prof.n}" if prof.n != PROFILES[prof.name].n else ""
    return workspace.sub("experiments") / f"{plan.task}-{prof.name}{suffix}"


def list_experiments() -> list[dict]:
    """The experiment folders of this workspace, newest first: folder, task, profile name, experiments, seeds,
    n (None when it is the profile's default) and time, from each manifest.json; unreadable folders are skipped."""
    root = workspace.sub("experiments")
    found = []
    for folder in root.iterdir() if root.is_dir() else []:
        m = workspace.read_json(folder / "manifest.json")
        if m is None or not isinstance(m.get("profile"), dict):
            continue
        prof = m["profile"]
        default = PROFILES.get(prof.get("name"))
        found.append({"folder": folder.name, "task": m.get("task"), "profile": prof.get("name"),
                      "experiments": list(m.get("experiments") or []), "seeds": list(m.get("seeds") or []),
                      "n": prof.get("n") if default is None or prof.get("n") != default.n else None,
                      "time": (folder / "manifest.json").stat().st_mtime})
    return sorted(found, key=lambda e: -e["time"])


def _prefix(plan: Plan) -> str:
    return experiment_dir(plan).name


def composition_name(plan: Plan, arm_id: str) -> str:
    """One composition per recipe: arms that train on the same data (CycleGAN and Pix2Pix on the completely
    pseudo-paired set) share it."""
    return workspace.safe_name(f"x-{_prefix(plan)}-{plan.arms[arm_id].recipe.short_name()}")


def run_name(plan: Plan, arm_id: str, seed: int) -> str:
    return workspace.safe_name(f"x-{_prefix(plan)}-{arm_id}-s{seed}")


def code_version() -> dict:
    here = Path(__file__).resolve().parents[2]
    commit = None
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        commit = out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"pairlab": __version__, "git": commit}


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
            "cores": os.cpu_count()}


# ----- the manifest ---------------------------------------------------------------------------------------
def read_manifest(plan: Plan) -> dict:
    return workspace.read_json(experiment_dir(plan) / "manifest.json") or {}


def _write_manifest(plan: Plan, data: dict) -> None:
    folder = experiment_dir(plan)
    folder.mkdir(parents=True, exist_ok=True)
    workspace.write_json_atomic(folder / "manifest.json", data)


def _updated_manifest(plan: Plan) -> dict:
    data = read_manifest(plan)
    if data and data.get("profile", {}).get("overrides") != list(plan.profile.overrides):
        raise UserError(f"The experiment folder {experiment_dir(plan).name} was made with other {plan.profile.name} "
                        "settings; move it away to start anew.")
    data.setdefault("format", FORMAT)
    data.setdefault("created", time.time())
    data.update(task=plan.task, profile=plan.profile.to_dict())
    data["seeds"] = sorted(set(data.get("seeds", [])) | set(plan.seeds))
    data["experiments"] = sorted(set(data.get("experiments", [])) | set(plan.experiments))
    data["code"], data["machine"] = code_version(), machine()
    arms = data.setdefault("arms", {})
    for arm_id, arm in plan.arms.items():
        entry = arms.setdefault(arm_id, {})
        entry.update(arm.to_dict(), composition=composition_name(plan, arm_id))
        entry.setdefault("runs", {})
    return data


# ----- building and queueing ------------------------------------------------------------------------------
def start(plan: Plan, progress=None, executor: str = "local") -> dict:
    """Build the missing compositions and queue the missing runs (resume failed / stopped ones); returns the
    manifest. Nothing trains here: the queue's scheduler (the app, ``runs serve``, or ``experiment`` itself) does.
    ``executor="slurm"``: the runs go to SLURM as one job array."""
    report = progress or (lambda f, m: None)
    data = _updated_manifest(plan)
    _write_manifest(plan, data)
    comps = workspace.sub("compositions")
    source = None
    todo = list(plan.arms.items())
    for k, (arm_id, arm) in enumerate(todo):
        name = data["arms"][arm_id]["composition"]
        if not (comps / name / "manifest.json").exists():
            if source is None:
                report(0.0, "preparing the SynthFaces source")
                source = synthfaces_source(**plan.profile.source)
            report(0.05 + 0.8 * k / len(todo), f"building composition {name}")
            build_composition(source, arm.recipe, name=name)
    # seed-major: every configuration's first seed trains before any second seed, so a half-done experiment
    # already has each configuration once
    q = _queue()
    with q.deferred():  # on SLURM: every run of the experiment in one job array
        for seed in plan.seeds:
            for arm_id, arm in todo:
                entry = data["arms"][arm_id]
                rid = run_name(plan, arm_id, seed)
                run = Run(q.root / rid)
                if run.is_run():
                    if run.state() in ("failed", "stopped"):
                        q.resume(rid, executor=executor)
                else:
                    q.launch([entry["composition"]], arm.model, plan.profile.preset, list(plan.profile.overrides),
                             seeds=[seed], name=rid, executor=executor)
                entry["runs"][str(seed)] = rid
            _write_manifest(plan, data)
    report(1.0, f"{len(plan.runs)} runs queued or done")
    return data


def run_ids(plan: Plan) -> dict[tuple[str, int], str]:
    return {(arm, seed): run_name(plan, arm, seed) for arm, seed in plan.runs}


def status(plan: Plan) -> dict:
    """Progress of the plan's runs: counts by state, the fraction of iterations done, an ETA, one row per run."""
    root = _queue().root
    rows, done_its, total_its, counts = [], 0, 0, {}
    its_per_s = []
    for (arm, seed), rid in run_ids(plan).items():
        run = Run(root / rid)
        if not run.is_run():
            rows.append({"arm": arm, "seed": seed, "id": rid, "state": "not queued", "iteration": 0, "total": 0})
            counts["not queued"] = counts.get("not queued", 0) + 1
            continue
        d = run.describe()
        total = d["total"] or 0
        rows.append({"arm": arm, "seed": seed, "id": rid, "state": d["shown_state"], "iteration": d["iteration"],
                     "total": total, "error": d["error"]})
        counts[d["state"]] = counts.get(d["state"], 0) + 1
        done_its += min(d["iteration"], total) if total else 0
        total_its += total
        if d.get("its_per_s") and d["state"] == "running":
            its_per_s.append(d["its_per_s"])
    remaining = max(0, total_its - done_its)
    eta = remaining / sum(its_per_s) if its_per_s and remaining else (0 if not remaining else None)
    return {"runs": rows, "counts": counts, "fraction": done_its / total_its if total_its else 0.0,
            "eta_s": eta, "done": counts.get("done", 0) == len(rows)}


def wait(plan: Plan, interval: float = 5.0, echo=print, timeout: float | None = None) -> dict:
    """Schedule the queue in this process until every run of the plan has ended (``runs serve`` for one plan)."""
    q = _queue()
    q.reconcile()
    seen, start_t = None, time.time()
    while True:
        q.tick()
        st = status(plan)
        line = (f"{100 * st['fraction']:5.1f}% of the iterations; " +
                ", ".join(f"{n} {s}" for s, n in sorted(st["counts"].items())) +
                (f"; ETA {format_eta(st['eta_s'])}" if st["eta_s"] else ""))
        if line != seen:
            echo(f"{time.strftime('%H:%M:%S')} {line}")
            seen = line
        if all(r["state"] in ("done", "failed", "stopped", "not queued") for r in st["runs"]):
            return st
        if timeout is not None and time.time() - start_t > timeout:
            return st
        time.sleep(interval)


# ----- evaluation -----------------------------------------------------------------------------------------
def evaluate(plan: Plan, progress=None) -> list[dict]:
    """Evaluate every finished run of the plan (cached: a run evaluated at its checkpoint is not redone), in the
    directions its experiments read, with the input-unchanged baseline; returns the result rows."""
    root = _queue().root
    done = [rid for rid in run_ids(plan).values() if Run(root / rid).state() == "done"]
    if not done:
        return []
    both = any(len(DIRECTIONS_OF[e]) > 1 for e in plan.experiments)
    metrics = list(plan.profile.metrics) if plan.profile.metrics else None
    from ..eval.evaluate import evaluate_runs

    return evaluate_runs([root / rid for rid in done], metrics=metrics, direction="both" if both else "AtoB",
                        baseline=True, progress=progress)


def per_image(plan: Plan, arm: str, seed: int, metric: str, direction: str):
    """The per-image values of one run's metric (a numpy array), or None when it has not been evaluated."""
    import numpy as np

    run = Run(_queue().root / run_name(plan, arm, seed))
    entry = (run.per_image_scores() or {}).get(direction) or {}
    values = (entry.get("values") or {}).get(metric)
    if values is None:
        scores = ((run.scores() or {}).get("directions") or {}).get(direction) or {}
        summary = (scores.get("metrics") or {}).get(metric)
        return None if summary is None or summary.get("mean") is None else np.asarray([summary["mean"]], float)
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    return arr


def feature_values(plan: Plan, seed: int, arms: dict[str, str], progress=None) -> dict[str, dict]:
    """Figure 9's distances for one seed: {config: {dfeat_*: value}} from one feature space that places both runs
    (fitted on the source of the arms' shared composition)."""
    data = read_manifest(plan)
    comps = {data["arms"][a]["composition"] for a in arms.values()}
    comp = sorted(comps)[0]
    ids = {config: run_name(plan, arm, seed) for config, arm in arms.items()}
    from ..eval.features import FeatureRequest, feature_space, group_stats

    space = feature_space(FeatureRequest(composition=comp, runs=tuple(ids.values()), task=plan.task,
                                                 train_encoder=True), progress=progress)
    rows = {r["key"]: r for r in group_stats(space)}
    return {config: {k: v for k, v in rows.get(f"run:{rid}", {}).items() if k.startswith("dfeat_")}
            for config, rid in ids.items()}


# ----- the estimate ---------------------------------------------------------------------------------------
def _train_size(recipe) -> int:
    """Training A images a recipe makes (an epoch's length at batch 1)."""
    if recipe.kind == "pseudo" and recipe.augmentation != "none":
        return 2 * recipe.n
    return recipe.n


def estimate(plan: Plan, measure: bool = True) -> dict:
    """What the plan trains and how long that takes here: per model kind the measured seconds per iteration (a
    few steps of the profile's own config, in a fresh process with a slot's threads), iterations per run, and
    the wall time on this machine's slots (runs in parallel, one per slot), plus an evaluation allowance."""
    from ..train.jobs import assemble_config

    q = _queue()
    slots = [s for s in q.slots if s.kind == q.slots[0].kind] or q.slots
    threads = int(slots[0].env.get("PAIRLAB_WORKER_THREADS", "1")) if slots else 1
    per_kind, runs = {}, []
    for arm_id, arm in plan.arms.items():
        cfg = assemble_config(arm.model, plan.profile.preset, list(plan.profile.overrides))
        iters = cfg.max_iters or (cfg.n_epochs + cfg.n_epochs_decay) * max(1, _train_size(arm.recipe) // cfg.batch_size)
        if arm.model not in per_kind:
            per_kind[arm.model] = {"config": cfg, "s_per_iter": None}
        runs += [{"arm": arm_id, "seed": s, "model": arm.model, "iterations": iters} for s in plan.seeds]
    if measure:
        import torch

        from ..train.bench import time_step_isolated
        from ..train.device import pick_device

        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for kind, entry in per_kind.items():
                dev = pick_device(entry["config"].device)
                entry["s_per_iter"] = time_step_isolated(entry["config"].with_overrides({"device": str(dev)}), dev,
                                                         warmup=2, iters=4)["s_per_iter"]
        finally:
            torch.set_num_threads(previous)
    total = sum(r["iterations"] * (per_kind[r["model"]]["s_per_iter"] or 0) for r in runs)
    n_slots = max(1, len(slots))
    eval_s = 30.0 * len(runs) * (plan.profile.n_test / 100) * (plan.profile.image_size / 64) ** 2
    wall = total / n_slots + eval_s
    return {"runs": runs, "models": {k: {"s_per_iter": v["s_per_iter"]} for k, v in per_kind.items()},
            "slots": n_slots, "threads_per_run": threads, "train_s": total, "eval_s": eval_s, "wall_s": wall,
            "measured": measure}
