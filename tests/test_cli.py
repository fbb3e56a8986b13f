"""The CLI: --help everywhere, one-sentence errors with exit code 2, and a real compose from SynthFaces."""
import subprocess
import sys

from pairlab import cli
from pairlab.data.compose import load_manifest

COMMANDS = ["synthfaces", "compose", "bench", "train", "runs", "evaluate", "compare", "study", "translate", "features",
            "demo", "experiment"]


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "pairlab", *args], capture_output=True, text=True, env=env, timeout=120)


def test_help_on_every_command():
    top = run("--help")
    assert top.returncode == 0
    for name in COMMANDS:
        assert name in top.stdout
        res = run(name, "--help")
        assert res.returncode == 0 and "usage:" in res.stdout, name


def test_every_registered_command_is_covered():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)


def test_core_imports_without_gradio():
    code = ("import sys; sys.modules['gradio'] = None\n"
            "import pairlab.cli, pairlab.lab, pairlab.bench, pairlab.data.compose, pairlab.data.sources, "
            "pairlab.data.synthfaces, pairlab.data.synthesizers, pairlab.data.landmarks\n"
            "assert 'gradio' not in [m for m in sys.modules if sys.modules[m] is not None]")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_user_errors_are_one_sentence(home, tmp_path):
    res = run("compose", "synthfaces", "--alpha", "1.5", "--recipe", "alpha-paired")
    assert res.returncode == 2
    assert res.stderr.strip() == "error: alpha must be between 0 and 1, got 1.5."
    res = run("compose", str(home / "nowhere"))
    assert res.returncode == 2 and "is not a folder" in res.stderr and "Traceback" not in res.stderr
    res = run("compose", str(tmp_path / "nowhere"))  # outside the workspace and PAIRLAB_DATA_ROOTS (issue 12)
    assert res.returncode == 2 and "outside the allowed folders" in res.stderr and "Traceback" not in res.stderr
    res = run("synthfaces", str(tmp_path / "sf"), "--size", "32", "--count", "5")
    assert res.returncode == 2 and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_compose_from_synthfaces(home, capsys):
    code = cli.main(["compose", "synthfaces", "--sf-count", "200", "--sf-size", "64", "--recipe", "alpha-paired",
                     "--alpha", "0.25", "--n", "40", "--n-test", "10", "--name", "cli-test"])
    out = capsys.readouterr().out
    assert code == 0 and "measured alpha 0.2500" in out
    m = load_manifest(home / "compositions" / "cli-test")
    assert m["counts"]["trainA"] == 40 and m["counts"]["paired"] == 10
    assert m["has_truth"] and m["source"]["kind"] == "synthfaces"
    # Running it again with the same name is refused with one sentence.
    assert cli.main(["compose", "synthfaces", "--sf-count", "200", "--sf-size", "64", "--name", "cli-test"]) == 2
    assert "already exists" in capsys.readouterr().err
