"""Issue 12, finding 2: operations that write the workspace at the same time, as real concurrent processes.

A clean-up removes a temporary folder only when the process that owns it (pid + start time in its name) is gone;
two builds, a build and a delete, two deletes, two study freezes: each succeeds or is refused with one sentence.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pairlab import workspace

REPO = Path(__file__).resolve().parent.parent

# A slow writer: holds a temporary folder of atomic_folder open (like a long build) while it writes files slowly.
SLOW_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pairlab import workspace
    final = Path(sys.argv[1])
    with workspace.atomic_folder(final) as tmp:
        (tmp / "trainB").mkdir()
        print("started", tmp, flush=True)
        for i in range(int(sys.argv[2])):
            (tmp / "trainB" / f"{i:04d}.txt").write_text(str(i))
            time.sleep(0.05)
    print("done", flush=True)
""")


def env_for(home: Path, **extra) -> dict:
    env = dict(os.environ, PAIRLAB_HOME=str(home), PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    env.pop("PAIRLAB_DATA_ROOTS", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_slow_writer(home: Path, final: Path, steps: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(final), str(steps)], cwd=REPO,
                            env=env_for(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("started"), line + proc.stderr.read()
    return proc


def cli(home: Path, *args, **extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pairlab", *args], cwd=REPO, env=env_for(home, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_one_sentence(err: str) -> None:
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err


def test_a_build_survives_another_builds_clean_up(home, synthfaces_root):
    comps = workspace.sub("compositions")
    slow = start_slow_writer(home, comps / "slowA", 80)
    try:
        # a real compose in another process cleans up stale temporaries first: slowA's must survive it
        other = cli(home, "compose", str(synthfaces_root), "--n", "20", "--n-test", "10", "--name", "other",
                    PAIRLAB_DATA_ROOTS=synthfaces_root.parent)
        out, err = other.communicate(timeout=300)
        assert other.returncode == 0, err
        assert workspace.clean_stale_temps(comps) == 0  # and a clean-up from this process too
        out, err = slow.communicate(timeout=60)
        assert slow.returncode == 0 and "done" in out, err
    finally:
        if slow.poll() is None:
            slow.kill()
    assert (comps / "slowA" / "trainB").is_dir() and len(list((comps / "slowA" / "trainB").iterdir())) == 80
    assert (comps / "other" / "manifest.json").is_file()
    assert not [p for p in comps.iterdir() if p.name.startswith(".tmp-")]


def test_a_killed_builds_temporary_folder_is_removed(home):
    comps = workspace.sub("compositions")
    dead = start_slow_writer(home, comps / "killed", 10_000)
    dead.send_signal(signal.SIGKILL)
    dead.wait(timeout=10)
    left = [p for p in comps.iterdir() if p.name.startswith(".tmp-killed")]
    assert len(left) == 1 and workspace.temp_owner(left[0].name)[0] == dead.pid
    assert workspace.clean_stale_temps(comps) == 1
    assert not left[0].exists()
    # a temporary folder of older code (no owner in its name) goes only once it is an hour old
    old = comps / ".tmp-legacy-abc123"
    old.mkdir()
    assert workspace.clean_stale_temps(comps) == 0 and old.exists()
    past = time.time() - 2 * workspace.STALE_UNOWNED_S
    os.utime(old, (past, past))
    assert workspace.clean_stale_temps(comps) == 1 and not old.exists()


def test_two_builds_of_one_name(home, synthfaces_root):
    procs = [cli(home, "compose", str(synthfaces_root), "--n", "20", "--n-test", "10", "--name", "same",
                 "--seed", str(k), PAIRLAB_DATA_ROOTS=synthfaces_root.parent) for k in range(2)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    codes = sorted(r[2] for r in results)
    assert codes == [0, 2], results
    loser = next(r for r in results if r[2] == 2)
    assert_one_sentence(loser[1])
    assert "same" in loser[1] and ("already exists" in loser[1] or "another process" in loser[1])
    comps = workspace.sub("compositions")
    assert (comps / "same" / "manifest.json").is_file()
    assert not [p for p in comps.iterdir() if p.name.startswith(".tmp-")]


DELETER = textwrap.dedent("""
    import sys
    from pairlab.data.compose import delete_composition
    from pairlab.errors import UserError
    try:
        delete_composition(sys.argv[1])
        print("deleted")
    except UserError as exc:
        print("refused:", exc)
""")


def test_deletes_and_a_build_at_once(home, synthfaces_root):
    comps = workspace.sub("compositions")
    victim = comps / "victim"
    (victim / "trainA").mkdir(parents=True)
    for i in range(300):
        (victim / "trainA" / f"{i}.txt").write_text("x" * 1000)
    (victim / "manifest.json").write_text("{}")
    deleters = [subprocess.Popen([sys.executable, "-c", DELETER, "victim"], cwd=REPO, env=env_for(home),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    build = cli(home, "compose", str(synthfaces_root), "--n", "20", "--n-test", "10", "--name", "victim",
                PAIRLAB_DATA_ROOTS=synthfaces_root.parent)
    outs = [d.communicate(timeout=120) for d in deleters]
    assert all(not err for _, err in outs), outs
    said = sorted(out.split(":")[0].strip() for out, _ in outs)
    assert said == ["deleted", "refused", "refused"], outs
    assert all("There is no composition named 'victim'." in out for out, _ in outs if out.startswith("refused"))
    out, err = build.communicate(timeout=300)
    if build.returncode != 0:  # it started before the delete: refused as "already exists"
        assert_one_sentence(err)
    else:
        assert (victim / "manifest.json").is_file()
    assert not [p for p in comps.iterdir() if p.name.startswith(".tmp-")]


FREEZER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from pathlib import Path
    from pairlab.study import plan
    from test_study import make_inputs, small_design
    print(plan.freeze(small_design(), make_inputs(Path(sys.argv[1])), root=Path(sys.argv[3])))
""")


def test_two_study_freezes_beside_a_slow_one(home, tmp_path):
    studies = workspace.sub("studies")
    slow = start_slow_writer(home, studies / "slowstudy", 60)
    procs = [subprocess.Popen([sys.executable, "-c", FREEZER, str(tmp_path / f"in{k}"), str(REPO / "tests"),
                               str(studies)], cwd=REPO, env=env_for(home), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in range(2)]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        ids.append(out.strip().splitlines()[-1])
    out, err = slow.communicate(timeout=60)
    assert slow.returncode == 0, err
    assert len(set(ids)) == 2 and all((studies / i / "plan.json").is_file() for i in ids)
    assert (studies / "slowstudy" / "trainB").is_dir()
