"""The handwriting model: conv+ReLU(+pool) blocks over a line -> columns as time steps -> deep BiLSTM -> CTC.

The shape of PyLaia (Puigcerver 2017) and Calamari, small for this CPU: a
line at LINE_HEIGHT (32) rows goes through 3x3 conv + ReLU blocks, the first
two followed by a 2x2 max-pool, so each model step covers 4 columns
and sees 8 rows x C channels; those are the features of a stacked
bidirectional LSTM whose outputs are characters, trained with CTC
(suite.ctc_task).

Also here: the Reader (image file -> lines -> text, confidence, word x-ranges),
evaluation of a test folder by hand, the Tesseract peer on the same lines, and
export with the model card.
"""
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from suite import ctc_task
from suite.apps.handwriting import READ_BEAM
from suite.device import on_device
from suite.ctc_task import CTCDecoder, CTCTask, error_rates, error_rates_by, split_logits
from suite.nn import Linear, Module, Recurrent
from suite.nn.conv import Conv2d, MaxPool2d, ReLU

MODEL_NAME = "HandwritingCTC"
POOLED_BLOCKS = 2  # blocks followed by a 2x2 max-pool: 4 columns a step, LINE_HEIGHT / 4 rows


@dataclass
class HandwritingConfig:
    vocab_size: int                                               # characters incl. the CTC blank (id 0)
    height: int = 32                                              # rows of a line (lines.LINE_HEIGHT)
    channels: list = field(default_factory=lambda: [16, 32, 48])  # conv3x3+ReLU blocks; pools after the first 2
    hidden: int = 128                                             # LSTM units per direction
    layers: int = 2                                               # bidirectional layers
    dropout: float = 0.1                                          # between recurrent layers
    seed: int = 0


class HandwritingModel(Module):
    def __init__(self, config: HandwritingConfig):
        if len(config.channels) < POOLED_BLOCKS or config.height % 2 ** POOLED_BLOCKS:
            raise ValueError(f"need at least {POOLED_BLOCKS} conv blocks and a height divisible by "
                             f"{2 ** POOLED_BLOCKS}, got channels {config.channels}, height {config.height}")
        self.config = config
        rng = np.random.default_rng(config.seed)
        layers, c_in = [], 1
        for k, c_out in enumerate(config.channels):
            layers += [Conv2d(c_in, c_out, 3, padding=1, rng=rng, input_grad=k > 0), ReLU()]
            if k < POOLED_BLOCKS:
                layers.append(MaxPool2d(2))
            c_in = c_out
        self.conv = layers
        self.rows = config.height // 2 ** POOLED_BLOCKS
        self.rnn = Recurrent(c_in * self.rows, config.hidden, num_layers=config.layers, kind="lstm",
                             bidirectional=True, dropout=config.dropout, seed=int(rng.integers(2**31)))
        self.out = Linear(self.rnn.output_size, config.vocab_size, rng=rng)

    @staticmethod
    def steps(lengths):
        """Model steps of lines ``lengths`` columns wide (the pools floor; at least one)."""
        return np.maximum(np.asarray(lengths, dtype=np.int64) // 2 ** POOLED_BLOCKS, 1)

    def forward(self, feats, lengths):
        """feats (T, B, height) ink columns 0..255 (zero-padded), lengths (B,) -> logits (T', B, C), steps (B,).

        Reading (eval mode), each line's feature columns past its own width (rounded up to whole pooling windows)
        are zeroed after every convolution, as the convolution's own zero padding is when the line is read
        alone, so a line reads the same in any batch. Training keeps them (the shipped models learnt so)."""
        T, B, H = feats.shape
        pad = (-T) % 2 ** POOLED_BLOCKS  # whole pooling windows, so the last columns are not dropped
        x = np.zeros((B, 1, H, T + pad), dtype=self.dtype)  # (B, 1, H, W)
        x[:, 0, :, :T] = np.asarray(feats, dtype=self.dtype).transpose(1, 2, 0) * np.float32(1 / 255)
        lengths = np.asarray(lengths, dtype=np.int64)
        widths = None if self.training else lengths + (-lengths) % 2 ** POOLED_BLOCKS  # (B,) as read alone
        for layer in self.conv:
            x = layer.forward(x)  # ends (B, C, rows, T')
            if widths is None:
                continue
            if isinstance(layer, MaxPool2d):
                widths = widths // 2
            elif isinstance(layer, Conv2d) and (widths < x.shape[3]).any():
                _zero_past(x, widths)
        _, C, R, Tp = x.shape
        self._shape = tuple(x.shape)
        if on_device(x):
            from suite.kernels.cuda.elementwise import permute

            seq = permute(x, (3, 0, 1, 2)).reshape(Tp, B, C * R)
        else:
            seq = np.ascontiguousarray(x.transpose(3, 0, 1, 2).reshape(Tp, B, C * R))  # (T', B, C*rows)
        steps = np.minimum(self.steps(lengths), Tp)
        y, _ = self.rnn.forward(seq, steps)  # (T', B, 2H)
        return self.out.forward(y), steps

    def backward(self, dlogits):
        B, C, R, Tp = self._shape
        dseq = self.rnn.backward(self.out.backward(dlogits))  # (T', B, C*rows)
        if on_device(dseq):
            from suite.kernels.cuda.elementwise import permute

            dx = permute(dseq.reshape(Tp, B, C, R), (1, 2, 3, 0))
        else:
            dx = np.ascontiguousarray(dseq.reshape(Tp, B, C, R).transpose(1, 2, 3, 0))  # (B, C, rows, T')
        for layer in reversed(self.conv):
            dx = layer.backward(dx)
            if dx is None:  # the first conv has no input gradient
                break


def _zero_past(x, widths):
    """x (B, C, H, W), host or device, with x[b, ..., widths[b]:] zeroed in place."""
    if on_device(x):
        from suite.kernels.cuda.elementwise import zero_past

        zero_past(x, widths)
    else:
        for b, w in enumerate(widths):
            x[b, :, :, w:] = 0


def take_weights(model, init_model):
    """Start a fine-tune from ``init_model``'s weights. An output layer with more characters (new ones in a
    user's data) keeps the old rows, and the new outputs start with the lowest old bias (rarely predicted
    until learnt)."""
    state = init_model.state_dict()
    mine = model.state_dict()
    for name, value in state.items():
        if mine[name].shape == value.shape:
            mine[name] = value
        else:  # out.W (H, C) and out.b (C,): the first C_old outputs are the old characters
            mine[name] = mine[name].copy()
            mine[name][..., :value.shape[-1]] = value
            if value.ndim == 1:
                mine[name][value.shape[-1]:] = value.min()
    model.load_state_dict(mine)


def config_dict(config: HandwritingConfig):
    return {"model": MODEL_NAME} | asdict(config)


def augment(columns, rng):
    """A training line's (W, 32) ink columns, lightly changed: ink strength and a little noise (float32 0..255)."""
    x = columns.astype(np.float32) * np.float32(rng.uniform(0.7, 1.15))
    if rng.random() < 0.3:
        x += rng.normal(0, 12, x.shape).astype(np.float32)
    return np.clip(x, 0, 255)


def ctc_min_steps(labels):
    """Model steps CTC needs to emit ``labels``: one a label, plus a blank between each pair of repeats."""
    labels = np.asarray(labels)
    return len(labels) + int(np.count_nonzero(labels[1:] == labels[:-1])) if len(labels) else 1


def reshape_line(columns, rng, labels):
    """A training line's (W, height) columns at another width and glyph height (geometry augmentation).

    Width x0.65-1.5 (log-uniform; never so narrow that CTC could not emit
    ``labels``): fonts are narrower or wider than the training fonts. Glyphs
    0.6-1 of the rows, placed at a random height: a hand with tall ascenders
    and descenders leaves a small body once the line is scaled to its ink box.
    """
    w, h = columns.shape
    step = 2 ** POOLED_BLOCKS
    fx = float(np.exp(rng.uniform(np.log(0.65), np.log(1.5))))
    fx = max(fx, (ctc_min_steps(labels) + 2) * step / w)
    fy = float(rng.uniform(0.6, 1.0)) if rng.random() < 0.5 else 1.0
    new_w, new_h = max(int(round(w * fx)), 8), max(int(round(h * fy)), 4)
    small = resize_columns(columns, new_w, new_h)  # (new_w, new_h)
    out = np.zeros((new_w, h), np.float32)
    top = int(rng.integers(0, h - new_h + 1))
    out[:, top:top + new_h] = small
    return out


WARP_SHEAR = 0.25   # largest slant added (x shift per row), either way
WARP_SIGMA = 1.5    # the grid's random displacement (model pixels, standard deviation)
WARP_SPACING = 12   # columns between the grid's control points along the line


def warp_line(columns, rng):
    """A training line's (W, h) columns redrawn by a hand of its own: a slant of up to WARP_SHEAR either way and
    a random smooth distortion (control points every WARP_SPACING columns at the top, middle and bottom rows, each
    moved by a normal WARP_SIGMA pixels in x and y, the shift between them interpolated), in one bilinear
    resampling; 4 blank columns added at each end so that the slant does not push ink out. The corpus's
    lines are drawn once each (their slant and distortion fixed at build time); this draws each line anew every
    time training meets it (the random grid distortion of Wigington et al., 2017, for handwritten lines)."""
    from scipy.ndimage import map_coordinates, zoom

    pad = 4
    x = np.pad(np.asarray(columns, np.float32), ((pad, pad), (0, 0)))
    w, h = x.shape
    points = max(int(np.ceil(w / WARP_SPACING)) + 1, 2)
    grid = rng.normal(0.0, WARP_SIGMA, (2, points, 3)).astype(np.float32)  # (dx, dy) at each control point
    shift = np.stack([zoom(g, (w / points, h / 3), order=1, mode="nearest", grid_mode=True) for g in grid])
    shift = shift[:, :w, :h]
    cols, rows = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32), indexing="ij")
    slant = np.float32(rng.uniform(-WARP_SHEAR, WARP_SHEAR))
    src = np.stack([cols + shift[0] + slant * (rows - h / 2), rows + shift[1]])
    return map_coordinates(x, src, order=1, mode="constant", cval=0.0).astype(np.float32)


def resize_columns(columns, width, height=None):
    """A prepared line's (W, h) columns resampled (bilinear) to (width, height or h)."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(columns.T, dtype=np.float32), "F")
    size = (int(width), int(height or columns.shape[1]))
    return np.asarray(img.resize(size, Image.Resampling.BILINEAR), dtype=np.float32).T


def widen(columns, scale):
    """Columns stretched ``scale`` times in width (the reading width of meta.decoding.width_scale)."""
    if scale == 1.0 or not len(columns):
        return columns
    return resize_columns(columns, max(int(round(len(columns) * scale)), 8))


class HandwritingTask(CTCTask):
    """The CTC task (suite.ctc_task) over prepared lines, with ``augment`` on training lines, with probability
    ``warp`` a line redrawn (``warp_line``) and with probability ``geometry`` reshaped (``reshape_line``)."""

    def __init__(self, train, valid, alphabet, batch_size=24, augment_lines=True, geometry=0.0, warp=0.0):
        super().__init__(train, valid, alphabet, batch_size=batch_size, augment=augment if augment_lines else None)
        self.geometry = geometry
        self.warp = warp

    def batch_items(self, idx, rng):
        feats, labels = super().batch_items(idx, rng)
        if self.warp:
            feats = [warp_line(f, rng) if rng.random() < self.warp else f for f in feats]
        if self.geometry:
            feats = [reshape_line(f, rng, lab) if rng.random() < self.geometry else f for f, lab in zip(feats, labels)]
        return feats, labels


def build_model(config, meta):
    return HandwritingModel(HandwritingConfig(**config))


def load_model(model_dir):
    """(HandwritingModel, card) from a model folder; one-line CheckpointError otherwise."""
    from suite.nn.checkpoint import CheckpointError
    from suite.shipped import load_app_model

    model, card = load_app_model(model_dir, "handwriting", MODEL_NAME, build_model)
    meta = card["meta"]
    try:
        ctc_task.check_decoding_meta(meta, f"{model_dir}/config.json")
        check_width_scale(meta, f"{model_dir}/config.json")
        alphabet_of(card)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    return model, card


def alphabet_of(card):
    """The model's Alphabet, from its meta (a user's fine-tune may add characters); ValueError if malformed."""
    from suite.apps.handwriting.data import clean

    chars = (card.get("meta") or {}).get("alphabet")
    config = card["config"]
    if not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1 for c in chars[1:]) \
            or len(chars) != config.get("vocab_size") or " " not in chars:
        raise ValueError("meta.alphabet must be a list of vocab_size single characters (the blank first, "
                         "a space among them)")
    return ctc_task.Alphabet.from_chars(chars, normalize=clean)


class Reader(CTCDecoder):
    """Text from images with one loaded model: image -> lines (apps.handwriting.lines) -> BiLSTM -> CTC decoding.

    Word times of the CTC decoder are in model steps here (frame_seconds=1):
    ``read_gray`` turns them into image x coordinates.
    """

    def __init__(self, model, card, beam=None, use_lm=True, lm_weight=None):
        decoding = (card.get("meta") or {}).get("decoding") or {}
        super().__init__(alphabet_of(card), frame_seconds=1.0, beam=READ_BEAM if beam is None else beam,
                         lm=ctc_task.char_lm(card.get("meta")) if use_lm else None,
                         lm_weight=lm_weight if lm_weight is not None else decoding.get("lm_weight", 0.5),
                         bonus=decoding.get("bonus", 0.0))
        self.model = model
        self.card = card
        self.width_scale = float(decoding.get("width_scale", 1.0))

    def logits(self, columns):
        """(T', C) logits of one prepared line's (W, 32) columns, read as validation reads them
        (ctc_task.split_logits): only the line's own steps (the pooled tail of a width that is not a whole pooling
        window lies past the sequence's length, where the network's outputs mean nothing). The columns are first
        stretched by the model's reading width (``width_scale``, chosen on validation by ``tune_decoding``)."""
        return ctc_task.split_logits(self.model, [widen(columns, self.width_scale)])[0]

    def read_line(self, line):
        """{"text", "confidence", "words": [{"word", "x0", "x1"}], "box"} of one lines.Line."""
        return self._describe(line, self.logits(line.columns))

    def _describe(self, line, logits):
        """read_line's result from the line's logits."""
        from suite.kernels.losses import log_softmax

        text, tokens, words = self.decode(logits)
        # confidence: the mean probability of the best label over the steps that emit a character (blank steps,
        # most of a line and nearly always sure, would hide the doubtful letters); 1.0 when nothing is written
        probs = np.exp(log_softmax(logits.astype(np.float64)))
        best = probs.max(axis=1)
        emits = probs.argmax(axis=1) != self.alphabet.blank
        confidence = float(np.mean(best[emits])) if emits.any() else 1.0
        step = 2 ** POOLED_BLOCKS / self.width_scale  # columns of the prepared line per model step
        out_words = [{"word": w["word"], "x0": round(line.image_x(w["start"] * step), 1),
                      "x1": round(line.image_x(w["end"] * step), 1)} for w in words]
        return {"text": text, "confidence": round(confidence, 4), "words": out_words, "box": list(line.box)}

    @staticmethod
    def _cut(gray, layout):
        """The lines.Line objects of a grey image (see read_gray's layout)."""
        from suite.apps.handwriting.lines import page_lines, prepare_line

        if layout == "line":
            line = prepare_line(gray)
            return [] if line is None else [line]
        return page_lines(gray)

    def _read_cut(self, cut, together=None):
        """read_line's results for each list of lines in ``cut``: the network run over all of them at once (batched
        by width, as validation reads) when ``together``, else line by line; None: together on a GPU only (on
        this CPU batching never clearly paid: EVALUATE_BATCH)."""
        flat = [line for lines in cut for line in lines]
        if together is None:
            together = self.model.device != "cpu"
        if together:
            logits = ctc_task.split_logits(self.model, [widen(line.columns, self.width_scale) for line in flat])
        else:
            logits = [self.logits(line.columns) for line in flat]
        out, k = [], 0
        for lines in cut:
            out.append([self._describe(line, logits[k + j]) for j, line in enumerate(lines)])
            k += len(lines)
        return out

    def read_gray(self, gray, layout="auto"):
        """(results, lines) of a grey image: read_line's result for each lines.Line found, top to bottom.

        layout: "line" (the whole image is one line), "page" (cut into lines),
        or "auto" (cut, which gives one line for a line image). Both lists are
        empty for a blank image.
        """
        return self.read_grays([gray], layout)[0]

    def read_grays(self, grays, layout="auto"):
        """read_gray of many grey images, [(results, lines)] in order (their lines through the network together on
        a GPU)."""
        cut = [self._cut(gray, layout) for gray in grays]
        return list(zip(self._read_cut(cut), cut))

    def read_file(self, path, layout="auto", with_lines=False):
        """{"file", "text" (lines joined by newlines), "confidence" (the least sure line's), "lines"} of an image
        file, and with ``with_lines`` the lines.Line objects too; ImageError if the file cannot be read."""
        result = next(self.read_files([path], layout, with_lines=with_lines))
        if isinstance(result, Exception):
            raise result
        return result

    def read_files(self, paths, layout="auto", with_lines=False, batch=None):
        """Yield read_file's result for each path in order, or the ImageError that reading it raised. With batch > 1
        the lines of ``batch`` files at a time go through the network together, with 1 line by line; None: 32
        files a chunk, together on a GPU only (_read_cut). Each image is dropped once cut."""
        from suite.images import ImageError, read_image

        paths = list(paths)
        together, size = (None, 32) if batch is None else (batch > 1, batch)
        for start in range(0, len(paths), size):
            chunk = paths[start:start + size]
            cut = []
            for path in chunk:
                try:
                    cut.append(self._cut(read_image(path, mode="L"), layout))
                except ImageError as exc:
                    cut.append(exc)
            results = iter(self._read_cut([c for c in cut if not isinstance(c, ImageError)], together))
            for path, lines in zip(chunk, cut):
                if isinstance(lines, ImageError):
                    yield lines
                    continue
                found = next(results)
                out = {"file": str(path), "text": "\n".join(r["text"] for r in found),
                       "confidence": round(min((r["confidence"] for r in found), default=1.0), 4), "lines": found}
                yield (out, lines) if with_lines else out


LM_WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0)  # wider than speech's grid: on lines the LM's best weight was its edge, 1.0
CHAR_BONUSES = (0.0, 0.5, 1.0, 1.5, 2.0)


WIDTH_SCALES = (1.0, 1.15, 1.3, 1.45)  # reading widths tried on validation (models read hands wider than trained)


def scored_truth(split, alphabet):
    """(refs, groups) of a prepared split as validation scores it: each text as ``alphabet`` spells it, and each
    line's group, "digits" for digit strings, "text" for the rest."""
    refs = [alphabet.decode(alphabet.encode(t)) for t in split["texts"]]
    return refs, ["digits" if h == "digits" else "text" for h in split.get("hands", ["text"] * len(refs))]


def tune_decoding(model, card, split, beam=None, progress=None):
    """The reading width, LM weight and character bonus with the lowest CER on ``split`` (validation), digit
    strings and text lines weighing alike (the mean of their CERs).

    First the width: each line's columns stretched by each of WIDTH_SCALES and
    read greedily without the LM (a model reads unseen hands better somewhat
    wider than it was trained on: validation CER 5.7 -> 5.1 % on text lines at
    x1.3 for the stage-4 model); then, at that width, the LM weight and bonus
    (suite.ctc_task.tune_decoding).
    """
    reader = Reader(model, card, beam=beam)
    greedy = Reader(model, card, beam=1, use_lm=False)
    refs, groups = scored_truth(split, reader.alphabet)
    widths = []
    for scale in WIDTH_SCALES:
        logits = split_logits(model, [widen(f, scale) for f in split["features"]])
        by = error_rates_by(groups, refs, [greedy.decode(x)[0] for x in logits])
        widths.append({"width_scale": scale, "greedy_cer": round(sum(r["cer"] for r in by.values()) / len(by), 4)}
                      | {f"greedy_cer_{g}": r["cer"] for g, r in sorted(by.items())})
    best = min(widths, key=lambda r: r["greedy_cer"])  # ties: the narrower, 1.0 first
    logits = split_logits(model, [widen(f, best["width_scale"]) for f in split["features"]])
    tuned = ctc_task.tune_decoding(reader, logits, refs, lm_weights=LM_WEIGHTS, bonuses=CHAR_BONUSES,
                                   progress=progress, groups=groups, metric="cer")
    return {"width_scale": best["width_scale"]} | tuned | {"width_grid": widths}


def check_width_scale(meta, where):
    """ValueError (one line) unless meta.decoding.width_scale, when present, is a number from 0.5 to 3."""
    scale = (meta.get("decoding") or {}).get("width_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0.5 <= scale <= 3.0:
        raise ValueError(f"{where}: meta.decoding.width_scale must be a number from 0.5 to 3, got {scale!r}")


EVALUATE_BATCH = {"cpu": 1, "cuda": 32}
"""Files whose lines go through the network together in evaluate_folder, by where the model is. On the CPU
batching never clearly paid (bench/bench_handwriting.py, 200 test lines, one core, greedy, another job on the
other core each time: 70.7 lines/s one by one against 43.5 in batches of 32 files on 2026-12-06, 74.6 against
79.1 on 2026-12-07), so the CPU keeps the simpler one at a time; a GPU needs batches."""


def evaluate_folder(reader, tsv, progress=None, layout="line"):
    """CER/WER over a lines.tsv's images (read from file, as `read` does; on a GPU 32 files' lines through the
    network at once, EVALUATE_BATCH), overall and by hand, with seconds per line; DataError naming the first
    listed image that cannot be read."""
    from suite.apps.handwriting.data import clean, read_lines_tsv
    from suite.databuild import DataError
    from suite.images import ImageError

    rows = read_lines_tsv(tsv)
    refs, hyps, t0 = [], [], time.perf_counter()
    read = reader.read_files([path for path, _, _ in rows], layout, batch=EVALUATE_BATCH.get(reader.model.device, 1))
    for i, ((_, text, _), result) in enumerate(zip(rows, read)):
        if isinstance(result, ImageError):  # a score with a line missing would mislead: name it instead
            raise DataError(f"{str(result).splitlines()[0]} (listed in {tsv}: fix or remove its line)")
        refs.append(clean(text))
        hyps.append(result["text"].replace("\n", " "))
        if progress is not None:
            progress(i + 1, len(rows))
    elapsed = time.perf_counter() - t0
    return summarize(rows, refs, hyps, elapsed)


def summarize(rows, refs, hyps, elapsed):
    """Error rates overall and by hand, exact-match rate, seconds per line, a few examples."""
    report = error_rates(refs, hyps) | {"exact": round(float(np.mean([r == h for r, h in zip(refs, hyps)])), 4)}
    groups = error_rates_by([hand for _, _, hand in rows], refs, hyps)
    if len(groups) > 1:
        report["by_hand"] = dict(sorted(groups.items()))
    report["seconds_per_line"] = round(elapsed / max(len(rows), 1), 4)
    report["examples"] = [{"file": str(row[0]), "ref": r, "hyp": h} for row, r, h in list(zip(rows, refs, hyps))[:5]]
    return report


def tesseract_folder(tsv, progress=None):
    """Tesseract 5 (`--psm 7`, one text line, its English model) over the same lines.tsv: the peer's CER/WER.

    Raises FileNotFoundError when the tesseract command is not installed.
    """
    import shutil
    import subprocess

    from suite.apps.handwriting.data import clean, read_lines_tsv

    exe = shutil.which("tesseract")
    if exe is None:
        raise FileNotFoundError("tesseract is not installed (Debian: apt-get install tesseract-ocr)")
    rows = read_lines_tsv(tsv)
    refs, hyps, t0 = [], [], time.perf_counter()
    for i, (path, text, _) in enumerate(rows):
        run = subprocess.run([exe, str(path), "stdout", "--psm", "7", "-l", "eng"], capture_output=True, text=True,
                             env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin"})
        hyps.append(clean(run.stdout) if run.returncode == 0 else "")
        refs.append(clean(text))
        if progress is not None:
            progress(i + 1, len(rows))
    report = summarize(rows, refs, hyps, time.perf_counter() - t0)
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return report | {"peer": version.strip() or "tesseract"}


def fit_lm(texts, alphabet, order):
    """The character n-gram LM of decoding, fitted on training texts; None for order 0."""
    from suite.ctc import CharNGramLM

    return CharNGramLM.fit([alphabet.encode(t) for t in texts], order=order, vocab_size=alphabet.size) \
        if order else None


def export_model(best_dir, export_dir, data_dir, export_command=None, progress=None, against_tesseract=True,
                 lm_order=None):
    """Publish a trained model with a card of held-out CER/WER on every test set (data_dir/test/*/lines.tsv).

    lm_order: refit the character LM on data_dir's training texts with this
    order (a smaller LM than training stored, say); None keeps the model's.
    Decoding settings (LM weight, character bonus) are then chosen on
    validation and stored in the model's meta. Each test set is read from its
    image files, as `read` does: beam search with the LM, and greedy without
    it; beside them Tesseract on the same files when it is installed.
    """
    from pathlib import Path

    from suite.apps.handwriting.data import load_split, read_report
    from suite.card import make_card, reproduce_chain, training_record
    from suite.shipped import publish_model_with_meta

    model, card = load_model(best_dir)
    meta = dict(card.get("meta") or {})
    data_dir = Path(data_dir)
    tests = sorted(p.parent for p in data_dir.glob("test/*/lines.tsv"))
    if not tests:
        raise ValueError(f"{data_dir}: no test/*/lines.tsv; run `suite handwriting data build` first")
    if lm_order is not None:
        lm = fit_lm(load_split(data_dir, "train")["texts"], alphabet_of(card), lm_order)
        meta |= {"lm": lm.to_dict() if lm else None, "lm_order": lm_order}
        card = card | {"meta": meta}
    if (data_dir / "valid.npz").exists():
        meta["decoding"] = tune_decoding(model, card, load_split(data_dir, "valid"), progress=progress)
    card = card | {"meta": meta}
    beam, greedy = Reader(model, card), Reader(model, card, beam=1, use_lm=False)
    metrics = {}
    for folder in tests:
        tsv = folder / "lines.tsv"
        full = evaluate_folder(beam, tsv, progress=progress)
        plain = evaluate_folder(greedy, tsv)
        metrics[folder.name] = full | {"greedy_no_lm": {k: plain[k] for k in ("cer", "wer", "exact")}}
        if against_tesseract:
            try:
                peer = tesseract_folder(tsv)
                metrics[folder.name]["tesseract"] = {k: peer[k] for k in ("cer", "wer", "exact", "seconds_per_line",
                                                                          "peer")}
            except FileNotFoundError:
                metrics[folder.name]["tesseract"] = None
    training = training_record(best_dir, meta, export_command=export_command)
    report = read_report(data_dir)
    card_out = make_card(
        "handwriting",
        f"line at {model.config.height} px -> {len(model.config.channels)} conv3x3+ReLU blocks (2 with 2x2 max-pool) "
        f"-> {model.config.layers}-layer bidirectional LSTM ({model.config.hidden} units per direction) -> "
        "characters, CTC",
        config=card["config"],
        data={"source": str(data_dir), "report": report, "train_lines": meta.get("train_lines")},
        training=training,
        metrics={"how": "CER/WER (jiwer) and exact-line rate on each held-out test set, read from its PNG files "
                        "through the same path as `suite handwriting read`; beam search with the character LM unless "
                        "noted; Tesseract 5 --psm 7 on the same files", "test": metrics},
        reproduce=reproduce_chain(report.get("command"), training["command"], export_command),
        decoding=meta.get("decoding"))
    return publish_model_with_meta(model, card["config"], meta, export_dir, card_out)
