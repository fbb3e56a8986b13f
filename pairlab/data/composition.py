"""A composition folder, read through one type: ``trainA/ trainB/ testA/ testB/`` plus ``manifest.json``.

    {"images": {"trainA": [{"file": "a1.jpg", "pair": "b1.jpg" or null, ...}, ...],
                "trainB": [{"file": "b1.jpg", ...}], "testA": [{"file": ..., "truth": ...}], "testB": [...]}, ...}

The ``pair`` of an A entry names its counterpart in the B folder of the same split; ``truth`` of a test entry is
its ground truth T(x), relative to the folder. Without a manifest the folders are listed and no pair is known (the
plain unaligned layout other CycleGAN code trains on). Torch-free: the queue validates with it before a run exists.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .images import is_image_name

SPLITS = ("trainA", "trainB", "testA", "testB")


@dataclass(frozen=True)
class Composition:
    root: Path
    files: dict            # split -> list of file names
    pairs: dict            # "trainA"/"testA" -> list of pair file names (or None), aligned with files
    truths: dict           # "testA"/"testB" -> list of ground-truth paths T(x) relative to root (or None)

    @classmethod
    def open(cls, root) -> "Composition":
        root = Path(root)
        if not root.is_dir():
            raise UserError(f"Composition folder {root} does not exist.")
        manifest = root / "manifest.json"
        files, pairs, truths = {}, {}, {}
        if manifest.exists():
            try:
                images = json.loads(manifest.read_text())["images"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise UserError(f"{manifest} is not a readable composition manifest ({type(exc).__name__}).")
            for split in SPLITS:
                entries = images.get(split) or []
                try:
                    files[split] = [str(e["file"]) for e in entries]
                    if split.endswith("A"):
                        pairs[split] = [e.get("pair") or None for e in entries]
                    if split.startswith("test"):
                        truths[split] = [e.get("truth") or None for e in entries]
                except (KeyError, TypeError, AttributeError):
                    raise UserError(f"{manifest}: every entry of {split} needs a 'file'.")
        else:
            for split in SPLITS:
                folder = root / split
                files[split] = sorted(p.name for p in folder.iterdir() if is_image_name(p.name)) if folder.is_dir() else []
                if split.endswith("A"):
                    pairs[split] = [None] * len(files[split])
                if split.startswith("test"):
                    truths[split] = [None] * len(files[split])
        comp = cls(root, files, pairs, truths)
        comp._check()
        return comp

    def _check(self):
        for split in ("trainA", "trainB"):
            if not self.files[split]:
                raise UserError(f"Composition {self.root.name} has no {split} images.")
        for split in SPLITS:
            for name in self.files[split]:
                if not (self.root / split / name).is_file():
                    raise UserError(f"Composition {self.root.name} lists {split}/{name}, which is missing.")
        for split in ("trainA", "testA"):
            other = split[:-1] + "B"
            known = set(self.files[other])
            for name, pair in zip(self.files[split], self.pairs[split]):
                if pair is not None and pair not in known:
                    raise UserError(f"Composition {self.root.name}: the pair {pair} of {split}/{name} is not in {other}.")

    def path(self, split: str, name: str) -> Path:
        return self.root / split / name

    @property
    def n_paired(self) -> int:
        """How many training A images have a known pair in trainB."""
        return sum(p is not None for p in self.pairs["trainA"])
