"""Experiments end to end on the tiny profile: plan, compositions, queued runs, evaluation, report; resume."""
from __future__ import annotations

import json

import pytest

from pairlab import lab
from pairlab.errors import UserError
from pairlab.experiments import plan as plan_mod
from pairlab.experiments.paper import CONFIGS, EXPERIMENTS
from pairlab.experiments.runner import composition_name, run_name

pytestmark = pytest.mark.slow


def test_plans_share_arms_and_refuse_bad_names():
    every = lab.plan_experiment("all", profile="tiny")
    assert set(every.experiments) == set(EXPERIMENTS)
    assert len(every.arms) == 13 and len(every.runs) == 13 * len(every.seeds)
    for name in EXPERIMENTS:
        p = lab.plan_experiment(name, profile="tiny", seeds="0-2")
        assert p.seeds == (0, 1, 2) and set(plan_mod.ARMS_OF[name]) == set(CONFIGS[name])
        assert set(p.arms) == set(plan_mod.ARMS_OF[name].values())
    # the 0.5 pseudo-paired CycleGAN is Table 4's "ours", Table 5's 0.5 and Table 7's "implicit": one arm
    assert plan_mod.ARMS_OF["baselines"]["pseudo-paired"] == plan_mod.ARMS_OF["pseudo-alpha"]["0.5"] == \
        plan_mod.ARMS_OF["explicit"]["implicit"]
    arms = every.arms
    assert arms["pix2pix-pp-1"].model == "pix2pix" and arms["pp-1"].recipe == arms["pix2pix-pp-1"].recipe
    assert arms["alpha-0.25"].recipe.alpha == 0.25 and arms["pp-0.75"].recipe.pseudo_alpha == 0.75
    for bad, message in ((("table9",), "Unknown experiment"), (("alpha", "eyeglasses", "huge"), "Unknown profile"),
                         (("alpha", "hats"), "Unknown task")):
        with pytest.raises(UserError, match=message):
            lab.plan_experiment(*bad)


def test_a_tiny_experiment_runs_evaluates_reports_and_resumes(home):
    plan = lab.plan_experiment("explicit", profile="tiny", seeds="0,1")
    est = lab.estimate_experiment(plan, measure=False)
    assert len(est["runs"]) == 4 and all(r["iterations"] == 2 for r in est["runs"])

    manifest = lab.start_experiment(plan)
    folder = lab.experiment_dir(plan)
    assert json.loads((folder / "manifest.json").read_text())["arms"].keys() == manifest["arms"].keys()
    assert manifest["profile"]["name"] == "tiny" and manifest["seeds"] == [0, 1] and manifest["code"]["pairlab"]
    for arm in plan.arms:
        assert (home / "compositions" / composition_name(plan, arm) / "manifest.json").exists()
    st = lab.experiment_status(plan)
    assert len(st["runs"]) == 4 and not st["done"]

    # a second start while they are queued queues nothing new
    again = lab.start_experiment(plan)
    assert again["arms"] == manifest["arms"] and len(lab.runs()) == 4

    st = lab.wait_for_experiment(plan, interval=1, echo=lambda line: None, timeout=600)
    assert st["done"], st

    # a failed run is resumed by the next start (and trains to the end again)
    victim = lab.Run(home / "runs" / run_name(plan, "pp-0.5", 1))
    victim.update_status(state="failed", error="Something broke.")
    lab.start_experiment(plan)
    assert victim.state() in ("queued", "running")
    assert lab.wait_for_experiment(plan, interval=1, echo=lambda line: None, timeout=600)["done"]

    out = lab.report_experiment(plan)
    got = out["explicit"]
    res, paths = got["results"], got["paths"]
    for name in ("results.json", "table.csv", "table.tex", "table.md", "claims.csv", "report.html"):
        assert paths[name].exists(), name
    cells = {(c["metric"], c["direction"], c["config"]): c for c in res["cells"]}
    cell = cells[("gt_l1", "AtoB", "explicit")]
    assert cell["n_seeds"] == 2 and cell["low"] <= cell["mean"] <= cell["high"]
    assert {c["claim_id"] for c in res["claims"]} == {"explicit-lower-infosim", "explicit-implicit-completes-task",
                                                       "explicit-implicit-removes-more"}
    verdicts = {c["claim_id"]: c["verdict"] for c in res["claims"]}
    assert verdicts["explicit-implicit-removes-more"] in ("holds", "not significant", "reversed")
    # the tiny profile computes no encoder metrics: those claims have no seeds to test
    assert verdicts["explicit-lower-infosim"] == verdicts["explicit-implicit-completes-task"] == "too few seeds"
    assert res["baseline"]["AtoB"]["gt_l1"]["mean"] >= 0
    html = paths["report.html"].read_text()
    assert "explicit-lower-infosim" in html and "Table 7" in html.replace("table7", "Table 7") and "plotly" in html
    header = paths["table.csv"].read_text().splitlines()[0]
    assert header == "metric,direction,config,mean,ci_low,ci_high,n_seeds,n_images,interval"
    md = paths["table.md"].read_text().splitlines()
    md_row = next(line for line in md if line.startswith("| gt_l1 | AtoB |"))
    assert f"{cell['mean']:.4g} [{cell['low']:.4g}, {cell['high']:.4g}]" in md_row
    assert any(line.startswith("| explicit-implicit-removes-more") and f"**{verdicts['explicit-implicit-removes-more']}**"
               in line for line in md)
    tex = paths["table.tex"].read_text()
    assert tex.startswith(r"\begin{tabular}") and "gt\\_l1" in tex and "_l1" not in tex.replace("\\_", "")
