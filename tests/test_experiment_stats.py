"""pairlab.experiments.stats (intervals, paired tests, verdicts, Holm) against scipy on fixed numbers, and the
paper's numbers / claims table (pairlab.experiments.paper) for well-formedness."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from pairlab.experiments import paper
from pairlab.experiments import stats as xs

# Fixed per-seed means: treatment lower than control in every seed.
TRT = [0.21, 0.25, 0.19, 0.23, 0.22]
CTL = [0.26, 0.27, 0.24, 0.25, 0.28]
# Computed once with scipy 1.17 (ttest_rel / TtestResult.confidence_interval / t.interval) and checked by hand:
# differences -0.05 -0.02 -0.05 -0.02 -0.06, mean -0.04, sd 0.0187083, se 0.0083666, t = -4.7809 on 4 df.
T_STAT, T_P, T_LOW, T_HIGH = -4.780914437337574, 0.008769659458325604, -0.06322940635385191, -0.0167705936461481
TRT_MEAN, TRT_LOW, TRT_HIGH = 0.22, 0.19223554894802203, 0.24776445105197792
# Wilcoxon signed-rank of these differences: negative ranks 1 and 6, W = 7; exact two-sided p = 2 * 19 / 1024.
DIFFS = [0.3, -0.1, 0.5, 0.2, 0.8, -0.4, 0.6, 0.7, 0.15, 0.25]
W_STAT, W_P = 7.0, 0.037109375


def claim(better="lower", treatment=("t",), control=("c",), cid="x"):
    return paper.Claim(cid, "alpha", "a test claim", "gt_l1", better, tuple(treatment), tuple(control),
                       "nowhere", "table", "")


# ================================================================================ intervals
def test_seed_interval_is_the_t_interval_of_seed_means():
    iv = xs.seed_interval(TRT)
    assert (iv.mean, iv.low, iv.high) == pytest.approx((TRT_MEAN, TRT_LOW, TRT_HIGH), rel=1e-12)
    lo, hi = sps.t.interval(0.95, len(TRT) - 1, loc=np.mean(TRT), scale=sps.sem(TRT))
    assert (iv.low, iv.high) == pytest.approx((lo, hi), rel=1e-12)
    assert iv.n_seeds == 5 and not iv.one_seed and "t-interval of 5 seed means" in iv.method


def test_seed_interval_uses_the_mean_of_per_seed_means():
    rng = np.random.default_rng(1)
    per_seed = {s: rng.normal(0.1 * s, 0.05, size=20 + 10 * s) for s in range(4)}  # unequal image counts
    means = [float(v.mean()) for v in per_seed.values()]
    iv = xs.seed_interval(per_seed)
    lo, hi = sps.t.interval(0.95, 3, loc=np.mean(means), scale=sps.sem(means))
    assert (iv.mean, iv.low, iv.high) == pytest.approx((np.mean(means), lo, hi), rel=1e-12)
    assert iv.n_images == sum(v.size for v in per_seed.values())


def test_seed_interval_of_a_rate_is_clipped_to_its_range():
    """Issue 16: the t-interval of three task rates (0.65, 0.90, 1.0) reaches past 1; with the metric's bounds
    the table shows it clipped to [0, 1], the mean unchanged, the method saying so."""
    rates = [0.65, 0.90, 1.0]
    raw = xs.seed_interval(rates)
    lo, hi = sps.t.interval(0.95, 2, loc=np.mean(rates), scale=sps.sem(rates))
    assert (raw.low, raw.high) == pytest.approx((lo, hi), rel=1e-12) and raw.high > 1
    iv = xs.seed_interval(rates, bounds=(0.0, 1.0))
    assert iv.mean == raw.mean and iv.low == pytest.approx(lo, rel=1e-12) and iv.high == 1.0
    assert "clipped to the metric's range [0, 1]" in iv.method
    assert xs.seed_interval(TRT, bounds=(0.0, 1.0)) == xs.seed_interval(TRT)  # inside its range: unchanged
    far = xs.seed_interval([0.05, 0.9, 0.1], bounds=(0.0, math.inf))  # a distance: clipped at 0 only
    assert far.low == 0.0 and far.high > 0.9 and "clipped at the metric's lower bound 0" in far.method


def test_one_seed_interval_comes_from_test_images_and_is_flagged():
    from pairlab.eval import stats as eval_stats

    rng = np.random.default_rng(2)
    images = rng.normal(0.3, 0.1, size=400)
    iv = xs.seed_interval({7: images})
    assert iv.one_seed and iv.n_seeds == 1 and iv.n_images == 400
    assert "one seed" in iv.method and "test images" in iv.method
    assert "1 seed: test images only" in iv.cell()
    assert (iv.mean, iv.low, iv.high) == pytest.approx(eval_stats.bootstrap_ci(images), rel=1e-12)
    lo, hi = sps.t.interval(0.95, 399, loc=images.mean(), scale=sps.sem(images))  # the bootstrap is close to it
    assert iv.low == pytest.approx(lo, abs=0.003) and iv.high == pytest.approx(hi, abs=0.003)


def test_one_run_level_number_has_no_interval_and_nan_images_are_dropped():
    iv = xs.seed_interval({0: 0.5})
    assert iv.one_seed and iv.mean == 0.5 and math.isnan(iv.low) and "no interval" in iv.cell()
    assert xs.seed_interval({}).n_seeds == 0
    iv = xs.seed_interval({0: [1.0, np.nan, 3.0], 1: [np.nan]})  # seed 1 has nothing
    assert iv.n_seeds == 1 and iv.n_images == 2 and iv.mean == 2.0


# ================================================================================ paired test across seeds
def test_paired_seed_test_matches_scipy_ttest_rel():
    t = xs.paired_seed_test(TRT, CTL)
    assert (t.statistic, t.p_value, t.low, t.high) == pytest.approx((T_STAT, T_P, T_LOW, T_HIGH), rel=1e-12)
    r = sps.ttest_rel(TRT, CTL)
    ci = r.confidence_interval(0.95)
    assert (t.statistic, t.p_value, t.low, t.high) == pytest.approx((r.statistic, r.pvalue, ci.low, ci.high))
    assert t.effect == pytest.approx(-0.04) and t.n_seeds == 5
    assert t.relative == pytest.approx(-0.04 / np.mean(CTL))


def test_paired_seed_test_pairs_by_seed_not_by_position():
    trt = {"s3": 0.23, "s1": 0.21, "s2": 0.25, "s5": 0.22, "s4": 0.19, "only-here": 9.0}
    ctl = {"s1": 0.26, "s2": 0.27, "s4": 0.24, "s3": 0.25, "s5": 0.28}
    t = xs.paired_seed_test(trt, ctl)
    assert set(t.seeds) == {"s1", "s2", "s3", "s4", "s5"}
    assert (t.statistic, t.p_value) == pytest.approx((T_STAT, T_P), rel=1e-12)


def test_paired_seed_test_per_image_input_uses_seed_means():
    rng = np.random.default_rng(3)
    trt = {s: rng.normal(0.2, 0.05, 30) for s in range(4)}
    ctl = {s: rng.normal(0.25, 0.05, 30) for s in range(4)}
    t = xs.paired_seed_test(trt, ctl)
    r = sps.ttest_rel([trt[s].mean() for s in range(4)], [ctl[s].mean() for s in range(4)])
    assert (t.statistic, t.p_value) == pytest.approx((r.statistic, r.pvalue), rel=1e-12)


def test_degenerate_differences():
    same = xs.paired_seed_test([0.1, 0.2, 0.3], [0.0, 0.1, 0.2])  # every seed 0.1 better
    assert same.p_value == 0.0 and same.effect == pytest.approx(0.1)
    equal = xs.paired_seed_test([0.1, 0.2], [0.1, 0.2])
    assert equal.p_value == 1.0 and equal.effect == 0.0


def test_image_tests_match_scipy_wilcoxon():
    ctl = np.linspace(0.1, 1.0, len(DIFFS))
    trt = ctl + np.array(DIFFS)
    (w,) = xs.image_tests({0: trt}, {0: ctl})
    assert (w.statistic, w.p_value) == pytest.approx((W_STAT, W_P), rel=1e-9)
    r = sps.wilcoxon(trt - ctl)
    assert (w.statistic, w.p_value) == pytest.approx((r.statistic, r.pvalue), rel=1e-12)
    assert w.n_images == 10 and w.median_diff == pytest.approx(np.median(DIFFS))
    # unequal image counts cannot be paired; run-level numbers have no images
    assert xs.image_tests({0: trt}, {0: ctl[:5]}) == ()
    assert xs.image_tests({0: 0.2}, {0: 0.3}) == ()


# ================================================================================ verdicts
def test_verdict_logic():
    assert xs.verdict(-0.04, 0.01, "lower", 5) == xs.HOLDS
    assert xs.verdict(0.04, 0.01, "higher", 5) == xs.HOLDS
    assert xs.verdict(0.04, 0.01, "lower", 5) == xs.REVERSED
    assert xs.verdict(-0.04, 0.01, "higher", 5) == xs.REVERSED
    assert xs.verdict(-0.04, 0.05, "lower", 5) == xs.NOT_SIGNIFICANT  # p must be below alpha
    assert xs.verdict(-0.04, 0.2, "lower", 5) == xs.NOT_SIGNIFICANT
    assert xs.verdict(-0.04, 0.2, "lower", 5, alpha=0.25) == xs.HOLDS
    assert xs.verdict(-0.04, None, "lower", 1) == xs.TOO_FEW
    assert xs.verdict(-0.04, 0.001, "lower", 1) == xs.TOO_FEW
    assert xs.verdict(math.nan, None, "lower", 0) == xs.TOO_FEW
    with pytest.raises(ValueError):
        xs.verdict(-0.04, 0.01, "better", 5)


def test_assess_claim_holds_reversed_not_significant():
    values = {"t": TRT, "c": CTL}
    r = xs.assess_claim(claim("lower"), values)
    assert r.verdict == xs.HOLDS and r.text.startswith("holds:")
    assert (r.p_value, r.effect_low, r.effect_high) == pytest.approx((T_P, T_LOW, T_HIGH), rel=1e-12)
    assert r.n_seeds == 5 and r.treatment == "t" and r.control == "c"
    r = xs.assess_claim(claim("higher"), values)
    assert r.verdict == xs.REVERSED and r.text.startswith("reversed:")
    noisy = {"t": [0.21, 0.30, 0.19, 0.26, 0.22], "c": [0.26, 0.24, 0.24, 0.25, 0.23]}
    r = xs.assess_claim(claim("lower"), noisy)
    assert r.p_value == pytest.approx(sps.ttest_rel(noisy["t"], noisy["c"]).pvalue)
    assert r.p_value > 0.05 and r.verdict == xs.NOT_SIGNIFICANT and r.text.startswith("not significant:")
    assert "\n" not in r.text


def test_assess_claim_too_few_seeds():
    rng = np.random.default_rng(4)
    one = {"t": {0: rng.normal(0.2, 0.05, 50)}, "c": {0: rng.normal(0.3, 0.05, 50)}}
    r = xs.assess_claim(claim(), one)
    assert r.verdict == xs.TOO_FEW and r.p_value is None and r.n_seeds == 1
    assert r.text.startswith("too few seeds:") and "not a verdict" in r.text and "Wilcoxon" in r.text
    assert len(r.image_tests) == 1 and r.image_tests[0].p_value < 0.05  # image evidence is there, but not a verdict
    r = xs.assess_claim(claim(), {"t": {0: 0.2, 1: 0.3}, "c": {2: 0.2, 3: 0.3}})  # no common seed
    assert r.verdict == xs.TOO_FEW and r.n_seeds == 0
    assert xs.assess_claim(claim(), {}).verdict == xs.TOO_FEW  # configurations never run


def test_a_group_of_configurations_is_the_mean_of_their_seed_values():
    mixes = {"a": [0.20, 0.24, 0.18], "b": [0.22, 0.26, 0.20], "c0": [0.30, 0.29, 0.31]}
    r = xs.assess_claim(claim(treatment=("a", "b"), control=("c0",)), mixes)
    mean_ab = (np.array(mixes["a"]) + np.array(mixes["b"])) / 2
    assert r.p_value == pytest.approx(sps.ttest_rel(mean_ab, mixes["c0"]).pvalue, rel=1e-12)
    assert r.treatment == "mean of a / b"


# ================================================================================ Holm
def test_holm_on_fixed_p_values():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4 * 0.005, 3 * 0.01, 2 * 0.03, max(0.06, 1 * 0.04): step-down, monotone
    assert xs.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert xs.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert xs.holm([0.02]) == [0.02]
    assert xs.holm([None, 0.01, None, 0.04]) == [None, pytest.approx(0.02), None, pytest.approx(0.04)]
    assert xs.holm([]) == []


def test_assess_claims_applies_holm_over_the_family():
    rng = np.random.default_rng(5)
    data = {}
    for cfg, shift in (("t1", -0.04), ("t2", -0.004), ("c", 0.0)):
        data[("gt_l1", "AtoB", cfg)] = {s: 0.3 + shift + rng.normal(0, 0.01) for s in range(5)}
    data[("gt_l1", "AtoB", "t3")] = {0: 0.1}  # one seed: out of the family
    claims = [claim(treatment=("t1",), cid="one"), claim(treatment=("t2",), cid="two"),
              claim(treatment=("t3",), cid="three")]
    raw = xs.assess_claims(claims, data, correction="none")
    res = xs.assess_claims(claims, data)
    expected = xs.holm([r.p_value for r in raw])
    assert [r.p_adjusted for r in res] == [pytest.approx(expected[0]), pytest.approx(expected[1]), None]
    small, large = sorted([raw[0].p_value, raw[1].p_value])  # a family of two: 2 * smallest, then monotone
    assert sorted([res[0].p_adjusted, res[1].p_adjusted]) == pytest.approx([2 * small, max(2 * small, large)])
    assert res[2].verdict == xs.TOO_FEW
    assert "Holm p" in res[0].text and "Holm p" not in raw[0].text
    # a callable gives the same as the mapping
    via_call = xs.assess_claims(claims, lambda m, d, c: data.get((m, d, c)))
    assert [r.p_adjusted for r in via_call] == [r.p_adjusted for r in res]


def test_holm_can_turn_a_raw_hold_into_not_significant():
    values = {"t": [0.21, 0.25, 0.19, 0.23, 0.22], "c": [0.26, 0.25, 0.24, 0.25, 0.28]}  # p = 0.0327
    raw = xs.assess_claim(claim(), values)
    assert 0.025 < raw.p_value < 0.05 and raw.verdict == xs.HOLDS
    adjusted = xs.assess_claim(claim(), values, p_adjusted=min(1.0, 2 * raw.p_value), corrected=True)
    assert adjusted.verdict == xs.NOT_SIGNIFICANT and adjusted.p_value == raw.p_value


# ================================================================================ the paper's table
def test_every_experiment_has_claims_and_ids_are_unique():
    ids = [c.id for c in paper.CLAIMS]
    assert len(ids) == len(set(ids))
    for e in paper.EXPERIMENTS:
        assert paper.claims_for(e), e
    assert {c.experiment for c in paper.CLAIMS} == set(paper.EXPERIMENTS)
    with pytest.raises(KeyError):
        paper.claims_for("nope")


def test_claims_are_well_formed():
    from pairlab.eval.metrics import REGISTRY

    for c in paper.CLAIMS:
        assert c.better in ("lower", "higher"), c.id
        assert c.evidence in paper.EVIDENCE, c.id
        assert c.direction in paper.DIRECTIONS, c.id
        assert c.treatment and c.control and not set(c.treatment) & set(c.control), c.id
        assert set(c.treatment + c.control) <= set(paper.CONFIGS[c.experiment]), c.id
        assert c.text and c.quote and c.source, c.id
        if c.metric_source == "registry":
            assert c.metric in REGISTRY, c.id
            direction = REGISTRY[c.metric].lower_is_better
            if direction is not None:  # every claim says the treatment is *better*, in the registry's sense
                assert (c.better == "lower") == direction, c.id
        else:
            assert c.metric_source == "features" and c.metric in paper.FEATURE_METRICS, c.id
        if c.table:
            assert paper.TABLES[c.table].experiment == c.experiment, c.id


def test_feature_metrics_are_group_stats_keys():
    from pairlab.eval.feature_bench import synthetic_space
    from pairlab.eval.features import group_stats

    rows = group_stats(synthetic_space(n=300, dim=8, runs=2))
    run_rows = [r for r in rows if r["key"].startswith("run:")]
    assert run_rows
    for key in paper.FEATURE_METRICS:
        assert all(key in r for r in run_rows), key


def test_paper_tables_are_transcribed_consistently():
    from pairlab.eval.metrics import REGISTRY

    for t in paper.TABLES.values():
        assert t.experiment in paper.EXPERIMENTS and t.source and t.caption and t.different_setting
        for m in filter(None, t.metric.split(",")):
            assert m in REGISTRY, (t.id, m)
        if t.id != "table6":
            assert t.better in ("lower", "higher")
            for row in t.rows.values():
                assert tuple(row) == t.columns and all(isinstance(v, float) for v in row.values())
    assert tuple(paper.TABLES["table1"].rows) == paper.CONFIGS["alpha"]
    assert paper.TABLES["table4"].columns and set(paper.TABLES["table4"].columns) == set(paper.CONFIGS["baselines"])
    assert paper.TABLES["table5"].columns == paper.CONFIGS["pseudo-alpha"]
    # spot checks against the paper's text
    assert paper.TABLES["table1"].value("0", "Facades B2A") == 0.84
    assert paper.TABLES["table3"].value("0.5", "Class IOU") == 0.111
    assert paper.TABLES["table4"].value("Eyeglass", "natural") == 0.00418
    assert paper.TABLES["table5"].value("Smile", "0.25") == 0.00293
    assert paper.TABLES["table6"].rows["Eyeglass"]["50%"]["100%"] == 1.0
    assert paper.TABLES["table7"].value("Eyeglass", "explicit") == 0.000342
    # Table 4's "ours" is Table 5's 0.5-paired column
    for task in ("Smile", "Eyeglass"):
        assert paper.TABLES["table4"].value(task, "pseudo-paired") == paper.TABLES["table5"].value(task, "0.5")


def test_paper_comparison_reports_the_papers_own_direction():
    by_id = {c.id: c for c in paper.CLAIMS}
    rows = paper.paper_comparison(by_id["pseudo-alpha-0.5-beats-0.25"])
    assert rows == [("Smile", 0.0016, 0.00293, True), ("Eyeglass", 0.00181, 0.00153, False)]
    rows = dict((w, g) for w, _, _, g in paper.paper_comparison(by_id["alpha-paired-beats-unpaired/AtoB"]))
    assert list(rows.values()).count(True) == 2 and list(rows.values()).count(None) == 2
    assert paper.paper_comparison(by_id["explicit-implicit-completes-task"]) == []


def test_results_run_end_to_end_on_a_synthetic_experiment():
    rng = np.random.default_rng(6)
    data = {}
    for c in paper.claims_for("baselines"):
        for cfg in c.treatment + c.control:
            shift = -0.002 if cfg == "pseudo-paired" else 0.0
            data[(c.metric, c.direction, cfg)] = {s: rng.normal(0.004 + shift, 0.0005, 40) for s in range(3)}
    res = xs.assess_claims(paper.claims_for("baselines"), data)
    assert all(r.verdict in xs.VERDICTS for r in res)
    assert res[0].verdict == xs.HOLDS
