"""A run folder, and the one module that knows its files (torch-free).

    runs/<id>/
        config.json             the resolved TrainConfig (read and written through TrainConfig)
        run.json                what was trained on, with which code (composition, model, preset, versions, device)
        status.json             state (queued/running/done/failed/stopped), progress 0-1, iteration, total, ETA, error
        losses.jsonl            the training losses: one JSON line per logged iteration (was ``metrics.jsonl``)
        scores.json             the evaluation scores per direction (was ``metrics.json``)
        scores_per_image.json   the per-image values behind them (was ``metrics_per_image.json``)
        samples/iter_*.png      sample grids: input | translated | reconstructed (or ground truth)
        checkpoints/*.pt        latest.pt and periodic iter_XXXXXX.pt
        log.txt                 human-readable log
        job.json                the queue's job (what to train, where it last ran); absent for a foreground run
        proc.json               the process training it, while one is believed alive

Folders written before the renames are read as they are: a run with only ``metrics.jsonl`` (or ``metrics.json``)
reads its losses (or scores) from there; the file moves to its new name the next time it is rewritten.

    run = Run(folder)                           # or Run.create(folder, config)
    run.status(); run.update_status(state="running")
    run.losses(); run.scores(); run.latest_sample(); run.log_tail(); run.latest_checkpoint()
    list_runs(root=None, state=None)            # Run objects, newest first
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from .. import workspace
from ..errors import UserError

STATES = ("queued", "running", "done", "failed", "stopped")
FINAL = ("done", "failed", "stopped")

CONFIG = "config.json"
INFO = "run.json"
STATUS = "status.json"
LOSSES, OLD_LOSSES = "losses.jsonl", "metrics.jsonl"
SCORES, OLD_SCORES = "scores.json", "metrics.json"
PER_IMAGE, OLD_PER_IMAGE = "scores_per_image.json", "metrics_per_image.json"
LOG = "log.txt"
JOB = "job.json"
PROC = "proc.json"
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
LATEST = "latest.pt"
PERIODIC = "iter_{:06d}.pt"     # a periodic checkpoint's name by iteration
PERIODIC_GLOB = "iter_*.pt"
_KNOWN = {CONFIG, INFO, STATUS, LOSSES, OLD_LOSSES, SCORES, OLD_SCORES, PER_IMAGE, OLD_PER_IMAGE, LOG, JOB, PROC, SAMPLES,
          CHECKPOINTS}


_read_json = workspace.read_json


def format_eta(seconds) -> str:
    """``12m05s`` / ``1h02m``; empty when unknown."""
    if seconds is None:
        return ""
    seconds = int(max(0, seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def default_status() -> dict:
    return {"state": "queued", "progress": 0.0, "iteration": 0, "total": 0, "eta_s": None, "error": ""}


class Run:
    """One run folder. Cheap to make; every read goes to disk, so it always shows the folder's present state."""

    def __init__(self, folder):
        self.path = Path(folder)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Run) and self.path == other.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def id(self) -> str:
        return self.path.name

    name = id

    # ----- making -------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, folder, config=None, info: dict | None = None, status: dict | None = None) -> "Run":
        """Make the folder (with samples/ and checkpoints/); write the config, run.json and status when given."""
        run = cls(folder)
        run.path.mkdir(parents=True, exist_ok=True)
        run.ensure_folders()
        if config is not None:
            run.write_config(config)
        if info is not None:
            run.write_info(info)
        if status is not None:
            run.write_status(status)
        return run

    def ensure_folders(self) -> None:
        for sub in (SAMPLES, CHECKPOINTS):
            (self.path / sub).mkdir(parents=True, exist_ok=True)

    def exists(self) -> bool:
        return self.path.is_dir()

    def is_run(self) -> bool:
        """A run folder: it has a config.json (trained or installed) or a job.json (queued)."""
        return (self.path / CONFIG).exists() or (self.path / JOB).exists()

    def _file(self, name: str) -> Path:
        return self.path / name

    def cache_path(self, name: str) -> Path:
        """A file another module keeps in the run folder (a cache, e.g. the demo's landmark template), by its name."""
        if not name or "/" in name or name.startswith(".") or name in _KNOWN:
            raise ValueError(f"{name!r} is not a cache file name")
        return self.path / name

    # ----- config -------------------------------------------------------------------------------------------
    def has_config(self) -> bool:
        return (self.path / CONFIG).exists()

    def config(self):
        """The run's TrainConfig (older key names read through TrainConfig)."""
        from .config import TrainConfig

        if not self.has_config():
            raise UserError(f"Run {self.id} has no config.json.")
        return TrainConfig.from_json(self.path / CONFIG)

    def config_dict(self) -> dict | None:
        """config.json as stored (None when missing or unreadable)."""
        return _read_json(self.path / CONFIG)

    def write_config(self, config) -> None:
        data = config if isinstance(config, dict) else config.to_dict()
        workspace.write_json_atomic(self.path / CONFIG, data)

    # ----- run.json -----------------------------------------------------------------------------------------
    def info(self) -> dict:
        """run.json ({} when missing or unreadable)."""
        return _read_json(self.path / INFO) or {}

    def has_info(self) -> bool:
        return (self.path / INFO).exists()

    def write_info(self, info: dict) -> None:
        workspace.write_json_atomic(self.path / INFO, info)

    def composition(self) -> str:
        """The composition path recorded in run.json, or in job.json for a run that has not started ("")."""
        return str(self.info().get("composition") or (self.job() or {}).get("composition") or "")

    # ----- status -------------------------------------------------------------------------------------------
    def status(self) -> dict:
        """status.json, or a 'queued' status when it has none (or it is unreadable)."""
        return _read_json(self.path / STATUS) or default_status()

    def state(self) -> str:
        return self.status().get("state", "queued")

    def write_status(self, status: dict) -> dict:
        """Replace status.json (atomically)."""
        workspace.write_json_atomic(self.path / STATUS, status)
        return status

    def update_status(self, **fields) -> dict:
        """Merge ``fields`` into status.json (atomically) and return the new status."""
        status = self.status()
        status.update(fields, updated=time.time())
        return self.write_status(status)

    # ----- losses (training) --------------------------------------------------------------------------------
    @property
    def losses_path(self) -> Path:
        """losses.jsonl, or the old metrics.jsonl when only it exists."""
        new, old = self.path / LOSSES, self.path / OLD_LOSSES
        return old if old.exists() and not new.exists() else new

    def losses(self) -> list[dict]:
        """One dict per logged iteration; a torn last line (being written) is skipped."""
        out = []
        try:
            lines = self.losses_path.read_text().splitlines()
        except OSError:
            return out
        for line in lines:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                out.append(item)
        return out

    def reset_losses(self) -> None:
        workspace.write_atomic(self.path / LOSSES, "")
        (self.path / OLD_LOSSES).unlink(missing_ok=True)

    def append_losses(self, line: dict) -> None:
        with open(self.losses_path, "a") as fh:
            fh.write(json.dumps(line) + "\n")

    def truncate_losses(self, last_iteration: int) -> None:
        """After a resume, drop lines written after the checkpoint (and a torn last line); an old metrics.jsonl
        moves to losses.jsonl."""
        source = self.losses_path
        if not source.exists():
            return
        keep = []
        for line in source.read_text().splitlines():
            try:
                if json.loads(line)["iter"] <= last_iteration:
                    keep.append(line)
            except (ValueError, KeyError, TypeError):
                continue
        workspace.write_atomic(self.path / LOSSES, "".join(k + "\n" for k in keep))
        if source.name != LOSSES:
            source.unlink(missing_ok=True)

    # ----- scores (evaluation) ------------------------------------------------------------------------------
    def _pick(self, new: str, old: str) -> Path:
        return self.path / (old if (self.path / old).exists() and not (self.path / new).exists() else new)

    @property
    def scores_path(self) -> Path:
        return self._pick(SCORES, OLD_SCORES)

    @property
    def per_image_scores_path(self) -> Path:
        return self._pick(PER_IMAGE, OLD_PER_IMAGE)

    def scores(self) -> dict | None:
        """scores.json (or the old metrics.json), None when the run has not been evaluated."""
        return _read_json(self.scores_path)

    def write_scores(self, data: dict) -> None:
        workspace.write_json_atomic(self.path / SCORES, data)
        (self.path / OLD_SCORES).unlink(missing_ok=True)

    def per_image_scores(self) -> dict | None:
        return _read_json(self.per_image_scores_path)

    def write_per_image_scores(self, data: dict) -> None:
        workspace.write_json_atomic(self.path / PER_IMAGE, data)
        (self.path / OLD_PER_IMAGE).unlink(missing_ok=True)

    # ----- samples ------------------------------------------------------------------------------------------
    @property
    def samples_dir(self) -> Path:
        return self.path / SAMPLES

    def sample_path(self, iteration: int) -> Path:
        return self.samples_dir / f"iter_{int(iteration):06d}.png"

    def samples(self) -> list[Path]:
        return sorted(self.samples_dir.glob("iter_*.png"))

    def latest_sample(self) -> Path | None:
        found = self.samples()
        return found[-1] if found else None

    # ----- log ----------------------------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.path / LOG

    def log(self, message: str, echo: bool = False) -> None:
        """Append one time-stamped line to log.txt (and print it when ``echo``)."""
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        with open(self.log_path, "a") as fh:
            fh.write(line + "\n")
        if echo:
            print(line, flush=True)

    def open_log(self):
        """log.txt opened for appending in binary mode (a worker process's stdout and stderr)."""
        return open(self.log_path, "ab")

    def write_log(self, text: str) -> None:
        """Start log.txt with ``text`` (a new run)."""
        workspace.write_atomic(self.log_path, text)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text()
        except OSError:
            return ""

    def log_tail(self, lines: int = 10) -> str:
        """The last ``lines`` lines of log.txt (read from its last 16 KiB); "" when there is none."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, 2)
                size = fh.tell()
                fh.seek(max(0, size - 16384))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ----- checkpoints --------------------------------------------------------------------------------------
    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS

    def checkpoints(self) -> list[Path]:
        """Every checkpoint file, by name (iter_*.pt in iteration order, then latest.pt)."""
        folder = self.checkpoints_dir
        return sorted(folder.glob("*.pt")) if folder.is_dir() else []

    def periodic_path(self, iteration: int) -> Path:
        """Where the periodic checkpoint of ``iteration`` is written (``checkpoints/iter_XXXXXX.pt``)."""
        return self.checkpoints_dir / PERIODIC.format(int(iteration))

    @property
    def latest_path(self) -> Path:
        """Where latest.pt is (whether or not it exists yet)."""
        return self.checkpoints_dir / LATEST

    def latest_checkpoint(self) -> Path | None:
        return self.latest_path if self.latest_path.is_file() else None

    def checkpoint(self, checkpoint="latest") -> Path:
        """The checkpoint file: 'latest', an iteration number, 'iter_000200', a file name in checkpoints/ or a
        path; a one-sentence UserError when the run has no such file."""
        import os

        folder = self.checkpoints_dir
        name = str(checkpoint if checkpoint not in (None, "") else "latest").strip()
        if name == "latest":
            if not self.latest_path.exists():
                if not self.checkpoints():
                    raise UserError(f"Run {self.id} has no checkpoints yet; evaluate it after it saves one.")
                raise UserError(f"Run {self.id} has no latest.pt; name one of its checkpoints with --checkpoint.")
            return self.latest_path
        if name.isdigit():
            path = folder / PERIODIC.format(int(name))
        elif Path(name).is_absolute() or os.sep in name:
            path = Path(name)
        else:
            path = folder / (name if name.endswith(".pt") else f"{name}.pt")
        if not path.is_file():
            have = [p.name for p in self.checkpoints()]
            listed = ", ".join(have[:6]) if have else "none"
            raise UserError(f"Run {self.id} has no checkpoint {path.name} (it has: {listed}).")
        return path

    # ----- the queue's files --------------------------------------------------------------------------------
    def job(self) -> dict | None:
        return _read_json(self.path / JOB)

    def has_job(self) -> bool:
        return (self.path / JOB).exists()

    def write_job(self, job: dict) -> None:
        workspace.write_json_atomic(self.path / JOB, job)

    def proc(self) -> dict | None:
        return _read_json(self.path / PROC)

    def write_proc(self, proc: dict) -> None:
        workspace.write_json_atomic(self.path / PROC, proc)

    def remove_proc(self) -> None:
        try:
            (self.path / PROC).unlink()
        except OSError:
            pass

    # ----- a file's signature (for views that redraw only on change) -----------------------------------------
    @staticmethod
    def _sig(path: Path):
        try:
            st = path.stat()
            return (st.st_size, st.st_mtime_ns)
        except OSError:
            return None

    def losses_signature(self):
        return self._sig(self.losses_path)

    def log_signature(self):
        return self._sig(self.log_path)

    # ----- what the tables show -----------------------------------------------------------------------------
    def short_hash(self) -> str:
        """The id's trailing 6-hex digest (what run_id appends), else 6 hex digits of the id itself."""
        tail = self.id.rsplit("-", 1)[-1]
        if len(tail) == 6 and all(c in "0123456789abcdef" for c in tail):
            return tail
        import hashlib

        return hashlib.sha1(self.id.encode()).hexdigest()[:6]

    def display_name(self) -> str:
        """A short name for tables, legends and captions, e.g. 'cyclegan α0.50 s0 #924167' (the full id goes on
        hover and in exports). Model and seed from the config, the recipe from the composition's manifest."""
        cfg = self.config_dict() or (self.job() or {}).get("config") or {}
        model = cfg.get("model") or (self.job() or {}).get("model") or "run"
        seed = cfg.get("seed")
        comp = self.composition() or (self.job() or {}).get("composition") or ""
        label = ""
        if comp:
            recipe = (workspace.read_json(Path(comp) / "manifest.json") or {}).get("recipe")
            if isinstance(recipe, dict):
                from ..data.recipes import Recipe

                try:
                    label = Recipe.from_dict(recipe).label()
                except UserError:
                    label = ""
            if not label:
                label = Path(comp).name[:24]
        parts = [model] + ([label] if label else []) + ([f"s{seed}"] if seed is not None else [])
        return " ".join(parts) + f" #{self.short_hash()}"

    def describe(self) -> dict:
        """One dict: id, composition, model, preset, seed, state (and shown_state: 'stopping' while a stop is
        pending), progress, iteration/total, ETA, device, error, message, resumable, queued, created, pid, path."""
        job = self.job()
        status = self.status()
        proc = self.proc()
        queued = job is not None and "config" in job
        if job is None:  # a foreground (or installed) run: describe it from its own files
            cfg = self.config_dict() or {}
            run = self.info()
            job = {"composition": run.get("composition", ""), "composition_name": Path(run.get("composition", "")).name,
                   "model": cfg.get("model", ""), "preset": run.get("preset") or "(command line)", "seed": cfg.get("seed"),
                   "created": run.get("created") or self.path.stat().st_mtime, "device": run.get("device")}
        state = status.get("state", "queued")
        shown = "stopping" if state == "running" and proc and proc.get("stop_requested_at") else state
        total = int(status.get("total") or 0)
        return {
            "id": self.id, "name": self.display_name(), "composition": job.get("composition_name") or Path(job.get("composition", "")).name,
            "composition_path": job.get("composition", ""), "model": job.get("model", ""),
            "preset": job.get("preset", ""), "seed": job.get("seed"), "state": state, "shown_state": shown,
            "progress": float(status.get("progress") or 0.0), "iteration": int(status.get("iteration") or 0),
            "total": total, "eta_s": status.get("eta_s") if state == "running" else None,
            "its_per_s": status.get("its_per_s"), "device": (proc or {}).get("device") or job.get("device") or "",
            "error": status.get("error") or "", "message": status.get("message") or "",
            "resumable": state in ("stopped", "failed"), "queued": queued,
            "created": job.get("created") or 0, "pid": (proc or {}).get("pid"), "path": str(self.path),
        }


# ----- many runs ------------------------------------------------------------------------------------------
def runs_root(root=None) -> Path:
    return Path(root) if root is not None else workspace.sub("runs")


def list_runs(root=None, state=None) -> list[Run]:
    """The runs under ``root`` (default the workspace's runs/), newest first; only those in ``state`` (a state or
    a tuple of states) when given. Hidden folders (temporary, deleted) are not runs."""
    root = runs_root(root)
    if not root.is_dir():
        return []
    wanted = (state,) if isinstance(state, str) else (tuple(state) if state else None)
    found = []
    for folder in root.iterdir():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        run = Run(folder)
        try:
            if wanted is not None and run.state() not in wanted:
                continue
            created = run.describe()["created"] or 0
        except OSError:  # deleted meanwhile
            continue
        found.append((created, run))
    return [r for _, r in sorted(found, key=lambda t: (-t[0], t[1].id))]


def finished_runs(root=None) -> list[Run]:
    """The runs whose status says 'done', newest first."""
    return list_runs(root, state="done")


def open_run(run) -> Run:
    """A Run from a Run, a folder path or a run id under the workspace's runs/; one sentence when it is none."""
    if isinstance(run, Run):
        return run
    path = Path(str(run)).expanduser()
    if not path.is_dir():
        candidate = workspace.sub("runs") / str(run)
        if candidate.is_dir():
            path = candidate
        else:
            raise UserError(f"There is no run folder {run} (neither a path nor a run id under {workspace.sub('runs')}).")
    return Run(path)
