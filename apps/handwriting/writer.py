"""The writer: handwriting synthesis after Graves 2013 ("Generating sequences with recurrent neural networks").

    pen input x_t (dx, dy, pen_up, hand one-hot)
      -> WindowLSTM (suite.nn.window): an LSTM whose soft window over the text's characters moves along as it
         writes; its hidden state h1 and the window vector w_t (the characters in view)
      -> LSTM over [x_t, h1, w_t]
      -> mixture density output (kernels/mdn.py): M bivariate Gaussians for the next offset, a Bernoulli for
         lifting the pen

Trained on Hershey script strokes with jitter (strokes.py), the only pen data here; the hand is an input, so
``write --hand`` picks the face. Sampling follows the paper's bias b (section 5.4): mixture weights
softmax((1 + b) pi), deviations exp(log s - b); b = 0 samples the model as trained, larger b writes more
legibly and with less variety. A line ends when the window has moved past the last character (phi at
position U above every phi inside the text, the paper's rule) or after MAX_STEPS_PER_CHAR points a character.

Legibility is measured with our own reader: the CER of `suite handwriting read` on written lines, by bias,
beside the same reader on the Hershey faces themselves drawn by the same pen (export_writer).
"""
from dataclasses import asdict, dataclass

import numpy as np

from suite.kernels.mdn import mdn_nll, mdn_size
from suite.nn import Linear, Module, Recurrent
from suite.nn.window import WindowLSTM

APP = "handwriting"
MODEL_NAME = "HandwritingWriter"
MAX_STEPS_PER_CHAR = 40
MAX_TEXT = 200          # characters one `write` call draws (longer text: several calls or lines)


def writer_chars():
    """The characters the writer can draw: the reader's alphabet without the CTC blank."""
    from suite.apps.handwriting.data import CHARS

    return list(CHARS[1:])


@dataclass
class WriterConfig:
    vocab_size: int            # characters the window reads (meta.chars)
    hands: int = 3             # Hershey script faces (strokes.HANDS), a one-hot input
    hidden: int = 128          # units of each LSTM (the shipped writer: 128, trained in about an hour)
    mixtures: int = 20         # bivariate Gaussians of the output (the paper's 20)
    bumps: int = 10            # Gaussians of the soft window (the paper's 10)
    scale: float = 2.5         # pen offsets are divided by this (EM units) to be about unit-sized
    seed: int = 0


class WriterModel(Module):
    def __init__(self, config: WriterConfig):
        self.config = c = config
        rng = np.random.default_rng(c.seed)
        D = 3 + c.hands
        self.window = WindowLSTM(D, c.hidden, c.vocab_size, c.bumps, rng=rng)
        self.rnn = Recurrent(D + c.hidden + c.vocab_size, c.hidden, seed=c.seed + 1)
        self.out = Linear(c.hidden, mdn_size(c.mixtures), rng=rng)
        self._sizes = None

    def forward(self, x, lengths, chars, n_chars, state=None):
        """x (T, B, 3 + hands) -> MDN outputs (T, B, 6M + 1), state, (phi (T, B, U), window (T, B, 3K))."""
        s1, s2 = state if state is not None else (None, None)
        h1, w, phi, window, s1 = self.window.forward(x, lengths, chars, n_chars, s1)
        h2, s2 = self.rnn.forward(np.concatenate([x, h1, w], axis=2), lengths=lengths, state=s2)  # (T, B, H)
        self._sizes = (x.shape[2], h1.shape[2])
        return self.out.forward(h2), (s1, s2), (phi, window)

    def backward(self, dout):
        D, H = self._sizes
        din = self.rnn.backward(self.out.backward(dout))  # (T, B, D + H + V)
        self.window.backward(np.ascontiguousarray(din[:, :, D:D + H]), np.ascontiguousarray(din[:, :, D + H:]))


def config_dict(config):
    return {"model": MODEL_NAME} | asdict(config)


def build_model(config, meta):
    chars = meta.get("chars")
    if not isinstance(chars, list) or len(chars) != config.get("vocab_size") or \
            not all(isinstance(ch, str) and len(ch) == 1 for ch in chars):
        raise ValueError("meta.chars must list vocab_size single characters")
    if meta.get("hands") is None or len(meta["hands"]) != config.get("hands"):
        raise ValueError("meta.hands must list the config's hands")
    return WriterModel(WriterConfig(**config))


def load_writer(model_dir):
    """(WriterModel, card) from a writer folder; one-line CheckpointError otherwise."""
    from suite.shipped import load_app_model

    return load_app_model(model_dir, APP, MODEL_NAME, build_model)


# -- batches ------------------------------------------------------------------------------------------------

def encode(text, chars):
    """Character ids of ``text``; ValueError naming the characters the writer cannot draw."""
    index = {ch: i for i, ch in enumerate(chars)}
    missing = sorted({ch for ch in text if ch not in index})
    if missing:
        raise ValueError(f"cannot write {''.join(missing)!r}: the writer draws only letters, digits, space and "
                         f"{''.join(ch for ch in chars if not ch.isalnum() and ch != ' ')}")
    return [index[ch] for ch in text]


def pack(seqs, hands, texts, chars, config):
    """Lines -> (x (T, B, 3 + hands), targets (T, B, 3), lengths, char ids (B, U), n_chars).

    The input at step t is the point before (a pen-up start point first); the target is the point itself."""
    B, T = len(seqs), max(len(s) for s in seqs)
    x = np.zeros((T, B, 3 + config.hands), np.float32)
    targets = np.zeros((T, B, 3), np.float32)
    for b, (seq, hand) in enumerate(zip(seqs, hands)):
        seq = seq.copy()
        seq[:, :2] /= config.scale
        targets[:len(seq), b] = seq
        x[0, b, 2] = 1.0
        x[1:len(seq), b, :3] = seq[:-1]
        x[:len(seq), b, 3 + hand] = 1.0
    return (x, targets, np.array([len(s) for s in seqs])) + char_matrix(texts, chars)


def char_matrix(texts, chars):
    """(char ids (B, U) padded with 0, n_chars (B,)) of the texts; ValueError as encode."""
    ids = [encode(t, chars) for t in texts]
    char_ids = np.zeros((len(ids), max([len(i) for i in ids] + [1])), np.int64)
    for b, i in enumerate(ids):
        char_ids[b, :len(i)] = i
    return char_ids, np.array([len(i) for i in ids])


def short_piece(text, rng, max_chars):
    """A run of whole words of ``text`` at most max_chars long (a word cut if it alone is longer)."""
    words = text.split()
    start = int(rng.integers(len(words)))
    piece = words[start][:max_chars]
    for word in words[start + 1:]:
        if len(piece) + 1 + len(word) > max_chars or rng.random() < 0.15:
            break
        piece += " " + word
    return piece


def draw_piece(texts, rng, chars, max_chars):
    """A short piece (short_piece) of a text drawn from ``texts``, keeping only the writer's characters; may be
    empty."""
    return "".join(ch for ch in short_piece(texts[int(rng.integers(len(texts)))], rng, max_chars)
                   if ch in chars).strip()


class WriterTask:
    """Training lines drawn fresh each step: a short piece of English in a random Hershey script hand, jittered."""

    def __init__(self, texts, valid_texts, chars, config, batch_size=32, max_chars=20, valid_lines=96):
        from suite.apps.handwriting.strokes import HANDS

        self.texts, self.chars, self.config = texts, chars, config
        self.batch_size, self.max_chars, self.hands = batch_size, max_chars, HANDS[:config.hands]
        rng = np.random.default_rng(12345)  # the validation lines are the same at every evaluation
        self.valid = [self._line(valid_texts, rng) for _ in range(valid_lines)]

    def _line(self, texts, rng):
        from suite.apps.handwriting.strokes import training_line

        while True:
            text = draw_piece(texts, rng, self.chars, self.max_chars)
            hand = int(rng.integers(len(self.hands)))
            seq = training_line(text, self.hands[hand], rng) if text else None
            if seq is not None and len(seq) > 1:
                return seq, hand, text

    def train_batch(self, rng):
        return [self._line(self.texts, rng) for _ in range(self.batch_size)]

    def loss_and_grad(self, model, batch):
        x, targets, lengths, ids, n_ids = pack(*zip(*batch), self.chars, self.config)
        out, _, _ = model.forward(x, lengths, ids, n_ids)
        T, B, W = out.shape
        mask = (np.arange(T)[:, None] < lengths[None, :]).astype(np.float64)  # (T, B)
        n = float(mask.sum())
        loss, dout = mdn_nll(out.reshape(T * B, W), targets.reshape(T * B, 3), mask.reshape(-1) / n)
        model.backward(dout.reshape(T, B, W))
        return loss, n

    def evaluate(self, model):
        """Mean NLL (nats) per point of the validation lines, and per line."""
        total = points = 0.0
        for k in range(0, len(self.valid), self.batch_size):
            x, targets, lengths, ids, n_ids = pack(*zip(*self.valid[k:k + self.batch_size]), self.chars,
                                                   self.config)
            out, _, _ = model.forward(x, lengths, ids, n_ids)
            T, B, W = out.shape
            mask = (np.arange(T)[:, None] < lengths[None, :]).astype(np.float64).reshape(-1)
            loss, _ = mdn_nll(out.reshape(T * B, W), targets.reshape(T * B, 3), mask)
            total, points = total + loss, points + mask.sum()
        return {"loss": total / points, "nats_per_line": total / len(self.valid)}


# -- writing ------------------------------------------------------------------------------------------------

def sample_points(out, bias, rng):
    """One pen offset per row from MDN outputs (B, 6M + 1) under sampling bias ``bias``: (B, 3) in model units."""
    B, W = out.shape
    M = (W - 1) // 6
    out = out.astype(np.float64)
    logits = out[:, 1:1 + M] * (1.0 + bias)
    pi = np.exp(logits - logits.max(axis=1, keepdims=True))
    pi /= pi.sum(axis=1, keepdims=True)
    j = np.array([rng.choice(M, p=p) for p in pi])
    rows = np.arange(B)
    mu1, mu2 = out[rows, 1 + M + j], out[rows, 1 + 2 * M + j]
    s1, s2 = np.exp(out[rows, 1 + 3 * M + j] - bias), np.exp(out[rows, 1 + 4 * M + j] - bias)
    rho = np.tanh(out[rows, 1 + 5 * M + j])
    z1, z2 = rng.standard_normal(B), rng.standard_normal(B)
    up = rng.random(B) < 1.0 / (1.0 + np.exp(-out[:, 0]))
    return np.column_stack([mu1 + s1 * z1, mu2 + s2 * (rho * z1 + np.sqrt(1 - rho * rho) * z2), up])


def _past_the_end(window, n_chars):
    """Rows whose window has moved past their last character: phi(U) > phi(u) for every u < U."""
    K = window.shape[1] // 3
    a, b, kappa = window[:, :K], window[:, K:2 * K], window[:, 2 * K:]
    done = np.zeros(len(window), bool)
    for r, n in enumerate(n_chars):
        u = np.arange(n + 1)[:, None]
        phi = (a[r] * np.exp(-b[r] * (kappa[r] - u) ** 2)).sum(axis=1)  # (n + 1,)
        done[r] = phi[n] > phi[:n].max(initial=0.0)
    return done


def write_lines(model, card, texts, hand=0, bias=1.0, seed=0):
    """Pen offsets (N, 3) in EM units for each text, all written side by side as one batch.

    Returns a list of (N, 3) arrays."""
    meta = card["meta"]
    chars, c = meta["chars"], model.config
    char_ids, n_chars = char_matrix(texts, chars)
    B, U = char_ids.shape
    rng = np.random.default_rng(seed)
    x = np.zeros((1, B, 3 + c.hands), model.dtype)
    x[0, :, 2] = 1.0
    x[0, :, 3 + hand] = 1.0
    active = n_chars > 0
    points = [[] for _ in range(B)]
    state = None
    for step in range(MAX_STEPS_PER_CHAR * U):
        if not active.any():
            break
        out, state, (_, window) = model.forward(x, active.astype(np.int64), char_ids, n_chars, state)
        pts = sample_points(out[0], bias, rng)
        done = _past_the_end(window[0].astype(np.float64), n_chars)
        for b in np.flatnonzero(active):
            points[b].append(pts[b])
        x[0, :, :3] = pts
        active &= ~done
    lines = []
    for b in range(B):
        seq = np.array(points[b], np.float64).reshape(-1, 3)
        seq[:, :2] *= c.scale
        if len(seq):
            seq[-1, 2] = 1.0
        lines.append(seq)
    return lines


def chunks(line, max_chars):
    """A line cut into pieces of whole words at most max_chars long (the lengths the writer learnt); a longer
    word is cut into max_chars pieces."""
    pieces, current = [], ""
    for word in line.split():
        while len(word) > max_chars:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:max_chars])
            word = word[max_chars:]
        if current and len(current) + 1 + len(word) > max_chars:
            pieces.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return pieces + ([current] if current else [])


LINE_GAP, WORD_GAP = 1.6, 0.35  # in EM units: baseline to baseline, and between pieces written apart


def write_text(model, card, text, hand=0, bias=1.0, seed=0):
    """Strokes (absolute, EM units, y up) of ``text``: each line of it cut into pieces (chunks), the pieces of
    all lines written as one batch, then laid out left to right, lines top to bottom.

    Returns (strokes, pieces) with pieces [{"text", "line", "points"}]."""
    from suite.apps.handwriting.strokes import EM, from_offsets

    chars = card["meta"]["chars"]
    if len(text) > MAX_TEXT:
        raise ValueError(f"text is {len(text)} characters; write at most {MAX_TEXT} a call")
    encode(text.replace("\n", " "), chars)  # every character drawable, before any work
    lines = [chunks(line, card["meta"].get("max_chars", 20)) for line in text.split("\n")]
    flat = [(li, piece) for li, pieces in enumerate(lines) for piece in pieces]
    if not flat:
        return [], []
    seqs = write_lines(model, card, [piece for _, piece in flat], hand=hand, bias=bias, seed=seed)
    strokes, cursor, current, info = [], 0.0, 0, []
    for (li, piece), seq in zip(flat, seqs):
        if li != current:
            cursor, current = 0.0, li
        drawn = from_offsets(seq)
        info.append({"text": piece, "line": li, "points": len(seq)})
        if not drawn:
            continue
        x0 = min(s[:, 0].min() for s in drawn)
        x1 = max(s[:, 0].max() for s in drawn)
        middle = np.median(np.concatenate([s[:, 1] for s in drawn]))  # pieces share a middle line, not a start
        shift = np.array([cursor - x0, -li * LINE_GAP * EM - middle + 0.3 * EM])
        strokes += [s + shift for s in drawn]
        cursor += (x1 - x0) + WORD_GAP * EM
    return strokes, info


# -- legibility and export ----------------------------------------------------------------------------------

LEGIBILITY_BIASES = (0.0, 0.5, 1.0, 2.0, 5.0)
LEGIBILITY_TEXTS = 100  # test pieces per hand


def legibility(model, card, reader, texts, biases=LEGIBILITY_BIASES, seed=0, progress=None):
    """The reader's CER on written lines, by bias and hand, beside the Hershey faces drawn by the same pen.

    texts: held-out pieces; every hand writes every text. Returns {"written": {bias: {...}}, "hershey": {...}}."""
    from suite.apps.handwriting.strokes import DISTINCT_HANDS, HANDS, draw_png, from_offsets, hershey_strokes
    from suite.ctc_task import error_rates, error_rates_by

    hands = [h for h in DISTINCT_HANDS if HANDS.index(h) < model.config.hands]

    def read(strokes_list):
        read = reader.read_grays([draw_png(s) for s in strokes_list], layout="line")  # one batched network pass
        return [" ".join(r["text"] for r in results) for results, _ in read]

    refs, groups = [], []
    for hand in hands:
        refs += list(texts)
        groups += [hand] * len(texts)
    report = {"texts": len(texts), "hands": list(hands)}
    hyps = read([hershey_strokes(t, hand) for hand in hands for t in texts])
    report["hershey"] = error_rates(refs, hyps) | {"by_hand": error_rates_by(groups, refs, hyps)}
    written = {}
    total = len(biases) * len(hands)
    for bi, bias in enumerate(biases):
        drawn = []
        for hi, hand in enumerate(hands):
            seqs = write_lines(model, card, list(texts), hand=HANDS.index(hand), bias=bias,
                               seed=seed + 1000 * bi + hi)
            drawn += [from_offsets(s) for s in seqs]
            if progress is not None:
                progress(bi * len(hands) + hi + 1, total)
        hyps = read(drawn)
        written[str(bias)] = error_rates(refs, hyps) | {"by_hand": error_rates_by(groups, refs, hyps),
                                                        "examples": [{"ref": r, "hyp": h} for r, h in
                                                                     list(zip(refs, hyps))[:3]]}
    report["written"] = written
    return report


def test_texts(n, max_chars, seed=0):
    """n held-out pieces (the test split of data.text_pieces), each a run of whole words of at most max_chars."""
    from suite.apps.handwriting.data import text_pieces

    chars = set(writer_chars())
    rng = np.random.default_rng([seed, 7])
    pool = text_pieces()["test"]
    out = []
    while len(out) < n:
        text = draw_piece(pool, rng, chars, max_chars)
        if text:
            out.append(text)
    return out


def export_writer(best_dir, export_dir, reader_dir=None, export_command=None, progress=None,
                  n_texts=LEGIBILITY_TEXTS, biases=LEGIBILITY_BIASES):
    """Publish a trained writer with a card: the test NLL per point (Hershey lines of test texts, never trained
    on) and the legibility table, read by the reader model in ``reader_dir`` (default: the shipped one)."""
    from suite.apps.handwriting.data import text_pieces
    from suite.apps.handwriting.model import Reader, load_model
    from suite.card import make_card, reproduce_line, training_record
    from suite.shipped import default_model_dir, publish_model

    model, card = load_writer(best_dir)
    meta = card["meta"]
    max_chars = meta.get("max_chars", 20)
    pieces = text_pieces()
    held_out = WriterTask(pieces["train"][:1], pieces["test"], meta["chars"], model.config, max_chars=max_chars,
                          valid_lines=192)
    nll = held_out.evaluate(model)
    reader_dir = reader_dir or default_model_dir("handwriting")
    reader_model, reader_card = load_model(reader_dir)
    reader = Reader(reader_model, reader_card)
    table = legibility(model, card, reader, test_texts(n_texts, max_chars), biases=biases, progress=progress)
    table["reader"] = str(reader_dir)
    training = training_record(best_dir, meta, export_command=export_command)
    c = model.config
    card_out = make_card(
        "handwriting",
        f"handwriting synthesis (Graves 2013): LSTM ({c.hidden}) with a soft window of {c.bumps} Gaussians over "
        f"the text -> LSTM ({c.hidden}) -> {c.mixtures}-component bivariate Gaussian mixture + pen-up Bernoulli",
        config=card["config"],
        data=meta["data"] | {"hands": meta["hands"], "max_chars": max_chars},
        training=training,
        metrics={"how": "test_nll: mean negative log-likelihood (nats) per pen point of 192 jittered Hershey lines "
                        "of test-split texts (never trained on); legibility: `suite handwriting read` (the reader "
                        f"model named) on {n_texts} test texts written by each hand at each sampling bias, "
                        "CER/WER against the text; hershey: the same reader on the same texts in the Hershey faces "
                        "themselves, drawn by the same pen",
                 "test_nll_per_point": round(float(nll["loss"]), 4),
                 "test_nll_per_line": round(float(nll["nats_per_line"]), 2),
                 "legibility": table},
        reproduce=reproduce_line(training["command"], export_command))
    return publish_model(best_dir, export_dir, card_out)
