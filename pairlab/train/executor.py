"""Where a queued run's process executes. The queue schedules; an executor starts, watches, cancels and shows logs.

Every executor has the same four operations on the ``proc`` records it returns (what a run's proc.json holds):

    submit(...)            start the run(s); returns one proc record per run
    states(procs)          {key: state} — for the local executor 'RUNNING' or 'GONE', for SLURM the job's state
    alive(proc)            the run's process (job) is still active
    cancel(proc, kill)     SIGTERM (the worker saves a checkpoint and ends 'stopped'), or SIGKILL with kill=True
    logs(proc)             what the executor itself captured beyond the run's own log.txt

    local   the queue's own CPU/GPU slots on this machine (``queue.Queue``: one worker process per slot; default)
    slurm   one SLURM job per run, one job array per sweep or experiment (``slurm.SlurmExecutor``, via submitit)

A run's ``job.json`` says which (``"executor"``); its ``proc.json`` records where it executes now: a local pid with
its start time and slot, or ``{"executor": "slurm", "job_id": ..., "folder": ...}``. Both are reconciled on start.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from .. import workspace
from ..errors import UserError

proc_start_time = workspace.process_start_time  # pid + start time name one process

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


# ----- this machine -----------------------------------------------------------------------------------------
def reap(pid: int) -> None:
    """Collect an ended child so it does not stay a zombie (a no-op for processes that are not our children)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class LocalExecutor:
    """The queue's own slots on this machine: one worker process per run, in its own process group; a proc record
    is ``{"pid", "start" (the process's start time), "slot", "device", "started_at"}``, so a recycled pid is never
    mistaken for the run. Runs of ``pairlab train`` in the foreground register the same kind of record."""

    name = "local"

    def __init__(self, python: str):
        self.python = python
        self.children: dict[int, subprocess.Popen] = {}

    def submit(self, folder: Path, slot, env: dict, log, cwd: str) -> dict:
        child = subprocess.Popen([self.python, "-m", "pairlab.train.worker", str(folder)], cwd=cwd, env=env,
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        self.children[child.pid] = child
        return {"pid": child.pid, "start": proc_start_time(child.pid), "slot": slot.id, "device": slot.device,
                "started_at": time.time()}

    def reap_children(self) -> None:
        for pid, child in list(self.children.items()):
            if child.poll() is not None:
                self.children.pop(pid, None)

    def alive(self, proc: dict | None) -> bool:
        if not proc or not proc.get("pid"):
            return False
        pid = int(proc["pid"])
        child = self.children.get(pid)
        if child is not None and child.poll() is not None:
            self.children.pop(pid, None)
            return False
        start = proc_start_time(pid)
        if start is None:
            reap(pid)
            return False
        return proc.get("start") is None or int(proc["start"]) == start

    def states(self, procs) -> dict[str, str]:
        return {str(p.get("pid")): ("RUNNING" if self.alive(p) else "GONE") for p in procs}

    def cancel(self, proc: dict, kill: bool = False) -> None:
        signal_group(int(proc["pid"]), signal.SIGKILL if kill else signal.SIGTERM)

    def logs(self, proc: dict) -> str:
        return ""  # the worker's output goes to the run's log.txt
