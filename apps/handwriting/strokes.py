"""Pen trajectories: Hershey script fonts as pen-offset sequences, and strokes drawn to PNG and SVG.

The writer (writer.py) learns from sequences of pen offsets (dx, dy, pen_up),
one row per point, pen_up = 1 on the last point of a stroke (Graves 2013,
section 4.2). The only pen-stroke data here are the Hershey vector fonts; the
three script faces are the writer's hands. Each line is drawn with a fresh
jitter (slant, width, rotation, wobble on every point), so no two trainings
lines are the same even for the same text.

Coordinates are in units of the font's height (EM units, y up); an offset
sequence starts at the first point, from the origin.
"""
import numpy as np
from PIL import Image, ImageDraw

# Hershey script faces: the writer's hands, in style-id order. Hershey-Fonts' "cursive" draws the same glyphs as
# "scripts" (one hand under two names, learnt twice); DISTINCT_HANDS are the two different ones.
HANDS = ("scripts", "scriptc", "cursive")
DISTINCT_HANDS = ("scripts", "scriptc")
EM = 20.0                                   # HersheyFonts.normalize_rendering height of one line
MIN_STEP = 1.5                              # points closer than this (EM units) to the last kept one are dropped

_FONTS = {}


def _font(hand):
    from HersheyFonts import HersheyFonts

    if hand not in _FONTS:
        hf = HersheyFonts()
        hf.load_default_font(hand)
        hf.normalize_rendering(EM)
        _FONTS[hand] = hf
    return _FONTS[hand]


def hershey_strokes(text, hand):
    """The strokes of ``text`` in a Hershey ``hand``: a list of (n, 2) float arrays, EM units, y up."""
    strokes = []
    for stroke in _font(hand).strokes_for_text(text):
        pts = np.asarray(stroke, dtype=np.float64)
        if len(pts):
            strokes.append(pts)
    return strokes


def jitter(strokes, rng):
    """The strokes as a person might draw them on another day: slanted, wider or narrower, slightly
    rotated, each point moved a little (a smooth wobble plus noise)."""
    slant = rng.uniform(-0.25, 0.25)
    sx = rng.uniform(0.85, 1.15)
    angle = rng.uniform(-0.04, 0.04)
    ca, sa = np.cos(angle), np.sin(angle)
    A = np.array([[ca, -sa], [sa, ca]]) @ np.array([[sx, slant], [0.0, 1.0]])
    freq, phase, amp = rng.uniform(0.02, 0.06), rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.6)
    out = []
    for pts in strokes:
        p = pts @ A.T
        p[:, 1] += amp * np.sin(freq * p[:, 0] + phase)          # the baseline wanders
        out.append(p + rng.normal(0, 0.12, p.shape))
    return out


def thin(strokes, min_step=MIN_STEP):
    """Drop points closer than min_step to the previous kept point (stroke ends are kept)."""
    out = []
    for pts in strokes:
        keep = [0]
        for i in range(1, len(pts)):
            if i == len(pts) - 1 or np.hypot(*(pts[i] - pts[keep[-1]])) >= min_step:
                keep.append(i)
        out.append(pts[keep])
    return out


def to_offsets(strokes):
    """strokes -> (N, 3) float32 rows (dx, dy, pen_up): offsets from the previous point (the first from the
    origin), pen_up = 1 on each stroke's last point."""
    rows = []
    for pts in strokes:
        up = np.zeros((len(pts), 1))
        up[-1] = 1
        rows.append(np.hstack([pts, up]))
    if not rows:
        return np.zeros((0, 3), np.float32)
    seq = np.vstack(rows)
    seq[1:, :2] = np.diff(seq[:, :2], axis=0)
    return seq.astype(np.float32)


def from_offsets(seq):
    """(N, 3) offsets -> list of (n, 2) strokes in absolute coordinates."""
    seq = np.asarray(seq, dtype=np.float64)
    if not len(seq):
        return []
    xy = np.cumsum(seq[:, :2], axis=0)
    ends = np.flatnonzero(seq[:, 2] > 0.5) + 1
    strokes = [s for s in np.split(xy, ends) if len(s)]
    return strokes


def training_line(text, hand, rng):
    """One jittered, thinned Hershey line as offsets (N, 3)."""
    return to_offsets(thin(jitter(hershey_strokes(text, hand), rng)))


def _bounds(strokes):
    pts = np.vstack(strokes) if strokes else np.zeros((1, 2))
    return pts.min(axis=0), pts.max(axis=0)


def draw_png(strokes, height=96, pen=None, margin=8):
    """The strokes as a (h, w) uint8 image, black ink on white, scaled so that one EM is ``height`` * 0.5 px.

    Drawn at 2x and box-filtered down, with a round pen (``pen`` px at the final size; default height / 48, a
    fine pen: the reader reads Hershey lines drawn so best, see writer.legibility).
    """
    scale = 2 * height * 0.5 / EM                  # px per EM unit at 2x
    pen2 = max(int(round(2 * (pen or height / 48))), 2)
    (x0, y0), (x1, y1) = _bounds(strokes)
    pad = 2 * margin
    w = int((x1 - x0) * scale) + 2 * pad + 1
    h = int(max((y1 - y0) * scale, height)) + 2 * pad + 1
    canvas = Image.new("L", (max(w, 4), max(h, 4)), 255)
    draw = ImageDraw.Draw(canvas)
    for pts in strokes:
        xy = [((px - x0) * scale + pad, h - ((py - y0) * scale + pad)) for px, py in pts]  # y down in images
        if len(xy) > 1:
            draw.line(xy, fill=0, width=pen2, joint="curve")
        r = pen2 / 2
        for px, py in (xy[0], xy[-1]):
            draw.ellipse([px - r, py - r, px + r, py + r], fill=0)
    small = canvas.resize((max(canvas.width // 2, 1), max(canvas.height // 2, 1)), Image.Resampling.BOX)
    return np.asarray(small)


def svg(strokes, height=96, margin=8):
    """The strokes as an SVG document (one polyline per stroke), the same scale as draw_png."""
    scale = height * 0.5 / EM
    (x0, y0), (x1, y1) = _bounds(strokes)
    w = (x1 - x0) * scale + 2 * margin
    h = max((y1 - y0) * scale, height) + 2 * margin
    lines = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
             f'viewBox="0 0 {w:.1f} {h:.1f}">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<g fill="none" stroke="black" stroke-width="{height / 48:.1f}" stroke-linecap="round" '
             f'stroke-linejoin="round">']
    for pts in strokes:
        points = " ".join(f"{(px - x0) * scale + margin:.1f},{h - ((py - y0) * scale + margin):.1f}" for px, py in pts)
        lines.append(f'<polyline points="{points}"/>')
    lines += ["</g>", "</svg>", ""]
    return "\n".join(lines)
