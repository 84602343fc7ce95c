"""suite.images: safe opening, every Pillow mode to RGB/grey uint8 or float, orientation, letterboxing."""
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from suite.images import (ImageError, letterbox, open_image, read_image, read_letterboxed, to_gray8, to_rgb8,
                          transpose)


def _save(img, path, **kw):
    img.save(path, **kw)
    return path


@pytest.fixture
def picture():
    """A non-square RGB picture: pale background, a red block."""
    img = Image.new("RGB", (120, 80), (230, 230, 230))
    ImageDraw.Draw(img).rectangle([40, 20, 80, 60], fill=(200, 30, 30))
    return img


def test_read_image_rgb_and_grey_uint8_and_float(tmp_path, picture):
    path = _save(picture, tmp_path / "a.png")
    rgb = read_image(path)
    assert rgb.shape == (80, 120, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb, np.asarray(picture))
    grey = read_image(path, mode="L")
    assert grey.shape == (80, 120) and grey.dtype == np.uint8
    assert np.array_equal(grey, np.asarray(picture.convert("L")))
    x = read_image(path, dtype=np.float32)
    assert x.dtype == np.float32 and np.array_equal(x, rgb / np.float32(255))
    assert np.array_equal(read_image(picture), rgb)  # a PIL image, no file
    with pytest.raises(ValueError, match="mode"):
        read_image(path, mode="CMYK")
    with pytest.raises(ValueError, match="dtype"):
        read_image(path, dtype=np.int16)


def test_every_mode_converts(tmp_path):
    rgba = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).rectangle([10, 10, 40, 40], fill=(0, 0, 255, 255))
    x = read_image(_save(rgba, tmp_path / "rgba.png"))
    assert np.array_equal(x[1, 1], [255, 255, 255]) and np.array_equal(x[25, 25], [0, 0, 255])  # on white

    assert np.all(read_image(_save(Image.new("LA", (40, 40), (100, 255)), tmp_path / "la.png"), mode="L") == 100)
    assert np.all(read_image(_save(Image.new("L", (40, 60), 128), tmp_path / "l.png"), mode="L") == 128)
    assert np.all(read_image(tmp_path / "l.png") == 128)

    pal = Image.new("P", (30, 30), 0)
    pal.putpalette([0, 255, 0] + [0, 0, 0] * 255)
    assert np.array_equal(read_image(_save(pal, tmp_path / "p.png"))[10, 10], [0, 255, 0])
    assert np.all(read_image(_save(pal, tmp_path / "pt.png", transparency=0)) == 255)  # transparent -> white

    deep = Image.fromarray(np.full((40, 40), 32896, dtype=np.uint16))  # 128 * 257
    path = _save(deep, tmp_path / "16.png")
    with Image.open(path) as opened:
        assert opened.mode.startswith("I")
    assert np.all(read_image(path, mode="L") == 128)
    assert np.all(read_image(_save(Image.fromarray(np.full((40, 40), 65535, np.uint16)), tmp_path / "w.png")) == 255)

    flt = Image.fromarray(np.full((20, 30), 0.5, dtype=np.float32))  # mode F in [0, 1]
    assert np.all(read_image(_save(flt, tmp_path / "f.tif"), mode="L") == 128)

    cmyk = read_image(_save(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), tmp_path / "c.jpg", quality=95))
    assert cmyk[..., 0].mean() > 230 and cmyk[..., 1].mean() < 40  # red
    assert np.all(read_image(_save(Image.new("1", (40, 40), 1), tmp_path / "b.png"), mode="L") == 255)


def test_grey_of_a_grey_image_is_exact():
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(to_gray8(Image.fromarray(values, "L")), values)
    assert np.array_equal(to_rgb8(Image.fromarray(values, "L")), np.repeat(values[..., None], 3, axis=2))


def test_exif_orientation_is_undone(tmp_path):
    tall = Image.new("RGB", (60, 120), (230, 230, 230))
    ImageDraw.Draw(tall).rectangle([0, 0, 59, 30], fill=(0, 0, 200))  # blue at the top
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: a viewer rotates it 90 degrees clockwise
    path = _save(tall.transpose(Image.Transpose.ROTATE_90), tmp_path / "turned.jpg", exif=exif, quality=95)
    img, how = open_image(path)
    img.close()
    assert how == Image.Transpose.ROTATE_270
    x = read_image(path)
    assert x.shape == (120, 60, 3)
    assert x[5:25, 10:50, 2].mean() > 150 and x[100:115, 10:50, 2].mean() < 240  # blue back on top
    assert np.array_equal(transpose(x, None), x)


def test_letterbox_pads_with_the_border_colour(picture):
    pixels = np.asarray(picture)
    square = letterbox(pixels, 64)
    assert square.shape == (64, 64, 3)
    assert np.array_equal(square[0, 0], [230, 230, 230])  # padding = border colour, not black
    assert square[32, 32, 0] > 180 and square[32, 32, 1] < 60  # the red block, centred
    grey = letterbox(np.asarray(picture.convert("L")), 32)
    assert grey.shape == (32, 32) and grey[0, 0] == np.asarray(picture.convert("L"))[0, 0]
    with pytest.raises(ValueError, match="size"):
        letterbox(pixels, 0)


def test_read_letterboxed_matches_letterbox(tmp_path, picture):
    path = _save(picture, tmp_path / "a.png")
    assert np.array_equal(read_letterboxed(path, 64), letterbox(np.asarray(picture), 64))
    x = read_letterboxed(path, 28, mode="L", dtype=np.float32)
    assert x.shape == (28, 28) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1


def test_huge_jpeg_is_drafted(tmp_path):
    img = Image.new("RGB", (4000, 3000), (200, 220, 240))
    ImageDraw.Draw(img).ellipse([1500, 1000, 2500, 2000], fill=(250, 120, 20))
    path = _save(img, tmp_path / "photo.jpg", quality=85)
    small, _ = open_image(path, target=64)
    assert max(small.size) <= 4000 // 8 + 1  # decoded at 1/8 scale, never 36 MB of RGB
    small.close()
    x = read_letterboxed(path, 64)
    assert x.shape == (64, 64, 3) and x[32, 32, 0] > 230 and x[32, 32, 2] < 60


def _truncated(fmt):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()[: len(buf.getvalue()) // 2]


def test_errors_are_one_line_naming_the_file(tmp_path, monkeypatch):
    cases = {"missing": (tmp_path / "nope.png", "no such file"), "folder": (tmp_path, "folder"),
             "empty": (tmp_path / "empty.png", "empty"), "text": (tmp_path / "notes.png", "not an image"),
             "png": (tmp_path / "cut.png", "truncated"), "jpeg": (tmp_path / "cut.jpg", "truncated")}
    cases["empty"][0].write_bytes(b"")
    cases["text"][0].write_text("this is not an image\n")
    cases["png"][0].write_bytes(_truncated("PNG"))
    cases["jpeg"][0].write_bytes(_truncated("JPEG"))
    for path, words in cases.values():
        for read in (read_image, lambda p: read_letterboxed(p, 32, mode="L")):
            with pytest.raises(ImageError, match=words) as exc_info:
                read(path)
            assert str(path) in str(exc_info.value) and "\n" not in str(exc_info.value)
    bomb = _save(Image.new("L", (300, 300)), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # 90,000 pixels > 2x the limit: Pillow refuses
    with pytest.raises(ImageError, match="too many pixels"):
        read_image(bomb)
    assert issubclass(ImageError, ValueError)


def test_no_pixels_is_an_image_error():
    with pytest.raises(ImageError, match="no pixels"):
        read_image(Image.new("RGB", (0, 0)))
