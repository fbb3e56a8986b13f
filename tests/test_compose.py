"""Recipes -> compositions: exact alpha accounting, determinism, atomic writes, bad input."""
import argparse
import json

import numpy as np
import pytest
from PIL import Image

from conftest import make_celeba
from pairlab.data import compose
from pairlab.data.recipes import Recipe, pseudo_counts
from pairlab.data.sources import open_source
from pairlab.errors import UserError


@pytest.fixture(scope="module")
def celeba_big(tmp_path_factory):
    """A CelebA-format source with enough images for N up to ~20 per domain (small images for speed)."""
    return open_source(make_celeba(tmp_path_factory.mktemp("cb") / "celeba", n=210, size=(89, 109)))


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    """An aligned A|B source: 60 train pairs, 10 test pairs, each pair a distinct colour."""
    root = tmp_path_factory.mktemp("al") / "aligned"
    rng = np.random.default_rng(0)
    for split, count in (("train", 60), ("test", 10)):
        (root / split).mkdir(parents=True)
        for i in range(count):
            img = Image.new("RGB", (64, 32), tuple(int(v) for v in rng.integers(0, 255, 3)))
            img.paste(Image.new("RGB", (32, 32), tuple(int(v) for v in rng.integers(0, 255, 3))), (32, 0))
            img.save(root / split / f"{i:03d}.png")
    return open_source(root)


def build(source, tmp_path, **kw):
    recipe = Recipe(**kw).validate()
    return compose.compose(source, recipe, name=f"c{abs(hash(json.dumps(kw, sort_keys=True)))}", out_root=tmp_path)


def manifest(path):
    return compose.load_manifest(path)


# --------------------------------------------------------------------------------- alpha-paired
@pytest.mark.parametrize("n", [7, 20])
@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_alpha_paired_accounting(aligned, tmp_path, n, alpha):
    path = build(aligned, tmp_path, kind="alpha-paired", task="folders", n=n, alpha=alpha, n_test=4)
    m = manifest(path)
    A, B = m["images"]["trainA"], m["images"]["trainB"]
    k = int(round(alpha * n))
    assert len(A) == len(B) == n
    assert sum(1 for e in A if e["pair"]) == k
    assert m["alpha"] == pytest.approx(k / n)
    b_files = {e["file"] for e in B}
    for e in A:
        if e["pair"]:
            assert e["pair"] in b_files
            # the pair is the true counterpart: same aligned file, other half
            pair_src = next(b["source"] for b in B if b["file"] == e["pair"])
            assert pair_src.split("#")[0] == e["source"].split("#")[0]
    # the unpaired part of B holds no counterpart of any A image
    a_files = {e["source"].split("#")[0] for e in A}
    paired_b = {e["pair"] for e in A if e["pair"]}
    for b in B:
        if b["file"] not in paired_b:
            assert b["source"].split("#")[0] not in a_files
    # files on disk match the manifest
    for split in ("trainA", "trainB", "testA", "testB"):
        assert sorted(p.name for p in (path / split).iterdir()) == sorted(e["file"] for e in m["images"][split])


def test_alpha_paired_test_split_is_test_partition_only(aligned, tmp_path):
    m = manifest(build(aligned, tmp_path, kind="alpha-paired", task="folders", n=20, alpha=0.5, n_test=10))
    assert all(e["source"].startswith("train/") for s in ("trainA", "trainB") for e in m["images"][s])
    assert all(e["source"].startswith("test/") for s in ("testA", "testB") for e in m["images"][s])
    # aligned test pairs: each side is the other's truth
    assert all(e["truth"] == f"testA_truth/{e['file']}" for e in m["images"]["testA"])
    assert m["has_truth"]


def test_alpha_paired_needs_enough_pairs(aligned, tmp_path):
    # 60 train pairs: N = 40 at alpha 0 needs 80.
    with pytest.raises(UserError, match="only .* usable pairs remain"):
        build(aligned, tmp_path, kind="alpha-paired", task="folders", n=40, alpha=0.0)
    build(aligned, tmp_path, kind="alpha-paired", task="folders", n=40, alpha=0.5, n_test=2)  # needs 60


def test_alpha_paired_needs_a_paired_source(celeba_big, tmp_path):
    with pytest.raises(UserError, match="knows no true pairs"):
        build(celeba_big, tmp_path, kind="alpha-paired", task="eyeglasses", n=5)


def test_kmedoids_selection(aligned, tmp_path):
    m = manifest(build(aligned, tmp_path, kind="alpha-paired", task="folders", n=20, alpha=0.25, selection="kmedoids", n_test=2))
    assert sum(1 for e in m["images"]["trainA"] if e["pair"]) == 5
    assert m["selection"]["method"] == "kmedoids" and "tiny-image" in m["selection"]["features"]


def test_balancing_copies(aligned, tmp_path):
    m = manifest(build(aligned, tmp_path, kind="alpha-paired", task="folders", n=10, alpha=0.5, paired_copies=2, n_test=2))
    # 5 pairs, each copied twice more in both domains
    assert len(m["images"]["trainA"]) == 10 + 10 and len(m["images"]["trainB"]) == 10 + 10
    assert sum(1 for e in m["images"]["trainA"] if e["pair"]) == 15
    assert m["alpha"] == pytest.approx(15 / 20)


# --------------------------------------------------------------------------------- pseudo
@pytest.mark.parametrize("n", [8, 13])
@pytest.mark.parametrize(
    "augmentation, pseudo_alpha",
    [("none", 0.5), ("natural", 0.5), ("pseudo-unpaired", 0.5), ("pseudo-paired", 0.25), ("pseudo-paired", 0.5),
     ("pseudo-paired", 0.75), ("pseudo-paired", 1.0)],
)
def test_pseudo_accounting(celeba_big, tmp_path, n, augmentation, pseudo_alpha):
    path = build(celeba_big, tmp_path, kind="pseudo", task="eyeglasses", n=n, augmentation=augmentation,
                 pseudo_alpha=pseudo_alpha, n_test=3)
    m = manifest(path)
    A, B = m["images"]["trainA"], m["images"]["trainB"]
    want = pseudo_counts(n, augmentation, pseudo_alpha)
    count = lambda prov, paired=None: sum(1 for e in A if e["provenance"] == prov and (paired is None or bool(e["pair"]) == paired))
    assert len(B) == n and all(e["provenance"] == "real" for e in B)
    assert count("real") == want["real"] and count("natural") == want["natural"]
    assert count("pseudo", True) == want["pseudo_paired"] and count("pseudo", False) == want["pseudo_unpaired"]
    assert len(A) == (n if augmentation == "none" else 2 * n)
    paired = want["pseudo_paired"]
    assert m["alpha"] == pytest.approx(paired / len(A))
    if augmentation == "pseudo-paired":
        assert m["alpha"] == pytest.approx(round(pseudo_alpha * 2 * n) / (2 * n))
    b_by_file = {e["file"]: e for e in B}
    b_sources = {e["source"] for e in B}
    for e in A:
        if e["provenance"] == "pseudo":
            assert e["params"]["opacity"] >= 0.1
            if e["pair"]:
                assert b_by_file[e["pair"]]["source"] == e["pseudo_of"]
            else:
                assert e["pseudo_of"] not in b_sources
    # real A images carry the attribute, real B images do not; none of them from the test partition
    src = {s.name: s for s in celeba_big.samples}
    for e in A:
        if e["provenance"] in ("real", "natural"):
            assert src[e["source"]].attrs["Eyeglasses"] == 1 and src[e["source"]].partition == "train"
    assert all(src[e["source"]].attrs["Eyeglasses"] == -1 and src[e["source"]].partition == "train" for e in B)
    assert all(src[e["source"]].partition == "test" for s in ("testA", "testB") for e in m["images"][s])
    # names are unique within each folder
    assert len({e["file"] for e in A}) == len(A)


def test_pseudo_baselines_share_their_base(celeba_big, tmp_path):
    ms = [manifest(build(celeba_big, tmp_path, kind="pseudo", task="eyeglasses", n=10, augmentation=a, n_test=2))
          for a in ("none", "natural", "pseudo-unpaired", "pseudo-paired")]
    bases_b = [[e["source"] for e in m["images"]["trainB"]] for m in ms]
    bases_a = [[e["source"] for e in m["images"]["trainA"] if e["provenance"] == "real"] for m in ms]
    assert all(b == bases_b[0] for b in bases_b) and all(a == bases_a[0] for a in bases_a)


def test_pseudo_pairs_beyond_n_reuse_b_with_fresh_parameters(celeba_big, tmp_path):
    m = manifest(build(celeba_big, tmp_path, kind="pseudo", task="eyeglasses", n=6, augmentation="pseudo-paired", pseudo_alpha=1.0, n_test=2))
    A = m["images"]["trainA"]
    assert len(A) == 12 and all(e["pair"] for e in A)
    by_b = {}
    for e in A:
        by_b.setdefault(e["pair"], []).append(e["params"])
    assert len(by_b) == 6 and all(len(v) == 2 and v[0] != v[1] for v in by_b.values())


def test_explicit_pairs_are_aligned(celeba_big, tmp_path):
    path = build(celeba_big, tmp_path, kind="explicit", task="smile", n=6, n_test=2)
    m = manifest(path)
    assert m["alpha"] == 1.0
    assert [e["file"] for e in m["images"]["trainA"]] == [e["pair"] for e in m["images"]["trainA"]]
    for e in m["images"]["trainA"]:
        ab = Image.open(path / "train" / e["file"])
        a = Image.open(path / "trainA" / e["file"])
        assert ab.size == (2 * a.width, a.height)


# --------------------------------------------------------------------------------- determinism and atomicity
def test_same_seed_same_manifest_and_images(celeba_big, tmp_path):
    kw = dict(kind="pseudo", task="eyeglasses", n=8, augmentation="pseudo-paired", pseudo_alpha=0.75, n_test=3)
    p1 = compose.compose(celeba_big, Recipe(**kw), name="one", out_root=tmp_path)
    p2 = compose.compose(celeba_big, Recipe(**kw), name="two", out_root=tmp_path)
    m1, m2 = manifest(p1), manifest(p2)
    m1.pop("name"), m2.pop("name")
    assert m1 == m2
    for e in m1["images"]["trainA"]:
        assert (p1 / "trainA" / e["file"]).read_bytes() == (p2 / "trainA" / e["file"]).read_bytes()
    p3 = compose.compose(celeba_big, Recipe(**{**kw, "seed": 1}), name="three", out_root=tmp_path)
    assert manifest(p3)["images"] != m1["images"]


def test_failure_leaves_nothing_half_written(celeba_big, tmp_path, monkeypatch):
    calls = {"n": 0}
    real_save = compose.save_image

    def failing_save(img, path, **kw):
        calls["n"] += 1
        if calls["n"] == 7:
            raise OSError("disk full")
        real_save(img, path, **kw)

    monkeypatch.setattr(compose, "save_image", failing_save)
    with pytest.raises(OSError):
        compose.compose(celeba_big, Recipe(kind="pseudo", task="eyeglasses", n=5, n_test=2), name="broken", out_root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_existing_name_is_refused(celeba_big, tmp_path):
    compose.compose(celeba_big, Recipe(kind="pseudo", n=4, n_test=1, augmentation="none"), name="x", out_root=tmp_path)
    with pytest.raises(UserError, match="already exists"):
        compose.compose(celeba_big, Recipe(kind="pseudo", n=4, n_test=1, augmentation="none"), name="x", out_root=tmp_path)


# --------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("field, value, message", [
    ("alpha", 1.5, "alpha must be between 0 and 1"), ("alpha", -0.1, "alpha must be between 0 and 1"),
    ("pseudo_alpha", 2.0, "pseudo alpha must be between 0 and 1"), ("n", 0, "N must be at least 1"),
    ("kind", "magic", "Unknown recipe kind"), ("augmentation", "x", "Unknown augmentation"),
    ("image_size", 5000, "Image size must be between"),
])
def test_bad_recipe_values(field, value, message):
    with pytest.raises(UserError, match=message):
        Recipe(**{field: value}).validate()


# --------------------------------------------------------------------------------- Recipe.from_form
def test_from_form_takes_ui_types():
    # what the Datasets tab's widgets hold: whole floats from number boxes, an int from a dropdown, a bool
    form = {"kind": "alpha-paired", "task": "eyeglasses", "n": 20.0, "alpha": 0.25, "augmentation": "pseudo-paired",
            "pseudo_alpha": 0.5, "pairs_from": "pseudo", "n_test": 5.0, "selection": "kmedoids", "paired_copies": 2.0,
            "image_size": 64, "seed": 3.0, "disjoint_identities": False}
    r = Recipe.from_form(form)
    assert r == Recipe(kind="alpha-paired", n=20, alpha=0.25, n_test=5, selection="kmedoids", paired_copies=2,
                       image_size=64, seed=3, disjoint_identities=False)
    assert type(r.n) is int and type(r.seed) is int and type(r.alpha) is float
    # missing, None and empty fields take their defaults
    assert Recipe.from_form({"kind": "pseudo", "n": None, "seed": "", "alpha": "  "}) == Recipe(kind="pseudo")
    assert Recipe.from_form({}) == Recipe()
    assert Recipe.from_form({"n": "12"}).n == 12  # typed text


@pytest.mark.parametrize("values, message", [
    ({"n": 2.5}, "^N per domain must be a whole number, got 2.5.$"),
    ({"n": "many"}, "^N per domain must be a number, got 'many'.$"),
    ({"alpha": float("nan")}, "^Alpha must be a finite number, got nan.$"),
    ({"n": 0}, "^N must be at least 1, got 0.$"),
    ({"alpha": 1.5}, "^alpha must be between 0 and 1, got 1.5.$"),
    ({"seed": -1}, "^The seed must be between 0 and 2147483647, got -1.$"),
    ({"kind": "magic"}, "^Unknown recipe kind 'magic'"),
    ({"disjoint_identities": "yes"}, "^Whether A's identities stay out of B must be true or false, got 'yes'.$"),
    ({"balance": 2}, "^Unknown recipe field\\(s\\): balance.$"),
])
def test_from_form_bad_values_are_one_sentence(values, message):
    with pytest.raises(UserError, match=message):
        Recipe.from_form(values)


def test_from_form_blank_error_asks_for_the_field():
    with pytest.raises(UserError, match="^Please fill in the number of test images per domain.$"):
        Recipe.from_form({"n": 10, "n_test": None}, blank="error")
    with pytest.raises(UserError, match="^Please fill in N per domain.$"):
        Recipe.from_form({"n": ""}, blank="error")
    assert Recipe.from_form({"n": 10}, blank="error").n == 10


def test_cli_compose_builds_its_recipe_with_from_form(monkeypatch):
    from pairlab.cli import data as cli_data

    seen, real = [], Recipe.from_form.__func__

    def spy(cls, values, **kw):
        seen.append(values)
        return real(cls, values, **kw)

    def no_source(args):
        raise UserError("stop here")

    monkeypatch.setattr(Recipe, "from_form", classmethod(spy))
    monkeypatch.setattr(cli_data, "_source_from_args", no_source)
    parser = argparse.ArgumentParser()
    cli_data.add_commands(parser.add_subparsers())
    args = parser.parse_args(["compose", "synthfaces", "--n", "12", "--alpha", "0.25", "--mixed-identities"])
    with pytest.raises(UserError, match="stop here"):
        args.func(args)
    assert seen and seen[0]["n"] == 12 and seen[0]["alpha"] == 0.25 and seen[0]["disjoint_identities"] is False


# --------------------------------------------------------------------------------- alpha names in the manifest
def test_manifest_writes_alpha_target_and_alpha_measured(aligned, tmp_path):
    path = build(aligned, tmp_path, kind="alpha-paired", task="folders", n=10, alpha=0.5, paired_copies=1, n_test=2)
    raw = json.loads((path / "manifest.json").read_text())
    assert "alpha" not in raw
    assert raw["alpha_target"] == 0.5 and raw["alpha_measured"] == pytest.approx(10 / 15)
    m = compose.load_manifest(path)
    assert m["alpha_measured"] == m["alpha"] == raw["alpha_measured"]  # ``alpha``: the legacy alias
    assert [c["alpha"] for c in compose.list_compositions(tmp_path)] == [raw["alpha_measured"]]


def _old_manifest(recipe: dict, alpha_target, alpha, with_target=True) -> dict:
    """A manifest as compose.py wrote it before the alpha names changed (measured alpha under ``alpha``)."""
    trainA = [{"file": f"{i}.jpg", "provenance": "real", "source": f"train/{i}.png", "pair": f"{i}.jpg" if i < 3 else None}
              for i in range(4)]
    trainB = [{"file": f"{i}.jpg", "provenance": "real", "source": f"train/{i}.png"} for i in range(4)]
    m = {"kind": "composition", "name": "old", "pairlab_version": "0.1.0", "recipe": recipe, "seed": recipe["seed"],
         "task": recipe["task"], "domains": {"A": "domain A", "B": "domain B"},
         "source": {"kind": "aligned", "name": "aligned", "root": "/data/aligned", "fingerprint": "abc123", "knows": ["pairs"]},
         "synthesizer": None, "selection": {"method": "random", "features": None}, "image_size": 32,
         "alpha_target": alpha_target, "alpha": alpha,
         "counts": {"trainA": 4, "trainB": 4, "testA": 0, "testB": 0, "paired": 3, "trainA_real": 4, "trainB_real": 4},
         "skipped": {}, "skipped_files": [], "has_truth": False,
         "images": {"trainA": trainA, "trainB": trainB, "testA": [], "testB": []}}
    if not with_target:
        del m["alpha_target"]
    return m


@pytest.mark.parametrize("recipe, target, with_target", [
    ({"kind": "alpha-paired", "alpha": 0.75}, 0.75, True),
    ({"kind": "alpha-paired", "alpha": 0.75}, 0.75, False),  # no alpha_target at all: read from the recipe
    ({"kind": "pseudo", "augmentation": "pseudo-paired", "pseudo_alpha": 0.25}, 0.25, True),
    ({"kind": "pseudo", "augmentation": "pseudo-paired", "pseudo_alpha": 0.25}, 0.25, False),
    ({"kind": "pseudo", "augmentation": "natural"}, None, True),
    ({"kind": "explicit", "pairs_from": "true"}, None, False),
])
def test_a_manifest_written_before_the_rename_loads(tmp_path, recipe, target, with_target):
    full = {"kind": "alpha-paired", "task": "folders", "n": 4, "alpha": 0.5, "augmentation": "pseudo-paired",
            "pseudo_alpha": 0.5, "pairs_from": "pseudo", "n_test": 0, "selection": "random", "paired_copies": 0,
            "disjoint_identities": True, "image_size": 32, "seed": 0}
    full.update(recipe)
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(_old_manifest(full, target, 0.75, with_target), indent=1))
    m = compose.load_manifest(folder)
    assert m["alpha_measured"] == 0.75 and m["alpha"] == 0.75
    assert m["alpha_target"] == target
    assert Recipe.from_dict(m["recipe"]).alpha_target == target
    listed = compose.list_compositions(tmp_path)
    assert [(c["name"], c["alpha"]) for c in listed] == [("old", 0.75)]


def test_n_larger_than_available(celeba_big, tmp_path):
    with pytest.raises(UserError, match="Asked for 500 real training images of domain A but only"):
        build(celeba_big, tmp_path, kind="pseudo", task="eyeglasses", n=500)
    assert not any(p for p in tmp_path.iterdir())


def test_bad_images_are_skipped_and_counted(tmp_path):
    bad = {3: b"", 6: b"not an image", 9: b"\xff\xd8\xff\xe0" + b"\x00" * 50, 12: b"GIF89a"}
    src = open_source(make_celeba(tmp_path / "celeba", n=120, size=(89, 109), bad=bad))
    path = build(src, tmp_path / "out", kind="pseudo", task="eyeglasses", n=20, augmentation="pseudo-paired", n_test=3)
    m = manifest(path)
    assert len(m["images"]["trainA"]) == 40
    skipped = dict(m["skipped_files"])
    # Only the candidates the seeded order reached are examined; each of those is recorded with its reason.
    expected = {"000003.jpg": "empty file", "000006.jpg": "not an image", "000009.jpg": "not an image", "000012.jpg": "not an image"}
    assert skipped and all(expected[name] == reason for name, reason in skipped.items())
    assert sum(m["skipped"].values()) == len(m["skipped_files"])
    used = {e["source"] for s in ("trainA", "trainB") for e in m["images"][s]}
    assert not used & {"000003.jpg", "000006.jpg", "000009.jpg", "000012.jpg"}


def test_pseudo_recipe_needs_an_attribute_task(aligned, tmp_path):
    with pytest.raises(UserError, match="choose the eyeglasses or smile task"):
        build(aligned, tmp_path, kind="explicit", task="folders", n=3)


def test_unaligned_folder_gets_landmarks_from_mtcnn_and_skips_faceless(synthfaces_root, tmp_path, home):
    """A folder with no landmark file: MTCNN finds the faces; an image without a face is reported and skipped."""
    import shutil

    sf = open_source(synthfaces_root)
    root = tmp_path / "folders"
    for split, part in (("train", "train"), ("test", "test")):
        for side, want in (("A", 1), ("B", -1)):
            (root / f"{split}{side}").mkdir(parents=True)
            chosen = [s for s in sf.samples if s.partition == part and s.attrs["Eyeglasses"] == want][:12]
            for s in chosen:
                shutil.copy(s.ref.path, root / f"{split}{side}" / s.name)
    Image.new("RGB", (64, 64), (90, 120, 200)).save(root / "trainB" / "000000-blank.jpg")  # no face here
    src = open_source(root)
    assert "landmarks" not in src.knows
    found = {s.name: (pts, reason) for s, pts, reason in src.landmarks_for(src.domain("eyeglasses", "B", "train"))}
    assert found["trainB/000000-blank.jpg"] == (None, "no face found")
    assert sum(pts is not None for pts, _ in found.values()) >= 9  # MTCNN finds most SynthFaces faces at 64 px
    path = compose.compose(src, Recipe(kind="pseudo", task="eyeglasses", n=8, augmentation="pseudo-paired", n_test=2),
                           name="mtcnn", out_root=tmp_path / "out")
    m = manifest(path)
    assert all(reason == "no face found" for _, reason in m["skipped_files"])
    assert len(m["images"]["trainB"]) == 8
    skipped_names = {name for name, _ in m["skipped_files"]}
    assert not skipped_names & {e["source"].split("/")[-1] for e in m["images"]["trainB"]}
    pseudo = [e for e in m["images"]["trainA"] if e["provenance"] == "pseudo"]
    assert pseudo and all(e["params"]["eye_distance_px"] > 10 for e in pseudo)
    # the landmark cache is reused on a second build
    assert list((home / "cache").glob("landmarks-unaligned-*.json"))


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_synthfaces_alpha_paired_uses_true_counterparts(synthfaces_root, tmp_path, alpha):
    """On SynthFaces a pair is (image, the same identity and pose with the attribute toggled)."""
    src = open_source(synthfaces_root)
    assert src.kind == "synthfaces" and "pairs" in src.knows
    path = build(src, tmp_path, kind="alpha-paired", task="eyeglasses", n=40, alpha=alpha, n_test=6)
    m = manifest(path)
    A, B = m["images"]["trainA"], m["images"]["trainB"]
    assert len(A) == len(B) == 40 and sum(1 for e in A if e["pair"]) == round(alpha * 40)
    attrs = {s.name: s.attrs for s in src.samples}
    b_by_file = {e["file"]: e for e in B}
    for e in A:
        # each A image wears glasses: a real one with glasses, or the truth render of a real one without
        if e["provenance"] == "real":
            assert attrs[e["source"]]["Eyeglasses"] == 1
        else:
            assert e["provenance"] == "truth" and e["source"].endswith("_Eyeglasses.jpg")
        if e["pair"]:
            b = b_by_file[e["pair"]]
            assert b["identity"] == e["identity"]
            img_a = np.asarray(Image.open(path / "trainA" / e["file"]), dtype=float)
            img_b = np.asarray(Image.open(path / "trainB" / b["file"]), dtype=float)
            # same face, glasses toggled: the lower half (mouth, chin) is all but identical
            assert np.abs(img_a[40:] - img_b[40:]).mean() < 3.0
    # test images know their ground truth
    assert m["has_truth"]
    for e in m["images"]["testA"]:
        assert (path / e["truth"]).exists()
