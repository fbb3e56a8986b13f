"""Evaluate runs: translate (cached), compute every available metric, write each run's scores, make tables.

``evaluate_runs(run_dirs, metrics=None, ...)`` returns one result dict per (run, direction):

    {"run": path, "name": run id, "ok": bool, "error": one sentence or None, "direction": "AtoB",
     "checkpoint": {"file", "sha1", "iteration"}, "image_size": 64, "model": "cyclegan", "composition": name,
     "task": "eyeglasses", "alpha": the composition's alpha_measured, "recipe": {...}, "config": {...}, "seed": run seed,
     "outputs": cache folder, "reused_outputs": bool, "seconds": evaluation time,
     "metrics": {name: {"mean", "ci_low", "ci_high", "n", "label", "lower_is_better", "note"?}},
     "unavailable": {name: one sentence}, "info": {"identity_encoder": {...}, "attribute_classifier": {...}}}

A run that cannot be evaluated (no checkpoints, a corrupt checkpoint, a vanished composition, a different image size
or task from the rest of the comparison) gets ``ok: False`` and its sentence; the others are still evaluated.

The run's scores (``Run.scores``: ``scores.json`` in the run folder; an older ``metrics.json`` is still read) hold,
per direction, the checkpoint evaluated and each metric's summary (and the unavailable metrics with their reasons);
``Run.per_image_scores`` (``scores_per_image.json``) holds the per-image values behind them.
Evaluating again with the same checkpoint merges new metrics into the file; a new checkpoint replaces it.
Nothing is computed twice: a metric already in the scores for the same checkpoint, the same cached outputs and the
same evaluation setting (``evaluation_key``: the metric code, the identity-encoder choice and which weight files
are present) is reused as saved (the row lists it in ``"reused_metrics"``), so reopening a comparison is quick.

The input-unchanged baseline: ``identity_baselines(results)`` (or ``evaluate_runs(..., baseline=True)``, which
appends them) scores the identity map (output = input) on the same test images as the evaluated runs, one row per
distinct test set, named ``BASELINE_NAME`` and marked ``"baseline": "identity"`` (``is_baseline``,
``split_baselines``). Metrics that compare the output with its input are 0 by construction there and are listed
in the row's ``"not_applicable"``; ``baseline_note`` says so in one sentence. Its values are kept in the
workspace's ``cache/baselines/`` by the test images' content hash and the evaluation key, and reused.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import UserError
from . import stats
from .metrics import REGISTRY, EvalContext, get_metrics
from ..train.run import Run
from .outputs import OutputSet, resolve_run, run_composition, run_config, translate_test_set

# Config fields that do not change what a run learns (ignored when grouping runs that differ only by seed).
MACHINERY = {"seed", "device", "threads", "deterministic", "save_every", "keep_last", "keep_every", "sample_every",
             "log_every", "n_samples"}


def _directions(direction) -> list[str]:
    if direction in (None, "", "AtoB"):
        return ["AtoB"]
    if direction == "BtoA":
        return ["BtoA"]
    if direction == "both":
        return ["AtoB", "BtoA"]
    raise UserError(f"Direction must be AtoB, BtoA or both, got {direction!r}.")


def describe_run(run) -> dict:
    """What a run is (for grouping and checks) without translating; raises UserError with one sentence."""
    run_dir = resolve_run(run)
    cfg = run_config(run_dir)
    comp = run_composition(run_dir)
    from ..data.compose import load_manifest

    try:
        manifest = load_manifest(comp)
    except UserError:
        manifest = {}
    return {"run": str(run_dir), "name": run_dir.name, "model": cfg.get("model"), "image_size": cfg.get("image_size"),
            "config": cfg, "seed": cfg.get("seed"), "composition": comp.name, "composition_path": str(comp),
            "task": manifest.get("task"), "domains": manifest.get("domains"),
            "alpha": manifest.get("alpha_measured"), "alpha_target": manifest.get("alpha_target"),
            "recipe": manifest.get("recipe"), "source_fingerprint": (manifest.get("source") or {}).get("fingerprint"),
            "manifest": manifest}


def _blank(run, direction: str, error: str | None = None) -> dict:
    name = Path(str(run)).name
    return {"run": str(run), "name": name, "ok": error is None, "error": error, "direction": direction,
            "metrics": {}, "unavailable": {}, "info": {}}


def evaluate_output_set(outputs: OutputSet, metrics=None, progress=None, device: str = "auto",
                        identity: str = "auto", manifest: dict | None = None, n_boot: int = 2000,
                        baseline: bool = False) -> dict:
    """Compute metrics on one output set: {"metrics", "unavailable", "not_applicable", "per_image", "info"}.

    ``baseline=True`` (the identity map's output set): metrics that compare each output with its input are not
    computed (0 by construction) and listed in "not_applicable" with one sentence."""
    progress = progress or (lambda f, m: None)
    ctx = EvalContext(outputs, manifest=manifest, device=device, progress=lambda f, m: progress(None, m),
                      identity=identity)
    chosen = get_metrics(metrics)
    result = {"metrics": {}, "unavailable": {}, "not_applicable": {}, "per_image": {}, "timings": {}}
    for i, metric in enumerate(chosen):
        if baseline and metric.input_vs_output:
            result["not_applicable"][metric.name] = (
                f"{metric.label} compares each output with its own input, which the identity map returns unchanged "
                "(0 by construction), so it does not apply to the input-unchanged baseline.")
            continue
        ok, why = metric.available(ctx)
        if not ok:
            result["unavailable"][metric.name] = why
            continue
        progress(i / len(chosen), f"Computing {metric.label}")
        t0 = time.time()
        try:
            values = np.asarray(metric.compute(ctx), dtype=np.float64)
        except UserError as exc:
            result["unavailable"][metric.name] = f"{metric.label} is unavailable: {str(exc).rstrip('.')}."
            continue
        summary = stats.summarize(values, n_boot=n_boot, reduce=metric.reduce)
        if metric.binary and summary["n"]:
            finite = values[np.isfinite(values)]
            lo, hi = stats.wilson_ci(int(round(finite.sum())), len(finite))
            summary.update({"ci_low": lo, "ci_high": hi, "interval": "Wilson score interval over test images"})
        elif metric.bounds is not None:
            summary["ci_low"], summary["ci_high"] = stats.clip_interval(summary["ci_low"], summary["ci_high"],
                                                                        metric.bounds)
        summary.update({"label": metric.label, "lower_is_better": metric.lower_is_better})
        if metric.bounds is not None:
            summary["bounds"] = list(metric.bounds)
        if metric.name in ctx.notes:
            summary["note"] = ctx.notes[metric.name]
        result["metrics"][metric.name] = summary
        result["timings"][metric.name] = round(time.time() - t0, 3)
        if values.ndim == 1:
            result["per_image"][metric.name] = [None if not math.isfinite(v) else float(v) for v in values]
    result["info"] = ctx.info
    progress(1.0, "Metrics done")
    return result


def check_comparable(described: list[dict]) -> dict[str, str]:
    """Runs whose image size or task differs from the comparison's majority: {run: one sentence}."""
    ok = [d for d in described if "error" not in d]
    if len(ok) < 2:
        return {}
    size = Counter(d["image_size"] for d in ok).most_common(1)[0][0]
    task = Counter(str(d["task"]) for d in ok).most_common(1)[0][0]
    problems = {}
    for d in ok:
        if d["image_size"] != size:
            problems[d["run"]] = (f"Run {d['name']} translates at {d['image_size']}x{d['image_size']} while the other "
                                  f"runs use {size}x{size}, so it cannot be compared with them; evaluate it separately.")
        elif str(d["task"]) != task:
            problems[d["run"]] = (f"Run {d['name']} was trained for the {d['task']} task while the other runs do "
                                  f"{task}, so it cannot be compared with them; evaluate it separately.")
    return problems


@functools.cache
def _metric_code_hash() -> str:
    """The bytes of the code that computes metric values (read once per process)."""
    h = hashlib.sha1()
    for name in ("metrics.py", "stats.py", "encoders.py", "evaluate.py"):
        h.update((Path(__file__).with_name(name)).read_bytes())
    return h.hexdigest()


def evaluation_key(identity: str = "auto") -> str:
    """What saved metric values depend on besides the checkpoint and the outputs: the code that computes them, the
    identity-encoder choice and which optional weight files are present now (they decide the encoder and the
    metrics that can run). Saved values with another key are computed again."""
    from .encoders import facenet_weights
    from .metrics import alexnet_weights

    setting = json.dumps([_metric_code_hash(), identity, str(facenet_weights() or ""), str(alexnet_weights() or "")])
    return hashlib.sha1(setting.encode()).hexdigest()[:16]


def _in_order(wanted: list[str], computed: dict, saved: dict) -> dict:
    """The entries of ``wanted`` found in ``computed`` or else ``saved``, in the asked order."""
    return {n: computed[n] if n in computed else saved[n] for n in wanted if n in computed or n in saved}


def _saved_metrics(run_dir: Path, direction: str, outputs: OutputSet, key: str) -> dict:
    """The run's saved scores for exactly these outputs and this evaluation key ({} when none apply)."""
    entry = ((Run(run_dir).scores() or {}).get("directions") or {}).get(direction) or {}
    same = (outputs.reused and entry.get("evaluation_key") == key and entry.get("outputs") == str(outputs.folder)
            and (entry.get("checkpoint") or {}).get("sha1") == outputs.checkpoint["sha1"]
            and entry.get("n_test") == len(outputs))
    return entry if same else {}


def evaluate_runs(run_dirs, metrics=None, progress=None, checkpoint="latest", direction="AtoB",
                  device: str = "auto", identity: str = "auto", write: bool = True,
                  baseline: bool = False) -> list[dict]:
    """Evaluate runs side by side (see the module doc); one result dict per (run, direction).

    ``baseline=True`` appends the input-unchanged (identity map) rows of ``identity_baselines`` after the runs'
    rows (each marked ``"baseline": "identity"``; ``split_baselines`` separates them again)."""
    outer = progress or (lambda f, m: None)
    if baseline:
        def progress(f, m):
            outer(0.9 * f, m)
    else:
        progress = outer
    get_metrics(metrics)  # unknown metric names fail before any work
    directions = _directions(direction)
    run_dirs = list(run_dirs)
    if not run_dirs:
        raise UserError("Choose at least one run to evaluate.")
    described = []
    for run in run_dirs:
        try:
            described.append(describe_run(run))
        except UserError as exc:
            described.append({"run": str(run), "name": Path(str(run)).name, "error": str(exc)})
    problems = check_comparable(described)
    results = []
    wanted = [m.name for m in get_metrics(metrics)]
    key = evaluation_key(identity)
    jobs = [(d, dr) for d in described for dr in directions]
    for j, (d, dr) in enumerate(jobs):
        base, span = j / len(jobs), 1.0 / len(jobs)

        def report(f, m, base=base, span=span, name=d["name"]):
            progress(base + span * max(0.0, min(1.0, f)) if f is not None else base, f"{name}: {m}")

        if "error" in d or d["run"] in problems:
            results.append(_blank(d["run"], dr, d.get("error") or problems[d["run"]]))
            continue
        t0 = time.time()
        try:
            outputs = translate_test_set(d["run"], checkpoint, dr,
                                         progress=lambda f, m: report(0.3 * f, m), device=device)
            saved = _saved_metrics(Path(d["run"]), dr, outputs, key) if write else {}
            reused = {n: saved["metrics"][n] for n in wanted if n in (saved.get("metrics") or {})}
            todo = [n for n in wanted if n not in reused]
            if todo:
                res = evaluate_output_set(outputs, todo, lambda f, m: report(None if f is None else 0.3 + 0.7 * f, m),
                                          device, identity, d["manifest"])
            else:
                report(1.0, "Reusing the saved metrics")
                res = {"metrics": {}, "unavailable": {}, "per_image": {}, "timings": {}, "info": {}}
            res["metrics"] = _in_order(wanted, res["metrics"], reused)
            res["info"] = dict(saved.get("info") or {}, **res["info"]) if reused else res["info"]
        except UserError as exc:
            results.append(_blank(d["run"], dr, str(exc)))
            continue
        row = {k: v for k, v in d.items() if k != "manifest"}
        row.update({"ok": True, "error": None, "direction": dr, "checkpoint": outputs.checkpoint,
                    "image_size": outputs.image_size, "outputs": str(outputs.folder), "reused_outputs": outputs.reused,
                    "n_test": len(outputs), "n_truth": outputs.n_truth, "metrics": res["metrics"],
                    "unavailable": res["unavailable"], "info": res["info"], "timings": res["timings"],
                    "reused_metrics": list(reused), "evaluation_key": key, "seconds": round(time.time() - t0, 3)})
        if write:
            _write_metrics(Path(d["run"]), row, outputs, res["per_image"])
        results.append(row)
    if baseline:
        results += identity_baselines(results, metrics, lambda f, m: outer(0.9 + 0.1 * f, m), device, identity)
    outer(1.0, "Evaluation done")
    return results


# ================================================================================ the input-unchanged baseline
BASELINE_NAME = "input unchanged (identity map)"
BASELINE = "identity"
NOT_APPLICABLE = "does not apply"  # the table cell of a metric that does not apply to the baseline


def is_baseline(result: dict) -> bool:
    return result.get("baseline") == BASELINE


def split_baselines(results: list[dict]) -> tuple[list[dict], list[dict]]:
    """(the runs' rows, the baseline rows) of a result list, each in its order."""
    return [r for r in results if not is_baseline(r)], [r for r in results if is_baseline(r)]


def evaluate_identity(composition, direction: str = "AtoB", image_size: int | None = None, metrics=None,
                      progress=None, device: str = "auto", identity: str = "auto", n_boot: int = 2000) -> dict:
    """The input-unchanged baseline on one composition's test split: a result dict like a run's, with
    ``"baseline": "identity"``, ``"name": BASELINE_NAME``, no alpha and a ``"not_applicable"`` entry (one sentence)
    per metric that compares output with input. Raises UserError with one sentence when the test set is unreadable.
    """
    from .outputs import identity_outputs, test_set_key

    t0 = time.time()
    comp = Path(composition)
    outputs = identity_outputs(comp, direction, image_size)
    try:
        key = test_set_key(outputs)
    except OSError as exc:
        raise UserError(f"The test set of composition {comp.name} is unreadable ({type(exc).__name__}).")
    # computed once per test set and evaluation setting: a cache file in the workspace, keyed by the test images'
    # content hash, so reopening a comparison does not score the identity map again
    from .. import workspace

    cache = workspace.sub("cache") / "baselines" / f"{key}-{evaluation_key(identity)}-{n_boot}.json"
    saved = workspace.read_json(cache) or {}
    have, skipped = saved.get("metrics") or {}, saved.get("not_applicable") or {}
    wanted = [m.name for m in get_metrics(metrics)]
    todo = [n for n in wanted if n not in have and n not in skipped]
    res = {"metrics": {}, "unavailable": {}, "not_applicable": {}, "timings": {}, "info": {}}
    if todo:
        res = evaluate_output_set(outputs, todo, progress, device, identity, None, n_boot, baseline=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        workspace.write_json_atomic(cache, {"metrics": dict(have, **res["metrics"]),
                                            "not_applicable": dict(skipped, **res["not_applicable"]),
                                            "info": dict(saved.get("info") or {}, **res["info"])})
    res["metrics"] = _in_order(wanted, res["metrics"], have)
    res["not_applicable"] = _in_order(wanted, res["not_applicable"], skipped)
    res["info"] = dict(saved.get("info") or {}, **res["info"])
    return {"run": None, "name": BASELINE_NAME, "baseline": BASELINE, "ok": True, "error": None,
            "direction": direction, "model": BASELINE, "alpha": None, "recipe": None, "seed": None, "config": None,
            "composition": comp.name, "composition_path": str(comp), "compositions": [comp.name],
            "image_size": outputs.image_size, "n_test": len(outputs), "n_truth": outputs.n_truth, "test_set": key,
            "checkpoint": dict(outputs.checkpoint), "metrics": res["metrics"], "unavailable": res["unavailable"],
            "not_applicable": res["not_applicable"], "info": res["info"], "timings": res["timings"],
            "runs": [], "seconds": round(time.time() - t0, 3)}


def identity_baselines(results: list[dict], metrics=None, progress=None, device: str = "auto",
                       identity: str = "auto") -> list[dict]:
    """The input-unchanged baseline rows for the successfully evaluated runs in ``results`` (``evaluate_runs``
    dicts): one per distinct test set as evaluated (composition test split, direction, image size; compositions
    holding the same test images share one row). Each row lists the ``runs`` it serves; with several test sets the
    name adds their compositions. A test set that cannot be read gives a row with ``ok: False`` and its sentence."""
    progress = progress or (lambda f, m: None)
    wanted: dict[tuple, list[dict]] = {}
    for r in results:
        if r.get("ok") and not is_baseline(r) and r.get("composition_path"):
            wanted.setdefault((r["composition_path"], r["direction"], r.get("image_size")), []).append(r)
    rows: dict[str, dict] = {}
    failed = []
    for k, ((comp, dr, size), members) in enumerate(wanted.items()):
        names = [m["name"] for m in members]
        report = (lambda f, m, k=k: progress((k + (f or 0.0)) / len(wanted), f"{BASELINE_NAME}: {m}"))
        try:
            key = _test_key_for(comp, dr, size)
            if key in rows:
                rows[key]["runs"] += names
                rows[key]["compositions"] = sorted(set(rows[key]["compositions"]) | {Path(comp).name})
                continue
            row = evaluate_identity(comp, dr, size, metrics, report, device, identity)
        except UserError as exc:
            failed.append(dict(_blank(BASELINE_NAME, dr, str(exc)), baseline=BASELINE, runs=names, run=None,
                               composition=Path(comp).name))
            continue
        row["runs"] = names
        rows[row["test_set"]] = row
    out = list(rows.values())
    per_direction = Counter(r["direction"] for r in out)
    for row in out:
        if per_direction[row["direction"]] > 1:  # several test sets: say whose
            row["name"] += f" · {', '.join(row['compositions'])}"
        if len(per_direction) > 1:
            row["name"] += f" · {row['direction']}"
    progress(1.0, f"{BASELINE_NAME}: done")
    return out + failed


def _test_key_for(comp, direction: str, size) -> str:
    from .outputs import identity_outputs, test_set_key

    try:
        return test_set_key(identity_outputs(comp, direction, size))
    except OSError as exc:
        raise UserError(f"The test set of composition {Path(comp).name} is unreadable ({type(exc).__name__}).")


def baseline_note(results: list[dict]) -> str:
    """One sentence naming the metrics that do not apply to the input-unchanged baseline and that some run has
    ("" when none; with baseline rows only, all of them)."""
    from .metrics import REGISTRY

    shown = {m for r in results if not is_baseline(r) for m in r.get("metrics", {})}
    only_baselines = not any(not is_baseline(r) for r in results)
    names = []
    for r in results:
        for m in (r.get("not_applicable") or {}) if is_baseline(r) else ():
            if m not in names and (only_baselines or m in shown):
                names.append(m)
    if not names:
        return ""
    shown_labels = {m: s.get("label") for r in results for m, s in r.get("metrics", {}).items() if s.get("label")}
    labels = [shown_labels.get(m) or (REGISTRY[m].label if m in REGISTRY else m) for m in names]
    listed = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
    verb = "compares" if len(labels) == 1 else "compare"
    return (f"{listed} {verb} each output with its own input, which the identity map returns unchanged (0 by "
            f"construction), so {'it does' if len(labels) == 1 else 'they do'} not apply to the {BASELINE_NAME} row.")


def _write_metrics(run_dir: Path, row: dict, outputs: OutputSet, per_image: dict) -> None:
    run = Run(run_dir)
    data = run.scores() or {}
    entry = {k: row[k] for k in ("direction", "checkpoint", "image_size", "n_test", "n_truth", "metrics",
                                  "unavailable", "info", "outputs", "evaluation_key")}
    entry["evaluated"] = time.time()
    old = (data.get("directions") or {}).get(row["direction"])
    if (old and old.get("checkpoint", {}).get("sha1") == row["checkpoint"]["sha1"]
            and old.get("evaluation_key") == row["evaluation_key"] and old.get("outputs") == row["outputs"]):
        merged_metrics = dict(old.get("metrics", {}), **entry["metrics"])
        merged_unavail = {k: v for k, v in dict(old.get("unavailable", {}), **entry["unavailable"]).items()
                          if k not in entry["metrics"]}
        entry["metrics"], entry["unavailable"] = merged_metrics, merged_unavail
        entry["info"] = dict(old.get("info", {}), **entry["info"])
    directions = {dr: e for dr, e in (data.get("directions") or {}).items()
                  if e.get("checkpoint", {}).get("sha1") == row["checkpoint"]["sha1"]}
    directions[row["direction"]] = entry
    data = {"format": "pairlab-metrics-1", "run": run_dir.name, "composition": row.get("composition"),
            "model": row.get("model"), "seed": row.get("seed"), "alpha": row.get("alpha"), "directions": directions}
    run.write_scores(data)
    # per-image values
    pdata = run.per_image_scores() or {}
    pentry = {"checkpoint": row["checkpoint"]["sha1"], "names": [it.name for it in outputs.items], "values": per_image}
    old = pdata.get(row["direction"])
    if old and old.get("checkpoint") == pentry["checkpoint"] and old.get("names") == pentry["names"]:
        pentry["values"] = dict(old.get("values", {}), **per_image)
    pdata = {dr: e for dr, e in pdata.items() if isinstance(e, dict) and e.get("checkpoint") == pentry["checkpoint"]}
    pdata[row["direction"]] = pentry
    run.write_per_image_scores(pdata)


def read_metrics(run_dir) -> dict | None:
    """A run's evaluation scores (``Run.scores``), or None when it has not been evaluated."""
    return Run(run_dir).scores()


# ================================================================================ seeds
def group_key(result: dict) -> tuple:
    """Runs that differ only by seed (run seed and recipe seed) share this key."""
    cfg = {k: v for k, v in (result.get("config") or {}).items() if k not in MACHINERY}
    recipe = {k: v for k, v in (result.get("recipe") or {}).items() if k != "seed"}
    return (json.dumps(cfg, sort_keys=True), json.dumps(recipe, sort_keys=True), result.get("source_fingerprint"),
            result.get("direction"), result.get("image_size"))


def _bounds(name: str, summary: dict):
    """A metric's range from its summary, or from the registry for results saved before summaries carried it."""
    if summary.get("bounds"):
        return tuple(summary["bounds"])
    metric = REGISTRY.get(name)
    return metric.bounds if metric is not None else None


def aggregate_seeds(results: list[dict]) -> list[dict]:
    """Groups of successfully evaluated runs that differ only by seed, each metric aggregated over seeds with
    ``stats.seed_summary`` (mean of the seed means; 95% t-interval of the seed means). Baseline rows follow as
    they are (the identity map has no seeds)."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        if r.get("ok") and not is_baseline(r):
            groups.setdefault(group_key(r), []).append(r)
    out = []
    for members in groups.values():
        first = members[0]
        names = [m for m in first["metrics"] if all(m in r["metrics"] for r in members)]
        label = _group_label(first)
        out.append({"name": label, "runs": [r["name"] for r in members], "seeds": [r.get("seed") for r in members],
                    "direction": first["direction"], "alpha": first.get("alpha"), "model": first.get("model"),
                    "composition": first.get("composition"), "recipe": first.get("recipe"), "ok": True, "error": None,
                    "metrics": {m: dict(stats.seed_summary([r["metrics"][m] for r in members],
                                                           bounds=_bounds(m, first["metrics"][m])),
                                        label=first["metrics"][m].get("label"),
                                        lower_is_better=first["metrics"][m].get("lower_is_better"))
                                for m in names},
                    "unavailable": dict(first.get("unavailable", {}))})
    return out + [r for r in results if is_baseline(r)]  # baseline rows pass through unchanged


def _group_label(r: dict) -> str:
    recipe = r.get("recipe") or {}
    if recipe:
        from ..data.recipes import Recipe

        try:
            short = Recipe.from_dict(dict(recipe, seed=0)).short_name().rsplit("-s0", 1)[0]
        except UserError:
            short = r.get("composition", "?")
    else:
        short = r.get("composition", "?")
    return f"{r.get('model')} {short}"


# ================================================================================ tables
def metrics_table(results: list[dict], metrics=None, ci: bool = True,
                  split: bool = False, mark_best: bool = False) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of strings: one row per result, one column per metric ("mean [low, high]").
    ``split=True`` (CSV): three columns per metric, "<label> mean", "<label> low", "<label> high", with the
    numbers at full precision ('' where there is none), and a column "n" with the number of test images.
    Each metric column has one number format (``column_format``: enough decimals for 3 significant digits of its
    smallest value); ``mark_best=True`` prefixes the best mean of each column that has a direction with
    ``BEST_MARK`` (ties all marked; the input-unchanged baseline is not a candidate)."""
    names = [m.name for m in get_metrics(metrics)] if metrics else []
    if not names:
        seen = []
        for r in results:
            for m in list(r.get("metrics", {})):
                if m not in seen:
                    seen.append(m)
        from .metrics import REGISTRY

        names = [m for m in REGISTRY if m in seen] + [m for m in seen if m not in REGISTRY]
    labels = {}
    for r in results:
        for m, s in r.get("metrics", {}).items():
            labels.setdefault(m, s.get("label", m))
    arrows = {}
    for r in results:
        for m, s in r.get("metrics", {}).items():
            lib = s.get("lower_is_better")
            arrows.setdefault(m, "" if lib is None else (" ↓" if lib else " ↑"))
    headers = ["run", "dir", "alpha"] + [f"{labels.get(m, m)}{arrows.get(m, '')}" for m in names]
    if split:
        return _split_table(results, names, headers)
    formats = {m: column_format([(r.get("metrics") or {}).get(m, {}).get("mean") for r in results if r.get("ok", True)])
               for m in names}
    best = {m: _best(results, m) for m in names} if mark_best else {}
    rows = []
    for r in results:
        alpha = r.get("alpha")
        row = [r.get("name", "?"), r.get("direction", ""), "" if alpha is None else f"{alpha:.2f}"]
        if not r.get("ok", True):
            row.append(f"error: {r.get('error')}")
            row += [""] * (len(names) - 1)
            rows.append(row)
            continue
        for m in names:
            s = r.get("metrics", {}).get(m)
            cell = (_cell(s, ci, formats[m]) if s else NOT_APPLICABLE if m in (r.get("not_applicable") or {})
                    else "n/a")
            if s and best.get(m) is not None and s.get("mean") == best[m] and not is_baseline(r):
                cell = BEST_MARK + cell
            row.append(cell)
        rows.append(row)
    return headers, rows


BEST_MARK = "★ "


def _best(results: list[dict], m: str):
    """The best mean of metric ``m`` over the successful non-baseline rows (None when the metric has no direction)."""
    vals = [(r["metrics"][m].get("mean"), r["metrics"][m].get("lower_is_better")) for r in results
            if r.get("ok", True) and not is_baseline(r) and m in (r.get("metrics") or {})]
    vals = [(v, lib) for v, lib in vals if v is not None and math.isfinite(v) and lib is not None]
    if len(vals) < 2:
        return None
    return (min if vals[0][1] else max)(v for v, _ in vals)


def column_format(values) -> str:
    """One fixed-point format for a metric column: 3 significant digits of its smallest non-zero magnitude, at least
    3 and at most 8 decimals ('.3f' for values near 1, '.6f' for 5.4e-04), or '.3e' for a column of huge values."""
    mags = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not mags:
        return ".3f"
    if max(mags) >= 1e5:
        return ".3e"
    decimals = 2 - math.floor(math.log10(min(mags)))
    return f".{min(8, max(3, decimals))}f"


def _fmt(v) -> str:
    if v is None:
        return "nan"
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e4):
        return f"{v:.3e}"
    return f"{v:.4f}"


def _num(x) -> str:
    return "" if x is None or not math.isfinite(float(x)) else repr(float(x))


def _split_table(results: list[dict], names: list[str], headers: list[str]) -> tuple[list[str], list[list[str]]]:
    out_headers = headers[:3] + ["n"] + [f"{h} {part}" for h in headers[3:] for part in ("mean", "low", "high")]
    rows = []
    for r in results:
        alpha = r.get("alpha")
        ns = [s.get("n") for s in (r.get("metrics") or {}).values() if s.get("n")]
        row = [r.get("name", "?"), r.get("direction", ""), "" if alpha is None else repr(float(alpha)),
               str(max(ns)) if ns else ""]
        if not r.get("ok", True):
            rows.append(row + [f"error: {r.get('error')}"] + [""] * (3 * len(names) - 1))
            continue
        for m in names:
            s = (r.get("metrics") or {}).get(m) or {}
            row += [_num(s.get("mean")), _num(s.get("ci_low")), _num(s.get("ci_high"))]
        rows.append(row)
    return out_headers, rows


def _cell(s: dict, ci: bool, fmt: str | None = None) -> str:
    if s.get("mean") is None:
        return "nan"
    f = (lambda v: format(v, fmt)) if fmt else _fmt
    text = f(s["mean"])
    if ci and s.get("ci_low") is not None and s.get("ci_high") is not None:
        text += f" [{f(s['ci_low'])}, {f(s['ci_high'])}]"
    return text


def metric_notes(results: list[dict]) -> list[str]:
    """Each distinct metric note once ("label, label: note"): encoders used, the attribute region's rule."""
    notes: dict[str, list[str]] = {}
    for r in results:
        for m, s in r.get("metrics", {}).items():
            if s.get("note"):
                labels = notes.setdefault(s["note"], [])
                if s.get("label", m) not in labels:
                    labels.append(s.get("label", m))
    return [f"{', '.join(labels)}: {note}" for note, labels in notes.items()]


def format_table(results: list[dict], metrics=None, ci: bool = True) -> str:
    """A plain-text table, then the notes: unavailable metrics (why), encoders used, errors."""
    headers, rows = metrics_table(results, metrics, ci)
    ok_rows = [r for r, res in zip(rows, results) if res.get("ok", True)]
    widths = [max([len(h)] + [len(r[i]) for r in ok_rows if i < len(r)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for r, res in zip(rows, results):
        if not res.get("ok", True):  # the error sentence runs on past the metric columns
            lines.append("  ".join(c.ljust(w) for c, w in zip(r[:3], widths[:3])) + "  " + r[3] if len(r) > 3
                         else "  ".join(r))
            continue
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    notes = metric_notes(results)
    reasons = []
    for r in results:
        for m, why in r.get("unavailable", {}).items():
            if why not in reasons:
                reasons.append(why)
    if notes:
        lines += ["", "notes:"] + [f"  {n}" for n in notes]
    if reasons:
        lines += ["", "unavailable:"] + [f"  {w}" for w in reasons]
    if baseline_note(results):
        lines += ["", "baseline:", f"  {baseline_note(results)}"]
    intervals = {s.get("interval") for r in results for s in r.get("metrics", {}).values() if s.get("interval")}
    if ci:
        lines += ["", "intervals: " + ("; ".join(sorted(intervals)) if intervals else
                                       "95% percentile bootstrap over test images (2000 resamples)")]
    return "\n".join(lines)
