"""The demo: face alignment onto a checkpoint's landmark template, translation with shipped / run checkpoints, the
bad inputs (each one sentence), ``python -m pairlab translate`` and ``bench infer``.

Alignment is checked on SynthFaces, whose landmarks are known exactly: a face pasted rotated, scaled and shifted into
a larger photo must come back with its landmarks where the training crops have them."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from PIL import Image

from pairlab import cli
from pairlab.data import synthfaces
from pairlab.demo import align as A
from pairlab.demo import translate as T
from pairlab.errors import UserError


# ============================================================================================ helpers
def render(seed: int, size: int = 128, glasses: bool = True):
    rng = np.random.default_rng(seed)
    identity = synthfaces.sample_identity(rng)
    state = synthfaces.sample_state(identity, rng)
    state["eyeglasses"] = glasses
    return synthfaces.render_face(identity, state, size)


def place(img: np.ndarray, lm: np.ndarray, angle: float, scale: float, centre, canvas=(360, 300), bg=(70, 90, 60)):
    """Paste an image rotated by ``angle`` degrees and scaled about its centre to ``centre`` of a larger photo;
    returns the photo and where the landmarks went (integer pixel centres, as everywhere in pairlab)."""
    th = math.radians(angle)
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]]) * scale
    c = np.array([img.shape[1], img.shape[0]]) / 2 - 0.5
    m = np.concatenate([rot, (np.asarray(centre, float) - rot @ c)[:, None]], axis=1)
    out = np.full((canvas[1], canvas[0], 3), bg, np.uint8)
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    a, t = inv[:, :2], inv[:, 2] + 0.5 - inv[:, :2] @ [0.5, 0.5]
    pasted = Image.fromarray(img).transform(canvas, Image.AFFINE, (a[0, 0], a[0, 1], t[0], a[1, 0], a[1, 1], t[1]),
                                            resample=Image.BICUBIC, fillcolor=bg)
    return np.asarray(pasted), np.asarray(lm, float) @ m[:, :2].T + m[:, 2]


def one_sentence(text: str) -> str:
    assert "\n" not in text and "Traceback" not in text and text.endswith(".") and len(text) < 300, text
    return text


# ============================================================================================ a tiny workspace
@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory, synthfaces_root):
    """A workspace with one finished tiny CycleGAN run (32x32) and a shipped folder made from it the way the lead's
    ``export_generator`` packages the demo (A->B generator only, float16)."""
    from conftest import tiny_config
    from pairlab import lab
    from pairlab.data.recipes import Recipe
    from pairlab.data.sources import open_source
    from pairlab.train import train

    tmp = tmp_path_factory.mktemp("demo")
    mp = pytest.MonkeyPatch()
    mp.setenv("PAIRLAB_HOME", str(tmp / "workspace"))
    mp.setenv("PAIRLAB_SHIPPED_DIR", str(tmp / "shipped"))
    try:
        source = open_source(synthfaces_root)
        comp = lab.build_composition(source, Recipe(kind="alpha-paired", alpha=0.5, n=8, n_test=2, image_size=48),
                                     name="demo-comp")
        run = tmp / "workspace" / "runs" / "tiny"
        train(comp, run, tiny_config())
        shipped = tmp / "shipped" / "tiny-shipped"
        shipped.mkdir(parents=True)
        from pairlab.demo.shipped import FORMAT, export_generator

        export_generator(run, shipped / "model.pt")
        template = (A.synthfaces_template(32) + [0.5, -0.5]).round(2).tolist()
        manifest = {"format": FORMAT, "name": "tiny-shipped", "title": "Tiny shipped", "model": "cyclegan",
                    "image_size": 32, "direction": "AtoB", "task": "eyeglasses",
                    "domains": {"A": "eyeglasses", "B": "no eyeglasses"}, "landmark_template": template,
                    "metrics": {}, "command": "test fixture"}
        (shipped / "manifest.json").write_text(json.dumps(manifest))
        yield {"root": tmp, "run": run, "comp": comp, "shipped": shipped, "template": np.asarray(template),
               "source": source}
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def face_file(tmp_path_factory):
    img, lm = render(4, 128)
    photo, _ = place(img, lm, angle=12, scale=1.4, centre=(170, 150))
    path = tmp_path_factory.mktemp("faces") / "face.jpg"
    Image.fromarray(photo).save(path, quality=92)
    return path


# ============================================================================================ alignment
def test_similarity_transform_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    th, s, t = 0.4, 1.7, np.array([12.0, -30.0])
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    dst = s * src @ rot.T + t
    m = A.similarity_transform(src, dst)
    assert np.allclose(m[:, :2], s * rot, atol=1e-9) and np.allclose(m[:, 2], t, atol=1e-7)
    # a mirrored point set is fitted with a rotation, never a reflection
    assert np.linalg.det(A.similarity_transform(src, dst * [-1, 1])[:, :2]) > 0


def test_warp_with_known_landmarks_gives_back_the_training_crop():
    # Bypass MTCNN: the true landmarks of a face pasted rotated and scaled must give back the face itself.
    img, lm = render(1, 128)
    photo, lm_photo = place(img, lm, angle=-20, scale=1.8, centre=(190, 140))
    face = A.Face(lm_photo, np.zeros(4), 1.0, 1, "")
    target = (lm + 0.5) * 0.5 - 0.5  # the landmarks of the face halved (integer pixel centres), as PIL resizes it
    crop = A.align_to(photo, face, target, 64)
    assert crop.residual < 1e-6
    ref = np.asarray(Image.fromarray(img).resize((64, 64), Image.LANCZOS), dtype=float)
    diff = np.abs(crop.image.astype(float) - ref)[6:-6, 6:-6].mean()
    assert diff < 4, diff
    # half a pixel off in the crop (one in the photo) is already worse than the two resamplings' blur
    for shift in ([0.9, 0.0], [0.0, -0.9]):
        shifted = A.align_to(photo, A.Face(lm_photo + shift, np.zeros(4), 1.0, 1, ""), target, 64)
        assert np.abs(shifted.image.astype(float) - ref)[6:-6, 6:-6].mean() > diff + 0.5


@pytest.mark.parametrize("seed,angle,scale,centre", [(2, 18, 1.5, (160, 150)), (5, -20, 2.0, (200, 150)),
                                                     (10, 8, 0.9, (110, 200)), (4, -10, 1.2, (250, 120))])
def test_alignment_puts_the_landmarks_where_the_training_crops_have_them(seed, angle, scale, centre):
    img, lm = render(seed, 128)
    photo, lm_photo = place(img, lm, angle, scale, centre)
    template = A.synthfaces_template(64)
    crop = A.align_face(photo, template, 64)
    assert crop.image.shape == (64, 64, 3) and crop.face.n_faces == 1
    # Where the face's true landmarks land in the crop, against where a 64x64 training crop of it has them.
    landed = A.apply_transform(crop.matrix, lm_photo)
    err = np.linalg.norm(landed - lm * 0.5, axis=1)
    assert err.mean() < 2.0 and err.max() < 3.5, err
    # and the aligned detections sit on the template (within SynthFaces' own spread of face shapes)
    assert crop.residual < 2.5


def test_synthfaces_fallback_template_matches_rendered_faces(synthfaces_root):
    from pairlab.data import celeba

    lms = np.stack(list(celeba.read_landmark_file(synthfaces_root / celeba.LANDMARK_FILE).values()))
    assert np.abs(lms.mean(axis=0) - A.synthfaces_template(64)).max() < 1.0


def test_template_of_a_run_is_where_its_training_crops_have_the_landmarks(demo_ws):
    from pairlab.data import celeba
    from pairlab.data.compose import load_manifest

    run, comp = demo_ws["run"], demo_ws["comp"]
    lms = celeba.read_landmark_file(demo_ws["source"].root / celeba.LANDMARK_FILE)
    m = load_manifest(comp)
    # The training crops: 64 px sources, composed at 48, resized to the model's 32: landmarks x 32/64.
    names = [e["source"] for s in ("trainA", "trainB") for e in m["images"][s] if e["source"] in lms]
    expected = np.mean([lms[n] for n in names], axis=0) * 32 / 64
    ref = T.resolve_checkpoint("tiny")
    assert ref.kind == "run" and ref.key == "run:tiny"
    template, note = T.template_for(ref, 32)
    assert note == "" and np.allclose(template, expected, atol=1e-6)
    assert json.loads((run / T.RUN_TEMPLATE_FILE).read_text())["template"]  # cached in the run folder
    assert np.allclose(T.run_template(run, 32)[0], expected, atol=1e-3)
    # a model at another size sees the same face, scaled
    assert np.allclose(T.composition_template(comp, 64)[0], expected * 2, atol=1e-6)


def test_template_through_a_celeba_centre_crop(tmp_path, home):
    # Real CelebA is 178x218: a composition at 64 crops the centre 178x178 square (20 px off the top) and resizes.
    from conftest import make_celeba
    from pairlab import lab
    from pairlab.data.recipes import Recipe
    from pairlab.data.sources import open_source

    source = open_source(make_celeba(tmp_path / "celeba"))
    comp = lab.build_composition(source, Recipe(kind="pseudo", augmentation="none", task="eyeglasses", n=5, n_test=2,
                                                image_size=64), name="celeba64")
    from pairlab.data.compose import load_manifest

    m = load_manifest(comp)
    by_name = {s.name: s.landmarks for s in source.samples}
    pts = [(by_name[e["source"]] - [0, 20]) * 64 / 178 for s in ("trainA", "trainB") for e in m["images"][s]]
    template, how = T.composition_template(comp, 32)
    assert "10 training images" in how
    assert np.allclose(template, np.mean(pts, axis=0) * 0.5, atol=1e-6)


# ============================================================================================ translation
def test_translate_with_a_run_and_a_shipped_checkpoint(demo_ws, face_file):
    refs = T.list_checkpoints()
    keys = [r.key for r in refs]
    assert keys[0] == "shipped:tiny-shipped" and "run:tiny" in keys
    res = T.translate_image(face_file, ["run:tiny", "tiny-shipped"], direction="AtoB", pseudo=True)
    assert [t.key for t in res.items] == ["run:tiny", "shipped:tiny-shipped"]
    for t in res.items:
        assert t.image.shape == (32, 32, 3) and t.image.dtype == np.uint8 and t.ms > 0 and t.error == ""
        assert t.caption.startswith(t.label + " — ") and t.caption.endswith(" ms")
    # the two checkpoints have different templates: each gets its own crop; the result is the model's output
    dm = T.load_demo_model("run:tiny")
    al = A.align_to(A.read_image(face_file), res.face, dm.template, 32)
    again, _ = T.translate_crop(dm, al.image, "AtoB")
    assert np.array_equal(again, res.items[0].image)
    # the shipped checkpoint uses its manifest's template
    assert np.allclose(T.load_demo_model("tiny-shipped").template, demo_ws["template"])
    # the pseudo-sample M(x): the crop with pseudo-eyeglasses drawn around the eyes, the rest untouched
    (pseudo, caption), = res.pseudo
    crop = res.first_crop
    assert "pseudo-eyeglasses" in caption and pseudo.shape == crop.shape and not np.array_equal(pseudo, crop)
    assert np.array_equal(pseudo[-4:], crop[-4:])
    assert res.message.startswith("Found one face") and "Translated with 2 checkpoint(s)." in res.message
    assert [c for _, c in res.gallery()][0] == caption


def test_bad_checkpoints_are_one_sentence_each_and_the_others_still_translate(demo_ws, face_file, tmp_path):
    # direction: the shipped checkpoint holds only the A->B generator
    res = T.translate_image(face_file, ["run:tiny", "shipped:tiny-shipped"], direction="BtoA")
    ok, bad = res.items
    assert ok.image is not None and bad.image is None
    assert one_sentence(bad.error).startswith("Tiny shipped (shipped) translates only AtoB")
    assert bad.error in res.message
    # a manifest whose size disagrees with the networks
    wrong = demo_ws["root"] / "shipped" / "wrong-size"
    shutil.copytree(demo_ws["shipped"], wrong)
    m = json.loads((wrong / "manifest.json").read_text())
    (wrong / "manifest.json").write_text(json.dumps(dict(m, name="wrong-size", title="Wrong size", image_size=64)))
    try:
        res = T.translate_image(face_file, ["wrong-size", "run:tiny"])
        assert res.items[0].image is None and res.items[1].image is not None
        assert "64x64" in one_sentence(res.items[0].error) and "32x32" in res.items[0].error
        # only bad checkpoints: the sentence itself
        with pytest.raises(UserError) as e:
            T.translate_image(face_file, ["wrong-size"])
        one_sentence(str(e.value))
    finally:
        shutil.rmtree(wrong)
    # a crop of another size than the checkpoint takes
    dm = T.load_demo_model("run:tiny")
    with pytest.raises(UserError) as e:
        T.translate_crop(dm, np.zeros((64, 64, 3), np.uint8))
    assert "64x64" in one_sentence(str(e.value)) and "32x32" in str(e.value)
    # garbage checkpoint files and unknown names
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    for spec in (junk, "no-such-model", "run:nope", "", tmp_path):
        with pytest.raises(UserError) as e:
            T.translate_image(face_file, [spec] if spec != "" else [])
        one_sentence(str(e.value))
    with pytest.raises(UserError) as e:
        T.translate_image(face_file, ["run:tiny"] * 5)
    assert "at most 4" in one_sentence(str(e.value))


def test_bad_images_are_one_sentence_each(tmp_path, demo_ws):
    cases = {}
    (tmp_path / "notes.jpg").write_text("this is not a picture")
    cases["notes.jpg"] = "is not an image"
    Image.new("RGB", (20, 24), (200, 150, 120)).save(tmp_path / "tiny.png")
    cases["tiny.png"] = "at least 32x32"
    Image.new("1", (8000, 6000)).save(tmp_path / "huge.png")  # 48 MP, a few KB on disk
    cases["huge.png"] = "40 megapixels"
    good = tmp_path / "good.jpg"
    Image.fromarray(render(4, 128)[0]).save(good, quality=90)
    (tmp_path / "cut.jpg").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases["cut.jpg"] = "damaged image file"
    noise = np.random.default_rng(0).integers(0, 255, (200, 240, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    cases["noise.png"] = "No face was found"
    Image.new("RGB", (300, 200), (120, 160, 200)).save(tmp_path / "sky.png")
    cases["sky.png"] = "No face was found"
    for name, words in cases.items():
        with pytest.raises(UserError) as e:
            T.translate_image(tmp_path / name, ["run:tiny"])
        assert words in one_sentence(str(e.value)), (name, str(e.value))
    # the same checks for arrays (the UI's webcam frames), and for nothing at all
    for arr, words in ((np.zeros((16, 400, 3), np.uint8), "at least 32x32"), (np.zeros((5, 5), np.uint8), "at least 32x32")):
        with pytest.raises(UserError) as e:
            A.read_image(arr)
        assert words in one_sentence(str(e.value))
    with pytest.raises(UserError) as e:
        A.read_image(None)
    one_sentence(str(e.value))


def test_a_phone_photo_stored_sideways_is_turned_upright(tmp_path):
    img, lm = render(2, 128)
    photo, lm_photo = place(img, lm, angle=0, scale=1.3, centre=(150, 150), canvas=(300, 300))
    stored = Image.fromarray(photo).transpose(Image.Transpose.ROTATE_90)  # what the camera wrote
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=92)
    crop = A.align_face(tmp_path / "phone.jpg", A.synthfaces_template(64), 64)
    landed = A.apply_transform(crop.matrix, lm_photo)
    assert np.linalg.norm(landed - lm * 0.5, axis=1).mean() < 2.5


def test_several_faces_the_largest_is_used_and_said(demo_ws):
    big, lm_big = render(2, 128)
    small, lm_small = render(4, 128, glasses=False)
    photo = np.full((260, 420, 3), (90, 110, 90), np.uint8)
    photo[20:20 + 128 * 3 // 2, 10:10 + 192] = np.asarray(Image.fromarray(big).resize((192, 192), Image.LANCZOS))
    photo[80:80 + 128, 260:388] = small
    crop = A.align_face(photo, A.synthfaces_template(64), 64)
    assert crop.face.n_faces == 2 and one_sentence(crop.message) == "Found 2 faces; using the largest one."
    landed = A.apply_transform(crop.matrix, lm_big * 1.5 + [10, 20])
    assert np.linalg.norm(landed - lm_big * 0.5, axis=1).mean() < 3.0  # the big face, not the small one
    res = T.translate_image(photo, ["run:tiny"])
    assert "Found 2 faces; using the largest one." in res.message


def test_tiny_face_in_a_big_photo_is_aligned_with_a_note(demo_ws):
    img, lm = render(10, 128)
    photo, lm_photo = place(img, lm, angle=0, scale=0.4, centre=(700, 500), canvas=(1600, 1200))
    crop = A.align_face(photo, A.synthfaces_template(64), 64)  # searched at 1024 px, warped from the full photo
    landed = A.apply_transform(crop.matrix, lm_photo)
    assert np.linalg.norm(landed - lm * 0.5, axis=1).mean() < 3.0
    assert "small" in crop.message and "blurry" in crop.message


# ============================================================================================ CLI and bench
def test_cli_translate(demo_ws, face_file, tmp_path, capsys):
    bad = tmp_path / "readme.png"
    bad.write_text("hello")
    out = tmp_path / "out"
    code = cli.main(["translate", "run:tiny", str(face_file), str(bad), "--out", str(out), "--pseudo"])
    text = capsys.readouterr().out
    assert code == 0 and "1 of 2 image(s) translated" in text
    assert "readme.png: readme.png is not an image" in text
    assert {p.name for p in out.iterdir()} == {"face_aligned.png", "face_tiny.png", "face_pseudo.png", "timings.json"}
    timings = json.loads((out / "timings.json").read_text())
    assert timings["ok"] == 1 and timings["failed"] == 1 and timings["checkpoints"][0]["image_size"] == 32
    rec = timings["images"][0]
    assert rec["faces"] == 1 and rec["align_ms"] > 0
    assert next(f for f in rec["files"] if f["kind"] == "translation")["ms"] > 0
    assert Image.open(out / "face_tiny.png").size == (32, 32)
    # a shipped folder path works too; only bad images: exit code 2; a bad checkpoint: one sentence, code 2
    assert cli.main(["translate", str(demo_ws["shipped"]), str(bad), "--out", str(out)]) == 2
    assert cli.main(["translate", "shipped:tiny-shipped", str(face_file), "--out", str(out), "--direction", "BtoA"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Tiny shipped") and len(err.splitlines()) == 1


def test_one_thread_while_the_cpu_is_busy(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setattr(A, "busy_cpu", lambda: True)
    with A.adaptive_threads() as n:
        assert n == 1 and torch.get_num_threads() == 1
        with A.adaptive_threads():  # nested / concurrent callers share the setting
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    monkeypatch.setattr(A, "busy_cpu", lambda: False)
    with A.adaptive_threads() as n:
        assert n == before


def test_bench_infer_smoke(monkeypatch):
    from pairlab.demo import bench

    # (the 128x128 case is the same code at another size, and slow on a busy 2-core CPU: left to the real bench)
    res = bench.bench_infer(repeats={"cpu_demo_64": 3, "mtcnn_align": 3}, warmup=1,
                            cases=("cpu_demo_64", "mtcnn_align"), cuda=False, threads=(1,))
    for key in ("cpu_demo_64", "mtcnn_align"):
        c = res["cases"][key]
        assert 0 < c["median_ms"] <= c["p95_ms"] and c["target_ms"] == bench.TARGETS_MS[key]
    report = bench.format_report(res)
    assert "cpu-demo-64" in report and "MTCNN" in report and "p95" in report


def test_demo_faces_are_findable():
    # the example inputs of the Demo tab (assets/demo_faces/, made by bench.write_demo_faces)
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "assets" / "demo_faces"
    files = sorted(folder.glob("*.jpg"))
    assert len(files) >= 4 and all(f.stat().st_size < 20_000 for f in files)
    for f in files:
        crop = A.align_face(f, A.synthfaces_template(64), 64)
        assert crop.face.n_faces == (2 if f.name == "two_people.jpg" else 1) and crop.residual < 3, f.name
