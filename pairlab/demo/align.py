"""Face alignment for the demo: find the face with MTCNN, map its 5 landmarks onto a model's landmark template.

    rgb = read_image(path_or_bytes_or_array)             # checked: an image, at least 32 px, at most 40 MP
    face = detect_face(rgb)                               # MTCNN (pairlab.data.landmarks); the largest face
    crop = align_to(rgb, face, template, size)            # similarity transform onto the template, size x size
    crop = align_face(path, template, size)               # the three in one

A model sees faces the way its training crops show them; the template is where the training crops have the five
landmarks (left eye, right eye, nose, left and right mouth corner, in the model's image_size pixels), so the
similarity transform (rotation, uniform scale, translation: least squares on the five points, Umeyama) that puts
the detected landmarks closest to the template makes a new photo look like a training crop.

Coordinates: pixel centres at integer coordinates, as SynthFaces and the synthesizers use them.
Every problem a user can cause (not an image, too small, too large, no face) is a UserError with one sentence.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..data.images import MAX_PIXELS, _to_rgb, decode_bytes, open_checked
from ..errors import BadImage, UserError

MIN_SIDE = 32
#: Images larger than this (longest side) are searched for faces at this size: MTCNN's image pyramid grows with
#: the image, and a face that fills a 1024 px image is still far above its 20 px minimum.
DETECT_MAX_SIDE = 1024
#: A face with fewer pixels than this between the eyes is aligned, with a note that the crop will be blurry.
SMALL_EYE_DISTANCE = 12.0

# Where SynthFaces puts the five landmarks, as fractions of the image side: the mean over 4,000 sampled
# identities and states (pairlab.data.synthfaces._Scene(...).landmarks, seed 123; std about 0.01 per coordinate).
# Used when a checkpoint's own template is unknown.
SYNTHFACES_TEMPLATE_UNIT = np.array(
    [[0.3880, 0.5090], [0.6040, 0.5092], [0.4959, 0.6177], [0.3952, 0.6920], [0.5963, 0.6922]], dtype=np.float64
)


def synthfaces_template(size: int) -> np.ndarray:
    """The SynthFaces landmark template in a size x size image (integer pixel centres)."""
    return (SYNTHFACES_TEMPLATE_UNIT * size).astype(np.float64)


# ============================================================================================ threads
_THREADS_LOCK = threading.Lock()
_THREADS_USERS = [0, 0]  # [callers inside adaptive_threads, the thread count to restore]


def busy_cpu() -> bool:
    """Whether other work keeps this machine's cores busy (the 1-minute load average against the cores we may use)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        return os.getloadavg()[0] > 0.6 * cores
    except OSError:
        return False


@contextmanager
def adaptive_threads():
    """One torch thread for the demo's single-image work while the CPU is busy (e.g. a run training beside the app).

    Measured on the 2-core machine with a training run beside it: the cpu-demo-64 generator took 1.7 s per image with
    two threads (each parallel region waits for a descheduled thread) and 58 ms with one. On an idle machine torch's
    default stays. torch's thread count is per process, so concurrent callers share one setting."""
    import torch

    with _THREADS_LOCK:
        if _THREADS_USERS[0] == 0:
            _THREADS_USERS[1] = torch.get_num_threads()
            if busy_cpu() and _THREADS_USERS[1] > 1:
                torch.set_num_threads(1)
        _THREADS_USERS[0] += 1
    try:
        yield torch.get_num_threads()
    finally:
        with _THREADS_LOCK:
            _THREADS_USERS[0] -= 1
            if _THREADS_USERS[0] == 0 and torch.get_num_threads() != _THREADS_USERS[1]:
                torch.set_num_threads(_THREADS_USERS[1])


# ============================================================================================ reading
def _display_name(name) -> str:
    return Path(str(name)).name or "the image"


def _bad_image_sentence(exc: BadImage, name) -> str:
    shown = _display_name(name)
    reason = exc.reason
    if reason == "not an image":
        return f"{shown} is not an image; use a JPEG, PNG, WebP or BMP photo."
    if reason in ("image too large", "file too large"):
        return (f"{shown} is too large ({str(exc).split('(', 1)[-1].rstrip(').') or reason}); "
                f"use an image under {MAX_PIXELS // 1_000_000} megapixels.")
    if reason == "image too small":
        return f"{shown} is too small to hold a face; use an image of at least {MIN_SIDE}x{MIN_SIDE} pixels."
    if reason in ("truncated image", "corrupt image"):
        return f"{shown} is a damaged image file ({reason}); save it again and retry."
    if reason == "empty file":
        return f"{shown} is an empty file, not an image."
    if reason == "missing file":
        return f"{shown} does not exist."
    return f"{shown} cannot be used ({reason})."


def _check_size(w: int, h: int, name) -> None:
    if w * h > MAX_PIXELS:
        raise UserError(f"{_display_name(name)} is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels); use an image under "
                        f"{MAX_PIXELS // 1_000_000} megapixels.")
    if min(w, h) < MIN_SIDE:
        raise UserError(f"{_display_name(name)} is only {w}x{h} pixels; a face needs an image of at least "
                        f"{MIN_SIDE}x{MIN_SIDE} pixels.")


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (phone photos are often stored sideways), so MTCNN sees an upright face."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block: use the pixels as stored
        return img


def read_image(image, name=None) -> np.ndarray:
    """Any input the demo accepts as uint8 H x W x 3: a file path, bytes, a PIL image or an array.

    Files go through pairlab's safe reader (decompression bombs, truncated and non-image files are refused before
    or while decoding); the sizes are checked for every kind of input."""
    if image is None:
        raise UserError("Upload a photo or take one with the webcam first.")
    if isinstance(image, (str, os.PathLike)):
        name = name or image
        try:
            img = _to_rgb(_upright(open_checked(image)))
        except BadImage as exc:
            raise UserError(_bad_image_sentence(exc, name))
    elif isinstance(image, (bytes, bytearray, memoryview)):
        name = name or "the upload"
        try:
            img = _to_rgb(_upright(decode_bytes(bytes(image), name)))
        except BadImage as exc:
            raise UserError(_bad_image_sentence(exc, name))
    elif isinstance(image, Image.Image):
        _check_size(*image.size, name or "the image")
        img = _to_rgb(image)
    else:
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype == object:
            raise UserError(f"{_display_name(name or 'the image')} is not an RGB image (an array of shape {arr.shape}).")
        _check_size(arr.shape[1], arr.shape[0], name or "the image")
        arr = arr[..., :3]
        if arr.dtype != np.uint8:
            scale = 255.0 if np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0 else 1.0
            arr = np.clip(np.nan_to_num(arr.astype(np.float64) * scale), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(arr)
    _check_size(*img.size, name)
    return np.asarray(img, dtype=np.uint8)


# ============================================================================================ detection
@dataclass(frozen=True)
class Face:
    landmarks: np.ndarray  # (5, 2) float64 in the input image's pixels
    box: np.ndarray        # (4,) x0 y0 x1 y1
    prob: float
    n_faces: int
    message: str           # one sentence: how many faces, which one is used, anything to know


def detect_face(rgb: np.ndarray, device=None) -> Face:
    """The largest face MTCNN finds (a UserError sentence when there is none)."""
    from ..data.landmarks import detect_landmarks

    h, w = rgb.shape[:2]
    scale = 1.0
    small = rgb
    if max(h, w) > DETECT_MAX_SIDE:
        scale = DETECT_MAX_SIDE / max(h, w)
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        small = np.asarray(Image.fromarray(rgb).resize((sw, sh), Image.BILINEAR, reducing_gap=2.0))
        scale_xy = np.array([sw / w, sh / h])
    det = detect_landmarks([small], device=device)[0]
    if det is None:
        raise UserError("No face was found in this image; use a photo with one clearly visible, roughly frontal face.")
    lm = det.landmarks.astype(np.float64)
    box = det.box.astype(np.float64)
    if scale != 1.0:  # back to the full image (integer pixel centres)
        lm = (lm + 0.5) / scale_xy - 0.5
        box = box / np.tile(scale_xy, 2)
    eye_dist = float(np.linalg.norm(lm[1] - lm[0]))
    if det.n_faces > 1:
        message = f"Found {det.n_faces} faces; using the largest one."
    else:
        message = f"Found one face (detector confidence {det.prob:.2f})." if np.isfinite(det.prob) else "Found one face."
    if eye_dist < SMALL_EYE_DISTANCE:
        message += f" The face is small ({eye_dist:.0f} px between the eyes), so the aligned crop will be blurry."
    return Face(landmarks=lm, box=box, prob=float(det.prob), n_faces=int(det.n_faces), message=message)


# ============================================================================================ the transform
def similarity_transform(src, dst) -> np.ndarray:
    """The 2x3 matrix of the similarity (no reflection) that maps points ``src`` closest to ``dst`` (Umeyama 1991)."""
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = (xs ** 2).sum() / len(src)
    if var_s < 1e-9:
        raise UserError("The face's landmarks coincide, so it cannot be aligned; use a clearer photo.")
    cov = xd.T @ xs / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.array([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0])
    rot = u @ np.diag(d) @ vt
    scale = float((s * d).sum() / var_s)
    t = mu_d - scale * rot @ mu_s
    return np.concatenate([scale * rot, t[:, None]], axis=1)


def apply_transform(matrix: np.ndarray, points) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return p @ matrix[:, :2].T + matrix[:, 2]


def _invert(matrix: np.ndarray) -> np.ndarray:
    a = matrix[:, :2]
    ai = np.linalg.inv(a)
    return np.concatenate([ai, (-ai @ matrix[:, 2])[:, None]], axis=1)


def warp(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The size x size image whose pixel p shows the input at matrix^-1 p (bicubic; edges extended).

    Only the part of the input that the crop needs is touched; when the crop shrinks the face a lot, that part is
    first reduced with an antialiasing filter so the result does not alias."""
    h, w = rgb.shape[:2]
    inv = _invert(matrix)
    corners = apply_transform(inv, [[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 3
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 4
    # The region the crop reads, edge-padded where it leaves the image (no black borders in the model's input).
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx1 <= cx0 or cy1 <= cy0:
        raise UserError("The face lies outside the image, so it cannot be aligned.")
    region = rgb[cy0:cy1, cx0:cx1]
    pad = ((cy0 - y0, y1 - cy1), (cx0 - x0, x1 - cx1), (0, 0))
    if any(p for pair in pad[:2] for p in pair):
        region = np.pad(region, pad, mode="edge")
    # Move the origin to the region's corner.
    m = matrix.copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    img = Image.fromarray(np.ascontiguousarray(region))
    if scale < 0.7:  # shrink first (antialiased) so the bicubic warp works near scale 1
        rh, rw = region.shape[:2]
        k = scale * 1.25
        nw, nh = max(2, round(rw * k)), max(2, round(rh * k))
        img = img.resize((nw, nh), Image.LANCZOS)
        kx, ky = nw / rw, nh / rh
        # p_small = (p + 0.5) * k - 0.5  =>  p = (p_small + 0.5) / k - 0.5
        back = np.array([[1 / kx, 0, 0.5 / kx - 0.5], [0, 1 / ky, 0.5 / ky - 0.5]])
        m = np.concatenate([m[:, :2] @ back[:, :2], (m[:, :2] @ back[:, 2] + m[:, 2])[:, None]], axis=1)
    inv = _invert(m)
    # PIL samples output pixel (x, y) at its centre (x + 0.5, y + 0.5) and reads the input in the same
    # half-pixel-shifted coordinates; convert from integer-centre coordinates.
    a = inv[:, :2]
    t = inv[:, 2] + 0.5 - a @ np.array([0.5, 0.5])
    coeffs = (a[0, 0], a[0, 1], t[0], a[1, 0], a[1, 1], t[1])
    out = img.transform((size, size), Image.AFFINE, coeffs, resample=Image.BICUBIC)
    return np.asarray(out, dtype=np.uint8)


# ============================================================================================ alignment
@dataclass
class Aligned:
    image: np.ndarray            # size x size x 3 uint8: what the model sees
    matrix: np.ndarray           # 2x3: input pixels -> crop pixels
    landmarks: np.ndarray        # (5, 2) the detected landmarks mapped into the crop
    template: np.ndarray         # (5, 2) where the model's training crops have them
    face: Face
    size: int
    notes: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return " ".join([self.face.message] + self.notes)

    @property
    def residual(self) -> float:
        """Mean distance (pixels of the crop) between the aligned landmarks and the template."""
        return float(np.linalg.norm(self.landmarks - self.template, axis=1).mean())


def check_template(template, size: int) -> np.ndarray:
    t = np.asarray(template, dtype=np.float64)
    if t.shape != (5, 2) or not np.all(np.isfinite(t)):
        raise UserError("A landmark template must be 5 (x, y) points: left eye, right eye, nose, mouth corners.")
    if np.linalg.norm(t[1] - t[0]) < 2 or t.min() < -size or t.max() > 2 * size:
        raise UserError(f"The landmark template does not fit a {size}x{size} image.")
    return t


def align_to(rgb: np.ndarray, face: Face, template, size: int) -> Aligned:
    """Warp the face onto the template (a similarity transform, least squares on the five landmarks)."""
    size = int(size)
    t = check_template(template, size)
    matrix = similarity_transform(face.landmarks, t)
    crop = warp(rgb, matrix, size)
    aligned = Aligned(image=crop, matrix=matrix, landmarks=apply_transform(matrix, face.landmarks), template=t,
                      face=face, size=size)
    # A face that the similarity cannot fit well (strong profile, a detector error) gives a poor crop: say so.
    eye = float(np.linalg.norm(t[1] - t[0])) or 1.0
    if aligned.residual > 0.25 * eye:
        aligned.notes.append("The face is far from frontal, so the alignment is rough.")
    return aligned


def align_face(image, template, size: int, device=None, name=None) -> Aligned:
    """read_image + detect_face + align_to."""
    rgb = read_image(image, name=name)
    return align_to(rgb, detect_face(rgb, device=device), template, size)
