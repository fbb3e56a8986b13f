"""Every kind of bad image file gives a BadImage with a clear reason; odd modes become 8-bit RGB."""
import io

import numpy as np
import pytest
from PIL import Image

from pairlab.data import images
from pairlab.errors import BadImage, UserError


def _png_noise_bytes():
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg_bytes(w=64, h=64, mode="RGB"):
    buf = io.BytesIO()
    Image.new(mode, (w, h), "red" if mode == "RGB" else 128).save(buf, format="JPEG")
    return buf.getvalue()


def test_bad_image_is_a_user_error():
    assert issubclass(BadImage, UserError)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty file"),
        (b"this is not an image at all, just text\n" * 10, "not an image"),
        (_jpeg_bytes()[:300], "truncated image"),
        (_png_noise_bytes()[:60] + b"x" * 20 + _png_noise_bytes()[80:], "corrupt image"),
    ],
    ids=["zero-byte", "text", "truncated", "corrupt"],
)
def test_bad_files_give_one_reason(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(BadImage) as info:
        images.load_rgb(path)
    assert info.value.reason == reason
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(BadImage, match="missing file"):
        images.load_rgb(tmp_path / "nope.png")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    # A 1-bit PNG of 10000 x 10000 pixels is tiny on disk but 100 MP once decoded.
    path = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(path)
    assert path.stat().st_size < 200_000
    with pytest.raises(BadImage) as info:
        images.load_rgb(path)
    assert info.value.reason == "image too large"


def test_tiny_image_refused(tmp_path):
    path = tmp_path / "tiny.png"
    Image.new("RGB", (4, 4)).save(path)
    with pytest.raises(BadImage, match="too small"):
        images.load_rgb(path)


@pytest.mark.parametrize("mode", ["L", "RGBA", "LA", "P", "CMYK", "I;16", "1", "F"])
def test_odd_modes_become_rgb(tmp_path, mode):
    ext = ".tif" if mode in ("F", "CMYK") else ".png"
    path = tmp_path / f"img{ext}"
    if mode == "I;16":
        arr = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 60).astype(np.uint16)
        Image.fromarray(arr, "I;16").save(path)
    else:
        Image.new(mode, (32, 32)).save(path)
    img = images.load_rgb(path)
    assert img.mode == "RGB" and img.size == (32, 32)


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "g16.png"
    arr = np.full((16, 16), 65535, dtype=np.uint16)
    arr[:8] = 32768
    Image.fromarray(arr, "I;16").save(path)
    rgb = images.load_rgb_array(path)
    assert rgb[0, 0, 0] == 128 and rgb[-1, 0, 0] == 255


def test_rgba_composited_on_white(tmp_path):
    path = tmp_path / "t.png"
    Image.new("RGBA", (16, 16), (0, 0, 0, 0)).save(path)
    assert images.load_rgb_array(path).min() == 255


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "c.jpg"
    Image.new("CMYK", (16, 16), (0, 0, 0, 0)).save(path)
    assert images.load_rgb_array(path).mean() > 200
