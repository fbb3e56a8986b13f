"""Small PIL drawing helpers shared by the comparison grid (``compare``) and the feature-space PNG (``feature_plot``)."""
from __future__ import annotations

from PIL import ImageFont


def load_font(size: int):
    """DejaVu Sans at ``size`` pixels when the system has it, else PIL's default font (scaled where Pillow can)."""
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        return ImageFont.load_default()
