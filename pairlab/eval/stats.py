"""Statistics for metric tables: bootstrap intervals over test images and aggregation over seeds.

Bootstrap (``bootstrap_ci``): the percentile bootstrap over test images, computed by ``scipy.stats.bootstrap``
(method "percentile", seeded). Each of ``n_boot`` resamples draws n images with replacement (the resampled data are
image indices), so a metric that is a mean of per-image values, and a metric that is a function of summed per-image
statistics (e.g. class IoU from per-image confusion matrices), are resampled the same way. The interval is the
(2.5, 97.5) percentiles of the resampled statistic; the point estimate is the statistic of the full sample.

Rates (metrics bounded to [0, 1], e.g. the task completion rate): ``wilson_ci`` gives the Wilson score interval of
k successes in n (``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``), and ``seed_summary(...,
bounds=(0, 1))`` clips the t-interval of seed means to the metric's range (two seeds give t = 12.7, so an unclipped
interval of a rate reads 0.150 [-1.33, 1.63]).

Seeds (``seed_summary``): for runs that differ only by seed, the point estimate is the **mean of the per-seed
means**, and the interval is a **95% t-interval of the seed means** (mean +- t_{0.975, k-1} * sd / sqrt(k)). That
interval measures the between-seed (training) variability, which is what a comparison of recipes must beat; the
per-image bootstrap of each run only measures test-set sampling. With a single seed the run's own bootstrap interval
is reported and marked as such.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np


def bootstrap_ci(values, n_boot: int = 2000, seed: int = 0, level: float = 0.95,
                 reduce: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[float, float, float]:
    """(estimate, low, high): the statistic of ``values`` and its percentile-bootstrap interval over images.

    ``values``: per-image values, shape (n,), or per-image sufficient statistics, shape (n, k). The statistic is
    ``reduce(mean over images)``: ``reduce`` maps an array (..., k) of image-averaged statistics to (...,) (default:
    the mean itself, for shape (n,)). Rows with a NaN are left out. Empty input gives NaNs; one image gives a
    zero-width interval.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    if v.ndim == 1:
        v = v[:, None]
    v = v.reshape(len(v), -1)
    v = v[~np.isnan(v).any(axis=1)]
    n = len(v)
    red = reduce or (lambda m: m[..., 0])
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    estimate = float(red(v.mean(axis=0)[None, :])[0])
    if n == 1:
        return estimate, estimate, estimate
    from scipy.stats import bootstrap

    def statistic(idx, axis=-1):  # idx: (..., n) resampled image indices -> (...,) statistic
        return np.asarray(red(v[np.asarray(idx, dtype=np.intp)].mean(axis=-2)), dtype=np.float64)

    with np.errstate(all="ignore"):
        res = bootstrap((np.arange(n),), statistic, n_resamples=int(n_boot), vectorized=True, method="percentile",
                        confidence_level=level, random_state=np.random.default_rng(int(seed)))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return estimate, float("nan"), float("nan")
    return estimate, low, high


def wilson_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (``scipy.stats.binomtest(...).proportion_ci``); NaNs when n = 0."""
    if n <= 0:
        return float("nan"), float("nan")
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def clip_interval(low, high, bounds: tuple[float, float] | None):
    """(low, high) clipped to ``bounds`` (a metric's range, e.g. (0, 1) for rates); Nones pass through."""
    if bounds is None:
        return low, high
    lo_b, hi_b = bounds
    clip = lambda x: None if x is None else float(min(max(x, lo_b), hi_b))
    return clip(low), clip(high)


def summarize(values, n_boot: int = 2000, seed: int = 0, reduce=None) -> dict:
    """{"mean", "ci_low", "ci_high", "n"} for per-image values (see ``bootstrap_ci``)."""
    v = np.asarray(values, dtype=np.float64)
    n = int((~np.isnan(v.reshape(len(v), -1)).any(axis=1)).sum()) if v.size else 0
    est, low, high = bootstrap_ci(v, n_boot=n_boot, seed=seed, reduce=reduce)
    return {"mean": _clean(est), "ci_low": _clean(low), "ci_high": _clean(high), "n": n}


def _clean(x: float):
    return None if x is None or not math.isfinite(x) else float(x)


def _t975(df: int) -> float:
    try:
        from scipy.stats import t

        return float(t.ppf(0.975, df))
    except ImportError:  # scipy is a dependency; this keeps the module importable without it
        table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
        return table.get(df, 1.96)


def seed_summary(per_seed: list[dict], bounds: tuple[float, float] | None = None) -> dict:
    """Aggregate one metric over seeds. ``per_seed``: that metric's summary dict of each run (mean, ci_low, ...).
    ``bounds``: the metric's range (e.g. (0, 1) for a rate); the interval is clipped to it.

    Returns {"mean": mean of the seed means, "ci_low", "ci_high": the 95% t-interval of the seed means,
    "sd": their standard deviation, "seeds": k, "n": images per seed (summed), "interval": how it was made}.
    """
    means = np.array([s["mean"] for s in per_seed if s.get("mean") is not None], dtype=np.float64)
    k = len(means)
    n = int(sum(s.get("n") or 0 for s in per_seed))
    if k == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "sd": None, "seeds": 0, "n": n, "interval": "none"}
    mean = float(means.mean())
    if k == 1:
        only = next(s for s in per_seed if s.get("mean") is not None)
        lo, hi = clip_interval(only.get("ci_low"), only.get("ci_high"), bounds)
        return {"mean": mean, "ci_low": lo, "ci_high": hi, "sd": None, "seeds": 1,
                "n": n, "interval": "bootstrap over test images (one seed)"}
    sd = float(means.std(ddof=1))
    half = _t975(k - 1) * sd / math.sqrt(k)
    lo, hi = clip_interval(mean - half, mean + half, bounds)
    clipped = bounds is not None and (lo != mean - half or hi != mean + half)
    return {"mean": mean, "ci_low": lo, "ci_high": hi, "sd": sd, "seeds": k, "n": n,
            "interval": f"t-interval of {k} seed means" + (f", clipped to [{bounds[0]:g}, {bounds[1]:g}]" if clipped else "")}
