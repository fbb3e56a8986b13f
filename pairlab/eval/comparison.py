"""Compare, headless: ``compare(runs, ...) -> Comparison``, the one call behind the Compare tab and
``python -m pairlab compare``.

    c = compare(["run-a", "run-b"], view="alpha", metrics=["gt_mse"], direction="AtoB")
    headers, rows = c.table()          # ordered by alpha / recipe; aggregate=True: one row per group of seeds
    c.figure("gt_mse")                 # plotly figure of the metric against alpha, the baseline as a dashed line
    c.grid()                           # PIL image: rows are test samples, columns source / runs / ground truth
    c.problems(); c.report()           # one sentence per run that cannot be used; the tab's status text
    c.export(folder)                   # {"csv", "tex", "grid", "plot", "json"}: paths of the files written

It evaluates the runs in the view (``evaluate.evaluate_runs``, metrics cached per checkpoint, with the
input-unchanged baseline rows), tabulates them (``compare.comparison_table``) and draws the grid
(``compare.build_grid``); a run that cannot be used gets one sentence, the rest still shows.
``compare(..., evaluate=False)`` draws only the grid (the tab's "Show grid").
"""
from __future__ import annotations

import html
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

from .. import workspace
from ..errors import UserError
from . import compare as core
from .evaluate import BASELINE_NAME, baseline_note, evaluate_runs, is_baseline, metric_notes
from .metrics import REGION_RULE, REGISTRY

COLORS = ["#2f7ed8", "#d9534f", "#3aa55d", "#e8a33d", "#8e6cc1", "#17becf", "#7f7f7f"]

#: What ``Comparison.export`` can write, and the file names.
FILES = {"csv": "comparison.csv", "tex": "comparison.tex", "grid": "grid.png", "plot": "plot.html",
         "json": "comparison.json"}
#: What the Compare tab offers for download (the table and the grid shown).
TAB_EXPORTS = ("csv", "tex", "grid")


def export_dir() -> Path:
    """A fresh folder for exports: $PAIRLAB_HOME/cache/compare-exports/<time> (made)."""
    out = workspace.sub("cache") / "compare-exports" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_folders(runs) -> list[Path]:
    """Run folders from Run objects, folders or run ids under $PAIRLAB_HOME/runs (a missing one stays, and gets its
    sentence from ``describe_runs``)."""
    out = []
    for r in runs or []:
        if hasattr(r, "path") and not isinstance(r, (str, os.PathLike)):
            out.append(Path(r.path))
            continue
        path = Path(os.fspath(r)).expanduser()
        if not path.is_dir() and os.sep not in str(r):
            path = workspace.sub("runs") / str(r)
        out.append(path)
    return out


def ordering(view: str | None, order: str = "alpha") -> str:
    """The ordering of table rows and grid columns: the chosen one in the 'all' view, else the view's own."""
    return order if view in (None, "", "all") else core.apply_view(view, [])[1]


def problems_text(problems: dict[str, str], note: str = "", markdown: bool = True) -> str:
    """The note (italic) and one line per problem ("- **run**: sentence"); plain text without markdown."""
    if not markdown:
        return "\n".join(([note] if note else []) + [f"- {name}: {why}" for name, why in problems.items()])
    lines = [f"- **{html.escape(name)}**: {html.escape(why)}" for name, why in problems.items()]
    head = [f"*{html.escape(note)}*"] if note else []
    return "\n".join(head + lines)


#: views whose runs are categories (recipes, model kinds), not points on an alpha axis: drawn as bars
CATEGORICAL_VIEWS = ("baselines", "explicit")


def interval_wording(series: list[dict]) -> str:
    """What the error bars are: over seeds when some point has two or more seeds, else over test images."""
    most = max((n for s in series for n in s.get("seeds", [])), default=1)
    return "95% interval over seeds" if most > 1 else "95% bootstrap interval over test images (one seed)"


def figure(results: list[dict], metric: str | None, view: str = "all"):
    """The plotly figure of one metric: against alpha, a line per series with 95% error bars (over seeds when there
    are several, else over test images); for the categorical views (Table 4, Table 7) a bar per series and alpha.
    The input-unchanged baseline is a dashed reference line (its interval as a band)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    metric = metric or next(iter(core.plotted_metrics(results)), None)
    series = core.plot_series(results, metric) if metric else []
    bars = view in CATEGORICAL_VIEWS
    if bars and series:
        names, ys, lo, hi, seeds = [], [], [], [], []
        for s in series:
            for x, y, el, eh, n in zip(s["x"], s["y"], s["err_low"], s["err_high"], s["seeds"]):
                names.append(f"{s['name']} α{x:.2f}")
                ys.append(y), lo.append(el), hi.append(eh), seeds.append(n)
        fig.add_trace(go.Bar(x=names, y=ys, marker_color=[COLORS[k % len(COLORS)] for k in range(len(names))],
                             error_y={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo},
                             customdata=seeds, name=metric,
                             hovertemplate="%{x}: %{y:.4f} (%{customdata} seed(s))<extra></extra>"))
    for k, s in enumerate([] if bars else series):
        fig.add_trace(go.Scatter(
            x=s["x"], y=s["y"], mode="lines+markers", name=s["name"], line={"color": COLORS[k % len(COLORS)]},
            error_y={"type": "data", "symmetric": False, "array": s["err_high"], "arrayminus": s["err_low"]},
            customdata=s["seeds"], hovertemplate="alpha %{x:.2f}: %{y:.4f} (%{customdata} seed(s))<extra></extra>"))
    lines = core.baseline_lines(results, metric) if metric else []
    for k, b in enumerate(lines):  # the input-unchanged baseline: a dashed reference line, its interval as a band
        if b["ci_low"] is not None and b["ci_high"] is not None and b["ci_high"] > b["ci_low"]:
            fig.add_hrect(y0=b["ci_low"], y1=b["ci_high"], fillcolor="#555555", opacity=0.12, line_width=0)
        fig.add_hline(y=b["y"], line_dash="dash", line_color="#555555",
                      annotation_text=f"{b['name']}: {b['y']:.4f}", annotation_position="top left" if k % 2 == 0
                      else "bottom left", annotation_font_color="#444444")
    first = series[0] if series else (lines[0] if lines else None)
    label = first["label"] if first else (REGISTRY[metric].label if metric in REGISTRY else "metric")
    arrow = "" if not first or first["lower_is_better"] is None else \
        (" (lower is better)" if first["lower_is_better"] else " (higher is better)")
    what = f"{label} by run group{arrow}" if bars else f"{label} against alpha{arrow}"
    if series:
        what += f"<br><sup>error bars: {interval_wording(series)}</sup>"
    fig.update_layout(title=what, xaxis_title="run group" if bars else "alpha (measured)", yaxis_title=label,
                      height=380, margin={"l": 50, "r": 20, "t": 70, "b": 40}, template="plotly_white",
                      legend={"orientation": "h", "y": -0.2})
    if not series and not lines:
        fig.add_annotation(text="Evaluate runs to plot their metrics", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
    return fig


def _json_default(value):
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(value)


@dataclass(frozen=True)
class Comparison:
    """The outcome of ``compare``: evaluation results, the grid, the problems; it tabulates, plots and exports itself."""

    FILES: ClassVar[dict] = FILES
    TAB_EXPORTS: ClassVar[tuple] = TAB_EXPORTS
    VIEWS: ClassVar[dict] = core.VIEWS

    runs: tuple[str, ...]                      # the run folders asked for, in the order given
    view: str = "all"                          # a key of ``compare.VIEWS``
    order: str = "alpha"                       # the chosen ordering ('alpha' / 'recipe'; the view's own otherwise)
    direction: str = "AtoB"
    checkpoint: str = "latest"
    aggregate: bool = False                    # the table: one row per group of seeds
    note: str = ""                             # the view's sentence when it leaves runs out
    evaluated: bool = False                    # False: only the grid was drawn
    results: list = field(default_factory=list)       # ``evaluate_runs`` rows, the baseline rows after the runs
    sheet: dict = field(default_factory=dict)          # ``compare.build_grid``'s answer ({} when not drawn)
    outline: bool = False                      # the grid outlines the attribute region

    @classmethod
    def from_results(cls, results: list[dict], view: str = "all", order: str = "alpha", direction: str = "AtoB",
                     aggregate: bool = False) -> "Comparison":
        """A comparison of results evaluated before (the tab's table after a change of aggregation)."""
        results = list(results or [])
        return cls(runs=tuple(r.get("run", "") for r in results if not is_baseline(r)), view=view or "all",
                   order=order, direction=direction, aggregate=bool(aggregate), evaluated=True, results=results)

    # ----- the table ------------------------------------------------------------------------------------
    @property
    def by(self) -> str:
        """The ordering of table rows and grid columns."""
        return ordering(self.view, self.order)

    @property
    def caption(self) -> str:
        return f"{core.VIEWS.get(self.view or 'all')}: {self.direction}."

    def table(self, aggregate: bool | None = None) -> tuple[list[str], list[list[str]]]:
        """(headers, rows): per run, or one row per group of seeds; baseline rows after the runs, failures last."""
        agg = self.aggregate if aggregate is None else aggregate
        return core.comparison_table(self.results, by=self.by, aggregate=bool(agg), mark_best=True)

    def display_table(self, labels: dict[str, str] | None = None,
                      aggregate: bool | None = None) -> tuple[list[str], list[list[str]]]:
        """``table()`` for the screen: run ids replaced by their short ``labels`` (id -> label; the full id stays in
        the exports) and a 'test images' column after the first, so runs on different test sets are told apart."""
        headers, rows = self.table(aggregate)
        labels = labels or {}
        n_test = {}
        for r in self.results:
            n = r.get("n_test")
            if n is None:
                ns = [m.get("n") for m in (r.get("metrics") or {}).values() if isinstance(m, dict) and m.get("n")]
                n = max(ns) if ns else None
            n_test[str(r.get("name", ""))] = "" if n is None else str(n)
        out = [[labels.get(str(row[0]), row[0]), n_test.get(str(row[0]), "")] + list(row[1:]) for row in rows]
        return [headers[0], "test images"] + list(headers[1:]), out

    def csv(self, aggregate: bool | None = None) -> str:
        """The table as CSV: full run ids, and separate mean / low / high columns per metric (full precision)."""
        agg = self.aggregate if aggregate is None else aggregate
        return core.to_csv(*core.comparison_table(self.results, by=self.by, aggregate=bool(agg), split=True))

    def latex(self, aggregate: bool | None = None) -> str:
        headers, rows = self.table(aggregate)
        return core.to_latex(headers, rows, caption=self.caption)

    def table_text(self, aggregate: bool | None = None) -> str:
        """The table as aligned plain-text columns (the CLI prints it)."""
        headers, rows = self.table(aggregate)
        cells = [list(map(str, headers))] + [[str(c) for c in r] + [""] * (len(headers) - len(r)) for r in rows]
        widths = [max(len(r[j]) for r in cells) for j in range(len(headers))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    @staticmethod
    def problems_text(problems: dict[str, str], note: str = "", markdown: bool = True) -> str:
        return problems_text(problems, note, markdown)

    # ----- the plot -------------------------------------------------------------------------------------
    def plotted_metrics(self) -> list[str]:
        return core.plotted_metrics(self.results)

    def metric_choices(self) -> list[tuple[str, str]]:
        """(label, name) of each metric the plot can show."""
        return [(REGISTRY[m].label if m in REGISTRY else m, m) for m in self.plotted_metrics()]

    def figure(self, metric: str | None = None):
        """The plotly figure of ``metric`` (default the first plotted one) against alpha."""
        return figure(self.results, metric, self.view)

    # ----- the grid -------------------------------------------------------------------------------------
    def grid(self):
        """The grid image (PIL), or None when no run could be translated."""
        return self.sheet.get("image")

    def grid_info(self) -> str:
        """'Page 1 of 2 · columns: …' (and how many rows have the attribute region outlined); '' with no grid."""
        g = self.sheet
        if g.get("image") is None:
            return ""
        info = f"Page {g['page'] + 1} of {g['pages']} · columns: {', '.join(g['columns'])}"
        if self.outline:
            info += (f" · attribute region outlined in magenta on {g['outlined']} of {len(g['samples'])} rows "
                     f"({REGION_RULE})")
        return info

    # ----- what went wrong, and the notes ---------------------------------------------------------------
    def problems(self) -> dict[str, str]:
        """{run name: one sentence} for every run (and the grid) that could not be used."""
        problems = dict(self.sheet.get("problems") or {})
        for r in self.results:
            if not r.get("ok") and r.get("error"):
                problems[r["name"]] = core.clean_error(r["name"], r["error"])
        return problems

    def unavailable(self) -> list[str]:
        """One line per unavailable metric: its sentence for the first run, and how many runs it concerns."""
        found: dict[str, list] = {}
        for r in self.results:
            for name, why in r.get("unavailable", {}).items():
                found.setdefault(name, [why, 0])[1] += 0 if is_baseline(r) else 1
        return [why + (f" ({n} runs)" if n > 1 else "") for why, n in found.values()]

    def unavailable_line(self) -> str:
        """All unavailable metrics in one line: their labels, and the first reason (the full sentences are in
        ``unavailable()`` and comparison.json)."""
        lines = self.unavailable()
        if not lines:
            return ""
        labels = [ln.split(" is unavailable:")[0] for ln in lines]
        first = lines[0].split(" is unavailable: ", 1)[-1]
        return f"Not evaluated ({len(labels)}): {', '.join(labels)}. First reason: {first}"

    @staticmethod
    def default_metrics() -> list[str]:
        """The metric names ticked by default: those that can run without a palette or missing weights."""
        from .metrics import default_metric_names

        return default_metric_names()

    def notes(self) -> list[str]:
        """The metrics' notes and the baseline's (which metrics do not apply to it)."""
        note = baseline_note(self.results)
        return list(metric_notes(self.results)) + ([note] if note else [])

    def counts(self) -> tuple[int, int, int]:
        """(runs evaluated, runs asked for in the view, baseline rows evaluated)."""
        runs_only = [r for r in self.results if not is_baseline(r)]
        return (sum(1 for r in runs_only if r.get("ok")), len(runs_only),
                sum(1 for r in self.results if is_baseline(r) and r.get("ok")))

    @property
    def ok(self) -> bool:
        """At least one run evaluated (or, grid only, drawn)."""
        return self.counts()[0] > 0 if self.evaluated else self.grid() is not None

    def summary(self) -> str:
        ok, total, base = self.counts()
        return f"Evaluated {ok} of {total} run(s)" + (f", with the {BASELINE_NAME} baseline" if base else "") + "."

    def report(self, markdown: bool = True) -> str:
        """The tab's status text: the summary, the view's note, one line per problem, unavailable metrics, notes."""
        if not self.evaluated:
            return problems_text(self.sheet.get("problems") or {}, self.note, markdown)
        esc = html.escape if markdown else (lambda s: s)
        text = problems_text(self.problems(), self.note, markdown)
        line = self.unavailable_line()
        if line:
            text += "\n\n" + esc(line)
        extra = self.notes()
        if extra:
            text += "\n\n" + "\n".join(f"- {esc(n)}" for n in extra)
        return self.summary() + "\n\n" + text

    # ----- exports --------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        headers, rows = self.table()
        g = self.sheet
        return {"runs": list(self.runs), "view": self.view, "order": self.by, "direction": self.direction,
                "checkpoint": str(self.checkpoint), "aggregate": self.aggregate, "caption": self.caption,
                "note": self.note, "summary": self.summary() if self.evaluated else "",
                "headers": headers, "rows": rows, "problems": self.problems(), "unavailable": self.unavailable(),
                "notes": self.notes() if self.evaluated else [],
                "grid": {"columns": g.get("columns", []), "samples": g.get("samples", []), "page": g.get("page", 0),
                         "pages": g.get("pages", 0), "outline": self.outline},
                "results": [{k: v for k, v in r.items() if k != "per_image"} for r in self.results]}

    def export(self, folder=None, include=tuple(FILES)) -> dict[str, Path]:
        """Write ``include`` (of ``FILES``: the table as CSV and LaTeX, the grid PNG, the plot as standalone HTML,
        everything as JSON) into ``folder`` (default a fresh ``export_dir()``); {kind: path} of what was written
        (no grid file when there is no grid, no table or plot before an evaluation)."""
        unknown = [k for k in include if k not in FILES]
        if unknown:
            raise UserError(f"Unknown export '{unknown[0]}'; choose from: {', '.join(FILES)}.")
        out = Path(folder) if folder is not None else export_dir()
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        if self.evaluated and "csv" in include:
            paths["csv"] = out / FILES["csv"]
            paths["csv"].write_text(self.csv())
        if self.evaluated and "tex" in include:
            paths["tex"] = out / FILES["tex"]
            paths["tex"].write_text(self.latex())
        if "grid" in include and self.grid() is not None:
            paths["grid"] = out / FILES["grid"]
            self.grid().save(paths["grid"])
        if self.evaluated and "plot" in include:
            paths["plot"] = out / FILES["plot"]
            self.figure().write_html(str(paths["plot"]), include_plotlyjs=True, full_html=True,
                                     config={"displaylogo": False})
        if "json" in include:
            paths["json"] = out / FILES["json"]
            paths["json"].write_text(json.dumps(self.to_dict(), indent=1, default=_json_default))
        return paths

    def with_aggregate(self, aggregate: bool) -> "Comparison":
        return replace(self, aggregate=bool(aggregate))


def compare(runs, view: str = "all", metrics=None, checkpoint="latest", direction: str = "AtoB",
            order: str = "alpha", aggregate: bool = False, rows: int = 4, seed: int | None = 0, page: int = 0,
            outline: bool = False, baseline: bool = True, evaluate: bool = True, progress=None,
            device: str = "auto") -> Comparison:
    """Compare runs (Run objects, folders or run ids): evaluate those in ``view`` (``metrics``: names, a
    comma-separated string or None for every one; with the input-unchanged baseline unless ``baseline=False``) and
    draw the grid (``rows`` test samples per page, shuffled with ``seed`` or in order when None, page ``page``,
    the attribute region outlined with ``outline``). ``evaluate=False`` draws only the grid.

    ``order`` ('alpha' or 'recipe') orders the table rows and grid columns in the 'all' view; other views use their
    own. Raises UserError (one sentence) when nothing is chosen or nothing fits the view; a run that cannot be
    used gets its sentence in ``problems()`` and the rest still shows."""
    report = progress or (lambda f, m: None)
    if not runs:
        raise UserError("Choose at least one finished run (or a sweep) to compare.")
    if evaluate and metrics is not None and not metrics:
        raise UserError("Choose at least one metric to evaluate.")
    view = view or "all"
    folders = run_folders(runs)
    described = core.describe_runs(folders, checkpoint=checkpoint)
    chosen, view_by, note = core.apply_view(view, described)
    by = order if view == "all" else view_by
    results = []
    if evaluate:
        if not chosen:
            raise UserError(note or "None of the selected runs fit this view.")
        results = evaluate_runs([d["run"] for d in chosen], metrics=metrics if isinstance(metrics, str) or
                                metrics is None else list(metrics), progress=lambda f, m: report(0.85 * max(0.0, min(1.0, f)), m),
                                checkpoint=checkpoint, direction=direction, device=device, baseline=baseline)
    start, span = (0.85, 0.15) if evaluate else (0.0, 1.0)
    seed = None if seed is None or seed == "" else int(seed)
    sheet = core.build_grid(None, rows=int(rows), seed=seed, page=int(page or 0), by=by, direction=direction,
                            described=chosen, checkpoint=checkpoint, device=device, outline=bool(outline),
                            progress=lambda f, m: report(start + span * max(0.0, min(1.0, f)), m))
    return Comparison(runs=tuple(str(f) for f in folders), view=view, order=order, direction=direction,
                      checkpoint=checkpoint, aggregate=bool(aggregate), note=note, evaluated=bool(evaluate),
                      results=results, sheet=sheet, outline=bool(outline))


def short_labels(runs) -> dict[str, str]:
    """Run id -> a short label for tables, legends, captions and choosers: ``Run.display_name()`` (model, recipe,
    seed, digest), plus the config settings that differ between runs of the same model on the same composition
    (what tells them apart, e.g. ``cyclegan α0.50 s0 #924167 max_iters=2``). Settings that differ only because the
    models differ (Pix2Pix's lambda_l1 against CycleGAN's) are implied by the model and left out; the full id stays
    for hover and exports. ``runs``: Run objects."""
    runs = list(runs)
    configs = {r.path.name: (r.config_dict() or {}) for r in runs}
    groups: dict[tuple, list[str]] = {}
    for name, c in configs.items():
        groups.setdefault((repr(c.get("model")), repr(c.get("composition"))), []).append(name)
    by_name = {r.path.name: r for r in runs}
    out = {}
    for members in groups.values():
        keys = sorted({k for m in members for k in configs[m]})
        differing = [k for k in keys if k not in ("model", "seed", "composition")
                     and len({repr(configs[m].get(k)) for m in members}) > 1]
        for m in members:
            extra = " ".join(f"{k}={configs[m].get(k)}" for k in differing)
            out[m] = by_name[m].display_name() + (f" {extra}" if extra else "")
    return out
