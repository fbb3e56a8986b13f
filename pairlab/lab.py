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

from pathlib import Path

from . import workspace
from .data.library import (DEFAULT_SYNTHFACES, build_composition, name_note, open_user_source, skip_report,
                           synthfaces_dir, synthfaces_source, workspace_sources)

# ============================================================================================ datasets
#: re-exported from ``pairlab.data.library`` (the workspace's sources and compositions); the rest of the façade's
#: names are its functions below and the owners' names in ``_OWNERS`` (``dir(lab)`` lists them all)
__all__ = ["DEFAULT_SYNTHFACES", "build_composition", "name_note", "open_user_source", "skip_report", "synthfaces_dir",
           "synthfaces_source", "workspace_sources"]

# ============================================================================================ runs
def queue():
    """The workspace's training queue (one per runs folder in this process)."""
    from .train.queue import default_queue

    return default_queue()


def queue_runs(compositions, model: str = "cyclegan", preset: str = "cpu-demo-64", overrides=None, seeds="0",
               name: str | None = None, executor: str = "local") -> list[str]:
    """Queue a run, or a sweep over compositions x seeds (a name only for a single run); returns the run ids.
    Everything is checked first (``train.jobs.prepare_job``): on bad input nothing is queued. ``executor``: one of
    ``available_executors()`` ("slurm": one SLURM job, or one job array for a sweep)."""
    return queue().launch(compositions, model, preset, overrides, seeds, name=name, executor=executor)


def run_logs(run_id: str, lines: int = 20) -> str:
    """The run's log tail, plus for a SLURM run the tail of its job's stdout / stderr."""
    return queue().logs(run_id, lines)


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


def start_experiment(plan, progress=None, executor: str = "local") -> dict:
    """Build the plan's missing compositions and queue its missing runs (failed / stopped ones resume), on the
    local slots or (``executor="slurm"``) as one SLURM job array."""
    from .experiments.runner import start

    return start(plan, progress, executor=executor)


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
    "preview": ".data.compose", "makeup": ".data.compose", "default_name": ".data.compose",
    "delete_composition": ".data.compose", "render_synthfaces": (".data.synthfaces", "generate"),
    # runs
    "Run": ".train.run", "FINAL_STATES": (".train.run", "FINAL"), "open_run": ".train.run", "finished_runs": ".train.run", "format_eta": ".train.run",
    "TrainConfig": ".train.config", "PRESETS": ".train.config", "load_preset": ".train.config",
    "save_preset": ".train.config", "parse_seeds": ".train.jobs", "parse_overrides": ".train.jobs",
    "launch_plan": ".train.jobs", "resolve_composition": ".train.jobs",
    "EXECUTORS": ".train.executor", "available_executors": ".train.executor", "cluster_config": ".train.slurm",
    "MODEL_NAMES": ".models.spec", "get_spec": ".models.spec", "find_spec": ".models.spec",
    # evaluation and comparison
    "REGISTRY": ".eval", "aggregate_seeds": ".eval.evaluate", "format_table": ".eval.evaluate",
    "compare": ".eval.comparison", "Comparison": ".eval.comparison", "short_labels": ".eval.comparison",
    "curve_ema": (".train.curves", "ema"), "curve_group_key": (".train.curves", "group_key"),
    "group_curves": (".train.curves", "group_runs"), "curve_loss_keys": (".train.curves", "loss_keys"),
    "curve_mean_band": (".train.curves", "mean_band"),
    "COMPARE_VIEWS": (".eval.compare", "VIEWS"), "compare_sweeps": (".eval.compare", "sweeps"),
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
    "study_settings": ".study.platforms", "set_study_settings": ".study.platforms", "STUDY_PLATFORMS": (".study.platforms", "PLATFORMS"),
    "trial_preview": ".study.preview", "trial_preview_html": (".study.preview", "preview_html"),
    "study_trial_count": (".study.preview", "trial_count"),
    # experiments
    "EXPERIMENTS": ".experiments.paper", "PROFILES": ".experiments.plan", "TASKS": ".experiments.plan",
    "wait_for_experiment": (".experiments.runner", "wait"),
    "workspace_experiments": (".experiments.runner", "list_experiments"),
    "written_reports": ".experiments.results", "experiment_figure": (".experiments.results", "figure"),
    "REPORT_FILES": ".experiments.results",
    # demo
    "list_checkpoints": ".demo.translate", "resolve_checkpoint": ".demo.translate",
    "translate_image": ".demo.translate", "translate_files": ".demo.translate", "directions_of": ".demo.translate",
    "save_result": ".demo.translate", "zip_files": ".demo.translate", "MAX_CHECKPOINTS": ".demo.translate",
    "DIRECTIONS": ".demo.translate", "shipped_checkpoints": ".demo.shipped", "shipped_root": ".demo.shipped",
    "install_demo": ".demo.shipped", "build_demo": (".demo.shipped", "build"),
    "start_here": ".demo.shipped", "hide_start_here": ".demo.shipped",
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
