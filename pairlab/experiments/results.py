"""An experiment's results: the table in the paper's layout with 95% intervals over seeds, the input-unchanged
baseline beside it, a verdict per claim, the paper's own numbers, and the files that carry them.

    res = experiment_results(plan, "alpha")       # a dict (results.json)
    paths = write_report(plan, "alpha", res)      # table.csv / table.tex / claims.csv / report.html / grid.png

Cells are the mean of the per-seed means with a 95% t-interval over seeds (one seed: a bootstrap over its test
images, marked); claims are paired t-tests across seeds with Holm's correction over the experiment's claims
(``pairlab.experiments.stats``). The paper's numbers come from other datasets and another encoder: they are shown
for the direction and rough size of an effect, never as values to match.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

from .. import workspace
from ..papers import IMPLICIT_PAIRS, IMPLICIT_PAIRS_SHORT, plain
from .paper import FEATURE_METRICS, claims_for, paper_comparison, tables_for
from .plan import ARMS_OF, DIRECTIONS_OF, Plan
from ..train.run import Run
from .runner import _queue, experiment_dir, feature_values, per_image, read_manifest, run_name
from .stats import assess_claims, seed_interval

#: the metrics each experiment tabulates (the claims' metrics come first)
METRICS_OF = {
    "alpha": ("gt_mse", "gt_l1", "gt_l1_region", "gt_l1_outside", "gt_region_removed", "task_rate"),
    "baselines": ("infosim", "gt_l1", "gt_l1_region", "gt_region_removed", "task_rate"),
    "pseudo-alpha": ("infosim", "task_rate", "gt_l1", "gt_l1_region", "gt_region_removed"),
    "explicit": ("infosim", "task_rate", "gt_region_removed", "gt_l1", "gt_l1_region"),
    "figure9": tuple(FEATURE_METRICS),
}
BASELINE_FILE = "baseline.json"


def save_baseline(plan: Plan, rows: list[dict]) -> None:
    """Keep the input-unchanged rows of an evaluation (they are not written into any run folder)."""
    base = {r["direction"]: r.get("metrics", {}) for r in rows if r.get("baseline") and r.get("ok", True)}
    if base:
        folder = experiment_dir(plan)
        old = _read(folder / BASELINE_FILE)
        old.update(base)
        workspace.write_json_atomic(folder / BASELINE_FILE, old)


def _read(path: Path) -> dict:
    return workspace.read_json(path) or {}


def _clean(x):
    """JSON-safe: numpy numbers as Python ones, NaN and infinities as None."""
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def experiment_results(plan: Plan, experiment: str, progress=None) -> dict:
    configs = ARMS_OF[experiment]
    directions = DIRECTIONS_OF[experiment]
    wanted = plan.profile.metrics
    metrics = tuple(m for m in METRICS_OF[experiment] if wanted is None or m in wanted or experiment == "figure9")
    seeds = list(plan.seeds)
    cache: dict = {}

    if experiment == "figure9":
        for seed in seeds:
            try:
                cache[seed] = feature_values(plan, seed, configs, progress=progress)
            except Exception as exc:  # a run not finished or not placeable: that seed has no values
                cache[seed] = {"error": str(exc).split("\n")[0]}

    def values(metric, direction, config):
        out = {}
        for seed in seeds:
            if experiment == "figure9":
                v = (cache.get(seed) or {}).get(config, {})
                if isinstance(v, dict) and v.get(metric) is not None:
                    out[seed] = v[metric]
                continue
            arr = per_image(plan, configs[config], seed, metric, direction)
            if arr is not None:
                out[seed] = arr
        return out

    from ..eval.metrics import REGISTRY

    def metric_bounds(name):
        if name in FEATURE_METRICS:  # distances in PCA space: never below 0
            return (0.0, math.inf)
        m = REGISTRY.get(name)
        return m.bounds if m is not None else None

    cells = []
    for metric in metrics:
        for direction in directions:
            for config in configs:
                per_seed = values(metric, direction, config)
                iv = seed_interval(per_seed, bounds=metric_bounds(metric)) if per_seed else None
                cells.append({"metric": metric, "direction": direction, "config": config, "arm": configs[config],
                              "mean": _clean(iv.mean) if iv else None, "low": _clean(iv.low) if iv else None,
                              "high": _clean(iv.high) if iv else None, "n_seeds": iv.n_seeds if iv else 0,
                              "n_images": iv.n_images if iv else 0, "method": iv.method if iv else "no runs",
                              "cell": iv.cell() if iv else "no results yet"})
    claims = assess_claims(claims_for(experiment), values)
    baseline = _read(experiment_dir(plan) / BASELINE_FILE)
    paper = []
    for claim in claims_for(experiment):
        paper.append({"claim": claim.id, "text": claim.text, "source": claim.source, "evidence": claim.evidence,
                      "quote": claim.quote, "paper": claim.paper,
                      "numbers": [list(x) for x in paper_comparison(claim)]})
    runs = {config: {str(s): run_name(plan, arm, s) for s in seeds} for config, arm in configs.items()}
    manifest = read_manifest(plan)
    return {
        "experiment": experiment, "task": plan.task, "profile": plan.profile.to_dict(), "seeds": seeds,
        "made": time.time(), "code": manifest.get("code"), "machine": manifest.get("machine"),
        "configs": configs, "directions": list(directions), "metrics": list(metrics), "runs": runs,
        "cells": cells,
        "baseline": {d: {m: (baseline.get(d) or {}).get(m) for m in metrics} for d in directions},
        "claims": [{k: list(v) if isinstance(v, tuple) else _clean(v) for k, v in asdict(c).items()} for c in claims],
        "paper": paper,
        "paper_tables": [{"id": t.id, "source": t.source, "caption": t.caption, "metric": t.paper_metric,
                          "different_setting": t.different_setting, "columns": list(t.columns), "rows": t.rows,
                          "notes": t.notes} for t in tables_for(experiment)],
        "feature_errors": {str(s): v["error"] for s, v in cache.items() if isinstance(v, dict) and "error" in v},
    }


# ----- files ----------------------------------------------------------------------------------------------
def _csv(rows: list[list]) -> str:
    import csv

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _tex(text) -> str:
    out = str(text)
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"),
                 ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}"),
                 ("<", r"\textless{}"), (">", r"\textgreater{}")):
        out = out.replace(a, b) if a != "\\" else out.replace(a, "\0")
    return out.replace("\0", r"\textbackslash{}")


def _fmt(x) -> str:
    return "" if x is None else f"{x:.4g}"


def table_csv(res: dict) -> str:
    head = ["metric", "direction", "config", "mean", "ci_low", "ci_high", "n_seeds", "n_images", "interval"]
    rows = [[c["metric"], c["direction"], c["config"], _fmt(c["mean"]), _fmt(c["low"]), _fmt(c["high"]),
             c["n_seeds"], c["n_images"], c["method"]] for c in res["cells"]]
    for d, base in res["baseline"].items():
        for m, s in base.items():
            if s and s.get("mean") is not None:
                rows.append([m, d, "input unchanged", _fmt(s["mean"]), _fmt(s.get("ci_low")), _fmt(s.get("ci_high")),
                             "", s.get("n", ""), "baseline: the identity map on the same test images"])
    return _csv([head] + rows)


def claims_csv(res: dict) -> str:
    head = ["claim", "metric", "direction", "treatment", "control", "better", "n_seeds", "treatment_mean",
            "control_mean", "effect", "effect_low", "effect_high", "p", "p_holm", "verdict"]
    rows = [[c["claim_id"], c["metric"], c["direction"], c["treatment"], c["control"], c["better"], c["n_seeds"],
             _fmt(c["treatment_mean"]), _fmt(c["control_mean"]), _fmt(c["effect"]), _fmt(c["effect_low"]),
             _fmt(c["effect_high"]), _fmt(c["p_value"]), _fmt(c["p_adjusted"]), c["verdict"]] for c in res["claims"]]
    return _csv([head] + rows)


def _grid(res: dict) -> tuple[list[str], dict]:
    """Rows (metric, direction) x columns (configs) of the paper-layout table."""
    cols = list(res["configs"])
    grid = {}
    for c in res["cells"]:
        grid.setdefault((c["metric"], c["direction"]), {})[c["config"]] = c
    return cols, grid


def table_latex(res: dict) -> str:
    cols, grid = _grid(res)
    lines = [r"\begin{tabular}{ll" + "c" * (len(cols) + 1) + "}", r"\hline",
             "metric & direction & " + " & ".join(_tex(c) for c in cols) + r" & input unchanged \\", r"\hline"]
    for (metric, direction), row in grid.items():
        base = (res["baseline"].get(direction) or {}).get(metric) or {}
        cells = []
        for c in cols:
            cell = row.get(c) or {}
            if cell.get("mean") is None:
                cells.append("--")
            elif cell.get("low") is None:
                cells.append(f"{cell['mean']:.4g}")
            else:
                cells.append(f"{cell['mean']:.4g} [{cell['low']:.4g}, {cell['high']:.4g}]")
        cells.append(f"{base['mean']:.4g}" if base.get("mean") is not None else "--")
        lines.append(f"{_tex(metric)} & {_tex(direction)} & " + " & ".join(_tex(x) for x in cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def table_markdown(res: dict) -> str:
    """The paper-layout table and the claims as Markdown (for a README or a lab notebook): mean [95% interval over
    seeds] per configuration, the input-unchanged baseline, then one line per claim with its verdict."""
    cols, grid = _grid(res)
    prof = res.get("profile") or {}
    lines = [f"**{res['experiment']}** — task {res['task']}, profile {prof.get('name')}, seeds "
             f"{', '.join(map(str, res['seeds']))}; mean [95% t-interval over seeds]", "",
             "| metric | dir | " + " | ".join(cols) + " | input unchanged |",
             "|---|---|" + "---|" * (len(cols) + 1)]
    for (metric, direction), row in grid.items():
        base = (res["baseline"].get(direction) or {}).get(metric) or {}
        cells = []
        for c in cols:
            cell = row.get(c) or {}
            if cell.get("mean") is None:
                cells.append("–")
            elif cell.get("low") is None:
                cells.append(f"{cell['mean']:.4g}")
            else:
                cells.append(f"{cell['mean']:.4g} [{cell['low']:.4g}, {cell['high']:.4g}]")
        cells.append(f"{base['mean']:.4g}" if base.get("mean") is not None else "–")
        lines.append(f"| {metric} | {direction} | " + " | ".join(cells) + " |")
    if res.get("claims"):
        lines += ["", "| claim | verdict | difference [95%] | p | Holm p |", "|---|---|---|---|---|"]
        for c in res["claims"]:
            diff = "–" if c.get("effect") is None else (
                f"{c['effect']:+.3g} [{_fmt(c.get('effect_low'))}, {_fmt(c.get('effect_high'))}]"
                + (f" ({100 * c['relative']:+.1f}%)" if c.get("relative") is not None else ""))
            lines.append(f"| {c['claim_id']}: {c['treatment']} vs {c['control']} on {c['metric']}, paper: "
                         f"{c['better']} | **{c['verdict']}** | {diff} | {_fmt(c.get('p_value'))} | "
                         f"{_fmt(c.get('p_adjusted'))} |")
    return "\n".join(lines) + "\n"


def figure(res: dict):
    """One panel per (metric, direction): mean with 95% interval per configuration (a bar chart for categories,
    a line over alpha for the alpha and pseudo-alpha experiments), the baseline as a dashed line."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cols, grid = _grid(res)
    keys = list(grid)
    ncol = min(3, len(keys)) or 1
    nrow = max(1, math.ceil(len(keys) / ncol))
    fig = make_subplots(rows=nrow, cols=ncol, subplot_titles=[f"{m} ({d})" for m, d in keys])
    numeric = res["experiment"] in ("alpha", "pseudo-alpha")
    for i, key in enumerate(keys):
        r, c = i // ncol + 1, i % ncol + 1
        row = grid[key]
        xs = [float(k) if numeric else k for k in cols]
        cells = [row.get(k) or {} for k in cols]
        ys = [c.get("mean") for c in cells]
        lo = [(c.get("mean") or 0) - (c.get("low") or c.get("mean") or 0) for c in cells]
        hi = [(c.get("high") or c.get("mean") or 0) - (c.get("mean") or 0) for c in cells]
        err = dict(type="data", symmetric=False, array=hi, arrayminus=lo)
        trace = (go.Scatter(x=xs, y=ys, mode="lines+markers", error_y=err, showlegend=False, name=key[0]) if numeric
                 else go.Bar(x=xs, y=ys, error_y=err, showlegend=False, name=key[0]))
        fig.add_trace(trace, row=r, col=c)
        base = (res["baseline"].get(key[1]) or {}).get(key[0]) or {}
        if base.get("mean") is not None:
            fig.add_hline(y=base["mean"], line_dash="dash", line_color="gray", row=r, col=c,
                          annotation_text="input unchanged", annotation_font_size=9)
    fig.update_layout(height=300 * nrow, template="plotly_white", margin=dict(l=40, r=10, t=50, b=40),
                      title=f"{res['experiment']}: {res['task']}, profile {res['profile']['name']}, "
                            f"seeds {', '.join(map(str, res['seeds']))} (95% intervals over seeds)")
    return fig


def comparison_grid(plan: Plan, res: dict, seed: int | None = None):
    """The comparison grid of the first seed's runs (source | each configuration | ground truth), or None."""
    seed = res["seeds"][0] if seed is None else seed
    root = _queue().root
    runs = [root / r[str(seed)] for r in res["runs"].values() if Run(root / r[str(seed)]).state() == "done"]
    if len(runs) < 1:
        return None
    from ..eval.compare import build_grid

    got = build_grid(runs, rows=6, seed=0, by="recipe")
    return got.get("image")


def _verdict_badge(v: str) -> str:
    color = {"holds": "#2e7d32", "reversed": "#c62828", "not significant": "#6d6d6d"}.get(v, "#b26a00")
    return (f"<span style='background:{color};color:white;border-radius:4px;padding:1px 6px;white-space:nowrap'>"
            f"{html.escape(v)}</span>")


def report_html(res: dict, fig=None, grid_png: bytes | None = None) -> str:
    esc = html.escape
    cols, grid = _grid(res)
    prof = res["profile"]
    parts = [f"<h1>{esc(res['experiment'])} — {esc(res['task'])}</h1>",
             f"<p>Profile <b>{esc(prof['name'])}</b>: {esc(prof['description'])}. Seeds {esc(', '.join(map(str, res['seeds'])))}. "
             f"Code {esc(str((res.get('code') or {}).get('git') or (res.get('code') or {}).get('pairlab')))}; machine "
             f"{esc(str((res.get('machine') or {}).get('cpu', '')))}. Made {time.strftime('%Y-%m-%d %H:%M', time.localtime(res['made']))}.</p>",
             f"<h2>Claims of the implicit-pairs paper ({esc(plain(IMPLICIT_PAIRS))}), tested here</h2><table><tr><th>claim</th><th>verdict</th><th>result</th>"
             "<th>paper's own numbers</th></tr>"]
    paper = {p["claim"]: p for p in res["paper"]}
    for c in res["claims"]:
        p = paper.get(c["claim_id"], {})
        nums = "; ".join(f"{esc(str(w))}: {t:.4g} vs {k:.4g}" for w, t, k, *_ in p.get("numbers", []))
        parts.append(f"<tr><td><b>{esc(c['claim_id'])}</b><br><small>{esc(p.get('text', ''))}<br><i>{esc(p.get('source', ''))}, "
                     f"evidence: {esc(p.get('evidence', ''))}</i></small></td><td>{_verdict_badge(c['verdict'])}</td>"
                     f"<td><small>{esc(c['text'])}</small></td><td><small>{nums or esc(p.get('paper', ''))}</small></td></tr>")
    parts.append("</table>")
    parts.append("<h2>Results (mean [95% interval over seeds])</h2><table><tr><th>metric</th><th>direction</th>"
                 + "".join(f"<th>{esc(c)}</th>" for c in cols) + "<th>input unchanged</th></tr>")
    for (metric, direction), row in grid.items():
        base = (res["baseline"].get(direction) or {}).get(metric) or {}
        parts.append(f"<tr><td>{esc(metric)}</td><td>{esc(direction)}</td>"
                     + "".join(f"<td>{esc((row.get(c) or {}).get('cell', ''))}</td>" for c in cols)
                     + f"<td>{_fmt(base.get('mean'))}</td></tr>")
    parts.append("</table>")
    if fig is not None:
        parts.append(fig.to_html(full_html=False, include_plotlyjs=True))
    if grid_png:
        parts.append("<h2>Test images (first seed): source, each configuration, ground truth</h2>"
                     f"<img style='max-width:100%' src='data:image/png;base64,{base64.b64encode(grid_png).decode()}'>")
    for t in res["paper_tables"]:
        parts.append(f"<h2>{esc(plain(IMPLICIT_PAIRS_SHORT))}, {esc(t['id'])} ({esc(t['source'])})</h2><p><i>{esc(t['caption'])}</i> — "
                     f"{esc(t['metric'])}. <b>{esc(t['different_setting'])}</b></p><table><tr><th></th>"
                     + "".join(f"<th>{esc(str(c))}</th>" for c in t["columns"]) + "</tr>")
        for name, row in t["rows"].items():
            parts.append(f"<tr><td>{esc(str(name))}</td>" + "".join(f"<td>{row.get(c, '')}</td>" for c in t["columns"]) + "</tr>")
        parts.append("</table>")
    if res.get("feature_errors"):
        parts.append("<p>Feature space not placed for: " + esc("; ".join(f"seed {s}: {e}" for s, e in res["feature_errors"].items())) + "</p>")
    style = ("<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}table{border-collapse:collapse;"
             "margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;vertical-align:top}</style>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>pairlab experiment {esc(res['experiment'])}</title>"
            f"{style}</head><body>{''.join(parts)}</body></html>")


#: the files a report writes beside results.json (grid.png too when the runs could be drawn)
REPORT_FILES = ("report.html", "table.csv", "table.tex", "table.md", "claims.csv", "results.json")


def written_reports(plan: Plan) -> dict:
    """The reports already written for a plan's experiments, by name: {"results": dict, "paths": {file: path}}
    (what ``write_report`` returned when it wrote them); experiments without a readable results.json are left out."""
    out = {}
    for name in plan.experiments:
        folder = experiment_dir(plan) / name
        res = workspace.read_json(folder / "results.json")
        if res is not None:
            out[name] = {"results": res, "paths": {f: folder / f for f in REPORT_FILES + ("grid.png",)
                                                   if (folder / f).exists()}}
    return out


def write_report(plan: Plan, experiment: str, res: dict, grid: bool = True) -> dict[str, Path]:
    folder = experiment_dir(plan) / experiment
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}

    def put(name, data):
        workspace.write_atomic(folder / name, data)
        paths[name] = folder / name

    put("results.json", json.dumps(res, indent=1, default=str))
    put("table.csv", table_csv(res))
    put("table.tex", table_latex(res))
    put("claims.csv", claims_csv(res))
    put("table.md", table_markdown(res))
    png = None
    if grid:
        try:
            img = comparison_grid(plan, res)
        except Exception:  # the grid is a picture of the runs; a run that cannot be drawn does not stop the report
            img = None
        if img is not None:
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            png = buf.getvalue()
            put("grid.png", png)
    put("report.html", report_html(res, figure(res), png))
    return paths
