"""The workspace: one directory (PAIRLAB_HOME, default ./workspace) holding every box of the flow.

    sources/        rendered SynthFaces sets and landmark caches of imported folders
    compositions/   built datasets (trainA/ trainB/ testA/ testB/ + manifest.json)
    runs/           training jobs (later issues)
    studies/        user studies (later issues)

Paths a user types in the UI must lie under an allowed root: the workspace itself plus the
folders listed in PAIRLAB_DATA_ROOTS (os.pathsep-separated). This keeps a lab served to others
from reading arbitrary files on the host.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

SUBDIRS = ("sources", "compositions", "runs", "studies", "cache", "experiments")


def home() -> Path:
    path = Path(os.environ.get("PAIRLAB_HOME", "workspace")).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    for sub in SUBDIRS:
        (path / sub).mkdir(exist_ok=True)
    return path


def sub(name: str) -> Path:
    assert name in SUBDIRS, name
    return home() / name


def allowed_roots() -> list[Path]:
    roots = [home()]
    for item in os.environ.get("PAIRLAB_DATA_ROOTS", "").split(os.pathsep):
        if item.strip():
            roots.append(Path(item.strip()).expanduser().resolve())
    return roots


def check_allowed(path: str | os.PathLike) -> Path:
    """Resolve a user-typed path and refuse it unless it lies under an allowed root."""
    text = str(path)
    if not text.strip():
        raise UserError("Please give a folder path.")
    if "\x00" in text or len(text) > 4096:
        raise UserError("That is not a usable path (it holds a NUL character or is over 4096 characters long).")
    try:
        resolved = Path(text.strip()).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a link loop, an unknown ~user, ...
        raise UserError(f"The path {text.strip()!r} cannot be resolved ({type(exc).__name__}).")
    for root in allowed_roots():
        if resolved == root or root in resolved.parents:
            return resolved
    shown = ", ".join(str(r) for r in allowed_roots())
    raise UserError(
        f"{resolved} is outside the allowed folders ({shown}); add its parent to PAIRLAB_DATA_ROOTS to use it."
    )


def safe_name(name: str) -> str:
    """A folder name made of letters, digits, '-', '_' and '.', never starting with '.'."""
    cleaned = "".join(c if (c.isalnum() or c in "-_.") else "-" for c in name.strip())
    cleaned = cleaned.strip(".-") or "unnamed"
    return cleaned[:120]


# ----- owners of temporary folders -------------------------------------------------------------------------
# A temporary folder is named ``.tmp-<final name>~<pid>~<process start time>~<random>``: the process that writes
# it, so that a clean-up by another process (a second build, the app and the CLI at once) removes only folders
# whose owner has ended, never one still being written.
_OWNER_RE = re.compile(r"~(\d+)~(\d+)~[A-Za-z0-9_]+$")
STALE_UNOWNED_S = 3600.0  # a temporary folder without an owner in its name (older code) counts as stale after this


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); None once it has ended.

    With the pid it names one process: a recycled pid has another start time. Without /proc (macOS) it is 0 for
    any live pid."""
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(int(pid), 0)
            return 0
        except (ProcessLookupError, ValueError, OverflowError):
            return None
        except PermissionError:
            return 0
    try:
        text = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError, OverflowError):
        return None
    rest = text[text.rfind(")") + 2:].split()  # the fields after the command name (which may contain spaces)
    try:
        if rest[0] in ("Z", "X"):  # a zombie has ended; it only waits to be reaped
            return None
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def owner_alive(pid: int, start: int | None) -> bool:
    now = process_start_time(pid)
    return now is not None and (start is None or now == 0 or int(start) == now)


def owner_tag() -> str:
    """``~<pid>~<start time>~`` of this process, for names of temporary folders."""
    pid = os.getpid()
    return f"~{pid}~{process_start_time(pid) or 0}~"


def temp_owner(name: str) -> tuple[int, int] | None:
    m = _OWNER_RE.search(name)
    return (int(m[1]), int(m[2])) if m else None


def _temp_is_stale(item: Path) -> bool:
    owner = temp_owner(item.name)
    if owner is not None:
        return not owner_alive(*owner)
    try:  # no owner recorded: stale when nothing in it (or its direct sub-folders) changed for an hour
        newest = item.stat().st_mtime
        for entry in os.scandir(item):
            if entry.is_dir(follow_symlinks=False):
                newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    except OSError:
        return False
    return time.time() - newest > STALE_UNOWNED_S


class FolderTaken(UserError):
    """``atomic_folder``: another process made the final folder while this one wrote its temporary one."""


@contextmanager
def atomic_folder(final: Path, exist_ok: bool = False):
    """Yield a temporary sibling folder; rename it to ``final`` on success, delete it on failure.

    The temporary folder carries this process's identity (see ``owner_tag``), so another process's clean-up
    leaves it alone while this one runs. If another process made ``final`` meanwhile, nothing is replaced and
    the build is refused with one sentence (``FolderTaken``). With ``exist_ok`` an existing ``final`` is no
    refusal when the block starts (a stale cache the block removes before it ends)."""
    final = Path(final)
    if final.exists() and not exist_ok:
        raise UserError(f"{final.name} already exists; choose another name or delete it first.")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name[:100]}{owner_tag()}", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            raise FolderTaken(f"{final.name} was made by another process meanwhile; choose another name or delete it first.")
        try:
            os.rename(tmp, final)
        except OSError:
            if final.exists():
                raise FolderTaken(f"{final.name} was made by another process meanwhile; choose another name or delete "
                                  f"it first.")
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_folder(folder: Path) -> bool:
    """Delete a folder atomically: rename it out of the way first (so no reader sees it half-removed and two
    deletes cannot collide), then remove it. False when it was not there (or another process took it first)."""
    folder = Path(folder)
    trash = folder.with_name(f".tmp-deleted-{folder.name[:90]}{owner_tag()}{uuid.uuid4().hex[:8]}")
    try:
        os.rename(folder, trash)
    except FileNotFoundError:
        return False
    shutil.rmtree(trash, ignore_errors=True)
    return True


@contextmanager
def exclusive(lock_file: Path):
    """An exclusive lock between threads and processes (fcntl) on ``lock_file`` while the block runs."""
    import fcntl

    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


@contextmanager
def atomic_file(path: Path, fsync: bool = True):
    """Yield a temporary sibling path (same suffix, so writers that look at it still know the format); on success
    it is renamed over ``path``, on failure deleted: a reader sees the old file or the new one, never half of one.

    The temporary name is unique per writer (``.<name>.<random>.tmp<suffix>``), so two processes writing the same
    file at once never write into one temporary file. This and ``atomic_folder`` are the only temp-then-rename
    writers; everything else calls them."""
    path = Path(path)
    tmp = path.with_name(f".{path.name[:100]}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        if fsync and tmp.exists():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_atomic(path: Path, data: str | bytes, fsync: bool = True) -> None:
    """Write text or bytes to ``path`` atomically (see ``atomic_file``)."""
    with atomic_file(path, fsync=fsync) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)


def read_json(path) -> dict | None:
    """A JSON object from ``path``; None when the file is missing, unreadable, not JSON or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json_atomic(path: Path, data, indent: int | None = 1, sort_keys: bool = False) -> None:
    write_atomic(path, json.dumps(data, indent=indent, sort_keys=sort_keys))


def remember_view(name: str, data: dict) -> None:
    """What a tab last showed (e.g. the runs of a comparison), so it reopens on it after a reload or restart."""
    write_json_atomic(sub("cache") / f"{name}-last.json", data)


def last_view(name: str) -> dict:
    """The view ``remember_view`` stored, or {} when there is none (or it is unreadable)."""
    try:
        data = json.loads((sub("cache") / f"{name}-last.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def clean_stale_temps(folder: Path) -> int:
    """Remove temporary folders ('.tmp-*') whose owner has ended (a killed build); never one still in use."""
    count = 0
    folder = Path(folder)
    if folder.exists():
        for item in folder.iterdir():
            if item.name.startswith(".tmp-") and item.is_dir() and not item.is_symlink() and _temp_is_stale(item):
                shutil.rmtree(item, ignore_errors=True)
                count += 1
    return count
