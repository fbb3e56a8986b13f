"""The feature space (pairlab.eval.features): PCA projection and covariance ellipses against numpy on a known Gaussian
sample, group membership from composition manifests, the feature cache, bad inputs (one sentence each, the rest of
the plot still shows), the two-panel figure with hover thumbnails, PNG / HTML / CSV exports and the CLI.

Workspace: a 120-face SynthFaces at 64x64, an explicit pseudo-pair composition at 32x32 (n 8, 4 test images), tiny
Pix2Pix and CycleGAN runs (two iterations) and a seeded untrained simple CNN standing in for the attribute
classifier (the plot needs its features, not its accuracy; training it is the encoders' tests' business)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from pairlab import cli, lab
from pairlab.data.compose import load_manifest
from pairlab.data.recipes import Recipe
from pairlab.errors import UserError
from pairlab.eval import encoders
from pairlab.eval import feature_bench, feature_plot
from pairlab.eval import features as F
from pairlab.train import train
from conftest import tiny_config as tiny


# ================================================================================ math against numpy
def gaussian(n=4000, seed=0):
    """A known 2-D Gaussian: mean (3, -1), standard deviations 2 and 0.5, major axis at 30 degrees."""
    rng = np.random.default_rng(seed)
    angle = np.deg2rad(30)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    cov = rot @ np.diag([4.0, 0.25]) @ rot.T
    return rng.multivariate_normal([3.0, -1.0], cov, size=n), cov


def test_pca_projection_matches_numpy():
    rng = np.random.default_rng(1)
    # 6-D data with known variances along random orthogonal directions
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    x = (rng.normal(size=(3000, 6)) * [5.0, 3.0, 1.0, 0.5, 0.2, 0.1]) @ q.T + rng.normal(size=6)
    mean, comps, ratio = F.fit_pca(x)
    cov = np.cov(x.T, ddof=1)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    np.testing.assert_allclose(mean, x.mean(0), atol=1e-10)
    np.testing.assert_allclose(ratio, evals[:2] / evals.sum(), rtol=1e-8)
    for k in range(2):  # a component's sign is a convention
        assert abs(abs(comps[k] @ evecs[:, k]) - 1) < 1e-8
    space = F.FeatureSpace(F.FeatureRequest(), "", "", "", "", 0, len(x), mean, comps, ratio, [])
    proj = space.project(x)
    ref = (x - x.mean(0)) @ evecs[:, :2]
    for k in range(2):
        np.testing.assert_allclose(np.abs(proj[:, k]), np.abs(ref[:, k]), atol=1e-8)
    # the projected variances are the top eigenvalues; the truth was 25 and 9
    np.testing.assert_allclose(proj.var(0, ddof=1), evals[:2], rtol=1e-8)
    assert abs(evals[0] - 25) < 2.5 and abs(evals[1] - 9) < 1.0
    with pytest.raises(UserError, match="at least 3 images"):
        F.fit_pca(x[:2])


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_covariance_ellipse_matches_numpy(sigma):
    xy, true_cov = gaussian()
    e = F.covariance_ellipse(xy, sigma)
    cov = np.cov(xy.T, ddof=1)
    evals, evecs = np.linalg.eigh(cov)
    np.testing.assert_allclose(e.center, xy.mean(0), atol=1e-12)
    np.testing.assert_allclose(e.cov, cov, atol=1e-12)
    np.testing.assert_allclose(e.axes, sigma * np.sqrt(evals[::-1]), rtol=1e-10)
    major = np.array([np.cos(e.angle), np.sin(e.angle)])
    assert abs(abs(major @ evecs[:, 1]) - 1) < 1e-10
    # close to the true distribution: axes 2 and 0.5 sigma-scaled, major axis at 30 degrees (mod 180)
    np.testing.assert_allclose(e.axes, [2 * sigma, 0.5 * sigma], rtol=0.06)
    assert abs(((np.rad2deg(e.angle) - 30 + 90) % 180) - 90) < 2
    # every outline point is at Mahalanobis distance sigma; the share of points inside is 1 - exp(-sigma^2 / 2)
    inv = np.linalg.inv(cov)
    d = e.points(50) - e.center
    np.testing.assert_allclose(np.sqrt(np.einsum("ij,jk,ik->i", d, inv, d)), sigma, rtol=1e-9)
    r = xy - e.center
    inside = (np.einsum("ij,jk,ik->i", r, inv, r) <= sigma ** 2).mean()
    assert abs(inside - (1 - np.exp(-sigma ** 2 / 2))) < 0.025


def test_an_ellipse_needs_three_points():
    with pytest.raises(UserError, match="at least 3 points, got 2"):
        F.covariance_ellipse(np.zeros((2, 2)))


# ================================================================================ groups from a manifest
def test_group_membership_from_a_manifest():
    m = {"images": {
        "trainA": [{"file": "a1.jpg", "provenance": "real", "source": "000001.jpg", "pair": "b1.jpg"},
                   {"file": "a2.jpg", "provenance": "natural", "source": "000002.jpg"},
                   {"file": "p1.jpg", "provenance": "pseudo", "source": "000010.jpg", "pseudo_of": "000010.jpg",
                    "params": {"height": 12.5, "style": "round"}, "pair": "b2.jpg"},
                   {"file": "p1_copy1.jpg", "provenance": "pseudo", "source": "000010.jpg", "copy_of": "p1.jpg"}],
        "trainB": [{"file": "b1.jpg", "provenance": "truth", "source": "truth/000001.jpg"},
                   {"file": "b2.jpg", "provenance": "real", "source": "000010.jpg"}],
        "testA": [{"file": "t1.jpg", "provenance": "real", "source": "000100.jpg"}],
        "testB": [{"file": "t2.jpg", "provenance": "real", "source": "000101.jpg"},
                  {"file": "t3.jpg", "provenance": "real", "source": "000102.jpg"}]}}
    g = F.manifest_groups(m)
    files = {k: [f for _, f, _ in rows] for k, rows in g.items()}
    assert files == {("real_on", "train"): ["a1.jpg", "a2.jpg"], ("pseudo", "train"): ["p1.jpg"],
                     ("real_off", "train"): ["b1.jpg", "b2.jpg"], ("real_on", "test"): ["t1.jpg"],
                     ("real_off", "test"): ["t2.jpg", "t3.jpg"]}
    texts = {f: t for rows in g.values() for _, f, t in rows}
    assert "pseudo-sample M(b) of 000010.jpg" in texts["p1.jpg"] and "height=12.5" in texts["p1.jpg"]
    assert "paired with b2.jpg" in texts["p1.jpg"]
    assert "rendered true counterpart" in texts["b1.jpg"] and "natural augmentation" in texts["a2.jpg"]


def test_feature_cache_keeps_bad_files_out(home):
    calls = []

    def load(i):
        if i == 2:
            raise UserError("broken.jpg: not an image.")
        return np.full((8, 8, 3), 10 * i, np.uint8)

    def embed(batch):
        calls.append(len(batch))
        return batch.reshape(len(batch), -1)[:, :3].astype(np.float32)

    names = [f"{i}.jpg" for i in range(5)]
    got = F.cached_features("unit", names, load, embed, thumb_limit=3)
    assert got["ok"].tolist() == [True, True, False, True, True] and not got["cached"] and calls == [4]
    assert np.isnan(got["features"][2]).all() and got["features"][4].tolist() == [40, 40, 40]
    assert (got["thumb_of"] >= 0).sum() == 3 and got["thumbs"].shape == (3, F.THUMB, F.THUMB, 3)
    again = F.cached_features("unit", names, load, embed, thumb_limit=3)
    assert again["cached"] and calls == [4] and again["ok"].tolist() == got["ok"].tolist()
    np.testing.assert_array_equal(again["features"], got["features"])
    F.cached_features("unit", names[:4], load, embed)  # another list of images: computed again
    assert calls == [4, 3]


# ================================================================================ a tiny workspace
def fake_classifier(source, attribute="Eyeglasses"):
    import torch

    torch.manual_seed(0)
    net = encoders.SimpleCNN(out_dim=1, width=16, feat_dim=128).eval()
    encoders._save(encoders.attribute_cache_file(source.fingerprint(), attribute), net,
                   {"kind": "attribute-classifier", "attribute": attribute, "heldout_accuracy": None})


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("featws")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PAIRLAB_HOME", str(root / "workspace"))
        mp.delenv("PAIRLAB_DATA_ROOTS", raising=False)
        mp.setenv("TORCH_HOME", str(root / "torch_home"))  # no FaceNet weights: the lab identity encoder
        source = lab.synthfaces_source(count=120, size=64)
        comp = lab.build_composition(source, Recipe(kind="explicit", pairs_from="pseudo", n=8, n_test=4,
                                                    image_size=32), name="fx")
        runs = root / "workspace" / "runs"
        train(comp, runs / "p2p", tiny(model="pix2pix"))
        train(comp, runs / "cyc", tiny(model="cyclegan"))
        fake_classifier(source)
        yield {"root": root, "source": source, "comp": comp, "runs": runs}


def count_embeds(monkeypatch):
    calls = []
    original = encoders.AttributeClassifier.features

    def counted(self, images):
        calls.append(len(images))
        return original(self, images)

    monkeypatch.setattr(encoders.AttributeClassifier, "features", counted)
    return calls


def test_feature_space_groups_projection_and_cache(ws, monkeypatch):
    calls = count_embeds(monkeypatch)
    req = F.FeatureRequest(composition="fx", runs=("p2p", "cyc"))
    space = F.feature_space(req)
    assert space.problems == [] and space.image_size == 32 and space.fit_count == 120
    m = load_manifest(ws["comp"])
    c = m["counts"]
    n = {(g.key, g.panel): g.n for g in space.groups}
    assert n[("all", "train")] == n[("all", "test")] == 120
    assert n[("pseudo", "train")] == c["trainA_pseudo"] == 8 and n[("real_off", "train")] == c["trainB"]
    assert n[("real_on", "test")] == c["testA"] and n[("real_off", "test")] == c["testB"]
    assert n[("run:p2p", "test")] == n[("run:cyc", "test")] == c["testA"]
    # an explicit composition's A side is all pseudo: the orange training group is the source's real A
    on = space.group("real_on", "train")
    train_a = [s for s in ws["source"].samples if s.partition == "train" and s.attrs["Eyeglasses"] == 1]
    assert "of the source" in on.label and sorted(on.names) == sorted(s.name for s in train_a)
    assert space.group("pseudo", "train").names == [f"trainA/{e['file']}" for e in m["images"]["trainA"]]
    colors = {g.key: g.color for g in space.groups}
    assert colors["run:p2p"] == F.MODEL_COLORS["pix2pix"] and colors["run:cyc"] == F.MODEL_COLORS["cyclegan"]
    assert colors["pseudo"] == "#ff00ff" and colors["real_on"] == "#ff8c00"
    for g in space.groups:  # the projection and the ellipses
        np.testing.assert_allclose(g.xy, (g.features - space.mean) @ space.components.T, rtol=1e-6, atol=1e-9)
        assert g.ellipse is not None and g.ellipse.sigma == 1.0
        assert g.features.shape[1] == 128
    first_calls = sum(calls)
    assert first_calls == 120 + 8 + c["trainB"] + c["testA"] + c["testB"] + 2 * c["testA"]
    # cached per (encoder, source) and per composition / output set: nothing is embedded the second time
    files = sorted(p.name for p in (ws["root"] / "workspace" / "cache" / "features").glob("*.npz"))
    fp = ws["source"].fingerprint()
    assert any(f"-source-{fp}-32px" in f and f.startswith(f"v{F.VERSION}-attr-Eyeglasses-") for f in files)
    assert sum("-comp-fx-" in f for f in files) == 1 and sum("-outputs-" in f for f in files) == 2
    again = F.feature_space(req)
    assert sum(calls) == first_calls and again.timings["source_features_cached"]
    for g1, g2 in zip(space.groups, again.groups):
        np.testing.assert_array_equal(g1.features, g2.features)
    # a retrained encoder (new weights) gets new features
    net, meta = encoders._load(encoders.attribute_cache_file(fp, "Eyeglasses"))
    with __import__("torch").no_grad():
        net.neck[1].weight.mul_(2.0)
    encoders._save(encoders.attribute_cache_file(fp, "Eyeglasses"), net, meta)
    try:
        third = F.feature_space(req)
        assert not third.timings["source_features_cached"] and third.encoder_key != space.encoder_key
    finally:
        fake_classifier(ws["source"])
    # 2 sigma: the same groups, ellipses twice as large
    F.set_sigma(again, 2.0)
    for g1, g2 in zip(space.groups, again.groups):
        np.testing.assert_allclose(np.array(g2.ellipse.axes), 2 * np.array(g1.ellipse.axes), rtol=1e-9)


def test_bad_inputs_get_one_sentence_and_the_rest_still_shows(ws):
    runs = ws["runs"]
    made = []
    try:
        empty = runs / "no-ckpt"
        shutil.copytree(runs / "cyc", empty)
        shutil.rmtree(empty / "checkpoints")
        big = runs / "big"  # a run at another image size
        shutil.copytree(runs / "cyc", big)
        cfg = json.loads((big / "config.json").read_text())
        (big / "config.json").write_text(json.dumps(dict(cfg, image_size=64)))
        other_comp = ws["comp"].parent / "fx-other"  # a composition of another source
        shutil.copytree(ws["comp"], other_comp)
        m = json.loads((other_comp / "manifest.json").read_text())
        m["source"]["fingerprint"] = "0" * 16
        (other_comp / "manifest.json").write_text(json.dumps(m))
        other = runs / "other"
        shutil.copytree(runs / "p2p", other)
        info = json.loads((other / "run.json").read_text())
        (other / "run.json").write_text(json.dumps(dict(info, composition=str(other_comp))))
        made = [empty, big, other, other_comp]
        space = F.feature_space(F.FeatureRequest(composition="fx", runs=("p2p", "no-ckpt", "big", "other", "cyc")))
        assert [g.key for g in space.groups if g.panel == "test"][-2:] == ["run:p2p", "run:cyc"]
        assert len(space.problems) == 3
        joined = " | ".join(space.problems)
        assert "no-ckpt has no checkpoints" in joined
        assert "big translates at 64x64 but the feature space was fitted at 32x32" in joined
        assert "other was trained on a composition of another source" in joined
        for p in space.problems:
            assert p.endswith(".") and p.count(". ") == 0 and "Traceback" not in p
        # an untrained encoder: one sentence, nothing trained behind the user's back
        with pytest.raises(UserError, match=r"identity encoder of source .* is not trained yet"):
            F.feature_space(F.FeatureRequest(composition="fx", encoder="identity"))
        assert not encoders.identity_cache_file(ws["source"].fingerprint()).exists()
        with pytest.raises(UserError, match="no composition named 'nope'"):
            F.feature_space(F.FeatureRequest(composition="nope"))
        # the composition of another source is left out; the source's own groups show
        s2 = F.feature_space(F.FeatureRequest(composition="fx-other", source=str(ws["source"].root)))
        assert "built from another source" in s2.problems[0] and s2.composition is None
        assert {g.key for g in s2.groups} == {"all", "real_on", "real_off"}
    finally:
        for p in made:
            shutil.rmtree(p, ignore_errors=True)


def test_small_groups_lose_only_their_ellipse(tmp_path):
    space = feature_bench.synthetic_space(500, dim=16, runs=1)
    g = space.group("run:run0", "test")
    for name in ("features", "xy"):
        setattr(g, name, getattr(g, name)[:2])
    g.names, g.info, g.thumb_of = g.names[:2], g.info[:2], g.thumb_of[:2]
    F.set_sigma(space, 1.0)
    F.sample_points(space, F.MAX_POINTS)
    assert g.ellipse is None and space.group("pseudo", "train").ellipse is not None
    assert space.problems == ["run:run0 has 2 points in the space of test data, too few for an ellipse (it needs 3); "
                              "its points still show."]
    fig = feature_plot.make_figure(space)
    names = [t.name for t in fig.data]
    assert "run:run0" in names and "run:run0 ellipse" not in names and "pseudo ellipse" in names
    feature_plot.render_png(space, tmp_path / "f.png")


# ================================================================================ figure and exports
def test_figure_legend_hover_and_exports(ws, tmp_path):
    space = F.feature_space(F.FeatureRequest(composition="fx", runs=("p2p", "cyc"), sigma=2.0))
    fig = feature_plot.make_figure(space)
    points = [t for t in fig.data if t.type == "scattergl"]
    lines = [t for t in fig.data if t.type == "scatter"]
    assert len(points) == len(space.groups) and len(lines) == len(space.groups)  # every group has its ellipse
    # both panels share PCA axes; a legend entry toggles the group in both panels
    assert {t.xaxis for t in points} == {"x", "x2"} and fig.layout.xaxis2.matches == "x"
    shown = [t.legendgroup for t in fig.data if t.showlegend is not False]
    assert sorted(shown) == sorted({g.key for g in space.groups})
    assert sorted(t.legendgroup for t in points if t.legendgroup == "all") == ["all", "all"]
    # hover: provenance and a thumbnail index into the group's sprite
    sprites = fig.layout.meta["pairlab"]["sprites"]
    p2p = next(t for t in points if t.legendgroup == "run:p2p")
    sprite = sprites[p2p.meta["group"]]
    assert sprite["uri"].startswith("data:image/jpeg;base64,") and sprite["cell"] == F.THUMB
    idx = [int(c[0]) for c in p2p.customdata]
    assert sorted(idx) == list(range(len(idx))) and "Pix2Pix output of A-image" in p2p.customdata[0][1]
    import base64
    import io

    sheet = Image.open(io.BytesIO(base64.b64decode(sprite["uri"].split(",", 1)[1])))
    assert sheet.size == (sprite["cols"] * F.THUMB, sprite["rows"] * F.THUMB)
    # the 'all' group's thumbnails are one sprite shared by both panels
    alls = [t for t in points if t.legendgroup == "all"]
    assert alls[0].meta["group"] == alls[1].meta["group"]
    assert "2σ" in fig.layout.title.text and "PC1" in fig.layout.xaxis.title.text

    paths = feature_plot.export(space, tmp_path / "out", fig=fig)
    png = Image.open(paths["png"])
    assert png.size == (1500, 720) and np.asarray(png).std() > 10
    text = paths["html"].read_text()
    assert "pairlabAttachHover" in text and "<script src=\"http" not in text and "Plotly.newPlot" in text
    assert paths["html"].stat().st_size > 3_000_000  # plotly.js inlined: works offline
    rows = paths["csv"].read_text().splitlines()
    assert rows[0].startswith("panel,group,key,n,pc1,pc2") and len(rows) == 1 + len(space.groups)
    meta = json.loads(paths["json"].read_text())
    assert meta["request"]["runs"] == ["p2p", "cyc"] and len(meta["explained_variance_ratio"]) == 2
    summary = F.summary_text(space)
    assert "PCA explained variance: PC1" in summary and "Pix2Pix outputs (pix2pix " in summary  # short label


def test_twenty_thousand_points_stay_light():
    space = feature_bench.synthetic_space(20_000, dim=32)
    fig = feature_plot.make_figure(space)
    alls = [t for t in fig.data if t.legendgroup == "all" and t.type == "scattergl"]
    assert [len(t.x) for t in alls] == [20_000, 20_000]
    assert alls[0].meta["group"] == alls[1].meta["group"]  # one sprite for the source in both panels
    per_sprite = {}
    for t in fig.data:
        if t.type == "scattergl" and t.meta["group"]:
            idx = np.asarray(t.customdata[:, 0], dtype=int)
            per_sprite.setdefault(t.meta["group"], set()).update(idx[idx >= 0].tolist())
    assert sum(len(v) for v in per_sprite.values()) <= F.THUMBS_TOTAL
    assert len(per_sprite[alls[0].meta["group"]]) >= 1000  # the source still carries many
    assert len(fig.to_json()) < 15_000_000


def test_cli_features(ws, tmp_path, capsys):
    out = tmp_path / "cli"
    code = cli.main(["features", "fx", "--runs", "p2p", "cyc", "--sigma", "2", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "PCA explained variance" in text and "CycleGAN outputs (cyclegan " in text
    assert (out / "feature-space.png").is_file() and (out / "feature-space.html").is_file()
    assert json.loads((out / "feature-space.json").read_text())["request"]["sigma"] == 2.0
    assert cli.main(["features", "nope"]) == 2
    assert capsys.readouterr().err.strip() == "error: There is no composition named 'nope'."
