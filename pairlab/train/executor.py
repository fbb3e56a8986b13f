"""Where a queued run's process executes. The queue schedules; an executor starts, watches, cancels and shows logs.

    local   the queue's own CPU/GPU slots on this machine (``queue.Queue``: one worker process per slot; default)
    slurm   one SLURM job per run, one job array per sweep or experiment (``slurm.SlurmExecutor``, via submitit)

A run's ``job.json`` says which (``"executor"``); its ``proc.json`` records where it executes now: a local pid with
its start time and slot, or ``{"executor": "slurm", "job_id": ..., "folder": ...}``. Both are reconciled on start.
"""
from __future__ import annotations

from ..errors import UserError

EXECUTORS = ("local", "slurm")


def check_executor(name) -> str:
    name = (name or "local").strip().lower()
    if name not in EXECUTORS:
        raise UserError(f"Unknown executor '{name}'; choose one of {', '.join(EXECUTORS)}.")
    if name == "slurm":
        from .slurm import require_slurm

        require_slurm()
    return name


def available_executors() -> list[str]:
    """'local', plus 'slurm' when a cluster config exists and sbatch is on the PATH."""
    import shutil

    from .slurm import cluster_config

    out = ["local"]
    try:
        if cluster_config() is not None and shutil.which("sbatch"):
            out.append("slurm")
    except UserError:
        pass
    return out
