"""A real single-node SLURM cluster in a temporary folder, for the tests (and for trying pairlab by hand).

    cluster = SlurmCluster(folder).start()     # munged, slurmctld, slurmd; raises Unavailable
    os.environ.update(cluster.env)             # SLURM_CONF: sbatch, squeue, sacct, scancel talk to this cluster
    ...
    cluster.stop()                             # cancels every job, stops the daemons it started (by their pids)

    python tests/slurm_cluster.py FOLDER       # start one by hand; prints the SLURM_CONF to export; Ctrl+C stops it

Debian's ``slurm-wlm`` 22.05 and ``munge``, started as root (SlurmUser=root) from
the folder, every daemon in the foreground so it is stopped by the pid it was started with: its own munged socket
(``AuthInfo=socket=...``), its own ports on 127.0.0.1, its own state and spool folders. No cgroups in a container:
``proctrack/linuxproc``, ``task/none``, ``jobacct_gather/none``. No accounting (``slurmdbd``): pairlab reads job
states from ``squeue`` / ``scontrol show job`` and the run's own status.json (see pairlab/train/slurm.py).
One node with the machine's cores (``select/cons_tres``, ``CR_Core``: one job per core), ``KillWait=5`` so that a
cancelled job's processes get 5 s between SIGTERM and SIGKILL.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

NEEDED = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol", "scancel", "sinfo")
PACKAGES = "slurm-wlm munge"
CLUSTER = "pairlabtest"
NODE = "pairlab-node"


class Unavailable(RuntimeError):
    """The cluster cannot start here; the message says why in one sentence."""


def _which(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)


def why_not() -> str | None:
    """None when a cluster can start here, else the reason in one sentence."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "a real SLURM cluster needs root here (SlurmUser=root and munged as root)"
    missing = [n for n in NEEDED if _which(n) is None]
    if missing:
        return (f"SLURM is not installed ({', '.join(missing)} missing; `./pairlab.sh test` installs {PACKAGES} "
                f"when run as root)")
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmCluster:
    def __init__(self, folder):
        self.dir = Path(folder)
        self.procs: dict[str, subprocess.Popen] = {}
        self.env: dict[str, str] = {}

    # ----- starting ---------------------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> "SlurmCluster":
        reason = why_not()
        if reason:
            raise Unavailable(reason)
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _daemon(self, name: str, argv: list, env=None) -> None:
        log = open(self.dir / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env or self.env_all(), start_new_session=True)
        log.close()

    def env_all(self) -> dict:
        return dict(os.environ, **self.env)

    def _wait(self, what: str, check, timeout: float) -> None:
        deadline = time.time() + timeout
        while True:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    tail = (self.dir / f"{name}.out").read_text(errors="replace")[-1500:]
                    raise Unavailable(f"{name} ended while waiting for {what} (exit {p.returncode}): {tail}")
            try:
                if check():
                    return
            except (OSError, subprocess.SubprocessError):
                pass
            if time.time() > deadline:
                raise Unavailable(f"timed out waiting for {what}")
            time.sleep(0.2)

    def _run(self, *argv, check=True, timeout=30) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), env=self.env_all(), capture_output=True, text=True, timeout=timeout,
                              check=check)

    def _start(self, timeout: float) -> None:
        d = self.dir
        for sub in ("state", "spool", "munge", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)  # munged and slurmd refuse group/world-writable folders on their paths
        os.chmod(d / "munge", 0o700)
        # munge: its own key and socket
        key = d / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        sock = d / "munge" / "munge.sock"
        self._daemon("munged", [_which("munged"), "-F", "--force", f"--key-file={key}", f"--socket={sock}",
                                f"--pid-file={d / 'munge' / 'munged.pid'}", f"--log-file={d / 'log' / 'munged.log'}",
                                f"--seed-file={d / 'munge' / 'munged.seed'}"])
        self._wait("munged", lambda: sock.exists(), 20)
        ctld_port, slurmd_port = _free_port(), _free_port()
        auth = f"AuthType=auth/munge\nAuthInfo=socket={sock}\n"
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        (d / "slurm.conf").write_text(
            f"ClusterName={CLUSTER}\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort={ctld_port}\n"
            f"SlurmdPort={slurmd_port}\n" + auth +
            "SlurmUser=root\nSlurmdUser=root\nMpiDefault=none\nProctrackType=proctrack/linuxproc\n"
            "TaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\nSelectType=select/cons_tres\n"
            "SelectTypeParameters=CR_Core\nSchedulerType=sched/backfill\nReturnToService=2\nKillWait=5\n"
            "InactiveLimit=0\nMinJobAge=600\nJobRequeue=1\n"
            "AccountingStorageType=accounting_storage/none\nJobCompType=jobcomp/none\n"
            f"StateSaveLocation={d / 'state'}\nSlurmdSpoolDir={d / 'spool'}\n"
            f"SlurmctldPidFile={d / 'state' / 'slurmctld.pid'}\nSlurmdPidFile={d / 'spool' / 'slurmd.pid'}\n"
            f"SlurmctldLogFile={d / 'log' / 'slurmctld.log'}\nSlurmdLogFile={d / 'log' / 'slurmd.log'}\n"
            f"NodeName={NODE} NodeHostname={socket.gethostname()} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=2000 "
            "State=UNKNOWN\n"
            f"PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP\n")
        self.env = {"SLURM_CONF": str(d / "slurm.conf")}
        self._daemon("slurmctld", [_which("slurmctld"), "-D", "-i"])
        self._daemon("slurmd", [_which("slurmd"), "-D", "-N", NODE])
        self._wait("the node to be idle",
                   lambda: "idle" in self._run(_which("sinfo"), "-h", "-n", NODE, "-o", "%T", check=False).stdout, timeout)

    # ----- stopping ---------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Cancel every job of this cluster, then stop the daemons this object started (by pid)."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            try:
                self._run(_which("scancel"), "--full", "-u", "root", check=False, timeout=10)
                deadline = time.time() + 15
                while time.time() < deadline and self._run(_which("squeue"), "-h", "-o", "%i", check=False,
                                                             timeout=10).stdout.strip():
                    time.sleep(0.3)
            except (OSError, subprocess.SubprocessError):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.pop(name, None)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/pairlab-slurm")
    folder.mkdir(parents=True, exist_ok=True)
    cluster = SlurmCluster(folder)
    t0 = time.time()
    try:
        cluster.start()
    except Unavailable as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"cluster up in {time.time() - t0:.1f} s; export SLURM_CONF={cluster.env['SLURM_CONF']}", flush=True)
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        cluster.stop()
