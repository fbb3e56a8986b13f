"""Loss curves, torch-free: EMA smoothing (as W&B's slider), and grouping runs that differ only in their seed into
one mean curve with a min..max band (as W&B / Aim "group by")."""
from __future__ import annotations

import math

NON_LOSS = {"iter", "epoch", "lr", "its_per_s", "time"}


def loss_keys(metrics: list[dict]) -> list[str]:
    keys: list[str] = []
    for m in metrics:
        keys += [k for k in m if k not in NON_LOSS and k not in keys]
    return keys


def ema(values: list, weight: float) -> list:
    """Debiased exponential moving average (W&B / TensorBoard style); ``weight`` in [0, 1), 0 = unchanged.
    None (missing) and non-finite values pass through as None and do not move the average."""
    w = min(max(float(weight or 0.0), 0.0), 0.999)
    if w == 0:
        return list(values)
    out, last, n = [], 0.0, 0
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(None)
            continue
        last = last * w + (1 - w) * v
        n += 1
        out.append(last / (1 - w ** n))
    return out


def group_key(config: dict) -> tuple:
    """What a run is, minus its seed: runs with the same key are repeats of one setting."""
    return tuple(sorted((k, repr(v)) for k, v in (config or {}).items() if k not in ("seed", "name")))


def group_runs(runs: list[dict]) -> list[list[dict]]:
    """``runs``: dicts with 'key' (a group_key); groups in first-seen order."""
    groups: dict = {}
    for r in runs:
        groups.setdefault(r["key"], []).append(r)
    return list(groups.values())


def mean_band(series: list[tuple[list, list]]) -> tuple[list, list, list, list]:
    """Mean and min..max band over several (iters, values) curves, at the iterations every curve has.
    Returns (iters, mean, low, high)."""
    if not series:
        return [], [], [], []
    maps = [{x: y for x, y in zip(xs, ys) if y is not None} for xs, ys in series]
    common = sorted(set.intersection(*[set(m) for m in maps]))
    mean = [sum(m[x] for m in maps) / len(maps) for x in common]
    low = [min(m[x] for m in maps) for x in common]
    high = [max(m[x] for m in maps) for x in common]
    return common, mean, low, high
