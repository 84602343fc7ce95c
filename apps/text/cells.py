"""Which single LSTM cells track structure in text (Karpathy, Johnson & Fei-Fei 2015).

For every character we compute four features of the text itself: inside a
string literal, inside a comment, the indentation depth of its line and its
position in the line. Then we run the model over the text, record every
cell's tanh(c_t) (the cell state squashed, as in the paper) in every layer,
and correlate each cell with each feature (Pearson r). The best cell per
feature is drawn: each character coloured by that cell's value.
"""
import html

import numpy as np

FEATURES = ("inside string", "inside comment", "indent depth", "position in line")


def text_features(text):
    """Per-character features (N, 4) float64: string, comment, indent depth, column.

    Strings and comments come from a small scanner, right for Python and close
    enough for most code: quotes (single, double, triple; backslash escapes)
    open and close strings outside comments, '#' outside strings starts a
    comment that ends at the newline. Quote characters count as inside the
    string. Indent depth is the width of the line's leading whitespace.
    """
    n = len(text)
    feats = np.zeros((n, 4))
    start = 0
    for line in text.split("\n"):  # line features
        stop = min(start + len(line) + 1, n)  # the line and its newline, if any
        feats[start:stop, 2] = len(line) - len(line.lstrip(" \t"))
        feats[start:stop, 3] = np.arange(stop - start)
        start = stop
    i = 0
    quote = None  # the open string's delimiter
    in_comment = False
    while i < n:
        ch = text[i]
        if in_comment:
            in_comment = ch != "\n"
            feats[i, 1] = 1.0 if in_comment else 0.0
            i += 1
        elif quote is None:
            if ch == "#":
                in_comment = True
                feats[i, 1] = 1.0
                i += 1
            elif ch in "'\"":
                quote = text[i:i + 3] if text[i:i + 3] in ("'''", '"""') else ch
                feats[i:i + len(quote), 0] = 1.0
                i += len(quote)
            else:
                i += 1
        else:
            width = 2 if ch == "\\" else len(quote) if text.startswith(quote, i) else 1
            if ch == "\n" and len(quote) == 1:  # an unterminated one-line string ends here
                quote = None
                i += 1
                continue
            feats[i:i + width, 0] = 1.0
            if width == len(quote) and text.startswith(quote, i) and ch != "\\":
                quote = None
            i += width
    return feats


def cell_activations(model, ids):
    """tanh(c_t) of every cell of every layer over one stream: list of (N, H) arrays."""
    was_training = model.training
    model.eval()  # no dropout between layers
    try:
        x = model.embed.forward(np.asarray(ids)[:, None])  # (N, 1, E)
        _, _, cells = model.rnn.forward(x, return_cells=True)  # (layers, N, 1, H)
    finally:
        model.train(was_training)
    return [np.tanh(c[:, 0]) for c in cells]  # (N, H): the cell state after each character


def _pearson(acts, feature):
    """Correlation of every column of acts (N, H) with feature (N,); 0 where either is constant."""
    a = acts - acts.mean(axis=0)
    f = feature - feature.mean()
    denom = np.sqrt((a ** 2).sum(axis=0) * (f ** 2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * f[:, None]).sum(axis=0) / denom
    return np.nan_to_num(r)


def analyse(model, vocab, text, top=5):
    """Correlate every cell with every feature; returns a dict for the writers and --json."""
    if model.config.kind not in ("lstm", "peephole", "cifg", "lstmp"):
        raise ValueError(f"cells are drawn for LSTM models, this one is {model.config.kind!r}")
    ids = vocab.encode(text)
    feats = text_features(text)
    acts = cell_activations(model, ids)
    best, ranking = {}, {}
    for k, name in enumerate(FEATURES):
        rows = []
        for layer, a in enumerate(acts):
            r = _pearson(a, feats[:, k])
            for cell in np.argsort(-np.abs(r))[:top]:
                rows.append({"layer": layer, "cell": int(cell), "r": float(r[cell])})
        rows.sort(key=lambda row: -abs(row["r"]))
        ranking[name] = rows[:top]
        best[name] = rows[0]
    return {"text": text, "features": feats, "acts": acts, "best": best, "ranking": ranking}


def _colour(v):
    """Cell value in [-1, 1] -> background: blue for negative, red for positive."""
    v = float(np.clip(v, -1, 1))
    if v >= 0:
        return (255, int(255 * (1 - 0.8 * v)), int(255 * (1 - 0.8 * v)))
    return (int(255 * (1 + 0.8 * v)), int(255 * (1 + 0.8 * v)), 255)


def write_html(result, path, max_chars=4000):
    from suite.fileio import write_text

    text = result["text"][:max_chars]
    parts = ["<!doctype html><meta charset='utf-8'><title>suite text cells</title>",
             "<style>body{font-family:sans-serif;margin:2em} pre{font:13px/1.35 monospace;"
             "white-space:pre-wrap;border:1px solid #ccc;padding:8px} span{border-radius:2px}</style>",
             "<h1>Single cells of the character LSTM</h1>",
             "<p>Each character is coloured by one cell's value tanh(c) after reading it: "
             "<span style='background:#f33'>red</span> positive, "
             "<span style='background:#33f;color:#fff'>blue</span> negative. Pearson r with the feature.</p>"]
    for name in FEATURES:
        best = result["best"][name]
        values = result["acts"][best["layer"]][:len(text), best["cell"]]
        parts.append(f"<h2>{html.escape(name)}: layer {best['layer']} cell {best['cell']}, "
                     f"r = {best['r']:+.3f}</h2>")
        others = ", ".join(f"L{r['layer']}:{r['cell']} ({r['r']:+.2f})" for r in result["ranking"][name][1:])
        parts.append(f"<p>runners-up: {others}</p><pre>")
        for ch, v in zip(text, values):
            rgb = "#%02x%02x%02x" % _colour(v)
            parts.append(f"<span style='background:{rgb}' title='{v:+.2f}'>{html.escape(ch)}</span>"
                         if ch != "\n" else "\n")
        parts.append("</pre>")
    write_text(path, "".join(parts))


def write_png(result, path, lines=30, cols=90):
    """One panel per feature: the first `lines` lines, characters on a fixed grid, coloured."""
    from PIL import Image, ImageDraw, ImageFont

    from suite.fileio import atomic_path

    font = ImageFont.load_default(size=13)
    cw, lh = 8, 16
    text_lines = result["text"].split("\n")[:lines]
    panel_h = 22 + lh * len(text_lines)
    img = Image.new("RGB", (cols * cw + 20, panel_h * len(FEATURES) + 10), "white")
    draw = ImageDraw.Draw(img)
    y0 = 5
    for name in FEATURES:
        best = result["best"][name]
        values = result["acts"][best["layer"]][:, best["cell"]]
        draw.text((10, y0), f"{name}: layer {best['layer']} cell {best['cell']}  r = {best['r']:+.3f}",
                  fill="black", font=font)
        offset = 0
        for row, line in enumerate(text_lines):
            y = y0 + 20 + row * lh
            for col, ch in enumerate(line[:cols]):
                x = 10 + col * cw
                draw.rectangle([x, y, x + cw - 1, y + lh - 1], fill=_colour(values[offset + col]))
                if ch.strip():
                    draw.text((x, y + 1), ch, fill="black", font=font)
            offset += len(line) + 1
        y0 += panel_h
    with atomic_path(path, suffix=".png") as tmp:
        img.save(tmp, format="PNG")
