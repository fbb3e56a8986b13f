"""``python -m pairlab study handoff`` and ``study results`` with the agreement, warnings and hand-off lines;
the study core and the hand-off import without Gradio; a freeze from runs labels them by their short names."""
from __future__ import annotations

import subprocess
import sys

import pytest

from pairlab import cli
from pairlab.study import plan as plan_mod, session
from pairlab.study.store import VoteStore
from test_study import make_inputs, small_design


@pytest.fixture
def study(tmp_path, monkeypatch):
    monkeypatch.setenv("PAIRLAB_HOME", str(tmp_path / "workspace"))
    sid = plan_mod.freeze(small_design(), make_inputs(tmp_path / "imgs", size=48))
    yield sid
    VoteStore.forget()


def test_handoff_command_sets_and_shows(study, capsys):
    assert cli.main(["study", "handoff", study]) == 0
    assert capsys.readouterr().out.strip() == f"study {study} hands participants off to none"
    assert cli.main(["study", "handoff", study, "--platform", "prolific", "--code", "CC-9"]) == 0
    assert "prolific with completion code CC-9" in capsys.readouterr().out
    assert session.StudyService().store.settings(study) == {"platform": "prolific", "completion_code": "CC-9"}
    assert cli.main(["study", "handoff", study, "--code", ""]) == 2             # Prolific cannot go without a code
    assert "Prolific needs the study's completion code" in capsys.readouterr().err
    assert cli.main(["study", "handoff", study, "--platform", "mturk", "--code", "bad code"]) == 2
    assert "completion code must be 1 to 40" in capsys.readouterr().err
    assert cli.main(["study", "handoff", "nope"]) == 2
    assert "no study with this id" in capsys.readouterr().err


def test_results_print_agreement_warnings_and_handoff(study, capsys):
    svc = session.StudyService()
    for k in range(2):
        tok, st = svc.join(study)
        while not st["finished"]:
            st = svc.vote(study, tok, st["trial"]["handle"], ("left", "both")[k], 700)
    cli.main(["study", "handoff", study, "--platform", "mturk", "--code", "MT1"])
    capsys.readouterr()
    assert cli.main(["study", "results", study, "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    assert "agreement: Krippendorff's alpha (nominal)" in out
    assert "hand-off: mturk, completion code MT1" in out
    assert "warning: Only 2 participants answered" in out


def test_study_core_imports_without_gradio():
    code = ("import sys; sys.modules['gradio'] = None\n"
            "import pairlab.study.stats, pairlab.study.platforms, pairlab.study.preview, pairlab.study.server, "
            "pairlab.study.export, pairlab.cli.study\n"
            "assert 'gradio' not in [m for m in sys.modules if sys.modules[m] is not None]")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_default_labels_are_short_run_names(tmp_path, monkeypatch):
    """Without labels, a study's runs are named by Run.display_name (the folder name when it is no run)."""
    import json
    import types

    from pairlab.study import sources

    inputs = make_inputs(tmp_path / "imgs", n=3, size=32, n_cands=2)
    folders = [tmp_path / "synthfaces-n1500-128px-seed0-eyeglasses-pseudo-paired0.50-n60-s0-cyclegan-cpu-demo-64-s0-924167",
               tmp_path / "plain-folder"]
    for f in folders:
        f.mkdir()
    (folders[0] / "config.json").write_text(json.dumps({"model": "cyclegan", "seed": 0}))

    def translate_test_set(run_dir, checkpoint="latest", direction="AtoB"):
        k = folders.index(run_dir)
        items = [types.SimpleNamespace(name=n, input=inputs.sources[n], output=p, truth=None)
                 for n, p in inputs.candidates[k].outputs.items()]
        return types.SimpleNamespace(items=items, checkpoint="iter_1")

    monkeypatch.setitem(sys.modules, "pairlab.eval.outputs", types.SimpleNamespace(translate_test_set=translate_test_set))
    got = sources.candidates_from_runs(folders)
    assert [c.label for c in got.candidates] == ["cyclegan s0 #924167", "plain-folder"]
    assert got.candidates[0].ref.startswith(str(folders[0]))          # the full id stays lab-side
