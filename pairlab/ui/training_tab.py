"""Training tab: queue runs (one, or a sweep over compositions x seeds), watch them, stop / resume / retry / delete.

Thin: every action is one call into the lab façade (``pairlab.lab``: the queue and its runs); everything shown is read from the run folders, so a
page reload (or an app restart) loses nothing.
"""
from __future__ import annotations

import html

import gradio as gr
import plotly.graph_objects as go

from .. import lab
from ..errors import UserError
from .common import friendly

HEADERS = ["run", "composition", "model", "preset", "seed", "state", "progress", "ETA", "error"]
NON_LOSS = {"iter", "epoch", "lr", "its_per_s", "time"}
STATE_COLORS = {"queued": "#9aa0a6", "running": "#2f7ed8", "stopping": "#e8a33d", "done": "#3aa55d",
                "stopped": "#e8a33d", "failed": "#d9534f"}


# ----- what the tab shows (plain functions of the workspace) ----------------------------------------------
def composition_names() -> list[str]:
    return [c["name"] for c in lab.list_compositions()]


def preset_names() -> list[str]:
    return lab.preset_names()


def preset_summary(preset: str, model: str) -> str:
    return lab.describe_preset(preset, model)


def run_rows(runs: list[dict]) -> list[list]:
    return [[r["id"], r["composition"], r["model"], r["preset"], r["seed"], r["shown_state"],
             f"{r['iteration']}/{r['total'] or '?'} ({100 * r['progress']:.0f}%)", lab.format_eta(r["eta_s"]),
             r["error"]] for r in runs]


def progress_html(info: dict | None) -> str:
    if not info:
        return "<div id='tr-progress-text'>No run selected. Queue one on the left, or pick one in the table.</div>"
    pct = max(0.0, min(100.0, 100 * info["progress"]))
    color = STATE_COLORS.get(info["shown_state"], "#2f7ed8")
    parts = [f"<b>{html.escape(info['shown_state'])}</b>",
             f"iteration {info['iteration']}/{info['total'] or '?'} ({pct:.1f}%)"]
    if info.get("its_per_s") and info["state"] == "running":
        parts.append(f"{info['its_per_s']:.2f} it/s")
    if info["eta_s"] is not None:
        parts.append(f"ETA {lab.format_eta(info['eta_s'])}")
    if info["device"]:
        parts.append(html.escape(info["device"]))
    text = " · ".join(parts)
    extra = ""
    if info["error"]:
        extra = f"<div style='color:#d9534f;margin-top:4px'>{html.escape(info['error'])}</div>"
    elif info["message"] and info["message"] != "starting":
        extra = f"<div style='color:#666;margin-top:4px'>{html.escape(info['message'])}</div>"
    return (f"<div style='margin:4px 0 2px 0;font-size:0.95em;word-break:break-all'><code>{html.escape(info['id'])}</code></div>"
            f"<div style='background:#e6e6e6;border-radius:6px;height:18px;overflow:hidden'>"
            f"<div class='tr-fill' style='width:{pct:.1f}%;height:100%;background:{color}'></div></div>"
            f"<div id='tr-progress-text' style='margin-top:4px'>{text}</div>{extra}")


def read_metrics(run_dir) -> list[dict]:
    """The run's training losses, one dict per logged iteration (``Run.losses``)."""
    return lab.Run(run_dir).losses()


def loss_figure(metrics: list[dict], title: str = "") -> go.Figure:
    fig = go.Figure()
    keys = []
    for m in metrics:
        keys += [k for k in m if k not in NON_LOSS and k not in keys]
    iters = [m.get("iter") for m in metrics]
    for k in keys:
        fig.add_scatter(x=iters, y=[m.get(k) for m in metrics], mode="lines", name=k)
    positive = all((m.get(k) or 0) > 0 for m in metrics for k in keys if m.get(k) is not None)
    speed = metrics[-1].get("its_per_s") if metrics else None
    sub = f"{len(metrics)} points" + (f", {speed:.2f} it/s" if speed else "")
    fig.update_layout(title=dict(text=f"losses<br><sup>{html.escape(title)} — {sub}</sup>" if metrics else
                                 "losses (none logged yet)"), height=360, margin=dict(l=50, r=10, t=60, b=40),
                      xaxis_title="iteration", legend=dict(font=dict(size=10)))
    if not metrics:
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        fig.add_annotation(text="The curves appear after the first logged iterations.", showarrow=False,
                           x=0.5, y=0.5, xref="paper", yref="paper", font=dict(size=14, color="#888"))
    if positive and metrics:  # losses of very different sizes (cycle ~ 5, D ~ 0.2): a log axis shows them all
        fig.update_yaxes(type="log", dtick=1, minor=dict(showgrid=True), title="loss (log)")
    return fig


def latest_sample(run_dir) -> str | None:
    latest = lab.Run(run_dir).latest_sample()
    return str(latest) if latest else None


def log_tail(run_dir, lines: int = 10) -> str:
    return lab.Run(run_dir).log_tail(lines)


def default_selection(runs: list[dict]) -> str | None:
    """After a reload: the first running run, else the newest one."""
    for r in runs:
        if r["state"] == "running":
            return r["id"]
    return runs[0]["id"] if runs else None


# ----- the tab --------------------------------------------------------------------------------------------
def build_tab():
    with gr.Tab("Training", id="training") as tab:
        gr.Markdown("Train **CycleGAN**, **Pix2Pix** or the **hybrid** paired + unpaired model (paper 002) on a "
                    "composition. Runs go into a background queue and run in their own processes, one per slot "
                    f"(slots here: {lab.queue().describe_slots()}); they keep going when you close the page.")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                gr.Markdown("### Launch")
                comps = composition_names()
                comp = gr.Dropdown(comps, value=comps[-1] if comps else None, label="Composition", elem_id="tr-comp")
                model = gr.Radio(list(lab.MODEL_NAMES), value="cyclegan", label="Model", elem_id="tr-model")
                preset = gr.Dropdown(preset_names(), value="cpu-demo-64", label="Preset", elem_id="tr-preset")
                preset_info = gr.Markdown(preset_summary("cpu-demo-64", "cyclegan"), elem_id="tr-preset-info")
                overrides = gr.Textbox(label="Overrides (key=value, separated by commas)", lines=2,
                                       placeholder="max_iters=300, lr=1e-4, ngf=16", elem_id="tr-overrides")
                seeds = gr.Textbox("0", label="Seeds (e.g. 0,1,2 or 0-4: one run per seed)", elem_id="tr-seeds")
                sweep = gr.Dropdown(comps, value=[], multiselect=True, elem_id="tr-sweep",
                                    label="Sweep over compositions (optional: replaces the single composition)")
                name = gr.Textbox(label="Run name (optional, single run only)", elem_id="tr-name")
                with gr.Row():
                    refresh_comps = gr.Button("Refresh compositions", size="sm", elem_id="tr-refresh-comps")
                    launch = gr.Button("Queue run(s)", variant="primary", elem_id="tr-launch")
            with gr.Column(scale=3):
                gr.Markdown("### Runs")
                table = gr.Dataframe(headers=HEADERS, interactive=False, elem_id="tr-table", max_height=320,
                                     wrap=True, column_widths=["27%", "15%", "8%", "10%", "5%", "8%", "11%", "6%",
                                                               "10%"])
                with gr.Row():
                    run = gr.Dropdown([], label="Selected run (or click a row)", elem_id="tr-run", scale=4)
                    stop_btn = gr.Button("Stop", elem_id="tr-stop", scale=1, min_width=70)
                    resume_btn = gr.Button("Resume", elem_id="tr-resume", scale=1, min_width=70)
                    retry_btn = gr.Button("Retry", elem_id="tr-retry", scale=1, min_width=70)
                    delete_btn = gr.Button("Delete", variant="stop", elem_id="tr-delete", scale=1, min_width=70)
                message = gr.Markdown("", elem_id="tr-status")
                progress = gr.HTML(progress_html(None), elem_id="tr-progress")
                log = gr.Textbox(label="Log (last lines of log.txt)", lines=10, max_lines=10, interactive=False,
                                 autoscroll=True, elem_id="tr-log")
        with gr.Row(equal_height=True):
            curves = gr.Plot(label="Loss curves (losses.jsonl)", elem_id="tr-curves", scale=3)
            sample = gr.Image(label="Latest samples: input | translated | reconstructed (or ground truth)",
                              type="filepath", interactive=False, elem_id="tr-sample", height=400, scale=2)
        sig = gr.State({})
        timer = gr.Timer(2.0)

        # ----- handlers ---------------------------------------------------------------------------------
        def details(run_id, old_sig, force=False):
            """progress, curves, sample, log for the selected run; unchanged parts are skipped."""
            q = lab.queue()
            if not run_id:
                if old_sig.get("run") is None and not force:
                    return gr.skip(), gr.skip(), gr.skip(), gr.skip(), old_sig
                return progress_html(None), loss_figure([]), None, "", {"run": None}
            try:
                info = q.info(run_id)
            except UserError:
                return progress_html(None), loss_figure([]), None, "", {"run": None}
            folder = lab.Run(info["path"])
            new = {"run": run_id, "metrics": folder.losses_signature(), "sample": latest_sample(folder),
                   "log": folder.log_signature(),
                   "progress": [info[k] for k in ("shown_state", "iteration", "total", "eta_s", "error", "device")]}
            same = (not force) and old_sig.get("run") == run_id
            bar = gr.skip() if same and old_sig.get("progress") == new["progress"] else progress_html(info)
            fig = gr.skip() if same and old_sig.get("metrics") == new["metrics"] else \
                loss_figure(read_metrics(folder), f"{info['model']} on {info['composition']}")
            img = gr.skip() if same and old_sig.get("sample") == new["sample"] else new["sample"]
            tail = gr.skip() if same and old_sig.get("log") == new["log"] else log_tail(folder)
            return bar, fig, img, tail, new

        def table_update(runs, old_rows):
            rows = run_rows(runs)
            return (gr.skip() if rows == old_rows else rows), rows

        def on_timer(run_id, old_sig):
            q = lab.queue()
            try:
                q.tick()
            except UserError:
                pass
            runs = q.list_runs()
            rows, rows_sig = table_update(runs, old_sig.get("rows"))
            ids = [r["id"] for r in runs]
            run_up = gr.skip()
            if old_sig.get("ids") != ids:
                run_up = gr.update(choices=ids, value=run_id if run_id in ids else default_selection(runs))
                run_id = run_id if run_id in ids else default_selection(runs)
            bar, fig, img, tail, new = details(run_id, old_sig)
            new.update(rows=rows_sig, ids=ids)
            return rows, run_up, bar, fig, img, tail, new

        timer.tick(on_timer, [run, sig], [table, run, progress, curves, sample, log, sig], show_progress="hidden",
                   queue=False)

        def on_load():
            q = lab.queue()
            runs = q.list_runs()
            ids = [r["id"] for r in runs]
            chosen = default_selection(runs)
            names = composition_names()
            bar, fig, img, tail, new = details(chosen, {}, force=True)
            new.update(rows=run_rows(runs), ids=ids)
            return (gr.update(choices=names, value=names[-1] if names else None), gr.update(choices=names),
                    run_rows(runs), gr.update(choices=ids, value=chosen), bar, fig, img, tail, new)

        def on_select_run(run_id, old_sig):
            bar, fig, img, tail, new = details(run_id, old_sig, force=True)
            new.update(rows=old_sig.get("rows"), ids=old_sig.get("ids"))
            return bar, fig, img, tail, new

        run.input(on_select_run, [run, sig], [progress, curves, sample, log, sig])

        def on_row(evt: gr.SelectData):
            row = getattr(evt, "row_value", None)
            if row:
                return row[0]
            return gr.skip()

        table.select(on_row, None, run).then(on_select_run, [run, sig], [progress, curves, sample, log, sig])

        def on_comps():
            names = composition_names()
            return gr.update(choices=names), gr.update(choices=names)

        refresh_comps.click(on_comps, None, [comp, sweep])
        tab.select(on_comps, None, [comp, sweep])
        model.change(preset_summary, [preset, model], preset_info)
        preset.change(preset_summary, [preset, model], preset_info)

        # Actions write only an invisible State (so an error shows as a toast without marking the panels);
        # on success a second step shows the result.
        done = gr.State({})

        @friendly
        def do_launch(comp_name, model_name, preset_name, overrides_text, seeds_text, sweep_names, run_name):
            run_name = (run_name or "").strip()
            targets = list(sweep_names or []) or ([comp_name] if comp_name else [])
            if not targets:
                raise UserError("Choose a composition first (build one in the Datasets tab).")
            targets, seed_list = lab.launch_plan(targets, seeds_text if seeds_text is not None else "", run_name)
            ids = lab.queue().launch(targets, model_name, preset_name, overrides_text, seed_list, name=run_name)
            msg = (f"Queued **{ids[0]}**." if len(ids) == 1 else
                   f"Queued a sweep of **{len(ids)} runs** ({len(targets)} composition(s) × {len(seed_list)} seed(s)).")
            if run_name and ids[0] != run_name:
                msg += (f" The name '{run_name}' was changed to '{ids[0]}' (names use letters, digits, "
                        f"'-', '_' and '.').")
            return {"message": msg, "select": ids[0]}

        def show(result, run_id, old_sig):
            q = lab.queue()
            runs = q.list_runs()
            ids = [r["id"] for r in runs]
            chosen = result.get("select") or run_id
            chosen = chosen if chosen in ids else default_selection(runs)
            bar, fig, img, tail, new = details(chosen, old_sig, force=True)
            new.update(rows=run_rows(runs), ids=ids)
            return (result.get("message", ""), run_rows(runs), gr.update(choices=ids, value=chosen), bar, fig, img,
                    tail, new)

        outs = [message, table, run, progress, curves, sample, log, sig]
        launch.click(do_launch, [comp, model, preset, overrides, seeds, sweep, name], done).success(
            show, [done, run, sig], outs)

        def action(verb):
            @friendly
            def do(run_id):
                q = lab.queue()
                if not run_id:
                    raise UserError("Choose a run first.")
                if verb == "stop":
                    info = q.stop(run_id)
                    msg = f"Stopping **{run_id}**: it saves a checkpoint, then ends as 'stopped'."
                    if info["state"] == "stopped":
                        msg = f"Stopped **{run_id}** before it started."
                elif verb == "resume":
                    q.resume(run_id)
                    msg = f"Queued **{run_id}** again; it continues from its last checkpoint."
                elif verb == "retry":
                    q.retry(run_id)
                    msg = f"Retrying **{run_id}** from its last good checkpoint."
                else:
                    q.delete(run_id)
                    msg = f"Deleted **{run_id}**."
                return {"message": msg, "select": run_id if verb != "delete" else None}

            return do

        for btn, verb in ((stop_btn, "stop"), (resume_btn, "resume"), (retry_btn, "retry"), (delete_btn, "delete")):
            btn.click(action(verb), run, done).success(show, [done, run, sig], outs)
    return {"load": on_load, "load_outputs": [comp, sweep, table, run, progress, curves, sample, log, sig]}
