"""The SLURM executor: a queued run becomes a SLURM job (through ``submitit``) that runs the same worker,
``python -m pairlab.train.worker RUN_DIR``, in its run folder on a shared filesystem.

    cfg = cluster_config()                  # workspace/cluster.json + PAIRLAB_SLURM_* (None: no cluster configured)
    ex = SlurmExecutor(cfg, folder)         # folder: runs/.slurm (submitit's pickles and stdout/stderr per job)
    procs = ex.submit([run_dir, ...])       # several runs: one job array (array_parallelism at a time)
    ex.states(procs); ex.cancel(proc); ex.logs(proc)

The cluster config (``$PAIRLAB_HOME/cluster.json``, every key optional)::

    {"partition": "gpu", "gpus_per_job": 1, "cpus_per_job": 4, "time_min": 240, "mem_gb": 16,
     "array_parallelism": 32, "sbatch": {"account": "lab", "qos": "normal"}}

each overridable by ``PAIRLAB_SLURM_PARTITION``, ``..._GPUS_PER_JOB``, ``..._CPUS_PER_JOB``, ``..._TIME_MIN``,
``..._MEM_GB``, ``..._ARRAY_PARALLELISM`` and ``PAIRLAB_SLURM_SBATCH`` (a JSON object of extra sbatch options).

Job states: submitit reads them with ``sacct``, which needs SLURM accounting (slurmdbd); many clusters and the
test cluster have none (sacct: "accounting storage is disabled"). So states come from ``squeue -r`` (every
pending, running, requeued or suspended job and array task), then ``scontrol show job`` for jobs that just ended
(kept for MinJobAge, 300 s by default). A job neither knows is gone: it ended, and the run's own status.json
(written by the worker: done / stopped / failed) says how; one that is not final there died (failed, resumable).
That is as reliable as sacct for what the queue needs (alive or not), because squeue lists every job that can still
run; a failing squeue call raises instead of reading as "gone".

Preemption, a time limit and ``scontrol requeue``: jobs are submitted with ``--requeue``. SLURM's SIGTERM (cancel,
requeue, preemption) reaches the worker, which saves a checkpoint and ends 'stopped'; submitit's time-limit signal
(USR2, ``signal_delay_s`` before the limit) calls ``WorkerCall.checkpoint``: the worker saves and stops, and
submitit requeues the job. A requeued job runs the worker again, which resumes from the newest checkpoint.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .. import workspace
from ..errors import UserError

CONFIG_FILE = "cluster.json"
REPO_ROOT = Path(__file__).resolve().parents[2]
ACTIVE = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING", "REQUEUE_HOLD",
          "REQUEUE_FED", "STAGE_OUT", "SIGNALING", "STOPPED", "RESV_DEL_HOLD", "SPECIAL_EXIT")
GONE = "GONE"
# key: (kind, minimum, what it is)
KEYS = {"partition": (str, None, "a partition name"), "gpus_per_job": (int, 0, "a whole number"),
        "cpus_per_job": (int, 1, "a whole number"), "time_min": (int, 1, "whole minutes"),
        "mem_gb": (float, 0.001, "a number of GiB"), "array_parallelism": (int, 1, "a whole number"),
        "sbatch": (dict, None, "an object of sbatch options")}
DEFAULTS = {"partition": None, "gpus_per_job": 0, "cpus_per_job": 1, "time_min": 240, "mem_gb": None,
            "array_parallelism": 64, "sbatch": {}}


def config_path(home=None) -> Path:
    return Path(home if home is not None else workspace.home()) / CONFIG_FILE


def _check(key: str, value, where: str):
    kind, minimum, what = KEYS[key]
    if value is None and key in ("partition", "mem_gb"):
        return None
    if kind is str:
        if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
            raise UserError(f"{where}: {key} must be {what} without spaces, got {value!r}.")
        return value.strip()
    if kind is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) and k.strip() for k in value):
            raise UserError(f"{where}: {key} must be {what}, e.g. {{\"account\": \"lab\"}}.")
        return dict(value)
    if isinstance(value, str):
        try:
            value = kind(value.strip())
        except ValueError:
            raise UserError(f"{where}: {key} must be {what}, got {value!r}.") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise UserError(f"{where}: {key} must be {what}, got {value!r}.")
    if value < minimum:
        raise UserError(f"{where}: {key} must be at least {minimum:g}, got {value!r}.")
    return kind(value)


def cluster_config(home=None) -> dict | None:
    """The validated cluster config (file, then PAIRLAB_SLURM_* on top), or None when neither exists.
    A bad file or value is one sentence (UserError)."""
    path = config_path(home)
    found, cfg = False, dict(DEFAULTS)
    if path.exists():
        found = True
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"The cluster config {path} is not valid JSON ({str(exc).splitlines()[0]}).") from None
        if not isinstance(data, dict):
            raise UserError(f"The cluster config {path} must be a JSON object such as {{\"partition\": \"gpu\"}}.")
        unknown = sorted(set(data) - set(KEYS))
        if unknown:
            raise UserError(f"The cluster config {path} has unknown key(s) {', '.join(unknown)}; known are "
                            f"{', '.join(KEYS)}.")
        for key, value in data.items():
            cfg[key] = _check(key, value, f"The cluster config {path}")
    for key in KEYS:
        raw = os.environ.get(f"PAIRLAB_SLURM_{key.upper()}", "").strip()
        if not raw:
            continue
        found = True
        if key == "sbatch":
            try:
                raw = json.loads(raw)
            except ValueError:
                raise UserError("PAIRLAB_SLURM_SBATCH must be a JSON object of sbatch options, e.g. "
                                "{\"account\": \"lab\"}.") from None
        cfg[key] = _check(key, raw, f"PAIRLAB_SLURM_{key.upper()}")
    return cfg if found else None


def require_slurm() -> None:
    for tool in ("sbatch", "squeue", "scontrol", "scancel", "srun"):
        if shutil.which(tool) is None:
            raise UserError(f"SLURM is not available here ({tool} is not on the PATH); run the lab on the cluster's "
                            f"login node or use the local executor.")


def _run(argv: list, timeout: float = 30) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"SLURM did not answer ({argv[0]}: {type(exc).__name__}).") from None


# ----- what runs inside the job -----------------------------------------------------------------------------
class WorkerCall:
    """The callable submitit pickles: runs the worker on the run folder and waits; ``checkpoint`` (submitit's
    time-limit / preemption hook) makes the worker save and stop, then asks submitit to requeue this same call."""

    def __init__(self, run_dir, python: str | None = None):
        self.run_dir = str(run_dir)
        self.python = python or sys.executable
        self._pid = None
        self._rc = None

    def __getstate__(self):
        return {"run_dir": self.run_dir, "python": self.python}

    def __setstate__(self, state):
        self.__dict__.update(state, _pid=None, _rc=None)

    def _poll(self):
        if self._rc is None and self._pid:
            try:
                pid, status = os.waitpid(self._pid, os.WNOHANG)
            except ChildProcessError:
                self._rc = 0
                return self._rc
            if pid:
                self._rc = os.waitstatus_to_exitcode(status)
        return self._rc

    def __call__(self):
        from .run import Run

        env = dict(os.environ, PYTHONUNBUFFERED="1", PAIRLAB_SLOT=f"slurm {os.environ.get('SLURM_JOB_ID', '?')}")
        env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        run = Run(self.run_dir)
        with run.open_log() as log:
            child = subprocess.Popen([self.python, "-m", "pairlab.train.worker", self.run_dir], cwd=str(REPO_ROOT),
                                     env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self._pid, self._rc = child.pid, None
        child.returncode = 0  # we reap it ourselves (os.waitpid), also from the signal handler
        while self._poll() is None:
            time.sleep(0.3)
        if self._rc not in (0, -signal.SIGTERM):
            raise RuntimeError(f"the worker exited with status {self._rc}; see {Path(self.run_dir) / 'log.txt'}")
        return Run(self.run_dir).state()

    def checkpoint(self, *args, **kwargs):
        """Time limit or preemption ahead: the worker saves a checkpoint and stops; submitit requeues us."""
        import submitit

        if self._pid and self._poll() is None:
            try:
                os.kill(self._pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.time() + 60
            while self._poll() is None and time.time() < deadline:
                time.sleep(0.2)
        return submitit.helpers.DelayedSubmission(WorkerCall(self.run_dir, self.python))


# ----- the executor --------------------------------------------------------------------------------------------
class SlurmExecutor:
    name = "slurm"

    def __init__(self, config: dict | None = None, folder=None):
        self.config = dict(DEFAULTS, **(config or {}))
        self.folder = Path(folder) if folder is not None else workspace.sub("runs") / ".slurm"

    def _executor(self, n: int):
        import submitit

        require_slurm()
        cfg = self.config
        ex = submitit.SlurmExecutor(folder=str(self.folder / "%j"), python=sys.executable)
        extra = {"requeue": True}
        extra.update(cfg.get("sbatch") or {})
        params = dict(job_name="pairlab", time=int(cfg["time_min"]), cpus_per_task=int(cfg["cpus_per_job"]),
                      array_parallelism=int(cfg["array_parallelism"]), additional_parameters=extra,
                      setup=[f"export PYTHONPATH={REPO_ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"],
                      signal_delay_s=max(30, min(120, int(cfg["time_min"]) * 60 // 10)))
        if cfg.get("partition"):
            params["partition"] = cfg["partition"]
        if cfg.get("gpus_per_job"):
            params["gpus_per_node"] = int(cfg["gpus_per_job"])
        if cfg.get("mem_gb"):
            params["mem"] = f"{int(float(cfg['mem_gb']) * 1024)}MB"
        try:
            ex.update_parameters(**params)
        except ValueError as exc:
            raise UserError(f"The cluster config has an option submitit does not know ({str(exc).splitlines()[0]}).")
        return ex

    def submit(self, run_dirs) -> list[dict]:
        """Submit the runs: one job, or one job array for several. Returns one proc record per run."""
        import submitit

        run_dirs = [Path(d) for d in run_dirs]
        if not run_dirs:
            return []
        ex = self._executor(len(run_dirs))
        try:
            if len(run_dirs) == 1:
                jobs = [ex.submit(WorkerCall(run_dirs[0]))]
            else:
                with ex.batch():
                    pending = [ex.submit(WorkerCall(d)) for d in run_dirs]
                jobs = list(pending)
        except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError, OSError) as exc:
            text = " ".join(str(exc).split())[:300]
            raise UserError(f"sbatch refused the job(s): {text}.") from None
        now = time.time()
        return [{"executor": "slurm", "job_id": str(j.job_id), "folder": str(self.folder / "%j"), "slot": "slurm",
                 "device": f"slurm {j.job_id}", "started_at": now, "array": len(run_dirs) > 1} for j in jobs]

    @staticmethod
    def states(procs) -> dict[str, str]:
        """job id -> SLURM state (PENDING, RUNNING, COMPLETED, CANCELLED, ...) or GONE, for the given procs."""
        ids = [str(p["job_id"]) for p in procs if p.get("job_id")]
        if not ids:
            return {}
        out = _run(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(sorted({i.split("_")[0] for i in ids}))])
        found = {}
        if out.returncode == 0:
            for line in out.stdout.splitlines():
                jid, _, state = line.strip().partition("|")
                found[jid] = state.strip()
        elif "Invalid job id" not in out.stderr:
            raise UserError(f"squeue failed: {' '.join(out.stderr.split())[:200]}.")
        states = {}
        for jid in ids:
            if jid in found:
                states[jid] = found[jid]
                continue
            shown = _run(["scontrol", "-o", "show", "job", jid])
            state = GONE
            if shown.returncode == 0:
                for field in shown.stdout.split():
                    if field.startswith("JobState="):
                        state = field.split("=", 1)[1]
            states[jid] = state
        return states

    def alive(self, proc: dict) -> bool:
        return is_active(self.states([proc]).get(str(proc["job_id"]), ""))

    @staticmethod
    def cancel(proc: dict, kill: bool = False) -> None:
        """scancel: SIGTERM to the job's processes (the worker saves and stops), SIGKILL after KillWait;
        ``kill``: SIGKILL now. SLURM kills a suspended job outright; its run then ends 'stopped' before it saved
        and resumes from its last periodic checkpoint."""
        argv = ["scancel"] + (["--signal=KILL", "--full"] if kill else []) + [str(proc["job_id"])]
        _run(argv)

    @staticmethod
    def requeue(proc: dict) -> None:
        _run(["scontrol", "requeue", str(proc["job_id"])])

    @staticmethod
    def logs(proc: dict, chars: int = 4000) -> str:
        """The tail of submitit's stdout and stderr of the job (the worker's own lines go to the run's log.txt)."""
        import submitit

        job = submitit.SlurmJob(folder=proc["folder"], job_id=str(proc["job_id"]))
        text = ""
        for name, path in (("stdout", job.paths.stdout), ("stderr", job.paths.stderr)):
            try:
                text += f"--- {name} ({path.name})\n" + path.read_text(errors="replace")[-chars:] + "\n"
            except OSError:
                continue
        return text


def is_active(state: str) -> bool:
    return (state or "").split()[0].rstrip("+") in ACTIVE if state else False
