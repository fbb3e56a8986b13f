"""The Compare tab's core (pairlab.eval.compare) on tiny runs: grid shape and column order, ordering and grouping by
alpha / recipe, the paper's views, CSV / LaTeX export, plot data with error bars over seeds, and one sentence for a
bad run while the rest of the comparison still shows.

Workspace: a 120-face SynthFaces at 64x64, two alpha-paired compositions (alpha 0 and 1, n 8, 4 test images) and
tiny CycleGAN runs (32x32, ngf 8, two iterations): alpha 1 with seeds 0 and 1, alpha 0 with seed 0."""
from __future__ import annotations

import csv
import io
import shutil

import numpy as np
import pytest

from pairlab import lab
from pairlab.data.recipes import Recipe
from pairlab.eval import compare, evaluate_runs, translate_test_set
from pairlab.train import train
from conftest import tiny_config as tiny

FAST = ["gt_mse", "gt_l1"]




@pytest.fixture(scope="module")
def cmp_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmpws")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PAIRLAB_HOME", str(root / "workspace"))
        mp.delenv("PAIRLAB_DATA_ROOTS", raising=False)
        mp.setenv("TORCH_HOME", str(root / "torch_home"))
        source = lab.synthfaces_source(count=120, size=64)
        comps = {a: lab.build_composition(source, Recipe(kind="alpha-paired", alpha=a, n=8, n_test=4),
                                          name=f"cmp-a{a:.0f}") for a in (0.0, 1.0)}
        runs = root / "workspace" / "runs"
        made = {}
        for name, a, seed in (("hi-s0", 1.0, 0), ("lo-s0", 0.0, 0), ("hi-s1", 1.0, 1)):
            train(comps[a], runs / name, tiny(seed=seed))
            made[name] = runs / name
        yield {"root": root, "runs": made, "comps": comps}


def test_grouping_and_ordering_by_alpha(cmp_ws):
    r = cmp_ws["runs"]
    described = compare.describe_runs([r["hi-s1"], r["lo-s0"], r["hi-s0"]])
    assert not any(d.get("error") for d in described)
    ordered = [d["name"] for d in compare.sort_runs(described, "alpha")]
    assert ordered == ["lo-s0", "hi-s0", "hi-s1"]
    groups = compare.group_runs(described, "alpha")
    assert list(groups) == ["alpha 0.00", "alpha 1.00"]
    assert [d["name"] for d in groups["alpha 1.00"]] == ["hi-s0", "hi-s1"]
    assert list(compare.group_runs(described, "recipe")) == ["alpha 0.00", "alpha 1.00"]
    # the paper's views: the alpha view keeps alpha-paired runs, Table 4 needs pseudo recipes
    kept, by, note = compare.apply_view("alpha", described)
    assert [d["name"] for d in kept] == ordered and by == "alpha" and note == ""
    kept, by, note = compare.apply_view("baselines", described)
    assert kept == [] and "None of the selected runs fit" in note
    # sweeps: finished runs sharing model and preset
    sw = compare.sweeps([{"id": "a", "state": "done", "model": "cyclegan", "preset": "p", "composition": "c1", "seed": 0},
                         {"id": "b", "state": "done", "model": "cyclegan", "preset": "p", "composition": "c2", "seed": 0},
                         {"id": "c", "state": "running", "model": "cyclegan", "preset": "p", "composition": "c2",
                          "seed": 1}])
    assert list(sw.values()) == [["a", "b"]] and "2 compositions" in next(iter(sw))


def test_grid_shape_and_columns(cmp_ws):
    r = cmp_ws["runs"]
    g = compare.build_grid([r["hi-s0"], r["lo-s0"]], rows=3, seed=1, cell=32)
    assert g["problems"] == {}
    assert g["columns"][0] == "source (A)" and g["columns"][-1] == "ground truth (B)"
    assert g["columns"][1].startswith("cyclegan alpha 0.00") and g["columns"][2].startswith("cyclegan alpha 1.00")
    assert len(g["samples"]) == 3 and g["pages"] == 2  # 4 test images, 3 per page
    img = g["image"]
    assert img.width >= 4 * 32 and img.height >= 3 * 32 and img.height < 3 * 32 + 120
    # shuffling is repeatable, the last page holds the rest, no shuffle keeps the test order
    assert compare.build_grid([r["hi-s0"]], rows=3, seed=1, cell=32)["samples"] == g["samples"]
    last = compare.build_grid([r["hi-s0"], r["lo-s0"]], rows=3, seed=1, page=1, cell=32)
    assert len(last["samples"]) == 1 and last["samples"][0] not in g["samples"]
    plain = compare.build_grid([r["hi-s0"]], rows=4, seed=None, cell=32)
    assert plain["samples"] == [it.name for it in translate_test_set(r["hi-s0"]).items]
    # the source column shows the inputs
    arr = np.asarray(img)
    assert arr.std() > 5


def test_bad_runs_get_one_sentence_and_the_rest_still_shows(cmp_ws, tmp_path):
    r = cmp_ws["runs"]
    runs = r["hi-s0"].parent
    empty = runs / "no-ckpt"
    shutil.copytree(r["lo-s0"], empty)
    shutil.rmtree(empty / "checkpoints")
    corrupt = runs / "corrupt"
    shutil.copytree(r["lo-s0"], corrupt)
    (corrupt / "checkpoints" / "latest.pt").write_bytes(b"not a checkpoint")
    try:
        g = compare.build_grid([r["hi-s0"], empty, corrupt, r["lo-s0"]], rows=2, cell=32)
        assert set(g["problems"]) == {"no-ckpt", "corrupt"}
        assert "no checkpoints" in g["problems"]["no-ckpt"]
        for why in g["problems"].values():
            assert why.count(". ") == 0 and "Traceback" not in why and why.endswith(".")
        assert len(g["columns"]) == 4 and g["image"] is not None  # source, two runs, truth
        results = evaluate_runs([r["hi-s0"], empty], metrics=FAST, write=False)
        headers, rows = compare.comparison_table(results)
        assert rows[0][0] == "hi-s0" and rows[1][0] == "no-ckpt" and "no checkpoints" in rows[1][4]
    finally:
        shutil.rmtree(empty)
        shutil.rmtree(corrupt)


def test_table_csv_latex_and_plot(cmp_ws):
    r = cmp_ws["runs"]
    results = evaluate_runs([r["hi-s1"], r["lo-s0"], r["hi-s0"]], metrics=FAST)
    assert all(x["ok"] for x in results)
    headers, rows = compare.comparison_table(results)
    assert headers[:4] == ["run", "recipe", "dir", "alpha"] and headers[4].startswith("MSE to ground truth")
    assert [row[0] for row in rows] == ["lo-s0", "hi-s0", "hi-s1"]
    text = compare.to_csv(headers, rows)
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == headers and parsed[1][0] == "lo-s0" and len(parsed) == 4
    mse = results[0]["metrics"]["gt_mse"]["mean"]
    assert f"{mse:.4f}" in parsed[3][4]
    tex = compare.to_latex(headers, rows, caption="Alpha ratios")
    assert "\\begin{tabular}{" + "l" * len(headers) + "}" in tex and "\\toprule" in tex
    assert "lo-s0 & alpha 0.00 & AtoB & 0.00" in tex and "$\\downarrow$" in tex and "\\caption{Alpha ratios}" in tex
    assert compare.latex_escape("a_b & 5%") == "a\\_b \\& 5\\%"
    # aggregated over seeds: one row per alpha, seeds listed
    headers, rows = compare.comparison_table(results, aggregate=True)
    assert headers[:3] == ["run", "recipe", "seeds"] and len(rows) == 2 and rows[1][2] == "0, 1"
    # plot data: one series, x = alpha, the alpha-1 point averages two seeds with an error bar
    (series,) = compare.plot_series(results, "gt_mse")
    assert series["x"] == [0.0, 1.0] and series["seeds"] == [1, 2]
    both = [x["metrics"]["gt_mse"]["mean"] for x in results if x["name"].startswith("hi")]
    assert series["y"][1] == pytest.approx(np.mean(both))
    assert series["err_high"][1] > 0 and series["err_low"][1] > 0
    assert compare.plotted_metrics(results) == FAST
