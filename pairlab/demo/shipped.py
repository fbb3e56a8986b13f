"""The shipped demo: small checkpoints trained on SynthFaces, and the demo workspace a fresh start opens.

    checkpoints/demo/<name>/
        model.pt        the run's A->B generator (float16 weights, inference only) and its training config
        manifest.json   how it was made: command, preset, seed, recipe, composition fingerprint, metrics, the
                        landmark template of its training crops (for aligning new faces in the Demo tab)
        curves.jsonl    the run's training log (its metrics.jsonl), so the Training tab shows its curves
        sample.png      the run's last sample grid
    checkpoints/demo/encoders/
        the lab's identity encoder and eyeglasses classifier of the default SynthFaces, as trained by the
        evaluation on first use; shipping them makes a fresh start fast and the manifests' metrics exact

``python -m pairlab demo build`` retrains all of it from the default SynthFaces (about half an hour on a 2-core
CPU); ``python -m pairlab demo install`` turns the current workspace into the demo workspace (what the app does
on a fresh start): the compositions are rebuilt from the default source (deterministic, checked against the
manifest's fingerprint), the checkpoints become finished runs, they are evaluated, and a small example study is
frozen with a few votes from an automatic participant.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__, workspace
from ..data.recipes import Recipe
from ..errors import UserError
from ..models.spec import get_spec
from ..train.run import Run
from .templates import composition_template

REPO = Path(__file__).resolve().parents[2]
FORMAT = "pairlab-shipped-1"
MARKER = ".demo.json"  # in PAIRLAB_HOME: the demo was installed (or declined) here
PRESET = "cpu-demo-64"
BUILD_COMMAND = "python -m pairlab demo build"
DEMO_ITERS = 4000  # iterations of every shipped model (cpu-demo-64's schedule compressed into them)


def shipped_root() -> Path:
    return Path(os.environ.get("PAIRLAB_SHIPPED_DIR") or REPO / "checkpoints" / "demo")


@dataclass(frozen=True)
class DemoSpec:
    name: str
    title: str
    model: str
    recipe: Recipe
    shares: str = ""  # the name of the spec whose composition this one trains on (default: its own)

    @property
    def composition(self) -> str:
        return f"demo-{self.shares or self.name}"


def _recipe(**kw) -> Recipe:
    return Recipe(task="eyeglasses", n=300, n_test=100, image_size=64, seed=0, **kw)


# Eyeglasses removal (A = with, B = without) at alpha 0, 0.5 and 1 (paper 000 Sec. 3), and Pix2Pix and CycleGAN
# both on the fully pseudo-paired set (M(b), b) of the eyeglasses synthesizer (Sec. 5.1): Figure 9's pair, as the
# paper trains it (explicit pairs for Pix2Pix, the same images as implicit pairs for CycleGAN).
SPECS = (
    DemoSpec("cyclegan-alpha0", "CycleGAN, alpha = 0 (unpaired)", "cyclegan", _recipe(kind="alpha-paired", alpha=0.0)),
    DemoSpec("cyclegan-alpha0.5", "CycleGAN, alpha = 0.5", "cyclegan", _recipe(kind="alpha-paired", alpha=0.5)),
    DemoSpec("cyclegan-alpha1", "CycleGAN, alpha = 1 (all paired)", "cyclegan", _recipe(kind="alpha-paired", alpha=1.0)),
    DemoSpec("pix2pix-pseudo", "Pix2Pix on pseudo-pairs", "pix2pix", _recipe(kind="explicit", pairs_from="pseudo")),
    DemoSpec("cyclegan-pseudo", "CycleGAN on the same pseudo-pairs", "cyclegan",
             _recipe(kind="explicit", pairs_from="pseudo"), shares="pix2pix-pseudo"),
)
FIGURE9_RUNS = ("pix2pix-pseudo", "cyclegan-pseudo")
STUDY_RUNS = ("cyclegan-alpha0", "cyclegan-alpha1", "pix2pix-pseudo")
STUDY_TITLE = "Demo: eyeglasses removal (votes by an automatic participant)"


@dataclass(frozen=True)
class ShippedCheckpoint:
    name: str
    path: Path  # the model.pt
    manifest: dict

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def title(self) -> str:
        return self.manifest.get("title") or self.name


def shipped_checkpoints(root=None) -> list[ShippedCheckpoint]:
    """The shipped checkpoints with a readable manifest, in the order of SPECS (others after, by name)."""
    root = Path(root) if root is not None else shipped_root()
    found = []
    for folder in sorted(root.glob("*/")) if root.is_dir() else []:
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        if manifest.get("format") == FORMAT and (folder / "model.pt").is_file():
            found.append(ShippedCheckpoint(folder.name, folder / "model.pt", manifest))
    order = {s.name: i for i, s in enumerate(SPECS)}
    return sorted(found, key=lambda c: (order.get(c.name, len(order)), c.name))


# ================================================================================ fingerprints
def composition_fingerprint(comp: Path) -> str:
    """A hash of what a model trains on: the manifest's recipe and image list and every image's bytes."""
    comp = Path(comp)
    manifest = json.loads((comp / "manifest.json").read_text())
    h = hashlib.sha1(json.dumps({"recipe": manifest.get("recipe"), "images": manifest.get("images"),
                                 "source": (manifest.get("source") or {}).get("fingerprint")}, sort_keys=True).encode())
    for split in ("trainA", "trainB", "testA", "testB"):
        for f in sorted((comp / split).glob("*")):
            h.update(f"{split}/{f.name}".encode())
            h.update(hashlib.sha1(f.read_bytes()).digest())
    return h.hexdigest()[:16]


# ================================================================================ checkpoints
def generator_names(model: str) -> tuple[str, ...]:
    return (get_spec(model).generator("AtoB"),)  # the A->B generator only: the demo removes eyeglasses


def export_generator(run_dir: Path, out_file: Path) -> dict:
    """Write an inference-only checkpoint: the A->B generator in float16 plus the config; returns its info."""
    from ..train import checkpoint as ckpt

    state = ckpt.load_checkpoint(Run(run_dir).latest_path)
    cfg = state["config"]
    nets = {}
    for name in generator_names(cfg["model"]):
        nets[name] = {k: (v.half() if v.is_floating_point() else v).contiguous()
                      for k, v in state["model_state"]["nets"][name].items()}
    blob = {"format": ckpt.FORMAT, "inference_only": True, "config": cfg, "iteration": state["iteration"],
            "epoch": state["epoch"], "model_state": {"nets": nets}}
    ckpt.save_atomic(blob, out_file)
    return {"iteration": state["iteration"], "epoch": state["epoch"], "config": cfg}


def _template(comp: Path, size: int) -> list | None:
    """Where the training crops have the five landmarks (the Demo tab aligns new faces onto it)."""
    template, _ = composition_template(comp, size)
    return None if template is None else np.round(template, 2).tolist()


def _sha1(path: Path) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


# ================================================================================ installing into a workspace
def _default_source(progress=None):
    from ..data import library as lab

    return lab.synthfaces_source(progress=progress)


def _composition(source, shipped: ShippedCheckpoint, progress=None) -> tuple[Path, bool]:
    """The shipped run's composition in this workspace, built if missing; (folder, fingerprint matches)."""
    from ..data import library as lab

    m = shipped.manifest["composition"]
    folder = workspace.sub("compositions") / m["name"]
    if not (folder / "manifest.json").exists():
        lab.build_composition(source, Recipe.from_dict(m["recipe"]), name=m["name"], progress=progress)
    return folder, composition_fingerprint(folder) == m["fingerprint"]


def install_run(shipped: ShippedCheckpoint, comp: Path, runs_root: Path | None = None) -> Path:
    """A finished run folder made from a shipped checkpoint (config, status, curves, sample, latest.pt)."""
    runs_root = runs_root or workspace.sub("runs")
    m = shipped.manifest
    run = runs_root / f"demo-{shipped.name}"
    with workspace.atomic_folder(run) as tmp:
        it = int(m["iteration"])
        made = Run.create(tmp, config=m["config"], info={
            "composition": str(comp.resolve()), "model": m["model"], "pairlab_version": m.get("pairlab_version"),
            "torch_version": m.get("torch_version"), "device": m.get("device"), "created": time.time(),
            "shipped": shipped.name, "preset": f"{m.get('preset', PRESET)} (shipped)", "parameters": m.get("parameters")},
            status={"state": "done", "progress": 1.0, "iteration": it, "total": it, "epoch": m.get("epoch"),
                    "eta_s": None, "its_per_s": m.get("its_per_s"), "error": "", "updated": time.time(),
                    "message": f"installed from the shipped demo checkpoint {shipped.name}"})
        shutil.copyfile(shipped.path, made.latest_path)
        for extra, dest in (("curves.jsonl", made.losses_path), ("sample.png", made.sample_path(it))):
            if (shipped.folder / extra).exists():
                shutil.copyfile(shipped.folder / extra, dest)
        made.write_log(f"Installed from {shipped.folder} (shipped demo checkpoint; the A->B generator only, float16).\n"
                       f"Made with: {m.get('command', BUILD_COMMAND)}\n")
    return run


def install_encoders(root: Path | None = None) -> list[str]:
    """Copy the shipped encoder files into the workspace cache (never over ones already there)."""
    from ..eval import encoders

    src = (root or shipped_root()) / "encoders"
    dest = encoders.identity_cache_file("x").parent
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for f in sorted(src.glob("*.pt")) if src.is_dir() else []:
        if not (dest / f.name).exists():
            shutil.copyfile(f, dest / f.name)
            copied.append(f.name)
    return copied


def is_fresh(home: Path | None = None) -> bool:
    """No compositions, runs or studies yet, and the demo was never installed or declined here."""
    home = home or workspace.home()
    if (home / MARKER).exists():
        return False
    for sub in ("compositions", "runs", "studies"):
        folder = home / sub
        if folder.is_dir() and any(p for p in folder.iterdir() if not p.name.startswith(".")):
            return False
    return True


def install_demo(progress=None, root=None, votes: int = 2) -> dict:
    """Make the current workspace the demo workspace; returns a summary. Safe to call again (skips what exists)."""
    report = progress or (lambda f, m: None)
    root = Path(root) if root is not None else shipped_root()
    shipped = shipped_checkpoints(root)
    if not shipped:
        raise UserError(f"There are no shipped demo checkpoints in {root}; run '{BUILD_COMMAND}' to make them.")
    t0 = time.time()
    summary = {"runs": [], "compositions": [], "notes": [], "study": None}
    source = _default_source(progress=lambda f, m: report(0.3 * f, f"default SynthFaces: {m}"))
    want = shipped[0].manifest["composition"]["source_fingerprint"]
    if source.fingerprint() != want:
        raise UserError(f"The default SynthFaces here ({source.name}) is not the one the demo checkpoints were "
                        "trained on, so the demo workspace is not installed.")
    summary["encoders"] = install_encoders(root)
    runs = []
    for i, s in enumerate(shipped):
        report(0.3 + 0.3 * i / len(shipped), f"Installing {s.title}")
        comp, same = _composition(source, s)
        if not same:
            summary["notes"].append(f"The rebuilt composition {comp.name} differs from the one {s.name} was trained "
                                    "on (another SynthFaces or pillow version?); its metrics may differ.")
        summary["compositions"].append(comp.name)
        run = workspace.sub("runs") / f"demo-{s.name}"
        if not Run(run).has_config():
            run = install_run(s, comp)
        runs.append(run)
        summary["runs"].append(run.name)
    from ..eval.evaluate import evaluate_runs

    report(0.6, "Evaluating the demo runs")
    results = evaluate_runs(runs, progress=lambda f, m: report(0.6 + 0.25 * f, m))
    summary["notes"] += [f"{r['name']}: {r['error']}" for r in results if not r.get("ok")]
    # The Compare and Feature space tabs reopen on their last view: make it the demo runs, and Figure 9's pair
    # (Pix2Pix and CycleGAN, both on the fully pseudo-paired set) over that composition.
    workspace.remember_view("compare", {"runs": [r.name for r in runs]})
    fig9 = [n for n in FIGURE9_RUNS if any(s.name == n for s in shipped)]
    workspace.remember_view("features", {
        "composition": "demo-pix2pix-pseudo", "runs": [f"demo-{n}" for n in fig9], "source": "",
        "task": "eyeglasses", "encoder": "attribute", "sigma": 1.0})
    from ..study.plan import list_studies

    existing = [st for st in list_studies() if st["title"] == STUDY_TITLE]
    titles = {s.name: s.title for s in shipped}
    if existing:
        st = existing[0]
        summary["study"] = {"id": st["study_id"], "title": STUDY_TITLE, "votes": st["votes"],
                            "participants": st["participants"]}
    elif all(n in titles for n in STUDY_RUNS):
        try:
            summary["study"] = make_example_study([workspace.sub("runs") / f"demo-{n}" for n in STUDY_RUNS],
                                                  [titles[n] for n in STUDY_RUNS], participants=votes,
                                                  progress=lambda f, m: report(0.85 + 0.15 * f, m))
        except UserError as exc:
            summary["notes"].append(f"No example study: {exc}")
    summary["seconds"] = round(time.time() - t0, 1)
    workspace.write_json_atomic(workspace.home() / MARKER, dict(summary, installed=time.time(), root=str(root)))
    report(1.0, "Demo workspace ready")
    return summary


def start_here(home: Path | None = None) -> str | None:
    """The "start here" panel of a demo workspace (Markdown), or None: the demo is not installed here, or the
    panel was hidden."""
    home = Path(home) if home is not None else workspace.home()
    marker = workspace.read_json(home / MARKER) or {}
    if marker.get("declined") or marker.get("start_here_hidden") or not marker.get("runs"):
        return None
    study = marker.get("study") or {}
    lines = [
        f"**This is the demo workspace.** pairlab installed it on first start so that every tab has something to "
        f"show: {len(marker['runs'])} trained runs on eyeglasses removal (SynthFaces, pairlab's embedded synthetic "
        f"faces, 64 px), their evaluation and an example study. Try, in order:",
        "1. **Datasets**: the demo compositions (alpha-paired and pseudo-paired); build your own from the same faces.",
        "2. **Training**: the finished demo runs with their curves and samples; launch a `cpu-demo-64` run.",
        "3. **Compare**: the demo runs side by side: image grid, metric table and plots.",
        "4. **Feature space**: the PCA plot of where translated images land.",
        "5. **User study**: " + (f"the example study ({study.get('votes', 0)} votes by an automatic participant); "
                                 if study else "") + "design and freeze your own, share its participant link.",
        "6. **Demo**: upload a photo (or use the webcam) and translate it with a demo run.",
        "7. **Experiments**: the paper's experiments end to end, with a verdict per claim.",
        "\nRuns you launch train in the background and keep going when you close the page.",
    ]
    return "\n".join(lines)


def hide_start_here(home: Path | None = None) -> None:
    """Do not show the "start here" panel again in this workspace."""
    home = Path(home) if home is not None else workspace.home()
    marker = workspace.read_json(home / MARKER)
    if marker is None:
        return
    workspace.write_json_atomic(home / MARKER, dict(marker, start_here_hidden=time.time()))


def decline_demo(home: Path | None = None) -> None:
    """Remember that this workspace starts empty (the user asked for it)."""
    home = Path(home) if home is not None else workspace.home()
    home.mkdir(parents=True, exist_ok=True)
    workspace.write_json_atomic(home / MARKER, {"declined": True, "when": time.time()})


# ================================================================================ the example study
def oracle_choice(classifier, left: np.ndarray, right: np.ndarray) -> str:
    """An automatic participant for 'which image has the eyeglasses removed?': the lab's eyeglasses classifier
    says p(eyeglasses) for each image; below one half counts as removed."""
    p_left, p_right = classifier.predict_proba([left, right])  # a list: the two images may differ in size
    gone = (p_left < 0.5, p_right < 0.5)
    if gone == (True, True):
        return "both"
    if gone == (False, False):
        return "neither"
    return "left" if gone[0] else "right"


def make_example_study(run_dirs, labels, participants: int = 2, progress=None) -> dict:
    """Freeze a small two-model preference study over the demo runs and answer it with automatic participants."""
    from ..data.images import load_rgb
    from ..eval import encoders
    from ..study import plan as plan_mod
    from ..study import session
    from ..study.sources import candidates_from_runs

    inputs = candidates_from_runs(run_dirs, labels, progress=progress)
    design = plan_mod.StudyDesign(title=STUDY_TITLE, sample_count=6,
                                  repeats=1, catch_trials=1)
    sid = plan_mod.freeze(design, inputs)
    comp = Run(run_dirs[0]).info()["composition"]
    manifest = json.loads((Path(comp) / "manifest.json").read_text())
    classifier = encoders.attribute_classifier(fingerprint=manifest["source"]["fingerprint"], attribute="Eyeglasses")
    plan = plan_mod.load_plan(sid)
    n = 0
    for _ in range(participants):
        token, st = session.join(sid, code=None, user_agent="pairlab demo: automatic participant (eyeglasses classifier)")
        while st["trial"] is not None:
            t = st["trial"]
            left = load_rgb(plan.media_path(t["left"]))
            right = load_rgb(plan.media_path(t["right"]))
            choice = oracle_choice(classifier, np.asarray(left), np.asarray(right))
            st = session.vote(sid, token, t["handle"], choice, client_ms=None)
            n += 1
    return {"id": sid, "title": design.title, "votes": n, "participants": participants}


# ================================================================================ building (maintainers)
def build(out_root: Path | None = None, specs=SPECS, max_iters: int | None = None, threads: int = 0,
          echo=print, only=None) -> list[dict]:
    """Retrain the shipped demo from scratch in the current workspace and write it to ``out_root``.

    Compositions and runs are made under $PAIRLAB_HOME (use a scratch one); a finished run is reused, so the
    command resumes after an interruption. Metrics are measured on the packaged (float16) generator, installed
    as a run exactly as a fresh start installs it."""
    import torch

    from ..data import library as lab
    from ..eval import encoders
    from ..eval.evaluate import evaluate_runs
    from ..train.config import PRESETS
    from ..train.loop import train

    out_root = Path(out_root or shipped_root())
    out_root.mkdir(parents=True, exist_ok=True)
    if only:
        unknown = set(only) - {s.name for s in specs}
        if unknown:
            raise UserError(f"Unknown demo checkpoint {', '.join(sorted(unknown))}; they are {', '.join(s.name for s in specs)}.")
        specs = [s for s in specs if s.name in only]
    source = lab.synthfaces_source()
    made = []
    for spec in specs:
        comp_name = spec.composition
        comp = workspace.sub("compositions") / comp_name
        if not (comp / "manifest.json").exists():
            lab.build_composition(source, spec.recipe, name=comp_name)
        cfg = PRESETS[PRESET].with_overrides({"model": spec.model, "max_iters": max_iters or DEMO_ITERS})
        if threads:  # an execution setting: one thread avoids oversubscription when the CPU is shared
            cfg = cfg.with_overrides({"threads": threads})
        train_dir = workspace.sub("runs") / f"train-{spec.name}"
        trained = Run(train_dir)
        if trained.state() != "done":
            echo(f"training {spec.name} ({spec.model}, {PRESET}) on {comp_name}")
            train(comp, train_dir, cfg, resume=trained.checkpoints_dir.is_dir(), echo=True)
        status = trained.status()
        folder = out_root / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        info = export_generator(train_dir, folder / "model.pt")
        shutil.copyfile(trained.losses_path, folder / "curves.jsonl")  # losses.jsonl (metrics.jsonl before)
        grid = trained.latest_sample()
        if grid is not None:
            shutil.copyfile(grid, folder / "sample.png")
        comp_manifest = json.loads((comp / "manifest.json").read_text())
        run_info = trained.info()
        manifest = {
            "format": FORMAT, "name": spec.name, "title": spec.title, "model": spec.model, "preset": PRESET,
            "config": trained.config_dict(), "seed": cfg.seed,
            "image_size": cfg.image_size, "direction": "AtoB", "task": "eyeglasses",
            "domains": {"A": "eyeglasses", "B": "no eyeglasses"}, "nets": list(generator_names(spec.model)),
            "weights": "float16", "iteration": info["iteration"], "epoch": info["epoch"],
            "its_per_s": status.get("its_per_s"),
            "device": run_info.get("device"), "parameters": {k: v for k, v in (run_info.get("parameters") or {}).items()
                                                            if k in generator_names(spec.model)},
            "composition": {"name": comp_name, "recipe": spec.recipe.to_dict(), "fingerprint": composition_fingerprint(comp),
                            "source": source.name, "source_fingerprint": source.fingerprint(),
                            "counts": comp_manifest.get("counts")},
            "landmark_template": _template(comp, cfg.image_size),
            "command": f"{BUILD_COMMAND}  (it runs: python -m pairlab compose synthfaces --recipe {spec.recipe.kind} "
                       f"--task eyeglasses --n {spec.recipe.n}" + (f" --alpha {spec.recipe.alpha}" if spec.recipe.kind == "alpha-paired" else "")
                       + f" --image-size 64 --name {comp_name}; python -m pairlab train {comp_name} --model {spec.model} "
                       f"--preset {PRESET} --set max_iters={cfg.max_iters} --seed {cfg.seed})",
            "pairlab_version": __version__, "torch_version": torch.__version__, "built": time.strftime("%Y-%m-%d"),
            "sha1": _sha1(folder / "model.pt"),
        }
        workspace.write_json_atomic(folder / "manifest.json", manifest)
        made.append(manifest)
    # Metrics of the packaged generators, installed as runs the way a fresh start installs them.
    shipped = [s for s in shipped_checkpoints(out_root) if s.name in {sp.name for sp in specs}]
    runs = []
    for s in shipped:
        run = workspace.sub("runs") / f"demo-{s.name}"
        if run.exists():
            shutil.rmtree(run)
        runs.append(install_run(s, workspace.sub("compositions") / s.manifest["composition"]["name"]))
    from ..eval.evaluate import split_baselines

    results, baselines = split_baselines(evaluate_runs(runs, progress=lambda f, m: None, baseline=True))

    def summary(metrics: dict) -> dict:
        return {k: {kk: v[kk] for kk in ("mean", "ci_low", "ci_high", "n", "label") if kk in v}
                for k, v in (metrics or {}).items()}

    for s, r in zip(shipped, results):
        m = dict(s.manifest)
        m["metrics"] = summary(r.get("metrics"))
        m["metrics_unavailable"] = r.get("unavailable") or {}
        m["n_test"] = r.get("n_test")
        # the input-unchanged (identity map) baseline on the same test images: does the model beat doing nothing?
        base = next((b for b in baselines if r.get("name") in (b.get("runs") or [])), None)
        if base is not None and base.get("ok", True):
            m["baseline"] = {"name": "input unchanged (identity map)", "metrics": summary(base.get("metrics")),
                             "not_applicable": sorted(base.get("not_applicable") or {})}
        workspace.write_json_atomic(s.folder / "manifest.json", m)
        echo(f"{s.name}: " + ", ".join(f"{k} {v['mean']:.4f}" for k, v in m["metrics"].items()))
        if "baseline" in m:
            echo("  input unchanged: " + ", ".join(f"{k} {v['mean']:.4f}" for k, v in m["baseline"]["metrics"].items()))
    # The encoders the evaluation trained (or found) for the default source travel with the checkpoints.
    enc_dir = out_root / "encoders"
    enc_dir.mkdir(exist_ok=True)
    fp = source.fingerprint()
    for path in (encoders.identity_cache_file(fp), encoders.attribute_cache_file(fp, "Eyeglasses")):
        if path.exists():
            shutil.copyfile(path, enc_dir / path.name)
    return made
