"""Study plans: design a preference study over 2-6 runs, then freeze it.

Paper 000 ("Task completion user study", Table 6): participants see the source image and the results of two
models at a time (or one model and the source image) and choose one, both or neither. Paper 004 (Sec. 2.4) adds
a way out for hard pairs; here "both" and "neither" are that way out and are counted beside the decisive votes.

A study is built from **candidates** (``Candidate``: a label and a mapping test-sample name -> output image path,
one per run; ``sources.candidates_from_runs`` makes them from the evaluation cache) plus the source image of each
test sample and, when known, its ground truth T(a).

Freezing (``freeze``) chooses the samples, builds the trial pool and the catch trials, copies every image a
participant will see into ``<studies>/<study_id>/media/`` under an opaque random name (``token_hex(12).png``,
re-encoded as a plain PNG so no metadata of the run survives), and writes ``plan.json`` with the SHA-256 of every
image, all in one atomic folder write. The study id is random too (it is in the participant's link). A frozen
study never changes: ``freeze`` refuses an existing id, the files are made read-only, ``Plan`` is immutable, and
``verify_study`` re-hashes everything against the hash the vote store recorded at freezing.

Trials
    ``pairs``: every pair of runs on every sample; ``vs_source``: each run against the source image (the source
    is then a candidate named ``source`` in the results, as "one model and the source image" in the paper).
    Each participant gets ``trials_per_participant`` trials of the pool (0 = all), taken as a rotating slice of a
    seeded permutation so participants cover the pool evenly; ``repeats`` of them are shown again later with
    left and right swapped (consistency); ``catch_trials`` catch trials are mixed in. Left/right and the order
    are drawn from the participant's own seed and stored with the participant (see ``session``).

Catch trials (an obvious answer)
    With the ground truth known (SynthFaces): T(a) against the unchanged source image -- the source still shows
    the attribute, T(a) does not. Without ground truth, for the eyeglasses task: a run's output against the same
    output with opaque pseudo-eyeglasses drawn on it by ``pairlab.data.synthesizers.PseudoEyeglasses`` (black,
    h = 22, width 34, bridge 8 CelebA pixels, opacity 1; at the sample's landmarks when given, else at CelebA's
    mean aligned landmarks, ``aligned_landmarks``) -- the clean image is the right answer. Otherwise catch
    trials are unavailable and the designer says so.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np

from .. import __version__
from ..errors import UserError
from ..workspace import atomic_folder, clean_stale_temps, write_json_atomic
from .access import studies_root

SOURCE_ID = "source"
ANSWER_KEYS = ("left", "right", "both", "neither")
DEFAULT_ANSWERS = ("Left", "Right", "Both equally", "Neither")
COMPARISONS = {"pairs": "every pair of runs", "vs_source": "each run against the source image"}
QUESTIONS = {
    "eyeglasses": "Which image removes the eyeglasses better?",
    "smile": "Which image removes the smile better?",
}
DEFAULT_INSTRUCTIONS = (
    "You will see a photo (top) and two edited versions of it (left and right). Each edited version tries to "
    "make one change to the photo while keeping the person the same. For every pair, choose the one that does "
    "the change better; if both do it equally well choose 'both', if neither does it choose 'neither'. "
    "Take your time; there are no right or wrong answers."
)
CONSENT = ("I agree to take part in this study. My answers and response times are stored without my name and "
           "used only for research; I can stop at any time.")
MIN_CANDIDATES, MAX_CANDIDATES = 2, 6
CATCH_GLASSES = {"height": 22.0, "width": 34.0, "line_width": 8.0, "opacity": 1.0, "color": [0, 0, 0]}
FORMAT = 1


@dataclass(frozen=True)
class Candidate:
    """One run's images: ``outputs`` maps a test-sample name to the translated image file."""

    label: str
    outputs: Mapping[str, str]
    ref: str = ""  # where it came from (run folder, checkpoint); lab-only, never shown to participants


@dataclass(frozen=True)
class StudyInputs:
    """Everything a study is built from: the candidates, the source image per sample, and optional extras."""

    candidates: tuple
    sources: Mapping[str, str]
    truths: Mapping[str, str] = field(default_factory=dict)
    landmarks: Mapping[str, list] = field(default_factory=dict)  # sample -> 5x2, for drawn catch glasses
    notes: tuple = ()


@dataclass(frozen=True)
class StudyDesign:
    title: str = "Eyeglasses removal study"
    task: str = "eyeglasses"
    question: str = QUESTIONS["eyeglasses"]
    answers: tuple = DEFAULT_ANSWERS             # labels of left, right, both, neither (keys are fixed)
    instructions: str = DEFAULT_INSTRUCTIONS
    sample_count: int = 20
    sample_seed: int = 0
    samples: tuple = ()                          # hand-picked sample names (override sample_count)
    comparisons: tuple = ("pairs", "vs_source")
    trials_per_participant: int = 0              # 0 = the whole pool
    repeats: int = 2
    catch_trials: int = 2
    seed: int = 0

    @classmethod
    def from_json(cls, data: dict) -> "StudyDesign":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("answers", "samples", "comparisons"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

    def validate(self) -> "StudyDesign":
        def text(value, what, limit):
            if not isinstance(value, str) or not value.strip():
                raise UserError(f"Please give the {what}.")
            if len(value) > limit:
                raise UserError(f"The {what} is too long ({len(value)} characters, at most {limit}).")

        text(self.title, "study title", 120)
        text(self.question, "question", 300)
        text(self.instructions, "instructions", 4000)
        if len(self.answers) != 4:
            raise UserError("Give four answer labels: left, right, both, neither.")
        for key, label in zip(ANSWER_KEYS, self.answers):
            text(label, f"label of the '{key}' answer", 40)
        if len({a.strip().lower() for a in self.answers}) != 4:
            raise UserError("The four answer labels must differ from each other.")
        bad = [c for c in self.comparisons if c not in COMPARISONS]
        if bad or not self.comparisons:
            raise UserError(f"Choose the comparisons among {', '.join(COMPARISONS)} (at least one).")
        for name, value, lo, hi in (("sample count", self.sample_count, 1, 10_000),
                                    ("trials per participant", self.trials_per_participant, 0, 5_000),
                                    ("repeated trials", self.repeats, 0, 500), ("catch trials", self.catch_trials, 0, 500)):
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise UserError(f"The {name} must be a whole number from {lo} to {hi}.")
        return self


@dataclass(frozen=True)
class Plan:
    """A frozen study, read back from ``plan.json``; immutable (mappings are read-only views)."""

    study_id: str
    folder: Path
    sha256: str
    data: Mapping

    @property
    def design(self) -> StudyDesign:
        return StudyDesign.from_json(dict(self.data["design"]))

    @property
    def answers(self) -> tuple:
        return tuple(self.data["design"]["answers"])

    @property
    def labels(self) -> dict:
        """candidate id -> label, including the source when it was compared."""
        out = {c["id"]: c["label"] for c in self.data["candidates"]}
        if "vs_source" in self.data["design"]["comparisons"]:
            out[SOURCE_ID] = "source"
        return out

    @property
    def media_names(self) -> frozenset:
        return frozenset(self.data["media"])

    def media_path(self, name: str) -> Path:
        return self.folder / "media" / name


def _freeze_json(value):
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze_json(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze_json(v) for v in value)
    return value


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------ choosing
def available_samples(inputs: StudyInputs) -> list[str]:
    """Sample names that have a source image and an output from every candidate."""
    names = set(inputs.sources)
    for cand in inputs.candidates:
        names &= set(cand.outputs)
    return sorted(names)


def choose_samples(design: StudyDesign, inputs: StudyInputs) -> list[str]:
    available = available_samples(inputs)
    if not available:
        raise UserError("No test sample has a source image and an output from every chosen run.")
    if design.samples:
        wanted = [str(s).strip() for s in design.samples if str(s).strip()]
        have = set(available)
        missing = [s for s in wanted if s not in have]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise UserError(f"{len(missing)} hand-picked samples lack a source image or an output of every run: {shown}.")
        if len(set(wanted)) != len(wanted):
            raise UserError("A hand-picked sample is listed twice.")
        return wanted
    if design.sample_count > len(available):
        raise UserError(f"Only {len(available)} test samples have outputs from every chosen run; "
                        f"ask for at most {len(available)}.")
    rng = np.random.default_rng(design.sample_seed)
    picks = rng.choice(len(available), size=design.sample_count, replace=False)
    return sorted(available[int(i)] for i in picks)


def check_inputs(design: StudyDesign, inputs: StudyInputs) -> None:
    cands = inputs.candidates
    if not MIN_CANDIDATES <= len(cands) <= MAX_CANDIDATES:
        raise UserError(f"Choose {MIN_CANDIDATES} to {MAX_CANDIDATES} runs to compare (got {len(cands)}).")
    labels = [str(c.label).strip() for c in cands]
    if any(not lab for lab in labels):
        raise UserError("Every run needs a label.")
    if len({lab.lower() for lab in labels}) != len(labels):
        raise UserError("Two runs have the same label; give each run its own label.")
    if SOURCE_ID in {lab.lower() for lab in labels}:
        raise UserError("'source' is reserved for the source image; label the run differently.")
    # Blindness: nothing the participant reads may name a run.
    shown = " ".join([design.question, design.instructions, *design.answers]).lower()
    for cand in cands:
        names = [str(cand.label)] + ([Path(cand.ref).name] if cand.ref else [])
        for name in names:
            if len(name.strip()) >= 2 and name.strip().lower() in shown:
                raise UserError(f"The question, instructions or answers mention '{name.strip()}', which names a run; "
                                "participants must not learn which run made which image.")


def catch_mode(design: StudyDesign, inputs: StudyInputs, samples: list[str]) -> str | None:
    if design.catch_trials == 0:
        return None
    if all(s in inputs.truths for s in samples):
        return "truth"
    if design.task == "eyeglasses":
        return "drawn-glasses"
    raise UserError("Catch trials need the ground truth T(a) of every sample (SynthFaces has it) or the eyeglasses "
                    "task; set catch trials to 0.")


# ------------------------------------------------------------------------------------------ images
def _write_png(img, folder: Path) -> tuple[str, str]:
    """Save ``img`` (PIL or array) under a fresh opaque name without metadata; (name, sha256)."""
    from PIL import Image

    if isinstance(img, np.ndarray):
        img = Image.fromarray(img.astype(np.uint8), "RGB")
    while True:
        name = secrets.token_hex(12) + ".png"
        if not (folder / name).exists():
            break
    path = folder / name
    clean = Image.new("RGB", img.size)
    clean.paste(img.convert("RGB"))
    clean.save(path, format="PNG")
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())
    return name, sha256_file(path)


def aligned_landmarks(width: int, height: int) -> np.ndarray:
    """CelebA's mean landmarks on an aligned face of this size: the 178x218 frame centre-cropped to the image's
    aspect ratio and scaled (SynthFaces and CelebA compositions are made the same way)."""
    from ..data.celeba import CELEBA_MEAN_LANDMARKS

    if width / height >= 178 / 218:
        cw, ch = 178.0, 178.0 * height / width
    else:
        cw, ch = 218.0 * width / height, 218.0
    offset = np.array([(178.0 - cw) / 2, (218.0 - ch) / 2], dtype=np.float32)
    return ((CELEBA_MEAN_LANDMARKS - offset) * (width / cw)).astype(np.float32)


def _draw_catch_glasses(img, landmarks) -> np.ndarray:
    from ..data.synthesizers import PseudoEyeglasses

    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    h, w = arr.shape[:2]
    lm = np.asarray(landmarks, dtype=np.float32).reshape(5, 2) if landmarks is not None else aligned_landmarks(w, h)
    return PseudoEyeglasses().apply(arr, lm, dict(CATCH_GLASSES))


# ------------------------------------------------------------------------------------------ freezing
def new_study_id(root: Path) -> str:
    while True:
        sid = secrets.token_hex(6)
        if not (root / sid).exists():
            return sid


def freeze(design: StudyDesign, inputs: StudyInputs, root=None,
           progress: Callable[[float, str], None] | None = None, study_id: str | None = None) -> str:
    """Freeze a study: copy its images under opaque names, write plan.json; return the study id.

    ``study_id`` is random unless given (tests); an existing study is never overwritten.
    """
    from ..data.images import load_rgb

    design = design.validate()
    check_inputs(design, inputs)
    samples = choose_samples(design, inputs)
    mode = catch_mode(design, inputs, samples)
    cands = [{"id": f"c{i}", "label": str(c.label).strip(), "ref": str(c.ref)} for i, c in enumerate(inputs.candidates)]
    pairs = []
    if "pairs" in design.comparisons:
        pairs += [(cands[i]["id"], cands[j]["id"]) for i in range(len(cands)) for j in range(i + 1, len(cands))]
    if "vs_source" in design.comparisons:
        pairs += [(c["id"], SOURCE_ID) for c in cands]
    pool_size = len(pairs) * len(samples)
    per = design.trials_per_participant or pool_size
    if per > pool_size:
        raise UserError(f"The study has {pool_size} distinct trials; ask for at most {pool_size} per participant.")
    if design.repeats > per:
        raise UserError(f"Repeated trials ({design.repeats}) cannot exceed the trials per participant ({per}).")
    if design.catch_trials > len(samples):
        raise UserError(f"At most {len(samples)} catch trials (one per sample) are possible.")

    root = studies_root(root)
    clean_stale_temps(root)
    sid = study_id or new_study_id(root)
    report = progress or (lambda f, m: None)
    by_cand = {c["id"]: inputs.candidates[i] for i, c in enumerate(cands)}
    with atomic_folder(root / sid) as tmp:
        media_dir = tmp / "media"
        media_dir.mkdir()
        media: dict[str, dict] = {}

        def add(img, role, sample, candidate=None):
            name, digest = _write_png(img, media_dir)
            media[name] = {"sha256": digest, "role": role, "sample": sample, "candidate": candidate}
            return name

        shown: dict[tuple[str, str], str] = {}   # (candidate id, sample) -> media name
        source_panel: dict[str, str] = {}
        steps = len(samples)
        for k, s in enumerate(samples):
            report(0.9 * k / steps, f"Copying the images of sample {k + 1} of {steps}")
            src = load_rgb(inputs.sources[s])
            source_panel[s] = add(src, "source", s)
            if "vs_source" in design.comparisons:
                # The source as one of the two options gets its own opaque name (never the panel's).
                shown[(SOURCE_ID, s)] = add(src, "output", s, SOURCE_ID)
            for c in cands:
                shown[(c["id"], s)] = add(load_rgb(by_cand[c["id"]].outputs[s]), "output", s, c["id"])

        rng = random.Random(design.seed)
        trials = []
        used_ids: set[str] = set()

        def trial_id():
            while True:
                t = secrets.token_hex(6)
                if t not in used_ids:
                    used_ids.add(t)
                    return t

        for s in samples:
            for a, b in pairs:
                trials.append({"id": trial_id(), "kind": "vs_source" if b == SOURCE_ID else "pair", "sample": s,
                               "source": source_panel[s], "a": a, "b": b, "media_a": shown[(a, s)],
                               "media_b": shown[(b, s)], "correct": None})
        rng.shuffle(trials)  # the pool's order says nothing about the runs

        catch = []
        if mode:
            catch_samples = sorted(rng.sample(samples, design.catch_trials)) if design.catch_trials < len(samples) else list(samples)
            for i, s in enumerate(catch_samples):
                report(0.9 + 0.05 * i / len(catch_samples), "Making the catch trials")
                if mode == "truth":
                    good = add(load_rgb(inputs.truths[s]), "catch-good", s, "truth")
                    bad = add(load_rgb(inputs.sources[s]), "catch-bad", s, "unchanged source")
                else:
                    base_cand = cands[i % len(cands)]["id"]
                    base = load_rgb(by_cand[base_cand].outputs[s])
                    good = shown[(base_cand, s)]
                    bad = add(_draw_catch_glasses(base, inputs.landmarks.get(s)), "catch-bad", s,
                              f"{base_cand} with drawn eyeglasses")
                catch.append({"id": trial_id(), "kind": "catch", "sample": s, "source": source_panel[s],
                              "a": "catch-good", "b": "catch-bad", "media_a": good, "media_b": bad, "correct": "a"})

        report(0.97, "Writing the plan")
        plan = {
            "format": FORMAT, "study_id": sid, "title": design.title.strip(), "created": time.time(),
            "code_version": __version__, "design": asdict(design), "candidates": cands, "samples": samples,
            "catch_mode": mode, "trials_per_participant": per, "pool_size": pool_size,
            "media": media, "trials": trials, "catch": catch, "notes": list(inputs.notes),
        }
        write_json_atomic(tmp / "plan.json", plan)
        for path in list(media_dir.iterdir()) + [tmp / "plan.json"]:
            os.chmod(path, 0o444)
    plan_sha = sha256_file(root / sid / "plan.json")
    from .store import VoteStore

    VoteStore.open(root).register_study(sid, plan_sha)
    report(1.0, "Frozen")
    return sid


# ------------------------------------------------------------------------------------------ reading
_PLAN_CACHE: dict[tuple[str, str], Plan] = {}


def _valid_id(study_id) -> bool:
    return isinstance(study_id, str) and 1 <= len(study_id) <= 64 and all(c.isalnum() or c in "-_" for c in study_id)


def load_plan(study_id: str, root=None) -> Plan:
    """The frozen plan of ``study_id``; a UserError if there is no such study."""
    root = studies_root(root)
    if not _valid_id(study_id) or not (root / study_id / "plan.json").is_file():
        raise UserError("There is no study with this id.")
    folder = root / study_id
    key = (str(folder), str((folder / "plan.json").stat().st_mtime_ns))
    if key in _PLAN_CACHE:
        return _PLAN_CACHE[key]
    raw = (folder / "plan.json").read_bytes()
    try:
        data = json.loads(raw)
    except ValueError:
        raise UserError(f"The plan of study {study_id} is not readable JSON.")
    if data.get("format") != FORMAT or data.get("study_id") != study_id:
        raise UserError(f"The plan of study {study_id} is not a pairlab study plan of this version.")
    plan = Plan(study_id=study_id, folder=folder, sha256=hashlib.sha256(raw).hexdigest(), data=_freeze_json(data))
    _PLAN_CACHE[key] = plan
    return plan


def list_studies(root=None) -> list[dict]:
    """Every frozen study, newest first, with its vote counts."""
    from .store import VoteStore

    root = studies_root(root)
    store = VoteStore.open(root)
    rows = []
    for folder in root.iterdir():
        if not folder.is_dir() or folder.name.startswith(".") or not (folder / "plan.json").is_file():
            continue
        try:
            plan = load_plan(folder.name, root)
        except UserError:
            continue
        counts = store.counts(folder.name)
        rows.append({"study_id": folder.name, "title": plan.data["title"], "created": plan.data["created"],
                     "runs": ", ".join(c["label"] for c in plan.data["candidates"]),
                     "samples": len(plan.data["samples"]), "trials_per_participant": plan.data["trials_per_participant"],
                     "state": counts["state"], "participants": counts["participants"],
                     "finished": counts["finished"], "votes": counts["votes"]})
    rows.sort(key=lambda r: -r["created"])
    return rows


def verify_study(study_id: str, root=None) -> list[str]:
    """Problems found by re-hashing the plan and every image (empty list = intact)."""
    from .store import VoteStore

    plan = load_plan(study_id, root)
    problems = []
    recorded = VoteStore.open(studies_root(root)).plan_sha(study_id)
    if recorded and recorded != plan.sha256:
        problems.append("plan.json differs from the plan frozen at creation")
    for name, info in plan.data["media"].items():
        path = plan.media_path(name)
        if not path.is_file():
            problems.append(f"media/{name} is missing")
        elif sha256_file(path) != info["sha256"]:
            problems.append(f"media/{name} was changed")
    return problems


def delete_study(study_id: str, root=None) -> None:
    """Remove a study's folder (its votes stay in the store for the record)."""
    plan = load_plan(study_id, root)
    for path in plan.folder.rglob("*"):
        if path.is_file():
            os.chmod(path, 0o644)
    shutil.rmtree(plan.folder)
