"""Dynamic evaluation (Krause et al. 2018): a token LM that keeps learning from the text it reads.

The stream is read in segments of ``segment`` tokens. Each segment is first
scored with the weights as they stand (so every token's probability uses only
what came before it: the sum is an honest code length), then the weights take
one SGD step on that segment's loss, and a pull of ``decay`` back towards the
trained weights (Krause et al.'s decay towards the global prior, without their
RMS normalisation). The recurrent state is carried across segments, so every
token is predicted from the whole text before it.

``Adaptation`` holds the settings (chosen on validation files by
``choose_adaptation`` and stored in the model's card); ``AdaptiveLM`` wraps a
private copy of a model's weights and applies the steps; ``adaptive_score`` is
the scorer. The compressor (apps/text/compress.py) drives the same ``step``
between segments it codes one token at a time, and mixes in a match model
(kernels/rangecoder.py); ``with_match_model`` gives that mixture's code length.
"""
import copy
from dataclasses import asdict, dataclass

import numpy as np

from suite.kernels.losses import log_softmax, softmax_cross_entropy

LR_GRID = (0.05, 0.1, 0.2, 0.4)
DECAY_GRID = (0.0, 0.002)


@dataclass(frozen=True)
class Adaptation:
    lr: float = 0.2        # SGD step on each segment's mean loss (nats per token)
    decay: float = 0.0     # after each step, this share of the way back to the trained weights
    segment: int = 100     # tokens per step

    def __post_init__(self):
        if not (np.isfinite(self.lr) and self.lr >= 0 and 0 <= self.decay <= 1 and int(self.segment) >= 1):
            raise ValueError(f"adaptation needs lr >= 0, 0 <= decay <= 1, segment >= 1; got {asdict(self)}")

    def to_json(self):
        return asdict(self)

    @classmethod
    def from_json(cls, obj):
        if not isinstance(obj, dict):
            raise ValueError("adaptation settings must be an object with lr, decay, segment")
        try:
            return cls(float(obj["lr"]), float(obj.get("decay", 0.0)), int(obj["segment"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"adaptation settings are malformed ({exc})") from None


class AdaptiveLM:
    """A private, adapting copy of a suite.lm.TokenLM (the caller's model is never changed)."""

    def __init__(self, model, settings: Adaptation):
        self.model = copy.deepcopy(model)
        self.model.train()
        for drop in self.model.rnn.drops:  # dropout off: the steps follow the text, not noise
            drop.p = 0.0
        self.settings = settings
        self.params = list(self.model.parameters())
        self.prior = [p.value.copy() for p in self.params]

    def _forward(self, inputs, state):
        """(logits (T, V), the state after inputs) of one stream read from ``state``, caches kept for the step."""
        logits, state_out = self.model.forward(np.asarray(inputs, np.int64)[:, None], state)  # (T, 1, V)
        return logits.reshape(len(inputs), -1), state_out

    def step(self, inputs, targets, state=None):
        """Score targets (T,) after inputs (T,) from ``state`` with the current weights, then adapt on them.

        Returns (nats of each target (T,) float64, the state after inputs)."""
        logits, state_out = self._forward(inputs, state)
        nats = -log_softmax(logits.astype(np.float64))[np.arange(len(targets)), targets]
        self.update_from(logits, targets)
        return nats, state_out

    def update_from(self, logits, targets):
        """The SGD step on the mean loss of ``logits`` (T, V) of the last forward against ``targets``, and the
        decay towards the trained weights."""
        s = self.settings
        if s.lr == 0:
            return
        T, V = logits.shape
        _, _, dlogits = softmax_cross_entropy(logits, np.asarray(targets, np.int64))
        self.model.zero_grad()
        self.model.backward(dlogits.reshape(T, 1, V))
        lr = np.float32(s.lr)
        for p, prior in zip(self.params, self.prior):
            p.value -= lr * p.grad
            if s.decay:
                p.value += np.float32(s.decay) * (prior - p.value)

    def adapt(self, inputs, targets, state):
        """The adaptation step alone (the compressor scores tokens its own way first): forward from ``state`` over
        inputs, SGD on targets. Returns nothing; the weights change."""
        logits, _ = self._forward(inputs, state)
        self.update_from(logits, targets)


def adaptive_score(model, ids, settings, progress=None):
    """Nats of each token ids[1:] given all before it, read once with dynamic evaluation (lr 0: the static model
    read as one stream). Returns a float64 array of len(ids) - 1."""
    ids = np.asarray(ids, np.int64)
    if len(ids) < 2:
        return np.zeros(0)
    lm = AdaptiveLM(model, settings)
    out, state = [], None
    seg = int(settings.segment)
    for start in range(0, len(ids) - 1, seg):
        inputs = ids[start:start + seg]
        targets = ids[start + 1:start + seg + 1]
        nats, state = lm.step(inputs[:len(targets)], targets, state)
        out.append(nats)
        if progress is not None:
            progress(min(start + seg, len(ids) - 1), len(ids) - 1)
    return np.concatenate(out)


def with_match_model(ids, nats):
    """Nats of ids[1:] when the match model (kernels/rangecoder.py) is mixed with the model whose nats are given:
    what the text compressor codes, before its frequencies are rounded."""
    from suite.kernels.rangecoder import match_predictions

    targets = np.ascontiguousarray(np.asarray(ids, np.int64)[1:])
    pred, weight = match_predictions(targets)
    p = (1.0 - weight) * np.exp(-np.asarray(nats, np.float64)) + weight * (pred == targets)
    return -np.log(p)


def choose_adaptation(model, docs, segment=100, progress=None):
    """The (lr, decay) of LR_GRID x DECAY_GRID with the lowest mean bits per token over ``docs`` (validation files,
    each an id array, each read from a fresh copy of the trained weights); returns (Adaptation, table of
    {"lr", "decay", "nats_per_token"})."""
    table, best = [], None
    grid = [(lr, d) for lr in LR_GRID for d in DECAY_GRID]
    total = sum(len(d) for d in docs)
    for k, (lr, decay) in enumerate(grid):
        settings = Adaptation(lr, decay, segment)
        nats = np.concatenate([adaptive_score(model, d, settings) for d in docs])
        row = {"lr": lr, "decay": decay, "nats_per_token": round(float(nats.mean()), 5)}
        table.append(row)
        if best is None or row["nats_per_token"] < best[1]:
            best = (settings, row["nats_per_token"])
        if progress is not None:
            progress((k + 1) * total, len(grid) * total)
    return best[0], table
