"""Compare tab: pick finished runs (or a whole sweep), see an image grid of their test translations side by side,
evaluate them (metrics cached per checkpoint), read the metric table and plots against alpha, export CSV / LaTeX / PNG.
Every evaluation adds the input-unchanged (identity map) baseline on the same test images: its own table row (and
export row) and a dashed reference line on the plot, so a reader sees whether a model beats doing nothing. The grid
can outline the attribute region (where the source and its truth differ) on every image.

Thin: ``pairlab.eval.compare`` does the work (grid, ordering, views, table, plot data, exports) and
``pairlab.eval.evaluate_runs`` the evaluation; a run that cannot be used gets one sentence, the rest still shows.
"""
from __future__ import annotations

import html
import time
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go

from .. import workspace
from ..errors import UserError
from ..eval import REGISTRY, evaluate_runs
from ..eval import compare
from ..eval.evaluate import BASELINE_NAME, baseline_note, is_baseline, metric_notes
from ..eval.metrics import REGION_RULE
from ..train.queue import default_queue
from .common import friendly, progress_adapter, reopen_quietly

VIEW_CHOICES = [(label, key) for key, label in compare.VIEWS.items()]
METRIC_CHOICES = [(m.label, name) for name, m in REGISTRY.items()]
COLORS = ["#2f7ed8", "#d9534f", "#3aa55d", "#e8a33d", "#8e6cc1", "#17becf", "#7f7f7f"]


# ----- what the tab shows (plain functions of the workspace) ----------------------------------------------
def finished_runs() -> list[dict]:
    return [r for r in default_queue().list_runs() if r["state"] == "done"]


def run_choices() -> list[tuple[str, str]]:
    return [(f"{r['id']} ({r['composition']}, seed {r['seed']})", r["id"]) for r in finished_runs()]


def run_paths(ids) -> list[Path]:
    return [workspace.sub("runs") / i for i in (ids or [])]


def last_selection() -> list[str]:
    """The runs of the last comparison that are still finished runs here."""
    runs = workspace.last_view("compare").get("runs")
    have = {v for _, v in run_choices()}
    return [str(r) for r in runs if str(r) in have] if isinstance(runs, list) else []


def problems_md(problems: dict[str, str], note: str = "") -> str:
    lines = [f"- **{html.escape(name)}**: {html.escape(why)}" for name, why in problems.items()]
    head = [f"*{html.escape(note)}*"] if note else []
    return "\n".join(head + lines)


def make_plot(results: list[dict], metric: str | None) -> go.Figure:
    fig = go.Figure()
    metric = metric or next(iter(compare.plotted_metrics(results)), None)
    series = compare.plot_series(results, metric) if metric else []
    for k, s in enumerate(series):
        fig.add_trace(go.Scatter(
            x=s["x"], y=s["y"], mode="lines+markers", name=s["name"], line={"color": COLORS[k % len(COLORS)]},
            error_y={"type": "data", "symmetric": False, "array": s["err_high"], "arrayminus": s["err_low"]},
            customdata=s["seeds"], hovertemplate="alpha %{x:.2f}: %{y:.4f} (%{customdata} seed(s))<extra></extra>"))
    lines = compare.baseline_lines(results, metric) if metric else []
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
    fig.update_layout(title=f"{label} against alpha{arrow}", xaxis_title="alpha (measured)", yaxis_title=label,
                      height=360, margin={"l": 50, "r": 20, "t": 50, "b": 40}, template="plotly_white",
                      legend={"orientation": "h", "y": -0.2})
    if not series and not lines:
        fig.add_annotation(text="Evaluate runs to plot their metrics", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
    return fig


def export_dir() -> Path:
    out = workspace.sub("cache") / "compare-exports" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_table_exports(headers, rows, caption: str) -> list[str]:
    out = export_dir()
    (out / "comparison.csv").write_text(compare.to_csv(headers, rows))
    (out / "comparison.tex").write_text(compare.to_latex(headers, rows, caption=caption))
    return [str(out / "comparison.csv"), str(out / "comparison.tex")]


# ----- the tab --------------------------------------------------------------------------------------------
def build_tab() -> dict:
    with gr.Tab("Compare", id="compare"):
        results_state = gr.State([])
        table_files = gr.State([])   # comparison.csv / .tex of the table shown now
        grid_file = gr.State(None)   # grid.png of the grid shown now
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                runs = gr.Dropdown(label="Finished runs", multiselect=True, choices=[], elem_id="cmp-runs")
                with gr.Row():
                    sweep = gr.Dropdown(label="…or a whole sweep (model · preset)", choices=[], elem_id="cmp-sweep",
                                        scale=3)
                    refresh = gr.Button("↻", scale=0, min_width=40, elem_id="cmp-refresh")
                view = gr.Dropdown(label="View", choices=VIEW_CHOICES, value="all", elem_id="cmp-view")
                with gr.Row():
                    order = gr.Radio(["alpha", "recipe"], value="alpha", label="Order columns by", elem_id="cmp-order")
                    direction = gr.Radio(["AtoB", "BtoA"], value="AtoB", label="Direction", elem_id="cmp-direction")
                metrics = gr.CheckboxGroup(METRIC_CHOICES, value=[n for _, n in METRIC_CHOICES], label="Metrics",
                                           elem_id="cmp-metrics")
                aggregate = gr.Checkbox(label="One row per group of seeds (mean over seeds, t-interval)",
                                        value=False, elem_id="cmp-aggregate")
                evaluate = gr.Button("Evaluate", variant="primary", elem_id="cmp-evaluate")
                status = gr.Markdown("", elem_id="cmp-status")
            with gr.Column(scale=3):
                with gr.Row():
                    n_rows = gr.Slider(1, 16, value=4, step=1, label="Samples per page", elem_id="cmp-rows")
                    shuffle = gr.Number(value=0, precision=0, label="Shuffle seed (blank: in order)",
                                        elem_id="cmp-shuffle")
                    page = gr.Number(value=0, precision=0, minimum=0, label="Page", elem_id="cmp-page")
                    outline = gr.Checkbox(label="Outline the attribute region", value=False, elem_id="cmp-outline",
                                          scale=0, min_width=160)
                    show = gr.Button("Show grid", elem_id="cmp-show", scale=0, min_width=110)
                grid = gr.Image(label="Grid (rows: test samples; columns: source, runs, ground truth)",
                                type="pil", interactive=False, elem_id="cmp-grid", format="png",
                                show_label=False)
                grid_info = gr.Markdown("", elem_id="cmp-grid-info")
                table = gr.Dataframe(label="Metrics (mean [95% interval])", interactive=False, elem_id="cmp-table",
                                     wrap=True)
                with gr.Row():
                    plot_metric = gr.Dropdown(label="Plot metric", choices=[], elem_id="cmp-plot-metric", scale=1)
                    files = gr.File(label="Exports (CSV, LaTeX, grid PNG)", file_count="multiple", interactive=False,
                                    elem_id="cmp-files", scale=2)
                plot = gr.Plot(label="Metric against alpha (error bars over seeds)", elem_id="cmp-plot")

        # ----- handlers ---------------------------------------------------------------------------------
        def do_refresh(current):
            choices = run_choices()
            ids = {v for _, v in choices}
            sw = list(compare.sweeps(default_queue().list_runs()))
            return (gr.update(choices=choices, value=[c for c in (current or []) if c in ids]),
                    gr.update(choices=sw, value=None))

        def do_sweep(label):
            if not label:
                return gr.update()
            return gr.update(value=compare.sweeps(default_queue().list_runs()).get(label, []))

        def _grid(ids, view_key, by, dr, rows, seed, pg, outlined=False, progress=None):
            described = compare.describe_runs(run_paths(ids))
            chosen, view_by, note = compare.apply_view(view_key, described)
            by = by if view_key in (None, "", "all") else view_by
            seed = None if seed is None or seed == "" else int(seed)
            g = compare.build_grid(None, rows=int(rows), seed=seed, page=int(pg or 0), by=by, direction=dr,
                                   described=chosen, progress=progress, outline=bool(outlined))
            info = f"Page {g['page'] + 1} of {g['pages']} · columns: {', '.join(g['columns'])}" if g["image"] else ""
            if g["image"] is not None and outlined:
                info += (f" · attribute region outlined in magenta on {g['outlined']} of {len(g['samples'])} rows "
                         f"({REGION_RULE})")
            path = None
            if g["image"] is not None:
                path = export_dir() / "grid.png"
                g["image"].save(path)
            return g, info, note, path

        @friendly
        def do_show(ids, view_key, by, dr, rows, seed, pg, outlined, tfiles, progress=gr.Progress()):
            if not ids:
                raise UserError("Choose at least one finished run (or a sweep) to compare.")
            g, info, note, path = _grid(ids, view_key, by, dr, rows, seed, pg, outlined, progress_adapter(progress))
            gpath = str(path) if path else None
            return (g["image"], info, problems_md(g["problems"], note), list(tfiles or []) + ([gpath] if gpath else []),
                    gpath)

        @friendly
        def do_evaluate(ids, view_key, by, dr, rows, seed, pg, outlined, metric_names, agg, progress=gr.Progress()):
            if not ids:
                raise UserError("Choose at least one finished run (or a sweep) to compare.")
            if not metric_names:
                raise UserError("Choose at least one metric to evaluate.")
            described = compare.describe_runs(run_paths(ids))
            chosen, view_by, note = compare.apply_view(view_key, described)
            if not chosen:
                raise UserError(note or "None of the selected runs fit this view.")
            report = progress_adapter(progress, 0.0, 0.85)
            results = evaluate_runs([d["run"] for d in chosen], metrics=list(metric_names), progress=report,
                                    direction=dr, baseline=True)
            order_by = by if view_key in (None, "", "all") else view_by
            headers, trows = compare.comparison_table(results, by=order_by, aggregate=bool(agg))
            caption = f"{compare.VIEWS.get(view_key or 'all')}: {dr}."
            tpaths = write_table_exports(headers, trows, caption)
            g, info, _, grid_path = _grid(ids, view_key, by, dr, rows, seed, pg, outlined,
                                          progress_adapter(progress, 0.85, 0.15))
            gpath = str(grid_path) if grid_path else None
            paths = tpaths + ([gpath] if gpath else [])
            problems = dict(g["problems"])
            for r in results:
                if not r.get("ok") and r.get("error"):
                    problems[r["name"]] = compare.clean_error(r["name"], r["error"])
            # One line per unavailable metric (its sentence for the first run, and how many runs it concerns).
            unavailable: dict[str, list] = {}
            for r in results:
                for name, why in r.get("unavailable", {}).items():
                    unavailable.setdefault(name, [why, 0])[1] += 0 if is_baseline(r) else 1
            text = problems_md(problems, note)
            if unavailable:
                text += "\n\n" + "\n".join(f"- {html.escape(why)}" + (f" ({n} runs)" if n > 1 else "")
                                             for why, n in unavailable.values())
            extra = [n for n in metric_notes(results)] + ([baseline_note(results)] if baseline_note(results) else [])
            if extra:
                text += "\n\n" + "\n".join(f"- {html.escape(n)}" for n in extra)
            runs_only = [r for r in results if not is_baseline(r)]
            ok = sum(1 for r in runs_only if r.get("ok"))
            base = sum(1 for r in results if is_baseline(r) and r.get("ok"))
            text = (f"Evaluated {ok} of {len(runs_only)} run(s)"
                    + (f", with the {BASELINE_NAME} baseline" if base else "") + ".\n\n" + text)
            if ok:
                workspace.remember_view("compare", {"runs": list(ids)})
            avail = compare.plotted_metrics(results)
            first = avail[0] if avail else None
            choices = [(REGISTRY[m].label if m in REGISTRY else m, m) for m in avail]
            return (results, g["image"], info, gr.update(value=trows, headers=headers), make_plot(results, first),
                    gr.update(choices=choices, value=first), paths, text, tpaths, gpath)

        def do_plot(results, metric):
            return make_plot(results or [], metric)

        @friendly
        def do_table(results, by, view_key, dr, agg, gpath):
            if not results:
                return gr.update(), gr.update(), gr.update()
            order_by = by if view_key in (None, "", "all") else compare.apply_view(view_key, [])[1]
            headers, trows = compare.comparison_table(results, by=order_by, aggregate=bool(agg))
            tpaths = write_table_exports(headers, trows, f"{compare.VIEWS.get(view_key or 'all')}: {dr}.")
            return gr.update(value=trows, headers=headers), tpaths + ([gpath] if gpath else []), tpaths

        grid_inputs = [runs, view, order, direction, n_rows, shuffle, page, outline]
        refresh.click(do_refresh, [runs], [runs, sweep])
        sweep.change(do_sweep, [sweep], [runs])
        show.click(do_show, grid_inputs + [table_files], [grid, grid_info, status, files, grid_file])
        def do_outline(ids, view_key, by, dr, rows, seed, pg, outlined, tfiles, progress=gr.Progress()):
            if not ids:  # nothing to redraw yet
                return tuple(gr.update() for _ in range(5))
            return do_show(ids, view_key, by, dr, rows, seed, pg, outlined, tfiles, progress=progress)

        outline.change(do_outline, grid_inputs + [table_files], [grid, grid_info, status, files, grid_file])
        evaluate.click(do_evaluate, grid_inputs + [metrics, aggregate],
                       [results_state, grid, grid_info, table, plot, plot_metric, files, status, table_files, grid_file])
        plot_metric.change(do_plot, [results_state, plot_metric], [plot])
        aggregate.change(do_table, [results_state, order, view, direction, aggregate, grid_file],
                         [table, files, table_files])

        def load():
            a, b = do_refresh(last_selection())
            return a, b, make_plot([], None)

        def reopen(ids, view_key, by, dr, rows, seed, pg, outlined, metric_names, agg, progress=gr.Progress()):
            """After a page load: show the remembered comparison again (outputs and encoders are cached)."""
            if not ids:
                return tuple(gr.update() for _ in evaluate_outputs)
            return reopen_quietly(do_evaluate, evaluate_outputs, status, "The last comparison")(
                ids, view_key, by, dr, rows, seed, pg, outlined, metric_names, agg, progress=progress)

        evaluate_outputs = [results_state, grid, grid_info, table, plot, plot_metric, files, status, table_files, grid_file]

    return {"load": load, "load_outputs": [runs, sweep, plot], "reopen": reopen,
            "reopen_inputs": grid_inputs + [metrics, aggregate], "reopen_outputs": evaluate_outputs}
