"""The caption model: CNN encoder -> additive attention -> LSTM decoder (Luong-style output).

Encoder: conv3x3 + ReLU + 2x2 max-pool blocks turn a (3, S, S) image (S = 64 or
128; plus two coordinate channels, "CoordConv", Liu et al. 2018, so features know
where they are) into an S/8 x S/8 grid of feature vectors: the memory the decoder attends
over. Each memory vector also carries its own (x, y), so an attended context
says *where* the attended thing is, which relations ("left of", "above") need.

Decoder: an LSTM over the previous words, started from a summary of the whole
image (the grid average-pooled to 4x4 (init_grid), flattened, projected: a layout sketch,
as Show, Attend and Tell start from the mean annotation); at every step the
additive attention (kernels/attention.py) reads the memory with the LSTM
output as the query; a second LSTM reads [h; context] (attention between
decoder layers, as in GNMT, Wu et al. 2016), so it remembers where earlier
words looked: "left of" compares the place just described with the next; and
the attentional hidden state tanh(W [h2; context]) predicts the next word
(Luong et al. 2015). Training runs both LSTMs over the whole caption at once
(teacher forcing), so it uses the sequence kernels.

Also here: the vocabulary built from training captions, decoding (beam search,
batched greedy; a model on the GPU runs its layers there and sends each step's
logits back for the choices), evaluation beside two baselines, and export with
the model card.
"""
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from suite.batching import pad_time_major
from suite.device import concat_last, host, on_device, softmax_cross_entropy, take_last
from suite.nn import Dropout, Embedding, Linear, Module, Recurrent
from suite.nn.attention import AdditiveAttention
from suite.nn.conv import Conv2d, MaxPool2d, ReLU
from suite.nn.decoder import AttentionDecoder, tanh, tanh_backward

MODEL_NAME = "ShowAttendTell"
PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
MAX_INPUT_SIZE = 512  # the largest image side a model may read (`caption data build --input-size` allows up to it)
MAX_BLUR = 4.0        # the largest input_blur a config may ask
BLUR_CHOICES = (0.0, 0.25, 0.5, 0.75, 1.0)  # the input_blur values export tries on the validation split

SPECIALS = [PAD, BOS, EOS, UNK]


@dataclass
class CaptionConfig:
    vocab_size: int
    input_size: int = 64                              # images are resized to input_size^2
    channels: list = field(default_factory=lambda: [24, 48, 64])  # one conv+pool block each
    embed: int = 48
    hidden: int = 192                                 # decoder LSTM units
    attn: int = 64                                    # additive attention size
    dropout: float = 0.1                              # on the attentional hidden state
    context_lstm: bool = True                         # a 2nd LSTM over [h; context] remembers where earlier
                                                      # words looked (relations compare two places)
    seed: int = 0
    init_grid: int = 0                                # the grid is average-pooled to init_grid^2 for the
                                                      # initial state; 0: half the grid's side
    factored: list = field(default_factory=list)      # word-id classes (colours, shapes, sizes) whose choice
                                                      # within the class reads the attended memory alone
    input_blur: float = 0.0                           # Gaussian sigma (input pixels) every image is smoothed
                                                      # by before the encoder; export chooses it on validation


class Vocab:
    """Words <-> ids with the four specials first (PAD=0, BOS=1, EOS=2, UNK=3)."""

    def __init__(self, words):
        self.words = list(SPECIALS) + [w for w in words if w not in SPECIALS]
        self.index = {w: i for i, w in enumerate(self.words)}

    @property
    def size(self):
        return len(self.words)

    def encode(self, tokens):
        unk = self.index[UNK]
        return np.array([self.index.get(t, unk) for t in tokens], dtype=np.int64)

    def decode(self, ids):
        return " ".join(self.words[i] for i in ids if i >= len(SPECIALS))

    def to_json(self):
        return self.words[len(SPECIALS):]

    @classmethod
    def from_json(cls, words):
        return cls(words)


def coord_channels(n):
    """(2, n, n) x and y in [-1, 1] for CoordConv and the memory positions."""
    c = np.linspace(-1.0, 1.0, n, dtype=np.float32)
    return np.stack([np.broadcast_to(c[None, :], (n, n)), np.broadcast_to(c[:, None], (n, n))])


def smooth(images, sigma):
    """images (B, C, H, W) -> float32, each channel blurred by a Gaussian of ``sigma`` pixels (mirrored at the
    borders, the kernel cut at 4 sigma: scipy.ndimage.gaussian_filter's defaults, without importing scipy on the
    command's path); ``sigma`` 0 returns them as they are."""
    if sigma <= 0:
        return images
    r = int(4 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    H, W = images.shape[2:]
    x = np.pad(np.asarray(images, dtype=np.float32), ((0, 0), (0, 0), (r, r), (r, r)), mode="symmetric")
    rows = sum(k[i] * x[:, :, i:i + H, :] for i in range(2 * r + 1))  # (B, C, H, W + 2r)
    return sum(k[i] * rows[:, :, :, i:i + W] for i in range(2 * r + 1))


class CaptionModel(AttentionDecoder, Module):
    """The CNN encoder here; the decoder (decode_step, decoder_backward) is suite.nn.decoder's."""

    def __init__(self, config: CaptionConfig):
        self.config = config
        if not (isinstance(config.input_blur, (int, float)) and 0 <= config.input_blur <= MAX_BLUR):
            raise ValueError(f"input_blur must be a number from 0 to {MAX_BLUR}, got {config.input_blur!r}")
        rng = np.random.default_rng(config.seed)
        layers, c_in = [], 5  # RGB + x, y
        for c_out in config.channels:
            first = not layers  # nothing below the first conv needs its input gradient
            layers += [Conv2d(c_in, c_out, 3, padding=1, rng=rng, input_grad=not first), ReLU(), MaxPool2d(2)]
            c_in = c_out
        self.encoder = layers
        self.grid = config.input_size // 2 ** len(config.channels)  # memory is grid x grid
        self.init_grid = config.init_grid or self.grid // 2
        if self.grid < 2 or self.init_grid < 1 or self.grid % self.init_grid:
            raise ValueError(f"input_size {config.input_size} with {len(config.channels)} pooling blocks "
                             f"leaves a {self.grid}x{self.grid} grid, which cannot be average-pooled to "
                             f"{self.init_grid}x{self.init_grid}; need an even grid >= 2 (init_grid dividing it)")
        self.pool = self.grid // self.init_grid  # side of the blocks averaged for the initial state
        self.mem_size = c_in + 2  # features + (x, y)
        self.init = Linear(self.init_grid ** 2 * c_in, 2 * config.hidden, rng=rng)
        self.embed = Embedding(config.vocab_size, config.embed, rng=rng)
        self.rnn = Recurrent(config.embed, config.hidden, seed=int(rng.integers(2**31)))
        self.attention = AdditiveAttention(config.hidden, self.mem_size, config.attn, rng=rng)
        self.rnn2 = (Recurrent(config.hidden + self.mem_size, config.hidden, seed=int(rng.integers(2**31)))
                     if config.context_lstm else None)
        self.combine = Linear(config.hidden + self.mem_size, config.hidden, rng=rng)
        self.drop = Dropout(config.dropout, rng=np.random.default_rng(int(rng.integers(2**31))))
        self.out = Linear(config.hidden, config.vocab_size, rng=rng)
        self._coords_in = coord_channels(config.input_size)
        self._coords_mem = coord_channels(self.grid).reshape(2, -1).T.copy()  # (N, 2)
        if config.factored:  # after every other layer: the same seed draws the same weights for the rest
            cols = [int(w) for group in config.factored for w in group]
            if (any(len(g) < 2 for g in config.factored) or len(set(cols)) != len(cols)
                    or not all(len(SPECIALS) <= w < config.vocab_size for w in cols)):
                raise ValueError(f"factored: classes of 2 or more distinct word ids from {len(SPECIALS)} to "
                                 f"{config.vocab_size - 1} expected, got {config.factored!r}")
            self._fact_cols = np.array(cols)
            self._fact_class = np.array([k for k, group in enumerate(config.factored) for _ in group])
            self.cls = Linear(config.hidden, len(config.factored), rng=rng)  # "a word of class k comes now"
            self.fact = Linear(self.mem_size, len(cols), rng=rng)           # which word of its class: memory alone

    # -- factored output ---------------------------------------------------------------
    def to_device(self, device):
        if device == "cuda" and self.config.factored:
            raise ValueError("a factored caption model (train --factored) runs on the CPU only: use --device cpu")
        return super().to_device(device)

    def output_logits(self, a, context):
        """With ``factored`` classes, a class word's logit is cls(a)[its class] + fact(context)[the word]: the
        decoder's state says that a colour (say) comes now, and which colour is read from the attended memory
        alone, so "blue" said just before cannot pull the next shape towards the shapes blue things had in
        training (a class-factored softmax, P(word) = P(class | state) P(word | class, memory)). Every other word
        is out(a)'s as without."""
        if not self.config.factored:
            return super().output_logits(a, context)
        ad = self.drop.forward(a)
        logits = self.out.forward(ad)  # (T, B, V)
        logits[..., self._fact_cols] = self.cls.forward(ad)[..., self._fact_class] + self.fact.forward(context)
        return logits

    def output_backward(self, dlogits):
        if not self.config.factored:
            return super().output_backward(dlogits)
        dfact = dlogits[..., self._fact_cols]  # (T, B, W), a copy
        dcls = np.zeros(dlogits.shape[:-1] + (len(self.config.factored),), dtype=dlogits.dtype)
        for k in range(len(self.config.factored)):
            dcls[..., k] = dfact[..., self._fact_class == k].sum(axis=-1)
        dout = dlogits.copy()
        dout[..., self._fact_cols] = 0  # out(a)'s logits of class words were replaced
        dad = self.out.backward(dout) + self.cls.backward(dcls)
        return self.drop.backward(dad), self.fact.backward(dfact)

    # -- encoder -------------------------------------------------------------------------
    def encode(self, images):
        """images (B, 3, S, S) float32 in [0, 1], smoothed by config.input_blur here -> memory (B, N, K), initial
        state ((1,B,H), (1,B,H))."""
        B = len(images)
        images = smooth(images, self.config.input_blur)
        x = np.concatenate([np.asarray(images, dtype=self.dtype),
                            np.broadcast_to(self._coords_in, (B,) + self._coords_in.shape)], axis=1)
        for layer in self.encoder:
            x = layer.forward(x)  # ends (B, C, g, g)
        C, g, k, p = x.shape[1], self.grid, self.pool, self.init_grid
        H = self.config.hidden
        coords = np.broadcast_to(self._coords_mem, (B, g * g, 2))
        if on_device(x):  # the same steps on the device's kernels
            from suite.kernels.cuda import to_device
            from suite.kernels.cuda.elementwise import avg_pool, permute

            feats = permute(x, (0, 2, 3, 1)).reshape(B, g * g, C)  # (B, N, C)
            memory = concat_last([feats, to_device(np.ascontiguousarray(coords, dtype=self.dtype))])
            z = tanh(self.init.forward(avg_pool(x, k).reshape(B, C * p * p)))  # (B, 2H)
        else:
            feats = x.transpose(0, 2, 3, 1).reshape(B, g * g, C)  # (B, N, C)
            memory = np.ascontiguousarray(np.concatenate([feats, coords], axis=2), dtype=self.dtype)
            pooled = x.reshape(B, C, p, k, p, k).mean(axis=(3, 5)).reshape(B, -1)  # (B, C*p^2)
            z = np.tanh(self.init.forward(pooled))  # (B, 2H)
        state = (take_last(z, 0, H).reshape(1, B, H), take_last(z, H, 2 * H).reshape(1, B, H))
        self._enc = (tuple(x.shape), z) if self.training else None
        return memory, state

    def encode_backward(self, dmemory, dstate0):
        shape, z = self._enc
        B, C, g, _ = shape
        k, p = self.pool, self.init_grid
        dz = tanh_backward(np.concatenate([dstate0[0][0], dstate0[1][0]], axis=1), z)  # (B, 2H)
        if on_device(z):
            from suite.kernels.cuda.elementwise import avg_pool_backward_into, permute

            dx = permute(take_last(dmemory, 0, C).reshape(B, g, g, C), (0, 3, 1, 2))
            avg_pool_backward_into(dx, self.init.backward(dz).reshape(B, C, p, p), k)
        else:
            dpooled = self.init.backward(dz).reshape(B, C, p, 1, p, 1)
            dx = np.broadcast_to(dpooled / float(k * k), (B, C, p, k, p, k)).reshape(B, C, g, g).copy()
            dx += dmemory[:, :, :C].reshape(B, g, g, C).transpose(0, 3, 1, 2)
        for layer in reversed(self.encoder):
            dx = layer.backward(dx)

    def loss_and_grad(self, images, inputs, targets):
        """Teacher-forced cross-entropy per word (PAD targets ignored); backward when training."""
        memory, state = self.encode(images)
        logits, _, _ = self.decode_step(inputs, state, memory)
        T, B, V = logits.shape
        loss, count, dlogits = softmax_cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=0)
        if self.training:
            dmemory, dstate0 = self.decoder_backward(dlogits.reshape(T, B, V))
            self.encode_backward(dmemory, dstate0)
        return loss, count


def config_dict(config: CaptionConfig):
    return {"model": MODEL_NAME} | asdict(config)


def teacher_batch(vocab, token_lists):
    """Token lists -> inputs (T, B) (BOS + words) and targets (T, B) (words + EOS, PAD-padded)."""
    seqs = [vocab.encode(t) for t in token_lists]
    inputs, _ = pad_time_major([np.concatenate([[1], s]) for s in seqs], pad_value=0, dtype=np.int64)
    targets, _ = pad_time_major([np.concatenate([s, [2]]) for s in seqs], pad_value=0, dtype=np.int64)
    return inputs, targets


class CaptionTask:
    """Trainer task: random (image, one of its reference captions) batches; valid loss per word."""

    def __init__(self, vocab, train_images, train_refs, valid_images, valid_refs, batch_size=32,
                 tokenize=str.split, first_only=False, word_dropout=0.0):
        self.vocab = vocab
        # word_dropout: the chance that an input word (never BOS, never a target) is fed as UNK, so the decoder
        # must name what the image shows rather than what usually follows the previous word (a colour word
        # followed by the shapes it was trained with): a known help for unseen combinations
        self.word_dropout = float(word_dropout)
        # first_only: learn one wording per image (shapes world: the canonical one, whose subject
        # is the left/upper object) instead of a random reference each time
        self.images = train_images
        self.refs = [[tokenize(c) for c in (r[:1] if first_only else r)] for r in train_refs]
        self.valid_images = valid_images
        self.valid_refs = [[tokenize(c) for c in r] for r in valid_refs]
        self.batch_size = batch_size

    def train_batch(self, rng):
        idx = rng.choice(len(self.images), size=min(self.batch_size, len(self.images)), replace=False)
        caps = [self.refs[i][rng.integers(len(self.refs[i]))] for i in idx]
        inputs, targets = teacher_batch(self.vocab, caps)
        if self.word_dropout > 0:  # no draw otherwise: runs without it repeat exactly
            drop = (rng.random(inputs.shape) < self.word_dropout) & (inputs > 2)  # words only: not PAD/BOS/EOS
            inputs = np.where(drop, self.vocab.index[UNK], inputs)
        return as_float(self.images[idx]), inputs, targets

    def loss_and_grad(self, model, batch):
        return model.loss_and_grad(*batch)

    def evaluate(self, model):
        total, count = 0.0, 0
        for start in range(0, len(self.valid_images), 128):
            imgs = as_float(self.valid_images[start:start + 128])
            caps = [r[0] for r in self.valid_refs[start:start + 128]]
            loss, n = model.loss_and_grad(imgs, *teacher_batch(self.vocab, caps))
            total += loss * n
            count += n
        return {"loss": total / max(count, 1)}


def as_float(images):
    """uint8 (B, 3, S, S) -> float32 in [0, 1] (float input passes through)."""
    images = np.asarray(images)
    return images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)


def grow_vocab(model, vocab, words):
    """(model, vocab) that also know ``words`` (new words of a fine-tune's captions): the same network with
    embedding rows and output columns added for them, every other weight copied. A new word's output bias
    starts at the lowest old bias, so the fine-tune does not begin by saying it everywhere."""
    from dataclasses import replace

    new = [w for w in words if w not in vocab.index]
    if not new:
        return model, vocab
    grown = Vocab(vocab.to_json() + new)
    bigger = CaptionModel(replace(model.config, vocab_size=grown.size))
    state, mine = model.state_dict(), bigger.state_dict()
    for name, value in state.items():
        target = mine[name]
        if target.shape == value.shape:
            mine[name] = value
        elif name == "embed.W":                    # (V, E): old rows kept
            target[:value.shape[0]] = value
        elif name == "out.W":                      # (H, V): old columns kept
            target[:, :value.shape[1]] = value
        elif name == "out.b":
            target[:value.shape[0]] = value
            target[value.shape[0]:] = value.min()
        else:
            raise ValueError(f"cannot grow {name}: {value.shape} -> {target.shape}")
    bigger.load_state_dict(mine)
    return bigger, grown


def at_input_size(model, size):
    """The same network reading (3, size, size) images: every weight is the same at any input size (convolutions,
    attention over however many memory cells, the decoder) as long as the initial state pools the grid to the
    same init_grid x init_grid, which the new config fixes. ``model`` itself when it already reads ``size``."""
    from dataclasses import replace

    if size == model.config.input_size:
        return model
    other = CaptionModel(replace(model.config, input_size=int(size), init_grid=model.init_grid)).to(model.dtype)
    other.load_state_dict(model.state_dict())
    return other


def caption_image(model, vocab, image, beam=5, max_len=30, length_penalty=0.7):
    """Beam search on one (3, S, S) image: list of dicts {caption, log_prob, tokens, attention (L, N)}."""
    return caption_beams(model, vocab, np.asarray(image)[None], beam, max_len, length_penalty)[0]


BEAM_BATCH = 32  # images whose beams caption_beams searches together (batch x beam decoder rows a step)


def caption_beams(model, vocab, images, beam=5, max_len=30, length_penalty=0.7, batch=BEAM_BATCH):
    """caption_image of many (3, S, S) images: their beams searched together, ``batch`` images (batch x beam
    decoder rows) a step (suite.beam.attention_beam_search, ranked by log_prob / (len + 1) ** length_penalty).
    A model on the device runs there; each step's logits and attention come back for the bookkeeping."""
    from suite.beam import attention_beam_search

    out = []
    for start in range(0, len(images), batch):
        memory, state = model.encode(as_float(images[start:start + batch]))
        for hyps in attention_beam_search(model, memory, state, None, beam=beam, max_len=max_len,
                                          length_penalty=length_penalty, nbest=beam, length_norm="power"):
            out.append([{"caption": vocab.decode(tokens), "log_prob": log_prob, "tokens": tokens,
                         "attention": attention} for tokens, log_prob, _, attention in hyps])
    return out


def greedy_batch(model, images, max_len=30):
    """Greedy captions of many images at once (validation, evaluation): list of token-id lists."""
    memory, state = model.encode(as_float(images))
    B = len(images)
    words = np.full((1, B), 1, dtype=np.int64)
    out = [[] for _ in range(B)]
    done = np.zeros(B, dtype=bool)
    for _ in range(max_len):
        logits, state, _ = model.decode_step(words, state, memory)
        words = host(logits).argmax(axis=2)  # (1, B)
        for b in np.flatnonzero(~done):
            if words[0, b] == 2:
                done[b] = True
            else:
                out[b].append(int(words[0, b]))
        if done.all():
            break
    return out


def factored_classes(vocab):
    """The word-id classes of CaptionConfig.factored for a vocabulary: sizes, colours, shapes (singular and plural),
    each with the words the vocabulary has (a class needs two)."""
    from suite.apps.caption.scenes import COLOURS, PLURALS, SHAPES, SIZES

    groups = (SIZES, COLOURS, SHAPES + tuple(PLURALS[s] for s in SHAPES))
    classes = [[int(vocab.index[w]) for w in group if w in vocab.index] for group in groups]
    return [c for c in classes if len(c) >= 2]


def build_model(config, meta):
    return CaptionModel(CaptionConfig(**config))


def load_model(model_dir):
    """(CaptionModel, Vocab, card) from a model folder; one-line CheckpointError otherwise."""
    from suite.shipped import load_app_model

    from suite.nn.checkpoint import CheckpointError

    model, card = load_app_model(model_dir, "caption", MODEL_NAME, build_model, limits={"input_size": MAX_INPUT_SIZE})
    try:
        vocab = Vocab.from_json(card["meta"].get("vocab") or [])
    except (TypeError, KeyError, ValueError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"{model_dir}: meta.vocab is not a vocabulary ({' '.join(str(exc).split())})") \
            from None
    if vocab.size != model.config.vocab_size:
        raise CheckpointError(f"{model_dir}: vocabulary has {vocab.size} words, model expects "
                              f"{model.config.vocab_size}")
    return model, vocab, card


def caption_images(model, vocab, images, beam=5, batch=64, progress=None, beams_out=None):
    """Captions for many (3, S, S) images: greedy in batches when beam == 1, else beam search over BEAM_BATCH
    images at a time (caption_beams; each image's beams are appended to ``beams_out`` when it is a list, for the
    confidence)."""
    out = []
    step = batch if beam == 1 else BEAM_BATCH
    for start in range(0, len(images), step):
        if beam == 1:
            out += [vocab.decode(t) for t in greedy_batch(model, images[start:start + step])]
        else:
            beams_of = caption_beams(model, vocab, images[start:start + step], beam=beam)
            out += [beams[0]["caption"] for beams in beams_of]
            if beams_out is not None:
                beams_out.extend(beams_of)
        if progress is not None:
            progress(len(out), len(images))
    return out


# -- confidence ----------------------------------------------------------------------------------------
def confidence_features(beams):
    """(2,) what the confidence is computed from: the best beam's log-probability and its lead over the next."""
    best = beams[0]["log_prob"]
    second = beams[1]["log_prob"] if len(beams) > 1 else best - 10.0
    return np.array([best, best - second], np.float64)


def fit_calibration(features, correct, l2=1e-3, iters=50):
    """Logistic regression p(correct) = sigmoid(w0 + w . features) by Newton's method (Platt scaling with two
    inputs); features (N, 2), correct (N,) bool. Returns [w0, w1, w2]."""
    X = np.column_stack([np.ones(len(features)), np.asarray(features, np.float64)])
    y = np.asarray(correct, np.float64)
    w = np.zeros(X.shape[1])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ w, -30, 30)))
        grad = X.T @ (p - y) + l2 * w
        hess = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return [round(float(v), 6) for v in w]


def calibrated(weights, features):
    """p(correct) of one caption (or many: features (N, 2)) under fitted weights."""
    f = np.asarray(features, np.float64)
    z = weights[0] + f @ np.asarray(weights[1:], np.float64)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def expected_calibration_error(probs, correct, bins=10):
    """ECE: the mean |accuracy - confidence| over equal-width confidence bins, weighted by their sizes."""
    probs, correct = np.asarray(probs, np.float64), np.asarray(correct, np.float64)
    which = np.minimum((probs * bins).astype(int), bins - 1)
    return float(sum(abs(correct[which == b].mean() - probs[which == b].mean()) * np.mean(which == b)
                     for b in range(bins) if np.any(which == b)))


def split_confidence(model, vocab, images, scenes, beam=5, beams_of=None):
    """(features (N, 2), correct (N,)): each image's best caption's confidence features and whether it is right
    (the exact object set and every stated relation holding). beams_of: the images' beams when already searched
    (evaluate's), else they are searched here."""
    from suite.apps.caption.data import score_caption

    if not beams_of or len(beams_of) != len(images):
        beams_of = caption_beams(model, vocab, images, beam=beam)
    feats, correct = [], []
    for beams, scene in zip(beams_of, scenes):
        s = score_caption(beams[0]["caption"], scene)
        feats.append(confidence_features(beams))
        correct.append(bool(s["object_set_exact"]) and s["relations_correct"] == s["relations_total"])
    return np.array(feats), np.array(correct)


def confidence(calibration, beams):
    """The probability that the best caption is right, as the model's card says to compute it (meta.calibration:
    {"method": "platt", "weights"} or {"method": "raw"}: exp(log_prob)); None when the model has no calibration."""
    return confidence_of_features(calibration, confidence_features(beams))


def confidence_of_features(calibration, feats):
    """``confidence`` from the features (confidence_features) of one caption, or of many (N, 2)."""
    if not isinstance(calibration, dict):
        return None
    feats = np.asarray(feats, np.float64)
    if calibration.get("method") == "platt" and len(calibration.get("weights") or []) == 3:
        return calibrated(calibration["weights"], feats)
    if calibration.get("method") == "raw":
        return np.exp(feats[..., 0])
    return None


def calibration_report(model, vocab, data_dir, splits, beam=5, beams_by_split=None):
    """Choose and fit the confidence on the validation split, and report its expected calibration error on each
    held-out split. The choice, between the sequence probability exp(log_prob) as it is and Platt scaling of
    [log_prob, margin over the second beam], is the lower ECE on one half of validation with Platt fitted on the
    other; the chosen Platt weights are then fitted on all of it. beams_by_split: {split: each image's beams} from
    evaluate, not searched again. Returns (meta.calibration, the card's entry)."""
    from suite.apps.caption.data import load_split

    images, _, scenes = load_split(data_dir, "valid", size=model.config.input_size)
    feats, correct = split_confidence(model, vocab, images, scenes, beam)
    half = len(feats) // 2
    held_platt = expected_calibration_error(calibrated(fit_calibration(feats[:half], correct[:half]), feats[half:]),
                                            correct[half:])
    held_raw = expected_calibration_error(np.exp(feats[half:, 0]), correct[half:])
    chosen = {"method": "platt", "weights": fit_calibration(feats, correct)} if held_platt < held_raw \
        else {"method": "raw"}
    entry = {"how": "the probability that the best caption is right (exact object set, every stated relation "
                    "holds): exp(log_prob) of the caption, or Platt scaling sigmoid(w0 + w1 log_prob + w2 margin "
                    "over the second beam), whichever had the lower ECE on half the validation split with Platt "
                    "fitted on the other half; ECE over 10 equal-width bins",
             "chosen": chosen, "valid_half_ece": {"platt": round(held_platt, 4), "raw": round(held_raw, 4)},
             "valid_accuracy": round(float(correct.mean()), 4)}
    for split in splits:
        images, _, scenes = load_split(data_dir, split, size=model.config.input_size)
        feats, correct = split_confidence(model, vocab, images, scenes, beam, (beams_by_split or {}).get(split))
        probs = confidence_of_features(chosen, feats)
        entry[split] = {"accuracy": round(float(correct.mean()), 4),
                        "ece": round(expected_calibration_error(probs, correct), 4),
                        "mean_confidence": round(float(np.mean(probs)), 4)}
    return chosen, entry


def nearest_neighbour_captions(train_images, train_refs, images, size=16):
    """Baseline: the first reference caption of the train image nearest in pixels (images shrunk to size^2)."""
    def small(x):  # in chunks: 80,000 train images as float32 at 128 px would be 16 GB
        parts = []
        for start in range(0, len(x), 2048):
            part = as_float(x[start:start + 2048])
            B, C, S, _ = part.shape
            f = S // size
            parts.append(part[:, :, :f * size, :f * size].reshape(B, C, size, f, size, f).mean(axis=(3, 5))
                         .reshape(B, -1))
        return np.concatenate(parts) if parts else np.zeros((0, 3 * size * size), np.float32)

    train = small(train_images)  # (N, D)
    sq = (train * train).sum(axis=1)
    out = []
    for start in range(0, len(images), 256):
        q = small(images[start:start + 256])
        d = sq[None, :] - 2.0 * q @ train.T  # (b, N); |q|^2 is constant per row
        out += [train_refs[i][0] for i in d.argmin(axis=1)]
    return out


def score_split(hyps, refs, scenes):
    """BLEU-4 (sacrebleu) and object/size/relation accuracy of captions: against the scenes where they are known,
    else against what the references say (scenes.score_against_references) when every image has a reference in
    the shapes-world grammar; "scored_against" says which."""
    from suite.apps.caption.data import aggregate, bleu4, score_caption
    from suite.apps.caption.scenes import score_against_references

    out = {"images": len(hyps), "bleu4": bleu4(hyps, refs)}
    if scenes is not None and all(s is not None for s in scenes):
        out |= aggregate([score_caption(h, s) for h, s in zip(hyps, scenes)]) | {"scored_against": "scenes"}
    else:
        scores = [score_against_references(h, r) for h, r in zip(hyps, refs)]
        if all(x is not None for x in scores):
            out |= aggregate(scores) | {"scored_against": "references"}
    return out


def build_vocab(refs, tokenize):
    """The vocabulary of training captions: every word (a word seen once is dropped once there are 1000 words)."""
    counts = {}
    for captions in refs:
        for c in captions:
            for w in tokenize(c):
                counts[w] = counts.get(w, 0) + 1
    return Vocab(sorted(w for w, n in counts.items() if n >= (1 if len(counts) < 1000 else 2)))


def evaluate(model, vocab, data_dir, splits, beam=5, limit=None, progress_for=None, beams_out=None):
    """{split: metrics} of the model on built or user splits and, beside it, the nearest-neighbour and
    most-frequent-caption baselines (both from the train split); the first 5 captions as examples.

    progress_for(split) -> progress(done, total) or None, per split captioned. beams_out: a dict that receives
    {split: each image's beams} (beam search only).
    """
    import time

    from suite.apps.caption.data import load_split

    train = load_split(data_dir, "train")[:2]
    results = {}
    for split in splits:
        images, refs, scenes = load_split(data_dir, split, size=model.config.input_size)
        images, refs = images[:limit], refs[:limit]
        scenes = scenes[:limit] if scenes is not None else None
        t0 = time.perf_counter()
        split_beams = [] if beams_out is not None else None
        hyps = caption_images(model, vocab, images, beam=beam,
                              progress=progress_for(split) if progress_for is not None else None,
                              beams_out=split_beams)
        seconds = time.perf_counter() - t0
        if beams_out is not None:
            beams_out[split] = split_beams
        results[split] = {"model": score_split(hyps, refs, scenes) | {"seconds_per_image": round(seconds / len(images), 4)},
                          **baselines(train, images, refs, scenes),
                          "examples": [{"hyp": h, "refs": r[:2]} for h, r in zip(hyps[:5], refs[:5])]}
        counted = [k for k, scene in enumerate(scenes or []) if scene.has_twins]
        if counted:  # the scenes with two of one description: the counting part of the split, scored alone
            results[split]["model_twin_scenes"] = score_split([hyps[k] for k in counted], [refs[k] for k in counted],
                                                              [scenes[k] for k in counted])
    return results


def baselines(train, images, refs, scenes):
    """The two baselines' scores on these images: the caption of the nearest train image by pixels, and the most
    frequent train caption; train is the train split's (images, references)."""
    from collections import Counter

    tr_img, tr_refs = train
    frequent = Counter(r[0] for r in tr_refs).most_common(1)[0][0]
    return {"baseline_nearest_neighbour": score_split(nearest_neighbour_captions(tr_img, tr_refs, images), refs,
                                                      scenes),
            "baseline_most_frequent": score_split([frequent] * len(images), refs, scenes)}


def evaluate_images(model, vocab, images_dir, captions_file, data_dir=None, beam=5, progress=None):
    """evaluate() on a user's folder of images with a Flickr8k-style captions file: BLEU-4, and object, size and
    relation accuracy against what the references say; the baselines too where data_dir holds a built train
    split. Returns {"user": metrics}."""
    import time

    from suite.apps.caption.data import load_split, load_user_split

    images, refs, names = load_user_split(captions_file, images_dir, size=model.config.input_size)
    t0 = time.perf_counter()
    hyps = caption_images(model, vocab, images, beam=beam, progress=progress)
    seconds = time.perf_counter() - t0
    result = {"model": score_split(hyps, refs, None) | {"seconds_per_image": round(seconds / len(images), 4)},
              "examples": [{"image": n, "hyp": h, "refs": r[:2]} for n, h, r in zip(names[:5], hyps[:5], refs[:5])]}
    if data_dir is not None and (Path(data_dir) / "train.npz").is_file():
        result |= baselines(load_split(data_dir, "train")[:2], images, refs, None)
    return {"user": result}


EVAL_SPLITS = ("test", "combo", "alt", "sketch", "dark")  # the held-out splits a card reports


def describe_model(config, grid):
    """The card's one-line architecture."""
    return ("CNN encoder ({} conv3x3+ReLU+maxpool blocks, CoordConv) -> additive attention over the {}x{} grid "
            "-> LSTM decoder ({} units){}, beam search".format(
                len(config.channels), grid, grid, config.hidden,
                ", sizes/colours/shapes chosen from the attended memory (factored output)" if config.factored else ""))


def choose_input_blur(model, vocab, data_dir, beam=5, progress_for=None, choices=BLUR_CHOICES):
    """(sigma, record): the input_blur of ``choices`` whose captions of the validation split have the most exact
    object sets (then relations; the smaller sigma on a tie), and each one's validation scores. The model's own
    input_blur is restored; only the validation split is read."""
    from suite.apps.caption.data import load_split

    images, refs, scenes = load_split(data_dir, "valid", size=model.config.input_size)
    kept, scores = model.config.input_blur, {}
    try:
        for sigma in choices:
            model.config.input_blur = sigma
            hyps = caption_images(model, vocab, images, beam=beam,
                                  progress=progress_for(f"valid, input blur {sigma}") if progress_for else None)
            scores[sigma] = score_split(hyps, refs, scenes)
    finally:
        model.config.input_blur = kept
    key = {s: (m.get("object_set_accuracy", 0.0), m.get("relation_accuracy", 0.0)) for s, m in scores.items()}
    best = max(choices, key=lambda s: (key[s], -s))
    return best, {"split": "valid", "chosen": best,
                  "by_sigma": {str(s): {k: scores[s][k] for k in ("object_set_accuracy", "relation_accuracy")
                                        if k in scores[s]} for s in choices}}


def export_model(checkpoint, out, data_dir, command=None, export_command=None, beam=5, progress_for=None,
                 input_blur=None):
    """Publish a checkpoint to ``out`` with its card (suite.card): held-out metrics on the EVAL_SPLITS
    of ``data_dir`` that exist (none for data_dir None: a model trained on a user's own data).

    input_blur: the sigma every input is smoothed by (CaptionConfig.input_blur); None chooses it on the
    validation split (choose_input_blur) where ``data_dir`` has one, else keeps the checkpoint's.

    command: the training command chain (default: the checkpoint's); export_command: the `suite caption
    export` line, or None when exported at the end of `train`. Returns the card.
    """
    from pathlib import Path

    from suite.card import make_card, reproduce_chain, training_record
    from suite.shipped import publish_model_with_meta

    model, vocab, card = load_model(checkpoint)
    meta = dict(card["meta"])
    metrics, choice = {}, {}
    if data_dir is not None and (Path(data_dir) / "valid.npz").exists() and input_blur is None:
        input_blur, choice["input_blur_choice"] = choose_input_blur(model, vocab, data_dir, beam, progress_for)
    if input_blur is not None:
        model.config.input_blur = card["config"]["input_blur"] = float(input_blur)
    if data_dir is not None:
        splits = [s for s in EVAL_SPLITS if (Path(data_dir) / f"{s}.npz").exists()]
        beams = {}
        metrics = evaluate(model, vocab, data_dir, splits, beam, None, progress_for, beams_out=beams)
        if (Path(data_dir) / "valid.npz").exists():
            meta["calibration"], metrics["calibration"] = calibration_report(model, vocab, data_dir, splits, beam,
                                                                             beams)
    data = meta.get("data") or {}
    training = training_record(checkpoint, meta, command, export_command)
    build_command = (data.get("report") or {}).get("command")
    result = make_card(
        "caption", describe_model(model.config, model.grid), card["config"], data, training,
        {"how": f"beam {beam}; test = held-out scenes of the training distribution, combo = scenes with "
                + ("colour-shape pairs never seen in training" if (data.get("report") or {}).get(
                    "held_out_combos", True) else "the red triangle, blue circle or yellow square (pairs the "
                    "compositional experiment holds out; in this model's training)")
                + "; alt, sketch, dark = the test scenes drawn in styles training never draws (data.render: "
                  "striped gradients with thick dark outlines; coloured-pencil outlines and hatching on ruled "
                  "paper; near-black backgrounds with light outlines)", **metrics, **choice},
        reproduce_chain(build_command, training["command"], export_command),
        vocab=vocab.to_json())
    return publish_model_with_meta(model, card["config"], meta, out, result)
