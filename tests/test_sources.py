"""Source readers: the CelebA layout in its exact real format, unaligned and aligned folders, bad metadata."""
import numpy as np
import pytest
from PIL import Image

from pairlab import workspace
from pairlab.data import celeba
from pairlab.data.sources import detect_layout, open_source
from pairlab.errors import UserError


def test_celeba_reader_on_real_format(celeba_root):
    src = open_source(celeba_root)
    assert src.kind == "celeba"
    assert set(src.knows) >= {"attributes", "landmarks", "partition", "identities"}
    assert "pairs" not in src.knows
    assert len(src.samples) == 40
    s = {x.name: x for x in src.samples}
    # 000003 has eyeglasses, 000002 smiles, partition by the file, identity by the file.
    assert s["000003.jpg"].attrs["Eyeglasses"] == 1 and s["000002.jpg"].attrs["Eyeglasses"] == -1
    assert s["000002.jpg"].attrs["Smiling"] == 1
    assert s["000001.jpg"].partition == "train" and s["000040.jpg"].partition == "test"
    assert s["000030.jpg"].partition == "val"
    assert s["000004.jpg"].identity == 1001
    np.testing.assert_allclose(s["000003.jpg"].landmarks[0], [70, 112])
    # Images keep the real CelebA size.
    assert s["000001.jpg"].ref.load().size == (178, 218)
    assert src.tasks() == ["eyeglasses", "smile"]
    a = src.domain("eyeglasses", "A", "train")
    b = src.domain("eyeglasses", "B", "train")
    assert a and b and all(x.attrs["Eyeglasses"] == 1 for x in a) and all(x.attrs["Eyeglasses"] == -1 for x in b)
    with pytest.raises(UserError, match="knows no true pairs"):
        src.pairs("eyeglasses", "train")


def test_our_writers_round_trip_the_real_format(tmp_path, celeba_root):
    names, attrs = celeba.read_attr_file(celeba_root / celeba.ATTR_FILE)
    assert names == celeba.ATTRIBUTES
    rows = [(k, dict(zip(names, (int(v) for v in vals)))) for k, vals in attrs.items()]
    celeba.write_attr_file(tmp_path / "a.txt", rows)
    assert (tmp_path / "a.txt").read_text() == (celeba_root / celeba.ATTR_FILE).read_text()
    lms = celeba.read_landmark_file(celeba_root / celeba.LANDMARK_FILE)
    celeba.write_landmark_file(tmp_path / "l.txt", list(lms.items()))
    assert celeba.read_landmark_file(tmp_path / "l.txt").keys() == lms.keys()


def test_fingerprint_is_stable_and_sensitive(celeba_root):
    f1 = open_source(celeba_root).fingerprint()
    assert open_source(celeba_root).fingerprint() == f1
    text = (celeba_root / celeba.ATTR_FILE).read_text().replace("000001.jpg -1", "000001.jpg  1", 1)
    (celeba_root / celeba.ATTR_FILE).write_text(text)
    assert open_source(celeba_root).fingerprint() != f1


def test_missing_metadata_files_are_reported(celeba_root):
    (celeba_root / celeba.ATTR_FILE).unlink()
    (celeba_root / celeba.LANDMARK_FILE).unlink()
    (celeba_root / celeba.PARTITION_FILE).unlink()
    src = open_source(celeba_root)
    assert "attributes" not in src.knows and "landmarks" not in src.knows
    assert any("list_attr_celeba.txt" in n for n in src.notes)
    assert any("MTCNN" in n for n in src.notes)
    assert {s.partition for s in src.samples} <= {"train", "val", "test"}
    with pytest.raises(UserError, match="cannot tell domain"):
        src.domain("eyeglasses", "A", "train")


@pytest.mark.parametrize(
    "file, text, message",
    [
        (celeba.ATTR_FILE, "3\n", "needs a count line and a header"),
        (celeba.ATTR_FILE, "1\nEyeglasses Smiling\n000001.jpg 1\n", "expected 3 fields"),
        (celeba.ATTR_FILE, "1\nEyeglasses Smiling\n000001.jpg 1 0\n", "must be -1 or 1"),
        (celeba.ATTR_FILE, "1\nEyeglasses Smiling\n000001.jpg yes no\n", "must be -1 or 1"),
        (celeba.LANDMARK_FILE, "1\nheader\n000001.jpg 1 2 3\n", "10 numbers"),
        (celeba.LANDMARK_FILE, "1\nheader\n000001.jpg a b c d e f g h i j\n", "must be numbers"),
        (celeba.PARTITION_FILE, "000001.jpg train\n", "whole number"),
    ],
)
def test_malformed_metadata_gives_one_sentence(celeba_root, file, text, message):
    (celeba_root / file).write_text(text)
    with pytest.raises(UserError, match=message) as info:
        open_source(celeba_root)
    assert "\n" not in str(info.value)


def test_binary_metadata_file(celeba_root):
    (celeba_root / celeba.ATTR_FILE).write_bytes(b"\xff\xfe\x00\x81" * 50)
    with pytest.raises(UserError, match="not a text file"):
        open_source(celeba_root)


def test_listed_but_missing_images_are_skipped(celeba_root):
    (celeba_root / "img_align_celeba" / "000005.jpg").unlink()
    src = open_source(celeba_root)
    assert len(src.samples) == 39
    assert ("000005.jpg", "missing file") in src.skipped


def _save(path, color, size=(32, 32)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def test_unaligned_reader(tmp_path):
    for split in ("trainA", "trainB", "testA", "testB"):
        for i in range(3):
            _save(tmp_path / "u" / split / f"{i}.png", "red" if split.endswith("A") else "blue")
    (tmp_path / "u" / "trainA" / "notes.txt").write_text("not an image")
    src = open_source(tmp_path / "u")
    assert src.kind == "unaligned" and len(src.samples) == 12
    a = src.domain("folders", "A", "train")
    assert len(a) == 3 and all(s.domain == "A" for s in a)
    assert len(src.domain("eyeglasses", "B", "test")) == 3  # folder layouts: the task only picks the synthesizer
    with pytest.raises(UserError, match="knows no true pairs"):
        src.pairs("folders", "train")


def test_aligned_reader_splits_halves(tmp_path):
    img = Image.new("RGB", (64, 32), "red")
    img.paste(Image.new("RGB", (32, 32), "blue"), (32, 0))
    for split in ("train", "test"):
        (tmp_path / "al" / split).mkdir(parents=True)
        for i in range(2):
            img.save(tmp_path / "al" / split / f"{i}.png")
    src = open_source(tmp_path / "al")
    assert src.kind == "aligned"
    pairs = src.pairs("folders", "train")
    assert len(pairs) == 2
    a, b = np.asarray(pairs[0].a.load()), np.asarray(pairs[0].b.load())
    assert a.shape == b.shape == (32, 32, 3)
    assert a[..., 0].min() == 255 and b[..., 2].min() == 255


def test_unknown_layout_and_not_a_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a known layout"):
        detect_layout(tmp_path / "empty")
    with pytest.raises(UserError, match="is not a folder"):
        open_source(tmp_path / "missing")


def test_paths_outside_allowed_roots_are_refused(home, tmp_path, monkeypatch):
    with pytest.raises(UserError, match="outside the allowed folders"):
        workspace.check_allowed("/etc")
    with pytest.raises(UserError, match="outside the allowed folders"):
        workspace.check_allowed(str(home / ".." / ".." ))
    assert workspace.check_allowed(str(home / "sources")) == (home / "sources").resolve()
    monkeypatch.setenv("PAIRLAB_DATA_ROOTS", str(tmp_path))
    assert workspace.check_allowed(str(tmp_path / "x")) == (tmp_path / "x").resolve()


def test_a_moved_workspace_finds_its_sources_by_name(tmp_path, monkeypatch):
    """Compositions record their source's absolute folder; a workspace moved or copied elsewhere still finds it
    under its own sources/ (the feature space and the label-based metrics used to say it no longer exists)."""
    from pairlab.data.sources import recorded_source_root

    monkeypatch.setenv("PAIRLAB_HOME", str(tmp_path / "moved"))
    here = tmp_path / "moved" / "sources" / "synthfaces-n120-64px-seed0"
    here.mkdir(parents=True)
    gone = str(tmp_path / "old-place" / "sources" / "synthfaces-n120-64px-seed0")
    assert recorded_source_root({"root": gone, "name": "synthfaces-n120-64px-seed0"}) == here
    assert recorded_source_root({"root": gone}) == here  # older manifests: the folder name of the recorded root
    assert recorded_source_root({"root": str(here.parent)}) == here.parent  # the recorded folder when it exists
    assert recorded_source_root({"root": str(tmp_path / "nowhere" / "x")}) is None
    assert recorded_source_root({}) is None
