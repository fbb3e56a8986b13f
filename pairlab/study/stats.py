"""The statistics of a study: Table 6 with intervals and tests, a Bradley-Terry ranking, consistency, catch trials.

Every function takes the vote rows of ``VoteStore.votes`` (dicts with left_cand, right_cand, choice, kind,
repeat_of, correct_side, participant_id, client_ms, server_ms) and is pure.

Table 6 (paper 000): for every ordered pair (row run i, column run j), the rate at which i was preferred over j
among the *decisive* votes (i or j chosen) on trials showing i and j, whichever side each was on; "both" and
"neither" are reported beside it as shares of all votes on the pair. The rate has a Wilson 95% interval and an
exact two-sided binomial test against 0.5 (``scipy.stats.binomtest``). Catch trials never count; a repeated
trial counts once (its first showing), the repeat only measures consistency.

Bradley-Terry: P(i beats j) = p_i / (p_i + p_j), fitted to the decisive votes by Hunter's (2004) MM algorithm
with ``prior`` pseudo-wins each way on every pair (keeps scores finite when a run never wins; 0.1 by default,
negligible with real data). Scores are log-strengths centred on zero; 95% intervals and rank intervals come from
a bootstrap that resamples participants with replacement.

Consistency: for each repeated trial, whether the participant gave the same outcome both times (the same run,
or both/neither), left and right being swapped in the repeat. Catch pass rate: the share of catch trials
answered with the obvious side.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials."""
    if n <= 0:
        return (math.nan, math.nan)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


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


def bradley_terry(wins: np.ndarray, prior: float = 0.1, tol: float = 1e-9, max_iter: int = 20_000) -> np.ndarray:
    """Log-strengths (centred on 0) by Hunter's MM algorithm; ``prior`` pseudo-wins each way on every pair.

    ``wins`` is K x K, or a batch B x K x K (the bootstrap fits all its resamples at once).
    """
    w = np.asarray(wins, dtype=float)
    k = w.shape[-1]
    w = w + prior * (1 - np.eye(k))
    n = w + np.swapaxes(w, -1, -2)
    total_wins = w.sum(axis=-1)
    logp = np.zeros(w.shape[:-1])
    for _ in range(max_iter):
        p = np.exp(logp)
        denom = (n / (p[..., :, None] + p[..., None, :])).sum(axis=-1)
        new = np.log(np.maximum(total_wins, 1e-300)) - np.log(np.maximum(denom, 1e-300))
        new -= new.mean(axis=-1, keepdims=True)
        done = np.max(np.abs(new - logp)) < tol
        logp = new
        if done:
            break
    return logp


def _ranks(scores: np.ndarray) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=int)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def bradley_terry_ranking(votes: list[dict], ids: list[str], labels: dict, bootstrap: int = 1000, seed: int = 0,
                          prior: float = 0.1) -> list[dict]:
    """Runs ranked by Bradley-Terry score, with bootstrap (participants resampled) 95% intervals."""
    scores = bradley_terry(win_matrix(votes, ids), prior)
    by_p: dict = defaultdict(list)
    for v in votes:
        by_p[v["participant_id"]].append(v)
    mats = [win_matrix(vs, ids) for vs in by_p.values()]
    boot_scores = boot_ranks = None
    if mats and bootstrap > 0:
        rng = np.random.default_rng(seed)
        stack = np.stack(mats)
        picks = rng.integers(0, len(mats), (bootstrap, len(mats)))
        counts = np.zeros((bootstrap, len(mats)))
        np.add.at(counts, (np.repeat(np.arange(bootstrap), len(mats)), picks.ravel()), 1)
        resampled = np.einsum("bp,pij->bij", counts, stack)
        boot_scores = bradley_terry(resampled, prior, tol=1e-7)
        boot_ranks = np.stack([_ranks(s) for s in boot_scores])
    ranks = _ranks(scores)
    rows = []
    strengths = np.exp(scores) / np.exp(scores).sum()
    for k, c in enumerate(ids):
        row = {"run": labels.get(c, c), "id": c, "rank": int(ranks[k]), "score": float(scores[k]),
               "strength": float(strengths[k]), "ci_low": math.nan, "ci_high": math.nan,
               "rank_low": math.nan, "rank_high": math.nan}
        if boot_scores is not None:
            bs, br = boot_scores[:, k], boot_ranks[:, k]
            row.update(ci_low=float(np.percentile(bs, 2.5)), ci_high=float(np.percentile(bs, 97.5)),
                       rank_low=int(np.percentile(br, 2.5)), rank_high=int(np.percentile(br, 97.5)))
        rows.append(row)
    rows.sort(key=lambda r: r["rank"])
    return rows


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
        rows.append({"participant": pid, "code": p.get("code") or "", "votes": len(vs), "trials": p.get("n_trials", len(vs)),
                     "finished": bool(p.get("finished")), "consistency": ca / cn if cn else math.nan, "repeats": cn,
                     "catch_pass": ka / kn if kn else math.nan, "catch_trials": kn,
                     "median_client_ms": _median(v.get("client_ms") for v in vs),
                     "median_server_ms": _median(v.get("server_ms") for v in vs)})
    return rows


# ------------------------------------------------------------------------------------------ everything
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
    return {
        "ids": ids, "labels": labels, "pairs": pairs, "matrix": table6_matrix(pairs, ids, labels),
        "bradley_terry": bradley_terry_ranking(votes, ids, labels, bootstrap, seed),
        "participants": prow, "excluded": excluded,
        "n_participants": len({v["participant_id"] for v in votes}), "n_votes": len(votes),
        "n_preference_votes": len(preference_votes(votes, include_repeats)),
        "consistency": agree / reps if reps else math.nan, "repeats": reps,
        "catch_pass_rate": passed / catches if catches else math.nan, "catch_trials": catches,
        "median_client_ms": _median(v.get("client_ms") for v in votes),
        "median_server_ms": _median(v.get("server_ms") for v in votes),
    }
