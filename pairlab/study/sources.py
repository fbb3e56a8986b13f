"""Where a study's images come from: candidates (one per run) and the source image of every test sample.

``candidates_from_runs`` asks the evaluation cache (``pairlab.eval.outputs.translate_test_set``) for each run's
translated test set; ``candidates_from_folders`` takes plain image folders (outputs made elsewhere, tests).
Both return a ``StudyInputs`` for ``plan.freeze``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from ..data.images import is_image_name
from ..errors import UserError
from .plan import Candidate, StudyInputs


def finished_runs(runs_root=None) -> list[dict]:
    """Runs under ``workspace/runs`` whose status says 'done', by name: [{name, path, model, composition}]."""
    from ..train.run import finished_runs as done

    out = []
    for run in sorted(done(runs_root), key=lambda r: r.id):
        cfg = run.config_dict() or {}
        out.append({"name": run.id, "path": str(run.path), "model": str(cfg.get("model", "")),
                    "composition": Path(str(run.info().get("composition", ""))).name})
    return out


def short_name(run_dir) -> str:
    """A run's display name, or its folder name when the folder is not a run pairlab can read."""
    try:
        from ..train.run import open_run

        run = open_run(run_dir)
        if run.config_dict() or run.job():
            return run.display_name()
    except Exception:  # noqa: BLE001 - any folder of outputs is allowed; its name is the fallback
        pass
    return Path(run_dir).name


def _field(item, *names):
    for name in names:
        value = item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
        if value is not None:
            return value
    return None


def candidates_from_runs(run_dirs: Sequence, labels: Sequence[str] | None = None, checkpoint: str = "latest",
                         direction: str = "AtoB", progress=None) -> StudyInputs:
    """One candidate per run from the evaluation cache (translating the test set once if it is not cached).

    ``labels`` default to the runs' short names (``Run.display_name``, e.g. 'cyclegan α0.50 s0 #924167'; the full
    folder stays in the candidate's ``ref``, lab-side and in exports). The source image of a sample is its input; its truth, when
    the cache knows one, feeds the catch trials.
    """
    from ..eval.outputs import translate_test_set as translate

    run_dirs = [Path(r) for r in run_dirs]
    labels = list(labels) if labels else [short_name(r) for r in run_dirs]
    if len(labels) != len(run_dirs):
        raise UserError(f"Give one label per run ({len(run_dirs)} runs, {len(labels)} labels).")
    candidates, sources, truths = [], {}, {}
    for i, (run, label) in enumerate(zip(run_dirs, labels)):
        if progress:
            progress(i / len(run_dirs), f"Translating the test set of {run.name}")
        extra = {}
        if progress:
            def sub(f, m, i=i):
                progress((i + max(0.0, min(1.0, f))) / len(run_dirs), f"{run.name}: {m}")
            extra = {"progress": sub}
        output_set = translate(run, checkpoint=checkpoint, direction=direction, **extra)
        items = _field(output_set, "items") or []
        outputs = {}
        for item in items:
            name = _field(item, "name")
            out = _field(item, "output", "output_path")
            if name is None or out is None:
                continue
            outputs[str(name)] = str(out)
            src = _field(item, "input", "input_path", "source", "source_path")
            if src is not None:
                sources.setdefault(str(name), str(src))
            truth = _field(item, "truth", "truth_path")
            if truth is not None:
                truths.setdefault(str(name), str(truth))
        if not outputs:
            raise UserError(f"Run {run.name} has no translated test outputs for checkpoint '{checkpoint}' ({direction}).")
        ckpt = _field(output_set, "checkpoint") or checkpoint
        if isinstance(ckpt, Mapping):
            ckpt = ckpt.get("file") or ckpt.get("iteration") or checkpoint
        candidates.append(Candidate(label=str(label), outputs=outputs, ref=f"{run}#{ckpt}:{direction}"))
    if progress:
        progress(1.0, "Outputs ready")
    return StudyInputs(candidates=tuple(candidates), sources=sources, truths=truths)


def _images(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder.")
    return {p.stem: str(p) for p in sorted(folder.iterdir()) if p.is_file() and is_image_name(p.name)}


def candidates_from_folders(outputs: Mapping[str, str], source_dir, truth_dir=None) -> StudyInputs:
    """Candidates from plain folders: ``outputs`` maps a label to a folder of images named like the sources.

    Images match by file name without extension (``0001.png`` output of ``0001.jpg`` source).
    """
    sources = _images(Path(source_dir))
    truths = _images(Path(truth_dir)) if truth_dir else {}
    cands = tuple(Candidate(label=str(label), outputs=_images(Path(folder)), ref=str(folder))
                  for label, folder in outputs.items())
    return StudyInputs(candidates=cands, sources=sources, truths=truths)
