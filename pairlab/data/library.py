"""The workspace's library of sources and compositions: the embedded SynthFaces default, user folders (under the
allowed roots), and building a composition into ``compositions/`` (with what it skipped and how it was named).

The façade (``pairlab.lab``) re-exports these; the experiments build their datasets through them too.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .. import workspace
from ..errors import UserError
from . import compose as compose_mod
from .recipes import Recipe
from .sources import Source, open_source


# The embedded default: enough identities for every recipe at N = 200 with a 100-image test split.
# PAIRLAB_SYNTHFACES_COUNT / _SIZE change it (the browser tests use a smaller one).
DEFAULT_SYNTHFACES = {
    "count": int(os.environ.get("PAIRLAB_SYNTHFACES_COUNT", "1500")),
    "size": int(os.environ.get("PAIRLAB_SYNTHFACES_SIZE", "128")),
    "seed": 0,
}


def synthfaces_dir(count: int, size: int, seed: int) -> Path:
    return workspace.sub("sources") / f"synthfaces-n{count}-{size}px-seed{seed}"


def synthfaces_source(count: int = DEFAULT_SYNTHFACES["count"], size: int = DEFAULT_SYNTHFACES["size"],
                      seed: int = DEFAULT_SYNTHFACES["seed"], progress=None) -> Source:
    """A SynthFaces source in the workspace, rendered on first use (deterministic for its parameters)."""
    from . import synthfaces

    count, size, seed = int(count), int(size), int(seed)
    if count < 30 or count > 200_000:
        raise UserError(f"SynthFaces count must be between 30 and 200,000, got {count}.")
    folder = synthfaces_dir(count, size, seed)
    meta = folder / "synthfaces.json"
    if meta.exists():
        try:
            version = json.loads(meta.read_text()).get("version")
        except (OSError, ValueError):
            version = None
        if version != synthfaces.VERSION:
            # rendered by an older renderer (other bytes): keep it beside, under its version, and render anew
            old = folder.with_name(f"{folder.name}-v{version}")
            if not old.exists():
                os.replace(folder, old)
            else:
                import shutil

                shutil.rmtree(folder)
    if not meta.exists():
        # One renderer per set at a time (the app and the CLI may both ask for it); the second uses the first's.
        with workspace.exclusive(folder.parent / f".render-{folder.name}.lock"):
            if not meta.exists():
                workspace.clean_stale_temps(folder.parent)
                synthfaces.generate(folder, count=count, size=size, seed=seed, progress=progress)
    return open_source(folder, "celeba")


def workspace_sources() -> list[Path]:
    """The source folders of the workspace (``sources/``) in the CelebA layout (SynthFaces renders), by name."""
    root = workspace.sub("sources")
    return [f for f in (sorted(root.iterdir()) if root.is_dir() else [])
            if not f.name.startswith(".") and (f / "img_align_celeba").is_dir()]


_SOURCE_CACHE: dict = {}


def open_user_source(path: str, layout: str | None = None) -> Source:
    """Open a folder a user typed, refusing paths outside the allowed roots.

    Opened sources are kept while their folder and list files are unchanged (real CelebA takes seconds to parse)."""
    root = workspace.check_allowed(path)
    layout = None if layout in (None, "", "auto") else layout
    try:
        stamp = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(root.iterdir()) if p.suffix in (".txt", ".json") or p.is_dir())
    except OSError:
        stamp = None
    key = (str(root), layout)
    cached = _SOURCE_CACHE.get(key)
    if cached and stamp is not None and cached[0] == stamp:
        return cached[1]
    source = open_source(root, layout)
    _SOURCE_CACHE.clear()  # keep one: a real CelebA source holds ~400 MB
    _SOURCE_CACHE[key] = (stamp, source)
    return source


def build_composition(source: Source, recipe: Recipe, name: str | None = None, progress=None) -> Path:
    root = workspace.sub("compositions")
    workspace.clean_stale_temps(root)
    if name:
        name = workspace.safe_name(name)
    else:
        name = compose_mod.unique_name(compose_mod.default_name(source, recipe), root)
    return compose_mod.compose(source, recipe, name=name, out_root=root, progress=progress)


def skip_report(path: Path, limit: int = 5) -> list[str]:
    """What a build skipped, per file: a count by reason, the first ``limit`` files with their reason, and where
    the full list is (``skipped.txt`` in the composition). Empty when nothing was skipped."""
    listing = Path(path) / "skipped.txt"
    try:
        rows = [line.split("\t", 1) for line in listing.read_text().splitlines() if "\t" in line]
    except OSError:
        rows = []
    if not rows:
        return []
    counts: dict[str, int] = {}
    for _, reason in rows:
        counts[reason] = counts.get(reason, 0) + 1
    lines = [f"skipped {len(rows)} file(s): " + ", ".join(f"{n} {r}" for r, n in counts.items())]
    lines += [f"  {name}: {reason}" for name, reason in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"  ... and {len(rows) - limit} more, all listed in {listing}")
    else:
        lines.append(f"  (listed in {listing})")
    return lines


def name_note(typed, built: str, default: str | None = None) -> str:
    """One sentence when the composition's name is not what was typed (cleaned up) or the default was taken."""
    typed = (typed or "").strip()
    if typed and built != typed:
        return (f"The name '{typed}' was changed to '{built}' (names use letters, digits, '-', '_' and '.', and do "
                f"not start with '.' or '-').")
    if not typed and default and built != default:
        return f"A composition named '{default}' exists already, so this one is '{built}'."
    return ""
