"""From a grey image to what the model reads: ink normalised, lines found on a page, one line at the model's height.

- ``ink_map``: grey uint8 -> ink in [0, 1], whatever the polarity (dark ink
  on light paper, or the inverse: the paper is the image's most common level)
  and contrast; None for a blank image.
- ``prepare_line``: one line image -> (W, LINE_HEIGHT) uint8 ink columns (the
  model's time steps), cropped to the ink with a margin and scaled to the
  model's height, plus the mapping back to the image's x coordinates.
- ``segment_page``: a page -> the boxes of its text lines, top to bottom:
  binarised, deskewed (the angle whose horizontal projection profile is
  sharpest), cut where the profile falls to nothing.

Training data goes through ``prepare_line`` too (apps.handwriting.data), so
the model sees exactly what `read` gives it.
"""
from dataclasses import dataclass

import numpy as np
from PIL import Image

LINE_HEIGHT = 32          # rows of the model's input: every line is scaled to this
MIN_CONTRAST = 24         # grey levels between paper and the darkest ink below which an image is blank
INK_THRESHOLD = 0.3       # ink (0..1, contrast already stretched) above this is ink when binarising


@dataclass
class Line:
    """One prepared line: ink columns and where they came from in the image."""

    columns: np.ndarray   # (W, LINE_HEIGHT) uint8 ink, 0 paper .. 255 ink
    x0: float             # image x of column 0
    scale: float          # image pixels per column
    box: tuple            # (left, top, right, bottom) of the line in the image

    def image_x(self, column):
        """The image x coordinate of a column (a float column from frame * pool)."""
        return self.x0 + column * self.scale


def ink_map(gray):
    """(h, w) uint8 grey -> (h, w) float32 ink in [0, 1], or None when the image holds no ink.

    The paper is the median grey level (most of a line or page is paper); ink
    is whatever departs from it towards the far side, so white-on-black is
    read like black-on-white. Contrast is stretched between the paper and the
    1st percentile of the ink side, and faint noise (under 15 %) is cut.
    """
    gray = np.asarray(gray)
    if gray.size == 0:
        return None
    step = max(1, int(np.sqrt(gray.size / 1e6)))  # levels from at most ~1 M pixels: a page scan costs no sort
    sample = gray[::step, ::step].astype(np.float32)
    paper = float(np.median(sample))
    dark = float(np.percentile(sample, 0.5))
    light = float(np.percentile(sample, 99.5))
    dark_ink = paper - dark >= light - paper  # ink darker than paper (the usual case)
    span = paper - dark if dark_ink else light - paper
    if span < MIN_CONTRAST:
        return None  # before any full-size array is made
    g = gray.astype(np.float32)
    if dark_ink:
        np.subtract(paper, g, out=g)
    else:
        np.subtract(g, paper, out=g)
    g *= np.float32(1 / (0.85 * span))  # contrast stretched, then faint noise (under 15 %) cut
    g -= np.float32(0.15 / 0.85)
    return np.clip(g, 0.0, 1.0, out=g)


def _bbox(ink, threshold=INK_THRESHOLD):
    """(top, bottom, left, right) of the pixels above threshold, or None."""
    rows = np.flatnonzero(ink.max(axis=1) > threshold)
    cols = np.flatnonzero(ink.max(axis=0) > threshold)
    if not len(rows) or not len(cols):
        return None
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def prepare_ink(ink, origin=(0, 0)):
    """(h, w) ink in [0, 1] of one line -> Line, or None when it holds no ink.

    The ink's bounding box gets a margin of 12 % of its height above and below
    and 4 model columns left and right, then is scaled to LINE_HEIGHT rows
    (aspect kept; at least 8 columns).
    """
    box = _bbox(ink)
    if box is None:
        return None
    top, bottom, left, right = box
    h = bottom - top
    margin = max(int(round(0.12 * h)), 1)
    top, bottom = max(top - margin, 0), min(bottom + margin, ink.shape[0])
    crop = ink[top:bottom, left:right]
    scale = (bottom - top) / LINE_HEIGHT  # image pixels per model pixel
    width = max(int(round(crop.shape[1] / scale)), 1)
    img = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32), "F")
    method = Image.Resampling.BOX if scale > 1 else Image.Resampling.BILINEAR
    small = np.asarray(img.resize((width, LINE_HEIGHT), method), dtype=np.float32)  # (LINE_HEIGHT, width)
    pad = 4
    cols = np.zeros((width + 2 * pad, LINE_HEIGHT), np.uint8)
    cols[pad:pad + width] = np.clip(np.rint(small.T * 255), 0, 255).astype(np.uint8)
    if len(cols) < 8:
        cols = np.pad(cols, ((0, 8 - len(cols)), (0, 0)))
    oy, ox = origin
    return Line(cols, x0=ox + left - pad * scale, scale=scale,
                box=(int(ox + left), int(oy + top), int(ox + right), int(oy + bottom)))


def prepare_line(gray):
    """(h, w) uint8 grey image of one text line -> Line, or None when it is blank."""
    ink = ink_map(gray)
    return None if ink is None else prepare_ink(ink)


def deskew_angle(binary, max_degrees=5.0, step=0.25):
    """The rotation (degrees) that makes the rows' ink profile sharpest (variance of row sums), over a small range."""
    h, w = binary.shape
    factor = max(1, max(h, w) // 800)  # the search runs on a copy of at most ~800 px
    small = binary[::factor, ::factor].astype(np.float32)
    img = Image.fromarray(small * 255).convert("L")
    best, best_score = 0.0, -1.0
    for angle in np.arange(-max_degrees, max_degrees + step / 2, step):
        rotated = np.asarray(img.rotate(angle, resample=Image.Resampling.NEAREST, fillcolor=0), np.float32)
        score = float(np.var(rotated.sum(axis=1)))
        if score > best_score + 1e-9:
            best, best_score = float(angle), score
    return best


def segment_page(ink, min_gap=None):
    """The text lines of a page's (h, w) ink in [0, 1]: a list of (top, bottom) row ranges, top to bottom.

    A row belongs to a line when its ink (above INK_THRESHOLD) exceeds 2 % of the
    busiest row; lines closer than ``min_gap`` rows (default a quarter of the
    typical line height) are joined, and thin bands (dots, accents) go to the
    nearest line or, far from any, are dropped.
    """
    binary = ink > INK_THRESHOLD
    profile = binary.sum(axis=1).astype(np.float64)
    if profile.max() <= 0:
        return []
    on = profile > 0.02 * profile.max()
    bands, start = [], None
    for y, v in enumerate(np.append(on, False)):
        if v and start is None:
            start = y
        elif not v and start is not None:
            bands.append([start, y])
            start = None
    heights = np.array([b - a for a, b in bands])
    typical = float(np.median(heights[heights >= 0.5 * heights.max()]))
    gap = typical / 4 if min_gap is None else min_gap
    merged = [bands[0]]
    for a, b in bands[1:]:
        if a - merged[-1][1] < gap:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    # i-dots, accents and stray descenders form thin bands of their own: join each to its nearest line
    big = [m for m in merged if m[1] - m[0] >= 0.4 * typical]
    for a, b in (m for m in merged if m[1] - m[0] < 0.4 * typical):
        near = min(big, key=lambda m: min(abs(a - m[1]), abs(m[0] - b)), default=None)
        if near is not None and min(abs(a - near[1]), abs(near[0] - b)) < 0.6 * typical:
            near[0], near[1] = min(near[0], a), max(near[1], b)
    return [(a, b) for a, b in big]


def page_lines(gray, deskew=True):
    """(h, w) uint8 grey page -> list of Line, top to bottom (empty for a blank page).

    One line (a single band) comes back as prepare_line would give it; a page is
    deskewed first (line boxes are then in the deskewed page's coordinates).
    """
    ink = ink_map(gray)
    if ink is None:
        return []
    if deskew and ink.shape[0] > 2 * LINE_HEIGHT:
        angle = deskew_angle(ink > INK_THRESHOLD)
        if angle:
            ink = np.asarray(Image.fromarray(ink, "F").rotate(angle, resample=Image.Resampling.BILINEAR,
                                                              fillcolor=0.0), np.float32)
    lines = []
    for top, bottom in segment_page(ink):
        line = prepare_ink(ink[top:bottom], origin=(top, 0))
        if line is not None:
            lines.append(line)
    return lines
