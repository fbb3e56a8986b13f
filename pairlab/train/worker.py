"""One queued run in its own process:  python -m pairlab.train.worker RUN_DIR

Reads ``RUN_DIR/job.json`` (written by ``pairlab.train.queue``) and trains with ``train(..., resume=True)``, so a
first start and every later resume are the same call. SIGTERM (or SIGINT) asks the loop to stop: it saves a
checkpoint and ends in state 'stopped'. The queue started this process in its own session with stdout and stderr
appended to ``RUN_DIR/log.txt``; exit status 0 for done / stopped, 1 for failed, 2 for an unreadable job.
"""
from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m pairlab.train.worker RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    requested = {"stop": False}

    def ask_to_stop(signum, frame):
        if not requested["stop"]:
            print(f"worker: received signal {signum}; stopping after this iteration", flush=True)
        requested["stop"] = True

    signal.signal(signal.SIGTERM, ask_to_stop)
    signal.signal(signal.SIGINT, ask_to_stop)
    if hasattr(signal, "SIGUSR2"):  # SLURM's time-limit / preemption warning (submitit's USR2) reaches us too
        signal.signal(signal.SIGUSR2, ask_to_stop)

    from .run import JOB, Run

    run = Run(run_dir)
    try:
        job = run.job()
        if job is None:
            raise ValueError("missing or not a JSON object")
        composition, config = job["composition"], job["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"worker: cannot read {run_dir / JOB} ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2

    import torch

    from ..errors import UserError
    from .config import TrainConfig
    from .loop import one_sentence, train

    def settle(exc: BaseException) -> None:
        """Failures before the loop took over (it writes its own) still end as 'failed' with one sentence."""
        try:
            if run.state() not in ("done", "failed", "stopped"):
                run.update_status(state="failed", error=one_sentence(exc), eta_s=None)
        except OSError:
            pass

    threads = os.environ.get("PAIRLAB_WORKER_THREADS", "")
    if threads.isdigit() and int(threads) > 0 and not config.get("threads"):
        torch.set_num_threads(int(threads))
    print(f"worker: pid {os.getpid()} slot {os.environ.get('PAIRLAB_SLOT', '?')} "
          f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(all)')}", flush=True)
    try:
        cfg = TrainConfig.from_dict(config)
        status = train(composition, run_dir, cfg, should_stop=lambda: requested["stop"], resume=True)
    except UserError as exc:  # one sentence, already in status.json and log.txt when the loop raised it
        print(f"worker: failed: {exc}", file=sys.stderr, flush=True)
        settle(exc)
        return 1
    except BaseException as exc:
        traceback.print_exc()
        settle(exc)
        return 1
    print(f"worker: {status.get('state')} at iteration {status.get('iteration')}/{status.get('total')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
