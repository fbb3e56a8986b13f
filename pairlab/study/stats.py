"""The statistics of a study: Table 6 with intervals and tests, a Bradley-Terry ranking, agreement, consistency, catch trials.

Every function takes the vote rows of ``VoteStore.votes`` (dicts with left_cand, right_cand, choice, kind,
repeat_of, correct_side, participant_id, trial_id, client_ms, server_ms) and is pure. The statistics themselves come
from well-kept libraries, not from code of ours:

Table 6 (paper 000): for every ordered pair (row run i, column run j), the rate at which i was preferred over j
among the *decisive* votes (i or j chosen) on trials showing i and j, whichever side each was on; "both" and
"neither" are reported beside it as shares of all votes on the pair. The rate has a Wilson 95% score interval and an
exact two-sided binomial test against 0.5, both from ``scipy.stats.binomtest`` (``.proportion_ci(method="wilson")``,
``.pvalue``). Catch trials never count; a repeated trial counts once (its first showing), the repeat only measures
consistency.

Bradley-Terry: P(i beats j) = p_i / (p_i + p_j), fitted to the win matrix of the decisive votes by ``choix``'s
iterative Luce spectral ranking (``choix.ilsr_pairwise_dense``, the maximum-likelihood estimate). Regularisation:
``prior`` (0.1 by default) is choix's ``alpha``, added to every transition rate of the LSR Markov chain; it keeps
the scores finite when a run never wins and is negligible with real data (``prior=0`` is the plain MLE). Scores are
log-strengths centred on zero. 95% intervals (percentile) and rank intervals come from ``scipy.stats.bootstrap``
resampling *participants* with replacement, so they widen when few people answered.

Agreement: Krippendorff's alpha (``krippendorff.alpha``, nominal level) over the participants' outcomes (the run
chosen, or both / neither) on trials answered by two or more participants; 1 = perfect agreement, 0 = chance.

Consistency: for each repeated trial, whether the participant gave the same outcome both times (the same run,
or both/neither), left and right being swapped in the repeat. Catch pass rate: the share of catch trials
answered with the obvious side.

Warnings (``analyze(...)["warnings"]``): intervals resting on fewer than ``MIN_PARTICIPANTS`` participants, and a
Bradley-Terry interval that is degenerate (zero width, or missing although there are votes).
"""
from __future__ import annotations

import math
import warnings as _warnings
from collections import defaultdict

import numpy as np

#: below this many participants, the results say their intervals rest on too few people
MIN_PARTICIPANTS = 5


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson score 95% interval of k successes in n trials (``scipy.stats.binomtest(...).proportion_ci``)."""
    if n <= 0:
        return (math.nan, math.nan)
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return (max(0.0, float(ci.low)), min(1.0, float(ci.high)))


def binom_p(k: int, n: int) -> float:
    """Exact two-sided binomial test of k in n against 0.5."""
    if n <= 0:
        return math.nan
    from scipy.stats import binomtest

    return float(binomtest(int(k), int(n), 0.5).pvalue)


def outcome(vote: dict) -> str:
    """The run chosen ('left'/'right' mapped to the candidate id) or 'both' / 'neither'."""
    c = vote["choice"]
    if c == "left":
        return vote["left_cand"]
    if c == "right":
        return vote["right_cand"]
    return c


def preference_votes(votes: list[dict], include_repeats: bool = False) -> list[dict]:
    return [v for v in votes if v.get("kind") != "catch" and (include_repeats or v.get("repeat_of") is None)]


def pair_counts(votes: list[dict], include_repeats: bool = False) -> dict:
    """{(i, j): {wins, losses, both, neither}} for every ordered pair shown together (i's point of view)."""
    counts: dict = defaultdict(lambda: {"wins": 0, "losses": 0, "both": 0, "neither": 0})
    for v in preference_votes(votes, include_repeats):
        a, b = v["left_cand"], v["right_cand"]
        o = outcome(v)
        for i, j in ((a, b), (b, a)):
            c = counts[(i, j)]
            if o == i:
                c["wins"] += 1
            elif o == j:
                c["losses"] += 1
            else:
                c[o] += 1
    return dict(counts)


def preference_table(votes: list[dict], ids: list[str], labels: dict, include_repeats: bool = False) -> list[dict]:
    """One row per ordered pair (i, j), i != j, both in ``ids``: Table 6's cell with its statistics."""
    counts = pair_counts(votes, include_repeats)
    rows = []
    for i in ids:
        for j in ids:
            if i == j:
                continue
            c = counts.get((i, j), {"wins": 0, "losses": 0, "both": 0, "neither": 0})
            decisive = c["wins"] + c["losses"]
            total = decisive + c["both"] + c["neither"]
            lo, hi = wilson(c["wins"], decisive)
            rows.append({"row": labels.get(i, i), "column": labels.get(j, j), "row_id": i, "column_id": j,
                         "votes": total, "decisive": decisive, "row_wins": c["wins"], "column_wins": c["losses"],
                         "rate": c["wins"] / decisive if decisive else math.nan, "ci_low": lo, "ci_high": hi,
                         "p_value": binom_p(c["wins"], decisive),
                         "both": c["both"], "neither": c["neither"],
                         "both_rate": c["both"] / total if total else math.nan,
                         "neither_rate": c["neither"] / total if total else math.nan})
    return rows


def table6_matrix(rows: list[dict], ids: list[str], labels: dict, digits: int = 3) -> list[list[str]]:
    """Table 6 as in the paper: rows preferred, columns rejected, cells = rate [95% CI]; '-' on the diagonal."""
    cell = {(r["row_id"], r["column_id"]): r for r in rows}
    out = [["preferred \\ rejected"] + [labels.get(j, j) for j in ids]]
    for i in ids:
        line = [labels.get(i, i)]
        for j in ids:
            r = cell.get((i, j))
            if i == j:
                line.append("-")
            elif r is None or not r["decisive"]:
                line.append("n/a")
            else:
                line.append(f"{r['rate']:.{digits}f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]")
        out.append(line)
    return out


# ------------------------------------------------------------------------------------------ Bradley-Terry
def win_matrix(votes: list[dict], ids: list[str], include_repeats: bool = False) -> np.ndarray:
    """W[i, j] = decisive votes where ids[i] was chosen over ids[j]."""
    index = {c: k for k, c in enumerate(ids)}
    w = np.zeros((len(ids), len(ids)))
    for v in preference_votes(votes, include_repeats):
        a, b, o = v["left_cand"], v["right_cand"], outcome(v)
        if a not in index or b not in index or o not in (a, b):
            continue
        loser = b if o == a else a
        w[index[o], index[loser]] += 1
    return w


def bradley_terry(wins: np.ndarray, prior: float = 0.1, initial=None) -> np.ndarray:
    """Log-strengths (centred on 0) of the K x K win matrix by ``choix.ilsr_pairwise_dense`` (regularised by
    choix's ``alpha`` = ``prior``); ``initial`` warm-starts the iteration (the bootstrap starts from the fit)."""
    import choix

    w = np.asarray(wins, dtype=float)
    w = w * (1 - np.eye(w.shape[0]))
    if w.shape[0] < 2:
        return np.zeros(w.shape[0])
    try:
        return np.asarray(choix.ilsr_pairwise_dense(w, alpha=float(prior), initial_params=initial,
                                                    max_iter=500, tol=1e-10), dtype=float)
    except (RuntimeError, ValueError):
        # no unique maximum (a run that never wins with prior 0, or runs never compared): say so with NaN
        return np.full(w.shape[0], math.nan)


def _ranks(scores: np.ndarray) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=int)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def bradley_terry_ranking(votes: list[dict], ids: list[str], labels: dict, bootstrap: int = 1000, seed: int = 0,
                          prior: float = 0.1) -> list[dict]:
    """Runs ranked by Bradley-Terry score, with 95% intervals from ``scipy.stats.bootstrap`` over participants."""
    scores = bradley_terry(win_matrix(votes, ids), prior)
    by_p: dict = defaultdict(list)
    for v in votes:
        by_p[v["participant_id"]].append(v)
    mats = np.stack([win_matrix(vs, ids) for vs in by_p.values()]) if by_p else np.zeros((0, len(ids), len(ids)))
    ci = rank_ci = None
    if len(mats) >= 2 and bootstrap > 0 and np.isfinite(scores).all():
        from scipy.stats import bootstrap as scipy_bootstrap

        k = len(ids)

        def statistic(picked):
            s = bradley_terry(mats[picked.astype(int)].sum(axis=0), prior, initial=scores)
            return np.concatenate([s, _ranks(s) if np.isfinite(s).all() else np.full(k, math.nan)])

        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")   # scipy warns on a degenerate resampling distribution; we flag it ourselves
            res = scipy_bootstrap((np.arange(len(mats), dtype=float),), statistic, vectorized=False,
                                  n_resamples=int(bootstrap), confidence_level=0.95, method="percentile",
                                  rng=np.random.default_rng(seed))
        dist = res.bootstrap_distribution
        ci = (np.asarray(res.confidence_interval.low)[:k], np.asarray(res.confidence_interval.high)[:k])
        rank_ci = (np.nanpercentile(dist[k:], 2.5, axis=-1), np.nanpercentile(dist[k:], 97.5, axis=-1))
    ranks = _ranks(np.nan_to_num(scores, nan=0.0))
    rows = []
    strengths = np.exp(scores) / np.exp(scores).sum()
    for i, c in enumerate(ids):
        row = {"run": labels.get(c, c), "id": c, "rank": int(ranks[i]), "score": float(scores[i]),
               "strength": float(strengths[i]), "ci_low": math.nan, "ci_high": math.nan,
               "rank_low": math.nan, "rank_high": math.nan}
        if ci is not None:
            row.update(ci_low=float(ci[0][i]), ci_high=float(ci[1][i]),
                       rank_low=int(math.floor(rank_ci[0][i])), rank_high=int(math.ceil(rank_ci[1][i])))
        rows.append(row)
    rows.sort(key=lambda r: r["rank"])
    return rows


# ------------------------------------------------------------------------------------------ agreement
def agreement(votes: list[dict]) -> dict:
    """Krippendorff's alpha (nominal) over participants' outcomes on trials answered by two or more participants.

    Units are the plan's trials (``trial_id``; first showings only, catch trials left out), raters the
    participants, values the outcome (the run chosen, 'both' or 'neither': the same whichever side it was on).
    Returns {alpha, shared_trials, raters, values}; alpha is NaN when no trial was answered twice or every
    answer is the same (the package then has nothing to compare).
    """
    by_trial: dict = defaultdict(dict)
    for v in preference_votes(votes):
        if v.get("trial_id") is not None:
            by_trial[v["trial_id"]][v["participant_id"]] = outcome(v)
    shared = {t: r for t, r in by_trial.items() if len(r) >= 2}
    raters = sorted({p for r in shared.values() for p in r})
    values = sorted({o for r in shared.values() for o in r.values()})
    out = {"alpha": math.nan, "shared_trials": len(shared), "raters": len(raters),
           "values": sum(len(r) for r in shared.values())}
    if len(values) < 2:
        return out
    import krippendorff

    code = {o: k for k, o in enumerate(values)}
    units = sorted(shared)
    data = np.full((len(raters), len(units)), np.nan)
    row = {p: k for k, p in enumerate(raters)}
    for j, t in enumerate(units):
        for p, o in shared[t].items():
            data[row[p], j] = code[o]
    out["alpha"] = float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    return out


# ------------------------------------------------------------------------------------------ participants
def consistency(votes: list[dict]) -> dict:
    """participant -> (agreeing repeats, repeats) over the repeated trials."""
    first = {(v["participant_id"], v["position"]): v for v in votes}
    out: dict = defaultdict(lambda: [0, 0])
    for v in votes:
        if v.get("repeat_of") is None or v.get("kind") == "catch":
            continue
        orig = first.get((v["participant_id"], v["repeat_of"]))
        if orig is None:
            continue
        out[v["participant_id"]][1] += 1
        out[v["participant_id"]][0] += int(outcome(orig) == outcome(v))
    return {p: tuple(c) for p, c in out.items()}


def catch_results(votes: list[dict]) -> dict:
    """participant -> (passed, catch trials)."""
    out: dict = defaultdict(lambda: [0, 0])
    for v in votes:
        if v.get("kind") != "catch":
            continue
        out[v["participant_id"]][1] += 1
        out[v["participant_id"]][0] += int(v["choice"] == v.get("correct_side"))
    return {p: tuple(c) for p, c in out.items()}


def _median(values) -> float:
    vals = [float(x) for x in values if x is not None]
    return float(np.median(vals)) if vals else math.nan


def participant_rows(votes: list[dict], participants: list[dict] | None = None) -> list[dict]:
    cons, catch = consistency(votes), catch_results(votes)
    by_p: dict = defaultdict(list)
    for v in votes:
        by_p[v["participant_id"]].append(v)
    known = {p["participant_id"]: p for p in (participants or [])}
    ids = list(known) + [p for p in by_p if p not in known]
    rows = []
    for pid in ids:
        vs, p = by_p.get(pid, []), known.get(pid, {})
        ca, cn = cons.get(pid, (0, 0))
        ka, kn = catch.get(pid, (0, 0))
        rows.append({"participant": pid, "code": p.get("code") or "", "platform": p.get("platform") or "",
                     "platform_participant": p.get("platform_participant") or "",
                     "platform_study": p.get("platform_study") or "", "platform_session": p.get("platform_session") or "",
                     "votes": len(vs), "trials": p.get("n_trials", len(vs)),
                     "finished": bool(p.get("finished")), "consistency": ca / cn if cn else math.nan, "repeats": cn,
                     "catch_pass": ka / kn if kn else math.nan, "catch_trials": kn,
                     "median_client_ms": _median(v.get("client_ms") for v in vs),
                     "median_server_ms": _median(v.get("server_ms") for v in vs)})
    return rows


# ------------------------------------------------------------------------------------------ everything
def result_warnings(n_participants: int, n_preference_votes: int, ranking: list[dict], bootstrap: int) -> list[str]:
    """Plain sentences on what the intervals cannot carry: too few participants, a degenerate Bradley-Terry interval."""
    out = []
    if n_preference_votes == 0:
        return out
    if n_participants < MIN_PARTICIPANTS:
        out.append(f"Only {n_participants} participant{'s' if n_participants != 1 else ''} answered: the intervals "
                   f"rest on too few people (at least {MIN_PARTICIPANTS} are needed to read them); the Wilson "
                   "intervals treat every vote as independent, and the bootstrap over participants has only "
                   f"{math.comb(2 * n_participants - 1, n_participants) if n_participants else 0} distinct resamples.")
    if bootstrap > 0:
        widths = [r["ci_high"] - r["ci_low"] for r in ranking]
        if any(math.isnan(w) for w in widths):
            out.append("The Bradley-Terry interval is missing: it needs votes from two or more participants and "
                       "every run compared at least once.")
        elif any(w < 1e-9 for w in widths):
            out.append("The Bradley-Terry interval is degenerate (zero width): every resample of the participants "
                       "gives the same scores, so it says nothing about the uncertainty.")
    return out


def analyze(votes: list[dict], ids: list[str], labels: dict, participants: list[dict] | None = None,
            bootstrap: int = 1000, seed: int = 0, min_catch_pass: float | None = None,
            include_repeats: bool = False) -> dict:
    """All results of a study. ``min_catch_pass`` drops participants whose catch pass rate is below it."""
    prow = participant_rows(votes, participants)
    excluded = []
    if min_catch_pass is not None:
        excluded = [r["participant"] for r in prow if r["catch_trials"] and r["catch_pass"] < min_catch_pass]
        votes = [v for v in votes if v["participant_id"] not in set(excluded)]
    pairs = preference_table(votes, ids, labels, include_repeats)
    cons = consistency(votes)
    catch = catch_results(votes)
    agree, reps = sum(c[0] for c in cons.values()), sum(c[1] for c in cons.values())
    passed, catches = sum(c[0] for c in catch.values()), sum(c[1] for c in catch.values())
    ranking = bradley_terry_ranking(votes, ids, labels, bootstrap, seed)
    n_participants = len({v["participant_id"] for v in votes})
    return {
        "ids": ids, "labels": labels, "pairs": pairs, "matrix": table6_matrix(pairs, ids, labels),
        "bradley_terry": ranking, "agreement": agreement(votes),
        "warnings": result_warnings(n_participants, len(preference_votes(votes, include_repeats)), ranking,
                                    bootstrap),
        "participants": prow, "excluded": excluded,
        "n_participants": n_participants, "n_votes": len(votes),
        "n_preference_votes": len(preference_votes(votes, include_repeats)),
        "consistency": agree / reps if reps else math.nan, "repeats": reps,
        "catch_pass_rate": passed / catches if catches else math.nan, "catch_trials": catches,
        "median_client_ms": _median(v.get("client_ms") for v in votes),
        "median_server_ms": _median(v.get("server_ms") for v in votes),
    }
