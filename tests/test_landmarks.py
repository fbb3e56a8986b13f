import json

import numpy as np
import pytest
from PIL import Image

import pairlab.data.landmarks as L
from pairlab.data.landmarks import Detection, detect_landmarks, detections_from_mtcnn, landmarks_for_paths
from pairlab.data.synthesizers import draw_simple_face, face_landmarks


def _box(x0, y0, x1, y1):
    return [float(x0), float(y0), float(x1), float(y1)]


def _pts(x):
    return (np.arange(10, dtype=np.float64).reshape(5, 2) + x).tolist()


# ------------------------------------------------------------------------------------------ conversion
def test_numpy2_object_arrays_ragged_batch():
    # what MTCNN.detect returns under numpy 2 for a batch with 1 face, no face, 2 faces
    boxes = np.array([np.array([_box(0, 0, 10, 10)]), None, np.array([_box(0, 0, 5, 5), _box(0, 0, 20, 30)])],
                     dtype=object)
    probs = np.array([np.array([0.99]), [None], np.array([0.97, 0.91])], dtype=object)
    points = np.array([np.array([_pts(0)]), None, np.array([_pts(100), _pts(200)])], dtype=object)
    assert boxes.dtype == object
    d = detections_from_mtcnn(boxes, probs, points, 3)
    assert d[1] is None
    assert isinstance(d[0], Detection) and d[0].n_faces == 1
    assert d[0].landmarks.dtype == np.float32 and d[0].landmarks.shape == (5, 2)
    assert d[0].box.dtype == np.float32 and d[0].box.shape == (4,)
    assert d[0].prob == pytest.approx(0.99)
    # two faces: the largest box is kept, whatever the order
    assert d[2].n_faces == 2
    assert np.allclose(d[2].box, _box(0, 0, 20, 30)) and d[2].landmarks[0, 0] == 200
    assert d[2].prob == pytest.approx(0.91)


def test_numpy2_object_arrays_uniform_batch_and_all_empty():
    # every image with exactly one face: numpy builds (N, 1, 4) object arrays
    boxes = np.array([np.array([_box(0, 0, 10, 10)], dtype=object)] * 2, dtype=object)
    probs = np.array([np.array([0.9], dtype=object)] * 2, dtype=object)
    points = np.array([np.array([_pts(1)], dtype=object)] * 2, dtype=object)
    assert boxes.shape == (2, 1, 4)
    d = detections_from_mtcnn(boxes, probs, points, 2)
    assert all(x is not None and x.landmarks.dtype == np.float32 for x in d)
    # no face anywhere
    d = detections_from_mtcnn(np.array([None, None], dtype=object), np.array([[None], [None]], dtype=object),
                              np.array([None, None], dtype=object), 2)
    assert d == [None, None]


def test_detection_json_roundtrip():
    det = Detection(np.asarray(_pts(0.123456), np.float32), np.asarray(_box(1, 2, 3, 4), np.float32), 0.5, 2)
    back = Detection.from_json(json.loads(json.dumps(det.to_json())))
    assert np.allclose(back.landmarks, det.landmarks, atol=0.01) and back.n_faces == 2


# ------------------------------------------------------------------------------------------ batching (mocked)
class _FakeMTCNN:
    def __init__(self):
        self.calls = []

    def detect(self, imgs, landmarks=False):
        assert landmarks and isinstance(imgs, np.ndarray) and imgs.ndim == 4 and imgs.dtype == np.uint8
        self.calls.append(imgs.shape)
        n = len(imgs)
        boxes = np.array([np.array([_box(0, 0, 10, 10)]) if im.mean() > 10 else None for im in imgs] + [0],
                         dtype=object)[:n]
        probs = np.array([np.array([0.9]) if im.mean() > 10 else [None] for im in imgs] + [0], dtype=object)[:n]
        points = np.array([np.array([_pts(0)]) if im.mean() > 10 else None for im in imgs] + [0], dtype=object)[:n]
        return boxes, probs, points


def test_detect_batches_by_size(monkeypatch):
    fake = _FakeMTCNN()
    monkeypatch.setattr(L, "get_mtcnn", lambda device=None: fake)
    imgs = [np.full((32, 32, 3), 100, np.uint8), Image.new("RGB", (40, 30), (100, 100, 100)),
            np.zeros((32, 32, 3), np.uint8), np.full((32, 32), 100, np.uint8), np.full((32, 32, 4), 100, np.uint8)]
    d = detect_landmarks(imgs)
    assert [x is None for x in d] == [False, False, True, False, False]
    assert sorted(fake.calls) == sorted([(4, 32, 32, 3), (1, 30, 40, 3)])
    assert detect_landmarks([]) == []


# ------------------------------------------------------------------------------------------ real MTCNN (bundled weights)
def test_mtcnn_finds_drawn_face_and_not_blank():
    img, lm = draw_simple_face(128, 128, landmarks=face_landmarks(128, 128), seed=1)
    blank = np.full((128, 128, 3), 128, np.uint8)
    d = detect_landmarks([img, blank, Image.fromarray(img).resize((160, 160))], device="cpu")
    assert d[1] is None
    assert d[0] is not None and d[0].landmarks.shape == (5, 2) and d[0].n_faces >= 1
    eye_d = float(np.linalg.norm(lm[1] - lm[0]))
    assert np.abs(d[0].landmarks - lm).max() < 0.25 * eye_d
    assert d[2] is not None and np.abs(d[2].landmarks - lm * 1.25).max() < 0.25 * eye_d * 1.25
    assert L.get_mtcnn("cpu") is L.get_mtcnn("cpu")   # built once


# ------------------------------------------------------------------------------------------ files + cache
def test_landmarks_for_paths_skips_and_caches(tmp_path, monkeypatch):
    face, _ = draw_simple_face(128, 128, seed=2)
    Image.fromarray(face).save(tmp_path / "face.png")
    Image.new("RGB", (128, 128), (90, 90, 90)).save(tmp_path / "blank.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "empty.png").write_bytes(b"")
    paths = [tmp_path / n for n in ("face.png", "blank.png", "broken.jpg", "empty.png")]
    cache = tmp_path / "cache" / "landmarks.json"
    seen = []
    found, skipped = landmarks_for_paths(paths, cache_file=cache, progress=lambda d, t: seen.append((d, t)))
    assert set(found) == {"face.png"} and found["face.png"].shape == (5, 2)
    reasons = dict(skipped)
    assert reasons["blank.png"] == "no face found"
    assert reasons["empty.png"] == "empty file"
    assert reasons["broken.jpg"] in ("corrupt image", "not an image", "truncated image")
    assert seen[-1] == (4, 4)
    data = json.loads(cache.read_text())
    assert set(data["entries"]) == {"face.png", "blank.png"}

    # second call: cached entries are reused, MTCNN is not run
    def boom(*a, **k):
        raise AssertionError("MTCNN should not run for cached files")

    monkeypatch.setattr(L, "detect_landmarks", boom)
    found2, skipped2 = landmarks_for_paths(paths, cache_file=cache)
    assert np.array_equal(found2["face.png"], found["face.png"])
    assert sorted(skipped2) == sorted(skipped)

    # a changed file is detected again
    Image.fromarray(face[:, ::-1].copy()).resize((140, 140)).save(tmp_path / "blank.png")
    calls = []
    monkeypatch.setattr(L, "detect_landmarks", lambda imgs, **k: calls.append(len(imgs)) or [None] * len(imgs))
    landmarks_for_paths(paths, cache_file=cache)
    assert calls == [1]


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    cache = tmp_path / "lm.json"
    cache.write_text("{not json")
    monkeypatch.setattr(L, "detect_landmarks", lambda imgs, **k: [None] * len(imgs))
    found, skipped = landmarks_for_paths([tmp_path / "a.png"], cache_file=cache)
    assert found == {} and skipped == [("a.png", "no face found")]
    assert json.loads(cache.read_text())["version"] == L.CACHE_VERSION
