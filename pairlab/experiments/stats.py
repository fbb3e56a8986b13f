"""Statistics of an experiment: intervals over seeds, a paired test across seeds per claim, verdicts, Holm.

Torch-free (numpy + scipy). The interval helpers reuse ``pairlab.eval.stats`` (``seed_summary`` for the
t-interval of seed means, ``bootstrap_ci`` for one seed), so an experiment's table means what the Evaluate tab's
tables mean.

Input. A configuration's values for one metric are given *per seed*: a mapping seed -> value, or a sequence
(position = seed). A value is either the run's per-image values (1-D; NaN images are left out) or one number
(a run-level statistic such as Figure 9's feature-space distances, or a seed mean computed elsewhere).

Design.

- **Unit of replication: the seed.** A claim is about training recipes (e.g. "α = 1 beats α = 0"); what
  varies when the recipe is rerun is the training run, and the test images are nested within runs. The
  verdict therefore rests on a **paired t-test across seeds** (``scipy.stats.ttest_rel``) of the per-seed means
  of treatment and control, paired by seed: the experiment runs every configuration under the same seeds, seed s
  of each sharing its composition seed (so its test split), and runs of one seed are compared with each other.
  Only seeds present in both arms count. The
  effect is the mean over seeds of (treatment - control) with its 95% t-interval (``TtestResult.
  confidence_interval``); ``relative`` is that effect over the control's mean. With fewer than 2 common seeds
  there is no test and the verdict is "too few seeds".
- **Images are descriptive only.** Within each seed, where both arms have per-image values over the same test
  images (same length, same order), a Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, two-sided, zero
  differences dropped) over images is reported as ``ImageTest``. It says whether *that pair of trained networks*
  differs on this test set; it ignores training variability, so it never decides a verdict (testing images as if
  they were independent replicates of a recipe is pseudo-replication). With one seed it is the only evidence
  there is, and the one-line text says so.
- **Verdict** (``verdict``), at ``alpha`` = 0.05 on the Holm-adjusted p-value: "holds" when significant and the
  effect goes the paper's way (``better="lower"``: treatment - control < 0), "reversed" when significant the other
  way, "not significant" otherwise, "too few seeds" below two seeds. Degenerate data: when every seed gives the
  same nonzero difference the t statistic is infinite and p is taken as 0; when every difference is 0, p = 1.
- **Multiple comparisons: Holm** (``holm``, step-down, controls the family-wise error rate at ``alpha`` without
  assuming independence). The family is the claims of one experiment that have a test (``assess_claims``);
  claims without one (too few seeds) are left out of it. statsmodels is not a dependency, so Holm is implemented
  here (a few lines, checked against hand-computed values in the tests). The reported effect intervals are the
  unadjusted 95% t-intervals, so an interval that excludes 0 can go with a Holm p above 0.05; the verdict follows
  the Holm p.

Intervals for the table (``seed_interval``): the mean of the per-seed means with the 95% t-interval of the seed
means, mean +- t(0.975, k - 1) * sd / sqrt(k) (``pairlab.eval.stats.seed_summary``). Each seed mean averages its
test images, so the spread of seed means carries training variability plus, where seeds have different test
splits, test-set sampling. With one seed the interval is the percentile bootstrap over that run's test images
(``pairlab.eval.stats.bootstrap_ci``) and ``Interval.one_seed`` flags it: it measures the test set, not training.
A single run-level number has no interval.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Hashable, Mapping, Sequence

import numpy as np

from ..eval import stats as eval_stats

ALPHA = 0.05
LEVEL = 0.95  # pairlab.eval.stats.seed_summary's t-interval is 95%

HOLDS = "holds"
REVERSED = "reversed"
NOT_SIGNIFICANT = "not significant"
TOO_FEW = "too few seeds"
VERDICTS = (HOLDS, NOT_SIGNIFICANT, REVERSED, TOO_FEW)
MIN_SEEDS = 2


# ================================================================================ per-seed values
def per_seed_values(per_seed) -> dict[Hashable, np.ndarray]:
    """seed -> float array: 0-d for a run-level number, 1-D per-image values with NaNs removed. Seeds with no
    finite value are dropped. A sequence is keyed by position."""
    items = per_seed.items() if isinstance(per_seed, Mapping) else enumerate(per_seed)
    out = {}
    for seed, v in items:
        a = np.asarray(v, dtype=np.float64)
        if a.ndim == 0:
            if math.isfinite(float(a)):
                out[seed] = a
            continue
        a = a.reshape(-1)
        a = a[np.isfinite(a)]
        if a.size:
            out[seed] = a
    return out


def seed_means(per_seed) -> dict[Hashable, float]:
    """seed -> the run's mean (or its one number)."""
    return {s: float(a.mean()) for s, a in per_seed_values(per_seed).items()}


def combine(arms: Sequence) -> dict[Hashable, np.ndarray]:
    """Several configurations as one arm (e.g. the alpha mixes): per seed present in all of them, the mean of
    their values: per image when all have per-image values of one length, else the mean of their seed means."""
    vals = [per_seed_values(a) for a in arms]
    if len(vals) == 1:
        return vals[0]
    common = [s for s in vals[0] if all(s in v for v in vals[1:])]
    out = {}
    for s in common:
        xs = [v[s] for v in vals]
        if all(x.ndim == 1 for x in xs) and len({x.size for x in xs}) == 1:
            out[s] = np.mean(np.stack(xs), axis=0)
        else:
            out[s] = np.asarray(np.mean([x.mean() for x in xs]))
    return out


# ================================================================================ intervals
@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n_seeds: int
    n_images: int        # per-image values summed over seeds (0 for run-level numbers)
    method: str          # how the interval was made, in words
    one_seed: bool       # True: from one run's test images only (or no interval at all)

    def cell(self, digits: int = 4) -> str:
        """'mean [low, high]' for a table; a one-seed interval is marked."""
        if not math.isfinite(self.mean):
            return "n/a"
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return f"{self.mean:.{digits}g} (1 seed, no interval)" if self.n_seeds == 1 else f"{self.mean:.{digits}g}"
        mark = " (1 seed: test images only)" if self.one_seed else ""
        return f"{self.mean:.{digits}g} [{self.low:.{digits}g}, {self.high:.{digits}g}]{mark}"


def seed_interval(per_seed, n_boot: int = 2000, boot_seed: int = 0, bounds=None) -> Interval:
    """Mean of the per-seed means with its 95% t-interval over seeds; one seed: bootstrap over its test images.
    ``bounds``: the metric's range (e.g. (0, 1) for a rate); the interval is clipped to it (a t-interval of three
    rates can otherwise read [0.29, 1.38])."""
    iv = _seed_interval(per_seed, n_boot, boot_seed)
    if bounds is None or not (math.isfinite(iv.low) and math.isfinite(iv.high)):
        return iv
    low, high = eval_stats.clip_interval(iv.low, iv.high, tuple(bounds))
    if (low, high) == (iv.low, iv.high):
        return iv
    where = (f"at the metric's lower bound {bounds[0]:g}" if math.isinf(bounds[1])
             else f"to the metric's range [{bounds[0]:g}, {bounds[1]:g}]")
    return dataclasses.replace(iv, low=low, high=high, method=f"{iv.method}, clipped {where}")


def _seed_interval(per_seed, n_boot: int, boot_seed: int) -> Interval:
    vals = per_seed_values(per_seed)
    n_images = int(sum(a.size for a in vals.values() if a.ndim == 1))
    k = len(vals)
    if k == 0:
        return Interval(math.nan, math.nan, math.nan, 0, 0, "no runs", True)
    if k == 1:
        (a,) = vals.values()
        if a.ndim == 1 and a.size > 1:
            est, lo, hi = eval_stats.bootstrap_ci(a, n_boot=n_boot, seed=boot_seed)
            return Interval(est, lo, hi, 1, n_images,
                            f"one seed: percentile bootstrap over its {a.size} test images (test-set sampling only, "
                            "not training variability)", True)
        return Interval(float(a.mean()), math.nan, math.nan, 1, n_images, "one seed: no interval", True)
    summary = eval_stats.seed_summary([{"mean": float(a.mean()), "n": int(a.size) if a.ndim == 1 else 0}
                                       for a in vals.values()])
    return Interval(summary["mean"], summary["ci_low"], summary["ci_high"], k, n_images,
                    f"95% t-interval of {k} seed means", False)


# ================================================================================ tests
@dataclass(frozen=True)
class SeedTest:
    """Paired t-test across seeds of treatment - control (per-seed means)."""
    seeds: tuple
    treatment_mean: float   # mean over the common seeds
    control_mean: float
    effect: float           # mean over seeds of (treatment - control)
    low: float              # its 95% t-interval (NaN below two seeds)
    high: float
    statistic: float
    p_value: float | None   # two-sided; None below two seeds

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    @property
    def relative(self) -> float:
        return self.effect / abs(self.control_mean) if self.control_mean else math.nan


def paired_seed_test(treatment, control) -> SeedTest:
    """``scipy.stats.ttest_rel`` of the per-seed means of ``treatment`` and ``control``, paired by seed."""
    t, c = seed_means(treatment), seed_means(control)
    seeds = tuple(s for s in t if s in c)
    a = np.array([t[s] for s in seeds], dtype=np.float64)
    b = np.array([c[s] for s in seeds], dtype=np.float64)
    if len(seeds) == 0:
        return SeedTest((), math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, None)
    d = a - b
    effect = float(d.mean())
    if len(seeds) < MIN_SEEDS:
        return SeedTest(seeds, float(a.mean()), float(b.mean()), effect, math.nan, math.nan, math.nan, None)
    if np.ptp(d) <= 1e-15 * max(1.0, float(np.abs(d).max())):  # every seed gives the same difference
        p = 1.0 if effect == 0 else 0.0
        stat = 0.0 if effect == 0 else math.copysign(math.inf, effect)
        return SeedTest(seeds, float(a.mean()), float(b.mean()), effect, effect, effect, stat, p)
    from scipy.stats import ttest_rel

    r = ttest_rel(a, b)
    ci = r.confidence_interval(LEVEL)
    return SeedTest(seeds, float(a.mean()), float(b.mean()), effect, float(ci.low), float(ci.high),
                    float(r.statistic), float(r.pvalue))


@dataclass(frozen=True)
class ImageTest:
    """Within one seed: Wilcoxon signed-rank over test images of treatment - control (descriptive)."""
    seed: Hashable
    n_images: int
    mean_diff: float
    median_diff: float
    statistic: float
    p_value: float


def image_tests(treatment, control) -> tuple[ImageTest, ...]:
    """One ``ImageTest`` per common seed where both arms have per-image values over the same images (equal
    lengths; the caller keeps the order). NaN pairs were dropped per arm already, so arms of unequal length after
    that are skipped rather than mispaired."""
    from scipy.stats import wilcoxon

    t, c = per_seed_values(treatment), per_seed_values(control)
    out = []
    for s in t:
        if s not in c or t[s].ndim != 1 or c[s].ndim != 1 or t[s].size != c[s].size:
            continue
        d = t[s] - c[s]
        if not np.any(d != 0):
            out.append(ImageTest(s, int(d.size), 0.0, 0.0, 0.0, 1.0))
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns about small samples / ties; the p-value is still given
            r = wilcoxon(d)
        out.append(ImageTest(s, int(d.size), float(d.mean()), float(np.median(d)), float(r.statistic),
                             float(r.pvalue)))
    return tuple(out)


# ================================================================================ verdicts
def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values, in the input order; None entries are not in the family and stay None."""
    idx = [i for i, p in enumerate(p_values) if p is not None]
    m = len(idx)
    order = sorted(idx, key=lambda i: p_values[i])
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        out[i] = running
    return out


def verdict(effect: float, p_value: float | None, better: str, n_seeds: int, alpha: float = ALPHA) -> str:
    """'holds' / 'reversed' / 'not significant' / 'too few seeds' (``better``: 'lower' or 'higher' for
    treatment - control, as the paper says)."""
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
    if n_seeds < MIN_SEEDS or p_value is None or not math.isfinite(p_value):
        return TOO_FEW
    if p_value >= alpha or effect == 0 or not math.isfinite(effect):
        return NOT_SIGNIFICANT
    return HOLDS if (effect < 0) == (better == "lower") else REVERSED


@dataclass(frozen=True)
class ClaimResult:
    claim_id: str
    experiment: str
    metric: str
    better: str
    direction: str
    treatment: str              # label of the arm ("1", "mean of 0.25 / 0.5 / 0.75")
    control: str
    n_seeds: int
    treatment_mean: float
    control_mean: float
    effect: float               # mean over seeds of treatment - control
    effect_low: float           # 95% t-interval (unadjusted)
    effect_high: float
    relative: float             # effect / |control mean|
    p_value: float | None       # paired t-test across seeds, two-sided
    p_adjusted: float | None    # Holm over the experiment's claims (= p_value when not corrected)
    verdict: str
    text: str                   # the one-line verdict
    image_tests: tuple = field(default_factory=tuple)


def _num(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else "n/a"


def _p(name: str, p: float | None) -> str:
    """'p = 0.032', 'p < 0.001', 'p = n/a'."""
    if p is None or not math.isfinite(p):
        return f"{name} = n/a"
    return f"{name} < 0.001" if p < 0.001 else f"{name} = {p:.3f}"


def _line(v: str, claim, trt: str, ctl: str, t: SeedTest, p_adj, imgs: tuple, corrected: bool) -> str:
    word = "lower" if claim.better == "lower" else "higher"
    what = f"{trt} vs {ctl} on {claim.metric} ({claim.direction}), paper: {word}"
    if v == TOO_FEW:
        k = t.n_seeds
        head = f"{TOO_FEW}: {k} common seed{'s' if k != 1 else ''} ({MIN_SEEDS} needed for a test); {what}"
        if k == 1:
            head += f"; difference {_num(t.effect)}"
        if imgs:
            w = imgs[0]
            head += (f"; within seed {w.seed}, Wilcoxon over {w.n_images} test images {_p('p', w.p_value)} "
                     "(test-set evidence only, not a verdict)")
        return head
    rel = f" ({t.relative:+.1%})" if math.isfinite(t.relative) else ""
    adj = f", {_p('Holm p', p_adj)}" if corrected else ""
    return (f"{v}: {what}; difference {_num(t.effect)} [{_num(t.low)}, {_num(t.high)}]{rel}, "
            f"{_p('p', t.p_value)}{adj}, {t.n_seeds} seeds")


def _label(configs: tuple[str, ...]) -> str:
    return configs[0] if len(configs) == 1 else "mean of " + " / ".join(configs)


def assess_claim(claim, values: Mapping[str, object], alpha: float = ALPHA,
                 p_adjusted: float | None = None, corrected: bool = False) -> ClaimResult:
    """Test one claim. ``values``: configuration key -> per-seed values of ``claim.metric`` in
    ``claim.direction``; a configuration that is missing counts as no runs. ``p_adjusted``: the Holm p from
    ``assess_claims`` (the raw p when None)."""
    trt = combine([values.get(c, {}) for c in claim.treatment])
    ctl = combine([values.get(c, {}) for c in claim.control])
    t = paired_seed_test(trt, ctl)
    imgs = image_tests(trt, ctl)
    p_adj = t.p_value if p_adjusted is None else p_adjusted
    v = verdict(t.effect, p_adj, claim.better, t.n_seeds, alpha)
    tl, cl = _label(claim.treatment), _label(claim.control)
    return ClaimResult(claim.id, claim.experiment, claim.metric, claim.better, claim.direction, tl, cl, t.n_seeds,
                       t.treatment_mean, t.control_mean, t.effect, t.low, t.high, t.relative, t.p_value, p_adj, v,
                       _line(v, claim, tl, cl, t, p_adj, imgs, corrected), imgs)


def assess_claims(claims: Sequence, data: Callable | Mapping, alpha: float = ALPHA,
                  correction: str = "holm") -> list[ClaimResult]:
    """Test an experiment's claims with Holm's correction over those that have a test.

    ``data``: a callable ``data(metric, direction, config) -> per-seed values`` (None or {} for no runs), or a
    mapping keyed by ``(metric, direction, config)``. ``correction``: "holm" or "none"."""
    if correction not in ("holm", "none"):
        raise ValueError(f"correction must be 'holm' or 'none', got {correction!r}")
    get = data if callable(data) else (lambda m, d, c: data.get((m, d, c)))

    def values_of(claim):
        return {c: (get(claim.metric, claim.direction, c) or {}) for c in claim.treatment + claim.control}

    raw = [assess_claim(c, values_of(c), alpha) for c in claims]
    if correction == "none":
        return raw
    adjusted = holm([r.p_value for r in raw])
    return [assess_claim(c, values_of(c), alpha, p_adjusted=p, corrected=True) if p is not None else r
            for c, r, p in zip(claims, raw, adjusted)]
