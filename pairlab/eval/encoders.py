"""Encoders the metrics use: an identity encoder (FaceNet, or one trained in the lab) and attribute classifiers.

Identity (InfoSIM)
------------------
- **FaceNet** (facenet-pytorch ``InceptionResnetV1``, VGGFace2 weights) when ``20180402-114759-vggface2.pt`` is in
  ``$TORCH_HOME/checkpoints/``: 160x160 input, 512-d L2-normalised embeddings. Never downloaded.
- Otherwise the **lab identity encoder**: a small CNN trained on the source's identity labels
  (``identity_CelebA.txt``; SynthFaces writes one) from its train and validation partitions only. A share of those
  identities (``HOLDOUT_SHARE``) is held out of training to measure verification accuracy; test-partition
  identities are never trained on. It is trained to be invariant to the task attributes, as OpenFace is to smiles and
  glasses: every training image is shown as itself or as its attribute-toggled version with the same identity label
  (SynthFaces ships the true toggles T(a); other sources get pseudo-eyeglasses / pseudo-smile from
  ``pairlab.data.synthesizers`` on faces with landmarks). Loss: a cosine-softmax (CosFace) head over the training
  identities on a 64-d L2-normalised embedding, with random shifts and flips.

  Verification accuracy: every same-identity pair of held-out images (real images only, not toggles) and as many
  random different-identity pairs; a pair is "same" when the squared embedding distance is below a threshold chosen
  on the other folds (10-fold cross-validation, as in the LFW protocol).

Attribute classifier (task completion)
--------------------------------------
The paper's "simple CNN": five conv-BN-ReLU layers and a 128-unit penultimate layer, trained with a logistic loss
on the source's **validation** partition (no composition uses it), plus the true attribute toggles when the source
has them (balanced classes). A quarter of the validation identities is held out for its own accuracy; its accuracy
on the source's test partition (real images, never trained on) is reported too.

Both are cached per source fingerprint (and attribute) under ``workspace/cache/encoders/`` as plain-tensor files
(loaded with ``weights_only=True``). Images are given as uint8 arrays (N, H, W, 3) or lists of them / PIL images,
or float tensors (N, 3, H, W) in [-1, 1]; they are resized to the encoder's input size (64x64).
"""
from __future__ import annotations

import os
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from .. import workspace
from ..errors import UserError

VERSION = 1
INPUT_SIZE = 64
HOLDOUT_SHARE = 0.2
CLASSIFIER_HOLDOUT_SHARE = 0.25
FACENET_FILE = "20180402-114759-vggface2.pt"
MAX_TRAIN_IMAGES = 6000


# ================================================================================ images in
def to_input(images, size: int = INPUT_SIZE) -> torch.Tensor:
    """Any accepted image batch -> float (N, 3, size, size) in [-1, 1] on the CPU."""
    if torch.is_tensor(images):
        x = images.detach().float().cpu()
        if x.ndim == 3:
            x = x[None]
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp(-1, 1)
        return x
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = images[None]
    arrays = []
    for im in images:
        if isinstance(im, (str, os.PathLike)):
            from ..data.images import load_rgb

            im = load_rgb(im)
        if isinstance(im, Image.Image):
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BICUBIC)
            arr = np.asarray(im, dtype=np.uint8)
        else:
            arr = np.asarray(im, dtype=np.uint8)
            if arr.shape[:2] != (size, size):
                arr = np.asarray(Image.fromarray(arr).resize((size, size), Image.BICUBIC), dtype=np.uint8)
        arrays.append(arr)
    if not arrays:
        return torch.zeros(0, 3, size, size)
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
    return x.div(127.5).sub(1.0)


def _device(device="auto") -> torch.device:
    from ..train.device import pick_device

    return pick_device(device)


# ================================================================================ the simple CNN
class SimpleCNN(nn.Module):
    """conv-BN-ReLU x5 (64 -> 32 -> 16 -> 16 -> 8 -> 4 pixels), a 128-unit penultimate layer, a linear head."""

    def __init__(self, out_dim: int, width: int = 16, feat_dim: int = 128, normalize: bool = False):
        super().__init__()
        w = width

        def block(i, o, s):
            return [nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(*block(3, w, 2), *block(w, 2 * w, 2), *block(2 * w, 2 * w, 1),
                                  *block(2 * w, 4 * w, 2), *block(4 * w, 8 * w, 2), nn.Flatten())
        self.neck = nn.Sequential(nn.Dropout(0.2), nn.Linear(8 * w * 16, feat_dim), nn.BatchNorm1d(feat_dim))
        self.normalize = normalize
        self.head = nn.Linear(feat_dim, out_dim) if out_dim else None
        self.config = {"out_dim": out_dim, "width": width, "feat_dim": feat_dim, "normalize": normalize}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        f = self.neck(self.body(x))
        return F.normalize(f, dim=1) if self.normalize else F.relu(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return self.head(f) if self.head is not None else f


class CosineHead(nn.Module):
    """CosFace: s * (cos(theta) - m on the target class)."""

    def __init__(self, dim: int, classes: int, s: float = 16.0, m: float = 0.25):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, dim) * 0.01)
        self.s, self.m = s, m

    def forward(self, emb: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cos = F.normalize(emb, dim=1) @ F.normalize(self.weight, dim=1).t()
        if labels is not None:
            cos = cos - self.m * F.one_hot(labels, cos.shape[1]).to(cos.dtype)
        return self.s * cos


def _augment(x: torch.Tensor, gen: torch.Generator, shift: int = 4) -> torch.Tensor:
    """Random shifts (reflect pad + crop) and horizontal flips, per image."""
    n, _, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift), mode="reflect")
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # (n, h)
    cols = (dx[:, None] + torch.arange(w)[None, :])  # (n, w)
    out = padded[torch.arange(n)[:, None, None, None], torch.arange(3)[None, :, None, None],
                 rows[:, None, :, None], cols[:, None, None, :]]
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


def _batched(fn, x: torch.Tensor, device: torch.device, bs: int = 256) -> torch.Tensor:
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), bs):
            outs.append(fn(x[i:i + bs].to(device)).float().cpu())
    return torch.cat(outs) if outs else torch.zeros(0)


# ================================================================================ reading a source
def _source_images(samples, variants_for, progress=None, what="images"):
    """(N, K, 3, S, S) uint8 tensor of each sample's variants (K fixed: missing variants repeat the image)."""
    from ..data.compose import prepare

    rows = []
    for i, s in enumerate(samples):
        img, pts = prepare(s.ref.load(), s.landmarks, INPUT_SIZE)
        rows.append(variants_for(s, np.asarray(img, dtype=np.uint8), pts))
        if progress and (i % 64 == 0 or i == len(samples) - 1):
            progress(0.25 * (i + 1) / len(samples), f"Reading {what} {i + 1}/{len(samples)}")
    k = max(len(r) for r in rows)
    rows = [r + [r[0]] * (k - len(r)) for r in rows]
    arr = np.stack([np.stack(r) for r in rows])  # (N, K, S, S, 3)
    return torch.from_numpy(arr).permute(0, 1, 4, 2, 3).contiguous()


def _toggles(source, sample, base: np.ndarray, pts, attributes, rng) -> list[np.ndarray]:
    """The same identity with each task attribute toggled: the source's truth renders, else pseudo-samples."""
    from ..data.compose import prepare
    from ..data import celeba

    out = []
    for attr in attributes:
        ref = (sample.truth or {}).get(attr)
        if ref is not None:
            try:
                out.append(np.asarray(prepare(ref.load(), None, INPUT_SIZE)[0], dtype=np.uint8))
                continue
            except UserError:
                pass
        task = next((t for t, a in celeba.TASK_ATTRIBUTE.items() if a == attr), None)
        has = (sample.attrs or {}).get(attr) == 1
        if task is None or has or pts is None:
            continue  # a synthesizer only adds the attribute (M ~ T^-1), and needs landmarks
        from ..data.synthesizers import get_synthesizer

        synth = get_synthesizer(task)
        try:
            out.append(synth(base, pts, rng)[0])
        except UserError:
            continue
    return out


def _split_identities(ids: np.ndarray, share: float, seed: int, min_images: int = 2):
    """Hold out a seeded share of identities (those with at least ``min_images`` images are preferred)."""
    uniq, counts = np.unique(ids, return_counts=True)
    rng = np.random.default_rng(seed)
    eligible = uniq[counts >= min_images]
    k = max(2, int(round(share * len(uniq))))
    k = min(k, max(len(eligible) - 1, 0))
    held = set(rng.permutation(eligible)[:k].tolist()) if k > 0 else set()
    return np.array([i in held for i in ids])


# ================================================================================ the lab identity encoder
class IdentityEncoder:
    """embed(images) -> (N, D) L2-normalised embeddings; ``name`` and ``meta`` describe it."""

    name = "identity encoder"
    meta: dict = {}

    def embed(self, images) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


class LabIdentityEncoder(IdentityEncoder):
    def __init__(self, net: SimpleCNN, meta: dict, device="auto"):
        self.device = _device(device)
        self.net = net.to(self.device).eval()
        self.meta = meta
        self.name = f"lab identity encoder ({meta.get('source_name', '?')})"
        self.short = "lab"

    def embed(self, images) -> np.ndarray:
        x = to_input(images)
        return _batched(self.net.features, x, self.device).numpy()

    def describe(self) -> str:
        acc = self.meta.get("verification_accuracy")
        return (f"{self.name}, verification accuracy {acc:.3f} on {self.meta.get('heldout_identities')} held-out "
                f"identities" if acc is not None else self.name)


class FaceNetEncoder(IdentityEncoder):
    def __init__(self, weights: Path, device="auto"):
        from facenet_pytorch import InceptionResnetV1

        self.device = _device(device)
        net = InceptionResnetV1(pretrained=None, classify=False)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise UserError(f"The FaceNet weight file {weights} is unreadable ({type(exc).__name__}).")
        state = {k: v for k, v in state.items() if not k.startswith("logits.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing:
            raise UserError(f"The FaceNet weight file {weights.name} does not fit InceptionResnetV1 "
                            f"({len(missing)} tensors missing).")
        self.net = net.to(self.device).eval()
        self.name = "FaceNet (InceptionResnetV1, VGGFace2)"
        self.short = "facenet"
        self.meta = {"kind": "facenet", "weights": str(weights), "verification_accuracy": None}

    def embed(self, images) -> np.ndarray:
        x = to_input(images, 160)  # [-1, 1] ~ facenet's fixed standardisation (x - 127.5) / 128
        x = x * (127.5 / 128.0)
        return _batched(self.net, x, self.device, bs=64).numpy()


def torch_home() -> Path:
    return Path(os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))))


def facenet_weights() -> Path | None:
    path = torch_home() / "checkpoints" / FACENET_FILE
    return path if path.is_file() else None


def _cache_dir() -> Path:
    folder = workspace.sub("cache") / "encoders"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def identity_cache_file(fingerprint: str) -> Path:
    return _cache_dir() / f"identity-v{VERSION}-{fingerprint}.pt"


def attribute_cache_file(fingerprint: str, attribute: str) -> Path:
    return _cache_dir() / f"attribute-v{VERSION}-{fingerprint}-{attribute}.pt"


def _save(path: Path, net: SimpleCNN, meta: dict, extra: dict | None = None) -> None:
    from ..train.checkpoint import save_atomic

    blob = {"format": f"pairlab-encoder-{VERSION}", "config": dict(net.config), "state": net.state_dict(),
            "meta": meta}
    if extra:
        blob.update(extra)
    save_atomic(blob, path)


def _load(path: Path):
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        net = SimpleCNN(**blob["config"])
        net.load_state_dict(blob["state"])
        return net.eval(), blob["meta"]
    except Exception:
        return None, None


def _train_loop(net, head, x, labels, steps: int, batch: int, lr: float, seed: int, loss_fn, progress=None,
                what: str = "Training", device=None):
    """Adam with cosine decay over ``steps``; x is (N, K, 3, S, S) uint8 and a random variant is drawn per sample."""
    device = device or torch.device("cpu")
    gen = torch.Generator().manual_seed(seed)
    params = list(net.parameters()) + (list(head.parameters()) if head is not None else [])
    opt = torch.optim.Adam(params, lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
    net.train()
    if head is not None:
        head.train()
    n, k = x.shape[0], x.shape[1]
    perm, pos = torch.randperm(n, generator=gen), 0
    for step in range(steps):
        if pos + batch > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos:pos + min(batch, n)]
        pos += len(idx)
        var = torch.randint(0, k, (len(idx),), generator=gen)
        xb = x[idx, var].float().div(127.5).sub(1.0)
        xb = _augment(xb, gen).to(device)
        loss = loss_fn(net, head, xb, labels[idx], var)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress and (step % 20 == 0 or step == steps - 1):
            progress(0.3 + 0.6 * (step + 1) / steps, f"{what}: step {step + 1}/{steps}, loss {float(loss.detach()):.3f}")
    net.eval()
    return net


def verification_accuracy(emb: np.ndarray, ids: np.ndarray, seed: int = 0, folds: int = 10,
                          max_pairs: int = 6000) -> dict:
    """Verification on all same-identity pairs and as many random different-identity pairs (10-fold thresholds)."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    iu, ju = np.triu_indices(n, 1)
    same_mask = ids[iu] == ids[ju]
    same = np.flatnonzero(same_mask)
    diff = np.flatnonzero(~same_mask)
    if len(same) == 0 or len(diff) == 0:
        return {"verification_accuracy": None, "pairs": 0}
    if len(same) > max_pairs // 2:
        same = rng.choice(same, max_pairs // 2, replace=False)
    diff = rng.choice(diff, min(len(diff), len(same)), replace=False)
    pick = np.concatenate([same, diff])
    label = np.concatenate([np.ones(len(same), bool), np.zeros(len(diff), bool)])
    d = ((emb[iu[pick]] - emb[ju[pick]]) ** 2).sum(1)
    order = rng.permutation(len(pick))
    d, label = d[order], label[order]
    fold_of = np.arange(len(d)) % max(2, min(folds, len(d)))
    correct = 0
    for f in np.unique(fold_of):
        tr, te = fold_of != f, fold_of == f
        cands = np.unique(d[tr])
        cands = np.concatenate([cands, [cands[-1] + 1e-6]]) if len(cands) else np.array([0.0])
        accs = [((d[tr] < t) == label[tr]).mean() for t in cands] if len(cands) < 4000 else None
        if accs is None:
            qs = np.quantile(d[tr], np.linspace(0, 1, 2001))
            accs = [((d[tr] < t) == label[tr]).mean() for t in qs]
            cands = qs
        t = cands[int(np.argmax(accs))]
        correct += int(((d[te] < t) == label[te]).sum())
    try:
        from sklearn.metrics import roc_auc_score

        auc = float(roc_auc_score(label, -d))
    except Exception:
        auc = None
    return {"verification_accuracy": correct / len(d), "pairs": int(len(d)), "same_pairs": int(label.sum()),
            "auc": auc, "mean_sq_dist_same": float(d[label].mean()), "mean_sq_dist_different": float(d[~label].mean())}


def _identity_samples(source):
    if "identities" not in source.knows:
        raise UserError(f"The source {source.name} has no identity labels (identity_CelebA.txt), so the lab cannot "
                        "train an identity encoder for InfoSIM.")
    samples = [s for s in source.samples if s.identity is not None and s.partition in ("train", "val")]
    if len(samples) > MAX_TRAIN_IMAGES:  # large sources (real CelebA): a seeded subset keeps training quick
        keep = np.random.default_rng(0).permutation(len(samples))[:MAX_TRAIN_IMAGES]
        samples = [samples[i] for i in sorted(keep)]
    if len({s.identity for s in samples}) < 6:
        raise UserError(f"The source {source.name} has fewer than 6 identities in its train and validation "
                        "partitions, too few to train an identity encoder.")
    return samples


def train_identity_encoder(source, progress=None, steps: int | None = None, seed: int = 0, device="auto",
                           attributes=("Eyeglasses", "Smiling")) -> tuple[SimpleCNN, dict]:
    """Train the lab identity encoder on a source (train + val partitions, minus held-out identities)."""
    t0 = time.time()
    dev = _device(device)
    samples = _identity_samples(source)
    rng = np.random.default_rng(seed)
    attrs = [a for a in attributes if "attributes" in source.knows or "pairs" in source.knows]
    x = _source_images(samples, lambda s, img, pts: [img] + _toggles(source, s, img, pts, attrs, rng), progress,
                       "identity images")
    ids = np.array([s.identity for s in samples])
    held = _split_identities(ids, HOLDOUT_SHARE, seed)
    train_ids = np.unique(ids[~held])
    label_of = {v: i for i, v in enumerate(train_ids)}
    xt = x[torch.from_numpy(~held)]
    yt = torch.tensor([label_of[v] for v in ids[~held]])
    steps = steps or int(min(900, max(300, 1.0 * len(xt))))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SimpleCNN(out_dim=0, width=16, feat_dim=64, normalize=True).to(dev)
        head = CosineHead(64, len(train_ids)).to(dev)

        def loss_fn(net, head, xb, yb, var):
            return F.cross_entropy(head(net.features(xb), yb.to(xb.device)), yb.to(xb.device))

        _train_loop(net, head, xt, yt, steps, 64, 3e-3, seed, loss_fn, progress, "Training the identity encoder", dev)
    train_s = time.time() - t0
    net = net.cpu().eval()
    meta = {"kind": "lab-identity", "version": VERSION, "source_name": source.name,
            "source_fingerprint": source.fingerprint(), "train_images": int(len(xt)),
            "train_identities": int(len(train_ids)), "variants_per_image": int(x.shape[1]),
            "invariance": ("true attribute toggles (" + ", ".join(attrs) + ")") if any(s.truth for s in samples)
            else ("pseudo-eyeglasses / pseudo-smile" if x.shape[1] > 1 else "none (no toggles or landmarks)"),
            "steps": steps, "seed": seed, "train_seconds": round(train_s, 2)}
    if held.any():
        xh = x[torch.from_numpy(held)]
        emb = _batched(net.features, xh[:, 0].float().div(127.5).sub(1.0), torch.device("cpu")).numpy()
        ver = verification_accuracy(emb, ids[held], seed)
        if xh.shape[1] > 1:  # how far an attribute toggle moves the embedding (the InfoSIM of a perfect translation)
            emb_t = _batched(net.features, xh[:, 1].float().div(127.5).sub(1.0), torch.device("cpu")).numpy()
            ver["mean_sq_dist_toggle"] = float(((emb - emb_t) ** 2).sum(1).mean())
        meta.update(ver)
        meta["heldout_identities"] = int(len(np.unique(ids[held])))
        meta["heldout_images"] = int(held.sum())
    else:
        meta.update({"verification_accuracy": None, "heldout_identities": 0, "heldout_images": 0})
    meta["embedding_dim"] = 64
    meta["seconds"] = round(time.time() - t0, 2)
    if progress:
        progress(1.0, "Identity encoder ready")
    return net, meta


def lab_identity_encoder(source=None, fingerprint: str | None = None, progress=None, device="auto",
                         retrain: bool = False) -> LabIdentityEncoder:
    """The cached lab identity encoder of a source (trained on first use). With only a fingerprint (the source is
    gone), a cached one is returned or a one-sentence error raised."""
    fp = source.fingerprint() if source is not None else fingerprint
    path = identity_cache_file(fp)
    if path.exists() and not retrain:
        net, meta = _load(path)
        if net is not None:
            return LabIdentityEncoder(net, dict(meta, cached=True), device)
    if source is None:
        raise UserError("The composition's source is gone and no identity encoder was cached for it, so InfoSIM "
                        "needs FaceNet weights (put 20180402-114759-vggface2.pt in $TORCH_HOME/checkpoints/).")
    net, meta = train_identity_encoder(source, progress, device=device)
    _save(path, net, meta)
    return LabIdentityEncoder(net, dict(meta, cached=False), device)


_FACENET: dict = {}


def facenet_encoder(device="auto") -> FaceNetEncoder | None:
    """FaceNet built from its weight file (kept in memory per file and device), or None without the file."""
    weights = facenet_weights()
    if weights is None:
        return None
    key = (str(weights), weights.stat().st_mtime_ns, str(_device(device)))
    if key not in _FACENET:
        _FACENET.clear()
        _FACENET[key] = FaceNetEncoder(weights, device)
    return _FACENET[key]


def identity_encoder(source=None, fingerprint: str | None = None, progress=None, device="auto",
                     prefer: str = "auto") -> IdentityEncoder:
    """FaceNet when its weights are present (and prefer is auto/facenet), else the lab encoder."""
    if prefer in ("auto", "facenet"):
        enc = facenet_encoder(device)
        if enc is not None:
            return enc
    if prefer == "facenet":
        raise UserError(f"FaceNet needs {FACENET_FILE} in {torch_home() / 'checkpoints'}; it is never downloaded.")
    return lab_identity_encoder(source, fingerprint, progress, device)


# ================================================================================ the attribute classifier
class AttributeClassifier:
    """p(attribute | image) and the penultimate-layer features of the simple CNN."""

    def __init__(self, net: SimpleCNN, meta: dict, device="auto"):
        self.device = _device(device)
        self.net = net.to(self.device).eval()
        self.meta = meta
        self.attribute = meta.get("attribute", "")

    def predict_proba(self, images) -> np.ndarray:
        x = to_input(images)
        return torch.sigmoid(_batched(self.net, x, self.device)[:, 0]).numpy()

    def features(self, images) -> np.ndarray:
        x = to_input(images)
        return _batched(self.net.features, x, self.device).numpy()

    def describe(self) -> str:
        acc = self.meta.get("heldout_accuracy")
        return f"{self.attribute} classifier, held-out accuracy {acc:.3f}" if acc is not None else f"{self.attribute} classifier"


def _attribute_samples(source, attribute: str, partition: str):
    if "attributes" not in source.knows:
        raise UserError(f"The source {source.name} has no attribute labels, so no {attribute} classifier can be "
                        "trained for task completion.")
    if source.samples and attribute not in (source.samples[0].attrs or {}):
        raise UserError(f"The source {source.name} has no '{attribute}' attribute column.")
    return [s for s in source.samples if s.partition == partition and s.attrs]


def train_attribute_classifier(source, attribute: str, progress=None, steps: int | None = None, seed: int = 0,
                               device="auto") -> tuple[SimpleCNN, dict]:
    """Train the simple CNN on the source's validation partition (a quarter of its identities held out)."""
    t0 = time.time()
    dev = _device(device)
    samples = _attribute_samples(source, attribute, "val")
    if len(samples) > MAX_TRAIN_IMAGES:
        keep = np.random.default_rng(0).permutation(len(samples))[:MAX_TRAIN_IMAGES]
        samples = [samples[i] for i in sorted(keep)]
    labels = np.array([1.0 if s.attrs.get(attribute) == 1 else 0.0 for s in samples], dtype=np.float32)
    if len(samples) < 8 or labels.min() == labels.max():
        raise UserError(f"The validation partition of {source.name} has too few images with and without "
                        f"{attribute} ({int(labels.sum())} with, {int(len(labels) - labels.sum())} without) to train "
                        "a classifier.")
    has_truth = any((s.truth or {}).get(attribute) is not None for s in samples)

    def variants(s, img, pts):
        out = [img]
        ref = (s.truth or {}).get(attribute)
        if ref is not None:
            from ..data.compose import prepare

            out.append(np.asarray(prepare(ref.load(), None, INPUT_SIZE)[0], dtype=np.uint8))
        return out

    x = _source_images(samples, variants, progress, f"{attribute} images")
    ids = np.array([s.identity if s.identity is not None else zlib.crc32(s.name.encode()) for s in samples])
    held = _split_identities(ids, CLASSIFIER_HOLDOUT_SHARE, seed, min_images=1)
    xt, yt = x[torch.from_numpy(~held)], torch.from_numpy(labels[~held])
    pos_weight = None
    if not has_truth:  # unbalanced real attributes: weight the rarer class up
        p = float(yt.mean())
        pos_weight = torch.tensor([(1 - p) / max(p, 1e-3)])
    steps = steps or int(min(600, max(250, 1.5 * len(xt))))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SimpleCNN(out_dim=1, width=16, feat_dim=128).to(dev)

        def loss_fn(net, head, xb, yb, var):
            # variant 1 is the attribute-toggled truth: its label flips
            y = torch.where(var == 1, 1.0 - yb, yb).to(xb.device)
            return F.binary_cross_entropy_with_logits(net(xb)[:, 0], y,
                                                      pos_weight=pos_weight.to(xb.device) if pos_weight is not None else None)

        _train_loop(net, None, xt, yt, steps, 64, 3e-3, seed, loss_fn, progress, f"Training the {attribute} classifier", dev)
    net = net.cpu().eval()
    train_s = time.time() - t0

    def accuracy(xs: torch.Tensor, ys: np.ndarray) -> float | None:
        if len(xs) == 0:
            return None
        p = torch.sigmoid(_batched(net, xs.float().div(127.5).sub(1.0), torch.device("cpu"))[:, 0]).numpy()
        return float(((p > 0.5) == (ys > 0.5)).mean())

    meta = {"kind": "attribute-classifier", "version": VERSION, "attribute": attribute, "source_name": source.name,
            "source_fingerprint": source.fingerprint(), "partition": "val", "train_images": int(len(xt)),
            "uses_truth_toggles": has_truth, "steps": steps, "seed": seed, "train_seconds": round(train_s, 2)}
    if held.any():
        xh, yh = x[torch.from_numpy(held)], labels[held]
        xs, ys = [xh[:, 0]], [yh]
        if has_truth:
            xs.append(xh[:, 1])
            ys.append(1.0 - yh)
        meta["heldout_accuracy"] = accuracy(torch.cat(xs), np.concatenate(ys))
        meta["heldout_images"] = int(sum(len(v) for v in ys))
        meta["heldout_identities"] = int(len(np.unique(ids[held])))
    else:
        meta.update({"heldout_accuracy": None, "heldout_images": 0})
    # The test partition's real images were never trained on: a second, larger check.
    test = _attribute_samples(source, attribute, "test")[:2000]
    if test:
        xt_test = _source_images(test, lambda s, img, pts: [img], None)
        yt_test = np.array([1.0 if s.attrs.get(attribute) == 1 else 0.0 for s in test])
        meta["test_partition_accuracy"] = accuracy(xt_test[:, 0], yt_test)
        meta["test_partition_images"] = len(test)
    meta["seconds"] = round(time.time() - t0, 2)
    if progress:
        progress(1.0, f"{attribute} classifier ready")
    return net, meta


def attribute_classifier(source=None, attribute: str = "Eyeglasses", fingerprint: str | None = None,
                         progress=None, device="auto", retrain: bool = False) -> AttributeClassifier:
    """The cached attribute classifier of a (source, attribute), trained on first use."""
    fp = source.fingerprint() if source is not None else fingerprint
    path = attribute_cache_file(fp, attribute)
    if path.exists() and not retrain:
        net, meta = _load(path)
        if net is not None:
            return AttributeClassifier(net, dict(meta, cached=True), device)
    if source is None:
        raise UserError(f"The composition's source is gone and no {attribute} classifier was cached for it, so task "
                        "completion cannot be scored.")
    net, meta = train_attribute_classifier(source, attribute, progress, device=device)
    _save(path, net, meta)
    return AttributeClassifier(net, dict(meta, cached=False), device)
