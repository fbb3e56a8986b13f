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

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

SUBDIRS = ("sources", "compositions", "runs", "studies", "cache")


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
    if not str(path).strip():
        raise UserError("Please give a folder path.")
    resolved = Path(path).expanduser().resolve()
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


@contextmanager
def atomic_folder(final: Path):
    """Yield a temporary sibling folder; rename it to ``final`` on success, delete it on failure."""
    final = Path(final)
    if final.exists():
        raise UserError(f"{final.name} already exists; choose another name or delete it first.")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json_atomic(path: Path, data) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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
    """Remove temporary folders left by a killed process (names start with '.tmp-')."""
    count = 0
    if folder.exists():
        for item in folder.iterdir():
            if item.name.startswith(".tmp-") and item.is_dir():
                shutil.rmtree(item, ignore_errors=True)
                count += 1
    return count
