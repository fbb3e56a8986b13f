"""Synthesizers M ~ T^-1: make pseudo-samples in domain A (with the attribute) from real B images.

Paper 000, Sec. 5.1: for each real image b in B (no eyeglasses / not smiling) a pseudo-sample M(b) is made
and added to A, which gives a pseudo-paired dataset.

- ``PseudoEyeglasses`` follows Sec. 5.1 exactly: an ellipse around each eye with a random height h in
  [10, 25] px, a width in [h/2, 2h], a transparency (opacity) coefficient in [0.1, 1.0], and the two ellipses
  joined by a line with the same transparency and a width in [h/5, h/2]. Those pixel ranges are for CelebA's
  aligned 178x218 faces; they are scaled by ``eye_distance / CELEBA_EYE_DISTANCE`` so they mean the same on a
  face of any size. h and the width are the full extents (diameters) of the ellipse, across and along the
  eye axis.
- ``PseudoSmile`` warps the mouth region with a smooth displacement field built from one of a small closed set
  of smile templates (the paper uses Averbuch-Elor et al.'s portrait animation; this is a landmark-driven
  stand-in). Templates are control-point displacements in a mouth-normalised frame, interpolated by Gaussian
  RBFs and faded to exactly zero outside an elliptic region around the mouth.

Every synthesizer is a pure function of (image, landmarks, params); ``sample_params`` draws params from a
``numpy.random.Generator`` and returns a JSON-serialisable dict that records them both in CelebA pixel units
and in this image's pixels. Pixels outside the affected region are returned bit-identical.

Landmarks are 5 (x, y) points in pixel coordinates (pixel centres at integer coordinates): left eye, right eye,
nose, left mouth corner, right mouth corner.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ..errors import UserError
from . import exact as X
from .celeba import CELEBA_EYE_DISTANCE, CELEBA_MEAN_LANDMARKS, TASK_ATTRIBUTE

# Half the mouth-corner distance of CelebA's mean aligned face: the unit of the smile frame, in CelebA pixels.
CELEBA_HALF_MOUTH = X.hypot(*(CELEBA_MEAN_LANDMARKS[4] - CELEBA_MEAN_LANDMARKS[3])) / 2.0


# ------------------------------------------------------------------------------------------ helpers
def _check_image(image) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise UserError(
            f"The synthesizers need an 8-bit RGB image (H x W x 3 uint8), got shape {arr.shape} of {arr.dtype}."
        )
    return arr


def _check_landmarks(landmarks) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2) or not np.all(np.isfinite(lm)):
        raise UserError("Landmarks must be 5 finite (x, y) points: left eye, right eye, nose, mouth corners.")
    return lm


def _axis(p0: np.ndarray, p1: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Unit vector u from p0 to p1, its normal v (pointing 'down' for an upright face) and the distance."""
    d = p1 - p0
    dist = X.hypot(float(d[0]), float(d[1]))
    if dist < 1.0:
        raise UserError(f"The {what} landmarks are less than one pixel apart, so this face cannot be used.")
    u = d / dist
    v = np.array([-u[1], u[0]])
    return u, v, dist


def _bbox(cx: float, cy: float, ex: float, ey: float, width: int, height: int, margin: float = 2.0):
    """Integer [x0, x1) x [y0, y1) box around (cx, cy) with half-extents (ex, ey), clipped to the image."""
    x0 = max(int(math.floor(cx - ex - margin)), 0)
    x1 = min(int(math.ceil(cx + ex + margin)) + 1, width)
    y0 = max(int(math.floor(cy - ey - margin)), 0)
    y1 = min(int(math.ceil(cy + ey + margin)) + 1, height)
    return x0, x1, y0, y1


def _ellipse_extent(a: float, b: float, u: np.ndarray) -> tuple[float, float]:
    """Half-extents along image x and y of an ellipse with semi-axes a (along u) and b (along the normal)."""
    ex = math.sqrt((a * u[0]) ** 2 + (b * u[1]) ** 2)
    ey = math.sqrt((a * u[1]) ** 2 + (b * u[0]) ** 2)
    return ex, ey


def _r(x: float, nd: int = 4) -> float:
    return float(round(float(x), nd))


# ------------------------------------------------------------------------------------------ interface
class Synthesizer:
    """M ~ T^-1 for one task. Subclasses set name / task / attribute and implement the three methods."""

    name: str = ""
    task: str = ""
    attribute: str = ""

    def sample_params(self, rng: np.random.Generator, landmarks: np.ndarray) -> dict:
        raise NotImplementedError

    def apply(self, image: np.ndarray, landmarks: np.ndarray, params: dict) -> np.ndarray:
        raise NotImplementedError

    def param_ranges(self) -> dict:
        raise NotImplementedError

    def fit(self, params: dict, landmarks: np.ndarray) -> dict:
        """The same sample (its CelebA-unit values) described for the face with these landmarks: the pixel values
        that ``apply`` draws there. Compositions call it with the landmarks of the image actually written, so a
        sample drawn on a source image keeps the paper's scale after the image is resized."""
        raise NotImplementedError

    def __call__(self, image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        params = self.sample_params(rng, landmarks)
        return self.apply(image, landmarks, params), params

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, task={self.task!r})"


# ------------------------------------------------------------------------------------------ eyeglasses
class PseudoEyeglasses(Synthesizer):
    """Dark ellipses around the eyes joined by a bridge line, alpha-blended (paper 000, Sec. 5.1).

    Per sample (CelebA 178x218 pixel units, scaled by eye distance to this image):
      height h ~ U[10, 25], width ~ U[h/2, 2h], opacity ~ U[0.1, 1.0], line width ~ U[h/5, h/2].
    Both eyes get the same ellipse (one pair of glasses); the line has the same opacity. The ellipses are
    centred on the eye landmarks and turned with the eye axis (angle 0 on aligned faces); the line runs along
    the eye axis, at eye height, between the inner edges of the two ellipses. Shapes are anti-aliased by their
    analytic pixel coverage, and the union is blended once (overlaps are not darker). When the lenses overlap
    (width > eye distance) there is no visible bridge and ``line_length_px`` is 0.

    ``apply`` draws the recorded pixel sizes (``*_px``) when present, else the CelebA-unit sizes times this
    face's scale, so a record made on one face can be replayed exactly on it, or re-scaled onto another.
    """

    name = "pseudo-eyeglasses"
    task = "eyeglasses"
    attribute = TASK_ATTRIBUTE["eyeglasses"]

    HEIGHT = (10.0, 25.0)           # CelebA pixels
    WIDTH_OVER_HEIGHT = (0.5, 2.0)
    OPACITY = (0.1, 1.0)
    LINE_OVER_HEIGHT = (0.2, 0.5)

    def __init__(self, color: tuple[int, int, int] = (0, 0, 0)):
        if len(color) != 3 or not all(0 <= int(c) <= 255 for c in color):
            raise UserError("The eyeglasses colour must be three numbers from 0 to 255.")
        self.color = tuple(int(c) for c in color)

    def param_ranges(self) -> dict:
        return {
            "units": "CelebA aligned 178x218 pixels; multiplied by scale = eye_distance / "
            f"{CELEBA_EYE_DISTANCE:.2f} for this image",
            "height": list(self.HEIGHT),
            "width": ["height / 2", "2 * height"],
            "opacity": list(self.OPACITY),
            "line_width": ["height / 5", "height / 2"],
            "color": list(self.color),
        }

    def sample_params(self, rng: np.random.Generator, landmarks: np.ndarray) -> dict:
        lm = _check_landmarks(landmarks)
        h = float(rng.uniform(*self.HEIGHT))
        w = float(rng.uniform(h * self.WIDTH_OVER_HEIGHT[0], h * self.WIDTH_OVER_HEIGHT[1]))
        opacity = float(rng.uniform(*self.OPACITY))
        lw = float(rng.uniform(h * self.LINE_OVER_HEIGHT[0], h * self.LINE_OVER_HEIGHT[1]))
        return self._describe(lm, h, w, lw, opacity, list(self.color))

    def fit(self, params: dict, landmarks: np.ndarray) -> dict:
        try:
            h, w, lw = float(params["height"]), float(params["width"]), float(params["line_width"])
            opacity = float(params["opacity"])
        except (KeyError, TypeError, ValueError):
            raise UserError("The eyeglasses parameters are incomplete: they need height, width, line width and opacity.")
        return self._describe(_check_landmarks(landmarks), h, w, lw, opacity, list(params.get("color", self.color)))

    def _describe(self, lm: np.ndarray, h: float, w: float, lw: float, opacity: float, color: list) -> dict:
        u, _, eye_dist = _axis(lm[0], lm[1], "eye")
        scale = eye_dist / CELEBA_EYE_DISTANCE
        return {
            "synthesizer": self.name,
            "height": h,
            "width": w,
            "line_width": lw,
            "opacity": opacity,
            "color": color,
            "scale": scale,
            "eye_distance_px": eye_dist,
            "height_px": h * scale,
            "width_px": w * scale,
            "line_width_px": lw * scale,
            "angle_deg": math.degrees(X.arctan2(float(u[1]), float(u[0]))),
            "line_length_px": max(eye_dist - w * scale, 0.0),
        }

    def apply(self, image: np.ndarray, landmarks: np.ndarray, params: dict) -> np.ndarray:
        img = _check_image(image)
        lm = _check_landmarks(landmarks)
        u, v, eye_dist = _axis(lm[0], lm[1], "eye")
        scale = eye_dist / CELEBA_EYE_DISTANCE
        try:
            hp = float(params["height_px"]) if "height_px" in params else float(params["height"]) * scale
            wp = float(params["width_px"]) if "width_px" in params else float(params["width"]) * scale
            lwp = float(params["line_width_px"]) if "line_width_px" in params else float(params["line_width"]) * scale
            opacity = float(params["opacity"])
            color = np.asarray(params.get("color", self.color), dtype=np.float32).reshape(3)
        except (KeyError, TypeError, ValueError):
            raise UserError("The eyeglasses parameters are incomplete: they need height, width, line width and opacity.")
        if not (hp > 0 and wp > 0 and lwp >= 0 and 0.0 <= opacity <= 1.0):
            raise UserError("The eyeglasses parameters are out of range.")

        H, W = img.shape[:2]
        a, b = wp / 2.0, hp / 2.0
        c0, c1 = lm[0], lm[1]
        ex, ey = _ellipse_extent(a, b, u)
        mid = (c0 + c1) / 2.0
        half_span_x = abs(c1[0] - c0[0]) / 2.0 + ex
        half_span_y = abs(c1[1] - c0[1]) / 2.0 + ey
        x0, x1, y0, y1 = _bbox(mid[0], mid[1], half_span_x, half_span_y, W, H)
        out = img.copy()
        if x1 <= x0 or y1 <= y0:
            return out

        xs = np.arange(x0, x1, dtype=np.float32)
        ys = np.arange(y0, y1, dtype=np.float32)[:, None]
        cov = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
        inv_a2, inv_b2 = 1.0 / (a * a), 1.0 / (b * b)
        ux, uy, vx, vy = (np.float32(t) for t in (u[0], u[1], v[0], v[1]))
        for c in (c0, c1):
            dx = xs - np.float32(c[0])
            dy = ys - np.float32(c[1])
            xl = dx * ux + dy * uy          # along the eye axis
            yl = dx * vx + dy * vy          # across
            f = xl * xl * inv_a2 + yl * yl * inv_b2 - 1.0
            g = 2.0 * np.sqrt((xl * inv_a2) ** 2 + (yl * inv_b2) ** 2)
            d = f / np.maximum(g, 1e-6)     # first-order signed distance to the ellipse (negative inside)
            np.maximum(cov, np.clip(0.5 - d, 0.0, 1.0), out=cov)
        if lwp > 0 and eye_dist > 2 * a:
            # The bridge: along the eye axis from centre to centre (inside the lenses it is hidden by the union),
            # so its visible part runs exactly between the inner edges of the two ellipses.
            dx = xs - np.float32(c0[0])
            dy = ys - np.float32(c0[1])
            t = dx * ux + dy * uy
            n = np.abs(dx * vx + dy * vy)
            across = np.clip(np.float32(lwp / 2.0) - n + 0.5, 0.0, 1.0)
            along = np.clip(np.minimum(t, np.float32(eye_dist) - t) + 0.5, 0.0, 1.0)
            np.maximum(cov, across * along, out=cov)

        alpha = (cov * np.float32(opacity))[..., None]
        region = out[y0:y1, x0:x1].astype(np.float32)
        blended = region + alpha * (color - region)
        touched = cov > 0
        out[y0:y1, x0:x1][touched] = np.clip(np.rint(blended[touched]), 0, 255).astype(np.uint8)
        return out


# ------------------------------------------------------------------------------------------ smile
# Mouth-normalised frame: origin at the mouth centre, x along the corner axis (left corner at -1, right at +1),
# y perpendicular pointing down the face (chin side), unit = half the corner distance. Each control point is
# (x, y, dx, dy); 'up' is negative dy. Points of the shared anchor set keep the nose and chin still.
_ANCHORS = [
    (0.0, -1.05, 0.0, 0.0),     # nose base
    (-0.7, -1.15, 0.0, 0.0),
    (0.7, -1.15, 0.0, 0.0),
    (0.0, 1.35, 0.0, 0.0),      # chin
    (-0.9, 1.2, 0.0, 0.0),
    (0.9, 1.2, 0.0, 0.0),
]


def _sym(x, y, dx, dy):
    """A control point and its mirror image across the mouth's vertical axis."""
    return [(-x, y, -dx, dy), (x, y, dx, dy)]


SMILE_TEMPLATES: dict[str, list[tuple[float, float, float, float]]] = {
    # Corners a little up and out, lips follow, barely any cheek lift.
    "subtle": [
        *_sym(1.0, 0.0, 0.10, -0.14),
        *_sym(0.5, -0.22, 0.04, -0.06),
        (0.0, -0.25, 0.0, -0.01),
        *_sym(0.55, 0.25, 0.05, -0.04),
        (0.0, 0.32, 0.0, 0.03),
        *_sym(1.5, -0.55, 0.03, -0.06),
        *_sym(1.25, 0.55, 0.03, -0.05),
    ],
    # Corners clearly up and out, the lower lip curves into a U, cheeks lift.
    "broad": [
        *_sym(1.0, 0.0, 0.22, -0.28),
        *_sym(0.5, -0.22, 0.09, -0.12),
        (0.0, -0.25, 0.0, -0.03),
        *_sym(0.55, 0.25, 0.10, -0.07),
        (0.0, 0.32, 0.0, 0.07),
        *_sym(1.5, -0.55, 0.06, -0.18),
        *_sym(1.25, 0.55, 0.06, -0.10),
    ],
    # Wide, with the lips parted: upper lip up, lower lip down in the middle, corners far out.
    "grin": [
        *_sym(1.0, 0.0, 0.30, -0.24),
        *_sym(0.5, -0.22, 0.12, -0.14),
        (0.0, -0.25, 0.0, -0.08),
        *_sym(0.55, 0.25, 0.12, 0.02),
        (0.0, 0.32, 0.0, 0.16),
        *_sym(1.5, -0.55, 0.08, -0.20),
        *_sym(1.25, 0.55, 0.07, -0.08),
    ],
    # One-sided: the right corner (image right, +x) rises much more than the left one.
    "lopsided": [
        (-1.0, 0.0, -0.08, -0.08),
        (1.0, 0.0, 0.22, -0.32),
        (-0.5, -0.22, -0.03, -0.03),
        (0.5, -0.22, 0.09, -0.14),
        (0.0, -0.25, 0.02, -0.04),
        (-0.55, 0.25, -0.03, -0.02),
        (0.55, 0.25, 0.10, -0.09),
        (0.0, 0.32, 0.02, 0.04),
        (-1.5, -0.55, -0.02, -0.03),
        (1.5, -0.55, 0.06, -0.16),
        (-1.25, 0.55, -0.02, -0.02),
        (1.25, 0.55, 0.06, -0.11),
    ],
}

# The affected region: an ellipse in the mouth frame (centre, semi-axes); the field is 1x the template inside
# radius _WINDOW_FLAT and falls smoothly to exactly 0 at the ellipse's edge.
_WINDOW_CENTER = (0.0, -0.1)
_WINDOW_AXES = (2.6, 1.8)
_WINDOW_FLAT = 0.3
_RBF_SIGMA = 0.5           # in mouth units
_RBF_RIDGE = 1e-4


def _window(r: np.ndarray) -> np.ndarray:
    t = np.clip((1.0 - r) / (1.0 - _WINDOW_FLAT), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _window_radius(xn: np.ndarray, yn: np.ndarray) -> np.ndarray:
    return np.sqrt(((xn - _WINDOW_CENTER[0]) / _WINDOW_AXES[0]) ** 2 + ((yn - _WINDOW_CENTER[1]) / _WINDOW_AXES[1]) ** 2)


def _solve_template(points) -> tuple[np.ndarray, np.ndarray]:
    """RBF centres (N, 2) and weights (N, 2) such that window * sum_i w_i g(|p - c_i|) hits the displacements."""
    pts = np.array(list(points) + _ANCHORS, dtype=np.float64)
    c, d = pts[:, :2], pts[:, 2:]
    win = _window(_window_radius(c[:, 0], c[:, 1]))
    target = d / np.maximum(win, 0.2)[:, None]
    sq = ((c[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    K = X.exp(-sq / (2 * _RBF_SIGMA**2)) + _RBF_RIDGE * np.eye(len(c))
    return c, X.solve(K, target)


_SOLVED = {name: _solve_template(pts) for name, pts in SMILE_TEMPLATES.items()}


class PseudoSmile(Synthesizer):
    """Warp the mouth region by a smile template (corners up and out, lower lip curved, cheeks lifted).

    Parameters: ``template`` (one of SMILE_TEMPLATES) and ``intensity`` in [0.6, 1.0], which multiplies the
    template's displacements. The mouth frame comes from the two mouth corners, so in-plane rotation and any
    image size are handled. The output samples the input at the inverse-mapped position (bilinear), only inside
    the affected ellipse; every pixel outside it is unchanged.
    """

    name = "pseudo-smile"
    task = "smile"
    attribute = TASK_ATTRIBUTE["smile"]

    TEMPLATES = tuple(SMILE_TEMPLATES)
    INTENSITY = (0.6, 1.0)

    def param_ranges(self) -> dict:
        return {
            "units": "mouth frame: unit = half the mouth-corner distance "
            f"({CELEBA_HALF_MOUTH:.1f} CelebA pixels on the mean aligned face)",
            "template": list(self.TEMPLATES),
            "intensity": list(self.INTENSITY),
            "region_semi_axes": list(_WINDOW_AXES),
        }

    def sample_params(self, rng: np.random.Generator, landmarks: np.ndarray) -> dict:
        lm = _check_landmarks(landmarks)
        template = self.TEMPLATES[int(rng.integers(len(self.TEMPLATES)))]
        intensity = float(rng.uniform(*self.INTENSITY))
        return self.describe(lm, template, intensity)

    def fit(self, params: dict, landmarks: np.ndarray) -> dict:
        try:
            template, intensity = params["template"], float(params["intensity"])
        except (KeyError, TypeError, ValueError):
            raise UserError("The smile parameters are incomplete: they need a template and an intensity.")
        return self.describe(landmarks, template, intensity)

    def describe(self, landmarks: np.ndarray, template: str, intensity: float) -> dict:
        """The full parameter record for a chosen template and intensity on this face."""
        lm = _check_landmarks(landmarks)
        if template not in SMILE_TEMPLATES:
            raise UserError(f"Unknown smile template '{template}'; choose one of {', '.join(self.TEMPLATES)}.")
        u, _, corner_dist = _axis(lm[3], lm[4], "mouth-corner")
        unit = corner_dist / 2.0
        pts = np.array(SMILE_TEMPLATES[template])
        corner_moves = [X.hypot(float(p[2]), float(p[3])) for p in pts if abs(abs(p[0]) - 1.0) < 1e-9 and p[1] == 0.0]
        max_move = float(X.hypot(pts[:, 2], pts[:, 3]).max()) * intensity
        return {
            "synthesizer": self.name,
            "template": template,
            "intensity": float(intensity),
            "unit_px": unit,
            "scale": unit / CELEBA_HALF_MOUTH,
            "angle_deg": math.degrees(X.arctan2(float(u[1]), float(u[0]))),
            "max_displacement": max_move * CELEBA_HALF_MOUTH,      # CelebA pixels
            "max_displacement_px": max_move * unit,
            "corner_displacement": max(corner_moves) * intensity * CELEBA_HALF_MOUTH,
            "corner_displacement_px": max(corner_moves) * intensity * unit,
        }

    def displacement_field(self, landmarks: np.ndarray, template: str, intensity: float,
                           box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dx, dy, inside) on the pixel grid of box = (x0, x1, y0, y1), in image pixels (forward displacement)."""
        lm = _check_landmarks(landmarks)
        u, v, corner_dist = _axis(lm[3], lm[4], "mouth-corner")
        unit = corner_dist / 2.0
        m = (lm[3] + lm[4]) / 2.0
        centres, weights = _SOLVED[template]
        x0, x1, y0, y1 = box
        xs = np.arange(x0, x1, dtype=np.float64)
        ys = np.arange(y0, y1, dtype=np.float64)
        # Gaussians are separable along the image axes (isotropic), so the RBF sum is two small matrix products.
        c_img = m + unit * (centres[:, :1] * u + centres[:, 1:] * v)          # (N, 2)
        s2 = 2.0 * (_RBF_SIGMA * unit) ** 2
        gx = X.exp(-((xs[None, :] - c_img[:, :1]) ** 2) / s2)                 # (N, W)
        gy = X.exp(-((ys[None, :] - c_img[:, 1:]) ** 2) / s2)                 # (N, H)
        w_img = unit * intensity * (weights[:, :1] * u + weights[:, 1:] * v)  # (N, 2), image pixels
        # fx, fy = gy.T @ (w * gx), summed over the centres in order (a BLAS product rounds differently per CPU)
        f = X.sum_of_products(gy.T, w_img[:, :, None] * gx[:, None, :])       # (H, 2, W)
        fx, fy = f[:, 0], f[:, 1]
        dxm, dym = xs[None, :] - m[0], ys[:, None] - m[1]
        xn = (dxm * u[0] + dym * u[1]) / unit
        yn = (dxm * v[0] + dym * v[1]) / unit
        r = _window_radius(xn, yn)
        win = _window(r)
        return fx * win, fy * win, r < 1.0

    def region_box(self, landmarks: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
        lm = _check_landmarks(landmarks)
        u, v, corner_dist = _axis(lm[3], lm[4], "mouth-corner")
        unit = corner_dist / 2.0
        c = (lm[3] + lm[4]) / 2.0 + unit * (_WINDOW_CENTER[0] * u + _WINDOW_CENTER[1] * v)
        ex, ey = _ellipse_extent(_WINDOW_AXES[0] * unit, _WINDOW_AXES[1] * unit, u)
        return _bbox(c[0], c[1], ex, ey, width, height, margin=1.0)

    def apply(self, image: np.ndarray, landmarks: np.ndarray, params: dict) -> np.ndarray:
        img = _check_image(image)
        lm = _check_landmarks(landmarks)
        try:
            template = params["template"]
            intensity = float(params["intensity"])
        except (KeyError, TypeError, ValueError):
            raise UserError("The smile parameters are incomplete: they need a template and an intensity.")
        if template not in SMILE_TEMPLATES:
            raise UserError(f"Unknown smile template '{template}'; choose one of {', '.join(self.TEMPLATES)}.")
        if not 0.0 <= intensity <= 2.0:
            raise UserError("The smile intensity must be between 0 and 2.")
        H, W = img.shape[:2]
        box = self.region_box(lm, W, H)
        x0, x1, y0, y1 = box
        out = img.copy()
        if x1 <= x0 or y1 <= y0:
            return out
        fx, fy, inside = self.displacement_field(lm, template, intensity, box)
        bh, bw = fx.shape
        gx = np.arange(x0, x1, dtype=np.float64)[None, :]
        gy = np.arange(y0, y1, dtype=np.float64)[:, None]
        # Inverse map: out(q) = in(p) with p + d(p) = q. One fixed-point step on top of p0 = q - d(q),
        # reading d(p0) bilinearly from the field grid (zero outside the box).
        field = np.stack([fx, fy], axis=-1)
        px0, py0 = gx - fx, gy - fy
        d1 = _bilinear(field, px0 - x0, py0 - y0, zero_outside=True)
        px, py = gx - d1[..., 0], gy - d1[..., 1]
        sel = inside
        src = _bilinear(img, px[sel], py[sel])
        region = out[y0:y1, x0:x1]
        region[sel] = np.clip(np.rint(src), 0, 255).astype(np.uint8)
        return out


def _bilinear(arr: np.ndarray, x: np.ndarray, y: np.ndarray, zero_outside: bool = False) -> np.ndarray:
    """Sample arr (H, W, C) at float positions; clamps at the border, or reads zeros there if zero_outside."""
    H, W = arr.shape[:2]
    if zero_outside:
        pad = np.zeros((H + 2, W + 2, arr.shape[2]), dtype=np.float64)
        pad[1:-1, 1:-1] = arr
        arr, x, y = pad, x + 1, y + 1
        H, W = H + 2, W + 2
    x = np.clip(x, 0.0, W - 1.0)
    y = np.clip(y, 0.0, H - 1.0)
    xi = np.minimum(np.floor(x).astype(np.intp), W - 2) if W > 1 else np.zeros(x.shape, np.intp)
    yi = np.minimum(np.floor(y).astype(np.intp), H - 2) if H > 1 else np.zeros(y.shape, np.intp)
    fx = (x - xi)[..., None]
    fy = (y - yi)[..., None]
    xj = np.minimum(xi + 1, W - 1)
    yj = np.minimum(yi + 1, H - 1)
    a = arr.astype(np.float32, copy=False) if arr.dtype == np.uint8 else arr
    top = a[yi, xi] * (1 - fx) + a[yi, xj] * fx
    bot = a[yj, xi] * (1 - fx) + a[yj, xj] * fx
    return top * (1 - fy) + bot * fy


# ------------------------------------------------------------------------------------------ registry
SYNTHESIZERS: dict[str, Synthesizer] = {"eyeglasses": PseudoEyeglasses(), "smile": PseudoSmile()}


def get_synthesizer(task: str) -> Synthesizer:
    try:
        return SYNTHESIZERS[task]
    except (KeyError, TypeError):
        raise UserError(f"There is no synthesizer for '{task}'; choose one of {', '.join(SYNTHESIZERS)}.")


# ------------------------------------------------------------------------------------------ demo face + bench
def face_landmarks(width: int, height: int, zoom: float = 1.25) -> np.ndarray:
    """CelebA's mean landmarks placed on a (width x height) canvas: uniform scale, face centred."""
    k = min(width / 178.0, height / 218.0) * zoom
    centre = np.array([88.0, 130.0])
    return ((CELEBA_MEAN_LANDMARKS - centre) * k + np.array([width / 2.0, height / 2.0])).astype(np.float32)


def draw_simple_face(width: int = 128, height: int = 128, landmarks: np.ndarray | None = None,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A plain drawn face (skin oval, eyes, brows, nose, closed lips, textured background) and its landmarks.

    For tests, benchmarks and contact sheets; not a substitute for SynthFaces.
    """
    from PIL import Image, ImageDraw

    lm = face_landmarks(width, height) if landmarks is None else np.asarray(landmarks, dtype=np.float32)
    rng = np.random.default_rng(seed)
    ss = 4
    eye_d = X.hypot(*(lm[1] - lm[0]).astype(np.float64))
    u = (lm[1] - lm[0]) / eye_d
    v = np.array([-u[1], u[0]])
    k = eye_d / CELEBA_EYE_DISTANCE
    skin = tuple(int(c) for c in rng.integers([170, 120, 90], [240, 190, 160]))
    bg = tuple(int(c) for c in rng.integers(40, 200, size=3))
    im = Image.new("RGB", (width * ss, height * ss), bg)
    dr = ImageDraw.Draw(im)
    S = lambda p: (float(p[0]) * ss, float(p[1]) * ss)  # noqa: E731

    def ell(center, a, b, fill):
        # rotated ellipse as a polygon
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        st, ct = X.sincos(t)
        pts = center[None, :] + (a * ct)[:, None] * u[None, :] + (b * st)[:, None] * v[None, :]
        dr.polygon([S(p) for p in pts], fill=fill)

    eyes_mid = (lm[0] + lm[1]) / 2
    face_c = eyes_mid + v * 22 * k
    ell(face_c, 50 * k, 68 * k, skin)
    hair = tuple(int(c) for c in rng.integers(10, 110, size=3))
    ell(eyes_mid - v * 48 * k, 52 * k, 30 * k, hair)
    for e in (lm[0], lm[1]):
        ell(e, 8 * k, 4.2 * k, (250, 250, 250))
        ell(e, 3.6 * k, 3.6 * k, (60, 40, 20))
        ell(e - v * 10 * k, 9 * k, 2.0 * k, hair)
    nose = lm[2]
    dark = tuple(int(c * 0.75) for c in skin)
    dr.polygon([S(nose - v * 16 * k), S(nose + u * 5 * k), S(nose - u * 5 * k)], fill=dark)
    mc = (lm[3] + lm[4]) / 2
    mu = (lm[4] - lm[3]) / max(X.hypot(*(lm[4] - lm[3]).astype(np.float64)), 1e-6)
    mv = np.array([-mu[1], mu[0]])
    half = X.hypot(*(lm[4] - lm[3]).astype(np.float64)) / 2
    lip = (180, 70, 80)
    upper = [lm[3], mc - mv * 0.35 * half - mu * 0.3 * half, mc - mv * 0.2 * half,
             mc - mv * 0.35 * half + mu * 0.3 * half, lm[4]]
    lower = [lm[4], mc + mv * 0.35 * half + mu * 0.4 * half, mc + mv * 0.42 * half,
             mc + mv * 0.35 * half - mu * 0.4 * half, lm[3]]
    dr.polygon([S(p) for p in upper + lower], fill=lip)
    dr.line([S(lm[3]), S(mc + mv * 0.03 * half), S(lm[4])], fill=(90, 30, 40), width=max(int(1.2 * k * ss), 1))
    im = im.resize((width, height), Image.LANCZOS)
    arr = np.asarray(im, dtype=np.float32)
    arr = arr + rng.normal(0, 4.0, size=arr.shape)  # mild texture so warps are visible everywhere
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8), lm


def bench(size: int = 128, n: int = 500, repeats: int = 5, seed: int = 0) -> dict[str, float]:
    """Images per second (median over repeats) of each synthesizer's __call__ on size x size simple faces."""
    img, lm = draw_simple_face(size, size, seed=seed)
    out: dict[str, float] = {}
    for task, synth in SYNTHESIZERS.items():
        rng = np.random.default_rng(seed)
        synth(img, lm, rng)  # warm up
        rates = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(n):
                synth(img, lm, rng)
            rates.append(n / (time.perf_counter() - t0))
        out[task] = float(np.median(rates))
    return out


if __name__ == "__main__":  # pragma: no cover
    print(bench())
