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
    # every LaTeX special character is escaped, including '<' of 'Pixel accuracy (<20)' and '#' of run names
    assert compare.latex_escape("Pixel accuracy (<20) #924167 α0.50 >x") == (
        "Pixel accuracy (\\textless{}20) \\#924167 $\\alpha$0.50 \\textgreater{}x")
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


def test_input_unchanged_baseline_in_table_exports_and_plot(cmp_ws):
    from pairlab.eval.evaluate import BASELINE_NAME, evaluate_identity, identity_baselines, is_baseline, split_baselines
    from pairlab.eval.metrics import attribute_region, masked_l1

    r = cmp_ws["runs"]
    names = FAST + ["gt_l1_region", "gt_l1_outside", "gt_region_removed", "lpips_input"]
    results = evaluate_runs([r["hi-s1"], r["lo-s0"], r["hi-s0"]], metrics=names, write=False, baseline=True)
    runs, (base,) = split_baselines(results)  # both compositions hold the same test images: one baseline row
    assert [x["name"] for x in runs] == ["hi-s1", "lo-s0", "hi-s0"] and results[-1] is base
    assert is_baseline(base) and base["name"] == BASELINE_NAME and base["ok"] and base["alpha"] is None
    assert sorted(base["runs"]) == ["hi-s0", "hi-s1", "lo-s0"] and base["compositions"] == ["cmp-a0", "cmp-a1"]
    assert base["image_size"] == 32 and base["n_test"] == runs[0]["n_test"]
    # the identity map's values, computed here from the same test images at the runs' size
    out = translate_test_set(r["hi-s0"])
    idx = out.truth_indices()
    inp, truth = out.load("input", idx), out.load("truth", idx)
    l1 = np.abs(inp / 255.0 - truth / 255.0).reshape(len(idx), -1).mean(1)
    assert base["metrics"]["gt_l1"]["mean"] == pytest.approx(l1.mean(), abs=1e-6)
    region = attribute_region(inp, truth)
    assert base["metrics"]["gt_l1_region"]["mean"] == pytest.approx(np.nanmean(masked_l1(inp, truth, region)))
    assert base["metrics"]["gt_region_removed"]["mean"] == 0.0
    for x in runs:
        s = x["metrics"]["gt_region_removed"]
        assert s["ci_low"] <= s["mean"] <= s["ci_high"] and s["n"] == x["n_test"] - int((region.sum((1, 2)) == 0).sum())
    # metrics that compare output with input do not apply to it (LPIPS input-output: no weights here anyway)
    assert set(base["not_applicable"]) == {"lpips_input"} and "lpips_input" not in base["unavailable"]
    assert "LPIPS input-output" in base["not_applicable"]["lpips_input"]
    # the table: its own row after the runs, recipe 'baseline', 'does not apply' where it does not
    headers, rows = compare.comparison_table(results)
    assert [row[0] for row in rows] == ["lo-s0", "hi-s0", "hi-s1", BASELINE_NAME]
    assert rows[3][1] == "baseline" and rows[3][3] == ""
    col = {h.split(" ↓")[0].split(" ↑")[0]: i for i, h in enumerate(headers)}
    assert rows[3][col["L1 to ground truth"]].startswith(f"{base['metrics']['gt_l1']['mean']:.4f}")
    assert "Region error removed (task completion)" in col and "Outside-region L1 to truth (preservation)" in col
    parsed = list(csv.reader(io.StringIO(compare.to_csv(headers, rows))))
    assert parsed[4][0] == BASELINE_NAME and float(parsed[4][col["Region error removed (task completion)"]].split()[0]) == 0.0
    tex = compare.to_latex(headers, rows)
    assert "input unchanged (identity map) & baseline & AtoB &  &" in tex
    # aggregated over seeds, the baseline row follows the groups
    headers, rows = compare.comparison_table(results, aggregate=True)
    assert [row[0] for row in rows][-1] == BASELINE_NAME and len(rows) == 3 and rows[2][2] == ""
    # the plot: the runs' series leave it out; it is a horizontal reference line
    (series,) = compare.plot_series(results, "gt_l1")
    assert series["x"] == [0.0, 1.0]
    (line,) = compare.baseline_lines(results, "gt_l1")
    assert line["y"] == base["metrics"]["gt_l1"]["mean"] and line["ci_low"] <= line["y"] <= line["ci_high"]
    assert compare.baseline_lines(results, "infosim") == []
    from pairlab.ui.compare_tab import make_plot

    fig = make_plot(results, "gt_l1")
    assert any(s.y0 == line["y"] for s in fig.layout.shapes if s.type == "line")
    assert any(BASELINE_NAME in (a.text or "") for a in fig.layout.annotations)
    # the sibling functions: from results, or for one composition
    again = identity_baselines(runs, metrics=FAST)
    assert len(again) == 1 and again[0]["metrics"]["gt_l1"]["mean"] == base["metrics"]["gt_l1"]["mean"]
    one = evaluate_identity(cmp_ws["comps"][1.0], "AtoB", 32, metrics="gt_l1")
    assert one["metrics"]["gt_l1"]["mean"] == base["metrics"]["gt_l1"]["mean"]
    assert len(evaluate_runs([r["hi-s0"]], metrics=FAST, write=False)) == 1  # the baseline is opt-in


def test_grid_outlines_the_attribute_region(cmp_ws):
    r = cmp_ws["runs"]
    plain = compare.build_grid([r["hi-s0"]], rows=2, seed=None, cell=64)
    lined = compare.build_grid([r["hi-s0"]], rows=2, seed=None, cell=64, outline=True)
    assert lined["samples"] == plain["samples"] and lined["outlined"] >= 1
    a, b = np.asarray(plain["image"]).astype(int), np.asarray(lined["image"])
    changed = np.any(a != b, axis=-1)
    assert changed.any() and (b[changed] == compare.OUTLINE_COLOR).all()
    # a square region's outline is its border, a line inside the region
    m = np.zeros((8, 8), bool)
    m[2:6, 2:6] = True
    o = compare.region_outline(m, 16)
    assert o.sum() == 4 * 8 - 4 and o[4, 4] and not o[6, 6] and not o[5, 5]
    assert not compare.region_outline(np.zeros((8, 8), bool), 16).any()


def test_metrics_that_do_not_apply_to_the_baseline_say_so_once():
    from pairlab.eval.evaluate import BASELINE_NAME, baseline_note, format_table

    s = {"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 4, "label": "InfoSIM", "lower_is_better": True}
    runs = [{"name": f"r{k}", "ok": True, "direction": "AtoB", "alpha": 0.5 * k, "recipe": {"kind": "alpha-paired",
             "alpha": 0.5 * k}, "metrics": {"infosim": s}} for k in range(2)]
    base = {"name": BASELINE_NAME, "baseline": "identity", "ok": True, "direction": "AtoB", "alpha": None,
            "metrics": {}, "not_applicable": {"infosim": "x.", "confidence_drop": "y."}}
    headers, rows = compare.comparison_table(runs + [base])
    assert rows[-1][0] == BASELINE_NAME and rows[-1][-1] == "does not apply"
    note = baseline_note(runs + [base])  # only the metrics the runs have, in one sentence
    assert note.startswith("InfoSIM compares each output with its own input") and note.count(".") == 1
    assert "Confidence drop" not in note
    text = format_table(runs + [base])
    assert text.count("does not apply") == 2 and text.count(note) == 1  # the cell, and the sentence once


def test_baseline_rows_per_direction_and_per_test_set(cmp_ws, tmp_path):
    from pairlab.eval.evaluate import BASELINE_NAME, identity_baselines

    r = cmp_ws["runs"]
    results = evaluate_runs([r["hi-s0"], r["lo-s0"]], metrics="gt_l1", direction="both", write=False)
    rows = identity_baselines(results, metrics="gt_l1")
    assert [x["name"] for x in rows] == [f"{BASELINE_NAME} · AtoB", f"{BASELINE_NAME} · BtoA"]
    assert [x["direction"] for x in rows] == ["AtoB", "BtoA"]
    # a run whose composition holds other test images gets its own baseline row, named by composition
    other = dict(results[0], composition_path=str(cmp_ws["comps"][0.0]), name="fake", image_size=16)
    rows = identity_baselines([results[0], other], metrics="gt_l1")
    assert len(rows) == 2 and rows[0]["name"] == f"{BASELINE_NAME} · cmp-a1" and rows[1]["image_size"] == 16


def test_headless_compare_writes_what_the_tab_writes(cmp_ws, tmp_path, capsys):
    """``python -m pairlab compare`` (in-process) writes the table, LaTeX, grid, plot and JSON; its CSV is the one the
    Compare tab's Evaluate writes for the same runs and settings."""
    import json

    import gradio as gr

    from pairlab import cli
    from pairlab.eval.comparison import Comparison, compare as headless
    from pairlab.eval.evaluate import BASELINE_NAME
    from pairlab.ui import compare_tab

    r = cmp_ws["runs"]
    ids = ["hi-s1", "lo-s0", "hi-s0"]
    out = tmp_path / "out"
    assert cli.main(["compare", *ids, "--metrics", ",".join(FAST), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Evaluated 3 of 3 run(s)" in printed and "wrote " in printed and BASELINE_NAME in printed
    names = {"comparison.csv", "comparison.tex", "grid.png", "plot.html", "comparison.json"}
    assert {p.name for p in out.iterdir()} == names and all((out / n).stat().st_size > 0 for n in names)
    rows = list(csv.reader(io.StringIO((out / "comparison.csv").read_text())))
    assert sorted(row[0] for row in rows[1:4]) == sorted(ids) and rows[4][0] == BASELINE_NAME and len(rows) == 5
    meta = json.loads((out / "comparison.json").read_text())
    assert [r[0] for r in meta["rows"]] == [r[0] for r in rows[1:]] and meta["grid"]["columns"][0] == "source (A)"
    assert meta["problems"] == {}
    # the CSV has separate mean / low / high columns of plain numbers, and the number of test images
    assert "n" in rows[0] and any(h.endswith(" mean") for h in rows[0]) and any(h.endswith(" low") for h in rows[0])
    j = next(i for i, h in enumerate(rows[0]) if h.endswith(" mean"))
    assert rows[0][j + 1].endswith(" low") and rows[0][j + 2].endswith(" high")
    assert all("[" not in c for row in rows[1:] for c in row)
    assert float(rows[1][j + 1]) <= float(rows[1][j]) <= float(rows[1][j + 2])

    # the tab's Evaluate (through its page-load reopen, which calls the same handler) writes the same CSV
    with gr.Blocks():
        tab = compare_tab.build_tab()
    got = tab["reopen"](ids, "all", "alpha", "AtoB", 4, 0, 0, False, FAST, False, progress=lambda *a, **k: None)
    paths = got[6]
    assert [p.split("/")[-1] for p in paths] == ["comparison.csv", "comparison.tex", "grid.png"]
    assert open(paths[0]).read() == (out / "comparison.csv").read_text()
    assert open(paths[1]).read() == (out / "comparison.tex").read_text()
    assert got[7].startswith("Evaluated 3 of 3 run(s), with the")

    # the object: table, figure, grid and exports; aggregated over seeds, and grid only
    c = headless([r[i] for i in ids], metrics=FAST, aggregate=True, rows=2, seed=None)
    assert isinstance(c, Comparison) and c.ok and c.problems() == {}
    headers, trows = c.table()
    assert headers[:3] == ["run", "recipe", "seeds"] and any(row[2] == "0, 1" for row in trows)
    assert c.table(aggregate=False) == compare.comparison_table(c.results, mark_best=True)
    assert c.grid().width > 0 and len(c.sheet["samples"]) == 2 and c.grid_info().startswith("Page 1 of 2")
    assert "against alpha" in c.figure("gt_mse").layout.title.text
    assert set(c.export(tmp_path / "only", include=("csv", "grid"))) == {"csv", "grid"}
    only_grid = headless(ids, evaluate=False, rows=2)
    assert not only_grid.evaluated and only_grid.results == [] and only_grid.grid() is not None
    assert set(only_grid.export(tmp_path / "g", include=("csv", "tex", "grid"))) == {"grid"}
    # one sentence for what cannot be compared
    with pytest.raises(Exception, match="Choose at least one finished run"):
        headless([])
    with pytest.raises(Exception, match="Choose at least one metric"):
        headless(ids, metrics=[])
    assert cli.main(["compare", "no-such-run", "--out", str(tmp_path / "x")]) == 2
    assert "There is no run folder no-such-run" in capsys.readouterr().err


# ----- issue 16: what the Compare tab shows ----------------------------------------------------------------
def test_only_runnable_metrics_are_ticked_by_default(monkeypatch, tmp_path):
    """Label-map scores (no palette on faces) and LPIPS (no AlexNet weights here) are not ticked by default."""
    from pairlab.eval import REGISTRY

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    names = lab.Comparison.default_metrics()
    assert "gt_mse" in names and "gt_l1" in names
    for name in names:
        assert "palette" not in REGISTRY[name].needs and "lpips_weights" not in REGISTRY[name].needs
    assert len(names) < len(REGISTRY)


def test_short_labels_tell_runs_apart_that_differ_only_by_max_iters(cmp_ws, tmp_path):
    from pairlab.eval.comparison import short_labels
    from pairlab.train.run import Run

    a = tmp_path / "runs" / "a-very-long-run-id-of-seventy-characters-or-so-0123456789-abcdefghij-1"
    b = tmp_path / "runs" / "a-very-long-run-id-of-seventy-characters-or-so-0123456789-abcdefghij-2"
    shutil.copytree(cmp_ws["runs"]["hi-s0"], a)
    shutil.copytree(cmp_ws["runs"]["hi-s0"], b)
    cfg = b / "config.json"
    import json

    data = json.loads(cfg.read_text())
    data["max_iters"] = int(data.get("max_iters") or 2) + 5
    cfg.write_text(json.dumps(data))
    labels = short_labels([Run(a), Run(b)])
    assert labels[a.name] != labels[b.name]
    assert all("max_iters=" in v and len(v) < 60 for v in labels.values())
    # a run of another model: the settings its model implies (lambda_l1, pool_size, ...) are not listed
    c = tmp_path / "runs" / "other-model"
    shutil.copytree(cmp_ws["runs"]["hi-s0"], c)
    other = dict(json.loads((c / "config.json").read_text()), model="pix2pix", lambda_l1=100.0, pool_size=0)
    (c / "config.json").write_text(json.dumps(other))
    labels = short_labels([Run(a), Run(b), Run(c)])
    assert "=" not in labels[c.name] and "lambda_l1" not in labels[a.name] + labels[b.name]
    assert all("max_iters=" in labels[x.name] for x in (a, b))


def test_display_table_short_names_and_test_set_size(cmp_ws):
    r = cmp_ws["runs"]
    results = evaluate_runs([r["hi-s0"], r["lo-s0"]], metrics=FAST)
    c = lab.Comparison.from_results(results)
    headers, rows = c.display_table({"hi-s0": "cyclegan α1.00 s0 #abc"})
    assert headers[:2] == ["run", "test images"]
    assert rows[[row[0] for row in rows].index("cyclegan α1.00 s0 #abc")][1] == str(results[0]["n_test"])
    assert c.csv().splitlines()[1].split(",")[0] in ("lo-s0", "hi-s0")  # exports keep the full id


def test_categorical_views_are_bars_and_one_seed_says_so(cmp_ws):
    r = cmp_ws["runs"]
    results = evaluate_runs([r["hi-s0"], r["lo-s0"]], metrics=FAST)
    bars = lab.Comparison.from_results(results, view="baselines").figure("gt_mse")
    assert bars.data[0].type == "bar"
    line = lab.Comparison.from_results(results).figure("gt_mse")
    assert line.data[0].type == "scatter"
    assert "over seeds" not in line.layout.title.text and "one seed" in line.layout.title.text


def test_unavailable_metrics_in_one_line():
    c = lab.Comparison.from_results([{"name": "r1", "ok": True, "metrics": {}, "unavailable": {
        "lpips": "LPIPS to ground truth is unavailable: put the AlexNet weights here.",
        "lpips_input": "LPIPS input-output is unavailable: put the AlexNet weights here."}}])
    line = c.unavailable_line()
    assert "\n" not in line and "LPIPS to ground truth" in line and "LPIPS input-output" in line
    assert c.report().count("unavailable") <= 1
