"""The lab's façade: every operation as one plain call, the same for the tabs, the CLI and the tests.

    source = lab.synthfaces_source()                          # Source (rendered on first use)
    comp = lab.build_composition(source, lab.Recipe(...))     # Composition folder
    ids = lab.queue_runs([comp.name], "cyclegan", "cpu-demo-64", seeds="0,1,2")   # Runs on the queue
    table = lab.evaluate(ids)                                 # metrics with intervals (+ the input-unchanged row)
    view = lab.compare(ids, view=...)                         # a Comparison: table, plot, grid, exports
    space = lab.feature_space(lab.FeatureRequest(...))        # the Figure 9 feature space
    sid = lab.freeze_study(design, lab.candidates_from_runs(ids)); lab.study_results(sid)
    result = lab.translate_image(photo, ["cyclegan-alpha1"])  # the live demo

The operations live with the concept that owns them (Source, Recipe/Composition, Run and the queue, the output
cache and metrics, the study, the demo); this module names them in one place and adds what spans several. Types and
constants the widgets need (``Recipe``, ``PRESETS``, ``MODEL_NAMES``, ``REGISTRY``, ``StudyDesign``, ...) are
imported from here too, lazily, so ``import pairlab.lab`` needs neither Gradio nor torch.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from . import workspace
from .data import compose as compose_mod
from .data.recipes import Recipe
from .data.sources import Source, open_source
from .errors import UserError

# The embedded default: enough identities for every recipe at N = 200 with a 100-image test split.
# PAIRLAB_SYNTHFACES_COUNT / _SIZE change it (the browser tests use a smaller one).
DEFAULT_SYNTHFACES = {
    "count": int(os.environ.get("PAIRLAB_SYNTHFACES_COUNT", "1500")),
    "size": int(os.environ.get("PAIRLAB_SYNTHFACES_SIZE", "128")),
    "seed": 0,
}


def synthfaces_dir(count: int, size: int, seed: int) -> Path:
    return workspace.sub("sources") / f"synthfaces-n{count}-{size}px-seed{seed}"


def synthfaces_source(count: int = DEFAULT_SYNTHFACES["count"], size: int = DEFAULT_SYNTHFACES["size"],
                      seed: int = DEFAULT_SYNTHFACES["seed"], progress=None) -> Source:
    """A SynthFaces source in the workspace, rendered on first use (deterministic for its parameters)."""
    from .data import synthfaces

    count, size, seed = int(count), int(size), int(seed)
    if count < 30 or count > 200_000:
        raise UserError(f"SynthFaces count must be between 30 and 200,000, got {count}.")
    folder = synthfaces_dir(count, size, seed)
    meta = folder / "synthfaces.json"
    if meta.exists():
        try:
            version = json.loads(meta.read_text()).get("version")
        except (OSError, ValueError):
            version = None
        if version != synthfaces.VERSION:
            # rendered by an older renderer (other bytes): keep it beside, under its version, and render anew
            old = folder.with_name(f"{folder.name}-v{version}")
            if not old.exists():
                os.replace(folder, old)
            else:
                import shutil

                shutil.rmtree(folder)
    if not meta.exists():
        # One renderer per set at a time (the app and the CLI may both ask for it); the second uses the first's.
        with workspace.exclusive(folder.parent / f".render-{folder.name}.lock"):
            if not meta.exists():
                workspace.clean_stale_temps(folder.parent)
                synthfaces.generate(folder, count=count, size=size, seed=seed, progress=progress)
    return open_source(folder, "celeba")


def workspace_sources() -> list[Path]:
    """The source folders of the workspace (``sources/``) in the CelebA layout (SynthFaces renders), by name."""
    root = workspace.sub("sources")
    return [f for f in (sorted(root.iterdir()) if root.is_dir() else [])
            if not f.name.startswith(".") and (f / "img_align_celeba").is_dir()]


_SOURCE_CACHE: dict = {}


def open_user_source(path: str, layout: str | None = None) -> Source:
    """Open a folder a user typed, refusing paths outside the allowed roots.

    Opened sources are kept while their folder and list files are unchanged (real CelebA takes seconds to parse)."""
    root = workspace.check_allowed(path)
    layout = None if layout in (None, "", "auto") else layout
    try:
        stamp = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(root.iterdir()) if p.suffix in (".txt", ".json") or p.is_dir())
    except OSError:
        stamp = None
    key = (str(root), layout)
    cached = _SOURCE_CACHE.get(key)
    if cached and stamp is not None and cached[0] == stamp:
        return cached[1]
    source = open_source(root, layout)
    _SOURCE_CACHE.clear()  # keep one: a real CelebA source holds ~400 MB
    _SOURCE_CACHE[key] = (stamp, source)
    return source


def build_composition(source: Source, recipe: Recipe, name: str | None = None, progress=None) -> Path:
    root = workspace.sub("compositions")
    workspace.clean_stale_temps(root)
    if name:
        name = workspace.safe_name(name)
    else:
        name = compose_mod.unique_name(compose_mod.default_name(source, recipe), root)
    return compose_mod.compose(source, recipe, name=name, out_root=root, progress=progress)


def skip_report(path: Path, limit: int = 5) -> list[str]:
    """What a build skipped, per file: a count by reason, the first ``limit`` files with their reason, and where
    the full list is (``skipped.txt`` in the composition). Empty when nothing was skipped."""
    listing = Path(path) / "skipped.txt"
    try:
        rows = [line.split("\t", 1) for line in listing.read_text().splitlines() if "\t" in line]
    except OSError:
        rows = []
    if not rows:
        return []
    counts: dict[str, int] = {}
    for _, reason in rows:
        counts[reason] = counts.get(reason, 0) + 1
    lines = [f"skipped {len(rows)} file(s): " + ", ".join(f"{n} {r}" for r, n in counts.items())]
    lines += [f"  {name}: {reason}" for name, reason in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"  ... and {len(rows) - limit} more, all listed in {listing}")
    else:
        lines.append(f"  (listed in {listing})")
    return lines


def name_note(typed, built: str, default: str | None = None) -> str:
    """One sentence when the composition's name is not what was typed (cleaned up) or the default was taken."""
    typed = (typed or "").strip()
    if typed and built != typed:
        return (f"The name '{typed}' was changed to '{built}' (names use letters, digits, '-', '_' and '.', and do "
                f"not start with '.' or '-').")
    if not typed and default and built != default:
        return f"A composition named '{default}' exists already, so this one is '{built}'."
    return ""


# ============================================================================================ runs
def queue():
    """The workspace's training queue (one per runs folder in this process)."""
    from .train.queue import default_queue

    return default_queue()


def queue_runs(compositions, model: str = "cyclegan", preset: str = "cpu-demo-64", overrides=None, seeds="0",
               name: str | None = None) -> list[str]:
    """Queue a run, or a sweep over compositions x seeds (a name only for a single run); returns the run ids.
    Everything is checked first (``train.jobs.prepare_job``): on bad input nothing is queued."""
    return queue().launch(compositions, model, preset, overrides, seeds, name=name)


def train_foreground(composition, model: str, preset: str, overrides=(), seed: int | None = None,
                     name: str | None = None) -> Path:
    """Train in this process (``python -m pairlab train``), with the queue's checks; the same call resumes."""
    from .train.jobs import resolve_composition
    from .train.loop import train_command

    return train_command(resolve_composition(composition), model, preset, overrides, name=name, seed=seed,
                         presets_dir=workspace.home() / "presets")


def preset_names() -> list[str]:
    """The built-in presets, then the workspace's saved ones."""
    from .train.config import preset_names as names

    return names(workspace.home() / "presets")


def describe_preset(preset: str, model: str) -> str:
    """What a preset trains as a model, in one paragraph (an unknown preset: its one sentence)."""
    from .train.config import describe_preset as describe

    return describe(preset, model, workspace.home() / "presets")


def runs(state=None) -> list:
    """The workspace's runs (``Run`` objects), newest first; only those in ``state`` when given."""
    from .train.run import list_runs

    return list_runs(state=state)


# ============================================================================================ evaluation
def evaluate(runs, metrics=None, checkpoint="latest", direction: str = "AtoB", baseline: bool = True,
             progress=None) -> list[dict]:
    """Evaluate runs side by side (cached test outputs, metrics with 95% intervals, scores written into each run),
    with the input-unchanged baseline rows on the same test images unless ``baseline`` is False."""
    from .eval.evaluate import evaluate_runs

    return evaluate_runs(runs, metrics=metrics, checkpoint=checkpoint, direction=direction, progress=progress,
                         baseline=baseline)


# ============================================================================================ study
def study_url(study_id: str) -> str:
    """The participants' link of a study (the participant server's public address)."""
    from .study.server import public_base_url

    return f"{public_base_url()}/study/{study_id}"


def study_state(study_id: str) -> str:
    """'open' or 'closed' (a closed study's link takes no more answers); None for an unknown study."""
    from .study.store import VoteStore

    return VoteStore.open().study_state(study_id)


def set_study_state(study_id: str, state: str) -> str:
    """Open or close a study to new participants and votes; returns the new state."""
    from .study.store import VoteStore

    VoteStore.open().set_state(study_id, state)
    return state


def secret_files(home=None) -> list[Path]:
    """The workspace's secret-bearing files (the study secret, the lab password, the vote store and its journals):
    the lab must never serve them."""
    from .study.access import PASSWORD_FILE, SECRET_FILE
    from .study.store import DB_NAME

    studies = Path(home if home is not None else workspace.home()) / "studies"
    names = [SECRET_FILE, PASSWORD_FILE, DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", DB_NAME + "-journal"]
    return [studies / n for n in names]


def serve_participants(host: str, port: int) -> int:
    """Serve only the participant pages (``study serve``), in the foreground."""
    from .study.server import main

    return main(["--host", host, "--port", str(port)])


# ============================================================================================ experiments
def plan_experiment(name: str, task: str = "eyeglasses", profile: str = "quick", seeds=None, n: int | None = None):
    """The arms and runs of an experiment (or ``all``) for a task and profile: a ``Plan`` (nothing is written)."""
    from .experiments.plan import make_plan

    return make_plan(name, task, profile, seeds, n)


def estimate_experiment(plan, measure: bool = True) -> dict:
    """The runs a plan trains and the estimated time here, from a measured step time."""
    from .experiments.runner import estimate

    return estimate(plan, measure)


def start_experiment(plan, progress=None) -> dict:
    """Build the plan's missing compositions and queue its missing runs (failed / stopped ones resume)."""
    from .experiments.runner import start

    return start(plan, progress)


def experiment_status(plan) -> dict:
    """Counts by state, the fraction of iterations done, an ETA, and one row per run."""
    from .experiments.runner import status

    return status(plan)


def report_experiment(plan, progress=None) -> dict:
    """Evaluate the plan's finished runs (cached) and write each experiment's results and report; returns
    {experiment: {"results": dict, "paths": {name: path}}}."""
    from .experiments.results import experiment_results, save_baseline, write_report
    from .experiments.runner import evaluate

    report = progress or (lambda f, m: None)
    rows = evaluate(plan, progress=lambda f, m: report(0.7 * f, m))
    save_baseline(plan, rows)
    out = {}
    for k, name in enumerate(plan.experiments):
        report(0.7 + 0.3 * k / len(plan.experiments), f"results of {name}")
        res = experiment_results(plan, name)
        out[name] = {"results": res, "paths": write_report(plan, name, res)}
    report(1.0, "reports written")
    return out


def experiment_dir(plan) -> Path:
    from .experiments.runner import experiment_dir as folder

    return folder(plan)


# ============================================================================================ lazy names
#: name -> module that owns it (relative to pairlab); imported on first use.
_OWNERS = {
    # datasets
    "Recipe": ".data.recipes", "KINDS": ".data.recipes", "AUGMENTATIONS": ".data.recipes",
    "SELECTIONS": ".data.recipes", "PAPER_PSEUDO_ALPHAS": ".data.recipes",
    "list_compositions": ".data.compose", "load_manifest": ".data.compose", "Composition": ".data.composition",
    # runs
    "Run": ".train.run", "FINAL_STATES": (".train.run", "FINAL"), "open_run": ".train.run", "finished_runs": ".train.run", "format_eta": ".train.run",
    "TrainConfig": ".train.config", "PRESETS": ".train.config", "load_preset": ".train.config",
    "save_preset": ".train.config", "parse_seeds": ".train.jobs", "parse_overrides": ".train.jobs",
    "launch_plan": ".train.jobs", "resolve_composition": ".train.jobs",
    "MODEL_NAMES": ".models.spec", "get_spec": ".models.spec", "find_spec": ".models.spec",
    # evaluation and comparison
    "REGISTRY": ".eval", "aggregate_seeds": ".eval.evaluate", "format_table": ".eval.evaluate",
    # feature space
    "FeatureRequest": ".eval.features", "FeatureSpace": ".eval.features", "feature_space": ".eval.features",
    "set_sigma": ".eval.features", "group_stats": ".eval.features", "summary_text": ".eval.features",
    "feature_figure": (".eval.feature_plot", "make_figure"), "export_features": (".eval.feature_plot", "export"),
    "feature_export_dir": (".eval.feature_plot", "export_dir"),
    "FEATURE_HOVER_JS": (".eval.feature_plot", "APP_HOVER_JS"),
    # study
    "StudyDesign": ".study.plan", "QUESTIONS": ".study.plan", "DEFAULT_ANSWERS": ".study.plan",
    "DEFAULT_INSTRUCTIONS": ".study.plan", "MIN_CANDIDATES": ".study.plan", "MAX_CANDIDATES": ".study.plan", "freeze_study": (".study.plan", "freeze"),
    "list_studies": ".study.plan", "load_plan": ".study.plan", "candidates_from_runs": ".study.sources",
    "candidates_from_folders": ".study.sources", "study_results": ".study.export", "export_study": ".study.export",
    # experiments
    "EXPERIMENTS": ".experiments.paper", "PROFILES": ".experiments.plan", "TASKS": ".experiments.plan",
    "wait_for_experiment": (".experiments.runner", "wait"),
    # demo
    "list_checkpoints": ".demo.translate", "resolve_checkpoint": ".demo.translate",
    "translate_image": ".demo.translate", "translate_files": ".demo.translate", "directions_of": ".demo.translate",
    "save_result": ".demo.translate", "zip_files": ".demo.translate", "MAX_CHECKPOINTS": ".demo.translate",
    "DIRECTIONS": ".demo.translate", "shipped_checkpoints": ".demo.shipped", "shipped_root": ".demo.shipped",
    "install_demo": ".demo.shipped", "build_demo": (".demo.shipped", "build"),
}


def __getattr__(name):
    import importlib

    owner = _OWNERS.get(name)
    if owner is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = owner if isinstance(owner, tuple) else (owner, name)
    return getattr(importlib.import_module(module, "pairlab"), attr)


def __dir__():
    return sorted(set(globals()) | set(_OWNERS))
