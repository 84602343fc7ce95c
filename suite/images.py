"""Image files in, uint8 or float arrays out: the loader every image app uses (caption, handwriting).

- ``open_image``: a file opened safely. Missing, a folder, empty, not an image,
  a decompression bomb, truncated or corrupt: each is an ``ImageError`` with
  one line naming the file. JPEGs are decoded at 1/2, 1/4 or 1/8 scale when the
  caller needs less (draft), so a 6000x4000 photo never costs 72 MB of RGB.
  EXIF orientation is read and returned, applied after conversion.
- ``to_rgb8`` / ``to_gray8``: any Pillow mode (1, L, LA, P with or without
  transparency, RGB, RGBA, CMYK, YCbCr, I;16, I, F) -> (h, w, 3) / (h, w)
  uint8. Transparent pixels are composited on white; 16-bit images are scaled
  to 8 bits, float images in [0, 1] to [0, 255].
- ``letterbox``: shrink/grow to fit a square, padded with the image's own
  border colour (the median of its outermost pixels), never cropped.
- ``read_image`` / ``read_letterboxed``: the whole path, file (or PIL image)
  to array, as uint8 or float32 in [0, 1].
"""
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

_TRANSPOSE = {  # EXIF orientation -> the transpose that undoes it (as ImageOps.exif_transpose)
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
MODES = ("RGB", "L")
SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")  # image files in a folder of inputs


class ImageError(ValueError):
    """An image file that cannot be read (missing, empty, not an image, too big, truncated)."""


def open_image(path, target=None):
    """(loaded PIL image, transpose or None) of an image file; ImageError on any failure.

    target: the long side the caller will shrink to; a JPEG is then decoded at
    the smallest DCT scale that still covers 2 * target. transpose is the
    Image.Transpose that undoes the file's EXIF orientation (None: upright).
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file, not an image")
        with warnings.catch_warnings():
            # Pillow warns from 89 M pixels and refuses from 179 M (DecompressionBombError, below);
            # in between the image loads (a 12000x12000 scan), so its warning would only be noise on stderr
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: too many pixels to load safely ({exc})") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        orientation = img.getexif().get(0x0112)
    except Exception:  # a broken EXIF block must not lose an otherwise good image
        orientation = None
    if target is not None:
        # JPEG (and MPO, as phones write): DCT scaling; other formats ignore draft.
        img.draft(None, (2 * target, 2 * target))
    try:
        img.load()
    except Exception as exc:  # Pillow reports truncation and corruption as OSError, SyntaxError, ValueError...
        img.close()
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise ImageError(f"{path}: truncated or corrupt image ({msg})") from None
    return img, _TRANSPOSE.get(orientation)


def _reduce(img, target):
    """Block-average a big image down to about 2*target on its long side before the exact resize."""
    if target is None:
        return img
    factor = max(img.size) // (2 * target)
    return img.reduce(factor) if factor >= 2 else img


def to_rgb8(img, target=None):
    """Any Pillow mode -> (h, w, 3) uint8; with ``target``, block-averaged early to about 2*target."""
    mode = img.mode
    if mode == "1":
        img = img.convert("L")
    elif mode.startswith("I;16"):
        img = img.convert("I")  # 16-bit integers, kept exact
    elif mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif ("transparency" in img.info and mode in ("L", "RGB")) or mode in ("LA", "PA"):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "RGBa"):
        # Composite on white. Premultiplied before block-averaging, so the colour
        # hidden under transparent pixels never bleeds into the edges.
        img = _reduce(img.convert("RGBa") if img.mode != "RGBa" else img, target)
        a = np.asarray(img, dtype=np.float32)  # (h, w, 4), colour premultiplied by alpha
        rgb = a[..., :3] + (255.0 - a[..., 3:])
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    if img.mode in ("I", "F"):
        img = _reduce(img, target)
        a = np.asarray(img, dtype=np.float64)  # (h, w)
        top = float(a.max()) if a.size else 0.0
        if mode.startswith("I;16") or 255 < top <= 65535:
            a = a / 257.0  # 16-bit range
        elif img.mode == "F" and top <= 1.0:
            a = a * 255.0  # float image in [0, 1]
        g = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    img = _reduce(img, target)
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, CMYK, YCbCr, HSV, LAB
    return np.asarray(img, dtype=np.uint8)


def to_gray8(img, target=None):
    """Any Pillow mode -> (h, w) uint8 luma (ITU-R 601, Pillow's "L"); grey images keep their values exactly."""
    rgb = to_rgb8(img, target)
    return np.asarray(Image.fromarray(rgb, "RGB").convert("L"), dtype=np.uint8)


def transpose(pixels, how):
    """(h, w[, 3]) uint8 turned/flipped by an Image.Transpose (None: unchanged)."""
    if how is None:
        return pixels
    return np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).transpose(how))


def letterbox(pixels, size):
    """(h, w, 3) or (h, w) uint8 -> (size, size[, 3]) uint8: shrink/grow to fit, pad with the border colour.

    Padding, not centre-cropping: a crop could cut off what the image is about
    (and positions keep their meaning in the padded frame).
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    h, w = pixels.shape[:2]
    ring = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])  # (2w + 2h[, 3])
    border = np.median(ring, axis=0).astype(np.uint8)
    img = Image.fromarray(np.ascontiguousarray(pixels))
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    if new != (w, h):
        method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
        img = img.resize(new, method)
    out = np.empty((size, size) + pixels.shape[2:], dtype=np.uint8)  # (size, size[, 3])
    out[:] = border
    x0, y0 = (size - new[0]) // 2, (size - new[1]) // 2
    out[y0:y0 + new[1], x0:x0 + new[0]] = np.asarray(img)
    return out


def _convert(path_or_image, mode, target, finish):
    """Open (or take) an image, convert it to ``mode`` pixels, undo its orientation, then finish(pixels)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    convert = to_rgb8 if mode == "RGB" else to_gray8

    def pixels_of(img, how):
        pixels = convert(img, target)
        if pixels.shape[0] == 0 or pixels.shape[1] == 0:
            raise ImageError("the image has no pixels")
        return finish(transpose(pixels, how))

    if isinstance(path_or_image, Image.Image):
        return pixels_of(path_or_image, None)
    img, how = open_image(path_or_image, target)
    try:
        return pixels_of(img, how)
    except ImageError as exc:
        raise ImageError(f"{path_or_image}: {exc}") from None
    except (OSError, ValueError) as exc:
        raise ImageError(f"{path_or_image}: cannot convert image (mode {img.mode}): {exc}") from None
    finally:
        img.close()


def _as(pixels, dtype):
    if np.dtype(dtype) == np.uint8:
        return pixels
    if np.dtype(dtype) != np.float32:
        raise ValueError(f"dtype must be uint8 or float32, got {np.dtype(dtype)}")
    return pixels.astype(np.float32) / np.float32(255)


def read_image(path_or_image, mode="RGB", dtype=np.uint8, target=None):
    """An image file (or PIL image) -> (h, w, 3) for mode "RGB" or (h, w) for "L"; uint8, or float32 in [0, 1].

    Orientation applied. target: shrink (block-average, JPEG draft) to no less
    than 2 * target on the long side, for callers that resize further anyway.
    Raises ImageError (one line naming the file).
    """
    _as(np.zeros(0, np.uint8), dtype)  # a bad dtype fails before any file is read
    return _as(_convert(path_or_image, mode, target, lambda p: p), dtype)


def read_letterboxed(path_or_image, size, mode="RGB", dtype=np.uint8):
    """An image file (or PIL image) -> (size, size, 3) or (size, size), letterboxed (see letterbox).

    Bounded memory for huge JPEGs (decoded at the smallest scale covering 2 * size).
    """
    _as(np.zeros(0, np.uint8), dtype)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    return _as(_convert(path_or_image, mode, size, lambda p: letterbox(p, size)), dtype)
