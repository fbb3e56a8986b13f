"""The evaluation library's statistics and image metrics come from scipy and torchmetrics (issue 16, finding 8),
and intervals of rates stay in [0, 1] (finding 3)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pairlab.eval import metrics as M
from pairlab.eval.evaluate import aggregate_seeds
from pairlab.eval.stats import bootstrap_ci, clip_interval, seed_summary, wilson_ci


def test_psnr_of_a_known_mse():
    a = np.full((2, 16, 16, 3), 100, np.uint8)
    b = a.copy()
    b[1] = 110  # every pixel off by 10/255: MSE = (10/255)^2
    values = M.psnr_values(a, b)
    assert math.isinf(values[0])
    assert values[1] == pytest.approx(10 * math.log10(1 / (10 / 255) ** 2), rel=1e-6)


def test_ssim_identical_is_one_and_flat_images_follow_the_luminance_term():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
    assert M.ssim_values(a, a) == pytest.approx([1.0, 1.0], abs=1e-9)
    x, y = np.full((1, 24, 24, 3), 100, np.uint8), np.full((1, 24, 24, 3), 110, np.uint8)
    mx, my, c1 = 100 / 255, 110 / 255, 0.01 ** 2  # zero variance: SSIM is the luminance term alone
    assert M.ssim_values(x, y)[0] == pytest.approx((2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1), rel=1e-6)
    noise = rng.integers(-40, 41, a.shape)
    little, much = (np.clip(a.astype(int) + k * noise, 0, 255).astype(np.uint8) for k in (1, 4))
    assert (M.ssim_values(a, much) < M.ssim_values(a, little)).all() and (M.ssim_values(a, little) < 1).all()


def test_psnr_and_ssim_are_registered_ground_truth_metrics():
    for name in ("psnr", "ssim"):
        m = M.REGISTRY[name]
        assert m.needs == frozenset({"truth"}) and m.lower_is_better is False


def test_bootstrap_is_scipy_percentile_bootstrap():
    from scipy.stats import bootstrap

    x = np.random.default_rng(5).exponential(1.0, 40)
    est, lo, hi = bootstrap_ci(x, n_boot=3000, seed=7)
    ref = bootstrap((x,), np.mean, n_resamples=3000, method="percentile",
                    random_state=np.random.default_rng(7)).confidence_interval
    assert est == pytest.approx(x.mean())
    assert lo == pytest.approx(ref.low, abs=0.03) and hi == pytest.approx(ref.high, abs=0.03)


def test_wilson_interval_matches_the_textbook_value():
    lo, hi = wilson_ci(3, 20)  # Wilson 95% for 3/20: 0.0524 .. 0.3604
    assert lo == pytest.approx(0.05236, abs=1e-4) and hi == pytest.approx(0.36040, abs=1e-4)
    lo, hi = wilson_ci(0, 20)
    assert lo == 0.0 and 0 < hi < 0.2


def test_a_rate_over_two_seeds_stays_in_zero_one():
    # the case: task rates 0.0 and 0.3 over 2 seeds gave 0.150 [-1.33, 1.63]
    s = seed_summary([{"mean": 0.0, "n": 20}, {"mean": 0.3, "n": 20}], bounds=(0.0, 1.0))
    assert s["mean"] == pytest.approx(0.15) and (s["ci_low"], s["ci_high"]) == (0.0, 1.0)
    assert "clipped" in s["interval"]
    assert clip_interval(-0.2, 0.5, None) == (-0.2, 0.5)
    # results saved before summaries carried bounds: the registry supplies them
    runs = [{"name": f"r{s}", "ok": True, "seed": s, "direction": "AtoB", "config": {"seed": s}, "recipe": {},
             "metrics": {"task_rate": {"mean": m, "n": 20, "label": "Task completion rate"},
                         "gt_mse": {"mean": m - 1, "n": 20}}}
            for s, m in ((0, 0.0), (1, 0.3))]
    group = aggregate_seeds(runs)[0]
    assert group["metrics"]["task_rate"]["ci_low"] == 0.0 and group["metrics"]["task_rate"]["ci_high"] == 1.0
    assert group["metrics"]["gt_mse"]["ci_low"] < -1.0  # unbounded metrics are not clipped


def test_one_number_format_per_metric_and_the_best_value_marked():
    from pairlab.eval import compare
    from pairlab.eval.evaluate import BEST_MARK, column_format, metrics_table

    assert column_format([5.403e-04, 0.0121]) == ".6f" and column_format([0.5, 0.25]) == ".3f"
    rows_in = [{"name": n, "ok": True, "direction": "AtoB", "alpha": a,
                "metrics": {"gt_mse": {"mean": m, "ci_low": m / 2, "ci_high": m * 2, "label": "MSE",
                                       "lower_is_better": True}}}
               for n, a, m in (("a", 0.0, 5.403e-04), ("b", 0.5, 0.0121))]
    headers, rows = metrics_table(rows_in, mark_best=True)
    assert rows[0][3] == f"{BEST_MARK}0.000540 [0.000270, 0.001081]" and rows[1][3] == "0.012100 [0.006050, 0.024200]"
    tex = compare.to_latex(headers, rows)
    assert "\\textbf{0.000540 [0.000270, 0.001081]}" in tex and BEST_MARK not in tex
    assert not any(BEST_MARK in c for r in metrics_table(rows_in)[1] for c in r)  # only when asked
