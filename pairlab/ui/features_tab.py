"""Feature space tab: the paper's Figure 9 as an interactive plot. Choose a composition (or a source), finished runs,
the encoder and the ellipse radius; Plot fits the PCA on every image of the source and shows the space of training
data and of test data side by side (WebGL scatter). The legend toggles a group in both panels; hovering a point shows
its thumbnail and provenance; PNG / standalone HTML / CSV exports.

Thin: the lab façade (``pairlab.lab``: the feature space of ``pairlab.eval.features``) does the work; a run or group that cannot be placed gets one sentence and the rest
of the plot still shows.
"""
from __future__ import annotations

import html
import math

import gradio as gr
import plotly.graph_objects as go

from .. import lab, workspace
from ..errors import UserError
from .common import progress_adapter, reopen_quietly
from .compare_tab import to_status

ENCODER_CHOICES = [("attribute classifier (penultimate layer)", "attribute"), ("identity encoder", "identity")]
SIGMA_CHOICES = [("1σ", 1.0), ("2σ", 2.0)]
SOURCE_OF_COMPOSITION = "(the composition's source)"
STAT_HEADERS = ["panel", "group", "n", "PC1", "PC2", "to real A", "to real B", "to pseudo"]


# ----- what the tab shows (plain functions of the workspace) ----------------------------------------------
def composition_choices() -> list[tuple[str, str]]:
    return [(f"{c['name']} ({c['recipe']}, {c['task']})", c["name"]) for c in lab.list_compositions()]


def run_choices() -> list[tuple[str, str]]:
    """Short labels (model, recipe, seed, digest; the settings that differ), as in the other tabs' tables."""
    runs = lab.finished_runs()
    labels = lab.short_labels(runs)
    return [(labels.get(r.path.name, r.path.name), r.path.name) for r in runs]


def source_choices() -> list[tuple[str, str]]:
    return [(SOURCE_OF_COMPOSITION, "")] + [(folder.name, str(folder)) for folder in lab.workspace_sources()]


def empty_figure(text: str = "Choose a composition and runs, then Plot") -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"size": 15})
    fig.update_layout(height=420, template="plotly_white", xaxis={"visible": False}, yaxis={"visible": False})
    return fig


def explained_md(space: lab.FeatureSpace) -> str:
    ev = space.explained
    size = f"{space.image_size}x{space.image_size}" if space.image_size else "native size"
    return (f"**PCA** fitted on all {space.fit_count} images of `{space.source_name}` ({size}) · explained variance "
            f"**PC1 {ev[0]:.1%}**, **PC2 {ev[1]:.1%}** (together {ev.sum():.1%}) · features: {html.escape(space.encoder)}")


def stats_rows(space: lab.FeatureSpace) -> list[list]:
    rows = lab.group_stats(space)
    keys = ("pc1", "pc2", "d_real_on", "d_real_off", "d_pseudo")
    scale = max([abs(r[k]) for r in rows for k in keys if r.get(k) is not None] + [1e-12])
    digits = max(2, 3 - math.ceil(math.log10(scale)))  # three significant digits at the plot's scale

    def f(v):
        return "" if v is None else f"{round(v, digits) + 0.0:.{digits}f}"

    return [[r["panel"], r["group"], r["n"], f(r["pc1"]), f(r["pc2"]), f(r.get("d_real_on")),
             f(r.get("d_real_off")), f(r.get("d_pseudo"))] for r in rows]


def status_md(space: lab.FeatureSpace) -> str:
    points = sum(len(g.shown) for g in space.groups if g.shown is not None)
    head = (f"Plotted {len({g.key for g in space.groups})} groups ({points:,} points) in "
            f"{space.timings.get('total_s', 0):.1f} s" + (" (features from the cache)."
                                                          if space.timings.get("source_features_cached") else "."))
    lines = [f"- {html.escape(p)}" for p in space.problems]
    return "\n".join([head] + lines)


# ----- the tab --------------------------------------------------------------------------------------------
def build_tab() -> dict:
    with gr.Tab("Feature space", id="features"):
        space_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                comp = gr.Dropdown(label="Composition (its pseudo-samples and test split)", choices=[],
                                   elem_id="feat-comp")
                runs = gr.Dropdown(label="Finished runs (their test outputs)", multiselect=True, choices=[],
                                   elem_id="feat-runs")
                with gr.Row():
                    source = gr.Dropdown(label="Source (the PCA is fitted on all its images)",
                                         choices=[(SOURCE_OF_COMPOSITION, "")], value="", elem_id="feat-source",
                                         scale=3)
                    refresh = gr.Button("↻", scale=0, min_width=40, elem_id="feat-refresh")
                task = gr.Radio(["eyeglasses", "smile"], value="eyeglasses", elem_id="feat-task",
                                label="Attribute when no composition is chosen")
                encoder = gr.Radio(ENCODER_CHOICES, value="attribute", label="Features", elem_id="feat-encoder")
                sigma = gr.Radio(SIGMA_CHOICES, value=1.0, label="Ellipses", elem_id="feat-sigma")
                train = gr.Checkbox(label="Train a missing encoder (about a minute on a CPU)", value=False,
                                    elem_id="feat-train")
                plot_btn = gr.Button("Plot", variant="primary", elem_id="feat-plot-btn")
                export_btn = gr.Button("Write exports (PNG, HTML, CSV)", elem_id="feat-export", size="sm")
                status = gr.Markdown("", elem_id="feat-status")
            with gr.Column(scale=3):
                explained = gr.Markdown("", elem_id="feat-explained")
                plot = gr.Plot(label="Feature space (legend: click to toggle a group; hover a point for its image)",
                               elem_id="feat-plot")
                # The hover thumbnails: a script that listens to the plot's hover events (gr.Plot has none).
                gr.HTML("", elem_id="feat-hover", js_on_load=lab.FEATURE_HOVER_JS)
                table = gr.Dataframe(headers=STAT_HEADERS, label="Group means in PCA space and distances "
                                     "between means (real A / B of the test split)", interactive=False,
                                     elem_id="feat-table", wrap=True,
                                     column_widths=["7%", "36%", "7%", "10%", "10%", "10%", "10%", "10%"])
                files = gr.File(label="Exports (PNG, standalone HTML, CSV)", file_count="multiple",
                                interactive=False, elem_id="feat-files")

        # ----- handlers ---------------------------------------------------------------------------------
        def do_refresh(current_comp, current_runs, current_source):
            comps = composition_choices()
            rchoices = run_choices()
            ids = {v for _, v in rchoices}
            schoices = source_choices()
            names = {v for _, v in comps}
            return (gr.update(choices=comps, value=current_comp if current_comp in names else None),
                    gr.update(choices=rchoices, value=[r for r in (current_runs or []) if r in ids]),
                    gr.update(choices=schoices, value=current_source if current_source in {v for _, v in schoices}
                              else ""))

        outputs = [space_state, plot, explained, table, files, status]

        def _show(space):
            """The plot, its explanation and table; the exports are written only on request (Write exports), and
            the files of an earlier plot are cleared so no stale export is offered."""
            fig = lab.feature_figure(space)
            return space, fig, explained_md(space), stats_rows(space), None, status_md(space)

        @to_status(outputs, status)
        def do_export(space):
            if space is None:
                raise UserError("Plot a feature space first, then write its exports.")
            fig = lab.feature_figure(space)
            paths = lab.export_features(space, lab.feature_export_dir(), fig=fig)
            return (gr.update(), gr.update(), gr.update(), gr.update(),
                    [str(paths["png"]), str(paths["html"]), str(paths["csv"])], status_md(space))

        @to_status(outputs, status)
        def do_plot(comp_name, run_ids, source_path, task_name, enc, sig, train_missing, progress=gr.Progress()):
            if not comp_name and not run_ids and not source_path:
                raise UserError("Choose a composition, runs or a source to plot.")
            request = lab.FeatureRequest(composition=comp_name or None, runs=tuple(run_ids or ()),
                                              encoder=enc or "attribute", sigma=float(sig or 1.0),
                                              source=source_path or None, task=task_name or "eyeglasses",
                                              train_encoder=bool(train_missing))
            space = lab.feature_space(request, progress=progress_adapter(progress))
            workspace.remember_view("features", {"composition": comp_name or None, "runs": list(run_ids or []),
                                                 "source": source_path or "", "task": task_name, "encoder": enc,
                                                 "sigma": float(sig or 1.0)})
            return _show(space)

        @to_status(outputs, status)
        def do_sigma(space, sig):
            if space is None:
                return (None, gr.update(), gr.update(), gr.update(), gr.update(), gr.update())
            lab.set_sigma(space, float(sig or 1.0))
            return _show(space)

        export_btn.click(do_export, [space_state], outputs)
        refresh.click(do_refresh, [comp, runs, source], [comp, runs, source])
        plot_btn.click(do_plot, [comp, runs, source, task, encoder, sigma, train], outputs)
        sigma.change(do_sigma, [space_state, sigma], outputs)

        def load():
            last = workspace.last_view("features")
            a, b, c = do_refresh(last.get("composition"), last.get("runs") or [], last.get("source") or "")
            return (a, b, c, empty_figure(), last.get("task") or "eyeglasses", last.get("encoder") or "attribute",
                    float(last.get("sigma") or 1.0))

        def reopen(comp_name, run_ids, source_path, task_name, enc, sig, progress=gr.Progress()):
            """After a page load: draw the remembered plot again (features are cached); problems go to the status."""
            if not workspace.last_view("features") or not (comp_name or run_ids or source_path):
                return tuple(gr.update() for _ in outputs)
            return reopen_quietly(do_plot, outputs, status, "The last plot")(
                comp_name, run_ids, source_path, task_name, enc, sig, False, progress=progress)

    return {"load": load, "load_outputs": [comp, runs, source, plot, task, encoder, sigma], "reopen": reopen,
            "reopen_inputs": [comp, runs, source, task, encoder, sigma], "reopen_outputs": outputs}
