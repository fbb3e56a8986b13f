"""Training tab: queue runs (one, or a sweep over compositions x seeds), watch them, stop / resume / retry / delete.

Thin: every action is one call into the lab façade (``pairlab.lab``: the queue and its runs); everything shown is read from the run folders, so a
page reload (or an app restart) loses nothing.
"""
from __future__ import annotations

import functools
import html
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go

from .. import lab, papers
from ..errors import UserError
from .common import error_sentence, friendly

HEADERS = ["run", "composition", "model", "preset", "seed", "state", "progress", "ETA", "error"]
WIDTHS = ["27%", "14%", "9%", "11%", "5%", "9%", "12%", "7%", "6%"]  # the short name gets the most room
DELETE_LABEL, CONFIRM_LABEL = "Delete", "Confirm delete"


def executors() -> list[str]:
    """The executors the façade offers (['local'] when it offers no choice)."""
    fn = getattr(lab, "available_executors", None)
    try:
        return list(fn()) if fn else ["local"]
    except Exception:  # noqa: BLE001 - a bad cluster config must not stop the tab from building
        return ["local"]


def show_where() -> bool:
    return executors() != ["local"]
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


def short(text: str, width: int = 28) -> str:
    text = str(text or "")
    return text if len(text) <= width else text[: width - 1] + "…"


def run_rows(runs: list[dict], where: bool = False) -> list[list]:
    """One row per run with its short display name (the full id is in the selected-run panel and its hover)."""
    rows = []
    for r in runs:
        row = [r.get("name") or r["id"], short(r["composition"]), r["model"], r["preset"], r["seed"], r["shown_state"],
               f"{r['iteration']}/{r['total'] or '?'} ({100 * r['progress']:.0f}%)", lab.format_eta(r["eta_s"]),
               short(r["error"], 40)]
        if where:
            row.insert(6, r.get("where") or "local")
        rows.append(row)
    return rows


def run_choices(runs: list[dict]) -> list[tuple[str, str]]:
    """(display name, id) pairs for the run dropdowns: short names shown, full ids as values."""
    return [(r.get("name") or r["id"], r["id"]) for r in runs]


def sample_caption(sample_path, model: str, image_size: int | None) -> str:
    """Which rows of the sample grid are A→B and which B→A (test A images first, then test B images)."""
    if not sample_path:
        return "**Samples** appear after the first logged iterations."
    try:
        from PIL import Image

        with Image.open(sample_path) as im:
            w, h = im.size
    except OSError:
        return "**Samples**"
    size = image_size or (w // 3 if w else 0)
    rows = h // size if size else 0
    try:
        two_way = "BtoA" in lab.get_spec(model).generators
    except Exception:  # noqa: BLE001 - an unknown kind: say only what is certain
        two_way = False
    stem = Path(str(sample_path)).stem
    name = f"iteration {int(stem[5:])}" if stem.startswith("iter_") and stem[5:].isdigit() else html.escape(stem)
    if rows and two_way and rows % 2 == 0:
        half = rows // 2
        return (f"**Samples at {name}** — rows 1–{half}: **A→B** (input A | translated B | reconstructed A); "
                f"rows {half + 1}–{rows}: **B→A** (input B | translated A | reconstructed B)")
    return f"**Samples at {name}** — rows 1–{rows or '?'}: **A→B** (input A | translated B | ground truth B)"


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


PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]


def overlay_figure(run_ids: list[str], loss: str | None, smoothing: float = 0.0, log_y: bool = True,
                   group: bool = True) -> go.Figure:
    """One loss across several runs; with ``group``, runs that differ only in their seed become one mean curve
    with a min..max band (W&B / Aim 'group by')."""
    q = lab.queue()
    items = []
    for rid in run_ids or []:
        try:
            info = q.info(rid)
        except UserError:
            continue
        folder = lab.Run(info["path"])
        cfg = dict(folder.config_dict() or {})
        cfg["composition"] = info["composition"]
        items.append({"id": rid, "name": info.get("name") or rid, "metrics": folder.losses(),
                      "key": lab.curve_group_key(cfg)})
    keys = []
    for it in items:
        keys += [k for k in lab.curve_loss_keys(it["metrics"]) if k not in keys]
    loss = loss if loss in keys else (keys[0] if keys else None)
    fig = go.Figure()
    groups = lab.group_curves(items) if group else [[it] for it in items]
    for i, members in enumerate(groups):
        color = PALETTE[i % len(PALETTE)]
        series = [([m.get("iter") for m in it["metrics"]],
                   lab.curve_ema([m.get(loss) for m in it["metrics"]], smoothing)) for it in members]
        label = members[0]["name"] if len(members) == 1 else \
            f"{members[0]['name'].rsplit(' #', 1)[0]} (mean of {len(members)} seeds)"
        if len(members) == 1:
            fig.add_scatter(x=series[0][0], y=series[0][1], mode="lines", name=label, line=dict(color=color),
                            hovertext=members[0]["id"])
            continue
        xs, mean, low, high = lab.curve_mean_band(series)
        fig.add_scatter(x=xs + xs[::-1], y=high + low[::-1], fill="toself", fillcolor=color, opacity=0.2,
                        line=dict(width=0), hoverinfo="skip", showlegend=False, name=label + " band")
        fig.add_scatter(x=xs, y=mean, mode="lines", name=label, line=dict(color=color),
                        hovertext=", ".join(m["id"] for m in members))
    fig.update_layout(title=dict(text=f"{html.escape(loss or 'no loss')} across {len(items)} run(s)"
                                 + (f"<br><sup>smoothing {smoothing:.2f}</sup>" if smoothing else "")),
                      height=360, margin=dict(l=50, r=10, t=60, b=40), xaxis_title="iteration",
                      legend=dict(font=dict(size=10)))
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def loss_figure(metrics: list[dict], title: str = "", smoothing: float = 0.0, log_y: bool | None = None) -> go.Figure:
    fig = go.Figure()
    keys = []
    for m in metrics:
        keys += [k for k in m if k not in NON_LOSS and k not in keys]
    iters = [m.get("iter") for m in metrics]
    for i, k in enumerate(keys):
        raw = [m.get(k) for m in metrics]
        color = PALETTE[i % len(PALETTE)]
        if smoothing:  # W&B style: the raw curve faint, the smoothed one on top
            fig.add_scatter(x=iters, y=raw, mode="lines", name=k + " (raw)", showlegend=False, opacity=0.25,
                            line=dict(color=color, width=1), hoverinfo="skip")
        fig.add_scatter(x=iters, y=lab.curve_ema(raw, smoothing), mode="lines", name=k, line=dict(color=color))
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
    if log_y is None:
        log_y = positive
    if log_y and positive and metrics:  # losses of very different sizes (cycle ~ 5, D ~ 0.2): a log axis shows them all
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
    where = show_where()
    headers = HEADERS[:6] + ["where"] + HEADERS[6:] if where else HEADERS
    widths = WIDTHS[:6] + ["7%"] + WIDTHS[6:] if where else WIDTHS
    with gr.Tab("Training", id="training") as tab:
        gr.Markdown("Train **CycleGAN**, **Pix2Pix** or the **hybrid** paired + unpaired model "
                    f"({papers.FEW_PAIRS}) on a "
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
                execs = executors()
                executor = gr.Dropdown(execs, value="local", label="Executor (where the runs execute)",
                                       visible=len(execs) > 1, elem_id="tr-executor")
                with gr.Row():
                    refresh_comps = gr.Button("Refresh compositions", size="sm", elem_id="tr-refresh-comps")
                    launch = gr.Button("Queue run(s)", variant="primary", elem_id="tr-launch")
            with gr.Column(scale=3):
                gr.Markdown("### Runs")
                table = gr.Dataframe(headers=headers, interactive=False, elem_id="tr-table", max_height=480,
                                     wrap=False, column_widths=widths)
                with gr.Row():
                    run = gr.Dropdown([], label="Selected run (or click a row)", elem_id="tr-run", scale=4)
                    stop_btn = gr.Button("Stop", elem_id="tr-stop", scale=1, min_width=70)
                    resume_btn = gr.Button("Resume", elem_id="tr-resume", scale=1, min_width=70)
                    retry_btn = gr.Button("Retry", elem_id="tr-retry", scale=1, min_width=70)
                    delete_btn = gr.Button(DELETE_LABEL, variant="stop", elem_id="tr-delete", scale=1, min_width=90)
                message = gr.Markdown("", elem_id="tr-status")
                progress = gr.HTML(progress_html(None), elem_id="tr-progress")
                log = gr.Textbox(label="Log (last lines of log.txt)", lines=8, max_lines=8, interactive=False,
                                 autoscroll=True, elem_id="tr-log")
        with gr.Row():
            smoothing = gr.Slider(0.0, 0.99, value=0.0, step=0.01, label="Smoothing (EMA, as in W&B)",
                                  elem_id="tr-smoothing", scale=2)
            log_y = gr.Checkbox(value=True, label="log scale", elem_id="tr-logy", scale=1)
            overlay = gr.Dropdown([], value=[], multiselect=True, elem_id="tr-overlay", scale=3,
                                  label="Overlay runs (one loss across runs; empty: all losses of the selected run)")
            overlay_loss = gr.Dropdown([], label="Loss to overlay", elem_id="tr-overlay-loss", scale=1)
            group = gr.Checkbox(value=True, label="group seeds (mean, min–max band)", elem_id="tr-group", scale=1)
        with gr.Row(equal_height=False):
            curves = gr.Plot(label="Loss curves (losses.jsonl)", elem_id="tr-curves", scale=3)
            with gr.Column(scale=2):
                sample_note = gr.Markdown(sample_caption(None, "cyclegan", None), elem_id="tr-sample-caption")
                sample = gr.Image(type="filepath", interactive=False, elem_id="tr-sample", height=360,
                                  show_label=False, buttons=["download", "fullscreen"])
        sig = gr.State({})
        view = gr.State({"smoothing": 0.0, "log_y": True})
        timer = gr.Timer(2.0)

        # ----- handlers ---------------------------------------------------------------------------------
        def figure(folder, info, settings):
            return loss_figure(read_metrics(folder), f"{info.get('name') or info['model']} on {info['composition']}",
                               smoothing=float(settings.get("smoothing") or 0.0), log_y=bool(settings.get("log_y", True)))

        def details(run_id, old_sig, force=False, settings=None):
            """progress, curves, sample (+ its caption), log for the selected run; unchanged parts are skipped."""
            settings = settings or {}
            q = lab.queue()
            if not run_id:
                if old_sig.get("run") is None and not force:
                    return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), old_sig
                return progress_html(None), loss_figure([]), None, sample_caption(None, "", None), "", {"run": None}
            try:
                info = q.info(run_id)
            except UserError:
                return progress_html(None), loss_figure([]), None, sample_caption(None, "", None), "", {"run": None}
            folder = lab.Run(info["path"])
            new = {"run": run_id, "metrics": folder.losses_signature(), "sample": latest_sample(folder),
                   "log": folder.log_signature(),
                   "progress": [info[k] for k in ("shown_state", "iteration", "total", "eta_s", "error", "device")]}
            same = (not force) and old_sig.get("run") == run_id
            bar = gr.skip() if same and old_sig.get("progress") == new["progress"] else progress_html(info)
            overlaid = bool(old_sig.get("overlay"))
            fig = gr.skip() if overlaid or (same and old_sig.get("metrics") == new["metrics"]) else \
                figure(folder, info, settings)
            img = gr.skip() if same and old_sig.get("sample") == new["sample"] else new["sample"]
            cap = gr.skip() if same and old_sig.get("sample") == new["sample"] else \
                sample_caption(new["sample"], info["model"], (folder.config_dict() or {}).get("image_size"))
            tail = gr.skip() if same and old_sig.get("log") == new["log"] else log_tail(folder)
            new["overlay"] = old_sig.get("overlay")
            return bar, fig, img, cap, tail, new

        def table_update(runs, old_rows):
            rows = run_rows(runs, where)
            return (gr.skip() if rows == old_rows else rows), rows

        def on_timer(run_id, old_sig, settings):
            q = lab.queue()
            try:
                q.tick()
            except UserError:
                pass
            runs = q.list_runs()
            rows, rows_sig = table_update(runs, old_sig.get("rows"))
            ids = [r["id"] for r in runs]
            run_up = over_up = gr.skip()
            if old_sig.get("ids") != ids:
                run_up = gr.update(choices=run_choices(runs), value=run_id if run_id in ids else default_selection(runs))
                over_up = gr.update(choices=run_choices(runs))
                run_id = run_id if run_id in ids else default_selection(runs)
            bar, fig, img, cap, tail, new = details(run_id, old_sig, settings=settings)
            new.update(rows=rows_sig, ids=ids, order=ids)
            return rows, run_up, over_up, bar, fig, img, cap, tail, new

        detail_outs = [progress, curves, sample, sample_note, log]
        timer.tick(on_timer, [run, sig, view], [table, run, overlay] + detail_outs + [sig], show_progress="hidden",
                   queue=False)

        def on_load():
            q = lab.queue()
            runs = q.list_runs()
            ids = [r["id"] for r in runs]
            chosen = default_selection(runs)
            names = composition_names()
            bar, fig, img, cap, tail, new = details(chosen, {}, force=True)
            new.update(rows=run_rows(runs, where), ids=ids, order=ids, comps=names)
            return (gr.update(choices=names, value=names[-1] if names else None), gr.update(choices=names),
                    run_rows(runs, where), gr.update(choices=run_choices(runs), value=chosen),
                    gr.update(choices=run_choices(runs)), bar, fig, img, cap, tail, new)

        def on_select_run(run_id, old_sig, settings):
            bar, fig, img, cap, tail, new = details(run_id, old_sig, force=True, settings=settings)
            new.update(rows=old_sig.get("rows"), ids=old_sig.get("ids"), order=old_sig.get("order"),
                       comps=old_sig.get("comps"))
            return bar, fig, img, cap, tail, new, None, gr.update(value=DELETE_LABEL)

        armed = gr.State(None)  # the run a first Delete click asked about
        select_outs = detail_outs + [sig, armed, delete_btn]
        run.input(on_select_run, [run, sig, view], select_outs)

        def on_row(evt: gr.SelectData, old_sig):
            index = getattr(evt, "index", None)
            order = old_sig.get("order") or []
            if isinstance(index, (list, tuple)) and index and isinstance(index[0], int) and index[0] < len(order):
                return order[index[0]]
            return gr.skip()

        table.select(on_row, [sig], run).then(on_select_run, [run, sig, view], select_outs)

        def on_curve_settings(run_id, old_sig, smooth, logy, over, loss, grouped):
            settings = {"smoothing": smooth, "log_y": logy}
            new = dict(old_sig, overlay=list(over or []))
            if over:
                fig = overlay_figure(list(over), loss, smooth, logy, grouped)
                keys = []
                q = lab.queue()
                for rid in over:
                    try:
                        keys += [k for k in lab.curve_loss_keys(lab.Run(q.info(rid)["path"]).losses()) if k not in keys]
                    except UserError:
                        continue
                loss_up = gr.update(choices=keys, value=loss if loss in keys else (keys[0] if keys else None))
            else:
                loss_up = gr.skip()
                fig = loss_figure([])
                if run_id:
                    try:
                        info = lab.queue().info(run_id)
                        fig = figure(lab.Run(info["path"]), info, settings)
                    except UserError:
                        pass
            return fig, loss_up, settings, new

        curve_inputs = [run, sig, smoothing, log_y, overlay, overlay_loss, group]
        curve_outs = [curves, overlay_loss, view, sig]
        smoothing.release(on_curve_settings, curve_inputs, curve_outs)
        for widget in (log_y, group, overlay, overlay_loss):
            widget.input(on_curve_settings, curve_inputs, curve_outs)

        def on_comps(old_sig, current):
            """Refresh the composition lists; a composition that appeared since last time (just built in the
            Datasets tab, or by the CLI) is preselected."""
            names = composition_names()
            known = old_sig.get("comps")
            fresh = [n for n in names if known is not None and n not in known]
            value = fresh[-1] if fresh else (current if current in names else (names[-1] if names else None))
            return gr.update(choices=names, value=value), gr.update(choices=names), dict(old_sig, comps=names)

        refresh_comps.click(on_comps, [sig, comp], [comp, sweep, sig])
        tab.select(on_comps, [sig, comp], [comp, sweep, sig])
        model.change(preset_summary, [preset, model], preset_info)
        preset.change(preset_summary, [preset, model], preset_info)

        # Actions write only an invisible State; a second step shows the result, or the error's one sentence in
        # the status line (no toast, no component left in an error state).
        done = gr.State({})

        def failing(fn):
            @functools.wraps(fn)
            def wrapper(*args):
                try:
                    return fn(*args)
                except Exception as exc:  # noqa: BLE001 - one sentence; the app keeps serving
                    return {"message": "⚠ " + error_sentence(exc), "select": None, "failed": True}

            return wrapper

        @failing
        @friendly
        def do_launch(comp_name, model_name, preset_name, overrides_text, seeds_text, sweep_names, run_name,
                      executor_name):
            run_name = (run_name or "").strip()
            targets = list(sweep_names or []) or ([comp_name] if comp_name else [])
            if not targets:
                raise UserError("Choose a composition first (build one in the Datasets tab).")
            targets, seed_list = lab.launch_plan(targets, seeds_text if seeds_text is not None else "", run_name)
            extra = {"executor": executor_name} if executor_name and executor_name != "local" else {}
            ids = lab.queue().launch(targets, model_name, preset_name, overrides_text, seed_list, name=run_name, **extra)
            shown = lab.Run(lab.queue().run_dir(ids[0])).display_name() if len(ids) == 1 else ""
            msg = (f"Queued **{shown}** (`{ids[0]}`)." if len(ids) == 1 else
                   f"Queued a sweep of **{len(ids)} runs** ({len(targets)} composition(s) × {len(seed_list)} seed(s)).")
            if run_name and ids[0] != run_name:
                msg += (f" The name '{run_name}' was changed to '{ids[0]}' (names use letters, digits, "
                        f"'-', '_' and '.').")
            return {"message": msg, "select": ids[0]}

        def show(result, run_id, old_sig, settings):
            q = lab.queue()
            runs = q.list_runs()
            ids = [r["id"] for r in runs]
            if result.get("failed"):  # only the sentence changes
                return ((result.get("message", ""),) + tuple(gr.skip() for _ in range(10))
                        + (old_sig, result.get("armed"), gr.update(value=CONFIRM_LABEL if result.get("armed") else DELETE_LABEL)))
            chosen = result.get("select") or run_id
            chosen = chosen if chosen in ids else default_selection(runs)
            bar, fig, img, cap, tail, new = details(chosen, old_sig, force=True, settings=settings)
            new.update(rows=run_rows(runs, where), ids=ids, order=ids, comps=old_sig.get("comps"))
            armed_id = result.get("armed")
            return (result.get("message", ""), run_rows(runs, where), gr.update(choices=run_choices(runs), value=chosen),
                    gr.update(choices=run_choices(runs)), bar, fig, img, cap, tail, gr.skip(), gr.skip(), new, armed_id,
                    gr.update(value=CONFIRM_LABEL if armed_id else DELETE_LABEL))

        outs = [message, table, run, overlay] + detail_outs + [overlay_loss, view, sig, armed, delete_btn]
        launch.click(do_launch, [comp, model, preset, overrides, seeds, sweep, name, executor], done).then(
            show, [done, run, sig, view], outs)

        def action(verb):
            @failing
            @friendly
            def do(run_id, armed_id):
                q = lab.queue()
                if not run_id:
                    raise UserError("Choose a run first.")
                shown = lab.Run(q.run_dir(run_id)).display_name()
                if verb == "stop":
                    info = q.stop(run_id)
                    msg = f"Stopping **{shown}**: it saves a checkpoint, then ends as 'stopped'."
                    if info["state"] == "stopped":
                        msg = f"Stopped **{shown}** before it started."
                elif verb == "resume":
                    q.resume(run_id)
                    msg = f"Queued **{shown}** again; it continues from its last checkpoint."
                elif verb == "retry":
                    q.retry(run_id)
                    msg = f"Retrying **{shown}** from its last good checkpoint."
                elif armed_id != run_id:  # delete, first click: ask
                    state = q.info(run_id)["shown_state"]
                    warn = " It is **running**: it is stopped and its checkpoints are lost." if state in (
                        "running", "stopping") else ""
                    return {"message": f"Delete **{shown}** (`{run_id}`) and its folder?{warn} "
                                       f"Click **{CONFIRM_LABEL}** to delete it.", "select": run_id, "armed": run_id}
                else:
                    q.delete(run_id)
                    msg = f"Deleted **{shown}** (`{run_id}`)."
                return {"message": msg, "select": run_id if verb != "delete" else None}

            return do

        for btn, verb in ((stop_btn, "stop"), (resume_btn, "resume"), (retry_btn, "retry"), (delete_btn, "delete")):
            btn.click(action(verb), [run, armed], done).then(show, [done, run, sig, view], outs)
    return {"load": on_load, "load_outputs": [comp, sweep, table, run, overlay, progress, curves, sample, sample_note,
                                              log, sig]}
