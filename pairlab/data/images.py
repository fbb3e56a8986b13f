"""Safe image reading: every way a file can be bad becomes a BadImage with a short reason.

All readers in pairlab go through ``load_rgb`` so that corrupt, truncated, empty, non-image,
oversized (decompression bombs) and odd-mode (grayscale, RGBA, 16-bit, CMYK, palette) files are
handled in one place. The EXIF orientation is applied here (so ``compose``, training, evaluation and the demo
see the same upright pixels), and an animated image (GIF, APNG, animated WebP) is read as its first frame.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

from ..errors import BadImage

# Anything above this many pixels is refused before decoding (a 16k x 16k image is 268 MP).
MAX_PIXELS = 40_000_000
MAX_FILE_BYTES = 200 * 1024 * 1024
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".gif")

# Never silently accept truncated files: PIL would pad them with gray.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; alpha is composited on white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr8 = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr8 = ((arr - lo) / (hi - lo + 1e-12) * 255.0 + 0.5).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "CMYK":
        # PIL's CMYK->RGB is the naive inversion; fine for the rare CMYK JPEG in a folder.
        return img.convert("RGB")
    return img.convert("RGB")


def open_checked(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode an image, raising BadImage with a reason on any failure."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise BadImage(path, "missing file")
    if size == 0:
        raise BadImage(path, "empty file")
    if size > MAX_FILE_BYTES:
        raise BadImage(path, "file too large", f"{size // (1024 * 1024)} MB")
    if not path.is_file():
        raise BadImage(path, "not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:  # permission denied, a device, an I/O error
        raise BadImage(path, "unreadable file", exc.strerror or type(exc).__name__)
    return decode_bytes(data, path)


def decode_bytes(data: bytes, name: str | os.PathLike = "<upload>") -> Image.Image:
    if not data:
        raise BadImage(name, "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise BadImage(name, "image too large", f"{w}x{h} pixels, limit {MAX_PIXELS:,}")
            if w < 8 or h < 8:
                raise BadImage(name, "image too small", f"{w}x{h} pixels")
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)  # an animated image (GIF, APNG, WebP): its first frame, everywhere in pairlab
            img.load()
            img = upright(img)
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(name, "image too large", "decompression bomb")
    except Image.UnidentifiedImageError:
        raise BadImage(name, "not an image")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = str(exc).lower()
        reason = "truncated image" if "truncat" in text else "corrupt image"
        raise BadImage(name, reason)
    return img


def upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (phone photos are often stored sideways); every reader gets it from here."""
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block: the pixels as stored
        return img
    if orientation not in (2, 3, 4, 5, 6, 7, 8):
        return img
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        return img


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """The one way to read an image in pairlab: decoded, checked, 8-bit RGB."""
    return _to_rgb(open_checked(path))


def load_rgb_array(path: str | os.PathLike) -> np.ndarray:
    return np.asarray(load_rgb(path), dtype=np.uint8)


def save_image(img: Image.Image | np.ndarray, path: str | os.PathLike, quality: int = 95) -> None:
    """Save by extension (JPEG at a fixed quality, so real and synthesized images share artefacts)."""
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img.astype(np.uint8))
    path = Path(path)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        img.save(path, quality=quality)
    else:
        img.save(path)
