"""``python -m pairlab bench features``: the feature-space figure at 20,000 source points (synthetic features)."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .feature_plot import make_figure, render_png, write_html
from .features import (BATCH, COLORS, MAX_POINTS, MODEL_COLORS, PANELS, THUMB, THUMBS_PER_GROUP, FeatureRequest,
                       FeatureSpace, Group, fit_pca, sample_points, set_sigma)


def synthetic_space(n: int = 20_000, dim: int = 128, seed: int = 0, runs: int = 2) -> FeatureSpace:
    """A feature space of ``n`` random source points plus composition-sized groups (no encoder, no files)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, dim)).astype(np.float32) * np.linspace(3, 0.2, dim, dtype=np.float32)
    thumbs = rng.integers(0, 255, (THUMBS_PER_GROUP, THUMB, THUMB, 3), dtype=np.uint8)
    mean, comps, ev = fit_pca(base)
    req = FeatureRequest(runs=tuple(f"run{i}" for i in range(runs)))
    groups = []
    thumb_of = np.full(n, -1)
    k = min(n, THUMBS_PER_GROUP)
    thumb_of[:k] = np.arange(k)
    names, info = [f"{i:06d}.jpg" for i in range(n)], [f"source image {i:06d}.jpg (train partition)" for i in range(n)]
    for panel in PANELS:
        groups.append(Group("all", f"all data ({n})", panel, COLORS["all"], names, info, base, thumbs=thumbs,
                            thumb_of=thumb_of))
    specs = [("real_on", "train", 200), ("real_off", "train", 200), ("pseudo", "train", 200), ("real_on", "test", 100),
             ("real_off", "test", 100)] + [(f"run:run{i}", "test", 100) for i in range(runs)]
    for k, (key, panel, m) in enumerate(specs):
        feats = (rng.normal(size=(m, dim)) + rng.normal(size=dim)).astype(np.float32)
        color = COLORS.get(key) or list(MODEL_COLORS.values())[k % 2]
        groups.append(Group(key, key, panel, color, [f"{key}-{i}.jpg" for i in range(m)], [f"{key} {i}" for i in range(m)],
                            feats, thumbs=thumbs[:m], thumb_of=np.arange(m)))
    space = FeatureSpace(req, "synthetic features", "synthetic", "synthetic", "0" * 16, 64, n, mean, comps, ev, groups)
    for g in groups:
        g.xy = space.project(g.features)
    set_sigma(space, 1.0)
    sample_points(space, MAX_POINTS)
    return space


def bench_features(n: int = 20_000) -> dict:
    """Timings of the figure for ``n`` source points (PCA fit, figure, JSON size, HTML, PNG) and of feature
    extraction with the simple CNN on the CPU."""
    out = {"points": n}
    t0 = time.perf_counter()
    space = synthetic_space(n)
    out["synthetic_space_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    fit_pca(space.groups[0].features)
    out["pca_fit_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    fig = make_figure(space)
    out["figure_build_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    text = fig.to_json()
    out["figure_json_s"] = round(time.perf_counter() - t0, 3)
    out["figure_json_mb"] = round(len(text) / 1e6, 2)
    out["points_drawn"] = int(sum(len(g.shown) for g in space.groups))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_html(fig, Path(tmp) / "f.html")
        out["html_s"] = round(time.perf_counter() - t0, 3)
        out["html_mb"] = round((Path(tmp) / "f.html").stat().st_size / 1e6, 2)
        t0 = time.perf_counter()
        render_png(space, Path(tmp) / "f.png")
        out["png_s"] = round(time.perf_counter() - t0, 3)
    import torch

    from .encoders import SimpleCNN

    net = SimpleCNN(out_dim=1).eval()
    x = torch.zeros(1024, 3, 64, 64)
    with torch.no_grad():
        net.features(x[:64])
        t0 = time.perf_counter()
        for i in range(0, len(x), BATCH):
            net.features(x[i:i + BATCH])
    dt = time.perf_counter() - t0
    out["simple_cnn_features_images_per_s"] = round(len(x) / dt, 1)
    out["torch_threads"] = torch.get_num_threads()
    return out
