"""SynthFaces: the embedded default dataset, a seeded procedural face renderer.

It writes the real CelebA layout (see ``pairlab.data.celeba``) so the same reader serves real CelebA and
SynthFaces, and it also writes the ground truth T(a) of every image: the same identity, pose and light rendered
with Eyeglasses (resp. Smiling) toggled, which real datasets lack.

Public API
----------
- ``sample_identity(rng) -> dict``: identity factors (face shape, skin, hair colour and style, eyes, brows, nose,
  lips, ears, makeup, age and sex cues, a propensity for glasses and a favourite pair of frames).
- ``sample_state(identity, rng) -> dict``: one photograph of that identity: pose jitter, light, background,
  clothes, ``eyeglasses``/``smiling`` and their per-image style parameters, film grain.
- ``render_face(identity, state, size) -> (uint8 HxWx3, float32 5x2 landmarks)``: pure; landmarks are left eye,
  right eye, nose tip, left and right mouth corner in output pixel coordinates ("left" = image left).
- ``face_attributes(identity, state) -> {attribute: +1/-1}`` for the 40 CelebA columns.
- ``generate(out_dir, count, size, seed, progress) -> summary``: the whole dataset, written atomically.
- ``bench(size, n) -> dict``: render throughput of the current process.

Geometry. Faces are modelled in a local frame whose origin is the midpoint of the eyes and whose unit is the eye
distance; the mean pose maps that frame onto ``CELEBA_MEAN_LANDMARKS`` of the 178x218 aligned crops, which are then
scaled to the square output (as CelebA is when it is resized to a square). Everything is drawn as anti-aliased
polygons on a supersampled canvas (PIL), reduced with a box filter, then lit in numpy with a Lambert term from an
ellipsoidal head normal field and composited on a gradient background. Drawing order keeps the attribute regions
separate: the base layers (hair behind, body, ears, face, eyes, brows, nose) are shared; the smile (mouth, cheeks,
creases) and the eyeglasses (temples, lenses, rims, bridge) are drawn on top, so toggling one changes only its region.
"""
from __future__ import annotations

import io
import json
import math
import statistics
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from ..errors import UserError
from . import celeba
from . import exact as X
from .images import save_image

GENERATOR = "synthfaces"
VERSION = 2  # 2: CPU-independent arithmetic (pairlab.data.exact); images differ from version 1
MIN_SIZE = 64
MAX_SIZE = 256
JPEG_QUALITY = 95
TRUTH_DIR = "truth"
META_FILE = "synthfaces.json"

# Mean pose: local frame (origin between the eyes, unit = eye distance) -> CelebA 178x218 frame.
_CW, _CH = celeba.CELEBA_SIZE
_EYE_MID = celeba.CELEBA_MEAN_LANDMARKS[:2].mean(axis=0).astype(np.float64)  # (88.25, 111)
_EYE_DIST = celeba.CELEBA_EYE_DISTANCE  # 38.5

ProgressFn = Callable[[float, str], None]


# =============================================================================================== geometry
@lru_cache(maxsize=None)
def _cr_basis(n: int, endpoint: bool) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n, endpoint=endpoint)
    t2, t3 = t * t, t * t * t
    return 0.5 * np.stack([-t + 2 * t2 - t3, 2 - 5 * t2 + 3 * t3, t + 4 * t2 - 3 * t3, -t2 + t3], axis=1)


def _closed_curve(ctrl, n: int = 6) -> np.ndarray:
    """Closed Catmull-Rom spline through the control points, n samples per segment."""
    c = np.asarray(ctrl, dtype=np.float64)
    k = len(c)
    idx = (np.arange(k)[:, None] + np.arange(-1, 3)[None, :]) % k
    return _spline(_cr_basis(n, False), c[idx])


def _spline(basis: np.ndarray, ctrl4: np.ndarray) -> np.ndarray:
    """Sum of the four basis columns times the (k, 4, 2) control windows, in a fixed order (no BLAS)."""
    out = basis[None, :, 0, None] * ctrl4[:, None, 0, :]
    for j in range(1, 4):
        out = out + basis[None, :, j, None] * ctrl4[:, None, j, :]
    return out.reshape(-1, 2)


def _open_curve(ctrl, n: int = 6) -> np.ndarray:
    """Open Catmull-Rom spline through the control points (ends included)."""
    c = np.asarray(ctrl, dtype=np.float64)
    c = np.concatenate([c[:1] * 2 - c[1:2], c, c[-1:] * 2 - c[-2:-1]])
    k = len(c) - 3
    idx = np.arange(k)[:, None] + np.arange(4)[None, :]
    pts = _spline(_cr_basis(n, False), c[idx])
    return np.concatenate([pts, c[-2:-1]])


@lru_cache(maxsize=None)
def _unit_circle(n: int) -> np.ndarray:
    th = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    s, c = X.sincos(th)
    return np.stack([c, s], axis=1)


@lru_cache(maxsize=4096)
def _rotation(angle: float) -> tuple[float, float]:
    return X.sincos(float(angle))


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 28, angle: float = 0.0) -> np.ndarray:
    u = _unit_circle(n) * (rx, ry)
    if angle:
        s, c = _rotation(angle)
        u = _P2(u[:, 0] * c - u[:, 1] * s, u[:, 0] * s + u[:, 1] * c)
    return u + (cx, cy)


def _ribbon(p: np.ndarray, w) -> np.ndarray:
    """A stroke of (possibly varying) full width w along the polyline p (n, 2), as a polygon (2n, 2).

    p may carry leading axes (..., n, 2) to make several strokes at once."""
    z = np.asarray(p, dtype=np.float64)
    d = np.empty_like(z)
    d[..., 1:-1, :] = z[..., 2:, :] - z[..., :-2, :]
    d[..., 0, :] = z[..., 1, :] - z[..., 0, :]
    d[..., -1, :] = z[..., -1, :] - z[..., -2, :]
    # the normal (-dy, dx) scaled to half the width, in real arithmetic (no complex SIMD kernels involved)
    dx, dy = d[..., 0], d[..., 1]
    k = (0.5 / (np.sqrt(dx * dx + dy * dy) + 1e-12)) * w
    nrm = d[..., ::-1] * k[..., None]
    nrm[..., 0] = -nrm[..., 0]
    return np.concatenate([z + nrm, (z - nrm)[..., ::-1, :]], axis=-2)


def _ring(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """One polygon for the band between two closed outlines (PIL fills even-odd)."""
    return np.concatenate([outer, outer[:1], inner[:1], inner[::-1], outer[:1]])


def _resample(p: np.ndarray, n: int) -> np.ndarray:
    seg = np.sqrt((np.diff(p, axis=0) ** 2).sum(axis=1))
    s = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])], axis=1)


def _P2(x, y) -> np.ndarray:
    """(n, 2) points from x and y (arrays or scalars); cheaper than np.stack for small arrays."""
    n = len(x) if np.ndim(x) else len(y)
    out = np.empty((n, 2))
    out[:, 0] = x
    out[:, 1] = y
    return out


def _affine(A: np.ndarray, pts) -> np.ndarray:
    """Points (n, 2) through the 2x3 affine map A, element-wise in a fixed order (no BLAS)."""
    p = np.asarray(pts, dtype=np.float64)
    return (p[:, 0:1] * A[:, 0] + p[:, 1:2] * A[:, 1]) + A[:, 2]


def _band(x, top, bottom) -> np.ndarray:
    """The closed region between two curves sampled at the same x."""
    n = len(x)
    out = np.empty((2 * n, 2))
    out[:n, 0] = x
    out[:n, 1] = top
    out[n:, 0] = x[::-1]
    out[n:, 1] = bottom[::-1] if np.ndim(bottom) else bottom
    return out


@lru_cache(maxsize=None)
def _unit_lin(n: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, n)


def _lin(a: float, b: float, n: int) -> np.ndarray:
    return a + (b - a) * _unit_lin(n)


# Powers of fixed sample positions, computed once (``exact`` keeps them the same bits on every CPU).
_U14 = np.linspace(0.0, 1.0, 14)
_U14_P07 = X.power(_U14, 0.7)
_U14_P15 = X.power(_U14, 1.5)
_BROW_ARCH = X.sin(np.pi * X.power(_U14, 0.8))
_MOUTH_T = np.linspace(-1.0, 1.0, 25)  # mouth_geometry's t
_LIP_ENV_U = X.power(1 - _MOUTH_T * _MOUTH_T, 0.55) * (1 - 0.3 * X.exp(-(_MOUTH_T / 0.16) ** 2))
_OPEN_ENV = X.power(1 - X.power(np.abs(_MOUTH_T), 2.2), 0.9)
_TEETH_ENV = X.power(1 - _MOUTH_T[np.abs(_MOUTH_T) <= 0.82] ** 2, 0.3)


@lru_cache(maxsize=None)
def _superellipse(n: int, ex: float):
    """sign(c)|c|^(2/ex), sign(s)|s|^(2/ex) of the unit circle's n points (read-only arrays)."""
    c = _unit_circle(n)
    sx = np.sign(c[:, 0]) * X.power(np.abs(c[:, 0]), 2.0 / ex)
    sy = np.sign(c[:, 1]) * X.power(np.abs(c[:, 1]), 2.0 / ex)
    sx.flags.writeable = sy.flags.writeable = False
    return sx, sy


def _mirror(pts) -> np.ndarray:
    p = np.array(pts, dtype=np.float64)
    p[:, 0] *= -1
    return p


# =============================================================================================== colours
def _c8(v: float) -> int:
    return 0 if v <= 0 else (255 if v >= 255 else int(v + 0.5))


def _rgb(c, f: float = 1.0, add: float = 0.0) -> tuple:
    return (_c8(c[0] * f + add), _c8(c[1] * f + add), _c8(c[2] * f + add))


def _mix(a, b, t: float) -> tuple:
    return (_c8(a[0] + (b[0] - a[0]) * t), _c8(a[1] + (b[1] - a[1]) * t), _c8(a[2] + (b[2] - a[2]) * t))


def _rgba(c, alpha: float) -> tuple:
    return (_c8(c[0]), _c8(c[1]), _c8(c[2]), _c8(alpha))


_SKIN_RAMP = np.array(
    [
        (255, 228, 208), (247, 212, 186), (236, 192, 160), (220, 166, 128), (196, 138, 100),
        (164, 108, 74), (128, 82, 56), (96, 62, 44), (72, 48, 36),
    ],
    dtype=np.float64,
)

_HAIR_COLOURS = {
    "black": ((22, 20, 20), (48, 38, 34)),
    "brown": ((74, 48, 32), (130, 88, 56)),
    "blond": ((196, 160, 100), (236, 210, 156)),
    "red": ((140, 58, 30), (190, 96, 50)),
    "gray": ((128, 126, 124), (214, 212, 206)),
}

_IRIS = [(62, 40, 26), (96, 60, 34), (112, 88, 48), (70, 104, 66), (66, 104, 150), (98, 116, 128)]
_IRIS_P = [0.34, 0.24, 0.12, 0.10, 0.12, 0.08]

_LIPSTICK = [(176, 34, 56), (200, 62, 92), (146, 30, 42), (206, 98, 108), (168, 70, 80)]

_BACKGROUNDS = [
    ((228, 228, 226), (188, 190, 192)), ((214, 204, 186), (160, 146, 128)), ((160, 184, 210), (92, 118, 156)),
    ((176, 196, 170), (112, 136, 104)), ((70, 72, 80), (26, 28, 34)), ((246, 244, 238), (214, 212, 204)),
    ((196, 132, 110), (128, 78, 66)), ((204, 196, 220), (140, 130, 164)), ((120, 160, 168), (60, 92, 100)),
    ((232, 214, 168), (180, 150, 98)),
]

_CLOTHES = [
    (30, 32, 40), (236, 236, 232), (40, 60, 110), (130, 30, 40), (80, 90, 60), (150, 150, 150),
    (200, 170, 120), (60, 110, 140), (170, 90, 140), (90, 60, 40), (220, 200, 60),
]

_FRAME_STYLES = ("round", "oval", "rect", "aviator", "cateye", "browline", "rimless")
_FRAME_P = (0.16, 0.12, 0.24, 0.14, 0.12, 0.10, 0.12)
_PLASTIC = [(20, 18, 18), (30, 28, 30), (96, 56, 30), (60, 36, 24), (34, 44, 84), (110, 24, 36), (70, 70, 74)]
_METAL = [(196, 164, 84), (176, 178, 182), (92, 94, 100), (150, 116, 70), (36, 36, 38)]


# =============================================================================================== sampling
def _u(rng, a: float, b: float) -> float:
    return float(rng.uniform(a, b))


def _pick(rng, options, p=None):
    i = int(rng.choice(len(options), p=p))
    return options[i]


def _sample_frames(rng) -> dict:
    style = _pick(rng, _FRAME_STYLES, _FRAME_P)
    metal = style in ("aviator", "rimless") or (style in ("round", "oval") and rng.random() < 0.4)
    colour = _pick(rng, _METAL) if metal else _pick(rng, _PLASTIC)
    a = _u(rng, 0.32, 0.40)
    b_ratio = {"round": _u(rng, 0.86, 0.98), "oval": _u(rng, 0.62, 0.74), "rect": _u(rng, 0.56, 0.70),
               "aviator": _u(rng, 0.82, 0.92), "cateye": _u(rng, 0.58, 0.68), "browline": _u(rng, 0.62, 0.74),
               "rimless": _u(rng, 0.6, 0.72)}[style]
    if style == "round":
        a = _u(rng, 0.29, 0.35)
    sun = rng.random() < 0.08
    if sun:
        tint = _pick(rng, [(24, 24, 26), (60, 40, 24), (30, 50, 34), (40, 44, 60)])
        tint_alpha = _u(rng, 150, 200)
    else:
        tint = _pick(rng, [(200, 220, 240), (220, 220, 210), (180, 200, 230), (230, 210, 190)])
        tint_alpha = _u(rng, 14, 40)
    return {
        "style": style,
        "metal": bool(metal),
        "colour": list(colour),
        "thick": _u(rng, 0.016, 0.026) if metal else _u(rng, 0.034, 0.066),
        "a": a,
        "b": a * b_ratio,
        "dx": _u(rng, -0.01, 0.04),
        "dy": _u(rng, 0.02, 0.09),
        "tint": list(tint),
        "tint_alpha": tint_alpha,
        "sun": bool(sun),
        "bridge_h": _u(rng, 0.02, 0.08),
    }


def sample_identity(rng: np.random.Generator) -> dict:
    """Identity factors of one synthetic person (plain JSON-able values)."""
    male = bool(rng.random() < 0.45)
    young = bool(rng.random() < 0.75)

    # ---- face shape: half widths at temple / cheekbone / jaw / chin side, chin and skull top (local units)
    shape = _pick(rng, ["oval", "round", "long", "square", "heart"], [0.32, 0.2, 0.16, 0.16, 0.16])
    wt, wc, wj, wch, chin = {
        "oval": (1.04, 1.14, 0.90, 0.42, 1.92), "round": (1.08, 1.24, 1.04, 0.56, 1.82),
        "long": (0.98, 1.06, 0.86, 0.42, 2.08), "square": (1.06, 1.14, 1.08, 0.62, 1.90),
        "heart": (1.12, 1.18, 0.86, 0.34, 1.90),
    }[shape]
    j = lambda: _u(rng, -0.035, 0.035)  # noqa: E731
    face = {
        "shape": shape, "wt": wt + j(), "wc": wc + j(), "wj": wj + j() + (0.05 if male else 0.0),
        "wch": wch + j() + (0.05 if male else 0.0), "chin": chin + j() * 1.5, "top": -1.8 + j(),
        "chubby": bool(shape == "round" and rng.random() < 0.45),
    }

    # ---- skin
    t = float(rng.beta(1.1, 1.3))
    pos = t * (len(_SKIN_RAMP) - 1)
    i0 = min(int(pos), len(_SKIN_RAMP) - 2)
    skin = _SKIN_RAMP[i0] + (_SKIN_RAMP[i0 + 1] - _SKIN_RAMP[i0]) * (pos - i0)
    skin = skin * np.array([1 + _u(rng, -0.03, 0.03), 1 + _u(rng, -0.03, 0.03), 1 + _u(rng, -0.05, 0.05)])
    skin = [int(v) for v in np.clip(skin, 0, 255)]

    # ---- hair
    if male:
        styles, p = ["short", "side_part", "bald", "receding", "long", "bangs"], [0.42, 0.24, 0.08, 0.08, 0.08, 0.10]
        if not young:
            p = [0.30, 0.2, 0.22, 0.22, 0.02, 0.04]
    else:
        styles, p = ["long", "bangs", "bun", "side_part", "bob", "short"], [0.34, 0.16, 0.12, 0.16, 0.14, 0.08]
    style = _pick(rng, styles, p)
    if young:
        cname = _pick(rng, ["black", "brown", "blond", "red", "gray"], [0.33, 0.36, 0.21, 0.08, 0.02])
    else:
        cname = _pick(rng, ["black", "brown", "blond", "red", "gray"], [0.12, 0.18, 0.08, 0.02, 0.60])
    lo, hi = _HAIR_COLOURS[cname]
    ht = float(rng.random())
    hair_rgb = [int(a + (b - a) * ht) for a, b in zip(lo, hi)]
    long_len = {"long": _u(rng, 1.7, 3.0), "bob": _u(rng, 0.9, 1.45), "bangs": _u(rng, 0.9, 2.8),
                "side_part": _u(rng, 1.3, 2.8)}.get(style, 0.0)
    if male and style in ("bangs", "side_part"):
        long_len = 0.0
    if male and style == "long":
        long_len = _u(rng, 1.2, 2.2)
    wavy = bool(rng.random() < (0.35 if not male else 0.15)) and style != "bald"
    n_strands = 12
    hair = {
        "style": style, "colour": cname, "rgb": hair_rgb,
        "volume": _u(rng, 0.05, 0.14) if male else _u(rng, 0.10, 0.26),
        "length": long_len,
        "hairline": _u(rng, -1.12, -0.98) if not male else _u(rng, -1.08, -0.95),
        "part": int(_pick(rng, [-1, 1])),
        "wavy": wavy, "wave_amp": _u(rng, 0.03, 0.07), "wave_freq": float(_pick(rng, [9, 11, 13, 15])),
        "wave_phase": _u(rng, 0, 2 * np.pi),
        "fringe": _u(rng, -0.62, -0.50), "fringe_teeth": int(_pick(rng, [7, 9, 11])),
        "bun_r": _u(rng, 0.30, 0.42),
        # flow lines: (start along the cap 0..1, end, depth at start, depth at end); depth 0 = hairline
        "strands": [[_u(rng, 0.4, 0.6), _u(rng, 0.0, 0.3) if k % 2 else _u(rng, 0.7, 1.0),
                     _u(rng, 0.55, 0.85), _u(rng, 0.08, 0.85)] for k in range(n_strands)],
    }

    # ---- eyes, brows, nose, mouth, ears
    eyes = {
        "w": _u(rng, 0.40, 0.50), "h": _u(rng, 0.11, 0.19), "tilt": _u(rng, -0.06, 0.14),
        "skew": _u(rng, -0.25, 0.15), "iris_r": _u(rng, 0.092, 0.108),
        "iris": list(_IRIS[int(rng.choice(len(_IRIS), p=_IRIS_P))]), "dx": _u(rng, -0.025, 0.025),
        "dy": _u(rng, -0.03, 0.03), "lash": _u(rng, 0.028, 0.045) + (0.0 if male else 0.012),
    }
    brow_rgb = hair_rgb
    if cname in ("blond", "gray"):
        brow_rgb = _rgb(hair_rgb, 0.62)
    elif style == "bald":
        brow_rgb = _rgb((90, 70, 56) if young else (120, 116, 110))
    brows = {
        "y": _u(rng, -0.42, -0.31), "thick": _u(rng, 0.06, 0.10) + (0.02 if male else -0.01) * rng.random(),
        "arch": _u(rng, 0.02, 0.12), "inner": _u(rng, -0.30, -0.22), "outer": _u(rng, 0.28, 0.36),
        "tilt": _u(rng, -0.06, 0.06), "rgb": list(_rgb(_mix(brow_rgb, (20, 16, 14), 0.25))),
    }
    nose = {"w": _u(rng, 0.15, 0.26) + (0.02 if male else 0.0), "y": _u(rng, 0.55, 0.68),
            "tip": _u(rng, 0.05, 0.09), "nostril": _u(rng, 0.6, 1.0)}
    lipstick = (not male) and rng.random() < 0.35
    base_lip = _mix(_rgb(skin, 0.82), (176, 76, 80), 0.38)
    mouth = {
        "hw": _u(rng, 0.38, 0.47) + (0.02 if male else 0.0), "y": _u(rng, 1.04, 1.14),
        "ul": _u(rng, 0.055, 0.095), "ll": _u(rng, 0.075, 0.13) - (0.01 if male else 0.0),
        "rgb": list(_pick(rng, _LIPSTICK) if lipstick else base_lip), "lipstick": bool(lipstick),
    }
    ears = {"s": _u(rng, 0.9, 1.12), "out": _u(rng, -0.03, 0.05)}
    ear_visible = style in ("short", "bald", "receding", "bun") or (male and style in ("side_part", "bangs"))
    earrings = None
    if not male and ear_visible and rng.random() < 0.55:
        earrings = {"kind": _pick(rng, ["stud", "hoop", "drop"]), "rgb": list(_pick(rng, _METAL[:3] + [(240, 240, 250)]))}
    makeup = (not male) and lipstick and rng.random() < 0.6
    extras = {
        "blush": _u(rng, 0.0, 1.0) if not male else _u(rng, 0.0, 0.4),
        "stubble": bool(male and rng.random() < 0.28),
        "eyeshadow": list(_pick(rng, [(120, 80, 110), (90, 70, 60), (70, 90, 120), (150, 100, 80)])) if makeup else None,
        "earrings": earrings,
        "wrinkles": (not young) and rng.random() < 0.8,
        "bags": (not young and rng.random() < 0.7) or rng.random() < 0.08,
        "neck": _u(rng, 0.52, 0.62) + (0.08 if male else 0.0),
    }

    propensity = 0.72 if rng.random() < 0.5 else 0.08
    return {
        "male": male, "young": young, "face": face, "skin": skin, "skin_t": t, "hair": hair, "eyes": eyes,
        "brows": brows, "nose": nose, "mouth": mouth, "ears": ears, "extras": extras,
        "glasses_propensity": propensity, "frames": _sample_frames(rng),
    }


def sample_state(identity: dict, rng: np.random.Generator) -> dict:
    """One photograph of ``identity``: pose, light, background, clothes, attributes and their styles."""
    frames = dict(identity["frames"]) if rng.random() < 0.75 else _sample_frames(rng)
    frames["refl_x"] = _u(rng, -0.55, 0.55)
    frames["refl_alpha"] = _u(rng, 18, 70)
    frames["refl_w"] = _u(rng, 0.05, 0.12)
    bg = _BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))]
    jit = rng.uniform(-18, 18, size=3)
    return {
        "pose": {"rot": float(np.clip(rng.normal(0, 3.0), -7, 7)), "dx": _u(rng, -2.5, 2.5),
                 "dy": _u(rng, -2.5, 2.5), "scale": float(np.clip(rng.normal(1.0, 0.03), 0.92, 1.08))},
        "light": {"x": _u(rng, -0.65, 0.65), "y": _u(rng, -0.55, 0.05), "ambient": _u(rng, 0.42, 0.6),
                  "gain": _u(rng, 0.92, 1.1), "warm": _u(rng, -0.05, 0.07)},
        "background": {"c0": [float(v) for v in np.clip(np.array(bg[0]) + jit, 0, 255)],
                       "c1": [float(v) for v in np.clip(np.array(bg[1]) + jit, 0, 255)],
                       "angle": _u(rng, 0, 2 * np.pi)},
        "clothes": {"rgb": list(_pick(rng, _CLOTHES)), "collar": _pick(rng, ["crew", "vneck", "shirt"])},
        "eyeglasses": bool(rng.random() < identity["glasses_propensity"]),
        "glasses": frames,
        "smiling": bool(rng.random() < 0.5),
        "smile": {"open": bool(rng.random() < 0.5), "stretch": _u(rng, 1.08, 1.2), "raise": _u(rng, 0.07, 0.14),
                  "open_h": _u(rng, 0.09, 0.16), "teeth": _u(rng, 0.05, 0.08)},
        "grain": int(rng.integers(2**31 - 1)), "grain_amount": _u(rng, 1.0, 3.0),
    }


def face_attributes(identity: dict, state: dict) -> dict[str, int]:
    """The 40 CelebA attributes (+1/-1) implied by what is drawn; attributes not modelled are -1."""
    h, f, ex = identity["hair"], identity["face"], identity["extras"]
    on = {
        "Eyeglasses": state["eyeglasses"],
        "Smiling": state["smiling"],
        "High_Cheekbones": state["smiling"],
        "Mouth_Slightly_Open": state["smiling"] and state["smile"]["open"],
        "Male": identity["male"],
        "Young": identity["young"],
        "Bald": h["style"] == "bald",
        "Black_Hair": h["style"] != "bald" and h["colour"] == "black",
        "Brown_Hair": h["style"] != "bald" and h["colour"] == "brown",
        "Blond_Hair": h["style"] != "bald" and h["colour"] == "blond",
        "Gray_Hair": h["colour"] == "gray",
        "Bangs": h["style"] == "bangs",
        "Receding_Hairline": h["style"] == "receding",
        "Wavy_Hair": h["wavy"],
        "Straight_Hair": h["style"] != "bald" and not h["wavy"],
        "Pale_Skin": identity["skin_t"] < 0.1,
        "Oval_Face": f["shape"] == "oval",
        "Chubby": f["chubby"],
        "Wearing_Lipstick": identity["mouth"]["lipstick"],
        "Heavy_Makeup": ex["eyeshadow"] is not None,
        "Rosy_Cheeks": ex["blush"] > 0.75,
        "Wearing_Earrings": ex["earrings"] is not None,
        "5_o_Clock_Shadow": ex["stubble"],
        "No_Beard": True,
        "Bags_Under_Eyes": ex["bags"],
        "Bushy_Eyebrows": identity["brows"]["thick"] > 0.095,
        "Arched_Eyebrows": identity["brows"]["arch"] > 0.09,
        "Narrow_Eyes": identity["eyes"]["h"] < 0.13,
        "Big_Nose": identity["nose"]["w"] > 0.24,
        "Pointy_Nose": identity["nose"]["tip"] < 0.06,
        "Big_Lips": identity["mouth"]["ul"] + identity["mouth"]["ll"] > 0.2,
    }
    return {a: (1 if on.get(a, False) else -1) for a in celeba.ATTRIBUTES}


# =============================================================================================== drawing
_INKS: dict = {}


def _ink(col: tuple) -> int:
    """PIL's packed ink for an RGB(A) colour (little-endian bytes R, G, B, A; RGB gets A = 255)."""
    ink = _INKS.get(col)
    if ink is None:
        r, g, b = col[0], col[1], col[2]
        a = col[3] if len(col) == 4 else 255
        ink = r | (g << 8) | (b << 16) | (a << 24)
        if ink >= 2**31:
            ink -= 2**32
        if len(_INKS) < 100_000:
            _INKS[col] = ink
    return ink
class _Painter:
    """Draws local-frame polygons on the supersampled canvas (and the silhouette mask).

    Polygons are queued and drawn in call order by ``flush``, which maps all their points to canvas pixels in one
    element-wise affine pass (the same arithmetic per point as one at a time, far fewer numpy calls)."""

    def __init__(self, canvas: Image.Image, mask: Image.Image, A: np.ndarray):
        self.d = ImageDraw.Draw(canvas).draw  # PIL's core drawing objects: fewer checks per polygon
        self.da = ImageDraw.Draw(canvas, "RGBA").draw
        self.m = ImageDraw.Draw(mask).draw
        self.A = np.asarray(A, dtype=np.float64)
        self._pts: list = []
        self._ops: list = []  # (target, ink)

    def _queue(self, pts, target, ink) -> None:
        p = np.asarray(pts, dtype=np.float64)
        self._pts.append(p)
        self._ops.append((target, ink, len(p)))

    def fill(self, pts, col, sil: bool = False) -> None:
        if len(col) == 4:
            if col[3] <= 0:
                return
            self._queue(pts, self.da, _ink(col))
        else:
            self._queue(pts, self.d, _ink(col))
        if sil:
            self._queue(pts, self.m, 255)

    def sil(self, pts) -> None:
        self._queue(pts, self.m, 255)

    def flush(self) -> None:
        if not self._pts:
            return
        flat = _affine(self.A, np.concatenate(self._pts)).ravel().tolist()
        i = 0
        for target, ink, n in self._ops:
            target.draw_polygon(flat[i:i + 2 * n], ink, 1)
            i += 2 * n
        self._pts, self._ops = [], []

    def soft(self, cx, cy, rx, ry, col, alpha, rings: int = 3, angle: float = 0.0) -> None:
        """A soft blob: concentric translucent ellipses."""
        a = alpha / rings
        for k in range(rings):
            s = 1.0 - k / rings * 0.7
            self.fill(_ellipse(cx, cy, rx * s, ry * s, 24, angle), _rgba(col, a))


class _Scene:
    """Everything about one (identity, state) that does not depend on the two attributes."""

    def __init__(self, identity: dict, state: dict, size: int):
        self.id = identity
        self.st = state
        self.size = size
        self.ss = 2 if size >= 128 else (3 if size >= 86 else 4)
        pose = state["pose"]
        th = math.radians(pose["rot"])
        k = _EYE_DIST * pose["scale"]
        sn, cs = X.sincos(th)
        R = np.array([[cs, -sn], [sn, cs]]) * k
        o = _EYE_MID + (pose["dx"], pose["dy"])
        to_out = np.diag([size / _CW, size / _CH])
        M = X.matmul(to_out, R)
        self.A_out = np.concatenate([M, X.matmul(to_out, o)[:, None]], axis=1)  # local -> output pixels
        self.A_can = self.A_out * self.ss
        self.A_can[:, 2] += (self.ss - 1) / 2.0
        f = identity["face"]
        self.right_profile = (
            np.array([f["top"], f["top"] + 0.2, -1.1, -0.45, 0.25, 0.8, 1.25, f["chin"] - 0.12, f["chin"]]),
            np.array([0, 0.6 * f["wt"], 0.97 * f["wt"], f["wt"], f["wc"], 0.5 * (f["wc"] + f["wj"]) + 0.04,
                      f["wj"], f["wch"], 0.0]),
        )
        lx, ly = state["light"]["x"], state["light"]["y"]
        lz = math.sqrt(max(0.05, 1.0 - lx * lx - ly * ly))
        n = math.sqrt(lx * lx + ly * ly + lz * lz)
        self.L = (lx / n, ly / n, lz / n)
        self._hair_cache = None

    # ----------------------------------------------------------------------------- shared helpers
    def W(self, y: float) -> float:
        ys, xs = self.right_profile
        return float(np.interp(y, ys, xs))

    def points_out(self, pts) -> np.ndarray:
        return _affine(self.A_out, pts)

    def head_contour(self) -> np.ndarray:
        f = self.id["face"]
        ys, xs = self.right_profile
        right = np.stack([xs[1:-1], ys[1:-1]], axis=1)
        ctrl = np.concatenate([[[0.0, f["top"]]], right, [[0.0, f["chin"]]], _mirror(right[::-1])])
        return _closed_curve(ctrl, 6)

    def eye_centre(self, s: int) -> tuple[float, float]:
        e = self.id["eyes"]
        return s * (0.5 + e["dx"]), e["dy"]

    def mouth_geometry(self, smiling: bool):
        """t, x(t), lip line y(t), corner raise; shared by drawing and landmarks."""
        m, sm = self.id["mouth"], self.st["smile"]
        t = np.linspace(-1.0, 1.0, 25)
        if smiling:
            hw = m["hw"] * sm["stretch"]
            r = sm["raise"]
            line = m["y"] + 0.02 - (r + 0.02) * np.abs(t) ** 2.2
        else:
            hw = m["hw"]
            line = m["y"] + 0.012 * (1 - t * t)
        return t, hw * t, line

    def landmarks(self, smiling: bool) -> np.ndarray:
        _, x, line = self.mouth_geometry(smiling)
        lx, ly = self.eye_centre(-1)
        rx, ry = self.eye_centre(1)
        pts = [(lx, ly), (rx, ry), (0.0, self.id["nose"]["y"]), (x[0], line[0]), (x[-1], line[-1])]
        return self.points_out(pts).astype(np.float32)

    # ----------------------------------------------------------------------------- hair geometry
    def hair_shapes(self):
        """(outer, inner, bottom y, smooth outer) of the hair cap; outer is None for bald. Cached.

        outer runs from the right bottom over the crown to the left bottom, inner (the hairline and the inner
        edge of the side locks) from the left bottom to the right bottom, so outer + inner is the cap polygon.
        """
        if self._hair_cache is not None:
            return self._hair_cache
        h, f = self.id["hair"], self.id["face"]
        style = h["style"]
        if style == "bald":
            self._hair_cache = (None, None, 0.0, None)
            return self._hair_cache
        v = h["volume"]
        if style == "bun":
            v = min(v, 0.08)
        if style == "bob":
            v += 0.06
        wt, wc, wj, top = f["wt"], f["wc"], f["wj"], f["top"]
        L = h["length"]
        if L > 0:
            outer_r = [(wc + 0.5 * v + 0.16 + 0.04 * L, L), (wc + 0.6 * v + 0.1, 0.5 * (L - 0.5))]
            if L > 1.8:
                outer_r.insert(1, (wc + 0.6 * v + 0.18, 0.5 * (L + 0.9)))
        else:
            outer_r = [(wt + 0.55 * v + 0.02, -0.05)]
        outer_r += [(wt + 0.85 * v, -0.6), (0.97 * wt + v, -1.15), (0.62 * wt + 0.85 * v, top + 0.2 - 0.92 * v)]
        outer_r = np.array(outer_r)
        outer_ctrl = np.concatenate([outer_r, [[0.0, top - v]], _mirror(outer_r[::-1])])
        outer = smooth = _open_curve(outer_ctrl, 6)
        if h["wavy"]:  # waves only push outwards, so lines drawn inside the smooth outline stay inside the hair
            c = np.array([0.0, -0.4])
            d = outer - c
            ang = X.arctan2(d[:, 1], d[:, 0])
            amp = h["wave_amp"] * (1.0 + 0.6 * (outer[:, 1] > 0.2))
            outer = outer + d / X.row_norms(d, keepdims=True) * (
                amp * (0.5 + 0.5 * X.sin(h["wave_freq"] * ang + h["wave_phase"])))[:, None]
        hl = h["hairline"]
        side_bottom = -0.05
        if style == "bangs":
            fy = h["fringe"]
            n = h["fringe_teeth"]
            xs = np.linspace(-0.86 * wt, 0.86 * wt, n)
            ys = fy + np.where(np.arange(n) % 2 == 0, 0.0, -0.07)
            mid = list(zip(xs, ys))
            inner_l = [(-(wt - 0.04), -0.5), (-0.93 * wt, fy - 0.02)]
        elif style == "receding":
            mid = [(-0.62 * wt, -1.36), (-0.3, -1.2), (0.0, -1.16), (0.3, -1.2), (0.62 * wt, -1.36)]
            inner_l = [(-(wt - 0.02), -0.55), (-0.9 * wt, -1.1)]
        elif style == "side_part":
            mid = [(-0.72, -0.66), (-0.25, -0.86), (0.2, -1.0), (0.45, -1.08), (0.75 * wt, -1.0)]
            inner_l = [(-(wt - 0.03), -0.42), (-0.92 * wt, -0.55)]
        else:
            mid = [(-0.75 * wt, hl + 0.14), (-0.35, hl + 0.03), (0.0, hl), (0.35, hl + 0.03), (0.75 * wt, hl + 0.14)]
            if style in ("long", "bob", "bangs") or (not self.id["male"] and style == "side_part"):
                mid[2] = (0.0, hl + 0.04)
            inner_l = [(-(wt - 0.04), -0.55), (-0.92 * wt, -0.85)]
        if L > 0:
            side = [(-(wc - 0.1), 0.3)]
            if L > 1.2:
                side = [(-(wj * 0.92 + 0.04), min(L, 2.2) - 0.05), (-(wj - 0.02), 1.15)] + side
                side = [(-(wj * 0.92 + 0.1), L)] + side if L > 2.25 else side
            else:
                side = [(-(self.W(L) - 0.06), L)] + side
            first = [(side[0][0], side[0][1] - 0.2)] + side[1:]
        else:
            first = [(-(wt - 0.06), side_bottom)]
        left = first + inner_l
        inner_ctrl = np.array(left + mid + [(-x, y) for x, y in left[::-1]])
        inner = _open_curve(inner_ctrl, 5)
        if style == "side_part" and h["part"] < 0:
            # the swoop is written for a part on the right; mirror the whole hairline for a part on the left
            inner = _mirror(inner[::-1])
        bottom = L if L > 0 else side_bottom
        self._hair_cache = (outer, inner, bottom, smooth)
        return self._hair_cache


# --------------------------------------------------------------------------------------------- layers
def _draw_base(sc: _Scene, P: _Painter) -> None:
    """Everything below the attribute layers; also the complete silhouette mask."""
    idn, st = sc.id, sc.st
    skin = idn["skin"]
    f, h, ex = idn["face"], idn["hair"], idn["extras"]
    hair_rgb = h["rgb"]
    outer, inner, _, _ = sc.hair_shapes()

    # hair behind the head (long styles) and the bun
    if outer is not None and h["length"] > 0:
        Lb = h["length"]
        xb = np.linspace(outer[-1, 0], outer[0, 0], 9)[1:-1]
        tips = np.stack([xb, Lb + 0.04 + np.where(np.arange(7) % 2 == 0, 0.07, -0.03)], axis=1)
        back = np.concatenate([outer, tips])
        P.fill(back, _rgb(hair_rgb, 0.72), sil=True)
    if h["style"] == "bun":
        r = h["bun_r"]
        by = f["top"] - 0.08 - 0.55 * r
        P.fill(_ellipse(0.0, by, r, r * 0.9, 32), _rgb(hair_rgb, 0.9), sil=True)
        for k in (0.55, 0.8):
            arc = _ellipse(0.0, by, r * k, r * k * 0.9, 32)[3:14]
            P.fill(_ribbon(arc, 0.025), _rgba(_rgb(hair_rgb, 0.6), 90))

    # neck and body
    nw = ex["neck"]
    neck = _closed_curve([(-nw, 1.1), (nw, 1.1), (nw * 1.0, 2.0), (nw + 0.2, 2.7), (nw + 0.5, 3.3),
                          (-nw - 0.5, 3.3), (-nw - 0.2, 2.7), (-nw * 1.0, 2.0)], 4)
    P.fill(neck, _rgb(skin, 0.9), sil=True)
    # the chin's shadow on the neck, in bands kept inside the neck
    xs = _lin(-0.97 * nw, 0.97 * nw, 13)
    for d in (0.1, 0.2, 0.32):
        P.fill(_band(xs, f["chin"] - 0.5, f["chin"] + d - 0.22 * (xs / nw) ** 2), _rgba(_rgb(skin, 0.45), 30))
    cl = st["clothes"]
    body_r = [(0.66 + nw * 0.3, 2.42), (1.5, 2.58), (2.3, 2.85), (2.8, 3.3)]
    body = [(-2.9, 3.8), (-2.8, 3.3), (-2.3, 2.85), (-1.5, 2.58), (-(0.66 + nw * 0.3), 2.42)]
    if cl["collar"] == "vneck":
        neckline = [(-0.3, 2.75), (0.0, 3.05), (0.3, 2.75)]
    else:
        neckline = [(-0.4, 2.6), (0.0, 2.66), (0.4, 2.6)]
    body_pts = _open_curve(body + neckline + [(x, y) for x, y in body_r] + [(2.9, 3.8)], 5)
    P.fill(body_pts, _rgb(cl["rgb"]), sil=True)
    if cl["collar"] == "shirt":
        for s in (-1, 1):
            P.fill([(s * 0.05, 2.68), (s * (0.6 + nw * 0.3), 2.46), (s * 0.7, 2.85)], _rgb((238, 238, 234)))
    else:
        band = _open_curve([(-(0.66 + nw * 0.3), 2.42)] + neckline + [(0.66 + nw * 0.3, 2.42)], 6)
        P.fill(_ribbon(band[3:-3], 0.06), _rgba(_rgb(cl["rgb"], 0.7), 160))

    # ears
    es = idn["ears"]["s"]
    for s in (-1, 1):
        ex_ = s * (f["wc"] - 0.02 + idn["ears"]["out"])
        ear = _ellipse(ex_, 0.22, 0.17 * es, 0.31 * es, 24, angle=s * 0.12)
        P.fill(ear, _rgb(skin, 0.93), sil=True)
        helix = _ellipse(ex_ + s * 0.02, 0.2, 0.1 * es, 0.22 * es, 24, angle=s * 0.12)
        arc = np.concatenate([helix[19:], helix[:5]]) if s > 0 else helix[7:17]
        P.fill(_ribbon(arc, 0.03), _rgba(_rgb(skin, 0.62), 150))

    # the head
    head = sc.head_contour()
    P.fill(head, _rgb(skin), sil=True)
    if outer is not None:
        P.sil(np.concatenate([outer, inner]))  # the cap is drawn later, but the silhouette is complete now
    else:
        for patch in _bald_fringe(f):
            P.sil(patch)

    if ex["earrings"]:
        er = ex["earrings"]
        for s in (-1, 1):
            x0 = s * (f["wc"] + 0.02 + idn["ears"]["out"])
            y0 = 0.22 + 0.28 * es
            if er["kind"] == "stud":
                P.fill(_ellipse(x0, y0, 0.04, 0.04, 12), _rgb(er["rgb"]), sil=True)
            elif er["kind"] == "hoop":
                ring = _ring(_ellipse(x0, y0 + 0.1, 0.11, 0.12, 24), _ellipse(x0, y0 + 0.1, 0.085, 0.095, 24))
                P.fill(ring, _rgb(er["rgb"]), sil=True)
            else:
                P.fill(_ellipse(x0, y0 + 0.1, 0.035, 0.08, 16), _rgb(er["rgb"]), sil=True)
                P.fill(_ribbon(np.array([[x0, y0], [x0, y0 + 0.05]]), 0.015), _rgb(er["rgb"]), sil=True)

    # cheek fullness and jaw shading
    if f["chubby"]:
        for s in (-1, 1):
            P.soft(s * 0.75, 0.75, 0.34, 0.3, _rgb(skin, 1.08, 6), 40)
    if ex["stubble"]:  # a beard shadow that fades in towards the jaw line
        col = _mix(hair_rgb, (40, 40, 40), 0.4)
        for y0 in (0.8, 0.95, 1.15):
            P.fill(head[head[:, 1] > y0], _rgba(col, 18))
        P.soft(0.0, 0.5 * (idn["nose"]["y"] + idn["mouth"]["y"]) + 0.03, 0.42, 0.1, col, 40, rings=2)

    # eyes
    for s in (-1, 1):
        _draw_eye(sc, P, s)

    # brows
    b = idn["brows"]
    for s in (-1, 1):
        cx, cy = sc.eye_centre(s)
        u = _unit_lin(14)
        xl = b["inner"] + (b["outer"] - b["inner"]) * u
        yl = b["y"] - b["arch"] * _BROW_ARCH + b["tilt"] * (u - 0.5) * 0.3 + cy
        thick = b["thick"] * (1.0 - 0.65 * _U14_P15) * (0.7 + 0.3 * np.sqrt(np.clip(u * 6, 0, 1)))
        pts = _P2(cx + s * xl, yl)
        P.fill(_ribbon(pts, thick), _rgba(b["rgb"], 235))

    # forehead wrinkles
    if ex["wrinkles"]:
        for k, y in enumerate((-0.78, -0.92)):
            line = _open_curve([(-0.45, y + 0.03), (0.0, y - 0.02), (0.45, y + 0.03)], 5)
            P.fill(_ribbon(line, 0.018), _rgba(_rgb(skin, 0.6), 55 - 12 * k))

    # nose
    n = idn["nose"]
    ny, nwid = n["y"], n["w"]
    side = 1 if sc.L[0] < 0 else -1  # the side away from the light
    bridge = np.array([[side * 0.1, -0.12], [side * 0.13, 0.2], [side * (nwid * 0.6), ny - 0.08]])
    bridge = _open_curve(bridge, 5)
    P.fill(_ribbon(bridge, _lin(0.03, 0.09, len(bridge))), _rgba(_rgb(skin, 0.55), 34))
    P.fill(_ribbon(bridge, _lin(0.015, 0.04, len(bridge))), _rgba(_rgb(skin, 0.55), 34))
    P.soft(0.0, ny + 0.09, nwid * 0.75, 0.045, _rgb(skin, 0.45), 70)
    for s in (-1, 1):
        wing = _open_curve([(s * nwid * 0.55, ny - 0.1), (s * nwid, ny - 0.01), (s * nwid * 0.72, ny + 0.07)], 4)
        P.fill(_ribbon(wing, 0.028), _rgba(_rgb(skin, 0.58), 110))
        P.fill(_ellipse(s * nwid * 0.45, ny + 0.055, 0.05 * n["nostril"] + 0.015, 0.026, 14, angle=-s * 0.3),
               _rgba(_rgb(skin, 0.32), 190))
    tip = _open_curve([(-0.1, ny + 0.03), (0.0, ny + 0.07), (0.1, ny + 0.03)], 4)
    P.fill(_ribbon(tip, 0.02), _rgba(_rgb(skin, 0.6), 70))
    P.soft(-0.3 * sc.L[0] * 0.1, ny - 0.03, n["tip"], n["tip"] * 0.8, (255, 250, 245), 60)

    # philtrum hint
    m = idn["mouth"]
    P.soft(0.0, 0.5 * (ny + m["y"]) + 0.03, 0.06, 0.12, _rgb(skin, 0.7), 30, rings=2)


def _eye_curves(e: dict, x: np.ndarray):
    """Upper and lower lid y (eye-local, x outward) for the almond of width e['w']."""
    xn = np.clip(2.0 * x / e["w"], -1.0, 1.0)
    base = np.clip(1.0 - xn * xn, 0.0, 1.0)
    r2 = np.sqrt(base)   # base**(1/2), **(1/4), **(1/8): square roots round the same on every CPU
    r4 = np.sqrt(r2)
    up = -e["h"] * (r2 * r4) * (1.0 + e["skew"] * xn) - e["tilt"] * xn * e["w"] * 0.25    # base**0.75
    lo = e["h"] * 0.72 * (r2 * r4 * np.sqrt(r4)) - e["tilt"] * xn * e["w"] * 0.25        # base**0.875
    return up, lo


def _draw_eye(sc: _Scene, P: _Painter, s: int) -> None:
    idn = sc.id
    e, skin, ex = idn["eyes"], idn["skin"], idn["extras"]
    cx, cy = sc.eye_centre(s)
    x = _lin(-e["w"] / 2, e["w"] / 2, 21)
    up, lo = _eye_curves(e, x)
    to = lambda xx, yy: _P2(cx + s * xx, cy + yy)  # noqa: E731
    if ex["eyeshadow"]:
        P.soft(cx + s * 0.03, cy - e["h"] * 0.9, e["w"] * 0.62, e["h"] * 1.25, ex["eyeshadow"], 110)
    # socket shading and lid crease
    P.soft(cx, cy - e["h"] * 0.3, e["w"] * 0.72, e["h"] * 1.7, _rgb(skin, 0.7), 36)
    crease = to(x * 0.92, up * 1.25 - 0.06)
    P.fill(_ribbon(crease, _lin(0.012, 0.022, len(crease))), _rgba(_rgb(skin, 0.55), 60))
    if ex["bags"]:
        bag = to(x[3:-3] * 0.95, lo[3:-3] + 0.07)
        P.fill(_ribbon(bag, 0.02), _rgba(_rgb(skin, 0.62), 60))
    # eyeball
    almond = np.concatenate([to(x, up), to(x[::-1], lo[::-1])])
    P.fill(almond, _mix((246, 242, 236), skin, 0.12))
    # iris, limbal ring, pupil (clipped to the almond by clamping y between the lids)
    for r, col in ((e["iris_r"], _rgb(e["iris"], 0.55)), (e["iris_r"] * 0.8, _rgb(e["iris"])),
                   (e["iris_r"] * 0.42, (16, 12, 12))):
        c = _unit_circle(24) * r
        u_, l_ = _eye_curves(e, c[:, 0])
        y = np.clip(c[:, 1], u_, l_)
        P.fill(to(c[:, 0], y), col)
    # shadow of the upper lid on the eyeball, lash line, lower lid
    P.fill(_ribbon(to(x, up + 0.02), 0.04), _rgba((40, 30, 30), 60))
    lash = to(np.append(x, x[-1] + 0.03), np.append(up, up[-1] - 0.025))
    wl = np.concatenate([_lin(0.3, 1.0, len(x)), [0.4]]) * e["lash"]
    P.fill(_ribbon(lash, wl), (28, 20, 20))
    P.fill(_ribbon(to(x[2:-1], lo[2:-1]), 0.014), _rgba(_rgb(skin, 0.45), 110))
    # catchlight (off the pupil centre, towards the light)
    lx = sc.L[0]
    P.fill(_ellipse(cx + 0.45 * e["iris_r"] * (lx * 0.7 - 0.4 * s), cy - 0.45 * e["iris_r"],
                    e["iris_r"] * 0.2, e["iris_r"] * 0.2, 10), (250, 250, 250))


def _draw_smile_layer(sc: _Scene, P: _Painter, smiling: bool) -> None:
    """Cheeks, creases and the mouth: the Smiling region."""
    idn, sm = sc.id, sc.st["smile"]
    skin, m, n, ex = idn["skin"], idn["mouth"], idn["nose"], idn["extras"]
    t, x, line = sc.mouth_geometry(smiling)
    hw = x[-1]
    corner_y = line[-1]
    if ex["blush"] > 0.05:
        for s in (-1, 1):
            P.soft(s * 0.64, 0.58 - (0.09 if smiling else 0.0), 0.25, 0.17, (224, 90, 96), 45 * ex["blush"])
    if smiling:
        for s in (-1, 1):
            P.soft(s * 0.6, 0.42, 0.3, 0.19, _rgb(skin, 1.12, 12), 54)
            P.soft(s * 0.62, 0.6, 0.34, 0.1, _rgb(skin, 0.7), 26, rings=2)
            fold = _open_curve([(s * (n["w"] + 0.07), n["y"] - 0.03), (s * (n["w"] + 0.2), n["y"] + 0.18),
                                (s * (hw + 0.1), corner_y + 0.05), (s * (hw + 0.05), corner_y + 0.2)], 5)
            P.fill(_ribbon(fold + (s * 0.03, 0.0), _lin(0.09, 0.03, len(fold))), _rgba(_rgb(skin, 0.6), 26))
            P.fill(_ribbon(fold, _lin(0.03, 0.008, len(fold))), _rgba(_rgb(skin, 0.5), 85))
            dimple = np.array([[s * (hw + 0.035), corner_y - 0.04], [s * (hw + 0.05), corner_y + 0.04]])
            P.fill(_ribbon(dimple, 0.02), _rgba(_rgb(skin, 0.55), 70))
    elif ex["wrinkles"]:
        for s in (-1, 1):
            fold = _open_curve([(s * (n["w"] + 0.06), n["y"]), (s * (n["w"] + 0.16), n["y"] + 0.2),
                                (s * (hw + 0.06), corner_y + 0.06)], 5)
            P.fill(_ribbon(fold, _lin(0.025, 0.008, len(fold))), _rgba(_rgb(skin, 0.55), 45))

    lip = m["rgb"]
    ul, ll = m["ul"], m["ll"]
    env_u = _LIP_ENV_U
    env_l = np.sqrt(np.clip(1 - t * t, 0.0, None))
    P.soft(0.0, line[12] + ll + 0.07, 0.45 * hw, 0.05, _rgb(skin, 0.55), 50, rings=2)  # under-lip shadow
    if smiling:
        ul, ll = (ul * 0.75, ll * 0.8) if sm["open"] else (ul * 0.85, ll * 0.9)
    if smiling and sm["open"]:
        lo = line + sm["open_h"] * _OPEN_ENV
        opening = _band(x, line, lo)
        P.fill(opening, (62, 20, 26))
        P.soft(0.0, lo[12] - 0.02, 0.5 * hw, 0.4 * sm["open_h"], (150, 60, 70), 120, rings=2)  # tongue
        k = np.abs(t) <= 0.82
        tx, tu = x[k], line[k] - 0.004
        tb = np.minimum(tu + sm["teeth"] * _TEETH_ENV, lo[k] - 0.012)
        P.fill(_band(tx, tu, tb), (238, 232, 218))
        P.fill(_band(tx, tu, tu + 0.015), _rgba((120, 90, 80), 90))
        for tt in (-0.44, -0.16, 0.16, 0.44):
            xx = hw * tt
            yy = float(np.interp(tt, t[k], tu))
            gap = np.array([[xx, yy], [xx, float(np.interp(tt, t[k], tb))]])
            P.fill(_ribbon(gap, 0.008), _rgba((150, 140, 130), 110))
        lower_top = lo
    else:
        lower_top = line
    upper = _band(x, line - ul * env_u, line)
    lower = _band(x, lower_top, lower_top + ll * env_l)
    P.fill(upper, _rgb(lip, 0.86))
    P.fill(lower, _rgb(lip))
    P.soft(0.0, lower_top[12] + ll * 0.45, 0.38 * hw, ll * 0.22, (255, 240, 240), 70 if m["lipstick"] else 40, 2)
    if not (smiling and sm["open"]):
        P.fill(_ribbon(_P2(x, line), _LIP_LINE_W),
               _rgba(_rgb(lip, 0.45), 210))
    for s in (-1, 1):
        P.fill(_ellipse(s * hw, line[-1], 0.018, 0.015, 8), _rgba(_rgb(skin, 0.45), 120))


def _draw_temples(sc: _Scene, P: _Painter) -> None:
    g = sc.st["glasses"]
    col = _rgb(g["colour"])
    for s in (-1, 1):
        cx = s * (0.5 + sc.id["eyes"]["dx"] + g["dx"])
        cy = g["dy"] - g["b"] * 0.45
        hinge = (cx + s * (g["a"] + g["thick"] * 0.5), cy)
        ear = (s * (sc.W(-0.08) - 0.01), -0.08)
        pts = np.array([hinge, ((hinge[0] + ear[0]) / 2, (hinge[1] + ear[1]) / 2 - 0.01), ear])
        P.fill(_ribbon(pts, np.array([1.0, 0.9, 0.75]) * max(g["thick"], 0.022)), col)


def _lens_outline(g: dict, n: int = 36) -> np.ndarray:
    """Right-lens outline in lens coordinates: x outward (away from the nose), y down."""
    style, a, b = g["style"], g["a"], g["b"]
    c = _unit_circle(n)
    ex = {"round": 2.0, "oval": 2.3, "rect": 5.0, "aviator": 2.4, "cateye": 3.0, "browline": 3.5, "rimless": 3.0}[style]
    cs, sn = c[:, 0], c[:, 1]
    sx, sy = _superellipse(n, ex)
    x, y = a * sx, b * sy
    if style == "aviator":
        low = np.clip(y / b, 0, 1)
        y = np.where(y < 0, y * 0.8, y * 1.15)
        x = np.where(x < 0, x * (1 - 0.45 * low), x) + 0.08 * a * low
    elif style == "cateye":
        outer_top = np.clip(x / a, 0, 1) ** 2 * np.clip(-y / b, 0, 1)
        y = y - 0.45 * b * outer_top
        y = np.where(y > 0, y * (1 - 0.25 * np.clip(x / a, 0, 1)), y)
    elif style == "browline":
        y = np.where(y < 0, y * 0.9, y)
    return np.stack([x, y], axis=1)


def _draw_lenses(sc: _Scene, P: _Painter) -> None:
    g = sc.st["glasses"]
    col = _rgb(g["colour"])
    th = g["thick"]
    outline = _lens_outline(g)
    lx, ly = sc.L[0], sc.L[1]
    inner_tops = []
    for s in (-1, 1):
        cx = s * (0.5 + sc.id["eyes"]["dx"] + g["dx"])
        cy = g["dy"]
        lens = _P2(cx + s * outline[:, 0], cy + outline[:, 1])
        # thickness around the rim: browline frames are heavy on top
        if g["style"] == "browline":
            tk = np.where(outline[:, 1] < -0.2 * g["b"], th * 1.6 + 0.02, 0.012)
        elif g["style"] == "rimless":
            tk = np.full(len(outline), 0.008)
        else:
            tk = np.full(len(outline), th)
        d = outline / np.array([g["a"], g["b"]])
        nrm = d / (X.row_norms(d, keepdims=True) + 1e-9)
        rim_out = _P2(cx + s * (outline[:, 0] + nrm[:, 0] * tk), cy + outline[:, 1] + nrm[:, 1] * tk)
        # a faint shadow of the frame on the face, away from the light
        P.fill(_ring(rim_out, lens) + (-lx * 0.05, 0.03 - ly * 0.04), _rgba((20, 14, 14), 34))
        P.fill(lens, _rgba(g["tint"], g["tint_alpha"]))
        # reflection: a slanted band that stays off the pupil
        rx = cx + s * g["refl_x"] * g["a"] * 0.6 + (0.35 * g["a"] if abs(g["refl_x"]) < 0.3 else 0.0)
        w = g["refl_w"]
        band = np.array([[rx - w, cy - g["b"] * 0.72], [rx + w, cy - g["b"] * 0.72],
                         [rx + w - 0.12, cy + g["b"] * 0.72], [rx - w - 0.12, cy + g["b"] * 0.72]])
        band[:, 0] = np.clip(band[:, 0], cx - g["a"] * 0.85, cx + g["a"] * 0.85)
        P.fill(band, _rgba((255, 255, 255), g["refl_alpha"] * (0.5 if g["sun"] else 1.0)))
        rim_col = _rgba(col, 120) if g["style"] == "rimless" else col
        P.fill(_ring(rim_out, lens), rim_col)
        # highlight on the top of the rim
        top = rim_out[(outline[:, 1] < -0.5 * g["b"])]
        if len(top) > 2 and g["style"] != "rimless":
            order = np.argsort(top[:, 0])
            P.fill(_ribbon(top[order], th * 0.35), _rgba((255, 255, 255), 60 if g["metal"] else 35))
        inner_idx = np.argmin(outline[:, 0] + 0.3 * np.abs(outline[:, 1] + 0.35 * g["b"]))
        inner_tops.append((lens[inner_idx, 0], lens[inner_idx, 1]))
        if g["metal"] or g["style"] == "rimless":
            P.fill(_ellipse(cx - s * g["a"] * 0.75, cy + g["b"] * 0.35, 0.03, 0.05, 10), _rgba((230, 230, 230), 110))
    (x0, y0), (x1, y1) = inner_tops
    bh = g["bridge_h"]
    bridge = _open_curve([(x0 - 0.02, y0), (0.0, min(y0, y1) - bh), (x1 + 0.02, y1)], 6)
    P.fill(_ribbon(bridge, max(th * 0.9, 0.02)), col)
    if g["style"] == "aviator":
        top_y = g["dy"] - g["b"] * 0.8
        xs = 0.5 + sc.id["eyes"]["dx"] + g["dx"] - g["a"] * 0.6
        P.fill(_ribbon(np.array([[-xs, top_y], [0.0, top_y - 0.01], [xs, top_y]]), th), col)


def _bald_fringe(f: dict) -> list:
    out = []
    for s in (-1, 1):
        patch = _open_curve([(s * (f["wt"] - 0.06), -0.8), (s * (f["wt"] - 0.03), -0.35),
                             (s * (f["wc"] - 0.05), 0.05)], 5)
        out.append(_ribbon(patch, _lin(0.05, 0.1, len(patch))))
    return out


def _draw_front_hair(sc: _Scene, P: _Painter) -> None:
    idn = sc.id
    h, f, skin = idn["hair"], idn["face"], idn["skin"]
    rgb = h["rgb"]
    outer, inner, _, smooth = sc.hair_shapes()
    if outer is None:  # bald: a fringe around the ears and a shiny scalp
        for patch in _bald_fringe(f):
            P.fill(patch, _rgb(rgb))
        P.soft(0.12, f["top"] + 0.35, 0.45, 0.22, (255, 255, 255), 40)
        return
    no, ni = _resample(smooth, 48), _resample(inner[::-1], 48)
    # the hair's soft shadow on the forehead, then the cap
    P.fill(_ribbon(ni[6:-6] + (0.0, 0.05), 0.1), _rgba(_rgb(skin, 0.45), 60))
    P.fill(np.concatenate([outer, inner]), _rgb(rgb))
    if h["style"] in ("short", "side_part", "receding") and idn["male"]:
        for s in (-1, 1):
            sb = np.array([[s * (f["wt"] - 0.05), -0.1], [s * (f["wc"] - 0.07), 0.18]])
            P.fill(_ribbon(sb, 0.09), _rgba(rgb, 200))
    # flow lines from the crown down to the sides (or onto the fringe)
    dark, light = _rgba(_rgb(rgb, 0.55), 80), _rgba(_rgb(rgb, 1.25, 30), 55)
    bangs = h["style"] == "bangs"
    u = _unit_lin(14)
    st = np.array(h["strands"], dtype=np.float64).reshape(-1, 4)  # (K, 4): s0, s1, w0, w1; all strands at once
    s0, s1, w0, w1 = (st[:, j:j + 1].copy() for j in range(4))
    if bangs:
        sel = np.arange(len(st)) % 3 == 1
        s1[sel] = 0.5 + (s1[sel] - 0.5) * 0.5
        w1[sel] = 0.03
    idx = (s0 + (s1 - s0) * u) * 47
    i0 = idx.astype(int)
    fr = (idx - i0)[..., None]
    i1 = np.minimum(i0 + 1, 47)
    o = no[i0] * (1 - fr) + no[i1] * fr
    i = ni[i0] * (1 - fr) + ni[i1] * fr
    w = np.minimum(w0 + (w1 - w0) * _U14_P07, 0.75)[..., None]
    strands = _ribbon(i * (1 - w) + o * w, _STRAND_W)
    for k in range(len(st)):
        P.fill(strands[k], light if k % 3 == 0 else dark)
    # sheen band on the side towards the light
    c0 = 18 + int(6 * sc.L[0])
    band = np.concatenate([ni[c0:c0 + 12] * 0.5 + no[c0:c0 + 12] * 0.5,
                           (ni[c0:c0 + 12] * 0.28 + no[c0:c0 + 12] * 0.72)[::-1]])
    P.fill(band, _rgba(_rgb(rgb, 1.3, 40), 50))
    if h["style"] in ("long", "bob") or (not idn["male"] and h["style"] == "side_part"):
        px = 0.0 if h["style"] != "side_part" else 0.4 * h["part"]
        part = np.array([[px, h["hairline"] + 0.02], [px * 0.9, f["top"] + 0.25]])
        P.fill(_ribbon(part, np.array([0.03, 0.01])), _rgba(_mix(rgb, skin, 0.5), 150))


# =============================================================================================== render
_NOISE: np.ndarray | None = None
_LIP_LINE_W = np.concatenate([[0.012], np.full(23, 0.02), [0.012]])
_STRAND_W = X.sin(np.linspace(0.15, np.pi - 0.15, 14)) * 0.028 + 0.004


@lru_cache(maxsize=None)
def _interp_taps(size: int, n: int):
    """Bilinear upsampling from n to size rows (pixel-centre aligned, like PIL's BILINEAR resize): two taps."""
    x = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    i0 = np.floor(x).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    w = (x - i0).astype(np.float32)[:, None]
    return i0, i1, np.float32(1) - w, w


def _upsample_rows(a: np.ndarray, size: int) -> np.ndarray:
    """(n, m) -> (size, m): each row a two-tap blend, element-wise (the same bits on every CPU, unlike a BLAS product)."""
    i0, i1, w0, w1 = _interp_taps(size, a.shape[0])
    return a[i0] * w0 + a[i1] * w1


def _grain(size: int, seed: int) -> np.ndarray:
    """Film grain: a window of a fixed noise texture chosen by the state's grain seed."""
    global _NOISE
    if _NOISE is None:
        _NOISE = np.random.default_rng(0x5EED).standard_normal((2 * MAX_SIZE, 2 * MAX_SIZE), dtype=np.float32)
    ox, oy = seed % MAX_SIZE, (seed // MAX_SIZE) % MAX_SIZE
    return _NOISE[oy:oy + size, ox:ox + size]


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not (MIN_SIZE <= size <= MAX_SIZE):
        raise UserError(f"The SynthFaces image size must be a whole number from {MIN_SIZE} to {MAX_SIZE} pixels, not {size}.")
    return int(size)


class _Renderer:
    """Shares the base layers and the light/background of one scene between attribute variants."""

    def __init__(self, identity: dict, state: dict, size: int):
        self.sc = sc = _Scene(identity, state, size)
        c = size * sc.ss
        self.canvas = Image.new("RGB", (c, c), 0)
        self.mask = Image.new("L", (c, c), 0)
        P = _Painter(self.canvas, self.mask, sc.A_can)
        _draw_base(sc, P)
        P.flush()
        self._light()

    def _light(self) -> None:
        """Per-scene light and backdrop, shared by the attribute variants.

        The smooth fields (Lambert shading of an ellipsoidal head, background gradient, the head's shadow on the
        backdrop, vignette) are computed on a quarter-resolution grid and upsampled bilinearly.
        """
        sc, st = self.sc, self.sc.st
        S = sc.size
        n = max(16, S // 4)
        f = S / n
        m = np.asarray(self.mask.reduce(sc.ss), dtype=np.float32) * np.float32(1 / 255)
        Minv = X.inv2(sc.A_out[:, :2])
        g = (np.arange(n, dtype=np.float64) + 0.5) * f - 0.5
        gx = g[None, :] - sc.A_out[0, 2]
        gy = g[:, None] - sc.A_out[1, 2]
        lx_ = Minv[0, 0] * gx + Minv[0, 1] * gy
        ly_ = Minv[1, 0] * gx + Minv[1, 1] * gy
        # ellipsoidal head normals (outside the ellipsoid the rim normal is kept)
        u = lx_ * (1 / 1.35)
        v = (ly_ - 0.1) * (1 / 2.0)
        r2 = u * u + v * v
        inv = 1.0 / np.sqrt(np.maximum(r2, 1.0))
        nz = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
        L = sc.L
        lam = np.maximum(u * inv * L[0] + v * inv * L[1] + nz * L[2], 0.0)
        li = st["light"]
        amb = li["ambient"]
        shade = (amb + (1.0 - amb) * 1.15 * lam) * li["gain"]
        half = np.maximum(u * inv * L[0] + v * inv * L[1] + nz * (L[2] + 1.0), 0.0) * 0.5
        half2 = half * half
        half4 = half2 * half2
        shade = shade + 0.08 * (half4 * half4)
        bg = st["background"]
        xs = g / S - 0.5
        bsn, bcs = X.sincos(bg["angle"])
        tt = np.clip(bcs * xs[None, :] + bsn * xs[:, None] + 0.5, 0.0, 1.0)
        sh = X.exp(-((lx_ + L[0] * 0.9) ** 2 * 0.45 + (ly_ - 0.3) ** 2 * 0.18))
        dim = 1.0 - 0.35 * sh - 0.35 * (xs[None, :] ** 2 + xs[:, None] ** 2)
        rows = _upsample_rows(np.concatenate([shade, tt, dim], axis=1).astype(np.float32), S)
        shade, tt, dim = (_upsample_rows(rows[:, k * n:(k + 1) * n].T, S).T for k in range(3))
        w = li["warm"]
        # channel by channel: broadcasting over a trailing axis of 3 is slow in numpy
        self.shade3 = np.stack([shade * np.float32(1 + w), shade, shade * np.float32(1 - w)], axis=-1)
        c0, c1 = bg["c0"], bg["c1"]
        keep = dim * (1.0 - m)
        grain = _grain(S, st["grain"]) * np.float32(st["grain_amount"]) + np.float32(0.5)
        self.under = np.stack(
            [(tt * np.float32(c1[k] - c0[k]) + np.float32(c0[k])) * keep + grain for k in range(3)], axis=-1)

    def render(self, eyeglasses: bool, smiling: bool) -> tuple[np.ndarray, np.ndarray]:
        sc = self.sc
        canvas = self.canvas.copy()
        P = _Painter(canvas, self.mask.copy(), sc.A_can)
        _draw_smile_layer(sc, P, smiling)
        if eyeglasses:
            _draw_temples(sc, P)
        _draw_front_hair(sc, P)
        if eyeglasses:
            _draw_lenses(sc, P)
        P.flush()
        fg = np.asarray(canvas.reduce(sc.ss), dtype=np.float32)
        out = fg * self.shade3
        out += self.under
        img = np.clip(out, 0, 255, out=out).astype(np.uint8)
        return img, sc.landmarks(smiling)


def render_face(identity: dict, state: dict, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Render one face: (H, W, 3) uint8 image and (5, 2) float32 landmarks in output pixel coordinates."""
    size = _check_size(size)
    return _Renderer(identity, state, size).render(bool(state["eyeglasses"]), bool(state["smiling"]))


def render_with_truth(identity: dict, state: dict, size: int) -> dict:
    """The image, its landmarks, and the two ground-truth toggles, sharing the base layers.

    Each image equals ``render_face`` of the correspondingly toggled state, byte for byte.
    """
    size = _check_size(size)
    r = _Renderer(identity, state, size)
    g, s = bool(state["eyeglasses"]), bool(state["smiling"])
    img, lm = r.render(g, s)
    return {"image": img, "landmarks": lm, "Eyeglasses": r.render(not g, s)[0], "Smiling": r.render(g, not s)[0]}


def toggled(state: dict, attribute: str) -> dict:
    """The same state with one truth attribute ('Eyeglasses' or 'Smiling') flipped."""
    key = {"Eyeglasses": "eyeglasses", "Smiling": "smiling"}[attribute]
    out = dict(state)
    out[key] = not state[key]
    return out


# =============================================================================================== dataset
def _plan(count: int, seed: int):
    """Identities, per-image (identity index, state) in file order, and the partition of each identity."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5F4C]))
    identities, owners = [], []
    while len(owners) < count:
        identities.append(sample_identity(rng))
        owners.extend([len(identities) - 1] * int(rng.integers(3, 9)))
    owners = owners[:count]
    order = rng.permutation(count)
    owners = [owners[i] for i in order]
    states = [sample_state(identities[o], rng) for o in owners]
    n_id = len(identities)
    perm = rng.permutation(n_id)
    partition = np.zeros(n_id, dtype=int)
    if n_id >= 3:
        n_val = max(1, int(round(0.1 * n_id)))
        n_test = max(1, int(round(0.1 * n_id)))
        partition[perm[n_id - n_test - n_val:n_id - n_test]] = 1
        partition[perm[n_id - n_test:]] = 2
    return identities, owners, states, partition


def _encode_jpeg(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def generate(out_dir, count: int = 1000, size: int = 128, seed: int = 0,
             progress: ProgressFn | None = None) -> dict:
    """Render ``count`` SynthFaces into ``out_dir`` in the CelebA layout, atomically; returns a summary."""
    size = _check_size(size)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise UserError(f"The SynthFaces image count must be a whole number of at least 1, not {count}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"The SynthFaces seed must be a whole number of at least 0, not {seed}.")
    count, seed = int(count), int(seed)
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise UserError(f"The folder {out_dir} already exists; choose a new folder for the SynthFaces dataset.")
    t0 = time.perf_counter()

    def report(frac: float, msg: str) -> None:
        if progress is not None:
            progress(float(frac), msg)

    report(0.0, "Planning identities")
    identities, owners, states, partition = _plan(count, seed)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    from ..workspace import FolderTaken, atomic_folder

    try:
        with atomic_folder(out_dir) as tmp:
            (tmp / celeba.IMAGE_DIR).mkdir(parents=True)
            (tmp / TRUTH_DIR).mkdir()
            attr_rows, lm_rows, part_rows, id_rows, truth_rows = [], [], [], [], []
            step = max(1, count // 50)
            for i, (owner, state) in enumerate(zip(owners, states)):
                name = f"{i + 1:06d}.jpg"
                stem = name[:-4]
                out = render_with_truth(identities[owner], state, size)
                save_image(out["image"], tmp / celeba.IMAGE_DIR / name, quality=JPEG_QUALITY)
                truth = {}
                for attr in celeba.TRUTH_ATTRIBUTES:
                    rel = f"{TRUTH_DIR}/{stem}_{attr}.jpg"
                    save_image(out[attr], tmp / rel, quality=JPEG_QUALITY)
                    truth[attr] = rel
                attr_rows.append((name, face_attributes(identities[owner], state)))
                lm_rows.append((name, out["landmarks"]))
                part_rows.append((name, int(partition[owner])))
                id_rows.append((name, owner + 1))
                truth_rows.append((name, truth))
                if (i + 1) % step == 0 or i + 1 == count:
                    report(0.97 * (i + 1) / count, f"Rendered {i + 1} of {count} faces")
            report(0.98, "Writing the label files")
            celeba.write_attr_file(tmp / celeba.ATTR_FILE, attr_rows)
            celeba.write_landmark_file(tmp / celeba.LANDMARK_FILE, lm_rows)
            celeba.write_pairs_file(tmp / celeba.PARTITION_FILE, part_rows)
            celeba.write_pairs_file(tmp / celeba.IDENTITY_FILE, id_rows)
            celeba.write_truth_file(tmp / celeba.TRUTH_FILE, truth_rows)
            summary = _summary(count, size, seed, identities, attr_rows, part_rows)
            meta = {"generator": GENERATOR, "version": VERSION, "count": count, "size": size, "seed": seed,
                    "summary": summary}
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    except FolderTaken:
        raise UserError(f"The folder {out_dir} appeared while SynthFaces was being generated; nothing was written.")
    seconds = time.perf_counter() - t0
    report(1.0, f"Generated {count} faces")
    return dict(summary, seconds=round(seconds, 3), path=str(out_dir))


def _summary(count, size, seed, identities, attr_rows, part_rows) -> dict:
    names = celeba.ATTRIBUTES
    mat = np.array([[v[a] for a in names] for _, v in attr_rows], dtype=np.int8)
    rates = {a: round(float((mat[:, j] > 0).mean()), 4) for j, a in enumerate(names) if (mat[:, j] > 0).any()}
    parts = [p for _, p in part_rows]
    return {
        "count": count, "identities": len(identities), "size": size, "seed": seed,
        "attribute_rates": rates,
        "partition": {"train": parts.count(0), "validation": parts.count(1), "test": parts.count(2)},
    }


# =============================================================================================== bench
def bench(size: int = 128, n: int = 300, repeats: int = 3) -> dict:
    """Render throughput of this process (images/s, median of ``repeats``): render only, and render + JPEG.

    Single-threaded numpy/PIL code; pin the process to one core (``taskset -c 0``) for a one-core figure.
    """
    size = _check_size(size)
    n = max(1, int(n))
    rng = np.random.default_rng(1234)
    jobs = []
    while len(jobs) < n:
        idn = sample_identity(rng)
        jobs.extend((idn, sample_state(idn, rng)) for _ in range(4))
    jobs = jobs[:n]
    render_only, with_jpeg, cpu_render = [], [], []
    for _ in range(max(1, repeats)):
        t, c = time.perf_counter(), time.process_time()
        for idn, st in jobs:
            render_face(idn, st, size)
        render_only.append(n / max(time.perf_counter() - t, 1e-9))
        cpu_render.append(n / max(time.process_time() - c, 1e-9))
        t = time.perf_counter()
        for idn, st in jobs:
            _encode_jpeg(render_face(idn, st, size)[0])
        with_jpeg.append(n / max(time.perf_counter() - t, 1e-9))
    return {
        "size": size, "n": n, "repeats": max(1, repeats),
        "render_per_s": round(statistics.median(render_only), 1),
        "render_jpeg_per_s": round(statistics.median(with_jpeg), 1),
        # the same render loop timed by this process's CPU time: less sensitive to other load on the machine
        "render_per_cpu_s": round(statistics.median(cpu_render), 1),
    }
