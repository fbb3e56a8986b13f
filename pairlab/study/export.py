"""Results of a frozen study from its votes, and their export (CSV, LaTeX, JSON).

``study_results(study_id)`` runs ``stats.analyze`` on the stored votes with the plan's run labels;
``export_study(study_id, out_dir)`` writes:

    votes.csv           every vote: participant (and their Prolific / MTurk ids), trial, what was shown left and
                        right (run label and opaque image), the choice, the chosen run, response times, time stamp
    table6.csv          Table 6: rows preferred, columns rejected, cells "rate [95% CI]"
    table6.tex          the same as a LaTeX table (booktabs)
    pairs.csv           every ordered pair with counts, rate, Wilson interval, binomial p, both / neither rates
    bradley_terry.csv   the ranking with bootstrap intervals and each run's full reference (folder, checkpoint)
    participants.csv    per participant: platform ids, votes, consistency on repeats, catch pass rate, median times
    summary.json        everything above in one file
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path

from .plan import SOURCE_ID, load_plan
from .stats import analyze
from .store import VoteStore

FILES = ("votes.csv", "table6.csv", "table6.tex", "pairs.csv", "bradley_terry.csv", "participants.csv", "summary.json")


def study_results(study_id: str, root=None, bootstrap: int = 1000, seed: int = 0,
                  min_catch_pass: float | None = None) -> dict:
    plan = load_plan(study_id, root)
    store = VoteStore.open(root)
    labels = plan.labels
    ids = [c["id"] for c in plan.data["candidates"]] + ([SOURCE_ID] if SOURCE_ID in labels else [])
    votes = store.votes(study_id)
    res = analyze(votes, ids, labels, store.participants(study_id), bootstrap=bootstrap, seed=seed,
                  min_catch_pass=min_catch_pass)
    refs = {c["id"]: c.get("ref", "") for c in plan.data["candidates"]}
    for row in res["bradley_terry"]:
        row["ref"] = refs.get(row["id"], "")
    res.update(study_id=study_id, title=plan.data["title"], question=plan.data["design"]["question"],
               state=store.counts(study_id)["state"], votes=votes, settings=store.settings(study_id),
               refs=refs)
    return res


def _num(x, digits=4):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return round(x, digits) if isinstance(x, float) else x


def _write_csv(path: Path, header: list[str], rows) -> None:
    from ..workspace import atomic_file

    with atomic_file(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow([_num(r.get(h)) for h in header] if isinstance(r, dict) else [_num(v) for v in r])


def _tex(text: str) -> str:
    out = str(text).replace("\\", "\0")
    for a, b in (("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"), ("{", r"\{"), ("}", r"\}"),
                 ("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}")):
        out = out.replace(a, b)
    return out.replace("\0", r"\textbackslash{}")


def latex_table(res: dict) -> str:
    ids, labels = res["ids"], res["labels"]
    cell = {(r["row_id"], r["column_id"]): r for r in res["pairs"]}
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "c" * len(ids) + "}", r"\toprule",
             "Preferred $\\backslash$ Rejected & " + " & ".join(_tex(labels[j]) for j in ids) + r" \\", r"\midrule"]
    for i in ids:
        row = [_tex(labels[i])]
        for j in ids:
            r = cell.get((i, j))
            if i == j:
                row.append("--")
            elif r is None or not r["decisive"]:
                row.append("n/a")
            else:
                star = "$^{*}$" if r["p_value"] < 0.05 else ""
                row.append(f"{r['rate']:.3f}{star} {{\\scriptsize [{r['ci_low']:.2f}, {r['ci_high']:.2f}]}}")
        lines.append(" & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}",
              f"\\caption{{{_tex(res.get('question', 'Preference'))} Rate at which the row was preferred over the "
              f"column among decisive votes, with Wilson 95\\% intervals; $^{{*}}$ two-sided binomial test against 0.5, "
              f"$p<0.05$. {res['n_participants']} participants, {res['n_preference_votes']} votes.}}",
              r"\end{table}", ""]
    return "\n".join(lines)


def vote_rows(res: dict) -> list[dict]:
    labels = res["labels"]
    out = []
    for v in res["votes"]:
        chosen = v["left_cand"] if v["choice"] == "left" else v["right_cand"] if v["choice"] == "right" else v["choice"]
        out.append({
            "participant": v["participant_id"], "participant_code": v.get("participant_code") or "",
            "platform": v.get("platform") or "", "platform_participant": v.get("platform_participant") or "",
            "platform_study": v.get("platform_study") or "", "platform_session": v.get("platform_session") or "",
            "position": v["position"], "trial_id": v["trial_id"], "kind": v["kind"], "sample": v["sample"],
            "left_run": labels.get(v["left_cand"], v["left_cand"]), "right_run": labels.get(v["right_cand"], v["right_cand"]),
            "left_image": v["left_media"], "right_image": v["right_media"], "choice": v["choice"],
            "chosen": labels.get(chosen, chosen), "correct_side": v.get("correct_side") or "",
            "repeat_of": v["repeat_of"] if v["repeat_of"] is not None else "",
            "client_ms": v["client_ms"], "server_ms": v["server_ms"],
            "time": dt.datetime.fromtimestamp(v["created"], dt.timezone.utc).isoformat(timespec="milliseconds"),
        })
    return out


def export_study(study_id: str, out_dir, root=None, bootstrap: int = 1000, seed: int = 0,
                 min_catch_pass: float | None = None) -> dict[str, Path]:
    """Write the raw votes and the tables of ``study_id`` into ``out_dir``; returns {file name: path}."""
    res = study_results(study_id, root, bootstrap, seed, min_catch_pass)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = vote_rows(res)
    header = ["participant", "participant_code", "platform", "platform_participant", "platform_study", "platform_session",
              "position", "trial_id", "kind", "sample", "left_run", "right_run",
              "left_image", "right_image", "choice", "chosen", "correct_side", "repeat_of", "client_ms", "server_ms", "time"]
    paths = {name: out / name for name in FILES}
    _write_csv(paths["votes.csv"], header, rows)
    matrix = res["matrix"]
    _write_csv(paths["table6.csv"], matrix[0], matrix[1:])
    paths["table6.tex"].write_text(latex_table(res))
    pair_header = ["row", "column", "votes", "decisive", "row_wins", "column_wins", "rate", "ci_low", "ci_high",
                   "p_value", "both", "neither", "both_rate", "neither_rate"]
    _write_csv(paths["pairs.csv"], pair_header, res["pairs"])
    _write_csv(paths["bradley_terry.csv"], ["rank", "run", "score", "ci_low", "ci_high", "strength", "rank_low", "rank_high", "ref"],
               res["bradley_terry"])
    _write_csv(paths["participants.csv"], ["participant", "code", "platform", "platform_participant", "platform_study",
                                           "platform_session", "votes", "trials", "finished", "consistency", "repeats",
                                           "catch_pass", "catch_trials", "median_client_ms", "median_server_ms"],
               res["participants"])
    summary = {k: v for k, v in res.items() if k != "votes"}

    def clean(x):
        if isinstance(x, float) and math.isnan(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    paths["summary.json"].write_text(json.dumps(clean(summary), indent=1))
    return paths
