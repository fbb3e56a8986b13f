"""The metric registry: every metric declares what it needs, says in one sentence why it is unavailable, and
returns per-image values that ``pairlab.eval.evaluate`` turns into a mean with a 95% bootstrap interval.

    metric            lower/higher   needs                      what
    gt_mse            lower          truth                      MSE to the true counterpart T(x), [0, 1] pixels
    gt_l1             lower          truth                      L1 (mean absolute error) to T(x), [0, 1] pixels
    pixel_acc         higher         truth                      share of pixels whose max channel difference to T(x)
                                                                is below 20 (of 255), paper 002 Sec. 4.2.2
    psnr              higher         truth                      PSNR to T(x) in dB (torchmetrics), capped at 100
    ssim              higher         truth                      SSIM to T(x) (torchmetrics, Gaussian window)
    gt_l1_region      lower          truth                      L1 to T(x) inside the attribute region (the task:
                                                                did the attribute go, is what was under it right?)
    gt_l1_outside     lower          truth                      L1 to T(x) outside the region (preservation)
    gt_region_removed higher         truth                      share of the region's L1 removed relative to the
                                                                input unchanged: 1 perfect, 0 nothing done, < 0 worse
    label_pixel_acc   higher         truth, palette             photo -> labels: per-pixel accuracy, labels by the
    label_class_acc   higher         truth, palette             nearest palette colour (000 appendix, 002 Sec. 4.1.2);
    label_iou         higher         truth, palette             per-class accuracy and class IoU from the confusion
                                                                matrix summed over test images (Zhu's FCN script)
    infosim           lower          identity_encoder           MSE between identity embeddings of input and output
                                                                (paper 000 Sec. 5): FaceNet, else the lab encoder
    lpips             lower          truth, lpips_weights       LPIPS (AlexNet) between output and T(x)
    lpips_input       (none)         lpips_weights              LPIPS between input and output: how much changed
    task_rate         higher         attribute_classifier       share of outputs the classifier puts in the target
                                                                domain (A->B: the attribute removed)
    confidence_drop   higher         attribute_classifier       mean p(source domain | input) - p(source domain |
                                                                output) (thesis 004's drop in confidence)

A metric is a ``Metric`` (name, label, direction of goodness, needs, compute, optional reduce). ``compute(ctx)``
returns one value per test image (NaN where it does not apply, e.g. no truth) or per-image sufficient statistics
(n, k) with a ``reduce`` that maps their mean to the metric (class IoU). Needs are checked by ``EvalContext.check``;
``Metric.available(ctx) -> (ok, sentence)``. ``input_vs_output`` marks metrics that compare each output with its own
input: they are 0 by construction for the input-unchanged (identity map) baseline, so they do not apply to it.

The attribute region (``attribute_region``): where a test image and its true counterpart differ by more than
``REGION_THRESHOLD`` (of 255) in some channel, dilated by ``REGION_DILATE`` pixels. SynthFaces renders T(x) from the
same face with only the attribute toggled, so the region is where the attribute is (plus the compression noise above
the threshold); real datasets have no such truth.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import UserError
from .outputs import OutputSet

NEEDS = ("truth", "palette", "identity_encoder", "lpips_weights", "attribute_classifier")
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
PALETTE_FILE = "palette.json"
_LPIPS: dict = {}  # one LPIPS model per (weight file, device), kept between evaluations
PIXEL_THRESHOLD = 20  # paper 002 Sec. 4.2.2: max channel difference below 20 counts as correct
REGION_THRESHOLD = 16  # of 255: input and truth differ by more than this in some channel -> attribute pixel
REGION_DILATE = 2      # pixels: the region grows by a (2r+1) x (2r+1) square (edges, anti-aliasing, shadows)


# ================================================================================ the context
def alexnet_weights() -> Path | None:
    import torch

    path = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE
    return path if path.is_file() else None


def lpips_model(device="auto", random_backbone: bool = False):
    """LPIPS v0.1 with the AlexNet trunk, built without any download.

    The linear calibration layers ship inside the lpips package; the ImageNet AlexNet trunk is read from
    ``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth``. ``random_backbone=True`` (tests of the plumbing only)
    leaves the trunk random, which is not LPIPS.
    """
    import contextlib
    import io
    import warnings

    import lpips
    import torch

    from ..train.device import pick_device

    weights = None if random_backbone else alexnet_weights()
    if weights is None and not random_backbone:
        raise UserError(f"LPIPS needs the AlexNet weights {ALEXNET_FILE} in {Path(torch.hub.get_dir()) / 'checkpoints'}.")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise UserError(f"The AlexNet weight file {weights} is unreadable ({type(exc).__name__}).")
        slices = {}
        for s in range(1, 6):
            for name in getattr(model.net, f"slice{s}")._modules:
                slices[int(name)] = s
        mapped = {}
        for key, value in state.items():
            parts = key.split(".")
            if parts[0] == "features" and int(parts[1]) in slices:
                mapped[f"slice{slices[int(parts[1])]}.{parts[1]}.{parts[2]}"] = value
        missing, _ = model.net.load_state_dict(mapped, strict=False)
        if missing:
            raise UserError(f"The AlexNet weight file {weights.name} does not fit LPIPS's trunk.")
    return model.to(pick_device(device)).eval()


def read_palette(path: Path) -> dict:
    """{"domain": "A"|"B", "names": [...], "colors": (C, 3) int array, "ignore": bool array} from palette.json.

    Accepted forms: {"domain": "B", "classes": [{"name": "road", "color": [128, 64, 128], "ignore": false}, ...]},
    {"road": [128, 64, 128], ...}, or [[r, g, b], ...].
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable palette ({type(exc).__name__}).")
    domain = "B"
    if isinstance(data, dict) and "classes" in data:
        domain = str(data.get("domain", "B"))
        entries = [(c.get("name", str(i)), c.get("color"), bool(c.get("ignore", False)))
                   for i, c in enumerate(data["classes"])]
    elif isinstance(data, dict):
        entries = [(k, v, False) for k, v in data.items()]
    elif isinstance(data, list):
        entries = [(str(i), v, False) for i, v in enumerate(data)]
    else:
        raise UserError(f"{path} is not a palette: expected a list of colours or a 'classes' list.")
    try:
        colors = np.array([[int(c) for c in col] for _, col, _ in entries], dtype=np.int64)
    except (TypeError, ValueError):
        raise UserError(f"{path}: every palette colour must be three numbers from 0 to 255.")
    if colors.ndim != 2 or colors.shape[1] != 3 or len(colors) < 2 or colors.min() < 0 or colors.max() > 255:
        raise UserError(f"{path}: a palette needs at least two colours of three numbers from 0 to 255.")
    if domain not in ("A", "B"):
        raise UserError(f"{path}: the palette's domain must be 'A' or 'B', got {domain!r}.")
    return {"domain": domain, "names": [n for n, _, _ in entries], "colors": colors,
            "ignore": np.array([ig for _, _, ig in entries], dtype=bool), "path": str(path)}


def nearest_labels(images: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, H, W) class index of the nearest palette colour (squared RGB distance)."""
    x = images.astype(np.int32)[..., None, :]  # (N, H, W, 1, 3)
    d = ((x - colors.astype(np.int32)[None, None, None]) ** 2).sum(-1)
    return d.argmin(-1)


class EvalContext:
    """Everything metrics may need for one output set, loaded lazily and memoised."""

    def __init__(self, outputs: OutputSet, manifest: dict | None = None, device: str = "auto", progress=None,
                 identity: str = "auto"):
        from ..data import celeba

        self.outputs = outputs
        self.direction = outputs.direction
        self.manifest = manifest if manifest is not None else _manifest_or_empty(outputs.composition)
        self.task = self.manifest.get("task")
        self.attribute = celeba.TASK_ATTRIBUTE.get(self.task or "")
        self.device = device
        self.progress = progress or (lambda f, m: None)
        self.identity = identity
        self.notes: dict[str, str] = {}
        self.info: dict[str, dict] = {}
        self._memo: dict = {}

    # ----- memo -------------------------------------------------------------------------------------
    def memo(self, key, fn):
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    # ----- the source ---------------------------------------------------------------------------------
    @property
    def source_info(self) -> dict:
        return self.manifest.get("source") or {}

    def source(self):
        """The composition's source, or None (with ``source_problem`` set) when it cannot be opened."""
        def open_it():
            from ..data.sources import open_source, recorded_source_root

            info = self.source_info
            root = info.get("root")
            if not root:
                self._memo["source_problem"] = f"composition {self.outputs.composition.name} does not record its source"
                return None
            if info.get("kind") not in ("celeba", "synthfaces"):
                self._memo["source_problem"] = f"its source is a {info.get('kind')} folder without identity or attribute labels"
                return None
            root = recorded_source_root(info)  # the recorded folder, or the same name in a moved workspace
            if root is None:
                self._memo["source_problem"] = f"its source {info.get('root')} no longer exists (moved or deleted)"
                return None
            try:
                return open_source(root, "celeba")
            except UserError as exc:
                self._memo["source_problem"] = f"its source cannot be opened ({str(exc).rstrip('.')})"
                return None

        return self.memo("source", open_it)

    @property
    def fingerprint(self) -> str | None:
        src = self.source()
        return src.fingerprint() if src is not None else self.source_info.get("fingerprint")

    # ----- needs --------------------------------------------------------------------------------------
    def check(self, need: str) -> tuple[bool, str]:
        return self.memo(("check", need), lambda: getattr(self, f"_check_{need}")())

    def _check_truth(self):
        if self.outputs.n_truth:
            return True, ""
        return False, (f"the test set of composition {self.outputs.composition.name} has no ground truth "
                       "(true counterparts T(x)); build it from a paired source such as SynthFaces")

    def _check_palette(self):
        pal = self.palette()
        if pal is None:
            return False, (f"no label palette ({PALETTE_FILE}) in composition {self.outputs.composition.name} or its "
                           "source; add one listing each class colour to score label maps")
        if isinstance(pal, str):
            return False, pal
        target = "B" if self.direction == "AtoB" else "A"
        if pal["domain"] != target:
            return False, (f"the palette describes domain {pal['domain']} but {self.direction} translates into "
                           f"domain {target}")
        return True, ""

    def _check_identity_encoder(self):
        from . import encoders

        if self.identity in ("auto", "facenet") and encoders.facenet_weights() is not None:
            return True, ""
        if self.identity == "facenet":
            return False, (f"put FaceNet's {encoders.FACENET_FILE} in {encoders.torch_home() / 'checkpoints'} "
                           "(it is never downloaded)")
        fp = self.fingerprint
        if fp and encoders.identity_cache_file(fp).exists():
            return True, ""
        src = self.source()
        how = (f"put FaceNet's {encoders.FACENET_FILE} in {encoders.torch_home() / 'checkpoints'}, or use a source "
               "with identity labels (identity_CelebA.txt) so the lab can train an identity encoder")
        if src is None:
            return False, f"{self._memo.get('source_problem', 'the source is unknown')}; {how}"
        if "identities" not in src.knows:
            return False, f"the source {src.name} has no identity labels; {how}"
        return True, ""

    def _check_lpips_weights(self):
        if alexnet_weights() is not None:
            return True, ""
        import torch

        return False, (f"put the AlexNet weights {ALEXNET_FILE} in {Path(torch.hub.get_dir()) / 'checkpoints'} "
                       "(set TORCH_HOME; nothing is downloaded)")

    def _check_attribute_classifier(self):
        from . import encoders

        if self.attribute is None:
            return False, (f"composition {self.outputs.composition.name} has no attribute task (eyeglasses or smile) "
                           "for a classifier to check")
        fp = self.fingerprint
        if fp and encoders.attribute_cache_file(fp, self.attribute).exists():
            return True, ""
        src = self.source()
        if src is None:
            return False, f"{self._memo.get('source_problem', 'the source is unknown')}, so no {self.attribute} classifier can be trained"
        if "attributes" not in src.knows:
            return False, f"the source {src.name} has no attribute labels to train a {self.attribute} classifier"
        val = [s for s in src.samples if s.partition == "val" and s.attrs]
        with_attr = sum(1 for s in val if s.attrs.get(self.attribute) == 1)
        if len(val) < 8 or with_attr == 0 or with_attr == len(val):
            return False, (f"the validation partition of {src.name} has too few images with and without "
                           f"{self.attribute} ({with_attr} of {len(val)}) to train a classifier")
        return True, ""

    # ----- resources ----------------------------------------------------------------------------------
    def palette(self):
        def find():
            places = [self.outputs.composition / PALETTE_FILE]
            if self.source_info.get("root"):
                places.append(Path(self.source_info["root"]) / PALETTE_FILE)
            for p in places:
                if p.is_file():
                    try:
                        return read_palette(p)
                    except UserError as exc:
                        return str(exc).rstrip(".")
            return None

        return self.memo("palette", find)

    def identity_encoder(self):
        from . import encoders

        def make():
            self.progress(0.0, "Preparing the identity encoder")
            enc = encoders.identity_encoder(self.source(), self.fingerprint, self.progress, self.device, self.identity)
            self.info["identity_encoder"] = {"name": enc.name, **{k: v for k, v in enc.meta.items()
                                             if isinstance(v, (int, float, str, bool)) or v is None}}
            return enc

        return self.memo("identity_encoder", make)

    def attribute_classifier(self):
        from . import encoders

        def make():
            self.progress(0.0, f"Preparing the {self.attribute} classifier")
            clf = encoders.attribute_classifier(self.source(), self.attribute, self.fingerprint, self.progress,
                                                self.device)
            self.info["attribute_classifier"] = {k: v for k, v in clf.meta.items()
                                                 if isinstance(v, (int, float, str, bool)) or v is None}
            return clf

        return self.memo("attribute_classifier", make)

    def lpips(self):
        def make():
            weights = alexnet_weights()
            key = (str(weights), weights.stat().st_mtime_ns if weights else 0, str(self.device))
            if key not in _LPIPS:
                _LPIPS.clear()
                _LPIPS[key] = lpips_model(self.device)
            return _LPIPS[key]

        return self.memo("lpips", make)

    # ----- images -------------------------------------------------------------------------------------
    def images(self, kind: str, indices=None) -> np.ndarray:
        return self.outputs.load(kind, indices)

    def truth_pairs(self):
        """(indices with truth, outputs there, truths there) as uint8 arrays."""
        def load():
            idx = self.outputs.truth_indices()
            return idx, self.images("output", idx), self.images("truth", idx)

        return self.memo("truth_pairs", load)

    def per_truth(self, values: np.ndarray) -> np.ndarray:
        """Spread values computed on the truth images back to one value per test image (NaN elsewhere)."""
        idx = self.truth_pairs()[0]
        out = np.full((len(self.outputs),) + values.shape[1:], np.nan)
        out[idx] = values
        return out


def _manifest_or_empty(comp: Path) -> dict:
    try:
        return json.loads((Path(comp) / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


# ================================================================================ metrics
@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    compute: Callable[[EvalContext], np.ndarray]
    needs: frozenset = field(default_factory=frozenset)
    lower_is_better: bool | None = True   # None: neither (a descriptive number)
    reduce: Callable | None = None        # for per-image sufficient statistics
    description: str = ""
    input_vs_output: bool = False         # compares output with its input: does not apply to the identity map
    bounds: tuple | None = None           # the metric's range, e.g. (0, 1): intervals are clipped to it
    binary: bool = False                  # per-image values are 0/1 (a rate): Wilson interval instead of bootstrap

    def available(self, ctx: EvalContext) -> tuple[bool, str]:
        """(True, "") or (False, one sentence: why not and how to enable it)."""
        for need in sorted(self.needs, key=NEEDS.index):
            ok, why = ctx.check(need)
            if not ok:
                return False, f"{self.label} is unavailable: {why}."
        return True, ""


REGISTRY: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    unknown = set(metric.needs) - set(NEEDS)
    assert not unknown, unknown
    REGISTRY[metric.name] = metric
    return metric


def default_metric_names() -> list[str]:
    """The metrics worth ticking by default: those whose needs do not depend on files that are usually missing.
    Label-map scores need a palette (faces have none) and LPIPS needs the AlexNet weights; they stay in the
    registry but are off unless their file is here."""
    names = []
    for name, m in REGISTRY.items():
        if "palette" in m.needs:
            continue
        if "lpips_weights" in m.needs and alexnet_weights() is None:
            continue
        names.append(name)
    return names


def get_metrics(names=None) -> list[Metric]:
    """Metrics by name (a list or a comma-separated string), all of them when None; unknown names are an error."""
    if names is None or names == "" or names == "all":
        return list(REGISTRY.values())
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise UserError(f"Unknown metric {', '.join(unknown)}; choose from {', '.join(REGISTRY)}.")
    return [REGISTRY[n] for n in names]


# ----- ground truth -------------------------------------------------------------------------------------
def _gt_diff(ctx: EvalContext) -> np.ndarray:
    def diff():
        _, out, truth = ctx.truth_pairs()
        return out.astype(np.float32) / 255.0 - truth.astype(np.float32) / 255.0

    return ctx.memo("gt_diff", diff)


def pixel_accuracy(a: np.ndarray, b: np.ndarray, threshold: int = PIXEL_THRESHOLD) -> np.ndarray:
    """Per-image share of pixels whose largest channel difference is below ``threshold`` (of 255)."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(-1)
    return (d < threshold).reshape(len(d), -1).mean(1)


register(Metric("gt_mse", "MSE to ground truth",
                lambda ctx: ctx.per_truth((_gt_diff(ctx).astype(np.float64) ** 2).reshape(len(_gt_diff(ctx)), -1).mean(1)),
                frozenset({"truth"}), True,
                description="mean squared error to T(x) in [0, 1] pixel scale (Ginger et al., Implicit Pairs, Table 1)"))
register(Metric("gt_l1", "L1 to ground truth",
                lambda ctx: ctx.per_truth(np.abs(_gt_diff(ctx).astype(np.float64)).reshape(len(_gt_diff(ctx)), -1).mean(1)),
                frozenset({"truth"}), True, description="mean absolute error to T(x) in [0, 1] pixel scale"))
register(Metric("pixel_acc", "Pixel accuracy (<20)",
                lambda ctx: ctx.per_truth(pixel_accuracy(*ctx.truth_pairs()[1:])),
                frozenset({"truth"}), False,
                description="share of pixels with max channel difference to T(x) below 20 (very few pairs, Sec. 4.2.2)"))


def _to_tensor(a: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).to(torch.float64).div(255.0)


def psnr_values(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB (``torchmetrics``, data range 1 on [0, 1] pixels): 10 log10(1 / MSE); inf when equal."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    if len(a) == 0:
        return np.zeros(0)
    return peak_signal_noise_ratio(_to_tensor(a), _to_tensor(b), data_range=1.0, reduction="none",
                                   dim=(1, 2, 3)).numpy().astype(np.float64)


def ssim_values(a: np.ndarray, b: np.ndarray, batch: int = 64) -> np.ndarray:
    """Per-image SSIM (``torchmetrics``: 11x11 Gaussian window, sigma 1.5, data range 1); 1 for identical images."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    out = [structural_similarity_index_measure(_to_tensor(a[i:i + batch]), _to_tensor(b[i:i + batch]),
                                               data_range=1.0, reduction="none").reshape(-1).numpy()
           for i in range(0, len(a), batch)]
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def _finite_psnr(ctx: EvalContext) -> np.ndarray:
    values = psnr_values(*ctx.truth_pairs()[1:])
    # an output equal to its truth has infinite PSNR; cap it at 100 dB (an MSE of 1e-10) so means stay finite
    return ctx.per_truth(np.minimum(values, 100.0))


register(Metric("psnr", "PSNR to ground truth (dB)", _finite_psnr, frozenset({"truth"}), False,
                description="peak signal-to-noise ratio to T(x), 10 log10(1 / MSE) on [0, 1] pixels (torchmetrics); "
                "capped at 100 dB for an exact match"))
register(Metric("ssim", "SSIM to ground truth", lambda ctx: ctx.per_truth(ssim_values(*ctx.truth_pairs()[1:])),
                frozenset({"truth"}), False, bounds=(-1.0, 1.0),
                description="structural similarity to T(x) (torchmetrics: Gaussian 11x11 window, sigma 1.5)"))


# ----- the attribute region: doing the task vs keeping the rest ------------------------------------------
def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of (N, H, W) masks by a (2r+1) x (2r+1) square (Chebyshev distance <= r)."""
    mask = np.asarray(mask, dtype=bool)
    r = int(radius)
    if r <= 0 or mask.size == 0:
        return mask.copy()
    h, w = mask.shape[-2:]
    padded = np.pad(mask, [(0, 0)] * (mask.ndim - 2) + [(r, r), (r, r)])
    out = np.zeros_like(mask)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out |= padded[..., dy:dy + h, dx:dx + w]
    return out


def attribute_region(inputs: np.ndarray, truths: np.ndarray, threshold: int = REGION_THRESHOLD,
                     radius: int = REGION_DILATE) -> np.ndarray:
    """(N, H, W) bool: pixels where input and truth (uint8) differ by more than ``threshold`` in some channel,
    dilated by ``radius`` pixels."""
    d = np.abs(np.asarray(inputs).astype(np.int16) - np.asarray(truths).astype(np.int16))
    return dilate(d.max(-1) > threshold, radius)


def masked_l1(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-image mean absolute difference of uint8 images in [0, 1] units over the mask's pixels and all channels
    (NaN where the mask is empty)."""
    d = np.abs(a.astype(np.float64) / 255.0 - b.astype(np.float64) / 255.0).mean(-1)  # (N, H, W)
    m = np.asarray(mask, dtype=bool)
    count = m.reshape(len(m), -1).sum(1)
    total = (d * m).reshape(len(d), -1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def share_removed(err_model: np.ndarray, err_input: np.ndarray) -> np.ndarray:
    """Per image 1 - err_model / err_input (NaN where err_input is NaN or 0): 1 = all of the input's error removed,
    0 = none, < 0 = worse than leaving the input unchanged."""
    em, ei = np.asarray(err_model, np.float64), np.asarray(err_input, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isfinite(ei) & (ei > 0), 1.0 - em / np.where(ei > 0, ei, 1.0), np.nan)


REGION_RULE = (f"the attribute region of a test image is where it and its true counterpart T(x) differ by more than "
               f"{REGION_THRESHOLD}/255 in some channel, dilated by {REGION_DILATE} pixels "
               f"(a {2 * REGION_DILATE + 1}x{2 * REGION_DILATE + 1} square)")


def _region(ctx: EvalContext) -> dict:
    """The truth images' regions and the per-image L1 (inside / outside) of the outputs and of the inputs."""
    def make():
        idx, out, truth = ctx.truth_pairs()
        inp = ctx.images("input", idx)
        region = attribute_region(inp, truth)
        n = len(region)
        area = region.reshape(n, -1).mean(1) if n else np.zeros(0)
        empty = int((area == 0).sum())
        full = int((area == 1).sum())
        note = (f"{REGION_RULE}; it covers {area.mean():.1%} of an image on average" if n else REGION_RULE)
        if empty:
            note += f"; {empty} of {n} test images with a truth have an empty region"
        return {"region": region, "empty": empty, "full": full, "n": n, "note": note,
                "in_out": masked_l1(out, truth, region), "in_inp": masked_l1(inp, truth, region),
                "out_out": masked_l1(out, truth, ~region)}

    return ctx.memo("region", make)


def _region_values(ctx: EvalContext, name: str, key: str) -> np.ndarray:
    r = _region(ctx)
    note = r["note"]
    if name != "gt_l1_outside" and r["empty"]:
        note += " (left out here)"
    if name == "gt_l1_outside" and r["full"]:
        note += f"; {r['full']} image(s) are all region and are left out here"
    ctx.notes[name] = note
    if key == "removed":
        return ctx.per_truth(share_removed(r["in_out"], r["in_inp"]))
    return ctx.per_truth(r[key])


register(Metric("gt_l1_region", "Region L1 to truth (task)",
                lambda ctx: _region_values(ctx, "gt_l1_region", "in_out"), frozenset({"truth"}), True,
                description=("per image, the mean absolute difference to T(x) over the attribute region's pixels and "
                             "the three channels, in [0, 1] units (did the attribute go, and is what was under it "
                             f"right?); {REGION_RULE}; images with an empty region are left out and counted")))
register(Metric("gt_l1_outside", "Outside-region L1 to truth (preservation)",
                lambda ctx: _region_values(ctx, "gt_l1_outside", "out_out"), frozenset({"truth"}), True,
                description=("per image, the mean absolute difference to T(x) over the pixels outside the attribute "
                             "region and the three channels, in [0, 1] units (was the rest of the face kept?); "
                             f"{REGION_RULE}; an image with an empty region counts whole")))
register(Metric("gt_region_removed", "Region error removed (task completion)",
                lambda ctx: _region_values(ctx, "gt_region_removed", "removed"), frozenset({"truth"}), False,
                description=("per image, 1 - (region L1 of the output to T(x)) / (region L1 of the input to T(x)), "
                             "averaged over images: the share of the region's error removed relative to leaving the "
                             "input unchanged (1 = output matches T(x) there, 0 = nothing done, < 0 = worse); "
                             f"{REGION_RULE}; images with an empty region are left out and counted")))


# ----- label maps (photo -> labels) -------------------------------------------------------------------
def confusion_matrices(pred: np.ndarray, truth: np.ndarray, n_classes: int, ignore: np.ndarray | None = None) -> np.ndarray:
    """Per-image confusion matrices (N, C*C), rows = true class, columns = predicted class."""
    out = np.zeros((len(pred), n_classes * n_classes), dtype=np.float64)
    for i in range(len(pred)):
        t, p = truth[i].ravel(), pred[i].ravel()
        keep = ~ignore[t] if ignore is not None and ignore.any() else slice(None)
        out[i] = np.bincount(n_classes * t[keep] + p[keep], minlength=n_classes * n_classes)
    return out


def _hist(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = int(round(np.sqrt(m.shape[-1])))
    hist = m.reshape(m.shape[:-1] + (c, c))
    return hist, np.diagonal(hist, axis1=-2, axis2=-1)


def label_pixel_accuracy(m: np.ndarray) -> np.ndarray:
    hist, diag = _hist(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        return diag.sum(-1) / hist.sum((-2, -1))


def label_class_accuracy(m: np.ndarray) -> np.ndarray:
    hist, diag = _hist(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = diag / hist.sum(-1)
        return np.nanmean(np.where(np.isfinite(per), per, np.nan), axis=-1)


def label_iou(m: np.ndarray) -> np.ndarray:
    hist, diag = _hist(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = diag / (hist.sum(-1) + hist.sum(-2) - diag)
        return np.nanmean(np.where(np.isfinite(iou), iou, np.nan), axis=-1)


def _label_stats(ctx: EvalContext) -> np.ndarray:
    def stats():
        pal = ctx.palette()
        _, out, truth = ctx.truth_pairs()
        pred = nearest_labels(out, pal["colors"])
        true = nearest_labels(truth, pal["colors"])
        return ctx.per_truth(confusion_matrices(pred, true, len(pal["colors"]), pal["ignore"]))

    return ctx.memo("label_stats", stats)


for _name, _label, _reduce, _desc in (
        ("label_pixel_acc", "Label per-pixel accuracy", label_pixel_accuracy, "per-pixel accuracy of nearest-palette labels"),
        ("label_class_acc", "Label per-class accuracy", label_class_accuracy, "mean over classes of per-class accuracy"),
        ("label_iou", "Label class IoU", label_iou, "mean over classes of intersection over union")):
    register(Metric(_name, _label, _label_stats, frozenset({"truth", "palette"}), False, _reduce,
                    description=_desc + " (confusion matrix summed over test images, as the FCN-score script)"))


# ----- identity -----------------------------------------------------------------------------------------
def infosim_values(emb_in: np.ndarray, emb_out: np.ndarray) -> np.ndarray:
    """Per-image InfoSIM: the MSE (mean over dimensions) between input and output embeddings."""
    return ((np.asarray(emb_in, np.float64) - np.asarray(emb_out, np.float64)) ** 2).mean(1)


def _infosim(ctx: EvalContext) -> np.ndarray:
    enc = ctx.identity_encoder()
    ctx.progress(0.0, "Embedding inputs and outputs")
    values = infosim_values(enc.embed(ctx.images("input")), enc.embed(ctx.images("output")))
    ctx.notes["infosim"] = (f"InfoSIM measured with the {enc.describe()}: on that encoder's scale, not comparable "
                            "with the paper's OpenFace values")
    return values


register(Metric("infosim", "InfoSIM (lab encoder)", _infosim, frozenset({"identity_encoder"}), True,
                description="MSE between identity embeddings of input and output (Ginger et al., Implicit Pairs, Sec. 5), with the encoder "
                "named in the note (the lab's identity encoder, or FaceNet when its weights are present): values are "
                "on that encoder's scale, not on the scale of the paper's OpenFace InfoSIM", input_vs_output=True))


# ----- LPIPS ---------------------------------------------------------------------------------------------
def lpips_values(model, a: np.ndarray, b: np.ndarray, batch: int = 64) -> np.ndarray:
    import torch

    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(a), batch):
            x = torch.from_numpy(a[i:i + batch]).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(dev)
            y = torch.from_numpy(b[i:i + batch]).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(dev)
            out.append(model(x, y).reshape(-1).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


register(Metric("lpips", "LPIPS to ground truth",
                lambda ctx: ctx.per_truth(lpips_values(ctx.lpips(), *ctx.truth_pairs()[1:])),
                frozenset({"truth", "lpips_weights"}), True, description="LPIPS (AlexNet, v0.1) between output and T(x)"))
register(Metric("lpips_input", "LPIPS input-output",
                lambda ctx: lpips_values(ctx.lpips(), ctx.images("input"), ctx.images("output")),
                frozenset({"lpips_weights"}), None, description="LPIPS between input and output: how much changed",
                input_vs_output=True))


# ----- task completion --------------------------------------------------------------------------------
def _probs(ctx: EvalContext):
    def probs():
        clf = ctx.attribute_classifier()
        ctx.progress(0.0, f"Scoring outputs with the {ctx.attribute} classifier")
        p_in, p_out = clf.predict_proba(ctx.images("input")), clf.predict_proba(ctx.images("output"))
        acc = clf.meta.get("heldout_accuracy")
        note = clf.describe()
        if clf.meta.get("test_partition_accuracy") is not None:
            note += f" ({clf.meta['test_partition_accuracy']:.3f} on the source's test partition)"
        ctx.notes["task_rate"] = ctx.notes["confidence_drop"] = note
        # p(source domain): A has the attribute, B does not
        return (p_in, p_out) if ctx.direction == "AtoB" else (1 - p_in, 1 - p_out)

    return ctx.memo("probs", probs)


register(Metric("task_rate", "Task completion rate",
                lambda ctx: (_probs(ctx)[1] < 0.5).astype(np.float64),
                frozenset({"attribute_classifier"}), False,
                description="share of outputs classified into the target domain (A->B: attribute removed)",
                bounds=(0.0, 1.0), binary=True))
register(Metric("confidence_drop", "Confidence drop",
                lambda ctx: _probs(ctx)[0] - _probs(ctx)[1],
                frozenset({"attribute_classifier"}), False,
                description="mean p(source domain | input) - p(source domain | output)", input_vs_output=True))
