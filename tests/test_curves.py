"""Curve helpers (finding 4: smoothing, overlay of runs grouped by settings minus the seed)."""
from pairlab.train import curves


def test_ema_zero_is_identity_and_smooths_noise():
    xs = [1.0, 3.0, 1.0, 3.0, 1.0, 3.0]
    assert curves.ema(xs, 0) == xs
    sm = curves.ema(xs, 0.9)
    assert sm[0] == 1.0  # debiased: the first point is the first value
    assert max(sm[2:]) - min(sm[2:]) < 1.0  # the zig-zag is flattened
    assert curves.ema([1.0, None, 2.0], 0.5)[1] is None


def test_group_by_settings_minus_seed_and_mean_band():
    a = {"model": "cyclegan", "lr": 2e-4, "seed": 0}
    b = dict(a, seed=1)
    c = dict(a, lr=1e-4)
    runs = [{"id": i, "key": curves.group_key(cfg)} for i, cfg in (("a", a), ("b", b), ("c", c))]
    groups = curves.group_runs(runs)
    assert [[r["id"] for r in g] for g in groups] == [["a", "b"], ["c"]]
    iters, mean, low, high = curves.mean_band([([5, 10, 15], [1.0, 2.0, 3.0]), ([5, 10], [3.0, 4.0])])
    assert iters == [5, 10] and mean == [2.0, 3.0] and low == [1.0, 2.0] and high == [3.0, 4.0]
    assert curves.loss_keys([{"iter": 1, "G_A": 1.0}, {"iter": 2, "D_A": 0.5}]) == ["G_A", "D_A"]
