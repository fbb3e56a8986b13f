"""Feature space (paper 000, "Distribution analysis", Figure 9): PCA of learned features, two panels.

    space = feature_space(FeatureRequest(composition="fig9-explicit", runs=("p2p", "cyc")), progress)
    fig = feature_plot.make_figure(space)    # plotly, two panels of go.Scattergl + covariance ellipses
    paths = feature_plot.export(space, folder)  # figure.png, figure.html (standalone), groups.csv, request.json
    print(summary_text(space))               # group means and distances in PCA space and in feature space

Features are the penultimate layer of the attribute classifier (the paper's "simple CNN" trained on the source's
held-out validation partition, ``encoders.attribute_classifier``) or the identity encoder's embedding. The PCA
(scikit-learn, two components) is fitted on **every image of the source**. Two panels share its axes:

- *Space of training data*: all data (gray), the composition's real attribute-on images (trainA, orange),
  real attribute-off images (trainB, black) and its generated pseudo-samples (trainA pseudo, fuchsia);
- *Space of test data*: all data (gray), the test split's real on / off images (testA orange, testB black) and the
  test outputs of each chosen run (Pix2Pix red, CycleGAN cyan, further runs further colours).

Every group gets its covariance ellipse at 1 or 2 sigma (Mahalanobis radius), fitted on all of the group's points.

Features are cached under ``workspace/cache/features/`` per (encoder weights, source fingerprint, image size) for
the source, per (encoder, manifest) for a composition and per (encoder, output set) for a run's outputs. Tiny JPEG
thumbnails of a seeded sample of each group travel with the figure as one sprite per group (``layout.meta``); a
small script shows the hovered point's thumbnail beside its provenance (the same script in the app and in the
standalone HTML). The figure, its exports and the PNG live in ``feature_plot``; the benchmark in ``feature_bench``.

A run that cannot be placed (another source, another image size, no checkpoint) or a group too small for an
ellipse gets one sentence in ``space.problems``; the rest of the plot still shows.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .. import workspace
from ..errors import UserError
from ..models.spec import SPECS, find_spec

VERSION = 1
ENCODERS = {"attribute": "attribute classifier (penultimate layer)", "identity": "identity encoder (embedding)"}
MIN_ELLIPSE_POINTS = 3       # a 2-D covariance needs three points that are not on one line
THUMB = 40                   # thumbnail side in pixels (JPEG in a per-group sprite)
THUMBS_PER_GROUP = 1500      # how many points of a group carry a thumbnail (a seeded sample)
THUMBS_TOTAL = 4000          # and of the whole figure, so 20,000 points stay light
MAX_POINTS = 20_000          # points drawn per group (seeded sample); ellipses and means use every point
BATCH = 256

# Figure 9's colours: all data gray, real on orange, real off black, pseudo fuchsia, Pix2Pix red, CycleGAN cyan.
COLORS = {"all": "#a9a9a9", "real_on": "#ff8c00", "real_off": "#111111", "pseudo": "#ff00ff"}
MODEL_COLORS = {s.name: s.color for s in SPECS.values() if s.color}  # each kind's colour is in its spec
MORE_COLORS = ["#2ca02c", "#1f3fd6", "#8c564b", "#9467bd", "#bcbd22", "#e377c2", "#555555"]
PANELS = ("train", "test")
PANEL_TITLES = {"train": "Space of training data", "test": "Space of test data"}


# ================================================================================ request and result
@dataclass(frozen=True)
class FeatureRequest:
    """What to plot. ``source`` is a source folder (default: the composition's source, else SynthFaces)."""

    composition: str | None = None
    runs: tuple[str, ...] = ()
    encoder: str = "attribute"          # attribute | identity
    sigma: float = 1.0                  # ellipse radius in standard deviations (1 or 2)
    source: str | None = None
    task: str = "eyeglasses"            # picks the attribute when no composition says it
    direction: str = "AtoB"
    checkpoint: str = "latest"
    train_encoder: bool = False         # train a missing encoder instead of refusing
    max_points: int = MAX_POINTS

    def to_dict(self) -> dict:
        d = asdict(self)
        d["runs"] = list(self.runs)
        return d


@dataclass(frozen=True)
class Ellipse:
    center: tuple[float, float]
    cov: tuple[tuple[float, float], tuple[float, float]]
    sigma: float
    axes: tuple[float, float]   # semi-major, semi-minor at ``sigma`` (sigma * sqrt of the covariance eigenvalues)
    angle: float                # radians, direction of the major axis from +x

    def points(self, n: int = 121) -> np.ndarray:
        t = np.linspace(0.0, 2 * np.pi, n)
        a, b = self.axes
        c, s = math.cos(self.angle), math.sin(self.angle)
        x, y = a * np.cos(t), b * np.sin(t)
        return np.stack([self.center[0] + c * x - s * y, self.center[1] + s * x + c * y], axis=1)


@dataclass
class Group:
    key: str                    # legend key shared by both panels: all, real_on, real_off, pseudo, run:<id>
    label: str
    panel: str                  # train | test
    color: str
    names: list[str]            # one per point: the file it came from
    info: list[str]             # one per point: its provenance, shown on hover
    features: np.ndarray        # (n, D)
    xy: np.ndarray = None       # (n, 2) PCA coordinates
    thumbs: np.ndarray | None = None     # (k, THUMB, THUMB, 3) uint8
    thumb_of: np.ndarray | None = None   # (n,) index into thumbs or -1
    ellipse: Ellipse | None = None
    shown: np.ndarray | None = None      # indices of the points drawn (all, or a seeded sample)

    @property
    def n(self) -> int:
        return len(self.names)


@dataclass
class FeatureSpace:
    request: FeatureRequest
    encoder: str                # its description (attribute classifier accuracy, or identity encoder)
    encoder_key: str
    source_name: str
    source_fingerprint: str
    image_size: int
    fit_count: int
    mean: np.ndarray            # PCA mean (D,)
    components: np.ndarray      # (2, D)
    explained: np.ndarray       # (2,) explained variance ratio
    groups: list[Group]
    composition: str | None = None
    problems: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    def project(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, dtype=np.float64) - self.mean) @ self.components.T

    def group(self, key: str, panel: str) -> Group | None:
        return next((g for g in self.groups if g.key == key and g.panel == panel), None)


# ================================================================================ math
def fit_pca(features: np.ndarray, n_components: int = 2):
    """scikit-learn PCA on every row; returns (mean, components (k, D), explained variance ratio (k,))."""
    from sklearn.decomposition import PCA

    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < n_components + 1:
        raise UserError(f"The PCA needs at least {n_components + 1} images with features, got {len(x)}.")
    from threadpoolctl import threadpool_limits

    # n >> D: the D x D covariance eigendecomposition is exact and far faster than an SVD of the data; one BLAS
    # thread, since a multi-threaded GEMM this small is 10-25x slower on a busy 2-core machine
    with threadpool_limits(1):
        pca = PCA(n_components=n_components, svd_solver="covariance_eigh", random_state=0).fit(x)
    return pca.mean_, pca.components_, pca.explained_variance_ratio_


def covariance_ellipse(xy: np.ndarray, sigma: float = 1.0) -> Ellipse:
    """The ellipse of points at Mahalanobis distance ``sigma`` from the mean (sample covariance, ddof 1)."""
    xy = np.asarray(xy, dtype=np.float64)
    if len(xy) < MIN_ELLIPSE_POINTS:
        raise UserError(f"An ellipse needs at least {MIN_ELLIPSE_POINTS} points, got {len(xy)}.")
    center = xy.mean(axis=0)
    cov = np.cov(xy.T, ddof=1)
    evals, evecs = np.linalg.eigh(cov)          # ascending
    evals = np.clip(evals, 0.0, None)
    major = evecs[:, 1]
    angle = math.atan2(major[1], major[0])
    axes = (float(sigma * math.sqrt(evals[1])), float(sigma * math.sqrt(evals[0])))
    return Ellipse((float(center[0]), float(center[1])), ((float(cov[0, 0]), float(cov[0, 1])),
                                                         (float(cov[1, 0]), float(cov[1, 1]))),
                   float(sigma), axes, float(angle))


# ================================================================================ groups from manifests
def manifest_groups(manifest: dict) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    """{(key, panel): [(split, file, provenance text), ...]} of a composition manifest.

    Train panel: trainA real / natural / truth -> real_on, trainB -> real_off, trainA pseudo -> pseudo.
    Test panel: testA -> real_on, testB -> real_off. Balancing copies repeat an image and are left out."""
    images = manifest.get("images") or {}
    out: dict[tuple[str, str], list] = {}

    def add(key, panel, split, e, text):
        out.setdefault((key, panel), []).append((split, e["file"], text))

    for split in ("trainA", "trainB", "testA", "testB"):
        for e in images.get(split) or []:
            if e.get("copy_of"):
                continue
            prov = e.get("provenance", "real")
            src = e.get("source", "")
            if split == "trainA" and prov == "pseudo":
                params = e.get("params") or {}
                shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in list(params.items())[:4] if not isinstance(v, (list, dict)))
                add("pseudo", "train", split, e, f"pseudo-sample M(b) of {e.get('pseudo_of') or src}"
                    + (f" ({shown})" if shown else "") + (f", paired with {e['pair']}" if e.get("pair") else ""))
                continue
            key = "real_on" if split.endswith("A") else "real_off"
            panel = "train" if split.startswith("train") else "test"
            what = {"truth": "rendered true counterpart", "natural": "real (natural augmentation)"}.get(prov, prov)
            text = f"{split}/{e['file']}: {what}" + (f" from {src}" if src and src != e["file"] else "")
            if split == "trainA" and e.get("pair"):
                text += f", paired with {e['pair']}"
            add(key, panel, split, e, text)
    return out


def source_groups(source, attribute: str | None) -> dict[tuple[str, str], list[int]]:
    """Without a composition: the source's own train / test images split by the attribute (indices into samples)."""
    out: dict[tuple[str, str], list[int]] = {}
    if attribute is None:
        return out
    for i, s in enumerate(source.samples):
        if not s.attrs or s.partition not in ("train", "test"):
            continue
        key = "real_on" if s.attrs.get(attribute) == 1 else "real_off"
        out.setdefault((key, s.partition), []).append(i)
    return out


# ================================================================================ feature cache
def cache_dir() -> Path:
    folder = workspace.sub("cache") / "features"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _sha(path: Path) -> str:
    from .outputs import file_sha1

    return file_sha1(path)[:12]


def _save_npz(path: Path, **arrays) -> None:
    from ..workspace import atomic_file

    with atomic_file(path) as tmp:  # the temporary name ends in .npz, so np.savez writes exactly there
        np.savez(tmp, **arrays)


def _load_npz(path: Path) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError):
        return None


def _thumb(img: np.ndarray | Image.Image) -> np.ndarray:
    im = img if isinstance(img, Image.Image) else Image.fromarray(img)
    return np.asarray(im.convert("RGB").resize((THUMB, THUMB), Image.BILINEAR), dtype=np.uint8)


def cached_features(key: str, names: list[str], load, embed, progress=None, what: str = "images",
                    thumb_limit: int = THUMBS_PER_GROUP) -> dict:
    """Features of ``names`` (``load(i)`` -> uint8 HxWx3), cached in ``cache/features/<key>.npz``.

    Thumbnails are kept for the first ``thumb_limit`` points of a seeded permutation (``thumb_of`` maps each point
    to its thumbnail or -1). An image that cannot be read (``load`` raises UserError) gets ``ok`` False and a row of
    NaN. Returns {"names", "features", "ok", "thumbs", "thumb_of", "cached", "seconds"}."""
    path = cache_dir() / f"{key}.npz"
    got = _load_npz(path) if path.exists() else None
    if got is not None and [str(n) for n in got["names"]] == list(names) and "ok" in got:
        got.update(cached=True, seconds=0.0)
        return got
    t0 = time.time()
    n = len(names)
    order = np.random.default_rng(0).permutation(n)
    thumb_of = np.full(n, -1, dtype=np.int64)
    thumb_of[order[:thumb_limit]] = np.arange(min(thumb_limit, n))
    thumbs = np.zeros((min(thumb_limit, n), THUMB, THUMB, 3), np.uint8)
    ok = np.ones(n, bool)
    features = None
    for lo in range(0, n, BATCH):
        batch, rows = [], []
        for i in range(lo, min(lo + BATCH, n)):
            try:
                img = load(i)
            except UserError:  # a bad file is left out, not fatal (real CelebA folders have a few)
                ok[i] = False
                continue
            if thumb_of[i] >= 0:
                thumbs[thumb_of[i]] = _thumb(img)
            batch.append(img)
            rows.append(i)
        if batch:
            f = np.asarray(embed(np.stack(batch)), dtype=np.float32)
            if features is None:
                features = np.full((n, f.shape[1]), np.nan, np.float32)
            features[rows] = f
        if progress:
            progress(min(lo + BATCH, n) / max(n, 1), f"Features of {what}: {min(lo + BATCH, n)}/{n}")
    if features is None:
        features = np.full((n, 0), np.nan, np.float32)
    out = {"names": np.array(names, dtype=str), "features": features, "ok": ok, "thumbs": thumbs,
           "thumb_of": thumb_of}
    _save_npz(path, **out)
    out.update(cached=False, seconds=time.time() - t0)
    return out


# ================================================================================ encoders
def _attribute_of(task: str | None) -> str | None:
    from ..data import celeba

    return celeba.TASK_ATTRIBUTE.get(task or "")


def get_encoder(kind: str, source, attribute: str | None, train: bool = False, progress=None):
    """(embed function, cache key, description) of the chosen encoder; refuses an untrained one unless ``train``."""
    from . import encoders

    if kind not in ENCODERS:
        raise UserError(f"Unknown encoder '{kind}'; choose one of: {', '.join(ENCODERS)}.")
    fp = source.fingerprint()
    if kind == "attribute":
        if attribute is None:
            raise UserError("The attribute classifier needs an attribute task (eyeglasses or smile); this "
                            "composition has none, so choose the identity encoder.")
        path = encoders.attribute_cache_file(fp, attribute)
        if not path.exists() and not train:
            raise UserError(f"The {attribute} classifier of source {source.name} is not trained yet; tick 'Train a "
                            "missing encoder' (or pass --train-encoder) to train it, about a minute on a CPU.")
        clf = encoders.attribute_classifier(source, attribute, progress=progress)
        path = encoders.attribute_cache_file(fp, attribute)
        return clf.features, f"attr-{attribute}-{_sha(path)}", clf.describe()
    weights = encoders.facenet_weights()
    if weights is None:
        path = encoders.identity_cache_file(fp)
        if not path.exists() and not train:
            raise UserError(f"The identity encoder of source {source.name} is not trained yet; tick 'Train a missing "
                            "encoder' (or pass --train-encoder) to train it, a minute or two on a CPU.")
    enc = encoders.identity_encoder(source, progress=progress)
    path = weights if enc.short == "facenet" else encoders.identity_cache_file(fp)
    return enc.embed, f"{enc.short}-{_sha(path)}", enc.describe()


# ================================================================================ building the space
def _open_source_of(manifest: dict, comp_name: str):
    from ..data.sources import open_source, recorded_source_root

    info = manifest.get("source") or {}
    root = recorded_source_root(info)  # the recorded folder, or the same name in a moved workspace
    if root is None:
        raise UserError(f"The source of composition {comp_name} ({info.get('root') or 'not recorded'}) no longer "
                        "exists, so its feature space cannot be fitted.")
    kind = info.get("kind")
    return open_source(root, "celeba" if kind in ("celeba", "synthfaces") else None)


def _resolve_composition(name) -> Path:
    from ..train.jobs import resolve_composition

    path = resolve_composition(name)
    if not (path / "manifest.json").exists():
        raise UserError(f"{path.name} is not a composition (no manifest.json).")
    return path


def _manifest_size(manifest: dict) -> int:
    size = manifest.get("image_size")
    return int(size) if isinstance(size, (int, float)) else 0


def _describe_runs(runs, checkpoint: str):
    """[(run description dict or None, problem sentence or None)] per run, in order."""
    from .evaluate import describe_run
    from .outputs import checkpoint_path

    out = []
    for run in runs:
        try:
            d = describe_run(run)
            checkpoint_path(Path(d["run"]), checkpoint)
            out.append((d, None))
        except UserError as exc:
            out.append((None, str(exc)))
    return out


def feature_space(request: FeatureRequest, progress=None) -> FeatureSpace:
    """Fit the PCA on every image of the source and place every group; see the module docstring."""
    from ..data.compose import load_manifest, prepare
    from ..data.images import load_rgb
    from .outputs import load_at_size, translate_test_set

    progress = progress or (lambda f, m: None)
    t_start = time.time()
    timings: dict = {}
    problems: list[str] = []
    if request.sigma <= 0:
        raise UserError(f"The ellipse radius must be positive, got {request.sigma} sigma.")
    if request.direction not in ("AtoB", "BtoA"):
        raise UserError(f"Direction must be AtoB or BtoA, got {request.direction!r}.")

    # ----- which composition, runs and source -------------------------------------------------------------
    described = _describe_runs(request.runs, request.checkpoint)
    for d, why in described:
        if why:
            problems.append(why)
    comp_path = _resolve_composition(request.composition) if request.composition else None
    if comp_path is None:
        first = next((d for d, _ in described if d), None)
        if first is not None:  # no composition chosen: the first run's composition gives the training panel
            comp_path = Path(first["composition_path"])
    manifest = load_manifest(comp_path) if comp_path else None
    if request.source:
        from ..data.library import open_user_source

        source = open_user_source(request.source)
    elif manifest is not None:
        source = _open_source_of(manifest, comp_path.name)
    else:
        from ..data.library import synthfaces_source

        source = synthfaces_source()
    fp = source.fingerprint()
    if manifest is not None and (manifest.get("source") or {}).get("fingerprint") != fp:
        problems.append(f"Composition {comp_path.name} was built from another source (or its source changed since), "
                        f"so its images are left out of the feature space of {source.name}.")
        manifest, comp_path = None, None
    task = manifest.get("task") if manifest is not None else request.task
    attribute = _attribute_of(task)
    # Every image is brought to one size before the encoder: the first run's (its outputs are made at that size),
    # else the composition's; runs at another size are refused below.
    first = next((d for d, _ in described if d and d.get("source_fingerprint") == fp), None)
    image_size = int(first["image_size"] or 0) if first else (_manifest_size(manifest) if manifest else 0)

    # ----- the encoder and the source's features -----------------------------------------------------------
    t0 = time.time()
    progress(0.0, "Loading the encoder")
    embed, enc_key, enc_desc = get_encoder(request.encoder, source, attribute, request.train_encoder,
                                           progress=lambda f, m: progress(0.3 * (f or 0), m))
    timings["encoder_s"] = round(time.time() - t0, 3)
    samples = source.samples

    def load_sample(i):
        return np.asarray(prepare(samples[i].ref.load(), None, image_size)[0], dtype=np.uint8)

    t0 = time.time()
    src = cached_features(f"v{VERSION}-{enc_key}-source-{fp}-{image_size or 'native'}px",
                          [s.name for s in samples], load_sample, embed,
                          lambda f, m: progress(0.3 + 0.4 * f, m), f"{len(samples)} source images")
    timings["source_features_s"] = round(time.time() - t0, 3)
    timings["source_features_cached"] = bool(src["cached"])
    keep = np.flatnonzero(src["ok"])
    if len(keep) < len(samples):
        problems.append(f"{len(samples) - len(keep)} images of {source.name} could not be read and are left out.")
    mean, components, explained = fit_pca(src["features"][keep])

    # ----- groups ---------------------------------------------------------------------------------------------
    groups: list[Group] = []
    # both panels share one copy of the source's arrays (real CelebA: 200k x 128 features)
    all_names = [samples[i].name for i in keep]
    all_info = [f"source image {samples[i].name} ({samples[i].partition} partition)" for i in keep]
    all_feats, all_thumb_of = src["features"][keep], src["thumb_of"][keep]
    for panel in PANELS:
        groups.append(Group("all", f"all data ({len(keep)} images of {source.name})", panel, COLORS["all"],
                            all_names, all_info, all_feats, thumbs=src["thumbs"], thumb_of=all_thumb_of))
    domains = (manifest or {}).get("domains") or {}
    on_label = f"real A ({domains.get('A', f'with {attribute}' if attribute else 'domain A')})"
    off_label = f"real B ({domains.get('B', f'without {attribute}' if attribute else 'domain B')})"
    labels = {"real_on": on_label, "real_off": off_label, "pseudo": "generated pseudo-samples M(b)"}
    fallback: list[tuple[str, str]] = [] if manifest is not None else [(k, p) for p in PANELS
                                                                       for k in ("real_on", "real_off")]
    if manifest is not None:
        t0 = time.time()
        by_group = manifest_groups(manifest)
        entries = [(k, p, split, f, text) for (k, p), rows in by_group.items() for split, f, text in rows]
        files = [f"{split}/{f}" for _, _, split, f, _ in entries]
        key = f"v{VERSION}-{enc_key}-comp-{comp_path.name}-{_sha(comp_path / 'manifest.json')}-{image_size}px"

        def load_comp(i):
            if image_size:
                return load_at_size(comp_path / files[i], image_size)
            return np.asarray(load_rgb(comp_path / files[i]), dtype=np.uint8)

        got = cached_features(key, files, load_comp,
                              embed, lambda f, m: progress(0.7 + 0.1 * f, m), f"composition {comp_path.name}",
                              thumb_limit=len(files))
        timings["composition_features_s"] = round(time.time() - t0, 3)
        if not got["ok"].all():
            problems.append(f"{int((~got['ok']).sum())} images of composition {comp_path.name} could not be read and "
                            "are left out.")
        for (k, panel) in [("real_on", "train"), ("real_off", "train"), ("pseudo", "train"),
                           ("real_on", "test"), ("real_off", "test")]:
            idx = [i for i, e in enumerate(entries) if e[0] == k and e[1] == panel and got["ok"][i]]
            if not idx:
                if k != "pseudo":  # e.g. an explicit composition's A side is all pseudo: show the source's real A
                    fallback.append((k, panel))
                continue
            sel = np.array(idx)
            thumb_of = got["thumb_of"][sel]
            groups.append(Group(k, labels[k], panel, COLORS[k], [files[i] for i in idx], [entries[i][4] for i in idx],
                                got["features"][sel], thumbs=got["thumbs"], thumb_of=thumb_of))
    from_source = source_groups(source, attribute)
    for k, panel in fallback:
        idx = [i for i in from_source.get((k, panel), []) if src["ok"][i]]
        if idx:
            sel = np.array(idx)
            groups.append(Group(k, f"{labels[k]} of the source ({panel} partition)", panel, COLORS[k],
                                [samples[i].name for i in idx],
                                [f"source image {samples[i].name} ({panel} partition)" for i in idx],
                                src["features"][sel], thumbs=src["thumbs"], thumb_of=src["thumb_of"][sel]))

    # ----- runs -----------------------------------------------------------------------------------------------
    used_colors: set[str] = set()
    extra = iter(MORE_COLORS * 4)
    usable = [d for d, _ in described if d]
    from ..train.run import Run
    from .comparison import short_labels

    labels = short_labels([Run(d["run"]) for d in usable])  # legend and table: short labels; hover: the full id
    for j, d in enumerate(usable):
        name = d["name"]
        report = (lambda f, m, j=j: progress(0.8 + 0.18 * (j + (f or 0)) / max(len(usable), 1), m))
        if d.get("source_fingerprint") != fp:
            problems.append(f"Run {name} was trained on a composition of another source, so its outputs cannot be "
                            f"placed in the feature space of {source.name}.")
            continue
        if image_size and int(d.get("image_size") or 0) != image_size:
            problems.append(f"Run {name} translates at {d.get('image_size')}x{d.get('image_size')} but the feature "
                            f"space was fitted at {image_size}x{image_size}, so its outputs are not comparable.")
            continue
        try:
            t0 = time.time()
            outs = translate_test_set(d["run"], request.checkpoint, request.direction, progress=report)
            names = [it.name for it in outs.items]
            got = cached_features(f"v{VERSION}-{enc_key}-outputs-{outs.key}", names,
                                  lambda i, outs=outs: outs.load("output", [i])[0], embed, report,
                                  f"run {name}'s outputs", thumb_limit=len(names))
            timings[f"run_{name}_s"] = round(time.time() - t0, 3)
            if not got["ok"].all():
                raise UserError(f"{int((~got['ok']).sum())} of its output images could not be read")
        except UserError as exc:
            problems.append(f"Run {name}: {str(exc).rstrip('.')}; it is left out of the plot.")
            continue
        model = str(d.get("model") or "")
        color = MODEL_COLORS.get(model) if MODEL_COLORS.get(model) not in used_colors else None
        color = color or next(extra)
        used_colors.add(color)
        pretty = find_spec(model).short_label if find_spec(model) else (model or "run")
        info = [f"{pretty} output of {request.direction[0]}-image {n} (run {name}, iteration "
                f"{outs.checkpoint.get('iteration')})" for n in names]
        groups.append(Group(f"run:{name}", f"{pretty} outputs ({labels.get(name, name)})", "test", color, names, info,
                            got["features"], thumbs=got["thumbs"], thumb_of=got["thumb_of"]))

    # ----- projection, ellipses, sampling ---------------------------------------------------------------------
    t0 = time.time()
    space = FeatureSpace(request, enc_desc, enc_key, source.name, fp, image_size, len(keep), mean, components,
                         explained, groups, comp_path.name if comp_path else None, problems, timings)
    for g in groups:
        g.xy = space.project(g.features)
    set_sigma(space, request.sigma)
    sample_points(space, request.max_points)
    timings["project_s"] = round(time.time() - t0, 3)
    timings["total_s"] = round(time.time() - t_start, 3)
    progress(1.0, "Feature space ready")
    return space


def set_sigma(space: FeatureSpace, sigma: float) -> FeatureSpace:
    """(Re)fit every group's ellipse at ``sigma``; a group too small for one gets a sentence in problems."""
    space.problems = [p for p in space.problems if "too few for an ellipse" not in p]
    for g in space.groups:
        if g.n < MIN_ELLIPSE_POINTS:
            g.ellipse = None
            space.problems.append(f"{g.label} has {g.n} point{'s' if g.n != 1 else ''} in the "
                                  f"{PANEL_TITLES[g.panel].lower()}, too few for an ellipse (it needs "
                                  f"{MIN_ELLIPSE_POINTS}); its points still show.")
        else:
            g.ellipse = covariance_ellipse(g.xy, sigma)
    return space


def sample_points(space: FeatureSpace, max_points: int) -> None:
    """Draw at most ``max_points`` per group (a seeded sample) and at most THUMBS_TOTAL thumbnails in all."""
    budget = THUMBS_TOTAL
    done: dict[int, Group] = {}  # groups that share arrays (the source in both panels) share the sampling
    for g in sorted(space.groups, key=lambda g: (g.key == "all", g.n)):  # small groups keep their thumbnails
        twin = done.get(id(g.features))
        if twin is not None and twin.n == g.n:
            g.shown, g.thumb_of = twin.shown, twin.thumb_of
            continue
        done[id(g.features)] = g
        if g.n > max_points:
            g.shown = np.sort(np.random.default_rng(1).permutation(g.n)[:max_points])
        else:
            g.shown = np.arange(g.n)
        if g.thumb_of is not None:
            has = g.thumb_of[g.shown] >= 0
            if has.sum() > budget:  # keep the first ``budget`` thumbnails of this group
                keep = np.flatnonzero(has)[:budget]
                mask = np.zeros(len(g.shown), bool)
                mask[keep] = True
                g.thumb_of = g.thumb_of.copy()
                g.thumb_of[g.shown[~mask]] = -1
                has = mask
            budget -= int(has.sum())


# ================================================================================ numbers
def group_stats(space: FeatureSpace) -> list[dict]:
    """Per group: n, mean in PCA space, and distances of its mean to the real on / off / pseudo means (PCA space and
    full feature space, the latter in units of the source's RMS feature spread)."""
    spread = float(np.sqrt(((space.groups[0].features - space.groups[0].features.mean(0)) ** 2).sum(1).mean()))
    refs = {}
    for key in ("real_on", "real_off", "pseudo"):
        g = space.group(key, "train") or space.group(key, "test")
        if key != "pseudo":  # test outputs are compared with the test split's real images when it has them
            g = space.group(key, "test") or g
        if g is not None and g.n:
            refs[key] = (g.xy.mean(0), g.features.mean(0))
    rows = []
    order = {"all": 0, "real_on": 1, "real_off": 2, "pseudo": 3}
    for g in sorted(space.groups, key=lambda g: (PANELS.index(g.panel), order.get(g.key, 4))):
        if not g.n:
            continue
        m2, mf = g.xy.mean(0), g.features.mean(0)
        row = {"panel": g.panel, "group": g.label, "key": g.key, "n": g.n, "pc1": float(m2[0]), "pc2": float(m2[1])}
        if g.ellipse is not None:
            row.update(axis_major=g.ellipse.axes[0], axis_minor=g.ellipse.axes[1])
        for key, (r2, rf) in refs.items():
            row[f"d_{key}"] = float(np.linalg.norm(m2 - r2))
            row[f"dfeat_{key}"] = float(np.linalg.norm(mf - rf) / max(spread, 1e-12))
        rows.append(row)
    return rows


def summary_text(space: FeatureSpace) -> str:
    ev = space.explained
    size = f"{space.image_size}x{space.image_size}" if space.image_size else "native size"
    lines = [f"Feature space of {space.source_name} ({space.fit_count} images at {size}) "
             f"with the {space.encoder}",
             f"PCA explained variance: PC1 {ev[0]:.1%}, PC2 {ev[1]:.1%} (together {ev.sum():.1%})",
             "distances between group means: d_* in PCA space, f_* in feature space / source RMS spread "
             "(on = real A of the test split, off = real B of the test split, pseudo = pseudo-samples)"]
    rows = group_stats(space)
    head = f"{'panel':5} {'group':62} {'n':>5} {'PC1':>7} {'PC2':>7} {'d_on':>6} {'d_off':>6} {'d_pse':>6} " \
           f"{'f_on':>5} {'f_off':>5} {'f_pse':>5}"
    lines.append(head)

    def fmt(v, w, p=2):
        return f"{v:{w}.{p}f}" if v is not None else " " * (w - 1) + "-"

    for r in rows:
        lines.append(f"{r['panel']:5} {r['group'][:62]:62} {r['n']:5d} {r['pc1']:7.2f} {r['pc2']:7.2f} "
                     f"{fmt(r.get('d_real_on'), 6)} {fmt(r.get('d_real_off'), 6)} {fmt(r.get('d_pseudo'), 6)} "
                     f"{fmt(r.get('dfeat_real_on'), 5)} {fmt(r.get('dfeat_real_off'), 5)} "
                     f"{fmt(r.get('dfeat_pseudo'), 5)}")
    return "\n".join(lines)
