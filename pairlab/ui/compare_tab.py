"""Compare tab: pick finished runs (or a whole sweep), see an image grid of their test translations side by side,
evaluate them (metrics cached per checkpoint), read the metric table and plots against alpha, export CSV / LaTeX / PNG.
Every evaluation adds the input-unchanged (identity map) baseline on the same test images: its own table row (and
export row) and a dashed reference line on the plot, so a reader sees whether a model beats doing nothing. The grid
can outline the attribute region (where the source and its truth differ) on every image.

Thin: one ``lab.compare`` call per button (evaluation, grid, table, plot, status text), and the ``Comparison`` it
returns writes the exports (``pairlab.eval.comparison``). A run that cannot be used gets one sentence, the rest still
shows.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from .. import lab, workspace
from .common import progress_adapter, reopen_quietly
from .common import to_status as common_to_status


def to_status(outputs: list, status, what: str = ""):
    """Decorator form of ``common.to_status`` for a handler whose outputs include the tab's ``status`` line: an
    error becomes its one sentence there and every other output keeps its last good content (no red pills)."""

    def wrap(fn):
        return common_to_status(fn, len(outputs), outputs.index(status), prefix=f"⚠ {what}")

    return wrap

VIEW_CHOICES = [(label, key) for key, label in lab.COMPARE_VIEWS.items()]
METRIC_CHOICES = [(m.label, name) for name, m in lab.REGISTRY.items()]


# ----- what the tab shows (plain functions of the workspace) ----------------------------------------------
def finished_runs() -> list[dict]:
    return [r.describe() for r in lab.finished_runs()]


def all_runs() -> list[dict]:
    return [r.describe() for r in lab.runs()]


def run_labels(ids=None) -> dict[str, str]:
    """Run id -> short label (display name plus the settings that differ between the runs)."""
    runs = lab.finished_runs()
    if ids is not None:
        want = {str(i) for i in ids}
        runs = [r for r in runs if r.path.name in want]
    return lab.short_labels(runs)


def run_choices() -> list[tuple[str, str]]:
    """Short labels first (the full id after them, so typing either finds the run)."""
    labels = run_labels()
    return [(f"{labels.get(r['id'], r['id'])} · {r['id']}", r["id"]) for r in finished_runs()]


def run_paths(ids) -> list[Path]:
    return [workspace.sub("runs") / i for i in (ids or [])]


def last_selection() -> list[str]:
    """The runs of the last comparison that are still finished runs here."""
    runs = workspace.last_view("compare").get("runs")
    have = {v for _, v in run_choices()}
    return [str(r) for r in runs if str(r) in have] if isinstance(runs, list) else []


def make_plot(results: list[dict], metric: str | None):
    return lab.Comparison.from_results(results).figure(metric)


def exported(c) -> tuple[list[str], str | None]:
    """Write the table (CSV, LaTeX) and grid PNG shown now into a fresh export folder: ([csv, tex] or [], grid
    path or None)."""
    paths = c.export(include=c.TAB_EXPORTS)
    return [str(paths[k]) for k in ("csv", "tex") if k in paths], (str(paths["grid"]) if "grid" in paths else None)


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
                metrics = gr.CheckboxGroup(METRIC_CHOICES, value=lab.Comparison.default_metrics(),
                                           label="Metrics (those that cannot run here are left unticked)",
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
                table = gr.Dataframe(label="Metrics (mean [95% interval]; ★ best; full run ids in the exports)",
                                     interactive=False, elem_id="cmp-table", wrap=False, max_height=420)
                with gr.Row():
                    plot_metric = gr.Dropdown(label="Plot metric", choices=[], elem_id="cmp-plot-metric", scale=1)
                    files = gr.File(label="Exports (CSV, LaTeX, grid PNG)", file_count="multiple", interactive=False,
                                    elem_id="cmp-files", scale=2)
                plot = gr.Plot(label="Metric plot", elem_id="cmp-plot")

        # ----- handlers ---------------------------------------------------------------------------------
        def do_refresh(current):
            choices = run_choices()
            ids = {v for _, v in choices}
            sw = list(lab.compare_sweeps(all_runs()))
            return (gr.update(choices=choices, value=[c for c in (current or []) if c in ids]),
                    gr.update(choices=sw, value=None))

        def do_sweep(label):
            if not label:
                return gr.update()
            return gr.update(value=lab.compare_sweeps(all_runs()).get(label, []))

        grid_outputs = [grid, grid_info, status, files, grid_file]
        evaluate_outputs = [results_state, grid, grid_info, table, plot, plot_metric, files, status, table_files,
                            grid_file]
        table_outputs = [table, files, table_files, status]

        @to_status(grid_outputs, status)
        def do_show(ids, view_key, by, dr, rows, seed, pg, outlined, tfiles, progress=gr.Progress()):
            c = lab.compare(run_paths(ids), view=view_key, order=by, direction=dr, rows=rows, seed=seed,
                            page=pg, outline=outlined, evaluate=False, progress=progress_adapter(progress))
            _, gpath = exported(c)
            return c.grid(), c.grid_info(), c.report(), list(tfiles or []) + ([gpath] if gpath else []), gpath

        @to_status(evaluate_outputs, status)
        def do_evaluate(ids, view_key, by, dr, rows, seed, pg, outlined, metric_names, agg, progress=gr.Progress()):
            c = lab.compare(run_paths(ids), view=view_key, metrics=list(metric_names or []), order=by,
                            direction=dr, aggregate=agg, rows=rows, seed=seed, page=pg, outline=outlined,
                            baseline=True, progress=progress_adapter(progress))
            tpaths, gpath = exported(c)
            if c.ok:
                workspace.remember_view("compare", {"runs": list(ids)})
            headers, trows = c.display_table(run_labels(ids))
            first = next(iter(c.plotted_metrics()), None)
            return (c.results, c.grid(), c.grid_info(), gr.update(value=trows, headers=headers), c.figure(first),
                    gr.update(choices=c.metric_choices(), value=first), tpaths + ([gpath] if gpath else []),
                    c.report(), tpaths, gpath)

        @to_status([plot, status], status)
        def do_plot(results, metric, view_key):
            return lab.Comparison.from_results(results or [], view=view_key).figure(metric), gr.update()

        @to_status(table_outputs, status)
        def do_table(results, by, view_key, dr, agg, gpath):
            if not results:
                return gr.update(), gr.update(), gr.update(), gr.update()
            c = lab.Comparison.from_results(results, view=view_key, order=by, direction=dr, aggregate=agg)
            headers, trows = c.display_table(run_labels([r.get("name") for r in results]))
            tpaths, _ = exported(c)
            return gr.update(value=trows, headers=headers), tpaths + ([gpath] if gpath else []), tpaths, gr.update()

        grid_inputs = [runs, view, order, direction, n_rows, shuffle, page, outline]
        refresh.click(do_refresh, [runs], [runs, sweep])
        sweep.change(do_sweep, [sweep], [runs])
        show.click(do_show, grid_inputs + [table_files], grid_outputs)
        def do_outline(ids, view_key, by, dr, rows, seed, pg, outlined, tfiles, progress=gr.Progress()):
            if not ids:  # nothing to redraw yet
                return tuple(gr.update() for _ in range(5))
            return do_show(ids, view_key, by, dr, rows, seed, pg, outlined, tfiles, progress=progress)

        outline.change(do_outline, grid_inputs + [table_files], grid_outputs)
        evaluate.click(do_evaluate, grid_inputs + [metrics, aggregate], evaluate_outputs)
        plot_metric.change(do_plot, [results_state, plot_metric, view], [plot, status])
        aggregate.change(do_table, [results_state, order, view, direction, aggregate, grid_file], table_outputs)

        def load():
            a, b = do_refresh(last_selection())
            return a, b, make_plot([], None)

        def reopen(ids, view_key, by, dr, rows, seed, pg, outlined, metric_names, agg, progress=gr.Progress()):
            """After a page load: show the remembered comparison again (outputs and encoders are cached)."""
            if not ids:
                return tuple(gr.update() for _ in evaluate_outputs)
            return reopen_quietly(do_evaluate, evaluate_outputs, status, "The last comparison")(
                ids, view_key, by, dr, rows, seed, pg, outlined, metric_names, agg, progress=progress)

    return {"load": load, "load_outputs": [runs, sweep, plot], "reopen": reopen,
            "reopen_inputs": grid_inputs + [metrics, aggregate], "reopen_outputs": evaluate_outputs}
