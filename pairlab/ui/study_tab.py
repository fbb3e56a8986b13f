"""User study tab: design and freeze a blind preference study, hand out its link, read Table 6 and export.

Thin: freezing is ``pairlab.study.plan.freeze`` on candidates from ``pairlab.study.sources``; the results are
``pairlab.study.export.study_results``; the participant page itself is served apart (``pairlab.study.server``).

Results load with the page and whenever the tab is opened (no button needed). Every handler reports to one status
line (``#st-status``): on an error the other outputs keep their last good content and no component is put in an
error state (handlers return updates instead of raising).
"""
from __future__ import annotations

import functools
import math
import sys
import time
import traceback

import gradio as gr

from pairlab import papers
import plotly.graph_objects as go

from .. import lab, papers, workspace
from ..errors import UserError
from .common import number, progress_adapter

STUDY_COLUMNS = ["study_id", "title", "state", "runs", "samples", "trials_per_participant", "participants", "finished", "votes"]
PAIR_COLUMNS = ["row", "column", "row_wins", "decisive", "rate", "ci_low", "ci_high", "p_value", "both_rate", "neither_rate", "votes"]
BT_COLUMNS = ["rank", "run", "score", "ci_low", "ci_high", "rank_low", "rank_high"]
PARTICIPANT_COLUMNS = ["participant", "code", "platform", "platform_participant", "votes", "trials", "finished", "consistency",
                       "catch_pass", "median_client_ms", "median_server_ms"]
NO_STUDY = "No study chosen yet: freeze one above, or choose one in the list."
NO_VOTES = "No votes yet: Table 6 fills in as participants answer (share the participant link)."


def to_status(n_outputs: int, status_index: int):
    """Wrap a handler so that any error becomes one sentence on the status line and every other output keeps its
    last good content (``gr.update()``); nothing is raised, so no component is left in an error state."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except UserError as exc:
                message = str(exc)
            except Exception as exc:  # noqa: BLE001 - keep serving; say it in one sentence
                traceback.print_exc(file=sys.stderr)
                message = f"Unexpected error ({type(exc).__name__}): {exc}"
            out = [gr.update() for _ in range(n_outputs)]
            out[status_index] = f"⚠️ {message}"
            return tuple(out) if n_outputs > 1 else out[0]

        return run

    return wrap


def _r(x, digits=3):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return round(x, digits) if isinstance(x, float) else x


def run_choices() -> list[tuple[str, str]]:
    """(short display name, run id) of every finished run: the dropdown shows the name, keeps the id."""
    return sorted(((r.display_name(), r.id) for r in lab.finished_runs()), key=lambda c: c[1])


def studies_table():
    rows = lab.list_studies()
    return [[r[c] for c in STUDY_COLUMNS] for r in rows], [r["study_id"] for r in rows]


def study_link(study_id: str) -> str:
    return lab.study_url(study_id)


def parse_labels(text: str, n: int) -> list[str] | None:
    labels = [t.strip() for t in (text or "").split(",") if t.strip()]
    if not labels:
        return None
    if len(labels) != n:
        raise UserError(f"Give one label per chosen run ({n} runs, {len(labels)} labels), separated by commas.")
    return labels


def parse_folders(text: str) -> dict[str, str]:
    out = {}
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        label, sep, folder = line.partition("=")
        if not sep or not label.strip() or not folder.strip():
            raise UserError("Write one 'label = folder' per line for the output folders.")
        out[label.strip()] = str(workspace.check_allowed(folder.strip()))
    return out


def make_design(title, task, question, a_left, a_right, a_both, a_neither, instructions, count, seed, picked,
                comparisons, per, repeats, catch) -> lab.StudyDesign:
    count, seed = number(count, "the number of samples", low=1), number(seed, "the seed", low=0, high=2**31 - 1)
    per, repeats = number(per, "the trials per participant", low=0), number(repeats, "the repeats", low=0)
    catch = number(catch, "the catch trials", low=0)
    try:
        return lab.StudyDesign(
            title=title, task=task, question=question, answers=(a_left, a_right, a_both, a_neither),
            instructions=instructions, sample_count=count, sample_seed=seed,
            samples=tuple(s.strip() for s in (picked or "").replace("\n", ",").split(",") if s.strip()),
            comparisons=tuple(comparisons or ()), trials_per_participant=per, repeats=repeats,
            catch_trials=catch, seed=seed).validate()
    except (TypeError, ValueError):
        raise UserError("Please fill every number field of the study with a whole number.")


def bt_figure(rows: list[dict]) -> go.Figure:
    fig = go.Figure()
    rows = list(reversed(rows))  # best on top
    if not rows:
        fig.update_layout(height=160, margin=dict(l=10, r=10, t=40, b=20), xaxis_visible=False, yaxis_visible=False,
                          annotations=[dict(text="No votes yet", showarrow=False, font=dict(size=16, color="#777"))])
        return fig
    have_ci = not math.isnan(rows[0]["ci_low"])
    fig.add_trace(go.Scatter(
        x=[r["score"] for r in rows], y=[f"{r['rank']}. {r['run']}" for r in rows], mode="markers",
        marker=dict(size=12, color="#2f6fdb"),
        error_x=dict(type="data", symmetric=False, array=[r["ci_high"] - r["score"] for r in rows],
                     arrayminus=[r["score"] - r["ci_low"] for r in rows]) if have_ci else None,
        hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.add_vline(x=0, line_dash="dot", line_color="#999")
    fig.update_layout(title="Bradley-Terry log-strength (95% bootstrap interval over participants)", height=120 + 45 * len(rows),
                      margin=dict(l=10, r=10, t=50, b=30), xaxis_title="log-strength (0 = average)")
    return fig


def _f(x, d=3):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def empty_results(message: str = NO_STUDY) -> tuple:
    """What the results show before there is anything to show: a sentence, not empty headers."""
    return (message, "", gr.update(value=[[message]], headers=["Table 6"]), [], bt_figure([]), [], [])


def results_view(study_id: str, drop_failed_catch: bool) -> tuple:
    """(summary, warnings, Table 6, pairs, BT figure, BT table, participants) of a study."""
    if not study_id:
        return empty_results()
    res = lab.study_results(study_id, min_catch_pass=1.0 if drop_failed_catch else None)
    agree = res["agreement"]
    alpha = (f"Krippendorff's α (nominal) **{_f(agree['alpha'])}** over {agree['shared_trials']} trials answered by "
             f"two or more participants" if agree["shared_trials"] else
             "Krippendorff's α: n/a (no trial was answered by two participants yet)")
    settings = res["settings"]
    hand_off = {"none": "no platform", "prolific": "Prolific", "mturk": "MTurk"}[settings["platform"]]
    summary = (f"**{res['title']}** (`{study_id}`, {res['state']}) — {res['n_participants']} participants, "
               f"{res['n_votes']} votes ({res['n_preference_votes']} counted for preferences)"
               + (f", {len(res['excluded'])} participants dropped for failed catch trials" if res["excluded"] else "")
               + f"  \nconsistency on repeated trials **{_f(res['consistency'])}** ({res['repeats']} repeats) · "
               f"catch-trial pass rate **{_f(res['catch_pass_rate'])}** ({res['catch_trials']} catch trials) · "
               f"median time per trial **{_f(res['median_client_ms'] / 1000, 2)} s** (client), "
               f"{_f(res['median_server_ms'] / 1000, 2)} s (server)  \n{alpha}  \n"
               f"participant link: {study_link(study_id)} · hand-off: {hand_off}"
               + (f", completion code `{settings['completion_code']}`" if settings["completion_code"] else ""))
    warnings = "\n".join(f"⚠️ {w}  " for w in res["warnings"])
    if not res["n_preference_votes"]:
        return (summary, warnings, gr.update(value=[[NO_VOTES]], headers=["Table 6"]), [], bt_figure([]), [],
                [[_r(p[c], 2) for c in PARTICIPANT_COLUMNS] for p in res["participants"]])
    matrix = res["matrix"]
    pairs = [[_r(p[c], 4 if c == "p_value" else 3) for c in PAIR_COLUMNS] for p in res["pairs"]]
    bt = [[_r(r[c]) for c in BT_COLUMNS] for r in res["bradley_terry"]]
    parts = [[_r(p[c], 2) for c in PARTICIPANT_COLUMNS] for p in res["participants"]]
    table = gr.update(value=matrix[1:], headers=matrix[0])
    return summary, warnings, table, pairs, bt_figure(res["bradley_terry"]), bt, parts


def build_tab():
    with gr.Tab("User study", id="study") as tab:
        gr.Markdown("A blind **task-completion preference study** (as in Table 6 of "
                    f"{papers.IMPLICIT_PAIRS}): participants see the source "
                    "image and two results (two runs, or one run and the source) and choose left, right, both or "
                    "neither. Freeze a study to get its participant link; the participant page is served apart from "
                    "the lab and shows nothing of the runs.")
        gr.Markdown("### Design")
        with gr.Row():
            with gr.Column(scale=1):
                runs = gr.Dropdown([], multiselect=True, label="Runs to compare (2 to 6 finished runs)", elem_id="st-runs")
                with gr.Row():
                    checkpoint = gr.Textbox(value="latest", label="checkpoint", scale=1)
                    refresh_runs = gr.Button("Refresh runs", scale=1)
                labels = gr.Textbox(label="Labels in the results, comma-separated (default: run names; never shown to participants)",
                                    elem_id="st-labels")
                with gr.Accordion("Or compare image folders instead of runs", open=False):
                    folders = gr.Textbox(lines=3, label="one 'label = folder of output images' per line", elem_id="st-folders")
                    source_dir = gr.Textbox(label="folder of the source images (same file names)", elem_id="st-source-dir")
                    truth_dir = gr.Textbox(label="folder of ground-truth images (optional, for catch trials)", elem_id="st-truth-dir")
                title = gr.Textbox(value="Eyeglasses removal study", label="Study title (lab only)", elem_id="st-title")
                task = gr.Radio(["eyeglasses", "smile"], value="eyeglasses", label="Task", elem_id="st-task")
                with gr.Row():
                    count = gr.Number(value=20, label="test samples", elem_id="st-count")
                    seed = gr.Number(value=0, label="seed", elem_id="st-seed")
                picked = gr.Textbox(label="or hand-picked sample names (comma-separated; overrides the count)", elem_id="st-picked")
                comparisons = gr.CheckboxGroup([("every pair of runs", "pairs"), ("each run against the source image", "vs_source")],
                                               value=["pairs", "vs_source"], label="Comparisons", elem_id="st-comparisons")
            with gr.Column(scale=1):
                question = gr.Textbox(value=lab.QUESTIONS["eyeglasses"], label="Question", elem_id="st-question")
                with gr.Row():
                    a_left = gr.Textbox(value=lab.DEFAULT_ANSWERS[0], label="left", min_width=80)
                    a_right = gr.Textbox(value=lab.DEFAULT_ANSWERS[1], label="right", min_width=80)
                    a_both = gr.Textbox(value=lab.DEFAULT_ANSWERS[2], label="both", min_width=80)
                    a_neither = gr.Textbox(value=lab.DEFAULT_ANSWERS[3], label="neither", min_width=80)
                instructions = gr.Textbox(value=lab.DEFAULT_INSTRUCTIONS, lines=4, label="Instructions")
                with gr.Row():
                    per = gr.Number(value=0, label="trials per participant (0 = all)", elem_id="st-per")
                    repeats = gr.Number(value=2, label="repeated trials", elem_id="st-repeats")
                    catch = gr.Number(value=2, label="catch trials", elem_id="st-catch")
                gr.Markdown("<small>Catch trials: the ground truth T(a) against the unchanged source when the truth "
                            "is known, else (eyeglasses) a run's output against the same output with drawn eyeglasses. "
                            "Repeats come back later with left and right swapped.</small>")
                freeze_btn = gr.Button("Freeze study", variant="primary", elem_id="st-freeze")
        status = gr.Markdown("", elem_id="st-status")

        gr.Markdown("### Results")
        studies = gr.Dataframe(headers=STUDY_COLUMNS, interactive=False, elem_id="st-studies")
        with gr.Row():
            chosen = gr.Dropdown([], label="Study", elem_id="st-chosen", scale=3)
            drop_failed = gr.Checkbox(False, label="drop participants who failed a catch trial", scale=2)
            show_btn = gr.Button("↻ Refresh results", scale=1, elem_id="st-show")
            close_btn = gr.Button("Close / reopen", scale=1, elem_id="st-close")
            export_btn = gr.Button("Export", scale=1, elem_id="st-export")
        with gr.Accordion("Preview a trial as a participant sees it", open=False, elem_id="st-preview-box"):
            with gr.Row():
                trial_no = gr.Number(value=1, label="trial (1 = first of the pool; catch trials come last)",
                                     elem_id="st-trial-no", scale=2)
                preview_btn = gr.Button("Preview", elem_id="st-preview-btn", scale=1)
            preview = gr.HTML("", elem_id="st-preview")

        with gr.Accordion("Crowdsourcing hand-off (Prolific / MTurk)", open=False, elem_id="st-handoff"):
            gr.Markdown("<small>Prolific: give the participant link as the study URL with "
                        "`?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}`; "
                        "at the end participants go to Prolific's completion page with the code below. MTurk: use the "
                        "link as an ExternalQuestion; workerId, assignmentId and hitId are stored, the code is shown "
                        "and the assignment posted to turkSubmitTo. The ids are exported with the votes.</small>")
            with gr.Row():
                platform = gr.Radio(["none", "prolific", "mturk"], value="none", label="platform", elem_id="st-platform")
                completion = gr.Textbox(label="completion code (letters, digits, _ and -)", elem_id="st-code")
                save_btn = gr.Button("Save hand-off", elem_id="st-save-handoff")

        summary = gr.Markdown(NO_STUDY, elem_id="st-summary")
        warnings = gr.Markdown("", elem_id="st-warnings")
        table6 = gr.Dataframe(value=[[NO_STUDY]], headers=["Table 6"],
                              label="Table 6: rate at which the row was preferred over the column (decisive votes) [Wilson 95%]",
                              interactive=False, elem_id="st-table6")
        with gr.Row():
            bt_plot = gr.Plot(label="Bradley-Terry ranking", elem_id="st-bt")
            bt_table = gr.Dataframe(headers=BT_COLUMNS, interactive=False, label="Bradley-Terry", elem_id="st-bt-table")
        pairs = gr.Dataframe(headers=PAIR_COLUMNS, interactive=False, elem_id="st-pairs",
                             label="Every ordered pair: wins / decisive, rate, Wilson 95%, exact binomial p vs 0.5, both / neither shares")
        participants = gr.Dataframe(headers=PARTICIPANT_COLUMNS, interactive=False, label="Participants", elem_id="st-participants")
        files = gr.File(label="Exports", file_count="multiple", interactive=False, elem_id="st-files")

        def on_task(t):
            return lab.QUESTIONS.get(t, "")

        task.change(on_task, task, question)

        result_outputs = [summary, warnings, table6, pairs, bt_plot, bt_table, participants]

        def settings_of(study_id):
            if not study_id:
                return gr.update(), gr.update()
            s = lab.study_settings(study_id)
            return s["platform"], s["completion_code"] or ""

        refresh_outputs = [runs, studies, chosen, *result_outputs, platform, completion, status]

        def refresh(current=None, drop=False):
            rows, ids = studies_table()
            pick = current if current in ids else (ids[0] if ids else None)
            return (gr.update(choices=run_choices()), rows, gr.update(choices=ids, value=pick),
                    *results_view(pick, drop), *settings_of(pick), "")

        @to_status(len(refresh_outputs), len(refresh_outputs) - 1)
        def do_refresh():
            """The page load: studies, runs and the newest study's results."""
            return refresh()

        @to_status(len(refresh_outputs), len(refresh_outputs) - 1)
        def do_refresh_keep(current, drop):
            """Opening the tab or ↻: the same, keeping the chosen study."""
            return refresh(current, drop)

        tab.select(do_refresh_keep, [chosen, drop_failed], refresh_outputs)
        refresh_runs.click(do_refresh_keep, [chosen, drop_failed], refresh_outputs)
        show_btn.click(do_refresh_keep, [chosen, drop_failed], refresh_outputs)

        show_outputs = [*result_outputs, platform, completion, status]

        @to_status(len(show_outputs), len(show_outputs) - 1)
        def do_show(study_id, drop):
            return (*results_view(study_id, drop), *settings_of(study_id), "")

        chosen.input(do_show, [chosen, drop_failed], show_outputs)
        drop_failed.input(do_show, [chosen, drop_failed], show_outputs)

        freeze_outputs = [status, studies, chosen, *result_outputs]

        @to_status(len(freeze_outputs), 0)
        def do_freeze(run_names, label_text, ckpt, folder_text, src_dir, tr_dir, *design_args, progress=gr.Progress()):
            design = make_design(*design_args)
            report = progress_adapter(progress)
            if folder_text and folder_text.strip():
                if not src_dir or not src_dir.strip():
                    raise UserError("Give the folder of the source images too.")
                inputs = lab.candidates_from_folders(
                    parse_folders(folder_text), workspace.check_allowed(src_dir),
                    workspace.check_allowed(tr_dir) if tr_dir and tr_dir.strip() else None)
            else:
                run_names = run_names or []
                if not lab.MIN_CANDIDATES <= len(run_names) <= lab.MAX_CANDIDATES:
                    raise UserError("Choose 2 to 6 finished runs (or give image folders).")
                dirs = [workspace.sub("runs") / n for n in run_names]
                inputs = lab.candidates_from_runs(dirs, parse_labels(label_text, len(dirs)), checkpoint=ckpt or "latest",
                                                  progress=progress_adapter(progress, 0, 0.5))
                report = progress_adapter(progress, 0.5, 0.5)
            sid = lab.freeze_study(design, inputs, progress=report)
            p = lab.load_plan(sid)
            rows, ids = studies_table()
            link = study_link(sid)
            msg = (f"Frozen study **{sid}** ({len(p.data['samples'])} samples, {p.data['pool_size']} distinct trials, "
                   f"{p.data['trials_per_participant']} + {design.repeats} repeats + {len(p.data['catch'][:design.catch_trials])} "
                   f"catch per participant; catch trials: {p.data['catch_mode'] or 'none'}).  \n"
                   f"Participant link: [{link}]({link})")
            return (msg, rows, gr.update(choices=ids, value=sid), *results_view(sid, False))

        design_inputs = [title, task, question, a_left, a_right, a_both, a_neither, instructions, count, seed, picked,
                         comparisons, per, repeats, catch]
        freeze_btn.click(do_freeze, [runs, labels, checkpoint, folders, source_dir, truth_dir] + design_inputs,
                         freeze_outputs)

        close_outputs = [studies, status, summary]

        @to_status(len(close_outputs), 1)
        def do_close(study_id, drop):
            if not study_id:
                raise UserError("Choose a study first.")
            new = lab.set_study_state(study_id, "open" if lab.study_state(study_id) == "closed" else "closed")
            rows, _ = studies_table()
            return (rows, f"Study **{study_id}** is now **{new}**" + (" (its link takes no more answers)." if new == "closed" else "."),
                    results_view(study_id, drop)[0])

        close_btn.click(do_close, [chosen, drop_failed], close_outputs)

        export_outputs = [files, status]

        @to_status(len(export_outputs), 1)
        def do_export(study_id, drop):
            if not study_id:
                raise UserError("Choose a study first.")
            out = workspace.sub("cache") / "study-exports" / f"{study_id}-{time.strftime('%Y%m%d-%H%M%S')}"
            paths = lab.export_study(study_id, out, min_catch_pass=1.0 if drop else None)
            return [str(p) for p in paths.values()], f"Exported study **{study_id}** to `{out}`."

        export_btn.click(do_export, [chosen, drop_failed], export_outputs)

        preview_outputs = [preview, status]

        @to_status(len(preview_outputs), 1)
        def do_preview(study_id, number_):
            if not study_id:
                raise UserError("Choose a study first.")
            count_ = lab.study_trial_count(study_id)
            k = number(number_, "the trial to preview", low=1, high=max(count_, 1))
            p = lab.trial_preview(study_id, k - 1)
            return lab.trial_preview_html(p), f"Trial {k} of {p['count']} of study **{study_id}**, as a participant sees it."

        preview_btn.click(do_preview, [chosen, trial_no], preview_outputs)

        handoff_outputs = [status, summary, platform, completion]

        @to_status(len(handoff_outputs), 0)
        def do_save_handoff(study_id, platform_, code, drop):
            if not study_id:
                raise UserError("Choose a study first.")
            s = lab.set_study_settings(study_id, platform_, code)
            return (f"Study **{study_id}** hands participants off to **{s['platform']}**"
                    + (f" with completion code `{s['completion_code']}`." if s["completion_code"] else "."),
                    results_view(study_id, drop)[0], s["platform"], s["completion_code"] or "")

        save_btn.click(do_save_handoff, [chosen, platform, completion, drop_failed], handoff_outputs)
    return {"refresh": do_refresh, "refresh_outputs": refresh_outputs, "studies": studies, "chosen": chosen}
