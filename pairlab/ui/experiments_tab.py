"""Experiments tab: the implicit-pairs paper's experiments, as ``python -m pairlab experiment`` runs them (plan, start, status,
report), from the page.

Thin: every action is one call into the lab façade (``lab.plan_experiment``, ``estimate_experiment``,
``start_experiment``, ``experiment_status``, ``report_experiment``); the runs go onto the app's training queue and
its background scheduler trains them (they also show in the Training tab). Everything shown is read back from the
workspace (the experiment folder, its runs, the written reports), so a reload or an app restart loses nothing: on
load the tab reopens the last plan (or the newest experiment folder) with its status and its last report.

A bad input is one sentence in the status line; the rest of the page keeps what it showed.
"""
from __future__ import annotations

import functools
import html
import math
import sys
import traceback

import gradio as gr

from pairlab import papers
import plotly.graph_objects as go

from .. import lab, papers, workspace
from ..errors import UserError
from .common import number, progress_adapter

ALL = "all"
RUN_HEADERS = ["run", "arm", "model", "data", "seed", "state", "progress", "error"]
ENDED = ("done", "failed", "stopped", "not queued")
STATE_COLORS = {"done": "#3aa55d", "running": "#2f7ed8", "failed": "#d9534f", "stopped": "#e8a33d"}
VERDICT_COLORS = {"holds": "#2e7d32", "reversed": "#c62828", "not significant": "#6d6d6d"}
VIEW = "experiments"
TABLE_STYLE = ("<style>.ex-table{border-collapse:collapse;width:100%;margin:4px 0}.ex-table td,.ex-table th{"
               "border:1px solid var(--border-color-primary,#ccc);padding:3px 6px;font-size:13px;"
               "vertical-align:top;text-align:left}.ex-table th{background:var(--background-fill-secondary,#f4f4f4)}"
               "</style>")


# ----- the form -------------------------------------------------------------------------------------------
def experiment_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in lab.EXPERIMENTS] + [("all (every experiment)", ALL)]


def profile_info(profile: str) -> str:
    p = lab.PROFILES.get(profile)
    if p is None:
        return ""
    return (f"{html.escape(p.description)}.  \nDefault seeds **{', '.join(map(str, p.seeds))}**, "
            f"N = **{p.n}** real images per domain, {p.n_test} test images.")


def form(experiment, task, profile, seeds, n) -> dict:
    """The form's values, checked enough to plan: blank seeds / N mean the profile's."""
    seeds = (seeds or "").strip() if isinstance(seeds, str) else seeds
    n_text = "" if n is None else str(n).strip()
    return {"experiment": experiment or "", "task": task or "", "profile": profile or "",
            "seeds": seeds or None, "n": number(n_text, "N", low=2) if n_text else None}


def make_plan(f: dict):
    if not f.get("experiment"):
        raise UserError("Choose an experiment (or all) first.")
    return lab.plan_experiment(f["experiment"], f["task"] or "eyeglasses", f["profile"] or "quick", f["seeds"],
                               f["n"])


def plan_title(plan) -> str:
    names = ", ".join(plan.experiments) if len(plan.experiments) < len(lab.EXPERIMENTS) else "every experiment"
    return (f"**{names}** on {plan.task}, profile {plan.profile.name}, seeds {', '.join(map(str, plan.seeds))}, "
            f"N = {plan.profile.n}")


# ----- what the tab shows (plain functions of the workspace) ----------------------------------------------
def run_rows(plan, st: dict, iterations: dict | None = None) -> list[list]:
    iterations = iterations or {}
    rows = []
    for r in st["runs"]:
        arm = plan.arms.get(r["arm"])
        total = r["total"] or iterations.get(f"{r['arm']}|{r['seed']}") or 0
        pct = 100 * min(r["iteration"], total) / total if total else 0
        rows.append([r["id"], arm.label if arm else r["arm"], arm.model if arm else "",
                     arm.recipe.short_name() if arm else "", r["seed"], r["state"],
                     f"{r['iteration']}/{total or '?'} ({pct:.0f}%)", r.get("error") or ""])
    return rows


def overall_html(plan, st: dict | None) -> str:
    if st is None:
        return "<div id='ex-overall-text'>No experiment planned yet: choose one on the left and press Plan.</div>"
    n = len(st["runs"])
    counts = ", ".join(f"{c} {s}" for s, c in sorted(st["counts"].items()))
    pct = max(0.0, min(100.0, 100 * st["fraction"]))
    done = st["counts"].get("done", 0)
    parts = [f"<b>{done}/{n} done</b>", f"{pct:.0f}% of the iterations", html.escape(counts)]
    if st.get("eta_s"):
        parts.append(f"ETA {lab.format_eta(st['eta_s'])}")
    if st["done"]:
        parts.append("all finished: press Report")
    elif st["counts"].get("not queued", 0) == n:
        parts.append("not started: Start builds the compositions and queues the runs")
    elif all(r["state"] in ENDED for r in st["runs"]):
        parts.append("nothing is training: Start queues what is missing and resumes failed or stopped runs")
    color = "#3aa55d" if st["done"] else "#2f7ed8"
    return (f"<div style='background:#e6e6e6;border-radius:6px;height:16px;overflow:hidden'>"
            f"<div style='width:{pct:.1f}%;height:100%;background:{color}'></div></div>"
            f"<div id='ex-overall-text' style='margin-top:4px'>{' · '.join(p for p in parts if p)}</div>")


def estimate_text(plan, est: dict | None, measuring: bool = False) -> str:
    if est is None:
        return ""
    arms = len(plan.arms)
    lines = [f"{plan_title(plan)}: {arms} arm{'s' * (arms != 1)} × {len(plan.seeds)} seed"
             f"{'s' * (len(plan.seeds) != 1)} = **{len(est['runs'])} runs**, "
             f"{sum(r['iterations'] for r in est['runs'])} iterations in all."]
    measured = [(k, m["s_per_iter"]) for k, m in est["models"].items() if m.get("s_per_iter")]
    if measured:
        lines.append("Measured here: " + ", ".join(f"{k} {s:.3f} s/iteration" for k, s in measured)
                     + f" with {est['threads_per_run']} thread(s) per run.")
        lines.append(f"Estimated: training **{lab.format_eta(est['train_s'])}** of slot time on {est['slots']} "
                     f"slot(s) in parallel, evaluation about {lab.format_eta(est['eval_s'])}; wall time about "
                     f"**{lab.format_eta(est['wall_s'])}**.")
    elif measuring:
        lines.append("Measuring the step time of each model here (a few training steps; 10-60 s)…")
    else:
        lines.append(f"Step time not measured (tick *Measure the step time* for an estimate); evaluation about "
                     f"{lab.format_eta(est['eval_s'])}.")
    return "  \n".join(lines)


def verdict_badge(v: str) -> str:
    color = VERDICT_COLORS.get(v, "#b26a00")
    return (f"<span class='ex-verdict' style='background:{color};color:white;border-radius:4px;padding:1px 6px;"
            f"white-space:nowrap'>{html.escape(str(v))}</span>")


def _f(x, digits: int = 4) -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def claims_html(report: dict) -> str:
    if not report:
        return "<p id='ex-claims-empty'>No report yet: press Report once runs have finished.</p>"
    head = ("<tr><th>experiment</th><th>claim</th><th>verdict</th><th>metric</th><th>treatment vs control</th>"
            "<th>effect [95%]</th><th>p (Holm)</th><th>seeds</th><th>result</th></tr>")
    rows = []
    for name, got in report.items():
        said = {p.get("claim"): p for p in got["results"].get("paper") or []}
        for c in got["results"].get("claims", []):
            what = said.get(c.get("claim_id"), {})
            claim = f"<b>{html.escape(str(c.get('claim_id')))}</b>"
            if what.get("text"):
                claim += (f"<br><small>{html.escape(str(what['text']))}"
                          + (f" <i>({html.escape(str(what['source']))})</i>" if what.get("source") else "")
                          + "</small>")
            effect = _f(c.get("effect"))
            if c.get("effect_low") is not None and c.get("effect_high") is not None:
                effect += f" [{_f(c['effect_low'])}, {_f(c['effect_high'])}]"
            vs = " vs ".join(f"{html.escape(str(c.get(side)))} {_f(c.get(side + '_mean'))}".strip()
                             for side in ("treatment", "control"))
            rows.append(f"<tr><td>{html.escape(name)}</td><td>{claim}</td>"
                        f"<td>{verdict_badge(c.get('verdict'))}</td>"
                        f"<td>{html.escape(str(c.get('metric')))} ({html.escape(str(c.get('direction')))})</td>"
                        f"<td>{vs}</td><td>{effect}</td><td>{_f(c.get('p_adjusted'), 3)}</td>"
                        f"<td>{c.get('n_seeds', '')}</td><td><small>{html.escape(str(c.get('text', '')))}</small></td>"
                        "</tr>")
    if not rows:
        rows = ["<tr><td colspan='9'>These experiments make no claim to test.</td></tr>"]
    return f"{TABLE_STYLE}<div style='overflow-x:auto'><table class='ex-table'>{head}{''.join(rows)}</table></div>"


def results_table(res: dict) -> tuple[list[str], list[list]]:
    """The paper's layout: one row per (metric, direction), one column per configuration, then the baseline."""
    cols = list(res.get("configs") or {})
    grid: dict = {}
    for c in res.get("cells", []):
        grid.setdefault((c["metric"], c["direction"]), {})[c["config"]] = c
    rows = []
    for (metric, direction), row in grid.items():
        base = ((res.get("baseline") or {}).get(direction) or {}).get(metric) or {}
        rows.append([metric, direction] + [(row.get(c) or {}).get("cell", "") for c in cols]
                    + [_f(base.get("mean"))])
    return ["metric", "direction"] + cols + ["input unchanged"], rows


def paper_html(res: dict) -> str:
    """The paper's own tables for this experiment (other datasets and encoder: direction and rough size only)."""
    parts = []
    for t in res.get("paper_tables") or []:
        cols = list(t.get("columns") or [])
        parts.append(f"<p><b>{html.escape(papers.plain(papers.IMPLICIT_PAIRS_SHORT))}, {html.escape(str(t['id']))}</b> ({html.escape(str(t['source']))}): "
                     f"<i>{html.escape(str(t['caption']))}</i> — {html.escape(str(t['metric']))}. "
                     f"{html.escape(str(t['different_setting']))}</p><table class='ex-table'><tr><th></th>"
                     + "".join(f"<th>{html.escape(str(c))}</th>" for c in cols) + "</tr>")
        for name, row in (t.get("rows") or {}).items():
            parts.append(f"<tr><td>{html.escape(str(name))}</td>"
                         + "".join(f"<td>{html.escape(str(row.get(c, '')))}</td>" for c in cols) + "</tr>")
        parts.append("</table>")
    return TABLE_STYLE + "".join(parts) if parts else "<p>The paper gives no table for this experiment.</p>"


def _figure(res: dict) -> go.Figure:
    """The report's plot (one owner: the experiments' results module)."""
    return lab.experiment_figure(res)


def empty_figure() -> go.Figure:
    fig = go.Figure()
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.add_annotation(text="The plot appears with the first report.", showarrow=False, x=0.5, y=0.5,
                       xref="paper", yref="paper", font=dict(size=14, color="#888"))
    fig.update_layout(height=260, template="plotly_white", margin=dict(l=10, r=10, t=20, b=10))
    return fig


def written_report(plan) -> dict:
    """The reports already written for a plan's experiments, by name."""
    return lab.written_reports(plan)


def workspace_experiments() -> list[dict]:
    return lab.workspace_experiments()


def reopened_form() -> dict | None:
    """After a reload: the last plan this tab showed, else the newest experiment folder of the workspace."""
    last = workspace.last_view(VIEW)
    if last.get("experiment"):
        return {k: last.get(k) for k in ("experiment", "task", "profile", "seeds", "n")}
    for e in workspace_experiments():
        names = e["experiments"]
        if not names or e["task"] not in lab.TASKS or e["profile"] not in lab.PROFILES:
            continue
        name = names[0] if len(names) == 1 else (ALL if set(names) >= set(lab.EXPERIMENTS) else names[0])
        return {"experiment": name, "task": e["task"], "profile": e["profile"],
                "seeds": ",".join(map(str, e["seeds"])) or None, "n": e["n"]}
    return None


def shown_path(path) -> str:
    """A workspace path as the page shows it: relative to the workspace (shown at the top of the page)."""
    try:
        return str(path.relative_to(workspace.home()))
    except ValueError:
        return str(path)


def report_paths(report: dict) -> dict:
    """The report as JSON-safe state (paths as strings)."""
    return {name: {"results": got["results"], "paths": {k: str(p) for k, p in got["paths"].items()}}
            for name, got in report.items()}


# ----- errors: one sentence in the status line ------------------------------------------------------------
def status_line(status):
    """Wrap a handler that returns a dict of outputs: a UserError (or any other error) becomes one sentence in
    ``status`` and every other output keeps what it showed."""

    def wrap(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except UserError as exc:
                return {status: error_text(str(exc))}
            except gr.Error as exc:
                return {status: error_text(str(exc.message))}
            except Exception as exc:  # keep serving; say what happened in one sentence
                traceback.print_exc(file=sys.stderr)
                return {status: error_text(f"Unexpected error ({type(exc).__name__}): {exc}")}

        return wrapper

    return wrap


def error_text(sentence: str) -> str:
    return f"<span class='ex-error' style='color:#c62828'>{html.escape(sentence.strip())}</span>"


# ----- the tab --------------------------------------------------------------------------------------------
def build_tab() -> dict:
    with gr.Tab("Experiments", id="experiments"):
        gr.Markdown(f"Run the experiments of {papers.IMPLICIT_PAIRS} (`python -m pairlab experiment`): "
                    "each builds its compositions, "
                    "queues its runs (they train in the background, show in the Training tab and survive restarts), "
                    "then **Report** evaluates what has finished with the input-unchanged baseline and writes the "
                    "table in the paper's layout (mean [95% interval over seeds]), a verdict per claim (paired test "
                    "across seeds, Holm), a plot, the comparison grid and a standalone report.")
        watch = gr.State({})    # the plan the table shows: its form and the iterations per run
        report_state = gr.State({})
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                experiment = gr.Dropdown(experiment_choices(), value="explicit", label="Experiment",
                                         elem_id="ex-experiment")
                task = gr.Radio(list(lab.TASKS), value="eyeglasses", label="Task", elem_id="ex-task")
                profile = gr.Dropdown(list(lab.PROFILES), value="quick", label="Profile", elem_id="ex-profile")
                profile_md = gr.Markdown(profile_info("quick"), elem_id="ex-profile-info")
                with gr.Row():
                    seeds = gr.Textbox(label="Seeds", placeholder="the profile's; or e.g. 0,1,2 or 0-4",
                                       elem_id="ex-seeds", scale=3, min_width=120)
                    n = gr.Textbox(label="N per domain", placeholder="the profile's", elem_id="ex-n", scale=2,
                                   min_width=100)
                measure = gr.Checkbox(value=True, label="Measure the step time here for the estimate (10-60 s)",
                                      elem_id="ex-measure")
                execs = lab.available_executors()  # 'slurm' only when a cluster config exists and sbatch answers
                executor = gr.Dropdown(execs, value="local", label="Executor (local slots, or one SLURM job array)",
                                       visible=len(execs) > 1, elem_id="ex-executor")
                with gr.Row():
                    plan_btn = gr.Button("Plan", elem_id="ex-plan", min_width=80)
                    start_btn = gr.Button("Start", variant="primary", elem_id="ex-start", min_width=80)
                    report_btn = gr.Button("Report", elem_id="ex-report", min_width=80)
                status = gr.Markdown("", elem_id="ex-status")
            with gr.Column(scale=3):
                gr.Markdown("### Plan and runs")
                estimate = gr.Markdown("", elem_id="ex-estimate")
                overall = gr.HTML(overall_html(None, None), elem_id="ex-overall")
                runs = gr.Dataframe(headers=RUN_HEADERS, interactive=False, elem_id="ex-runs", max_height=440,
                                    wrap=True, column_widths=["22%", "15%", "10%", "18%", "7%", "10%", "11%", "7%"])
        gr.Markdown("### Report")
        gr.Markdown(f"#### Claims of the implicit-pairs paper ({papers.IMPLICIT_PAIRS_SHORT}), tested here "
                    "(paired t-test across seeds, Holm's correction)")
        claims = gr.HTML(claims_html({}), elem_id="ex-claims")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                shown = gr.Dropdown([], label="Experiment shown", elem_id="ex-shown")
                files = gr.File(label="Downloads: report.html, table CSV / LaTeX, claims CSV, results.json",
                                file_count="multiple", interactive=False, elem_id="ex-files", height=320)
            with gr.Column(scale=3):
                table = gr.Dataframe(headers=["metric", "direction", "input unchanged"],
                                     label="Results in the paper's layout (mean [95% interval over seeds])",
                                     interactive=False, elem_id="ex-table", wrap=True)
        with gr.Row(equal_height=False):
            plot = gr.Plot(empty_figure(), label="Each metric per configuration (95% intervals over seeds)",
                           elem_id="ex-plot", scale=3)
            grid = gr.Image(label="Test images (first seed): source, each configuration, ground truth",
                            type="filepath", interactive=False, elem_id="ex-grid", scale=2, height=380)
        with gr.Accordion("The paper's own numbers (other datasets and encoder: direction and rough size only)",
                          open=False):
            paper = gr.HTML("", elem_id="ex-paper")
        timer = gr.Timer(3.0, active=False)

        form_inputs = [experiment, task, profile, seeds, n]
        plan_outputs = [status, estimate, overall, runs, watch, timer]

        # ----- plan, measure, start, watch --------------------------------------------------------------
        def show_plan(plan, f: dict, est: dict | None, measuring=False) -> dict:
            st = lab.experiment_status(plan)
            iters = {f"{r['arm']}|{r['seed']}": r["iterations"] for r in est["runs"]} if est else {}
            return {estimate: estimate_text(plan, est, measuring), overall: overall_html(plan, st),
                    runs: run_rows(plan, st, iters), watch: {"form": f, "iterations": iters},
                    timer: gr.Timer(active=not all(r["state"] in ENDED for r in st["runs"]))}

        @status_line(status)
        def do_plan(exp, tk, prof, sd, nn, measuring):
            f = form(exp, tk, prof, sd, nn)
            plan = make_plan(f)
            est = lab.estimate_experiment(plan, measure=False)
            workspace.remember_view(VIEW, f)
            out = show_plan(plan, f, est, measuring=measuring)
            out[watch]["measure"] = bool(measuring)  # the next step measures this plan (an error measures nothing)
            out[status] = (f"Planned {plan_title(plan)}: {len(plan.runs)} runs."
                           + (" Measuring the step time…" if measuring else ""))
            return out

        @status_line(status)
        def do_measure(w, measuring, progress=gr.Progress()):
            if not measuring or not w.get("form") or not w.get("measure"):
                return {status: gr.skip()}  # (an empty dict would be read as one output value)
            plan = make_plan(w["form"])
            progress(0.1, desc="measuring the step time of each model here (10-60 s)")
            est = lab.estimate_experiment(plan, measure=True)
            out = show_plan(plan, w["form"], est)
            out[status] = f"Planned {plan_title(plan)}: {len(plan.runs)} runs, about " \
                          f"{lab.format_eta(est['wall_s'])} here."
            return out

        planned = plan_btn.click(do_plan, form_inputs + [measure], plan_outputs)
        planned.then(do_measure, [watch, measure], plan_outputs, show_progress_on=[estimate])

        @status_line(status)
        def do_start(exp, tk, prof, sd, nn, w, ex="local", progress=gr.Progress()):
            f = form(exp, tk, prof, sd, nn)
            plan = make_plan(f)
            before = lab.experiment_status(plan)["counts"].get("done", 0)
            lab.start_experiment(plan, progress_adapter(progress), executor=ex or "local")
            workspace.remember_view(VIEW, f)
            est = lab.estimate_experiment(plan, measure=False)
            out = show_plan(plan, f, est)
            if (w or {}).get("form") == f and w.get("iterations"):
                out[estimate] = gr.skip()  # keep the measured estimate of this plan
            new = len(plan.runs) - before
            out[status] = (f"Started {plan_title(plan)}: {new} run(s) queued or resumed"
                           + (f", {before} already done" if before else "")
                           + (". SLURM trains them as one job array" if ex == "slurm" else
                              ". The app trains them in the background") + "; the table refreshes by itself."
                           if new else f"Every run of {plan_title(plan)} is done already: press Report.")
            out[timer] = gr.Timer(active=bool(new))
            return out

        start_btn.click(do_start, form_inputs + [watch, executor], plan_outputs, show_progress_on=[status, overall])

        def on_timer(w):
            try:
                if not w.get("form"):
                    return {timer: gr.Timer(active=False)}
                plan = make_plan(w["form"])
                st = lab.experiment_status(plan)
            except UserError:
                return {timer: gr.Timer(active=False)}
            ended = all(r["state"] in ENDED for r in st["runs"])
            return {overall: overall_html(plan, st), runs: run_rows(plan, st, w.get("iterations")),
                    timer: gr.Timer(active=not ended)}

        timer.tick(on_timer, [watch], [overall, runs, timer], show_progress="hidden", queue=False)

        # ----- report -----------------------------------------------------------------------------------
        report_outputs = [status, shown, files, claims, table, plot, grid, paper, report_state]

        def show_report(report: dict, name: str | None) -> dict:
            if not report:
                return {}
            name = name if name in report else next(iter(report))
            got = report[name]
            headers, rows = results_table(got["results"])
            paths = got["paths"]
            return {shown: gr.update(choices=list(report), value=name),
                    files: [paths[f] for f in lab.REPORT_FILES if f in paths], claims: claims_html(report),
                    table: gr.update(value=rows, headers=headers), plot: _figure(got["results"]),
                    grid: paths.get("grid.png"), paper: paper_html(got["results"]), report_state: report}

        @status_line(status)
        def do_report(exp, tk, prof, sd, nn, current, progress=gr.Progress()):
            f = form(exp, tk, prof, sd, nn)
            plan = make_plan(f)
            st = lab.experiment_status(plan)
            done = st["counts"].get("done", 0)
            n_runs = len(st["runs"])
            if not done:
                if st["counts"].get("not queued", 0) == n_runs:
                    raise UserError(f"Nothing to report yet: no run of {', '.join(plan.experiments)} "
                                    f"({plan.task}, profile {plan.profile.name}) is in this workspace; press Start "
                                    "first.")
                raise UserError(f"Nothing to report yet: none of the {n_runs} runs has finished "
                                f"({', '.join(f'{c} {s}' for s, c in sorted(st['counts'].items()))}).")
            report = report_paths(lab.report_experiment(plan, progress_adapter(progress)))
            workspace.remember_view(VIEW, f)
            out = show_report(report, current)
            folder = shown_path(lab.experiment_dir(plan))
            out[status] = (f"Report of {plan_title(plan)} from {done} of {n_runs} finished runs"
                           + ("" if done == n_runs else " (the rest show as no results yet)")
                           + f", written to `{folder}`.")
            return out

        report_btn.click(do_report, form_inputs + [shown], report_outputs, show_progress_on=[status, claims])
        shown.input(lambda r, name: show_report(r, name) or {shown: gr.skip()}, [report_state, shown],
                    [shown, files, claims, table, plot, grid, paper, report_state])

        profile.change(profile_info, profile, profile_md)

        # ----- after a reload: the last plan, its status and its last report ----------------------------
        load_outputs = form_inputs + [profile_md] + plan_outputs + report_outputs[1:]

        @status_line(status)
        def on_load():
            f = reopened_form()
            if f is None:
                return {status: gr.skip()}
            out = {experiment: f["experiment"], task: f["task"], profile: f["profile"],
                   seeds: f.get("seeds") or "", n: "" if f.get("n") is None else str(f["n"]),
                   profile_md: profile_info(f["profile"])}
            plan = make_plan(form(f["experiment"], f["task"], f["profile"], f.get("seeds"), f.get("n")))
            f = form(f["experiment"], f["task"], f["profile"], f.get("seeds"), f.get("n"))
            out.update(show_plan(plan, f, lab.estimate_experiment(plan, measure=False)))
            report = report_paths(written_report(plan))
            out.update(show_report(report, None))
            st = lab.experiment_status(plan)
            if st["counts"].get("not queued", 0) < len(st["runs"]):
                out[status] = f"Reopened {plan_title(plan)} from `{shown_path(lab.experiment_dir(plan))}`."
            return out

    return {"load": on_load, "load_outputs": load_outputs}
