"""User study core: statistics against hand-computed values, Bradley-Terry, consistency and catch trials,
plan freezing (hashes, opaque names, frozen refuses edits), assignments, and the vote store's rules.

``make_inputs`` is shared with test_study_server.py and test_browser_study.py.
"""
from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from pairlab.errors import UserError
from pairlab.study import access, plan as plan_mod, session, stats
from pairlab.study.plan import Candidate, StudyDesign, StudyInputs
from pairlab.study.store import VoteRefused, VoteStore

# Labels and run folder names that must never reach a participant (blindness tests look for them).
LABELS = ("zeta-0pct", "zeta-50pct", "zeta-100pct")
RUN_DIRS = ("run_cyclegan_alpha000_q7", "run_cyclegan_alpha050_q7", "run_cyclegan_alpha100_q7")


def make_inputs(root: Path, n: int = 6, size: int = 96, n_cands: int = 3, with_truth: bool = True) -> StudyInputs:
    """Plain image files: drawn faces with pseudo-eyeglasses (sources), three 'runs' that remove them well, half
    and not at all, and the truth. Each output PNG carries a text chunk naming its run (freezing must drop it)."""
    from pairlab.data.synthesizers import PseudoEyeglasses, draw_simple_face

    glasses = PseudoEyeglasses()
    params = {"height": 20.0, "width": 30.0, "line_width": 6.0, "opacity": 0.95, "color": [20, 20, 20]}
    folders = {name: root / name for name in ("sources", "truth", *RUN_DIRS[:n_cands])}
    landmarks = {}
    for f in folders.values():
        f.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        face, lm = draw_simple_face(size, size, seed=i)
        landmarks[f"sample_{i:04d}"] = lm.tolist()
        with_glasses = glasses.apply(face, lm, params)
        name = f"sample_{i:04d}.png"
        Image.fromarray(with_glasses).save(folders["sources"] / name)
        Image.fromarray(face).save(folders["truth"] / name)
        outs = [face, glasses.apply(face, lm, dict(params, opacity=0.45)), with_glasses]
        for k in range(n_cands):
            info = PngImagePlugin.PngInfo()
            info.add_text("run", RUN_DIRS[k])
            noisy = np.clip(outs[k % 3].astype(int) + k, 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(folders[RUN_DIRS[k]] / name, pnginfo=info)
    cands = tuple(Candidate(label=LABELS[k], outputs={f"sample_{i:04d}": str(folders[RUN_DIRS[k]] / f"sample_{i:04d}.png") for i in range(n)},
                            ref=str(folders[RUN_DIRS[k]])) for k in range(n_cands))
    srcs = {f"sample_{i:04d}": str(folders["sources"] / f"sample_{i:04d}.png") for i in range(n)}
    truths = {f"sample_{i:04d}": str(folders["truth"] / f"sample_{i:04d}.png") for i in range(n)} if with_truth else {}
    return StudyInputs(candidates=cands, sources=srcs, truths=truths, landmarks=landmarks)


def small_design(**kw) -> StudyDesign:
    base = dict(title="test study", sample_count=4, sample_seed=1, trials_per_participant=8, repeats=2, catch_trials=2, seed=5)
    base.update(kw)
    return StudyDesign(**base)


@pytest.fixture
def studies(tmp_path):
    root = tmp_path / "studies"
    root.mkdir()
    yield root
    VoteStore.forget(root)


def vote(left, right, choice, pid="p1", position=0, kind="pair", repeat_of=None, correct=None):
    return {"participant_id": pid, "position": position, "left_cand": left, "right_cand": right, "choice": choice,
            "kind": kind, "repeat_of": repeat_of, "correct_side": correct, "client_ms": 1000.0, "server_ms": 1100.0}


# ------------------------------------------------------------------------------------------ statistics
def test_wilson_and_binomial_by_hand():
    # 7 of 10: p = 0.7, z = 1.95996; centre = (0.7 + z^2/20) / (1 + z^2/10), half = z/(1 + z^2/10) sqrt(0.021 + z^2/400)
    z = 1.959963984540054
    centre = (0.7 + z * z / 20) / (1 + z * z / 10)
    half = z / (1 + z * z / 10) * math.sqrt(0.7 * 0.3 / 10 + z * z / 400)
    lo, hi = stats.wilson(7, 10)
    assert (lo, hi) == pytest.approx((centre - half, centre + half), abs=1e-12)
    assert (lo, hi) == pytest.approx((0.39678, 0.89221), abs=1e-5)      # the textbook values
    # two-sided exact test: P(X >= 7) = (120 + 45 + 10 + 1) / 1024 = 176/1024, doubled
    assert stats.binom_p(7, 10) == pytest.approx(2 * 176 / 1024)
    assert stats.wilson(0, 10)[0] == pytest.approx(0.0) and stats.wilson(10, 10)[1] == pytest.approx(1.0)
    assert math.isnan(stats.wilson(0, 0)[0]) and math.isnan(stats.binom_p(0, 0))


def test_table6_by_hand():
    """Run A vs run B: A chosen 7 times, B 3 times, both twice, neither once, on both sides; plus a catch trial and
    a repeat, which must not count."""
    votes = []
    for k in range(7):
        votes.append(vote("A", "B", "left", position=k) if k % 2 else vote("B", "A", "right", position=k))
    for k in range(3):
        votes.append(vote("A", "B", "right", position=10 + k))
    votes += [vote("A", "B", "both", position=20), vote("B", "A", "both", position=21), vote("B", "A", "neither", position=22)]
    votes.append(vote("A", "S", "right", position=30))          # source preferred over A once
    votes.append(vote("catch-good", "catch-bad", "left", position=40, kind="catch", correct="left"))
    votes.append(vote("B", "A", "left", position=41, repeat_of=0))  # a repeat: consistency only
    labels = {"A": "run A", "B": "run B", "S": "source"}
    rows = {(r["row_id"], r["column_id"]): r for r in stats.preference_table(votes, ["A", "B", "S"], labels)}
    ab, ba = rows[("A", "B")], rows[("B", "A")]
    assert (ab["row_wins"], ab["column_wins"], ab["decisive"], ab["votes"]) == (7, 3, 10, 13)
    assert ab["rate"] == pytest.approx(0.7) and ba["rate"] == pytest.approx(0.3)
    assert (ab["ci_low"], ab["ci_high"]) == pytest.approx((0.39678, 0.89221), abs=1e-5)
    assert (ba["ci_low"], ba["ci_high"]) == pytest.approx((1 - 0.89221, 1 - 0.39678), abs=1e-5)
    assert ab["p_value"] == pytest.approx(0.34375) and ba["p_value"] == pytest.approx(0.34375)
    assert ab["both_rate"] == pytest.approx(2 / 13) and ab["neither_rate"] == pytest.approx(1 / 13)
    assert rows[("S", "A")]["rate"] == 1.0 and rows[("S", "A")]["decisive"] == 1
    assert rows[("B", "S")]["decisive"] == 0 and math.isnan(rows[("B", "S")]["rate"])
    matrix = stats.table6_matrix(list(rows.values()), ["A", "B", "S"], labels)
    assert matrix[0] == ["preferred \\ rejected", "run A", "run B", "source"]
    assert matrix[1][1] == "-" and matrix[1][2].startswith("0.700 [0.40, 0.89]") and matrix[2][3] == "n/a"
    # with the repeat included, B gains one win over A
    rows2 = {(r["row_id"], r["column_id"]): r for r in stats.preference_table(votes, ["A", "B"], labels, include_repeats=True)}
    assert rows2[("B", "A")]["row_wins"] == 4


def test_bradley_terry_known_orderings():
    # two items, no prior: the MLE strength ratio is the win ratio (8:2 -> log 4)
    s = stats.bradley_terry(np.array([[0, 8], [2, 0]]), prior=0.0)
    assert s[0] - s[1] == pytest.approx(math.log(4), abs=1e-6) and s.sum() == pytest.approx(0, abs=1e-9)
    # equal records -> equal scores
    assert np.allclose(stats.bradley_terry(np.array([[0, 5, 5], [5, 0, 5], [5, 5, 0]])), 0, atol=1e-9)
    # a transitive case: A > B > C > D
    w = np.array([[0, 8, 9, 10], [2, 0, 8, 9], [1, 2, 0, 8], [0, 1, 2, 0]])
    s = stats.bradley_terry(w)
    assert list(np.argsort(-s)) == [0, 1, 2, 3]
    # simulated votes from known strengths, many participants: ranking and intervals recover the order
    rng = np.random.default_rng(0)
    true = {"a": 1.2, "b": 0.4, "c": -0.3, "d": -1.3}
    ids = list(true)
    votes = []
    for p in range(40):
        for t in range(30):
            i, j = rng.choice(4, 2, replace=False)
            win = rng.random() < 1 / (1 + math.exp(true[ids[j]] - true[ids[i]]))
            votes.append(vote(ids[i], ids[j], "left" if win else "right", pid=f"p{p}", position=t))
    ranking = stats.bradley_terry_ranking(votes, ids, {k: k.upper() for k in ids}, bootstrap=300)
    assert [r["id"] for r in ranking] == ["a", "b", "c", "d"]
    assert [r["run"] for r in ranking] == ["A", "B", "C", "D"]
    for r in ranking:
        assert r["ci_low"] < r["score"] < r["ci_high"]
        assert r["ci_low"] < true[r["id"]] - np.mean(list(true.values())) < r["ci_high"]
    assert ranking[0]["rank_low"] == 1 and ranking[-1]["rank_high"] == 4


def test_consistency_and_catch_by_hand():
    votes = [
        vote("A", "B", "left", pid="p1", position=0), vote("B", "A", "right", pid="p1", position=5, repeat_of=0),   # same run A
        vote("A", "C", "both", pid="p1", position=1), vote("C", "A", "both", pid="p1", position=6, repeat_of=1),    # both, both
        vote("A", "B", "left", pid="p2", position=0), vote("B", "A", "left", pid="p2", position=5, repeat_of=0),    # A then B
        vote("g", "b", "left", pid="p1", position=2, kind="catch", correct="left"),
        vote("b", "g", "left", pid="p1", position=3, kind="catch", correct="right"),
        vote("g", "b", "left", pid="p2", position=2, kind="catch", correct="left"),
    ]
    assert stats.consistency(votes) == {"p1": (2, 2), "p2": (0, 1)}
    assert stats.catch_results(votes) == {"p1": (1, 2), "p2": (1, 1)}
    res = stats.analyze(votes, ["A", "B", "C"], {}, bootstrap=20)
    assert res["consistency"] == pytest.approx(2 / 3) and res["catch_pass_rate"] == pytest.approx(2 / 3)
    assert res["n_participants"] == 2 and res["median_client_ms"] == 1000.0
    dropped = stats.analyze(votes, ["A", "B", "C"], {}, bootstrap=0, min_catch_pass=1.0)
    assert dropped["excluded"] == ["p1"] and dropped["n_participants"] == 1


# ------------------------------------------------------------------------------------------ plans
def test_freeze_copies_under_opaque_names_with_hashes(tmp_path, studies):
    inputs = make_inputs(tmp_path / "imgs")
    sid = plan_mod.freeze(small_design(), inputs, root=studies)
    assert re.fullmatch(r"[0-9a-f]{12}", sid)
    plan = plan_mod.load_plan(sid, studies)
    media = plan.data["media"]
    files = sorted(p.name for p in (studies / sid / "media").iterdir())
    assert files == sorted(media)
    # 4 samples: source panel + source as an option + 3 runs each, plus 2 catch truths and 2 catch sources
    assert len(files) == 4 * 5 + 2 * 2
    for name, info in media.items():
        assert re.fullmatch(r"[0-9a-f]{24}\.png", name)
        path = studies / sid / "media" / name
        assert plan_mod.sha256_file(path) == info["sha256"]
        assert not (os.stat(path).st_mode & 0o222), "frozen media must be read-only"
        with Image.open(path) as im:
            assert not {k for k in im.info if k not in ("dpi", "gamma")}, f"metadata survived: {im.info}"
    assert plan_mod.verify_study(sid, studies) == []
    assert plan.data["catch_mode"] == "truth" and len(plan.data["catch"]) == 2
    assert plan.data["pool_size"] == 4 * 6 and len(plan.data["trials"]) == 24
    assert VoteStore.open(studies).plan_sha(sid) == plan.sha256
    # the same seed picks the same samples; labels kept lab-side only
    assert list(plan.data["samples"]) == plan_mod.choose_samples(small_design(), inputs)
    assert [c["label"] for c in plan.data["candidates"]] == list(LABELS)
    assert plan.labels == {"c0": LABELS[0], "c1": LABELS[1], "c2": LABELS[2], "source": "source"}


def test_frozen_study_refuses_edits(tmp_path, studies):
    inputs = make_inputs(tmp_path / "imgs")
    sid = plan_mod.freeze(small_design(), inputs, root=studies)
    with pytest.raises(UserError, match="already exists"):
        plan_mod.freeze(small_design(title="changed"), inputs, root=studies, study_id=sid)
    plan = plan_mod.load_plan(sid, studies)
    with pytest.raises(TypeError):
        plan.data["title"] = "changed"          # read-only mapping
    with pytest.raises(Exception):
        plan.study_id = "x"                     # frozen dataclass
    assert json.loads((studies / sid / "plan.json").read_text())["title"] == "test study"
    # tampering is detected: the plan hash no longer matches the store's, and an image's hash neither
    victim = studies / sid / "media" / next(iter(plan.data["media"]))
    os.chmod(victim, 0o644)
    victim.write_bytes(victim.read_bytes() + b"x")
    assert any("was changed" in p for p in plan_mod.verify_study(sid, studies))
    p = studies / sid / "plan.json"
    os.chmod(p, 0o644)
    p.write_text(p.read_text().replace("test study", "edited"))
    assert any("differs" in x for x in plan_mod.verify_study(sid, studies))
    with pytest.raises(VoteRefused, match="changed since it was frozen"):
        session.StudyService(studies).plan(sid)
    # a failed freeze leaves nothing behind
    bad = StudyInputs(candidates=inputs.candidates, sources={**inputs.sources, "sample_0000": str(tmp_path / "missing.png")})
    before = sorted(x.name for x in studies.iterdir())
    with pytest.raises(UserError):
        plan_mod.freeze(small_design(samples=("sample_0000",), sample_count=1, trials_per_participant=2, repeats=0, catch_trials=0),
                        bad, root=studies)
    assert sorted(x.name for x in studies.iterdir()) == before


@pytest.mark.parametrize("change, message", [
    ({"n_cands": 1}, "Choose 2 to 6 runs"),
    ({"question": f"Which is better, {LABELS[0]} or the other?"}, "names a run"),
    ({"instructions": f"Images from {RUN_DIRS[1]} are shown."}, "names a run"),
    ({"sample_count": 99}, "ask for at most 6"),
    ({"samples": ("sample_0001", "nope")}, "hand-picked"),
    ({"trials_per_participant": 1000}, "at most"),
    ({"repeats": 50}, "cannot exceed"),
    ({"answers": ("Left", "Left", "Both", "Neither")}, "must differ"),
    ({"comparisons": ()}, "comparisons"),
    ({"task": "smile", "with_truth": False}, "Catch trials need"),
])
def test_designer_refuses_bad_designs(tmp_path, studies, change, message):
    change = dict(change)
    inputs = make_inputs(tmp_path / "imgs", n=6, size=48, n_cands=change.pop("n_cands", 3),
                         with_truth=change.pop("with_truth", True))
    with pytest.raises(UserError, match=message):
        plan_mod.freeze(small_design(**change), inputs, root=studies)
    assert not [p for p in studies.iterdir() if p.is_dir()]


def test_catch_trials_with_drawn_eyeglasses_without_truth(tmp_path, studies):
    inputs = make_inputs(tmp_path / "imgs", with_truth=False)
    sid = plan_mod.freeze(small_design(catch_trials=3, comparisons=("pairs",)), inputs, root=studies)
    plan = plan_mod.load_plan(sid, studies)
    assert plan.data["catch_mode"] == "drawn-glasses" and len(plan.data["catch"]) == 3
    for t in plan.data["catch"]:
        good = np.asarray(Image.open(plan.media_path(t["media_a"])), dtype=float)
        bad = np.asarray(Image.open(plan.media_path(t["media_b"])), dtype=float)
        assert good.shape == bad.shape and (bad < good - 30).sum() > 50    # dark frames drawn on the clean output


def test_assignment_covers_pool_with_repeats_and_catch(tmp_path, studies):
    sid = plan_mod.freeze(small_design(trials_per_participant=8, repeats=2, catch_trials=2), make_inputs(tmp_path / "imgs"), root=studies)
    plan = plan_mod.load_plan(sid, studies)
    seen = set()
    for ordinal in range(3):
        rows = session.build_assignment(plan, ordinal, seed=100 + ordinal)
        assert rows == session.build_assignment(plan, ordinal, seed=100 + ordinal)      # deterministic
        assert len(rows) == 8 + 2 + 2 and [r["position"] for r in rows] == list(range(12))
        normal = [r for r in rows if r["kind"] != "catch" and r["repeat_of"] is None]
        seen |= {r["trial_id"] for r in normal}
        assert len({r["trial_id"] for r in normal}) == 8
        for r in rows:
            if r["repeat_of"] is not None:
                o = rows[r["repeat_of"]]
                assert o["trial_id"] == r["trial_id"] and r["position"] >= o["position"] + 3
                assert (r["left_cand"], r["right_cand"]) == (o["right_cand"], o["left_cand"])   # sides swapped
            if r["kind"] == "catch":
                good = r["left_cand"] if r["correct_side"] == "left" else r["right_cand"]
                assert good == "catch-good" and r["position"] > 0
    assert len(seen) == 24   # three participants x 8 = the whole pool of 24, no overlap


# ------------------------------------------------------------------------------------------ the store
def test_one_vote_per_trial_and_idempotence(tmp_path, studies):
    sid = plan_mod.freeze(small_design(repeats=0, catch_trials=0, trials_per_participant=3), make_inputs(tmp_path / "imgs"), root=studies)
    svc = session.StudyService(studies)
    token, st = svc.join(sid)
    h0 = st["trial"]["handle"]
    first = svc.vote(sid, token, h0, "left", 900)
    assert first["done"] == 1 and not first["duplicate"]
    again = svc.vote(sid, token, h0, "left", 950)                    # the same answer again: OK, nothing new
    assert again["duplicate"] and again["done"] == 1 and again["trial"] == first["trial"]
    with pytest.raises(VoteRefused, match="cannot be changed") as err:
        svc.vote(sid, token, h0, "right", 950)                          # a different answer: refused
    assert err.value.status == 409
    h2 = access.trial_handle(svc.key, sid, svc.participant_id(sid, token), 2)
    with pytest.raises(VoteRefused, match="in the order"):
        svc.vote(sid, token, h2, "left")                                # skipping ahead
    store = VoteStore.open(studies)
    votes = store.votes(sid)
    assert len(votes) == 1 and votes[0]["choice"] == "left" and votes[0]["client_ms"] == 900
    assert votes[0]["server_ms"] is not None and votes[0]["server_ms"] >= 0
    # the UNIQUE constraint holds even for a raw insert behind the store's back
    raw = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute("INSERT INTO votes(study_id, participant_id, position, trial_id, left_cand, right_cand, left_media, "
                    "right_media, choice, created) SELECT study_id, participant_id, position, trial_id, left_cand, right_cand, "
                    "left_media, right_media, 'right', 0 FROM votes")
    raw.close()
    # finishing gives a completion code the lab can recompute; a closed study takes nothing more
    st = first
    while not st["finished"]:
        st = svc.vote(sid, token, st["trial"]["handle"], "neither")
    pid = svc.participant_id(sid, token)
    assert st["completion_code"] == access.completion_code(svc.key, sid, pid)
    token2, st2 = svc.join(sid)
    store.set_state(sid, "closed")
    with pytest.raises(VoteRefused, match="closed") as err:
        svc.vote(sid, token2, st2["trial"]["handle"], "left")
    assert err.value.status == 410
    with pytest.raises(VoteRefused, match="closed"):
        svc.join(sid)
    assert svc.state(sid, token)["finished"]          # a finished participant still sees the code
    assert store.counts(sid) == {"state": "closed", "participants": 2, "finished": 1, "votes": 3}


def test_participant_code_resumes_and_concurrent_group_commit(tmp_path, studies):
    import threading

    sid = plan_mod.freeze(small_design(repeats=0, catch_trials=0, trials_per_participant=6), make_inputs(tmp_path / "imgs"), root=studies)
    svc = session.StudyService(studies)
    t1, _ = svc.join(sid, code="PROLIFIC-42")
    t2, _ = svc.join(sid, code="PROLIFIC-42")
    assert t1 == t2
    with pytest.raises(VoteRefused, match="participant code"):
        svc.join(sid, code="<script>")
    tokens = [svc.join(sid)[0] for _ in range(8)]
    errors = []

    def run(tok):
        try:
            st = svc.state(sid, tok)
            while not st["finished"]:
                st = svc.vote(sid, tok, st["trial"]["handle"], "both")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert VoteStore.open(studies).counts(sid)["votes"] == 8 * 6


def test_export_writes_tables(tmp_path, studies):
    from pairlab.study.export import export_study

    sid = plan_mod.freeze(small_design(), make_inputs(tmp_path / "imgs"), root=studies)
    svc = session.StudyService(studies)
    for k in range(3):
        tok, st = svc.join(sid)
        while not st["finished"]:
            st = svc.vote(sid, tok, st["trial"]["handle"], ("left", "right", "both")[k], 700 + k)
    paths = export_study(sid, tmp_path / "out", root=studies, bootstrap=50)
    assert set(paths) == {"votes.csv", "table6.csv", "table6.tex", "pairs.csv", "bradley_terry.csv", "participants.csv", "summary.json"}
    lines = paths["votes.csv"].read_text().splitlines()
    assert len(lines) == 1 + 3 * 12 and "zeta-50pct" in paths["votes.csv"].read_text()
    tex = paths["table6.tex"].read_text()
    assert "\\begin{tabular}" in tex and "zeta-0pct" in tex and "Wilson 95\\%" in tex
    table = paths["table6.csv"].read_text().splitlines()
    assert table[0].split(",")[1:] == [*LABELS, "source"]
    summary = json.loads(paths["summary.json"].read_text())
    assert summary["n_participants"] == 3 and summary["catch_trials"] == 6


# ------------------------------------------------------------------------------------------ sources and access
def test_candidates_from_runs_uses_the_eval_cache(tmp_path, monkeypatch):
    from pairlab.study import sources

    inputs = make_inputs(tmp_path / "imgs", n=3, size=32, n_cands=2)
    calls = []

    def translate_test_set(run_dir, checkpoint="latest", direction="AtoB"):
        calls.append((Path(run_dir).name, checkpoint, direction))
        k = RUN_DIRS.index(Path(run_dir).name)
        items = [types.SimpleNamespace(name=n, input=inputs.sources[n], output=p, truth=inputs.truths[n])
                 for n, p in inputs.candidates[k].outputs.items()]
        return types.SimpleNamespace(items=items, checkpoint="iter_000100")

    monkeypatch.setitem(sys.modules, "pairlab.eval.outputs", types.SimpleNamespace(translate_test_set=translate_test_set))
    got = sources.candidates_from_runs([tmp_path / RUN_DIRS[0], tmp_path / RUN_DIRS[1]], labels=["A", "B"])
    assert calls == [(RUN_DIRS[0], "latest", "AtoB"), (RUN_DIRS[1], "latest", "AtoB")]
    assert [c.label for c in got.candidates] == ["A", "B"] and got.sources == inputs.sources and got.truths == inputs.truths
    assert got.candidates[0].ref.endswith("#iter_000100:AtoB")


def test_finished_runs_lists_only_done(tmp_path):
    from pairlab.study.sources import finished_runs

    for name, state in (("r-done", "done"), ("r-running", "running"), ("r-failed", "failed")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "status.json").write_text(json.dumps({"state": state}))
    (tmp_path / "r-broken").mkdir()
    (tmp_path / "r-broken" / "status.json").write_text("{")
    assert [r["name"] for r in finished_runs(tmp_path)] == ["r-done"]


def test_tokens_and_lab_auth(tmp_path):
    key = access.secret(tmp_path)
    assert access.secret(tmp_path) == key and oct(os.stat(tmp_path / ".secret").st_mode & 0o777) == "0o600"
    tok = access.participant_token(key, "s1", "abc")
    assert access.check_participant_token(key, "s1", tok) == "abc"
    assert access.check_participant_token(key, "s2", tok) is None                 # another study
    assert access.check_participant_token(key, "s1", "abc." + "0" * 32) is None   # forged
    for junk in (None, 5, "", "x", "a.b.c", "abc." + "f" * 200):
        assert access.check_participant_token(key, "s1", junk) is None
    h = access.trial_handle(key, "s1", "abc", 7)
    assert access.check_trial_handle(key, "s1", "abc", h) == 7
    assert access.check_trial_handle(key, "s1", "other", h) is None
    assert access.check_trial_handle(key, "s1", "abc", "8." + h.split(".")[1]) is None
    # the lab's login
    assert access.lab_auth("127.0.0.1", env={}, root=tmp_path) is None
    assert access.lab_auth("localhost", env={}, root=tmp_path) is None
    check = access.lab_auth("127.0.0.1", env={"PAIRLAB_AUTH": "ann:s3cret:x"}, root=tmp_path)
    assert check("ann", "s3cret:x") and not check("ann", "wrong") and not check("bob", "s3cret:x")
    said = []
    check = access.lab_auth("0.0.0.0", env={}, root=tmp_path, announce=said.append)
    password = (tmp_path / ".lab_password").read_text().strip()
    assert check("lab", password) and not check("lab", "") and said and password not in said[0]
    with pytest.raises(UserError, match="user:password"):
        access.lab_auth("0.0.0.0", env={"PAIRLAB_AUTH": "nopassword"}, root=tmp_path)


# ------------------------------------------------------------------------------------------ libraries, agreement, warnings
def test_statistics_come_from_the_libraries():
    """Wilson / binomial are scipy's binomtest, Bradley-Terry is choix's ILSR with alpha = prior, the bootstrap is
    scipy.stats.bootstrap over participants (the hand-written MM fit and bootstrap would not match these)."""
    import choix
    from scipy.stats import binomtest

    for k, n in ((7, 10), (0, 4), (13, 20), (1, 1)):
        ci = binomtest(k, n).proportion_ci(method="wilson")
        assert stats.wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
    w = np.array([[0, 8, 9, 10], [2, 0, 8, 9], [1, 2, 0, 8], [0, 1, 2, 0]], dtype=float)
    for prior in (0.1, 1.0):
        assert stats.bradley_terry(w, prior) == pytest.approx(choix.ilsr_pairwise_dense(w, alpha=prior), abs=1e-6)
    # a run that never wins: finite with the default regularisation, NaN (no MLE) without it
    never = np.array([[0, 5], [0, 0]], dtype=float)
    assert np.isfinite(stats.bradley_terry(never)).all() and np.isnan(stats.bradley_terry(never, prior=0.0)).all()
    # the bootstrap interval is scipy's percentile interval of the participants' resamples
    from scipy.stats import bootstrap

    rng = np.random.default_rng(1)
    votes = []
    for p in range(6):
        for t in range(20):
            i, j = ("a", "b") if t % 2 else ("b", "a")
            votes.append(vote(i, j, "left" if rng.random() < (0.8 if i == "a" else 0.3) else "right", pid=f"p{p}", position=t))
    ranking = {r["id"]: r for r in stats.bradley_terry_ranking(votes, ["a", "b"], {}, bootstrap=200, seed=3)}
    mats = np.stack([stats.win_matrix([v for v in votes if v["participant_id"] == f"p{p}"], ["a", "b"]) for p in range(6)])
    ref = bootstrap((np.arange(6.0),), lambda idx: choix.ilsr_pairwise_dense(mats[idx.astype(int)].sum(0), alpha=0.1)[0],
                    vectorized=False, n_resamples=200, method="percentile", rng=np.random.default_rng(3))
    assert ranking["a"]["ci_low"] == pytest.approx(ref.confidence_interval.low, abs=1e-4)
    assert ranking["a"]["ci_high"] == pytest.approx(ref.confidence_interval.high, abs=1e-4)


def kvote(trial, pid, chosen, left="A", right="B"):
    """A vote on trial ``trial`` choosing run ``chosen`` (or 'both' / 'neither')."""
    choice = "left" if chosen == left else "right" if chosen == right else chosen
    return dict(vote(left, right, choice, pid=pid, position=int(trial[1:])), trial_id=trial)


def test_krippendorff_alpha_by_hand_and_documented_example():
    # two participants, three shared trials: agree on A, agree on B, disagree. Coincidences o_AA = 2, o_BB = 2,
    # o_AB = o_BA = 1; n_A = n_B = 3, n = 6: alpha = 1 - (n - 1) (o_AB + o_BA) / (n_A n_B + n_B n_A) = 1 - 5 * 2 / 18 = 4/9.
    # Sides do not matter (the outcome is the run chosen), and a trial only one person answered does not count.
    votes = [kvote("t1", "p1", "A"), kvote("t1", "p2", "A", left="B", right="A"),
             kvote("t2", "p1", "B"), kvote("t2", "p2", "B"),
             kvote("t3", "p1", "A"), kvote("t3", "p2", "B"),
             kvote("t4", "p1", "A")]
    got = stats.agreement(votes)
    assert got["alpha"] == pytest.approx(4 / 9) and got["shared_trials"] == 3 and got["raters"] == 2 and got["values"] == 6
    # the package's documented example (Krippendorff 2011, three coders, values 1-4): nominal alpha 0.691
    data = [[None, None, None, None, None, 3, 4, 1, 2, 1, 1, 3, 3, None, 3],
            [1, None, 2, 1, 3, 3, 4, 3, None, None, None, None, None, None, None],
            [None, None, 2, 1, 3, 4, 4, None, 2, 1, 1, 3, 3, None, 4]]
    outcomes = {1: "A", 2: "B", 3: "both", 4: "neither"}
    votes = [kvote(f"t{u}", f"coder{c}", outcomes[x]) for c, row in enumerate(data) for u, x in enumerate(row) if x is not None]
    assert stats.agreement(votes)["alpha"] == pytest.approx(0.691, abs=5e-4)
    # nobody shares a trial, or everyone always says the same: nothing to compare
    assert math.isnan(stats.agreement([kvote("t1", "p1", "A"), kvote("t2", "p2", "B")])["alpha"])
    assert math.isnan(stats.agreement([kvote("t1", "p1", "A"), kvote("t1", "p2", "A")])["alpha"])
    # catch trials and repeats are left out
    extra = [dict(kvote("t1", "p3", "B"), kind="catch"), dict(kvote("t1", "p1", "B"), repeat_of=0, position=9)]
    assert stats.agreement(votes + extra)["alpha"] == pytest.approx(0.691, abs=5e-4)
    res = stats.analyze(votes, ["A", "B"], {}, bootstrap=20)
    assert res["agreement"]["alpha"] == pytest.approx(0.691, abs=5e-4)


def test_warnings_for_too_few_participants_and_a_degenerate_interval():
    def people(n, same=False):
        out = []
        for p in range(n):
            for t in range(10):
                win = t % 3 != 0 if same else (t + p) % (p + 2) != 0
                out.append(vote("A", "B", "left" if win else "right", pid=f"p{p}", position=t))
        return out

    two = stats.analyze(people(2), ["A", "B"], {}, bootstrap=100)
    assert any("Only 2 participants" in w and "3 distinct resamples" in w for w in two["warnings"])
    # two participants who answered alike: every resample is the same, the interval has zero width
    alike = stats.analyze(people(2, same=True), ["A", "B"], {}, bootstrap=100)
    assert any("degenerate" in w for w in alike["warnings"])
    one = stats.analyze(people(1), ["A", "B"], {}, bootstrap=100)
    assert any("Only 1 participant answered" in w for w in one["warnings"])
    assert any("interval is missing" in w for w in one["warnings"])
    assert stats.analyze(people(6), ["A", "B"], {}, bootstrap=100)["warnings"] == []
    assert stats.analyze([], ["A", "B"], {}, bootstrap=100)["warnings"] == []     # no votes: nothing to warn about


def test_trial_preview_shows_what_a_participant_sees(tmp_path, studies):
    from pairlab.study import preview

    sid = plan_mod.freeze(small_design(question="Which one has no glasses?"), make_inputs(tmp_path / "imgs"), root=studies)
    plan = plan_mod.load_plan(sid, studies)
    count = preview.trial_count(sid, studies)
    assert count == len(plan.data["trials"]) + len(plan.data["catch"]) == 24 + 2
    first = preview.trial_preview(sid, 0, studies)
    t = plan.data["trials"][0]
    assert first["question"] == "Which one has no glasses?" and first["answers"] == list(plan.data["design"]["answers"])
    assert (Path(first["source"]).name, Path(first["left"]).name, Path(first["right"]).name) == (t["source"], t["media_a"], t["media_b"])
    assert {first["left_label"], first["right_label"]} <= set(LABELS) | {"the source image"}
    last = preview.trial_preview(sid, count - 1, studies)
    assert last["kind"] == "catch" and last["left_label"].startswith("catch")
    html_ = preview.preview_html(first)
    assert html_.count("data:image/png;base64,") == 3 and "Which one has no glasses?" in html_
    assert "Both equally" in html_ and "Lab only" in html_
    for bad in (-1, count, "3", True):
        with pytest.raises(UserError, match=f"from 1 to {count}"):
            preview.trial_preview(sid, bad, studies)


def test_an_older_vote_store_gains_the_platform_columns(tmp_path):
    """A store made before the hand-off existed opens, gets the new columns, and keeps its rows."""
    from pairlab.study import store as store_mod

    old_schema = store_mod.SCHEMA
    db = tmp_path / store_mod.DB_NAME
    raw = sqlite3.connect(db)
    raw.executescript(old_schema)
    raw.execute("INSERT INTO studies(study_id, plan_sha256, created) VALUES ('s1', 'x', 0)")
    raw.commit()
    raw.close()
    st = VoteStore.open(tmp_path)
    try:
        cols = {r["name"] for r in st.query("PRAGMA table_info(participants)")}
        assert {"platform", "platform_participant", "platform_study", "platform_session", "platform_submit"} <= cols
        assert st.settings("s1") == {"platform": "none", "completion_code": None}
        st.set_settings("s1", "prolific", "C0DE42")
        assert st.settings("s1") == {"platform": "prolific", "completion_code": "C0DE42"}
    finally:
        VoteStore.forget(tmp_path)
    VoteStore.open(tmp_path)          # opening again is harmless (columns already there)
    VoteStore.forget(tmp_path)


@pytest.mark.parametrize("params, message", [
    ({"PROLIFIC_PID": "a b"}, "PROLIFIC_PID must be 1 to 64"),
    ({"PROLIFIC_PID": "x" * 65}, "PROLIFIC_PID must be 1 to 64"),
    ({"PROLIFIC_PID": "<script>"}, "PROLIFIC_PID must be 1 to 64"),
    ({"STUDY_ID": "s1"}, "no PROLIFIC_PID"),
    ({"PROLIFIC_PID": "p1", "workerId": "w1", "assignmentId": "a1"}, "both Prolific and MTurk"),
    ({"workerId": "w1"}, "no assignmentId"),
    ({"workerId": "w1", "assignmentId": "a1", "turkSubmitTo": "https://evil.example"}, "MTurk's own address"),
    ({"turkSubmitTo": "https://www.mturk.com"}, "without the MTurk"),
    ({"workerId": "w1", "assignmentId": "a/../1"}, "assignmentId must be"),
])
def test_platform_ids_are_checked(params, message):
    from pairlab.study import platforms

    with pytest.raises(platforms.PlatformRefused, match=re.escape(message)):
        platforms.parse_link(params)


def test_platform_ids_and_settings():
    from pairlab.study import platforms

    assert platforms.parse_link({}) is None and platforms.parse_link({"p": "x"}) is None
    ids = platforms.parse_link({"PROLIFIC_PID": "5f1a", "STUDY_ID": "st_1", "SESSION_ID": "se-1"})
    assert ids == {"platform": "prolific", "participant": "5f1a", "study": "st_1", "session": "se-1",
                   "submit_to": None, "preview": False}
    assert platforms.public_ids(ids) == {"PROLIFIC_PID": "5f1a", "STUDY_ID": "st_1", "SESSION_ID": "se-1"}
    m = platforms.parse_link({"workerId": "W1", "assignmentId": "A1", "hitId": "H1", "turkSubmitTo": "https://workersandbox.mturk.com/"})
    assert (m["platform"], m["participant"], m["session"], m["study"], m["submit_to"]) == (
        "mturk", "W1", "A1", "H1", "https://workersandbox.mturk.com")
    assert platforms.parse_link({"assignmentId": platforms.MTURK_PREVIEW, "hitId": "H1"})["preview"]
    assert platforms.check_settings("Prolific", " CODE1 ") == ("prolific", "CODE1")
    assert platforms.check_settings("", None) == ("none", None)
    for bad, message in ((("prolific", ""), "needs the study's completion code"), (("slack", "X"), "must be one of"),
                         (("mturk", "a code"), "completion code must be")):
        with pytest.raises(UserError, match=message):
            platforms.check_settings(*bad)
    done = {"completion_code": "ABCDE-12345"}
    assert platforms.completion({"platform": "none", "completion_code": None}, done)["code"] == "ABCDE-12345"
    prolific = platforms.completion({"platform": "prolific", "completion_code": "C0DE"}, done)
    assert prolific == {"code": "C0DE", "redirect": "https://app.prolific.com/submissions/complete?cc=C0DE", "submit": None}
    worker = dict(done, platform="mturk", platform_session="A1", platform_submit="https://www.mturk.com")
    assert platforms.completion({"platform": "mturk", "completion_code": "M1"}, worker)["submit"] == {
        "action": "https://www.mturk.com/mturk/externalSubmit", "assignmentId": "A1"}
    assert platforms.completion({"platform": "mturk", "completion_code": "M1"}, dict(worker, platform_submit=None))["submit"] is None
