"""Drawing line images to learn from and to test on: font hands, real digits, Hershey pen strokes.

Every function takes a numpy Generator and returns a grey (h, w) uint8 image,
dark ink on light paper, as a scanner or camera would give it; the reader's
own normalisation (apps.handwriting.lines.prepare_line) turns it into the
model's input, so training and `read` see the same path.

- ``render_font_line``: text in a TrueType/OpenType hand at 2x, then stroke
  width (grey dilation/erosion), slant, a wobbling baseline and elastic
  distortion (``_warp``), and
  ``paper`` (ink and paper levels, gradient, blur, noise).
- ``render_digit_line``: real handwritten digits (scikit-learn's load_digits,
  8x8 scans at 17 grey levels) composed into a string at varied scale,
  spacing, overlap and height.
- ``render_hershey_line``: pen strokes of the Hershey vector fonts, drawn as
  lines of varied width: a test of hands no font in training resembles. The
  recogniser never trains or validates on them.
"""
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# glyph cache: (font path, size) -> ImageFont; fonts load once per process
_FONTS = {}


def font(path, size):
    key = (str(path), int(size))
    if key not in _FONTS:
        _FONTS[key] = ImageFont.truetype(str(path), int(size))
    return _FONTS[key]


def missing_glyphs(path, chars):
    """The characters of ``chars`` that the font at ``path`` draws as its .notdef box (or not at all)."""
    f = font(path, 32)

    def bitmap(c):
        mask = f.getmask(c)
        return bytes(mask), mask.size

    notdef = {bitmap("\ue000"), bitmap("\uffff")}
    return {c for c in chars if c != " " and (bitmap(c) in notdef or bitmap(c)[1][0] == 0)}


def _warp(ink, rng, slant=0.0, wobble=0.0, alpha=0.0, sigma=8.0):
    """(h, w) ink in [0, 1] slanted, its baseline bent and elastically distorted, in one resampling.

    slant: x shift per row (italic); wobble: the baseline's largest vertical
    shift in pixels (a slow sine along the line); alpha: the largest elastic
    displacement in pixels (Simard et al. 2003), a random field smoothed with
    ``sigma``, drawn at 1/4 resolution and upsampled (the same field, 16x cheaper).
    """
    from scipy.ndimage import gaussian_filter, map_coordinates, zoom

    h, w = ink.shape
    pad = int(abs(slant) * h) + 2
    ink = np.pad(ink, ((0, 0), (pad, pad)))
    w += 2 * pad
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    src_x = xx + slant * (yy - h / 2)
    src_y = yy.copy()
    if wobble > 0:
        period = rng.uniform(0.5, 2.0) * w
        src_y += (wobble * np.sin(2 * np.pi * xx[0] / period + rng.uniform(0, 2 * np.pi)))[None, :]
    if alpha > 0:
        small = (max(h // 4, 2), max(w // 4, 2))
        for grid in (src_x, src_y):
            field = gaussian_filter(rng.uniform(-1, 1, small), sigma / 4, mode="constant")
            field *= alpha / max(np.abs(field).max(), 1e-6)
            grid += zoom(field, (h / small[0], w / small[1]), order=1)[:h, :w]
    return map_coordinates(ink, [src_y, src_x], order=1, mode="constant", cval=0.0)


def _stroke(ink, rng, size):
    """Thicker or thinner strokes: grey dilation or erosion of (h, w) ink by up to ``size`` pixels."""
    from scipy.ndimage import grey_dilation, grey_erosion

    k = int(rng.integers(0, size + 1))
    if k == 0:
        return ink
    if rng.random() < 0.65:
        return grey_dilation(ink, size=(k + 1, k + 1))
    thin = grey_erosion(ink, size=(2, 2))
    return thin if thin.sum() > 0.6 * ink.sum() else ink  # a thin hand would lose whole strokes


def _skeleton(mask):
    """The one-pixel-wide centre lines of a boolean (h, w) mask: Zhang-Suen thinning (1984), each pass
    vectorised over the whole image; a stroke loses a pixel of each side per pass."""
    m = np.pad(mask, 1).astype(np.uint8)
    centre = m[1:-1, 1:-1]  # a view: removals land in m
    while True:
        changed = False
        for first in (True, False):
            n = (m[:-2, 1:-1], m[:-2, 2:], m[1:-1, 2:], m[2:, 2:], m[2:, 1:-1], m[2:, :-2], m[1:-1, :-2], m[:-2, :-2])
            p2, _, p4, _, p6, _, p8, _ = n
            neighbours = sum(x.astype(np.int8) for x in n)
            rises = sum(((a == 0) & (b == 1)).astype(np.int8) for a, b in zip(n, n[1:] + n[:1]))
            side = ((p2 & p4 & p6) == 0) & ((p4 & p6 & p8) == 0) if first else \
                ((p2 & p4 & p8) == 0) & ((p2 & p6 & p8) == 0)
            remove = (centre == 1) & (neighbours >= 2) & (neighbours <= 6) & (rises == 1) & side
            if remove.any():
                centre[remove] = 0
                changed = True
        if not changed:
            return centre.astype(bool)


PEN_MAX_STROKE = 0.11  # bolder strokes (their median width over the font size) are left as drawn


def _pen_ink(ink, rng, size):
    """(h, w) ink redrawn as one pen would write it: the strokes' centre lines (``_skeleton``) traced with a round
    nib of one width, 2-7 % of the font size ``size`` in radius (a fine felt-tip to a marker), as handwriting is
    written, where a font's strokes swell and thin; the nib's pressure varies slowly along the line. Ink whose
    strokes are bolder than PEN_MAX_STROKE of the size is returned as it is: the centre lines of a heavy face
    (Lobster Bold, 12.5 %) sprout spurs that turn an s into an a."""
    from scipy.ndimage import distance_transform_edt, zoom

    mask = ink > 0.5
    centre = _skeleton(mask)
    if not centre.any() or 2 * np.median(distance_transform_edt(mask)[centre]) > PEN_MAX_STROKE * size:
        return ink
    radius = size * rng.uniform(0.02, 0.07)
    pen = np.clip(radius + 0.5 - distance_transform_edt(~centre), 0.0, 1.0).astype(np.float32)
    h, w = pen.shape
    coarse = rng.uniform(0.65, 1.0, (2, max(w // 64, 1) + 1)).astype(np.float32)
    return pen * zoom(coarse, (h / 2, w / coarse.shape[1]), order=1)  # zoom's output: round(2 h/2) x round(n w/n)


def paper(ink, rng, noise=True):
    """(h, w) ink in [0, 1] -> grey uint8 image: ink colour on paper, with a gradient, blur and noise."""
    from scipy.ndimage import gaussian_filter

    h, w = ink.shape
    paper_level = rng.uniform(200, 255)
    ink_level = rng.uniform(0, min(110, paper_level - 80))
    img = paper_level + (ink_level - paper_level) * np.clip(ink, 0, 1)
    if noise and rng.random() < 0.5:  # uneven light
        gx = np.linspace(-1, 1, w)[None, :] * rng.uniform(-25, 25)
        gy = np.linspace(-1, 1, h)[:, None] * rng.uniform(-15, 15)
        img = img + gx + gy
    if noise and rng.random() < 0.5:
        img = gaussian_filter(img, rng.uniform(0.3, 1.0))
    if noise:
        img = img + rng.normal(0, rng.uniform(0, 12), img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _margins(ink, rng, scale=1.0):
    """Pad (h, w) ink with random paper margins (a line image is rarely cropped to the ink)."""
    top, bottom = (int(rng.integers(0, int(8 * scale) + 1)) for _ in range(2))
    left, right = (int(rng.integers(0, int(20 * scale) + 1)) for _ in range(2))
    return np.pad(ink, ((top, bottom), (left, right)))


def _glyph_ink(text, path, size, rng):
    """``text`` in the font at ``path`` (pixel size ``size``) drawn one character at a time, each its own way:
    (h, w) ink in [0, 1]. A writer's letters differ from one another where a font's are all alike, so each
    character gets its own size (x0.8-1.25), tilt (a few degrees), height above the baseline and spacing, the
    amounts drawn per line; words are set apart by a line's own word spacing. Kerning and the joins of a script
    font are lost, as they often are in a hand."""
    scale_sd, tilt_sd = rng.uniform(0.03, 0.1), rng.uniform(0.0, 5.0)
    lift_sd = rng.uniform(0.0, 0.05) * size
    tracking, word_space = rng.uniform(-0.04, 0.12) * size, rng.uniform(0.7, 1.6)
    base = font(path, size)
    asc, desc = base.getmetrics()
    pad = size // 2
    h = int(1.3 * (asc + desc)) + 2 * pad
    baseline = pad + int(1.15 * asc)
    width = int(base.getlength(text) * 1.4 + len(text) * (abs(tracking) + 2)) + 4 * pad
    ink = np.zeros((h, width), np.float32)
    x = float(pad)
    for c in text:
        if c == " ":
            x += base.getlength(" ") * word_space
            continue
        f = font(path, int(round(size * float(np.clip(np.exp(rng.normal(0, scale_sd)), 0.8, 1.25)))))
        advance = f.getlength(c)
        box_w = int(advance) + 2 * pad
        glyph = Image.new("L", (box_w, h), 0)
        ImageDraw.Draw(glyph).text((pad, baseline + rng.normal(0, lift_sd)), c, font=f, fill=255, anchor="ls")
        if tilt_sd > 0:
            glyph = glyph.rotate(float(rng.normal(0, tilt_sd)), resample=Image.Resampling.BILINEAR,
                                 center=(pad + advance / 2, baseline))
        g = np.asarray(glyph, dtype=np.float32) / 255.0
        x0 = int(round(x)) - pad
        if x0 + box_w > ink.shape[1]:
            ink = np.pad(ink, ((0, 0), (0, x0 + box_w - ink.shape[1] + pad)))
        lo = max(x0, 0)
        np.maximum(ink[:, lo:x0 + box_w], g[:, lo - x0:], out=ink[:, lo:x0 + box_w])
        x += advance + tracking
    cols = np.flatnonzero(ink.max(axis=0) > 0)
    rows = np.flatnonzero(ink.max(axis=1) > 0)
    if not len(cols):
        return ink[:, :8]
    return np.pad(ink[max(rows[0] - 4, 0):rows[-1] + 5, cols[0]:cols[-1] + 1], ((0, 0), (4, 4)))


def render_font_line(text, path, rng, height=None, distort=True, glyph_jitter=0.0, pen=0.0):
    """``text`` written in the font at ``path``: (h, w) uint8 grey, dark ink on light paper.

    height: the font size in pixels at which the line is finally drawn (default
    random 24-64); drawing happens at 2x and is block-averaged down.
    glyph_jitter: the chance that the line is drawn a character at a time, each
    its own way (``_glyph_ink``; training only: 0 draws nothing more from ``rng``).
    pen: the chance that the line's strokes are redrawn with a round pen of one
    width (``_pen_ink``; training only: 0 draws nothing more from ``rng``).
    """
    size = int(height or rng.integers(24, 65))
    if glyph_jitter > 0 and rng.random() < glyph_jitter:
        ink = _glyph_ink(text, path, 2 * size, rng)
        h = ink.shape[0]
    else:
        f = font(path, 2 * size)
        left, top, right, bottom = f.getbbox(text)
        asc, desc = f.getmetrics()
        w, h = max(right, 1) + 8, asc + desc + 8
        canvas = Image.new("L", (w, h), 0)
        ImageDraw.Draw(canvas).text((4, 4), text, font=f, fill=255)
        ink = np.asarray(canvas, dtype=np.float32) / 255.0
    if pen > 0 and rng.random() < pen:
        ink = _pen_ink(ink, rng, 2 * size)
    elif distort:
        ink = _stroke(ink, rng, 3)
    if distort:
        ink = _warp(ink, rng, slant=rng.uniform(-0.35, 0.35), wobble=rng.uniform(0, 0.06) * h,
                    alpha=rng.uniform(1.0, 0.06 * h) if rng.random() < 0.8 else 0.0, sigma=rng.uniform(5, 10))
    ink = _margins(ink, rng, 2.0)
    down = Image.fromarray(ink, "F").resize((max(ink.shape[1] // 2, 1), max(ink.shape[0] // 2, 1)),
                                            Image.Resampling.BOX)
    return paper(np.asarray(down), rng, noise=distort)


_DIGITS = None


def digit_images():
    """(images (1797, 8, 8) float32 ink in [0, 1], labels (1797,)) of scikit-learn's load_digits, file order."""
    global _DIGITS
    if _DIGITS is None:
        from sklearn.datasets import load_digits

        d = load_digits()
        _DIGITS = (d.images.astype(np.float32) / 16.0, d.target.astype(np.int64))
    return _DIGITS


def render_digit_line(text, pool, rng, height=None):
    """``text`` (digits and spaces) drawn with real handwritten digits from ``pool``: (h, w) uint8 grey.

    pool: {digit: [indices into digit_images()]}; each digit of the text is a
    different scan drawn from it. height: pixels per digit (default random 16-48).
    """
    images, _ = digit_images()
    size = int(height or rng.integers(16, 49))
    line_h = int(size * rng.uniform(1.15, 1.6))
    resample = [Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS][int(rng.integers(3))]
    pieces, x = [], int(rng.integers(0, size // 2 + 1))
    for c in text:
        if c == " ":
            x += int(size * rng.uniform(0.6, 1.2))
            continue
        choices = pool[int(c)]
        glyph = images[choices[int(rng.integers(len(choices)))]]
        h = int(size * rng.uniform(0.85, 1.1))
        w = max(int(h * rng.uniform(0.7, 1.05)), 3)
        g = np.asarray(Image.fromarray(glyph, "F").resize((w, h), resample), dtype=np.float32)
        cols = np.flatnonzero(g.max(axis=0) > 0.2)  # the scans have blank columns at the sides
        g = g[:, cols[0]:cols[-1] + 1] if len(cols) else g
        y = int(rng.integers(0, line_h - h + 1))
        pieces.append((x, y, g))
        x += g.shape[1] + int(size * rng.uniform(-0.08, 0.3))  # slight overlap to wide gaps
    width = max(x + int(rng.integers(0, size // 2 + 1)), 1)
    ink = np.zeros((line_h, width + size), np.float32)
    for x, y, g in pieces:
        region = ink[y:y + g.shape[0], x:x + g.shape[1]]
        np.maximum(region, g[:region.shape[0], :region.shape[1]], out=region)
    ink = np.clip(ink * rng.uniform(1.0, 1.6), 0, 1)
    if rng.random() < 0.5:
        ink = _warp(ink, rng, slant=rng.uniform(-0.2, 0.2), wobble=rng.uniform(0, 0.05) * line_h)
    return paper(_margins(ink, rng, size / 24), rng)


HERSHEY_FONTS = ("scripts", "scriptc", "cursive", "futural", "futuram", "timesi", "rowmans")


def render_hershey_line(text, font_name, rng, height=None):
    """``text`` drawn as pen strokes of a Hershey vector font: (h, w) uint8 grey.

    The strokes are drawn at 2x with a round pen of random width, with jitter on every vertex.
    """
    from HersheyFonts import HersheyFonts

    size = int(height or rng.integers(24, 57))
    hf = HersheyFonts()
    hf.load_default_font(font_name)
    hf.normalize_rendering(2 * size)
    segments = list(hf.lines_for_text(text))
    if not segments:
        return paper(np.zeros((size, size), np.float32), rng)
    pts = np.array(segments, dtype=np.float64)  # (S, 2, 2)
    pts += rng.normal(0, 0.01 * size, pts.shape)
    x0, y0 = pts[..., 0].min(), pts[..., 1].min()
    pen = max(int(rng.uniform(0.05, 0.12) * size), 2)
    pad = 2 * pen + 4
    w = int(pts[..., 0].max() - x0) + 2 * pad
    h = int(max(pts[..., 1].max() - y0, 1.4 * size)) + 2 * pad
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for (ax, ay), (bx, by) in pts:
        a, b = (ax - x0 + pad, h - (ay - y0 + pad)), (bx - x0 + pad, h - (by - y0 + pad))  # y up in Hershey
        draw.line([a, b], fill=255, width=pen)
        r = pen / 2
        draw.ellipse([b[0] - r, b[1] - r, b[0] + r, b[1] + r], fill=255)
    ink = _margins(np.asarray(canvas, dtype=np.float32) / 255.0, rng, 2.0)
    down = Image.fromarray(ink, "F").resize((max(ink.shape[1] // 2, 1), max(ink.shape[0] // 2, 1)),
                                            Image.Resampling.BOX)
    return paper(np.asarray(down), rng)
