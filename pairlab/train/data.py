"""Training data from a composition folder (read through ``pairlab.data.composition.Composition``).

How samples are drawn depends on the model's data mode:
  unaligned (CycleGAN)  A in a seeded permuted order, B at random, as in the reference's unaligned dataset;
  aligned   (pix2pix)   only A entries with a known pair, B is the pair;
  hybrid    (paper 002) every A; a paired A brings its pair as B (and is repeated paired_repeats times per
                        epoch; 0: as many times as makes the repeats match the unpaired A in number), an
                        unpaired A gets a random B. On-disk copies a recipe wrote (paired_copies) are separate
                        paired entries here, so they count as paired samples when paired_repeats is 0.

Everything random about an epoch (order, random B, flips, crops) is drawn up front from a generator seeded
with (seed, epoch), so the data stream is a pure function of (seed, epoch, index): resuming needs only the
position.

Two ways to make a batch, giving identical tensors:
  resident  (``TrainData(..., device=...)``, the training loop's way) the train images are decoded once, at
            load_size, into uint8 N x 3 x L x L tensors on the training device (the GPU when training there);
            each epoch's plan is uploaded once, and a batch is one gather that crops and flips on the device,
            then a conversion to float in [-1, 1] there. Nothing in it waits for the device.
  lazy      (no device, or a composition over RESIDENT_BYTES) images are decoded on the CPU as batches need
            them (kept in a CPU cache up to CACHE_BYTES), cropped and flipped in numpy.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.composition import Composition
from ..data.images import load_rgb
from ..errors import UserError

CACHE_BYTES = 512 * 1024 * 1024
#: The most bytes of decoded uint8 train images kept resident on the training device; larger compositions
#: fall back to the lazy CPU path. On CUDA at most a quarter of the free GPU memory is used as well.
RESIDENT_BYTES = 1024 * 1024 * 1024


class TrainData:
    """Batches for one run: ``batch(epoch, start, size)`` is a pure function of (seed, epoch, start, size)."""

    def __init__(self, composition_dir, cfg, data_mode: str, device=None):
        """``device``: decode the train images once into uint8 tensors there (if they fit RESIDENT_BYTES) and
        build batches on it; None keeps the lazy CPU path. ``self.note`` says which path was taken."""
        self.comp = Composition.open(composition_dir)
        self.cfg = cfg
        self.mode = data_mode
        self.size = cfg.image_size
        self.load = cfg.load_size or cfg.image_size
        a_pairs = self.comp.pairs["trainA"]
        self.n_b = len(self.comp.files["trainB"])
        paired = [i for i, p in enumerate(a_pairs) if p is not None]
        unpaired = [i for i, p in enumerate(a_pairs) if p is None]
        self.copies = 1
        if data_mode == "aligned":
            if not paired:
                raise UserError(f"pix2pix needs explicit pairs, but composition {self.comp.root.name} has none.")
            a_list = paired
        elif data_mode == "hybrid":
            copies = cfg.paired_repeats
            if copies == 0:  # paper 002 Sec. 4.1.5: as many paired repeats as unpaired samples
                copies = max(1, round(len(unpaired) / len(paired))) if paired else 1
            self.copies = copies
            a_list = unpaired + paired * copies
        else:
            a_list = list(range(len(a_pairs)))
        self.a_list = np.asarray(sorted(a_list), dtype=np.int64)
        self.n_paired = len(paired)
        # The reference's unaligned dataset is as long as the larger domain; A wraps around when B is larger.
        self.length = len(self.a_list) if data_mode == "aligned" else max(len(self.a_list), self.n_b)
        self._plan_epoch, self._plan = None, None
        self._cache: dict = {}
        self._cache_bytes = 0
        self.device = torch.device(device) if device is not None else None
        self.resident: dict | None = None   # "trainA"/"trainB" -> uint8 N x 3 x L x L on self.device
        self._dplan_epoch, self._dplan = None, None
        self.note = ""
        if self.device is not None:
            self._make_resident()

    def iters_per_epoch(self) -> int:
        return math.ceil(self.length / self.cfg.batch_size)

    # ----- the epoch plan --------------------------------------------------------------------------
    def plan(self, epoch: int) -> dict:
        """Every random choice of one epoch, drawn from a generator seeded with (seed, epoch)."""
        if self._plan_epoch == epoch:
            return self._plan
        n = self.length
        rng = np.random.default_rng([self.cfg.seed, epoch])
        perm = rng.permutation(n)
        a = self.a_list[perm % len(self.a_list)]
        b = rng.integers(0, self.n_b, n)
        flip = rng.random((n, 2)) < 0.5 if self.cfg.flip else np.zeros((n, 2), bool)
        crop = rng.integers(0, self.load - self.size + 1, (n, 4))
        plan = {"a": a, "b": b, "flip": flip, "crop": crop}
        self._plan_epoch, self._plan = epoch, plan
        return plan

    def batch(self, epoch: int, start: int, size: int) -> dict:
        """Samples start .. start+size-1 of the epoch: {"A", "B" (float B x 3 x S x S in [-1, 1]), "paired" (B,),
        "pair" (the known pair of each A, zeros where none, only with implicit_pair_loss; else None)}.
        On the resident path the tensors are on the training device, else on the CPU."""
        if self.resident is not None:
            return self._device_batch(epoch, start, size)
        return self.lazy_batch(epoch, start, size)

    def lazy_batch(self, epoch: int, start: int, size: int) -> dict:
        """``batch`` made on the CPU from decoded images (the reference for the resident path)."""
        plan = self.plan(epoch)
        files_a, files_b = self.comp.files["trainA"], self.comp.files["trainB"]
        pairs = self.comp.pairs["trainA"]
        want_pair = self.mode == "unaligned" and self.cfg.implicit_pair_loss
        A, B, P, paired = [], [], [], []
        for i in range(start, min(start + size, self.length)):
            ai = int(plan["a"][i])
            flip_a, flip_b = plan["flip"][i]
            crop_a, crop_b = plan["crop"][i][:2], plan["crop"][i][2:]
            pair = pairs[ai]
            A.append(self._image("trainA", files_a[ai], crop_a, flip_a))
            if pair is not None and self.mode in ("aligned", "hybrid"):
                # A known pair is aligned with its A image: same crop, same flip.
                B.append(self._image("trainB", pair, crop_a, flip_a))
            else:
                B.append(self._image("trainB", files_b[int(plan["b"][i])], crop_b, flip_b))
            if want_pair:
                P.append(self._image("trainB", pair, crop_a, flip_a) if pair is not None else torch.zeros_like(A[-1]))
            paired.append(1.0 if pair is not None else 0.0)
        out = {"A": torch.stack(A), "B": torch.stack(B), "paired": torch.tensor(paired)}
        out["pair"] = torch.stack(P) if want_pair else None
        return out

    # ----- the resident path ------------------------------------------------------------------------
    def _make_resident(self) -> None:
        names = {split: self.comp.files[split] for split in ("trainA", "trainB")}
        count = sum(len(v) for v in names.values())
        need = count * 3 * self.load * self.load
        budget = RESIDENT_BYTES
        if self.device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(self.device)
            budget = min(budget, free // 4)
        if need > budget:
            self.note = (f"data: {count} train images at {self.load}x{self.load} need {need / 2**20:.0f} MiB, over the "
                         f"{budget / 2**20:.0f} MiB budget for resident data, so they are decoded lazily on the CPU")
            return
        resident = {}
        for split, files in names.items():
            host = np.empty((len(files), 3, self.load, self.load), dtype=np.uint8)
            for i, name in enumerate(files):
                host[i] = _decode(self.comp.path(split, name), self.load).transpose(2, 0, 1)
            resident[split] = torch.from_numpy(host).to(self.device)
        self.resident = resident
        self.b_index = {name: i for i, name in enumerate(names["trainB"])}
        self._arange = torch.arange(self.size, device=self.device)
        self._channels = torch.arange(3, device=self.device)
        self.note = (f"data: {count} train images decoded once into uint8 tensors on {self.device} "
                     f"({need / 2**20:.1f} MiB); crops and flips on the device")

    def device_plan(self, epoch: int) -> dict:
        """The epoch plan resolved to image indices, crops and flips for A, B and the known pair, on the device."""
        if self._dplan_epoch == epoch:
            return self._dplan
        plan = self.plan(epoch)
        pairs = self.comp.pairs["trainA"]
        n = self.length
        pair_of = np.array([self.b_index[p] if p is not None else -1 for p in pairs], dtype=np.int64)[plan["a"]]
        has_pair = pair_of >= 0
        use_pair = has_pair & (self.mode in ("aligned", "hybrid"))  # a known pair is B, with A's crop and flip
        b = np.where(use_pair, pair_of, plan["b"])
        crop_b = np.where(use_pair[:, None], plan["crop"][:, :2], plan["crop"][:, 2:])
        flip_b = np.where(use_pair, plan["flip"][:, 0], plan["flip"][:, 1])
        host = {
            "a": plan["a"], "b": b, "crop_a": plan["crop"][:, :2], "crop_b": crop_b,
            "flip_a": plan["flip"][:, 0], "flip_b": flip_b, "paired": has_pair.astype(np.float32),
            "pair": np.maximum(pair_of, 0), "has_pair": has_pair,
        }
        assert all(len(v) == n for v in host.values())
        dplan = {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for k, v in host.items()}
        self._dplan_epoch, self._dplan = epoch, dplan
        return dplan

    def _gather(self, images: torch.Tensor, idx, crop, flip) -> torch.Tensor:
        """images[idx] cropped at crop (y, x) to size x size, mirrored where flip, as float in [-1, 1]: one gather."""
        ar = self._arange
        rows = crop[:, 0:1] + ar                                              # b x S
        cols = crop[:, 1:2] + torch.where(flip[:, None], self.size - 1 - ar, ar)  # b x S
        out = images[idx[:, None, None, None], self._channels[None, :, None, None], rows[:, None, :, None],
                     cols[:, None, None, :]]
        return out.float().div(127.5).sub(1.0)

    def _device_batch(self, epoch: int, start: int, size: int) -> dict:
        d = self.device_plan(epoch)
        sl = slice(start, min(start + size, self.length))
        A = self._gather(self.resident["trainA"], d["a"][sl], d["crop_a"][sl], d["flip_a"][sl])
        B = self._gather(self.resident["trainB"], d["b"][sl], d["crop_b"][sl], d["flip_b"][sl])
        out = {"A": A, "B": B, "paired": d["paired"][sl], "pair": None}
        if self.mode == "unaligned" and self.cfg.implicit_pair_loss:
            P = self._gather(self.resident["trainB"], d["pair"][sl], d["crop_a"][sl], d["flip_a"][sl])
            out["pair"] = torch.where(d["has_pair"][sl][:, None, None, None], P, torch.zeros((), device=P.device))
        return out

    # ----- images ----------------------------------------------------------------------------------
    def _resized(self, split: str, name: str, size: int) -> np.ndarray:
        return self._resized_path(self.comp.path(split, name), size)

    def _resized_path(self, path: Path, size: int) -> np.ndarray:
        key = (str(path), size)
        arr = self._cache.get(key)
        if arr is None:
            arr = _decode(path, size)
            if self._cache_bytes + arr.nbytes <= CACHE_BYTES:  # small compositions stay in memory
                self._cache[key] = arr
                self._cache_bytes += arr.nbytes
        return arr

    def _image(self, split, name, crop, flip) -> torch.Tensor:
        arr = self._resized(split, name, self.load)
        y, x = int(crop[0]), int(crop[1])
        arr = arr[y:y + self.size, x:x + self.size]
        if flip:
            arr = arr[:, ::-1]
        return to_tensor(arr)

    def sample_images(self, n: int):
        """Fixed images for the sample grid: the first n of testA (with known pairs) and of testB.

        Falls back to the train split when a test split is empty. Resized to image_size, never flipped.
        """
        split_a = "testA" if self.comp.files["testA"] else "trainA"
        split_b = "testB" if self.comp.files["testB"] else "trainB"
        names_a = self.comp.files[split_a][:n]
        names_b = self.comp.files[split_b][:n]
        load = lambda split, name: to_tensor(self._resized(split, name, self.size))
        a = torch.stack([load(split_a, x) for x in names_a]) if names_a else torch.zeros(0, 3, self.size, self.size)
        b = torch.stack([load(split_b, x) for x in names_b]) if names_b else torch.zeros(0, 3, self.size, self.size)
        # The target of a test A image: its pair in testB, else the ground truth T(a) the composition ships.
        b_of_a = []
        for i, pair in enumerate(self.comp.pairs[split_a][:n]):
            truth = self.comp.truths.get(split_a, [None] * n)[i] if split_a == "testA" else None
            if pair is not None:
                b_of_a.append(load(split_a[:-1] + "B", pair))
            elif truth is not None and (self.comp.root / truth).is_file():
                b_of_a.append(to_tensor(self._resized_path(self.comp.root / truth, self.size)))
            else:
                b_of_a.append(None)
        return a, b, b_of_a


def _decode(path: Path, size: int) -> np.ndarray:
    """The image at ``path`` as uint8 size x size x 3 (bicubic resize, as the reference)."""
    img = load_rgb(path)
    if img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    return np.asarray(img, dtype=np.uint8)


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float 3xHxW in [-1, 1] (the reference's Normalize((0.5,)*3, (0.5,)*3))."""
    return torch.from_numpy(np.array(arr, dtype=np.uint8)).permute(2, 0, 1).float().div(127.5).sub(1.0)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """float 3xHxW in [-1, 1] -> uint8 HxWx3."""
    return ((t.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
