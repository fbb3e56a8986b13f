"""Source + Recipe -> Composition: the standard unaligned layout plus a manifest of every image's provenance.

    compositions/<name>/
        trainA/ trainB/ testA/ testB/      images (JPEG, re-encoded uniformly so real and pseudo share artefacts)
        testA_truth/ testB_truth/          true counterparts of test images, when the source knows them
        train/                             explicit recipes only: A|B side-by-side pairs for Pix2Pix code
        manifest.json                      recipe, seed, source fingerprint, alpha_target (asked) and
                                           alpha_measured (made), every image
        build.json                         when and how long (kept apart so the manifest is reproducible)

``plan`` decides which images go where (deterministic for a seed); ``compose`` writes the folder atomically.
Only the train partition feeds training sets and only the test partition feeds test sets; the validation
partition stays held out for the lab's own classifiers.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .. import __version__, workspace
from ..errors import BadImage, UserError
from . import celeba
from .images import save_image
from .recipes import Recipe, alpha_target_of, pseudo_counts
from .sources import ImageRef, Pair, Sample, Source

SPLITS = ("trainA", "trainB", "testA", "testB")


@dataclass
class Item:
    """One image to write into the composition."""

    split: str
    file: str
    ref: ImageRef
    provenance: str  # real | natural | pseudo | truth (a source's true counterpart render)
    source_name: str
    landmarks: np.ndarray | None = None
    pair: str | None = None  # trainA: its counterpart's file in trainB
    params: dict | None = None  # pseudo: the synthesizer's parameters
    pseudo_of: str | None = None  # pseudo: the source name of the b it was made from
    truth: ImageRef | None = None  # test: the true counterpart, when known
    identity: int | None = None
    copy_of: str | None = None

    def manifest_entry(self) -> dict:
        entry = {"file": self.file, "provenance": self.provenance, "source": self.source_name}
        if self.split == "trainA":
            entry["pair"] = self.pair
        if self.identity is not None:
            entry["identity"] = self.identity
        if self.pseudo_of is not None:
            entry["pseudo_of"] = self.pseudo_of
        if self.params is not None:
            entry["params"] = self.params
        if self.copy_of is not None:
            entry["copy_of"] = self.copy_of
        if self.split.startswith("test"):
            entry["truth"] = f"{self.split}_truth/{self.file}" if self.truth is not None else None
        return entry


@dataclass
class Plan:
    source: Source
    recipe: Recipe
    items: list[Item]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    selection_features: str | None = None
    notes: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Item]:
        return [it for it in self.items if it.split == name]


# ================================================================================ picking images
def _stem(name: str) -> str:
    return Path(name.replace("/", "_").replace("#", "_")).stem


class _Picker:
    """Takes usable candidates in a seeded order, recording every skipped file and why."""

    def __init__(self, source: Source, progress=None):
        self.source = source
        self.skipped: list[tuple[str, str]] = []
        self._ok: dict[str, bool] = {}
        self.progress = progress

    def loads(self, ref: ImageRef) -> bool:
        key = str(ref.path) + str(ref.half)
        if key not in self._ok:
            try:
                ref.load()
                self._ok[key] = True
            except BadImage as exc:
                self._ok[key] = False
                self.skipped.append((ref.key, exc.reason))
        return self._ok[key]

    def take_samples(self, pool: list[Sample], count: int, what: str, need_landmarks: bool) -> list[tuple[Sample, np.ndarray | None]]:
        out: list[tuple[Sample, np.ndarray | None]] = []
        i = 0
        while len(out) < count and i < len(pool):
            chunk = pool[i : i + max(8, int((count - len(out)) * 1.25))]
            i += len(chunk)
            usable = [s for s in chunk if self.loads(s.ref)]
            if need_landmarks:
                for s, pts, reason in self.source.landmarks_for(usable):
                    if pts is None:
                        self.skipped.append((s.ref.key, reason or "no face found"))
                    elif len(out) < count:
                        out.append((s, pts))
            else:
                out += [(s, s.landmarks) for s in usable[: count - len(out)]]
        if len(out) < count:
            raise UserError(
                f"Asked for {count} {what} but only {len(out)} usable ones exist in this source "
                f"({len(self.skipped)} skipped); lower N or use a larger source."
            )
        return out

    def take_pairs(self, pool: list[Pair], count: int, what: str) -> list[Pair]:
        out = []
        for p in pool:
            if len(out) == count:
                break
            if self.loads(p.a) and self.loads(p.b):
                out.append(p)
        if len(out) < count:
            raise UserError(
                f"Asked for {count} {what} but only {len(out)} usable pairs remain in this source; "
                "lower N (alpha-paired needs 2N - round(alpha*N) training pairs) or use a larger source."
            )
        return out


def _shuffled(items: list, rng: np.random.Generator) -> list:
    return [items[i] for i in rng.permutation(len(items))]


def _choose_paired(picked_refs: list[ImageRef], k: int, recipe: Recipe, rng: np.random.Generator) -> tuple[set[int], str | None]:
    """Which k of the candidates get pairs: the first k of a seeded permutation, or k-medoids."""
    if recipe.selection == "kmedoids" and 0 < k < len(picked_refs):
        from .selection import kmedoids_select, selection_features

        feats, desc = selection_features([r.load() for r in picked_refs])
        return set(kmedoids_select(feats, k, recipe.seed)), desc
    return set(int(i) for i in rng.permutation(len(picked_refs))[:k]), None


# ================================================================================ planning
def plan(source: Source, recipe: Recipe, progress=None) -> Plan:
    """Decide every image of the composition (deterministic for the recipe's seed); writes nothing."""
    recipe.validate()
    rng = np.random.default_rng(recipe.seed)
    picker = _Picker(source, progress)
    if recipe.kind == "alpha-paired":
        items, features = _plan_alpha_paired(source, recipe, rng, picker)
    elif recipe.kind == "pseudo":
        items, features = _plan_pseudo(source, recipe, rng, picker)
    else:
        items, features = _plan_explicit(source, recipe, rng, picker)
    items += _plan_test(source, recipe, rng, picker)
    items += _balancing_copies(items, recipe.paired_copies)
    return Plan(source, recipe, items, picker.skipped, features)


def _identity_of(p: Pair):
    ident = p.sample.identity if p.sample is not None else None
    return ("id", ident) if ident is not None else ("pair", p.name)


def _plan_alpha_paired(source, recipe, rng, picker):
    n, k = recipe.n, int(round(recipe.alpha * recipe.n))
    pool = _shuffled(source.pairs(recipe.task, "train"), rng)
    if recipe.disjoint_identities:
        # A takes whole identities (in the shuffled order of their first pair), so the unpaired part of B can
        # come from the identities left over: no A face has another photo of itself among B's unpaired images
        groups: dict = {}
        for p in pool:
            groups.setdefault(_identity_of(p), []).append(p)
        a_pool = [p for g in groups.values() for p in g]
    else:
        a_pool = pool
    a_pairs = picker.take_pairs(a_pool, n, "training pairs for domain A")
    used = {p.name for p in a_pairs}
    paired_idx, features = _choose_paired([p.a for p in a_pairs], k, recipe, rng)
    rest = [p for p in pool if p.name not in used]
    if recipe.disjoint_identities:
        a_ids = {_identity_of(p) for p in a_pairs}
        rest = [p for p in rest if _identity_of(p) not in a_ids]
    other = picker.take_pairs(rest, n - k, "extra pairs for the unpaired part of B"
                              + (" from identities not in A (turn off disjoint identities to mix them)"
                                 if recipe.disjoint_identities else ""))
    items = []

    def prov(pair: Pair, side: str) -> str:
        return "real" if pair.real_side in (side, "both") else "truth"

    for i, p in enumerate(a_pairs):
        a_file, b_file = f"{_stem(p.name)}_A.jpg", f"{_stem(p.name)}_B.jpg"
        ident = p.sample.identity if p.sample else None
        items.append(Item("trainA", a_file, p.a, prov(p, "a"), p.a_name, pair=b_file if i in paired_idx else None, identity=ident))
        if i in paired_idx:
            items.append(Item("trainB", b_file, p.b, prov(p, "b"), p.b_name, identity=ident))
    for p in other:
        ident = p.sample.identity if p.sample else None
        items.append(Item("trainB", f"{_stem(p.name)}_B.jpg", p.b, prov(p, "b"), p.b_name, identity=ident))
    return items, features


def _pseudo_item(synth, b_item_file: str, sample: Sample, pts, rng, j: int, paired: bool) -> Item:
    params = synth.sample_params(rng, pts)
    return Item(
        "trainA",
        f"pseudo_{_stem(sample.name)}_{j}.jpg",
        sample.ref,
        "pseudo",
        sample.name,
        landmarks=pts,
        pair=b_item_file if paired else None,
        params=params,
        pseudo_of=sample.name,
        identity=sample.identity,
    )


def _synthesizer(recipe: Recipe):
    if recipe.task not in celeba.TASK_ATTRIBUTE:
        raise UserError("Pseudo-samples need a synthesizer: choose the eyeglasses or smile task.")
    from .synthesizers import get_synthesizer

    return get_synthesizer(recipe.task)


def _plan_pseudo(source, recipe, rng, picker):
    n = recipe.n
    counts = pseudo_counts(n, recipe.augmentation, recipe.pseudo_alpha)
    synth = _synthesizer(recipe) if recipe.needs_synthesizer else None
    synth_rng = np.random.default_rng([recipe.seed, 1])
    # The base (n real A, n real B) is the same for every augmentation with this seed and source,
    # so the baselines of Table 4 differ only in what is added.
    b_need_lm = synth is not None or "landmarks" in source.knows
    a_pool = _shuffled(source.domain(recipe.task, "A", "train"), rng)
    b_pool = _shuffled(source.domain(recipe.task, "B", "train"), rng)
    base_a = picker.take_samples(a_pool, n, "real training images of domain A", need_landmarks=False)
    base_b = picker.take_samples(b_pool, n, "real training images of domain B", need_landmarks=b_need_lm)
    items = []
    b_files = []
    for s, pts in base_b:
        f = f"{_stem(s.name)}.jpg"
        b_files.append(f)
        items.append(Item("trainB", f, s.ref, "real", s.name, landmarks=pts, identity=s.identity))
    for s, _ in base_a[: counts["real"]]:
        items.append(Item("trainA", f"{_stem(s.name)}.jpg", s.ref, "real", s.name, identity=s.identity))
    if counts["natural"]:
        used = {s.name for s, _ in base_a}
        extra = picker.take_samples([s for s in a_pool if s.name not in used], counts["natural"], "extra real images of domain A (natural augmentation)", False)
        items += [Item("trainA", f"{_stem(s.name)}.jpg", s.ref, "natural", s.name, identity=s.identity) for s, _ in extra]
    features = None
    n_paired = counts["pseudo_paired"]
    if n_paired:
        # Which b's get a pseudo-partner: all of them once, then again (fresh parameters) past n.
        first, features = _choose_paired([s.ref for s, _ in base_b], min(n_paired, n), recipe, rng)
        order = sorted(first) + [i for i in range(n) if i not in first]
        for j in range(n_paired):
            i = order[j % n] if n_paired > n else sorted(first)[j]
            s, pts = base_b[i]
            items.append(_pseudo_item(synth, b_files[i], s, pts, synth_rng, j // n, paired=True))
    if counts["pseudo_unpaired"]:
        used = {s.name for s, _ in base_b}
        others = picker.take_samples(
            [s for s in b_pool if s.name not in used], counts["pseudo_unpaired"], "B images for pseudo-unpaired samples", True
        )
        items += [_pseudo_item(synth, "", s, pts, synth_rng, 0, paired=False) for s, pts in others]
    return items, features


def _plan_explicit(source, recipe, rng, picker):
    items = []
    if recipe.pairs_from == "true":
        pairs = picker.take_pairs(_shuffled(source.pairs(recipe.task, "train"), rng), recipe.n, "training pairs")
        for p in pairs:
            f = f"{_stem(p.name)}.jpg"
            items.append(Item("trainA", f, p.a, "real" if p.real_side in ("a", "both") else "truth", p.a_name, pair=f))
            items.append(Item("trainB", f, p.b, "real" if p.real_side in ("b", "both") else "truth", p.b_name))
        return items, None
    synth = _synthesizer(recipe)
    synth_rng = np.random.default_rng([recipe.seed, 1])
    b_pool = _shuffled(source.domain(recipe.task, "B", "train"), rng)
    for s, pts in picker.take_samples(b_pool, recipe.n, "real training images of domain B", need_landmarks=True):
        f = f"{_stem(s.name)}.jpg"
        items.append(Item("trainB", f, s.ref, "real", s.name, landmarks=pts, identity=s.identity))
        item = _pseudo_item(synth, f, s, pts, synth_rng, 0, paired=True)
        item.file = f  # explicit pairs share a file name across trainA/trainB, as aligned datasets do
        items.append(item)
    return items, None


def _plan_test(source, recipe, rng, picker):
    if recipe.n_test == 0:
        return []
    test_rng = np.random.default_rng([recipe.seed, 2])
    items = []
    if "attributes" not in source.knows and "domains" not in source.knows:
        # Aligned sources: test pairs, each side the other's truth.
        pairs = _shuffled(source.pairs(recipe.task, "test"), test_rng)
        if not pairs:
            raise UserError(f"The source '{source.name}' has no test partition to draw test images from.")
        for p in picker.take_pairs(pairs, min(recipe.n_test, len(pairs)), "test pairs"):
            f = f"{_stem(p.name)}.jpg"
            items.append(Item("testA", f, p.a, "real", p.a_name, truth=p.b))
            items.append(Item("testB", f, p.b, "real", p.b_name, truth=p.a))
        return items
    for side in ("A", "B"):
        pool = _shuffled(source.domain(recipe.task, side, "test"), test_rng)
        if not pool:
            raise UserError(f"The source '{source.name}' has no domain-{side} images in its test partition.")
        for s, pts in picker.take_samples(pool, min(recipe.n_test, len(pool)), f"test images of domain {side}", False):
            truth = source.truth_of(s, recipe.task)
            if truth is not None and not picker.loads(truth):
                truth = None
            items.append(Item(f"test{side}", f"{_stem(s.name)}.jpg", s.ref, "real", s.name, landmarks=pts, truth=truth, identity=s.identity))
    return items


def _balancing_copies(items: list[Item], copies: int) -> list[Item]:
    """Paper 002's balancing: each known pair is repeated ``copies`` more times in both domains."""
    if copies <= 0:
        return []
    b_by_file = {it.file: it for it in items if it.split == "trainB"}
    extra = []
    for a in [it for it in items if it.split == "trainA" and it.pair]:
        b = b_by_file[a.pair]
        for c in range(1, copies + 1):
            bf = f"{Path(b.file).stem}_copy{c}.jpg"
            extra.append(Item("trainB", bf, b.ref, b.provenance, b.source_name, b.landmarks, copy_of=b.file, identity=b.identity))
            ac = Item("trainA", f"{Path(a.file).stem}_copy{c}.jpg", a.ref, a.provenance, a.source_name, a.landmarks,
                      pair=bf, params=a.params, pseudo_of=a.pseudo_of, identity=a.identity, copy_of=a.file)
            extra.append(ac)
    return extra


# ================================================================================ writing
def prepare(img: Image.Image, landmarks: np.ndarray | None, size: int) -> tuple[Image.Image, np.ndarray | None]:
    """Centre square crop + resize to ``size`` (0 keeps the image), moving the landmarks along."""
    if not size:
        return img, landmarks
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    if side != w or side != h:
        img = img.crop((left, top, left + side, top + side))
    if side != size:
        img = img.resize((size, size), Image.LANCZOS if side > size else Image.BICUBIC)
    if landmarks is not None:
        landmarks = (np.asarray(landmarks, dtype=np.float32) - [left, top]) * (size / side)
    return img, landmarks


def measured_alpha(manifest_images: dict) -> float:
    a = manifest_images.get("trainA", [])
    return sum(1 for e in a if e.get("pair")) / len(a) if a else 0.0


def makeup(manifest: dict) -> dict:
    """Counts per (split, provenance, paired?) for the composition chart."""
    out: Counter = Counter()
    for split in ("trainA", "trainB"):
        paired_b = {e["pair"] for e in manifest["images"].get("trainA", []) if e.get("pair")}
        for e in manifest["images"].get(split, []):
            paired = bool(e.get("pair")) if split == "trainA" else e["file"] in paired_b
            out[(split, e["provenance"], "paired" if paired else "unpaired")] += 1
    return {f"{s}|{p}|{q}": c for (s, p, q), c in sorted(out.items())}


def default_name(source: Source, recipe: Recipe) -> str:
    return workspace.safe_name(f"{source.name}-{recipe.short_name()}")


def unique_name(base: str, folder: Path) -> str:
    name, i = base, 2
    while (folder / name).exists():
        name, i = f"{base}-{i}", i + 1
    return name


def compose(source: Source, recipe: Recipe, name: str | None = None, out_root: Path | None = None, progress=None) -> Path:
    """Build the composition folder atomically and return its path."""
    progress = progress or (lambda f, m: None)
    start = time.time()
    out_root = Path(out_root) if out_root else workspace.sub("compositions")
    name = workspace.safe_name(name) if name else default_name(source, recipe)
    final = out_root / name
    if final.exists():
        raise UserError(f"A composition named '{name}' already exists; choose another name or delete it first.")
    progress(0.0, "Choosing images")
    the_plan = plan(source, recipe, progress)
    synth = _synthesizer(recipe) if recipe.needs_synthesizer else None
    size = int(recipe.image_size)
    with workspace.atomic_folder(final) as tmp:
        for split in SPLITS:
            (tmp / split).mkdir()
        total = len(the_plan.items)
        sizes = set()
        for i, it in enumerate(the_plan.items):
            img, pts = prepare(it.ref.load(), it.landmarks, size)
            if it.provenance == "pseudo":
                # the sample's CelebA-unit values, drawn against the landmarks of the image written here
                it.params = synth.fit(it.params, pts)
                img = Image.fromarray(synth.apply(np.asarray(img), pts, it.params))
            sizes.add(img.size)
            save_image(img, tmp / it.split / it.file)
            if it.truth is not None:
                (tmp / f"{it.split}_truth").mkdir(exist_ok=True)
                save_image(prepare(it.truth.load(), None, size)[0], tmp / f"{it.split}_truth" / it.file)
            if i % 16 == 0 or i == total - 1:
                progress(0.1 + 0.85 * (i + 1) / total, f"Writing images {i + 1}/{total}")
        if recipe.kind == "explicit":
            _write_aligned(tmp, the_plan)
        manifest = _manifest(the_plan, name, synth, sizes)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        (tmp / "build.json").write_text(json.dumps({"created": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": round(time.time() - start, 2)}))
        # every skipped file with its reason (the source's, e.g. links out of the allowed folders, then the plan's)
        (tmp / "skipped.txt").write_text("".join(f"{n}\t{r}\n" for n, r in list(source.skipped) + list(the_plan.skipped)))
    progress(1.0, f"Built {name}")
    return final


def _write_aligned(folder: Path, the_plan: Plan) -> None:
    """pix2pix's aligned layout: train/<name>.jpg is A (left) | B (right)."""
    (folder / "train").mkdir()
    for it in the_plan.split("trainA"):
        a = Image.open(folder / "trainA" / it.file).convert("RGB")
        b = Image.open(folder / "trainB" / it.pair).convert("RGB")
        ab = Image.new("RGB", (a.width + b.width, max(a.height, b.height)))
        ab.paste(a, (0, 0))
        ab.paste(b, (a.width, 0))
        save_image(ab, folder / "train" / it.file)


def _manifest(the_plan: Plan, name: str, synth, sizes: set) -> dict:
    recipe, source = the_plan.recipe, the_plan.source
    images = {split: [it.manifest_entry() for it in the_plan.split(split)] for split in SPLITS}
    counts = {split: len(v) for split, v in images.items()}
    counts["paired"] = sum(1 for e in images["trainA"] if e.get("pair"))
    for split in ("trainA", "trainB"):
        for prov, c in Counter(e["provenance"] for e in images[split]).items():
            counts[f"{split}_{prov}"] = c
    attr = celeba.TASK_ATTRIBUTE.get(recipe.task)
    return {
        "kind": "composition",
        "name": name,
        "pairlab_version": __version__,
        "recipe": recipe.to_dict(),
        "seed": recipe.seed,
        "task": recipe.task,
        "domains": {"A": f"with {attr}", "B": f"without {attr}"} if attr else {"A": "domain A", "B": "domain B"},
        "source": {k: v for k, v in source.describe().items() if k in ("kind", "name", "root", "fingerprint", "knows")},
        "synthesizer": {"name": synth.name, "ranges": synth.param_ranges()} if synth else None,
        "selection": {"method": recipe.selection, "features": the_plan.selection_features},
        "image_size": sorted(sizes)[0] if len(sizes) == 1 else sorted(sizes),
        "alpha_target": recipe.alpha_target,
        "alpha_measured": measured_alpha(images),
        "counts": counts,
        "skipped": dict(Counter(r for _, r in the_plan.skipped)),
        "skipped_files": [list(x) for x in the_plan.skipped[:500]],
        "has_truth": any(e.get("truth") for e in images["testA"] + images["testB"]),
        "images": images,
    }


# ================================================================================ the workspace's compositions
def load_manifest(path: Path) -> dict:
    """A composition's manifest, with the alpha names of today whichever version wrote it.

    ``alpha_target`` is what the recipe asked for (None when it sets none) and ``alpha_measured`` the share of
    paired trainA images. Manifests written before these names carry the measured value as ``alpha``; they get
    ``alpha_measured`` from it, and ``alpha_target`` from their recipe when they lack one. ``alpha`` itself is kept
    in the returned dict as a legacy alias of ``alpha_measured`` (for readers not moved to the new name yet);
    new manifests do not write it.
    """
    path = Path(path)
    file = path / "manifest.json" if path.is_dir() else path
    try:
        m = json.loads(file.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} is not a composition (no manifest.json).")
    except json.JSONDecodeError:
        raise UserError(f"{file} is not valid JSON.")
    if isinstance(m, dict):
        if "alpha_measured" not in m and "alpha" in m:
            m["alpha_measured"] = m["alpha"]
        if "alpha_target" not in m and isinstance(m.get("recipe"), dict):
            m["alpha_target"] = alpha_target_of(m["recipe"])
        if "alpha_measured" in m:
            m["alpha"] = m["alpha_measured"]  # legacy alias
    return m


def list_compositions(root: Path | None = None) -> list[dict]:
    root = Path(root) if root else workspace.sub("compositions")
    out = []
    for folder in sorted(root.iterdir()) if root.exists() else []:
        if folder.name.startswith(".") or not (folder / "manifest.json").exists():
            continue
        try:
            m = load_manifest(folder)
            out.append({"name": folder.name, "path": str(folder), "task": m.get("task"), "recipe": m["recipe"]["kind"],
                        "alpha": m.get("alpha_measured"), "trainA": m["counts"]["trainA"], "trainB": m["counts"]["trainB"],
                        "testA": m["counts"]["testA"], "source": m["source"]["name"], "seed": m.get("seed")})
        except (UserError, KeyError, TypeError, AttributeError):
            continue  # a damaged or foreign manifest: not listed, and the app keeps serving
    return out


def delete_composition(name: str, root: Path | None = None) -> None:
    root = Path(root) if root else workspace.sub("compositions")
    folder = root / workspace.safe_name(name)
    if not (folder / "manifest.json").exists() or not workspace.remove_folder(folder):
        raise UserError(f"There is no composition named '{name}'.")


def preview(source: Source, recipe: Recipe, count: int = 6) -> dict:
    """What a build would make, without writing: side-by-side examples (M(b) | b with the synthesizer's
    parameters, or a | T(a)), the make-up counts and the alpha the composition will ask for and have
    (``alpha_target``, ``alpha_measured``: the names its manifest will use)."""
    the_plan = plan(source, recipe)
    images = {split: [it.manifest_entry() for it in the_plan.split(split)] for split in SPLITS}
    return {"examples": _examples(the_plan, count), "makeup": makeup({"images": images}),
            "alpha_target": recipe.alpha_target, "alpha_measured": measured_alpha(images),
            "skipped": dict(Counter(r for _, r in the_plan.skipped))}


def _examples(the_plan: Plan, count: int) -> list[tuple[Image.Image, str]]:
    recipe = the_plan.recipe
    synth = _synthesizer(recipe) if recipe.needs_synthesizer else None
    by_b = {it.file: it for it in the_plan.split("trainB")}
    size = int(recipe.image_size)
    out = []
    pseudo = [it for it in the_plan.split("trainA") if it.provenance == "pseudo" and it.copy_of is None]
    real_pairs = [it for it in the_plan.split("trainA") if it.pair and it.provenance != "pseudo" and it.copy_of is None]
    for it in (pseudo + real_pairs)[:count]:
        a, pts = prepare(it.ref.load(), it.landmarks, size)
        if it.provenance == "pseudo":
            params = synth.fit(it.params, pts)
            a = Image.fromarray(synth.apply(np.asarray(a), pts, params))
            shown = {k: v for k, v in params.items() if not isinstance(v, (list, dict))}
            caption = "M(b) | b  " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in list(shown.items())[:5])
        else:
            caption = f"a | T(a)  ({it.source_name})"
        if it.pair:
            b = prepare(by_b[it.pair].ref.load(), None, size)[0]
        else:
            b = prepare(it.ref.load(), None, size)[0]
            caption += " (unpaired: its b is not in the set)"
        both = Image.new("RGB", (a.width + b.width, max(a.height, b.height)), "white")
        both.paste(a, (0, 0))
        both.paste(b, (a.width, 0))
        out.append((both, caption))
    return out
