"""The background job queue: training runs in their own processes, on GPU or CPU slots, surviving app restarts.

State lives on disk only, one folder per run under ``$PAIRLAB_HOME/runs/<id>/``:

    job.json      what to train (composition, model, preset, overrides, seed, the resolved config), when it was
                  queued and on which device it last ran; written by the queue, read by the worker
    proc.json     the process running it (pid, its start time from /proc, slot, stop request); present only
                  while the queue believes a process is alive
    status.json   queued / running / done / failed / stopped, progress, ETA, one-sentence error (the training
                  loop writes it while it runs; the queue writes it before a start and after a process ended)
    ...           config.json, losses.jsonl, samples/, checkpoints/, log.txt from the training loop

Every file of a run folder is read and written through ``pairlab.train.run.Run``; this module only schedules.

One OS process per run, ``python -m pairlab.train.worker RUN_DIR``, in its own session (so stopping it ends the
whole process tree). ``Queue.tick()`` is the scheduler: it notices processes that ended, escalates stops that
took too long, and starts queued runs when a slot is free. It is idempotent and cheap, so the app calls it from a
background thread and from the Training tab's timer, and the CLI after every operation. Every mutation holds an
exclusive lock on ``runs/.queue.lock`` (fcntl), so the app, several browser tabs and the CLI can act at once.

Slots: each GPU hosts ``PAIRLAB_GPU_SLOTS`` concurrent runs (default 2, pinned with CUDA_VISIBLE_DEVICES); the CPU
hosts ``PAIRLAB_CPU_SLOTS`` (default: on a machine without GPU one 1-thread slot per core, at most one per
2 GiB of memory; with a GPU 1, as it feeds the GPU runs). The cores are shared evenly between a kind's slots
(``PAIRLAB_WORKER_THREADS``). A run goes where its config's device points (``auto``: the device
``pick_device("auto")`` picks here).

Executors (``executor.py``: submit, states / alive, cancel, logs): ``LocalExecutor`` starts a worker on a free slot;
a run queued with ``executor="slurm"`` is not given a local slot: the next tick submits it, with every other queued
SLURM run, as one SLURM job or job array (``slurm.SlurmExecutor``); its proc.json holds the job id, and tick /
reconcile / stop / delete / logs go through ``executor_of(proc)`` for either.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .. import workspace
from ..errors import UserError
from .executor import LocalExecutor, check_executor
from .jobs import launch_plan, parse_seeds, prepare_job
from .run import Run
from .run import list_runs as _list_runs

DIED = "The run's process ended unexpectedly; resume continues from the last checkpoint."
FINAL = ("done", "failed", "stopped")
REPO_ROOT = Path(__file__).resolve().parents[2]
_HAS_PROC = Path("/proc/self/stat").exists()


# ----- processes ------------------------------------------------------------------------------------------
def proc_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, None if it is gone (``workspace.process_start_time``).

    Together with the pid it names one process: a pid the kernel recycled has another start time.
    """
    return workspace.process_start_time(pid)


def register_foreground(run_dir: Path) -> None:
    """Record this process in ``proc.json`` of a run that `pairlab train` trains in the foreground, as the queue
    does for its workers; so a foreground run killed hard is settled failed and resumable by `runs list`,
    the app's reconcile and `runs resume`. Refused when another live process trains the run."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with workspace.exclusive(run_dir.parent / ".queue.lock"):
        run = Run(run_dir)
        proc = run.proc()
        if proc and proc.get("pid") and int(proc["pid"]) != os.getpid() and workspace.owner_alive(
                int(proc["pid"]), proc.get("start")):
            raise UserError(f"Run {run_dir.name} is already training in another process (pid {proc['pid']}); "
                            f"stop it first.")
        pid = os.getpid()
        run.write_proc({
            "pid": pid, "start": proc_start_time(pid), "slot": "foreground", "device": "", "foreground": True,
            "started_at": time.time()})


def unregister_foreground(run_dir: Path) -> None:
    run_dir = Path(run_dir)
    with workspace.exclusive(run_dir.parent / ".queue.lock"):
        run = Run(run_dir)
        proc = run.proc()
        if proc and proc.get("pid") == os.getpid():
            run.remove_proc()


def _pending(state: str) -> bool:
    return (state or "").split()[0].rstrip("+") in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"{name} must be a whole number, got {raw!r}.")
    if value < 0:
        raise UserError(f"{name} must not be negative, got {value}.")
    return value


# ----- slots ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Slot:
    id: str            # e.g. "cpu/0", "cuda:1/0"
    kind: str          # cpu | cuda | mps
    device: str        # cpu, cuda:N, mps: where a run in this slot trains (physical GPU index)
    env: dict = field(default_factory=dict, hash=False, compare=False)


def detect_slots(cpu_slots: int | None = None, gpu_slots: int | None = None) -> list[Slot]:
    """GPU slots (gpu_slots per CUDA device, or on MPS), then CPU slots.

    cpu_slots None: ``PAIRLAB_CPU_SLOTS``, else from the machine: with a GPU 1 (the CPU feeds the GPU runs);
    without, one slot per usable core, at most one per 2 GiB of memory, so each run gets 1 thread. Why
    (``bench sweep``): a small run (64x64 ResNet-9, batch 1) keeps a core only partly busy, and on 2 cores two
    1-thread runs side by side give more iterations/s than one 2-thread run. Each slot's
    ``PAIRLAB_WORKER_THREADS`` shares the cores evenly among its kind's slots."""
    import torch

    gpu_slots = _env_int("PAIRLAB_GPU_SLOTS", 2) if gpu_slots is None else int(gpu_slots)
    slots = []
    n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for g in range(n_gpu):
        slots += [Slot(f"cuda:{g}/{k}", "cuda", f"cuda:{g}", {"CUDA_VISIBLE_DEVICES": str(g)}) for k in range(gpu_slots)]
    if not n_gpu and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        slots += [Slot(f"mps/{k}", "mps", "mps") for k in range(gpu_slots)]
    try:
        cpus = len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    if cpu_slots is None:
        default = 1
        if not slots:  # no GPU: one 1-thread slot per core, as memory allows
            try:
                memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            except (AttributeError, ValueError, OSError):
                memory = 0
            default = max(1, min(cpus, memory // (2 * 1024**3) if memory > 0 else cpus))
        cpu_slots = _env_int("PAIRLAB_CPU_SLOTS", default)
    # A CPU slot hides the GPUs, so that device=auto trains on the CPU there.
    slots += [Slot(f"cpu/{k}", "cpu", "cpu", {"CUDA_VISIBLE_DEVICES": ""}) for k in range(int(cpu_slots))]
    per_kind = {}
    for s in slots:
        per_kind[s.kind] = per_kind.get(s.kind, 0) + 1
    # Concurrent runs of one kind share the cores instead of oversubscribing them.
    return [Slot(s.id, s.kind, s.device, dict(s.env, PAIRLAB_WORKER_THREADS=str(max(1, cpus // per_kind[s.kind]))))
            for s in slots]


def default_kind(slots: list[Slot]) -> str:
    """The kind of slot ``device=auto`` uses: the one ``pick_device('auto')`` would pick, if it has slots."""
    from .device import pick_device

    kind = pick_device("auto").type
    kinds = {s.kind for s in slots}
    return kind if kind in kinds else ("cpu" if "cpu" in kinds else kind)


# ----- the queue ------------------------------------------------------------------------------------------
class Queue:
    """The persistent run queue of one workspace (``runs/`` by default). Cheap to create; state is on disk."""

    def __init__(self, root=None, cpu_slots: int | None = None, gpu_slots: int | None = None,
                 grace_s: float | None = None, python: str | None = None):
        self.root = Path(root) if root is not None else workspace.sub("runs")
        self.root.mkdir(parents=True, exist_ok=True)
        self.slots = detect_slots(cpu_slots, gpu_slots)
        self.grace_s = float(os.environ.get("PAIRLAB_STOP_GRACE", "60")) if grace_s is None else float(grace_s)
        self.python = python or sys.executable
        self._local = LocalExecutor(self.python)
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._scheduler: threading.Thread | None = None
        self._scheduler_stop = threading.Event()
        self._defer = 0          # > 0: hold SLURM submissions (a sweep or an experiment becomes one job array)
        self._slurm = None
        self._slurm_states: dict[str, str] = {}

    # ----- locking --------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        """Exclusive across threads and processes (re-entrant within one thread)."""
        with self._thread_lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            fd = os.open(self.root / ".queue.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._depth = 1
                try:
                    yield
                finally:
                    self._depth = 0
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    # ----- paths and reading ----------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        if not run_id or not isinstance(run_id, str):
            raise UserError("Choose a run first.")
        folder = self.root / workspace.safe_name(run_id)
        if folder.name != run_id or not folder.is_dir():
            raise UserError(f"There is no run named '{run_id}'.")
        return folder

    def _run_ids(self) -> list[str]:
        if not self.root.exists():
            return []
        return [p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]

    @staticmethod
    def _job(folder: Path) -> dict | None:
        return Run(folder).job()

    @staticmethod
    def _proc(folder: Path) -> dict | None:
        return Run(folder).proc()

    @staticmethod
    def _status(folder: Path) -> dict:
        return Run(folder).status()

    def _wait_dead(self, proc: dict, timeout: float) -> bool:
        deadline = time.time() + timeout
        while self._alive(proc):
            if time.time() > deadline:
                return False
            time.sleep(0.05)
        return True

    def executor_of(self, proc: dict | None):
        """The executor that runs what ``proc`` (a run's proc.json) records: the local slots or SLURM."""
        if proc and proc.get("executor") == "slurm":
            if self._slurm is None:
                self._slurm = self.slurm()
            return self._slurm
        return self._local

    def _alive(self, proc: dict | None) -> bool:
        """Is the process recorded in proc.json still the one we started, and running? (a SLURM job: active)"""
        if not proc:
            return False
        ex = self.executor_of(proc)
        if ex is self._local:
            return ex.alive(proc)
        states = ex.states([proc])
        self._slurm_states.update(states)
        from .slurm import is_active

        return is_active(states.get(str(proc["job_id"]), ""))

    # ----- submitting -----------------------------------------------------------------------------------
    def _prepare(self, composition, model: str, preset: str, overrides=None, seed: int | None = None,
                 name: str | None = None) -> dict:
        """Validate everything and return the job (nothing is written): ``jobs.prepare_job``, the same checks as
        the foreground ``pairlab train``."""
        return prepare_job(composition, model, preset, overrides, seed, name)

    def _unique_id(self, job: dict, taken: set) -> str:
        base = job["id"]
        if base not in taken and not (self.root / base).exists():
            return base
        if job["named"]:
            raise UserError(f"A run named '{base}' already exists; choose another name or delete it first.")
        k = 2
        while f"{base}-{k}" in taken or (self.root / f"{base}-{k}").exists():
            k += 1
        return f"{base}-{k}"

    def _write_job(self, job: dict, executor: str = "local") -> str:
        now = time.time()
        job = dict(job, created=now, queued_at=now, device=None, attempts=0, executor=executor)
        final = self.root / job["id"]
        with workspace.atomic_folder(final) as tmp:
            run = Run(tmp)
            run.write_job(job)
            run.write_status({
                "state": "queued", "progress": 0.0, "iteration": 0, "total": job["config"]["max_iters"] or 0,
                "eta_s": None, "error": "", "updated": now})
            run.write_log(f"{time.strftime('%Y-%m-%d %H:%M:%S')} queued {job['model']} on "
                          f"{job['composition_name']} (preset {job['preset']}, seed {job['seed']})\n")
        return job["id"]

    def submit(self, composition, model: str = "cyclegan", preset: str = "cpu-demo-64", overrides=None,
               seed: int | None = 0, name: str | None = None, executor: str = "local") -> str:
        """Queue one run; returns its id. Everything is validated first: on bad input nothing is queued."""
        executor = self._check_executor(executor)
        job = self._prepare(composition, model, preset, overrides, seed, name)
        with self._locked():
            job["id"] = self._unique_id(job, set())
            run_id = self._write_job(job, executor)
        self.tick()
        return run_id

    def sweep(self, compositions, model: str = "cyclegan", preset: str = "cpu-demo-64", seeds=(0,),
              overrides=None, executor: str = "local") -> list[str]:
        """One run per composition x seed, queued in one action (all validated before any is queued); on SLURM one
        job array."""
        executor = self._check_executor(executor)
        if isinstance(compositions, (str, os.PathLike)):
            compositions = [compositions]
        compositions = [c for c in (compositions or []) if str(c).strip()]
        if not compositions:
            raise UserError("Choose at least one composition for the sweep.")
        seeds = parse_seeds(seeds)
        jobs = [self._prepare(c, model, preset, overrides, s) for c in compositions for s in seeds]
        ids = []
        with self._locked():
            taken: set = set()
            for job in jobs:
                job["id"] = self._unique_id(job, taken)
                taken.add(job["id"])
            for job in jobs:
                ids.append(self._write_job(job, executor))
        self.tick()
        return ids

    def launch(self, compositions, model: str = "cyclegan", preset: str = "cpu-demo-64", overrides=None,
               seeds="0", name: str | None = None, executor: str = "local") -> list[str]:
        """A run, or a sweep over compositions x seeds (``jobs.launch_plan``: a name only for a single run)."""
        targets, seed_list = launch_plan(compositions, seeds, name)
        if (name or "").strip():
            return [self.submit(targets[0], model, preset, overrides, seed_list[0], name=name.strip(),
                                executor=executor)]
        return self.sweep(targets, model, preset, seed_list, overrides, executor=executor)

    @staticmethod
    def _check_executor(executor) -> str:
        return check_executor(executor)

    @contextlib.contextmanager
    def deferred(self):
        """Hold SLURM submissions while the block queues runs; on leaving, one tick submits them as one array."""
        self._defer += 1
        try:
            yield self
        finally:
            self._defer -= 1
        if not self._defer:
            self.tick()

    def slurm(self):
        """The SLURM executor of this workspace (its cluster config read now; one sentence when it is bad)."""
        from .slurm import SlurmExecutor, cluster_config

        return SlurmExecutor(cluster_config(self.root.parent) or {}, self.root / ".slurm")

    # ----- the scheduler --------------------------------------------------------------------------------
    def tick(self) -> dict:
        """Notice ended processes, escalate slow stops, start queued runs on free slots. Idempotent and cheap.

        Returns {"started": [...], "ended": [...], "killed": [...]}.
        """
        out = {"started": [], "ended": [], "killed": []}
        with self._locked():
            self._local.reap_children()  # no zombies
            busy: set[str] = set()
            queued = []
            slurm_procs = []
            for run_id in self._run_ids():
                folder = self.root / run_id
                job = self._job(folder)
                if job is None:
                    # a run from `pairlab train` in the foreground: not ours to schedule, but its process is
                    # registered (proc.json), so one that was killed is settled as failed and resumable
                    proc = self._proc(folder)
                    if proc is not None and not self._alive(proc):
                        self._ended(folder, proc)
                        out["ended"].append(run_id)
                    continue
                proc = self._proc(folder)
                if proc is not None and proc.get("executor") == "slurm":
                    slurm_procs.append((run_id, folder, proc))
                    continue
                if proc is not None:
                    if self._alive(proc):
                        busy.add(proc.get("slot"))
                        stop_at = proc.get("stop_requested_at")
                        if stop_at and time.time() - stop_at > self.grace_s and not proc.get("killed_at"):
                            self._local.cancel(proc, kill=True)
                            Run(folder).write_proc(dict(proc, killed_at=time.time()))
                            out["killed"].append(run_id)
                        continue
                    self._ended(folder, proc)
                    out["ended"].append(run_id)
                if self._status(folder).get("state") == "queued":
                    queued.append((job.get("queued_at") or 0, run_id, job))
            self._tick_slurm(slurm_procs, out)
            on_slurm = [(t, r, j) for t, r, j in queued if j.get("executor") == "slurm"]
            queued = [(t, r, j) for t, r, j in queued if j.get("executor") != "slurm"]
            if on_slurm and not self._defer:
                self._submit_slurm(sorted(on_slurm, key=lambda t: (t[0], t[1])), out)
            kinds = default_kind(self.slots)
            for _, run_id, job in sorted(queued, key=lambda t: (t[0], t[1])):
                slot = self._free_slot(job, busy, kinds)
                if slot is None:
                    continue
                self._start(self.root / run_id, job, slot)
                busy.add(slot.id)
                out["started"].append(run_id)
        return out

    # ----- SLURM ----------------------------------------------------------------------------------------
    # A requeued job is PENDING again while its run still says 'running' (killed before it could write 'stopped')
    # or 'stopped' / 'failed' (it saved first): either way it resumes from the last checkpoint when it runs again.
    def _submit_slurm(self, queued: list, out: dict) -> None:
        """Every queued SLURM run in one submission: one job, or one job array."""
        folders = [self.root / run_id for _, run_id, _ in queued]
        try:
            procs = self.slurm().submit(folders)
        except UserError as exc:
            for folder in folders:
                Run(folder).update_status(state="failed", error=str(exc), eta_s=None)
                Run(folder).log(f"queue: {exc}")
            return
        for (_, run_id, job), folder, proc in zip(queued, folders, procs):
            run = Run(folder)
            run.write_proc(proc)
            run.write_job(dict(job, device=proc["device"], attempts=int(job.get("attempts") or 0) + 1,
                               started_at=time.time()))
            run.update_status(message=f"submitted as SLURM job {proc['job_id']}", eta_s=None)
            run.log(f"queue: submitted as SLURM job {proc['job_id']}")
            self._slurm_states[proc["job_id"]] = "PENDING"
            out["started"].append(run_id)

    def _tick_slurm(self, procs: list, out: dict) -> None:
        """Read every recorded SLURM job's state at once; settle ended ones, escalate slow stops."""
        from .slurm import is_active

        if not procs:
            return
        slurm = self.executor_of(procs[0][2])
        try:
            states = slurm.states([p for _, _, p in procs])
        except UserError as exc:  # the controller does not answer: nothing is settled on a guess
            print(f"pairlab queue: {exc}", file=sys.stderr, flush=True)
            return
        self._slurm_states.update(states)
        for run_id, folder, proc in procs:
            state = states.get(str(proc["job_id"]), "")
            run = Run(folder)
            if is_active(state):
                stop_at = proc.get("stop_requested_at")
                if stop_at and time.time() - stop_at > self.grace_s and not proc.get("killed_at"):
                    slurm.cancel(proc, kill=True)
                    run.write_proc(dict(proc, killed_at=time.time()))
                    out["killed"].append(run_id)
                elif not stop_at and (run.state() in FINAL and run.state() != "done"
                                      or run.state() == "running" and _pending(state)):
                    # requeued by SLURM (preemption, time limit, scontrol requeue): it resumes when it runs again
                    run.update_status(state="queued", error="", eta_s=None,
                                      message=f"requeued by SLURM (job {proc['job_id']}); resumes from the last checkpoint")
                    run.log(f"queue: SLURM job {proc['job_id']} was requeued")
                continue
            self._ended(folder, proc, slurm_state=state)
            out["ended"].append(run_id)

    def _free_slot(self, job: dict, busy: set, auto_kind: str) -> Slot | None:
        request = job.get("device_request") or job.get("config", {}).get("device") or "auto"
        for slot in self.slots:
            if slot.id in busy:
                continue
            if request == "auto" and slot.kind == auto_kind:
                return slot
            if request in ("cpu", "mps", "cuda") and slot.kind == request:
                return slot
            if request.startswith("cuda:") and slot.device == request:
                return slot
        return None

    def _start(self, folder: Path, job: dict, slot: Slot) -> None:
        run = Run(folder)
        run.update_status(state="running", error="", message="starting", eta_s=None)
        env = dict(os.environ)
        env.update(slot.env)
        env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PAIRLAB_SLOT"] = slot.id
        env["PYTHONUNBUFFERED"] = "1"
        run.log(f"queue: starting on {slot.device} (slot {slot.id})")
        with run.open_log() as log:
            run.write_proc(self._local.submit(folder, slot, env, log, cwd=str(REPO_ROOT)))
        job = dict(job, device=slot.device, attempts=int(job.get("attempts") or 0) + 1, started_at=time.time())
        run.write_job(job)

    def _ended(self, folder: Path, proc: dict, slurm_state: str = "") -> None:
        """A recorded process is gone: settle the run's state and forget the process."""
        run = Run(folder)
        status = run.status()
        state = status.get("state")
        if proc.get("executor") == "slurm":
            shown = slurm_state if slurm_state and slurm_state != "GONE" else "ended"
            run.write_job(dict(run.job() or {}, last_job={"job_id": proc["job_id"], "state": shown,
                                                           "ended_at": time.time()}))
            run.log(f"queue: SLURM job {proc['job_id']} {shown}")
        if state not in FINAL and proc.get("executor") == "slurm" and not proc.get("stop_requested_at"):
            sentence = (f"SLURM job {proc['job_id']} ended ({slurm_state or 'gone'}) before the run finished; "
                        f"resume continues from the last checkpoint.")
            run.update_status(state="failed", error=sentence, eta_s=None)
            run.log(f"queue: {sentence}")
        elif state not in FINAL:
            if proc.get("stop_requested_at"):
                sentence = "Stopped before it saved; resume continues from the last checkpoint."
                if proc.get("killed_at"):
                    sentence = (f"The run did not stop within {self.grace_s:g} s and was killed; "
                                f"resume continues from the last checkpoint.")
                run.update_status(state="stopped", error="", message=sentence, eta_s=None)
                run.log(f"queue: {sentence}")
            else:
                run.update_status(state="failed", error=DIED, eta_s=None)
                run.log(f"queue: {DIED}")
        run.remove_proc()

    def reconcile(self) -> dict:
        """On start: compare run states with the processes that really exist (a dead run's process -> failed,
        resumable; a live one is kept), then schedule. Returns what tick() returns."""
        with self._locked():
            for run_id in self._run_ids():
                folder = self.root / run_id
                job = self._job(folder)
                if job is None:
                    continue
                proc = self._proc(folder)
                if proc is None and self._status(folder).get("state") == "running":
                    # Running without a recorded process (e.g. the app died while starting it).
                    self._ended(folder, {})
            return self.tick()

    # ----- operations -----------------------------------------------------------------------------------
    def stop(self, run_id: str, wait: float = 0.0) -> dict:
        """Ask a run to stop: SIGTERM to its process group; the loop saves a checkpoint and ends 'stopped'.

        After the grace period tick() kills the group (SIGKILL). A queued run that has not started is marked
        'stopped' at once. With wait > 0, waits up to that many seconds for the process to end.
        """
        with self._locked():
            folder = self.run_dir(run_id)
            run = Run(folder)
            job = self._job(folder)
            self.tick()  # settle a process that just ended
            proc = self._proc(folder)
            state = self._status(folder).get("state")
            if state in FINAL:  # its process, if any, is only exiting
                raise UserError(f"Run {run_id} is not running (it is {state}).")
            if job is None:  # `pairlab train` in the foreground: stopped like Ctrl+C when its process is registered
                if not (proc and proc.get("foreground") and self._alive(proc)):
                    raise UserError(f"Run {run_id} was started from the command line; stop it there with Ctrl+C.")
                if not proc.get("stop_requested_at"):
                    run.write_proc(dict(proc, stop_requested_at=time.time()))
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(proc["pid"]), signal.SIGINT)  # it saves a checkpoint and ends 'stopped'
            elif self._alive(proc):
                if not proc.get("stop_requested_at"):
                    proc = dict(proc, stop_requested_at=time.time())
                    run.write_proc(proc)
                # SIGTERM to the process group / the job: the worker saves a checkpoint and stops
                self.executor_of(proc).cancel(proc)
            elif state == "queued":
                run.update_status(state="stopped", message="Stopped before it started.", eta_s=None)
        if wait > 0:
            self.wait(run_id, FINAL, timeout=wait)
        return self.info(run_id)

    def resume(self, run_id: str, executor: str | None = None) -> dict:
        """Queue a stopped or failed run again; it continues from its newest readable checkpoint (on the executor
        it ran on, or ``executor``)."""
        return self._requeue(run_id, ("stopped", "failed"), "resume", executor)

    def retry(self, run_id: str, executor: str | None = None) -> dict:
        """Queue a failed run again, resuming from its last good checkpoint."""
        return self._requeue(run_id, ("failed",), "retry", executor)

    def _requeue(self, run_id: str, allowed: tuple, verb: str, executor: str | None = None) -> dict:
        if executor is not None:
            executor = self._check_executor(executor)
        with self._locked():
            folder = self.run_dir(run_id)
            run = Run(folder)
            proc = self._proc(folder)
            if self._alive(proc) and (proc.get("stop_requested_at") or self._status(folder).get("state") in FINAL):
                self._wait_dead(proc, 15)  # it is saving its last checkpoint and exiting
            if self._alive(proc):
                raise UserError(f"Run {run_id} is still running; stop it before you {verb} it.")
            self.tick()  # settle a process that just ended
            state = self._status(folder).get("state")
            if state not in allowed:
                what = " or ".join(allowed)
                raise UserError(f"Only a {what} run can be {'resumed' if verb == 'resume' else 'retried'}; "
                                f"run {run_id} is {state}.")
            job = self._job(folder) or self._adopt(folder)
            job = dict(job, queued_at=time.time())
            if executor is not None:
                job["executor"] = executor
            run.write_job(job)
            run.update_status(state="queued", error="", message=f"queued ({verb})", eta_s=None)
            run.log(f"queue: {verb} requested")
        self.tick()
        return self.info(run_id)

    def _adopt(self, folder: Path) -> dict:
        """A job.json for a run that `pairlab train` started in the foreground, so the queue can resume it."""
        cfg = Run(folder).config()
        run = Run(folder).info()
        comp = run.get("composition")
        if not comp:
            raise UserError(f"Run {folder.name} does not say which composition it trained on.")
        return {"id": folder.name, "composition": comp, "composition_name": Path(comp).name, "model": cfg.model,
                "preset": "", "overrides": [], "seed": cfg.seed, "config": cfg.to_dict(),
                "device_request": cfg.device, "named": True, "created": run.get("created") or time.time(),
                "queued_at": time.time(), "device": None, "attempts": 0}

    def delete(self, run_id: str) -> None:
        """Kill the run's processes if any, then remove its folder."""
        with self._locked():
            folder = self.run_dir(run_id)
            proc = self._proc(folder)
            if self._alive(proc) and proc.get("foreground"):
                raise UserError(f"Run {run_id} is training in the foreground; stop it first (Ctrl+C there, or "
                                f"runs stop), then delete it.")
            if self._alive(proc):
                self.executor_of(proc).cancel(proc, kill=True)
                self._wait_dead(proc, 15)
            elif self._job(folder) is None and self._status(folder).get("state") == "running":
                status = self._status(folder)
                if time.time() - float(status.get("updated") or 0) < 120:
                    raise UserError(f"Run {run_id} is training in the foreground; stop it there before deleting it.")
            trash = self.root / f".deleted-{run_id}-{uuid.uuid4().hex[:6]}"
            os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def wait(self, run_id: str, states=FINAL, timeout: float = 60.0, poll: float = 0.2) -> dict:
        """Tick until the run's state is one of ``states`` (returns its info) or the timeout passes."""
        states = (states,) if isinstance(states, str) else tuple(states)
        deadline = time.time() + timeout
        while True:
            self.tick()
            info = self.info(run_id)
            if info["state"] in states:
                return info
            if time.time() > deadline:
                raise TimeoutError(f"run {run_id} is {info['state']} after {timeout} s, not {'/'.join(states)}")
            time.sleep(poll)

    # ----- reading --------------------------------------------------------------------------------------
    def info(self, run_id: str) -> dict:
        return self._info(self.run_dir(run_id))

    def _info(self, folder: Path) -> dict:
        return self._where(Run(folder))

    def _where(self, run: Run) -> dict:
        """describe() plus where the run executes: executor, job_id, job_state and 'where' (e.g. 'cpu/0',
        'slurm 12_3 RUNNING', 'slurm 12_3 COMPLETED')."""
        info = run.describe()
        job, proc = run.job() or {}, run.proc() or {}
        executor = job.get("executor") or "local"
        info["executor"] = executor
        info["job_id"], info["job_state"] = None, None
        if proc.get("executor") == "slurm":
            info["job_id"] = proc["job_id"]
            info["job_state"] = self._slurm_states.get(str(proc["job_id"])) or "?"
        elif executor == "slurm" and job.get("last_job"):
            info["job_id"], info["job_state"] = job["last_job"]["job_id"], job["last_job"]["state"]
        if info["job_id"]:
            info["where"] = f"slurm {info['job_id']} {info['job_state']}"
        elif executor == "slurm":
            info["where"] = "slurm (not submitted yet)"
        else:
            info["where"] = proc.get("slot") or info.get("device") or ""
        return info

    def logs(self, run_id: str, lines: int = 20) -> str:
        """The run's log tail, and for a SLURM run the tail of its job's stdout / stderr (submitit's files)."""
        folder = self.run_dir(run_id)
        run = Run(folder)
        text = run.log_tail(lines)
        proc = run.proc() or {}
        extra = self.executor_of(proc).logs(proc) if proc else ""
        return text + ("\n" + extra if extra else "")

    def list_runs(self) -> list[dict]:
        """Every run, newest first: id, composition, model, preset, seed, state, progress, iteration/total, ETA,
        device, error."""
        out = []
        for run in _list_runs(self.root):
            try:
                out.append(self._where(run))
            except OSError:  # deleted meanwhile
                continue
        return out

    def describe_slots(self) -> str:
        counts: dict[str, int] = {}
        for s in self.slots:
            counts[s.device] = counts.get(s.device, 0) + 1
        return ", ".join(f"{n} on {d}" for d, n in counts.items()) or "none"

    # ----- background scheduler -------------------------------------------------------------------------
    def start_scheduler(self, interval: float = 2.0) -> threading.Thread:
        """Call tick() every ``interval`` seconds in a daemon thread (the app does this on start)."""
        if self._scheduler is not None and self._scheduler.is_alive():
            return self._scheduler
        self._scheduler_stop.clear()

        def loop():
            while not self._scheduler_stop.wait(interval):
                try:
                    self.tick()
                except Exception as exc:  # keep scheduling; say what happened
                    print(f"pairlab queue: tick failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

        self._scheduler = threading.Thread(target=loop, name="pairlab-queue", daemon=True)
        self._scheduler.start()
        return self._scheduler

    def stop_scheduler(self) -> None:
        self._scheduler_stop.set()


_QUEUES: dict[str, Queue] = {}
_QUEUES_LOCK = threading.Lock()


def default_queue() -> Queue:
    """The queue of the current workspace (one object per runs folder in this process)."""
    root = str(workspace.sub("runs"))
    with _QUEUES_LOCK:
        q = _QUEUES.get(root)
        if q is None:
            q = _QUEUES[root] = Queue(root)
        return q
