"""Shapes-world images and captions: rendering, the model's input pixels, the dataset builder, user data.

The scenes, the caption grammar, its parser and the metrics live in scenes.py and
are re-exported here (this module is the app's one import).

Images go into the model as float32 arrays (3, INPUT_SIZE, INPUT_SIZE) in [0, 1]
(not mean/std normalised: the model does that if it wants). Built splits store
the same pixels as uint8 (divide by 255 per batch) to keep 20k images in 250 MB.

A non-square image is shrunk to fit and PADDED to a square with its own border
colour (the median of its outermost pixels), not centre-cropped: a crop could cut
an object near the edge off and make a true caption false (and a relation is
read from positions in the padded frame exactly as in the original). Files are
opened and converted by suite.images (any Pillow mode, bounded memory, one-line
ImageError); this module only fixes the size and the (3, S, S) layout.

Builds use the suite.databuild toolkit: per-item generators, one worker pool,
the deterministic npz writer, report.json, DataError.
"""
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from suite.apps.caption.scenes import (
    CLEAR_MIN, CLEAR_RATIO, COLOURS, HELD_OUT_COMBOS, HOLD_MIN, HOLD_RATIO, LAYOUT_RADIUS, OPPOSITE, RELATIONS,
    SHAPES, SIZES, VOCAB, Obj, ParsedCaption, Scene, SceneError, aggregate, bleu4, canonical_caption, captions,
    check_scene, clear_relation, parse_caption, random_scene, relation_holds, score_caption, tokenize,
)
from suite.databuild import (
    DataError, chunks, holdout_split, item_rng, parallel_map, read_npz, read_report, sha256_file, write_npz,
    write_report,
)
from suite.fileio import staged_dir
from suite.images import ImageError, read_letterboxed

__all__ = [
    "CLEAR_MIN", "CLEAR_RATIO", "COLOURS", "HELD_OUT_COMBOS", "HOLD_MIN", "HOLD_RATIO", "LAYOUT_RADIUS", "OPPOSITE",
    "RELATIONS", "SHAPES", "SIZES", "VOCAB", "Obj", "ParsedCaption", "Scene", "SceneError", "aggregate", "bleu4",
    "canonical_caption", "captions", "check_scene", "clear_relation", "parse_caption", "random_scene",
    "relation_holds", "score_caption", "tokenize",
    "INPUT_SIZE", "SPLITS", "PNG_SPLITS", "PALETTE", "ALT_PALETTE", "ImageError", "DataError", "CaptionsFileError",
    "render", "image_to_array", "load_image", "build_dataset", "load_split", "load_names", "load_report",
    "read_captions_file", "load_user_split", "user_training_data",
]

INPUT_SIZE = 64
SPLITS = ("train", "valid", "test", "combo", "alt", "sketch", "dark")
PNG_SPLITS = ("test", "combo", "alt", "sketch", "dark")  # also written as image files + captions.tsv, as a user would bring them
FORMAT_VERSION = 1
N_REFS = 5  # references per image, as in Flickr8k and COCO (1-object scenes have only 2 wordings)
_SPLIT_ID = {name: k for k, name in enumerate(SPLITS)}  # part of every item's seed

PALETTE = {  # training fills; each draw jitters every channel by up to +-12
    "red": (215, 40, 40), "green": (40, 160, 60), "blue": (45, 85, 215),
    "yellow": (240, 205, 30), "purple": (135, 55, 175), "orange": (245, 135, 25),
}
ALT_PALETTE = {  # other shades of the same names, only in the "alt" style
    "red": (170, 20, 50), "green": (110, 195, 60), "blue": (70, 150, 235),
    "yellow": (250, 232, 95), "purple": (185, 95, 210), "orange": (220, 100, 15),
}
# Drawn shape inside the layout circle of radius R: a circle of 0.85R, a square of
# half-side 0.7R (its corners stay within R at any rotation), an equilateral
# triangle of circumradius 0.98R.
_SHAPE_SCALE = {"circle": 0.85, "square": 0.70, "triangle": 0.98}
MIN_SIDE, MAX_SIDE, MAX_ASPECT = 32, 512, 1.4
STYLES = ("train", "alt", "sketch", "dark")  # train draws the training splits; the others are held out
SUPERSAMPLE = 4


class CaptionsFileError(DataError):
    """A malformed captions file (the message names the file and line)."""


# ----------------------------------------------------------------------------- rendering

def _image_size(rng, style):
    """(width, height): sides log-uniform in [MIN_SIDE, MAX_SIDE] (the held-out styles keep the first renderer's
    48-160 px), 30% non-square up to MAX_ASPECT, letterboxed by the model's input."""
    lo, hi = (MIN_SIDE, MAX_SIDE) if style == "train" else (48, 160)
    side = int(round(np.exp(rng.uniform(np.log(lo), np.log(hi)))))
    if rng.random() < 0.7:
        return side, side
    other = int(np.clip(round(side * rng.uniform(1 / MAX_ASPECT, MAX_ASPECT)), lo, hi))
    return (side, other) if rng.random() < 0.5 else (other, side)


def _gradient(rng, w, h, base, other):
    """(h, w, 3) float: a linear blend from ``base`` to ``other`` at a random angle."""
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)  # (h, w)
    t = np.cos(angle) * xx / w + np.sin(angle) * yy / h
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)  # (h, w) in [0, 1]
    return (1 - t)[..., None] * base + t[..., None] * other


def _texture(rng, w, h):
    """(h, w) float: smooth blotches (upsampled noise) of about +-1, a paper or cloth grain."""
    cells = int(rng.integers(3, 12))
    small = rng.standard_normal((cells, cells)).astype(np.float32)
    img = Image.fromarray(small, "F").resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(img) + 0.3 * rng.standard_normal((h, w)).astype(np.float32)


def _background(rng, w, h, ss, style):
    """PIL RGB (w*ss, h*ss).

    train: a low-saturation colour, pale (70%) or any tone from dark grey, flat (50%), a gradient (25%) or a
    textured grain (25%);
    alt: a gradient with stripes; sketch: cream paper with ruled blue lines; dark: a near-black or night blue.
    """
    if style == "dark":
        base = rng.uniform(8, 45) + np.array([0, 0, rng.uniform(0, 30)]) + rng.uniform(-5, 5, size=3)
        bg = _gradient(rng, w, h, base, base * rng.uniform(0.4, 1.4))
    elif style == "sketch":
        base = np.array([247, 242, 226]) + rng.uniform(-6, 6, size=3)
        bg = np.broadcast_to(base, (h, w, 3)).copy()
        gap = rng.uniform(0.08, 0.14) * h
        for y in np.arange(rng.uniform(0, gap), h, gap):
            bg[int(y)] = (175, 195, 230)  # a ruled line
    elif style == "alt":
        base = rng.uniform(218, 250) + rng.uniform(-8, 8, size=3)
        other = rng.uniform(200, 245) + rng.uniform(-12, 12, size=3)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)  # (h, w)
        angle = rng.uniform(0, 2 * np.pi)
        period = rng.uniform(0.05, 0.15) * max(w, h)
        stripes = 7 * np.sin(2 * np.pi * (xx * np.cos(angle + 1) + yy * np.sin(angle + 1)) / period)
        bg = _gradient(rng, w, h, base, other) + stripes[..., None]
    else:
        tone = rng.uniform(165, 250) if rng.random() < 0.7 else rng.uniform(40, 165)  # pale, or any grey tone
        base = tone + rng.uniform(-10, 10, size=3)
        kind = rng.random()
        if kind < 0.5:
            return Image.new("RGB", (w * ss, h * ss), tuple(int(v) for v in np.clip(base, 0, 255)))
        if kind < 0.75:
            bg = _gradient(rng, w, h, base, np.clip(base + rng.uniform(-50, 30, size=3), 30, 255))
        else:
            bg = base + rng.uniform(4, 14) * _texture(rng, w, h)[..., None]
    img = Image.fromarray(np.clip(np.rint(bg), 0, 255).astype(np.uint8), "RGB")
    return img.resize((w * ss, h * ss), Image.Resampling.BILINEAR) if ss > 1 else img


def _polygon(shape, cx, cy, radius, degrees):
    """Vertices of a square or an apex-up triangle centred on (cx, cy), turned by degrees."""
    if shape == "square":
        angles = np.deg2rad([45, 135, 225, 315]) + np.deg2rad(degrees)
        r = radius * np.sqrt(2)  # radius is the half-side
    else:
        angles = np.deg2rad([-90, 30, 150]) + np.deg2rad(degrees)
        r = radius
    return [(float(cx + r * np.cos(a)), float(cy + r * np.sin(a))) for a in angles]


def _outline(shape, cx, cy, radius, degrees):
    """The closed outline of a shape as points (a circle as 48 of them)."""
    if shape == "circle":
        a = np.linspace(0, 2 * np.pi, 49)
        return list(zip(cx + radius * np.cos(a), cy + radius * np.sin(a)))
    pts = _polygon(shape, cx, cy, radius, degrees)
    return pts + pts[:1]


def _shade(rgb, rng):
    """Another shade of a named colour: brightness and per-channel changes that keep the hue's name."""
    rgb = np.array(rgb, dtype=np.float64) * rng.uniform(0.78, 1.08) + rng.uniform(-18, 18)
    return np.clip(rgb + rng.uniform(-14, 14, size=3), 0, 255)


def _sketch(draw, shape, cx, cy, radius, degrees, colour, ss, rng):
    """A coloured-pencil drawing: a wobbly outline drawn twice and hatching inside, in the object's colour."""
    pts = np.array(_outline(shape, cx, cy, radius, degrees))  # (n, 2)
    mask = Image.new("L", draw.im.size, 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in pts[:-1]], fill=255)
    inside = np.asarray(mask) > 0
    col = tuple(int(v) for v in colour)
    angle = rng.uniform(0, np.pi)
    step = max(radius * rng.uniform(0.16, 0.28), 2 * ss)
    d = np.array([np.cos(angle), np.sin(angle)])
    n = np.array([-d[1], d[0]])
    for k in np.arange(-radius, radius, step):
        a = np.array([cx, cy]) + k * n - 1.5 * radius * d
        line = a[None] + np.linspace(0, 3 * radius, 60)[:, None] * d[None]  # (60, 2)
        ij = np.clip(np.rint(line).astype(int), 0, np.array(inside.shape[::-1]) - 1)
        keep = inside[ij[:, 1], ij[:, 0]]
        if keep.sum() > 1:
            seg = line[keep]
            draw.line([tuple(seg[0]), tuple(seg[-1])], fill=col, width=max(int(ss * rng.uniform(0.8, 1.6)), 1))
    for _ in range(2):
        wob = pts + rng.normal(0, 0.035 * radius, pts.shape)
        draw.line([tuple(p) for p in wob], fill=col, width=max(int(ss * rng.uniform(1.2, 2.2)), 1))


def draw_radius(o, short, rng, style="train"):
    """The drawn radius of object ``o`` in an image whose shorter side is ``short``: within its layout circle;
    train draws each size across its range (0.8-1.0 of the layout radius: small up to 0.09 of the side, large
    from 0.136), the held-out styles near the top of it (0.92-1.0)."""
    low = 0.8 if style == "train" else 0.92
    return LAYOUT_RADIUS[o.size] * short * _SHAPE_SCALE[o.shape] * rng.uniform(low, 1.0)


def render(scene, rng, size=None, style="train", outlines=0.0):
    """Draw a scene; returns a PIL RGB image.

    Parameters
    ----------
    scene : Scene
    rng : np.random.Generator
        Every drawing choice comes from it (same rng state, same image).
    size : None, int or (width, height)
        None draws a size: sides 32-512 px log-uniform for train (48-160 for the held-out styles), 30%
        non-square (aspect <= 1.4).
    style : one of STYLES
        train: flat, gradient or textured backgrounds, pale (70%) or any grey tone from dark to pale, shades of each colour, shapes
        of any size within their size's range, turned by any angle, outlines of any width (up to a third of
        the shape) in a darker shade, grey, black or white on 60%, blur on 25%, JPEG on 25%, pixel noise.
        The held-out styles (robustness checks only, never trained on): alt, gradient + striped background,
        thick dark outlines, other shades, JPEG artefacts (the first renderer's held-out style; since
        training widened, only its stripes are new); sketch, coloured-pencil outlines and hatching on ruled
        cream paper; dark, shapes on a near-black background with light outlines.
    outlines : float
        train only: the chance that the image's shapes are drawn hollow, an outline in the shape's colour
        (6-24 % of its radius wide, and at least 0.8 of an input pixel) and no fill, as people draw shapes
        with a pen. 0 draws every shape filled and takes no extra draw from ``rng`` (so data built before the
        option existed rebuilds unchanged).
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    if size is None:
        w, h = _image_size(rng, style)
    elif isinstance(size, (int, np.integer)):
        w = h = int(size)
    else:
        w, h = (int(v) for v in size)
    if w < 8 or h < 8:
        raise ValueError(f"image size must be at least 8x8, got {w}x{h}")
    ss = SUPERSAMPLE if (style != "train" or rng.random() < 0.7) and max(w, h) <= 200 else 1
    W, H = w * ss, h * ss
    canvas = _background(rng, w, h, ss, style)
    draw = ImageDraw.Draw(canvas)
    short = min(W, H)
    palette = ALT_PALETTE if style == "alt" else PALETTE
    if style == "alt":
        outline_px = max(2, round(0.035 * min(w, h)))
    elif style == "dark":
        outline_px = int(rng.integers(1, 3))
    else:
        outline_px = rng.uniform(1, max(2.0, 0.04 * min(w, h))) if rng.random() < 0.6 else 0
    hollow = style == "train" and outlines > 0 and rng.random() < outlines
    for o in scene.objects:
        fill = _shade(palette[o.colour], rng) if style == "train" else \
            np.clip(np.array(palette[o.colour]) + rng.integers(-12, 13, size=3), 0, 255)
        radius = draw_radius(o, short, rng, style)
        degrees = rng.uniform(-15, 15) if style != "train" or rng.random() >= 0.5 else rng.uniform(-180, 180)
        cx, cy = o.x * W, o.y * H
        if style == "sketch":
            _sketch(draw, o.shape, cx, cy, radius, degrees, fill * 0.85, ss, rng)
            continue
        if hollow:
            pen = {"fill": None, "outline": tuple(int(v) for v in fill),
                   # at least ~a pixel of the model's 64-px input, so a hollow shape in a large image stays visible
                   "width": max(ss, int(round(max(radius * rng.uniform(0.06, 0.24), 0.8 * short / INPUT_SIZE))))}
            if o.shape == "circle":
                draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], **pen)
            else:
                draw.polygon(_polygon(o.shape, cx, cy, radius, degrees), **pen)
            continue
        if style == "alt":
            line = tuple(int(v) for v in rng.integers(10, 50, size=3))
        elif style == "dark":
            line = tuple(int(v) for v in rng.integers(200, 256, size=3))
        else:
            pick = rng.random()
            line = (tuple(int(v) for v in fill * rng.uniform(0.35, 0.65)) if pick < 0.4 else  # a darker shade
                    (int(rng.integers(20, 90)),) * 3 if pick < 0.7 else                       # a dark grey
                    (0, 0, 0) if pick < 0.85 else (255, 255, 255))
        # An outline never eats more than a third of the shape's inner radius, so
        # a small shape keeps its fill colour (a dark rim would turn yellow orange).
        inner = radius * (0.5 if o.shape == "triangle" else 1.0)
        width = int(min(outline_px * ss, inner / (3 if style == "train" else 4))) if outline_px else 0
        kw = {"fill": tuple(int(v) for v in fill), "outline": line if width else None, "width": width}
        if o.shape == "circle":
            draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], **kw)
        else:
            draw.polygon(_polygon(o.shape, cx, cy, radius, degrees), **kw)
    if ss > 1:
        canvas = canvas.resize((w, h), Image.Resampling.BOX)
    if style == "train" and rng.random() < 0.25:
        canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.6 + 0.006 * min(w, h))))
    sigma = rng.uniform(2, 8) if style == "alt" else rng.uniform(0, 6)
    pixels = np.asarray(canvas, dtype=np.float32) + rng.normal(0, sigma, size=(h, w, 3))  # (h, w, 3)
    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")
    if style == "alt" or (style == "train" and rng.random() < 0.25):
        buf = io.BytesIO()
        # Chroma subsampling would turn a small shape on a small image grey: keep
        # full-resolution colour below 96 px, blocking and ringing everywhere.
        quality = int(rng.integers(25, 51)) if style == "alt" else int(rng.integers(30, 91))
        image.save(buf, "JPEG", quality=quality, subsampling=0 if min(w, h) < 96 else 2)
        image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return image


# ----------------------------------------------------------------------------- images in

def image_to_array(pil_image, size=INPUT_SIZE):
    """A PIL image of any mode and size -> float32 (3, size, size) in [0, 1], padded to square.

    Transparent images are composited on white; 16-bit images are scaled to 8 bits.
    """
    return _load_uint8(pil_image, size).astype(np.float32) / np.float32(255)


def load_image(path_or_image, size=INPUT_SIZE):
    """An image file (or PIL image) -> float32 (3, size, size) in [0, 1], ready for the model.

    Any mode Pillow opens; any size, with bounded memory for JPEG photos (draft
    decoding); EXIF orientation applied; non-square images padded to square
    (suite.images.read_letterboxed). Raises ImageError (one line naming the
    file) for missing, empty, unreadable or truncated files.
    """
    return _load_uint8(path_or_image, size).astype(np.float32) / np.float32(255)


def _load_uint8(path_or_image, size=INPUT_SIZE):
    """(3, size, size) uint8: the stored form of load_image."""
    return np.ascontiguousarray(read_letterboxed(path_or_image, size).transpose(2, 0, 1))  # (3, size, size)


# ----------------------------------------------------------------------------- the dataset

def _split_plan(n_train, n_valid, n_test, n_combo, hold_out=True, twins=0.0, outlines=0.0):
    """split -> (count, scene split, style, exclude, require, twins, outlines). alt, sketch and dark redraw the
    test scenes in their styles; outlines (hollow shapes) is drawn in the train split only, so every other split
    is the one built without it.
    hold_out False: every colour-shape pair everywhere (combo still requires one of HELD_OUT_COMBOS per scene)."""
    excluded = HELD_OUT_COMBOS if hold_out else ()
    return {
        "train": (n_train, "train", "train", excluded, (), twins, outlines),
        "valid": (n_valid, "valid", "train", excluded, (), twins, 0.0),
        "test": (n_test, "test", "train", excluded, (), twins, 0.0),
        "combo": (n_combo, "combo", "train", (), HELD_OUT_COMBOS, twins, 0.0),
        "alt": (n_test, "test", "alt", excluded, (), twins, 0.0),
        "sketch": (n_test, "test", "sketch", excluded, (), twins, 0.0),
        "dark": (n_test, "test", "dark", excluded, (), twins, 0.0),
    }


def _item_name(split, index):
    return f"{split}-{index:06d}.png"


def _make_item(seed, split, index, scene_split, style, exclude, require, twins, outlines, n_refs, keep_png,
               size=INPUT_SIZE):
    """One image: everything drawn from generators keyed by (seed, split, index), so workers never matter."""
    # alt redraws the test scenes: its scene and captions come from the scene split, its rendering from its own
    scene_rng = item_rng(seed, _SPLIT_ID[scene_split], index, 0)
    render_rng = item_rng(seed, _SPLIT_ID[split], index, 1)
    caption_rng = item_rng(seed, _SPLIT_ID[scene_split], index, 2)
    scene = random_scene(scene_rng, exclude=exclude, require=require, twins=twins)
    image = render(scene, render_rng, style=style, outlines=outlines)
    pixels = _load_uint8(image, size)  # (3, size, size)
    refs = captions(scene, caption_rng, n=n_refs)
    png = None
    if keep_png:
        buf = io.BytesIO()
        image.save(buf, "PNG")
        png = buf.getvalue()
    return pixels, refs, json.dumps(scene.to_json(), sort_keys=True), png, image.size


def _make_chunk(args):
    seed, split, start, stop, plan, n_refs, keep_png, size = args
    return [_make_item(seed, split, i, *plan, n_refs, keep_png, size) for i in range(start, stop)]


def _write_png_split(out_dir, split, names, items):
    """images/<split>/*.png + captions.tsv, written in a hidden folder and swapped in whole."""
    with staged_dir(Path(out_dir) / "images" / split, guard=False) as tmp:  # inside our dataset folder
        lines = []
        for name, (_, refs, _, png, _) in zip(names, items):
            (tmp / name).write_bytes(png)
            lines.extend(f"{name}\t{ref}\n" for ref in refs)
        (tmp / "captions.tsv").write_text("".join(lines), encoding="utf-8")


def build_dataset(out_dir, n_train=20000, n_valid=1000, n_test=1000, n_combo=1000, seed=0, workers=2,
                  progress=None, n_refs=N_REFS, command=None, hold_out=True, twins=0.0, outlines=0.0,
                  input_size=INPUT_SIZE):
    """Render the shapes-world dataset under out_dir; returns the report (also report.json).

    Writes, for each split in SPLITS, ``<split>.npz`` with
        images     uint8 (N, 3, S, S), S = input_size (64 by default), the model's input (load_image's
                   pixels x 255); the rendering is the same at every input_size, only the letterboxed copy differs
        captions   str (N,), each a JSON list of reference captions (first = canonical)
        scenes     str (N,), each a JSON scene (Scene.from_json)
        names      str (N,), the image file names
    and for test, combo and alt also ``images/<split>/<name>.png`` at the rendered
    size plus a Flickr8k-style ``images/<split>/captions.tsv`` (name TAB caption).

    train/valid/test never contain HELD_OUT_COMBOS (with hold_out; without it they
    hold every pair, the shipped model's data); every combo scene has at least
    one; alt, sketch and dark are the test scenes drawn in those styles (n_test images each).
    twins: the chance that a scene of 2 or 3 objects holds two of one description (counting).
    outlines: the chance that a train image draws its shapes hollow (``render``); the other splits never do.
    input_size: the side of the stored images (a multiple of 16).
    Every item is drawn from generators keyed by (seed, split, index), so the
    files are byte-identical for any number of workers. Files are written
    atomically, report.json last (suite.databuild.write_report).

    progress: optional callable(done, total), counting images over all splits.
    """
    for name, n in (("n_train", n_train), ("n_valid", n_valid), ("n_test", n_test), ("n_combo", n_combo)):
        if int(n) < 1:
            raise ValueError(f"{name} must be >= 1, got {n}")
    if int(workers) < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if int(n_refs) < 1:
        raise ValueError(f"n_refs must be >= 1, got {n_refs}")
    if int(input_size) < 16 or int(input_size) % 16:
        raise ValueError(f"input_size must be a multiple of 16 (at least 16), got {input_size}")
    for name, share in (("twins", twins), ("outlines", outlines)):
        if not 0.0 <= float(share) <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {share}")
    out_dir = Path(out_dir)
    with staged_dir(out_dir) as build:  # the whole dataset appears at once; an interrupted build leaves nothing
        return _build_into(build, out_dir, n_train, n_valid, n_test, n_combo, seed, workers, progress, n_refs,
                           command, hold_out, float(twins), float(outlines), int(input_size))


def _build_into(build, out_dir, n_train, n_valid, n_test, n_combo, seed, workers, progress, n_refs, command,
                hold_out=True, twins=0.0, outlines=0.0, input_size=INPUT_SIZE):
    """build_dataset's work, written into the staged folder ``build`` that becomes ``out_dir``."""
    plans = _split_plan(int(n_train), int(n_valid), int(n_test), int(n_combo), hold_out, twins, outlines)
    if command is None:
        command = (f"suite caption data build --out {out_dir} --train {n_train} --valid {n_valid} "
                   f"--test {n_test} --combo {n_combo} --seed {seed}")
    splits = {}
    done, grand_total = 0, sum(plans[split][0] for split in SPLITS)
    t_start = time.perf_counter()
    for split in SPLITS:
        n, *plan = plans[split]
        keep_png = split in PNG_SPLITS
        tasks = [(seed, split, start, stop, tuple(plan), n_refs, keep_png, input_size)
                 for start, stop in chunks(n, 64)]
        t0 = time.perf_counter()
        shown = None if progress is None else (lambda d, _total, before=done: progress(before + d, grand_total))
        items = [item for part in parallel_map(_make_chunk, tasks, workers, progress=shown) for item in part]
        done += len(items)
        render_s = time.perf_counter() - t0
        names = [_item_name(split, i) for i in range(n)]
        images = np.stack([it[0] for it in items])  # (N, 3, S, S)
        scene_json = [it[2] for it in items]
        arrays = {
            "images": images,
            "captions": np.array([json.dumps(it[1]) for it in items]),
            "scenes": np.array(scene_json),
            "names": np.array(names),
        }
        write_npz(build / f"{split}.npz", arrays)
        if keep_png:
            _write_png_split(build, split, names, items)
        scenes = [Scene.from_json(json.loads(s)) for s in scene_json]
        counts = np.bincount([len(s) for s in scenes], minlength=4)
        held = sum(1 for s in scenes for o in s.objects if (o.colour, o.shape) in HELD_OUT_COMBOS)
        sizes = np.array([it[4] for it in items])  # (N, 2) rendered width, height
        splits[split] = {
            "images": n,
            "style": plan[1],
            "scenes_from": plan[0],
            "objects_per_image": {"1": int(counts[1]), "2": int(counts[2]), "3": int(counts[3])},
            "held_out_objects": held,
            "twin_scenes": sum(1 for sc in scenes if sc.has_twins),
            "references": sum(len(it[1]) for it in items),
            "rendered_side_px": [int(sizes.min()), int(sizes.max())],
            "file": f"{split}.npz",
            "sha256": sha256_file(build / f"{split}.npz"),
            "png_dir": f"images/{split}" if keep_png else None,
            "render_seconds": round(render_s, 3),
            "seconds": round(time.perf_counter() - t0, 3),
        }
    total_s = time.perf_counter() - t_start
    n_images = sum(s["images"] for s in splits.values())
    report = {
        "seed": seed,
        "command": command,
        "input_size": input_size,
        "pixels": "uint8 (N, 3, H, W); divide by 255 for the model's [0, 1] float input",
        "held_out_combos": [list(p) for p in HELD_OUT_COMBOS] if hold_out else [],
        "twins": twins,
        "outlines": outlines,
        "combo_pairs": [list(p) for p in HELD_OUT_COMBOS],
        "vocab": VOCAB,
        "references_per_image": n_refs,
        "counts": {split: s["images"] for split, s in splits.items()},
        "relations": {"clear_min": CLEAR_MIN, "clear_ratio": CLEAR_RATIO, "hold_min": HOLD_MIN,
                      "hold_ratio": HOLD_RATIO, "y_axis": "down (above = smaller y)"},
        "splits": splits,
        "throughput": {"images": n_images, "seconds": round(total_s, 3),
                       "images_per_second": round(n_images / total_s, 1) if total_s > 0 else None,
                       "workers": workers, "python": sys.version.split()[0]},
    }
    return write_report(build, report, FORMAT_VERSION)


def load_report(out_dir):
    """The report of a built dataset (report.json; a build before it wrote dataset.json); DataError if none."""
    return read_report(out_dir, FORMAT_VERSION, legacy=("dataset.json",), app="caption")


def _load_npz(out_dir, split):
    z = read_npz(Path(out_dir) / f"{split}.npz", what="dataset (`suite caption data build`)")
    missing = [k for k in ("images", "captions", "scenes", "names") if k not in z]
    if missing:
        raise DataError(f"{Path(out_dir) / f'{split}.npz'}: incomplete (no {missing[0]!r}); rebuild the dataset")
    return z


def at_size(images, size):
    """uint8 (N, 3, S, S) images -> (N, 3, size, size): as they are when S == size, else each resized
    (box filter down, bicubic up), as a model reading ``size`` pixels sees a dataset built at another size."""
    images = np.asarray(images)
    if size is None or images.shape[-1] == size:
        return images
    out = np.empty(images.shape[:2] + (size, size), dtype=np.uint8)  # (N, 3, size, size)
    down = images.shape[-1] > size
    for k, image in enumerate(images):
        pil = Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)), "RGB")
        pil = pil.resize((size, size), Image.Resampling.BOX if down else Image.Resampling.BICUBIC)
        out[k] = np.asarray(pil).transpose(2, 0, 1)
    return out


def load_split(out_dir, split, size=None):
    """(images, references, scenes) of one split.

    images : uint8 (N, 3, S, S) (divide by 255: load_image's float32 [0, 1] pixels); S is the size the
             dataset was built at (report.json's input_size), or ``size`` when given (at_size)
    references : list of N lists of caption strings
    scenes : list of N Scene, or None for user data

    split is a built split name (train, valid, test, combo, alt; reads
    out_dir/<split>.npz), or user data: a Flickr8k-style captions file given as
    a path (absolute, or relative to out_dir), or a folder (in out_dir) holding
    captions.tsv; the images lie beside the captions file.
    """
    out_dir = Path(out_dir)
    if split in SPLITS and (out_dir / f"{split}.npz").is_file():
        z = _load_npz(out_dir, split)
        refs = [json.loads(s) for s in z["captions"]]
        scenes = [Scene.from_json(json.loads(s)) for s in z["scenes"]]
        return at_size(z["images"], size), refs, scenes
    for candidate in (Path(split), out_dir / split, out_dir / split / "captions.tsv"):
        if candidate.is_file():
            images, refs, _ = load_user_split(candidate, size=size or INPUT_SIZE)
            return images, refs, None
    if split in SPLITS:
        _load_npz(out_dir, split)  # raises: no such file, build the dataset first
    raise DataError(f"no split {split!r} in {out_dir}: name one of {', '.join(SPLITS)} or a captions file")


def load_names(out_dir, split):
    """The image file names of a built split, in the order of load_split."""
    return [str(s) for s in _load_npz(out_dir, split)["names"]]


# ----------------------------------------------------------------------------- user data

def read_captions_file(path):
    """A Flickr8k-style captions file -> {image name: [captions]} in file order.

    Lines are ``name<TAB>caption``; ``name#k<TAB>caption`` (the original
    Flickr8k.token.txt) is accepted, as is the Kaggle ``captions.txt`` CSV
    (header ``image,caption``). Blank lines are skipped. Raises
    CaptionsFileError naming the file and line for anything else.
    """
    import csv

    path = Path(path)
    if not path.is_file():
        raise CaptionsFileError(f"{path}: no such captions file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CaptionsFileError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    lines = text.splitlines()
    out = {}
    csv_mode = bool(lines) and lines[0].strip().lower().replace(" ", "") == "image,caption"

    def bad(lineno, line, why):
        return CaptionsFileError(f"{path}, line {lineno}: {why}, got {line[:60]!r}; "
                                 f"expected 'image-name<TAB>caption'")

    rows = enumerate(lines, start=1)
    if csv_mode:
        next(rows)
    for lineno, line in rows:
        if not line.strip():
            continue
        if csv_mode:
            fields = next(csv.reader([line]))
            if len(fields) < 2:
                raise bad(lineno, line, "no comma between image name and caption")
            name, caption = fields[0], ",".join(fields[1:])
        else:
            if "\t" not in line:
                raise bad(lineno, line, "no tab between image name and caption")
            name, caption = line.split("\t", 1)
        name, caption = name.strip(), caption.strip()
        if "#" in name and name.rsplit("#", 1)[1].isdigit():
            name = name.rsplit("#", 1)[0]
        if not name:
            raise bad(lineno, line, "empty image name")
        if not caption:
            raise bad(lineno, line, "empty caption")
        out.setdefault(name, []).append(caption)
    if not out:
        raise CaptionsFileError(f"{path}: no captions in the file")
    return out


def load_user_split(captions_path, image_dir=None, size=INPUT_SIZE):
    """Images and captions a user brings: (uint8 (N, 3, size, size), [[captions]], [names]).

    image_dir defaults to the captions file's folder. Raises ImageError naming
    the first image that is missing or unreadable.
    """
    captions_path = Path(captions_path)
    table = read_captions_file(captions_path)
    folder = Path(image_dir) if image_dir is not None else captions_path.parent
    names = list(table)
    images = np.empty((len(names), 3, size, size), dtype=np.uint8)  # (N, 3, size, size)
    for k, name in enumerate(names):
        images[k] = _load_uint8(folder / name, size)
    return images, [table[n] for n in names], names


def user_training_data(images_dir, captions_file, size=INPUT_SIZE, progress=None):
    """A user's Flickr8k-style pair (image folder, captions file) as train and valid: 5 % held out.

    Returns ((images, refs), (images, refs), source): uint8 (N, 3, size, size)
    images in sorted name order, split by suite.databuild.holdout_split (seed
    0), and the source for the model card. progress(done, total) per image.
    """
    table = read_captions_file(captions_file)
    names = sorted(table)
    if len(names) < 2:
        raise DataError(f"{captions_file}: {len(names)} captioned images; need at least 2")
    images = np.empty((len(names), 3, size, size), dtype=np.uint8)  # (N, 3, size, size)
    for k, name in enumerate(names):
        images[k] = _load_uint8(Path(images_dir) / name, size)
        if progress is not None:
            progress(k + 1, len(names))
    refs = [table[n] for n in names]
    train, held = holdout_split(len(names))
    part = lambda idx: (images[idx], [refs[i] for i in idx])  # noqa: E731
    return part(train), part(held), {"images": str(images_dir), "captions": str(captions_file), "count": len(names)}


def training_data(data_dir):
    """The train and valid splits of a built dataset: ((images, refs), (images, refs), source for the card)."""
    if not (Path(data_dir) / "train.npz").is_file():
        raise DataError(f"{data_dir}: no train.npz; run `suite caption data build` first "
                        "or pass --images DIR --captions FILE")
    tr_img, tr_refs, _ = load_split(data_dir, "train")
    va_img, va_refs, _ = load_split(data_dir, "valid")
    return (tr_img, tr_refs), (va_img, va_refs), {"dataset": str(data_dir), "report": load_report(data_dir)}
