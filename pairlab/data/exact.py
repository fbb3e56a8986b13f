"""Arithmetic that every CPU rounds the same: the values that decide SynthFaces and synthesizer pixels.

Why this module exists (measured on the project's machines): numpy's float64 ``exp``/``log``/``power`` and its
float32 ``sin``/``exp`` take different SIMD code paths with and without AVX-512 / AVX2 and give results that differ
in the last bit, and every matrix product (``@``, ``np.dot``, ``np.linalg``) goes to OpenBLAS, whose kernels are
chosen per CPU (``OPENBLAS_CORETYPE`` Haswell, SkylakeX, Zen, ...) and sum in different orders with or without FMA.
Such last-bit differences decide a polygon vertex's rounding or a pixel's uint8 truncation now and then, so the
same seed rendered different JPEG bytes on an Intel AVX-512 machine and an AMD one.

Everything here is built from IEEE-754 basic operations only (+, -, *, /, sqrt, floor, rint, ldexp, frexp,
comparisons), applied element-wise by numpy in a fixed order. IEEE-754 requires those to be correctly rounded, so
their results do not depend on the SIMD width, the BLAS kernel or the libm in use: the same inputs give the same
bits on any x86-64 (with or without AVX-512 / AVX2) and on ARM. The functions are accurate to about 1e-13 (plenty for
drawing); what matters is that they are reproducible. Scalars in, floats out; arrays in, float64 arrays out.
"""
from __future__ import annotations

import math

import numpy as np

PI = math.pi
# Cody-Waite splits: the high parts have trailing zero bits, so k * HI is exact for the k used here.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
_PIO2_HI = 1.57079632673412561417e+00
_PIO2_LO = 6.07710050650619224932e-11
_INV_PIO2 = 6.36619772367581382433e-01
_SQRT_HALF = 0.7071067811865476

# Taylor coefficients 1/n!, each a correctly rounded Python division.
_INV_FACT = [1.0 / math.factorial(n) for n in range(24)]


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _out(a: np.ndarray, scalar: bool):
    return float(a) if scalar else a


def _exp_scalar(x: float) -> float:
    x = min(max(float(x), -700.0), 700.0)
    k = float(round(x * _INV_LN2))
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = _INV_FACT[11]
    for n in range(10, -1, -1):
        p = p * r + _INV_FACT[n]
    return math.ldexp(p, int(k))


def exp(x):
    """e**x (x clipped to [-700, 700])."""
    scalar = np.ndim(x) == 0
    if scalar:
        return _exp_scalar(x)
    x = np.clip(_arr(x), -700.0, 700.0)
    k = np.rint(x * _INV_LN2)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = np.full(r.shape, _INV_FACT[11])  # |r| <= ln2/2: the next term is below 3e-13 relative
    for n in range(10, -1, -1):
        p = p * r + _INV_FACT[n]
    return _out(np.ldexp(p, k.astype(np.int64)), scalar)


def log(x):
    """Natural logarithm of x > 0 (x <= 0 gives -inf, like a limit)."""
    scalar = np.ndim(x) == 0
    x = _arr(x)
    pos = x > 0
    m, e = np.frexp(np.where(pos, x, 1.0))
    small = m < _SQRT_HALF
    m = np.where(small, m * 2.0, m)
    e = (e - small.astype(e.dtype)).astype(np.float64)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = np.full(s.shape, 1.0 / 17.0)  # s*s <= 0.0295: the next term is below 1e-14
    for n in range(15, 0, -2):
        p = p * s2 + 1.0 / n
    lm = 2.0 * s * p
    out = e * _LN2_HI + (e * _LN2_LO + lm)
    return _out(np.where(pos, out, -np.inf), scalar)


def power(x, p):
    """x**p for x >= 0 (negative x is treated as 0); 0**p = 0 for p > 0, 1 for p == 0."""
    scalar = np.ndim(x) == 0 and np.ndim(p) == 0
    x, p = np.broadcast_arrays(_arr(x), _arr(p))
    pos = x > 0
    out = exp(p * log(np.where(pos, x, 1.0)))
    out = np.where(pos, out, np.where(p == 0, 1.0, 0.0))
    return _out(out, scalar)


def powers(x, ps) -> list:
    """[x**p for p in ps] for an array x >= 0, sharing one logarithm (the same bits as ``power`` each)."""
    x = _arr(x)
    pos = x > 0
    lg = log(np.where(pos, x, 1.0))
    return [np.where(pos, exp(p * lg), 1.0 if p == 0 else 0.0) for p in ps]


def _sin_cos_reduced(r: np.ndarray):
    r2 = r * r
    s = np.full(r.shape, -_INV_FACT[19])
    for n in range(17, 0, -2):
        s = s * r2 + (_INV_FACT[n] if (n // 2) % 2 == 0 else -_INV_FACT[n])
    s = s * r
    c = np.full(r.shape, _INV_FACT[20])
    for n in range(18, -1, -2):
        c = c * r2 + (_INV_FACT[n] if (n // 2) % 2 == 0 else -_INV_FACT[n])
    return s, c


def _sincos_scalar(x: float) -> tuple[float, float]:
    x = float(x)
    k = float(round(x * _INV_PIO2))
    r = (x - k * _PIO2_HI) - k * _PIO2_LO
    r2 = r * r
    s = -_INV_FACT[19]
    for n in range(17, 0, -2):
        s = s * r2 + (_INV_FACT[n] if (n // 2) % 2 == 0 else -_INV_FACT[n])
    s = s * r
    c = _INV_FACT[20]
    for n in range(18, -1, -2):
        c = c * r2 + (_INV_FACT[n] if (n // 2) % 2 == 0 else -_INV_FACT[n])
    q = int(k) % 4
    return ((s, c), (c, -s), (-s, -c), (-c, s))[q]


def sincos(x):
    """(sin x, cos x) for |x| up to about 1e6."""
    scalar = np.ndim(x) == 0
    if scalar:
        return _sincos_scalar(x)
    x = _arr(x)
    k = np.rint(x * _INV_PIO2)
    r = (x - k * _PIO2_HI) - k * _PIO2_LO
    s, c = _sin_cos_reduced(r)
    q = np.mod(k, 4.0)
    sin = np.where(q == 0, s, np.where(q == 1, c, np.where(q == 2, -s, -c)))
    cos = np.where(q == 0, c, np.where(q == 1, -s, np.where(q == 2, -c, s)))
    return _out(sin, scalar), _out(cos, scalar)


def sin(x):
    return sincos(x)[0]


def cos(x):
    return sincos(x)[1]


def _atan_unit(z: np.ndarray) -> np.ndarray:
    """atan(z) for 0 <= z <= 1: two angle halvings, then the series."""
    for _ in range(2):
        z = z / (1.0 + np.sqrt(1.0 + z * z))
    z2 = z * z
    p = np.full(z.shape, -1.0 / 27.0)
    for n in range(25, 0, -2):
        p = p * z2 + (1.0 / n if (n // 2) % 2 == 0 else -1.0 / n)
    return 4.0 * (z * p)


def _arctan2_scalar(y: float, x: float) -> float:
    y, x = float(y), float(x)
    ax, ay = abs(x), abs(y)
    big = ay > ax
    num, den = (ax, ay) if big else (ay, ax)
    z = num / den if den > 0 else 0.0
    for _ in range(2):
        z = z / (1.0 + math.sqrt(1.0 + z * z))
    z2 = z * z
    p = -1.0 / 27.0
    for n in range(25, 0, -2):
        p = p * z2 + (1.0 / n if (n // 2) % 2 == 0 else -1.0 / n)
    a = 4.0 * (z * p)
    if big:
        a = PI / 2 - a
    if x < 0:
        a = PI - a
    if y < 0:
        a = -a
    return a


def arctan2(y, x):
    """The angle of (x, y) in (-pi, pi]; (0, 0) gives 0."""
    scalar = np.ndim(x) == 0 and np.ndim(y) == 0
    if scalar:
        return _arctan2_scalar(y, x)
    y, x = np.broadcast_arrays(_arr(y), _arr(x))
    ax, ay = np.abs(x), np.abs(y)
    big = ay > ax
    num = np.where(big, ax, ay)
    den = np.where(big, ay, ax)
    z = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    a = _atan_unit(z)
    a = np.where(big, PI / 2 - a, a)
    a = np.where(x < 0, PI - a, a)
    a = np.where(y < 0, -a, a)
    return _out(a, scalar)


def hypot(x, y):
    """sqrt(x*x + y*y), evaluated in that order."""
    if np.ndim(x) == 0 and np.ndim(y) == 0:
        x, y = float(x), float(y)
        return math.sqrt(x * x + y * y)
    x, y = _arr(x), _arr(y)
    return np.sqrt(x * x + y * y)


def row_norms(d, keepdims: bool = False) -> np.ndarray:
    """Euclidean norm of each row of an (n, 2) array (no BLAS)."""
    d = _arr(d)
    n = np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1])
    return n[..., None] if keepdims else n


def matmul(a, b) -> np.ndarray:
    """a @ b for 2-D (or 1-D) operands, summed over the shared axis in index order, without BLAS.

    Keeps the dtype of the inputs (float32 stays float32); meant for the small products of the renderer.
    """
    a, b = np.asarray(a), np.asarray(b)
    va, vb = a.ndim == 1, b.ndim == 1
    a2 = a[None, :] if va else a
    b2 = b[:, None] if vb else b
    if a2.shape[1] != b2.shape[0]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align")
    acc = a2[:, 0:1] * b2[0:1, :]
    for j in range(1, a2.shape[1]):
        acc = acc + a2[:, j:j + 1] * b2[j:j + 1, :]
    if va:
        acc = acc[0]
    if vb:
        acc = acc[..., 0]
    return acc


def sum_of_products(a, b) -> np.ndarray:
    """out[i, ...] = sum over k of a[i, k] * b[k, ...], added in k order (a matmul without BLAS).

    numpy reduces a non-innermost axis sequentially (row after row, each row's additions element-wise), so the
    order of every addition is fixed; tests/test_exact.py checks it against an explicit loop."""
    a, b = np.asarray(a), np.asarray(b)
    prod = a.reshape(a.shape + (1,) * (b.ndim - 1)) * b[None]
    return np.add.reduce(prod, axis=1)


def inv2(m) -> np.ndarray:
    """Inverse of a 2x2 matrix by the explicit formula."""
    m = _arr(m)
    a, b, c, d = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
    det = a * d - b * c
    return np.array([[d / det, -b / det], [-c / det, a / det]])


def solve(a, b) -> np.ndarray:
    """x with a @ x = b: Gaussian elimination with partial pivoting in a fixed order (small systems)."""
    a = _arr(a).copy()
    x = _arr(b).copy()
    vec = x.ndim == 1
    if vec:
        x = x[:, None]
    n = a.shape[0]
    for i in range(n):
        p = i + int(np.argmax(np.abs(a[i:, i])))
        if a[p, i] == 0:
            raise np.linalg.LinAlgError("Singular matrix")
        if p != i:
            a[[i, p]] = a[[p, i]]
            x[[i, p]] = x[[p, i]]
        for r in range(i + 1, n):
            f = a[r, i] / a[i, i]
            if f != 0:
                a[r, i:] = a[r, i:] - f * a[i, i:]
                x[r] = x[r] - f * x[i]
    for i in range(n - 1, -1, -1):
        acc = x[i].copy()
        for j in range(i + 1, n):
            acc = acc - a[i, j] * x[j]
        x[i] = acc / a[i, i]
    return x[:, 0] if vec else x
