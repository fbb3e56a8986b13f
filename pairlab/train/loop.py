"""The one training loop, used by the CLI, the job queue and the tests.

A run is a folder, read and written only through ``pairlab.train.run.Run`` (see there for its files): the
resolved config, run.json (what was trained on, with which code), status, the training losses (one line per
logged iteration: mean losses since the last line, lr, iterations/s), sample grids, checkpoints and the log.

``train(..., resume=True)`` continues from the newest readable checkpoint. With ``deterministic=True`` on CPU
the resumed run ends bit-identical to an uninterrupted one, because the checkpoint stores every RNG state and
the data order is a pure function of (seed, epoch).

Speed: the train images are decoded once into uint8 tensors on the training device and batches are cropped,
flipped and converted there (``TrainData``); a step returns its losses as device tensors, which are read back
only at log steps and checkpoints, so on CUDA the loop never waits for the GPU between them.
"""
from __future__ import annotations

import os
import platform
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import __version__
from ..errors import UserError
from ..models import MODELS
from . import checkpoint as ckpt
from .config import TrainConfig
from .data import TrainData, to_uint8
from .device import describe, pick_device
from .run import STATES, Run, format_eta  # noqa: F401 (STATES is re-exported)


# ----- small run-folder helpers ---------------------------------------------------------------------------
def read_status(run_dir) -> dict:
    """The run's status, or a 'queued' status if it has none yet (``Run.status``)."""
    return Run(run_dir).status()


def write_status(run_dir, **fields) -> dict:
    """Merge ``fields`` into the run's status (atomically) and return the new status (``Run.update_status``)."""
    return Run(run_dir).update_status(**fields)


def one_sentence(exc: BaseException) -> str:
    """A user-facing sentence for an exception: UserErrors as written, others with their type."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, UserError):
        return text or "Training failed."
    if type(exc).__name__ == "OutOfMemoryError":
        return "The GPU ran out of memory; use a smaller image_size, batch_size or ngf."
    if isinstance(exc, MemoryError):
        return "The machine ran out of memory; use a smaller image_size, batch_size or ngf."
    return f"Training failed with {type(exc).__name__}: {text[:200]}".rstrip(": ") + ("" if text.endswith(".") else ".")


class RunLog:
    """log.txt of a run as a callable: ``log(message)`` appends one time-stamped line (``Run.log``)."""

    def __init__(self, run_dir, echo: bool = False):
        self.run = run_dir if isinstance(run_dir, Run) else Run(run_dir)
        self.path = self.run.log_path
        self.echo = echo

    def __call__(self, message: str) -> None:
        self.run.log(message, echo=self.echo)


def _save_grid(rows, path: Path) -> None:
    """Rows of equal-size 3xHxW tensors -> one PNG, written atomically."""
    from PIL import Image

    from ..workspace import atomic_file

    if not rows:
        return
    grid = np.concatenate([np.concatenate([to_uint8(t) for t in row], axis=1) for row in rows], axis=0)
    with atomic_file(path, fsync=False) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")


def _settle_config(run: Run, config: TrainConfig | None, resume: bool) -> TrainConfig:
    """The run's config: the stored one if the folder has one (a different one is refused), else the given one."""
    if run.has_config():
        stored = run.config()
        if config is not None and config.resolved() != stored:
            raise UserError(f"Run {run.id} was started with different settings; start a new run instead.")
        if not resume and run.latest_checkpoint() is not None:
            raise UserError(f"Run {run.id} already has checkpoints; resume it or choose another run folder.")
        return stored
    if config is None:
        raise UserError(f"Run {run.id} has no config.json to resume from.")
    return config.resolved()


def _setup_torch(cfg: TrainConfig, device: torch.device) -> dict:
    """Threads and determinism; returns the previous global settings so they can be restored."""
    previous = {"threads": torch.get_num_threads(), "det": torch.are_deterministic_algorithms_enabled(),
                "det_warn": torch.is_deterministic_algorithms_warn_only_enabled(),
                "cudnn_det": torch.backends.cudnn.deterministic, "cudnn_bench": torch.backends.cudnn.benchmark}
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # Some CUDA kernels (reflection-pad backward) have no deterministic version: warn there, don't fail.
        torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = device.type == "cuda"
    return previous


def _restore_torch(previous: dict) -> None:
    torch.set_num_threads(previous["threads"])
    torch.use_deterministic_algorithms(previous["det"], warn_only=previous["det_warn"])
    torch.backends.cudnn.deterministic = previous["cudnn_det"]
    torch.backends.cudnn.benchmark = previous["cudnn_bench"]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ----- the loop -----------------------------------------------------------------------------------------
def train(composition_dir, run_dir, config: TrainConfig | None = None,
          progress: Callable[[dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None,
          resume: bool = False, echo: bool = False) -> dict:
    """Train one model on one composition into ``run_dir``; returns the final status dict.

    progress(status) is called at every logged iteration; should_stop() is polled after every iteration and,
    when true, the run saves a checkpoint and ends in state 'stopped' (resumable). With resume=True the run
    continues from its newest readable checkpoint (or starts if it has none). Errors are written to
    status.json as one sentence, then re-raised.
    """
    run = Run.create(run_dir)
    log = RunLog(run, echo)
    previous_torch = None
    try:
        cfg = _settle_config(run, config, resume)
        if not run.has_config():
            run.write_config(cfg)
        device = pick_device(cfg.device)
        previous_torch = _setup_torch(cfg, device)
        ckpt_dir = run.checkpoints_dir

        # Data, then the model, built from the seeded RNGs so a fresh run is a function of the seed.
        _seed_everything(cfg.seed)
        Model = MODELS[cfg.model]
        data = TrainData(composition_dir, cfg, Model.data_mode, device=device)
        model = Model(cfg, device)
        per_epoch = data.iters_per_epoch()
        total = cfg.max_iters or (cfg.n_epochs + cfg.n_epochs_decay) * per_epoch
        model.setup_schedule(total)

        it, epoch, index, accum = 0, 0, 0, {"sums": {}, "count": 0}
        state, note = None, ""
        if resume:
            state, path, note = ckpt.load_for_resume(ckpt_dir)
        if state is not None:
            if TrainConfig.from_dict(state["config"]) != cfg:  # read through the config type (older key names)
                raise UserError(f"Checkpoint {path.name} belongs to different settings than run {run.id}.")
            model.load_state_dict(state["model_state"])
            it, epoch, index = state["iteration"], state["epoch"], state["index"]
            accum = state["accum"]
            ckpt.set_rng_state(state["rng"])
            run.truncate_losses(it)
            if note:
                log(note)
            log(f"resumed from {path.name} at iteration {it} (epoch {epoch}, sample {index})")
        else:
            if cfg.init_from:
                source = ckpt.load_checkpoint(cfg.init_from)
                loaded = model.load_compatible_nets(source["model_state"]["nets"])
                if not loaded:
                    raise UserError(f"{cfg.init_from} has no networks compatible with this {cfg.model} model.")
                log(f"initialised {', '.join(loaded)} from {cfg.init_from}")
            run.reset_losses()
            run.write_info({
                "composition": str(Path(composition_dir).resolve()), "model": cfg.model,
                "pairlab_version": __version__, "torch_version": torch.__version__,
                "python": platform.python_version(), "device": describe(device), "created": time.time(),
                "parameters": model.parameter_counts(),
            })
            log(f"start {cfg.model} on {Path(composition_dir).name}: {data.length} samples per epoch, "
                f"{per_epoch} iterations per epoch, {total} iterations, device {describe(device)}")
        del state  # free the checkpoint's tensors before training
        if data.note:
            log(data.note)

        sample_a, sample_b, sample_b_of_a = data.sample_images(cfg.n_samples)
        status = run.update_status(state="running", progress=it / total, iteration=it, total=total, epoch=epoch,
                              eta_s=None, its_per_s=None, error="", message=note, device=describe(device))

        def save() -> None:
            blob = {
                "format": ckpt.FORMAT, "model": cfg.model, "config": cfg.to_dict(), "iteration": it,
                "epoch": epoch, "index": index, "total": total, "accum": accum,
                "model_state": model.state_dict(), "rng": ckpt.rng_state(),
            }
            periodic = run.periodic_path(it)
            ckpt.save_atomic(blob, periodic)
            ckpt.copy_atomic(periodic, run.latest_path)
            ckpt.prune(ckpt_dir, cfg.keep_last, cfg.keep_every)

        def sample() -> None:
            rows = model.sample_rows(sample_a, sample_b, sample_b_of_a)
            _save_grid(rows, run.sample_path(it))

        # The losses of each iteration stay on the device until a log step or a checkpoint reads them back in one
        # transfer (a step never waits for the GPU); they are then summed into ``accum`` as Python floats in
        # iteration order, so the sums are the same whenever they are read.
        pending: list = []
        losses: dict = {}

        def flush() -> dict:
            """Add the pending losses to accum; returns the newest iteration's losses as floats."""
            nonlocal pending
            if not pending:
                return losses
            keys = [k for step_losses in pending for k in step_losses]
            values = torch.stack([v.float() for step_losses in pending for v in step_losses.values()]).tolist()
            for k, v in zip(keys, values):
                accum["sums"][k] = accum["sums"].get(k, 0.0) + v
            last = dict(zip(keys[len(keys) - len(pending[-1]):], values[len(values) - len(pending[-1]):]))
            pending = []
            return last

        session_start, session_it0 = time.time(), it
        interval_start, interval_it0 = time.time(), it
        stopped = False
        # the first sample early (a grid to look at before sample_every, which may exceed max_iters), then every
        # sample_every, and always a final one at the end (done or stopped)
        early_sample = not run.samples()
        status_every_s, last_status = 1.0, time.time()
        while it < total:
            if index >= data.length:  # epoch boundary
                epoch, index = epoch + 1, 0
            n = min(cfg.batch_size, data.length - index)
            batch = data.batch(epoch, index, n)
            index += n
            pending.append(model.train_step(batch))
            model.step_schedule()
            it += 1
            accum["count"] += 1
            stopped = bool(should_stop and should_stop())

            if it % cfg.log_every == 0 or it == total or stopped:
                losses = flush()
                now = time.time()
                speed = (it - interval_it0) / max(now - interval_start, 1e-9)
                session_speed = (it - session_it0) / max(now - session_start, 1e-9)
                line = {"iter": it, "epoch": epoch, "lr": model.lr, "its_per_s": round(speed, 4), "time": now}
                line.update({k: s / accum["count"] for k, s in accum["sums"].items()})
                run.append_losses(line)
                accum = {"sums": {}, "count": 0}
                interval_start, interval_it0 = now, it
                if not all(np.isfinite(v) for v in line.values()):
                    raise UserError(f"Training diverged at iteration {it} (a loss is not finite); try a lower lr.")
                status = run.update_status(progress=it / total, iteration=it, epoch=epoch, its_per_s=speed,
                                      eta_s=(total - it) / max(session_speed, 1e-9))
                last_status = now
                if progress:
                    progress(dict(status, losses=losses, lr=model.lr))
            elif time.time() - last_status >= status_every_s:  # progress between log steps: at most once a second
                now = time.time()
                session_speed = (it - session_it0) / max(now - session_start, 1e-9)
                status = run.update_status(progress=it / total, iteration=it, epoch=epoch,
                                           eta_s=(total - it) / max(session_speed, 1e-9))
                last_status = now
            if it % cfg.save_every == 0 or it == total or stopped:
                losses = flush()
                save()
            if it % cfg.sample_every == 0 or it == total or stopped or (early_sample and it >= cfg.log_every):
                sample()
                early_sample = False
            if stopped:
                break

        final_state = "stopped" if stopped and it < total else "done"
        log(f"{final_state} at iteration {it}/{total}")
        status = run.update_status(state=final_state, progress=it / total, iteration=it,
                              eta_s=0 if final_state == "done" else None)
        if progress:
            progress(status)
        return status
    except BaseException as exc:
        record_end(run, log, exc)
        raise
    finally:
        if previous_torch is not None:
            _restore_torch(previous_torch)


def record_end(run: Run, log, exc: BaseException) -> None:
    """A run that ended by ``exc``: stopped (Ctrl+C / stop request) or failed, its one sentence in the log and status."""
    interrupted = isinstance(exc, KeyboardInterrupt)
    message = "Training was interrupted." if interrupted else one_sentence(exc)
    try:
        log(f"{'stopped' if interrupted else 'failed'}: {message}")
        run.update_status(state="stopped" if interrupted else "failed", error=message, eta_s=None)
    except OSError:
        pass


# ----- foreground command (the CLI's `pairlab train`) ------------------------------------------------------
def train_command(composition, model: str, preset: str, overrides=(), runs_dir=None, name: str | None = None,
                  seed: int | None = None, presets_dir=None) -> Path:
    """Create (or continue) a run folder under ``runs_dir`` and train in the foreground, printing progress.

    The config and its checks are ``jobs.prepare_job``'s, as for a queued run (the preset, then ``model``, then the
    "key=value" overrides, then ``seed`` when given). The same composition, model, preset and settings give the
    same run id, so running the command again resumes the run instead of starting over. Returns the run folder.
    """
    from ..workspace import sub
    from .jobs import prepare_job

    job = prepare_job(composition, model, preset, overrides, seed, name, presets_dir, queued=False, resolved=True)
    cfg = TrainConfig.from_dict(job["config"])
    runs_dir = Path(runs_dir) if runs_dir is not None else sub("runs")
    run_dir = runs_dir / job["id"]
    resume = Run(run_dir).has_config()
    print(f"{'resuming' if resume else 'starting'} run {run_dir}", flush=True)

    def show(status: dict) -> None:
        losses = status.get("losses") or {}
        shown = " ".join(f"{k} {v:.3f}" for k, v in losses.items() if k in ("G", "D", "D_A", "D_B", "G_L1", "L1"))
        speed = status.get("its_per_s")
        print(f"{run_dir.name} iter {status.get('iteration')}/{status.get('total')} "
              f"({100 * status.get('progress', 0):.0f}%) {speed or 0:.2f} it/s ETA {format_eta(status.get('eta_s')) or '?'}"
              f"{'  ' + shown if shown else ''}{'  [' + status['state'] + ']' if status.get('state') != 'running' else ''}",
              flush=True)

    from .queue import register_foreground, unregister_foreground

    register_foreground(run_dir)  # like a queued run's: a killed foreground run is settled failed, resumable
    try:
        train(composition, run_dir, cfg, progress=show, resume=resume)
    finally:
        unregister_foreground(run_dir)
    return run_dir
