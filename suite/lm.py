"""A token language model on our kernels: Embedding -> stacked LSTM -> Linear.

Karpathy's char-rnn for text, and the same network over note tokens for
music. Training on a stream reads random windows (truncated backprop through
time, each window from the zero state); scoring reads a stream as parallel
contiguous pieces and carries the state across windows, so every token is
predicted from everything before it in its piece. Generation runs the
compiled sampling loop (kernels.sampling.lstm_generate) on the host; a model on
the device (Module.to_device) runs the same loop one token at a time through
its layers (``step_loop``), and the step's draw on the device's sampling
kernel, so the same seed gives the same ids on either side.
"""
import math
from dataclasses import asdict, dataclass

import numpy as np

from suite.device import on_device, softmax_cross_entropy
from suite.kernels.sampling import input_table, lstm_generate, new_rng
from suite.nn.layers import Embedding, Linear
from suite.nn.module import Module
from suite.nn.recurrent import Recurrent

LN2 = math.log(2.0)


@dataclass
class LMConfig:
    vocab_size: int
    embed: int = 64        # a learned embedding is cheaper than one-hot input for ~100 symbols
    hidden: int = 256      # char-rnn's small setting; trains in about an hour here
    layers: int = 2
    dropout: float = 0.1   # between layers only
    kind: str = "lstm"     # any Recurrent kind; generation needs lstm or cifg
    seed: int = 0


class TokenLM(Module):
    def __init__(self, config: LMConfig):
        self.config = config
        self.embed = Embedding(config.vocab_size, config.embed, seed=config.seed)
        self.rnn = Recurrent(config.embed, config.hidden, num_layers=config.layers, kind=config.kind,
                             dropout=config.dropout, seed=config.seed + 1)
        self.head = Linear(config.hidden, config.vocab_size, seed=config.seed + 2)

    def forward(self, ids, state=None):
        """ids (T, B) int -> logits (T, B, V), final state."""
        x = self.embed.forward(ids)  # (T, B, E)
        y, state = self.rnn.forward(x, state=state)  # (T, B, H)
        self._shape = y.shape
        return self.head.forward(y), state  # (T, B, V)

    def backward(self, dlogits):
        dy = self.head.backward(dlogits)  # (T, B, H)
        dx = self.rnn.backward(dy)  # (T, B, E)
        self.embed.backward(dx)

    # -- generation (the compiled loop) ------------------------------------------------
    def _check_generates(self):
        if self.config.kind not in ("lstm", "cifg"):
            raise ValueError(f"generation needs an lstm or cifg model, this one is {self.config.kind!r}")

    def generation_weights(self):
        self._check_generates()
        dirs = [layer.fwd for layer in self.rnn.layers]
        table0 = input_table(dirs[0].W_ih.value, dirs[0].b.value, embedding=self.embed.W.value)
        return dict(table0=table0, W_ih=[d.W_ih.value for d in dirs], W_hh=[d.W_hh.value for d in dirs],
                    b=[d.b.value for d in dirs], W_out=self.head.W.value, b_out=self.head.b.value,
                    cifg=self.config.kind == "cifg")

    def generate(self, prime_ids, length, temperature=1.0, top_k=0, seed=0, chunk=64, forced=None):
        """Yield chunks of sampled ids (the compiled loop runs `chunk` steps per call).

        forced: optional ids, one per generated step: -1 samples, any other id is
        emitted (and fed back) as if sampled. Shorter than length: the rest samples.
        """
        prime = np.asarray(prime_ids, dtype=np.int64)
        if forced is not None:
            forced = np.asarray(forced, dtype=np.int64)
            forced = np.concatenate([forced[:length], np.full(max(length - len(forced), 0), -1, np.int64)])
        rng = new_rng(seed)
        if on_device(self.head.W.value):  # the same chunks through the layers there, from the same rng
            self._check_generates()  # the host's loop has no other cells either: the same models generate on both

            def run(prime, n, state, want):
                return device_generate(self, prime, n, state, temperature, top_k, rng, want)
            state = None  # zeros
        else:
            w = self.generation_weights()

            def run(prime, n, state, want):
                ids, h, c = lstm_generate(prime, n, w["table0"], w["W_ih"], w["W_hh"], w["b"], w["W_out"],
                                          w["b_out"], *state, temperature=temperature, top_k=top_k, rng=rng,
                                          cifg=w["cifg"], forced=want)[:3]
                return ids, (h, c)
            state = (np.zeros((self.config.layers, self.config.hidden), np.float32),) * 2
        done = 0
        while done < length:
            n = min(chunk, length - done)
            ids, state = run(prime, n, state, None if forced is None else forced[done:done + n])
            yield ids
            prime = ids[-1:]
            done += n


# -- one token at a time through the layers (the device's generation loop) -------------------


class Steps:
    """A TokenLM read one token at a time through its own layers (embedding, recurrent stack, output layer),
    where its weights are: the network half of the compiled sampling loop (kernels.sampling's feed_token and
    output_logits) for a model on the device. ``state`` is the recurrent state as Recurrent returns it (None:
    zeros)."""

    def __init__(self, model, state=None):
        self.model, self.state, self._top = model, state, None

    def feed(self, ids):
        """Read ids (T,) in order, from the current state."""
        ids = np.asarray(ids, np.int64).reshape(-1, 1)  # (T, 1)
        y, self.state = self.model.rnn.forward(self.model.embed.forward(ids), state=self.state)  # (T, 1, H)
        self._top = y[len(ids) - 1]  # (1, H): the last layer's output after the last id

    def logits(self):
        """(1, V) the output layer's logits after the last id fed, where the weights are."""
        return self.model.head.forward(self._top)


def step_loop(model, prime, n_steps, state, choose):
    """The sampling loop's order through ``Steps``: read prime, then ids[j] = choose(j, logits) for j < n_steps,
    each id read before the next is chosen; ``logits()`` gives step j's (1, V) logits (call it only when they
    are needed: a forced id needs none). Returns (ids (n_steps,), the state before the last id of prime + ids
    is read), as kernels.sampling.lstm_generate chunks: a next call primed with ids[-1:] continues exactly."""
    prime = np.asarray(prime, np.int64)
    if prime.ndim != 1 or len(prime) < 1:
        raise ValueError(f"prime has shape {prime.shape}, expected (P,) ids with P >= 1")
    steps = Steps(model, state)
    if len(prime) > 1:
        steps.feed(prime[:-1])
    last = int(prime[-1])
    ids = np.empty(int(n_steps), np.int64)  # (n_steps,)
    for j in range(int(n_steps)):
        steps.feed([last])
        last = ids[j] = int(choose(j, steps.logits))
    return ids, steps.state


def device_generate(model, prime, n_steps, state, temperature, top_k, rng, forced=None):
    """kernels.sampling.lstm_generate for a TokenLM on the device: the network steps on the device, each draw
    on the device's sampling kernel (kernels/cuda/sampling.py) with the uniform the CPU loop would draw from
    ``rng`` (advanced in place: one draw per sampled id, none at temperature 0 or for a forced id), so the
    ids are the host's for the same logits. Only the drawn id comes back each step. forced (n_steps,): -1
    samples, an id is emitted and read as if sampled. Returns (ids (n_steps,), state); see step_loop."""
    from suite.kernels.cuda.sampling import sample_logits, uniforms
    from suite.kernels.sampling import _check_temperature_top_k

    temperature, top_k = _check_temperature_top_k(temperature, top_k)

    def choose(j, logits):
        if forced is not None and forced[j] >= 0:
            return forced[j]
        u = uniforms(rng, 1) if temperature > 0 else np.zeros(1)  # (1,): argmax draws nothing
        return sample_logits(logits(), temperature, top_k, u).copy_to_host()[0]

    return step_loop(model, prime, n_steps, state, choose)


@dataclass
class StreamTask:
    """The trainer's task protocol over one encoded train stream and one valid stream."""

    train_ids: np.ndarray
    valid_ids: np.ndarray
    seq_len: int = 128
    batch_size: int = 32

    def train_batch(self, rng):
        starts = rng.integers(0, len(self.train_ids) - self.seq_len - 1, self.batch_size)
        window = starts[None, :] + np.arange(self.seq_len + 1)[:, None]  # (T+1, B)
        return self.train_ids[window]

    def loss_and_grad(self, model, batch):
        inputs, targets = batch[:-1], batch[1:]  # (T, B) each
        logits, _ = model.forward(inputs)
        T, B, V = logits.shape
        loss, _, dlogits = softmax_cross_entropy(logits.reshape(T * B, V), targets.reshape(-1))
        model.backward(dlogits.reshape(T, B, V))
        return loss, T * B

    def evaluate(self, model):
        nats = score_ids(model, self.valid_ids)
        return {"loss": nats, "bpc": nats / LN2}


def score_ids(model, ids, streams=16, window=256, warm=0):
    """Mean negative log-likelihood (nats per token) of ids[1:] given the history, state carried.

    The text is cut into `streams` contiguous pieces scored side by side as one
    batch. With warm=0 each piece starts from a fresh state and its first
    character is only context. With warm=W each piece after the first first
    reads the W characters before it without scoring them, so its state is
    (nearly) the one a single reading of the whole text would carry there: the
    result approaches streams=1 (one stream, the exact figure) as W grows, and
    many streams cost little more than one. Short texts use fewer streams.
    """
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) < 2:
        raise ValueError("need at least 2 tokens to score")
    n = len(ids) - 1  # targets ids[1:]
    streams = max(1, min(streams, (n - warm) // max(64, warm)))
    warm = warm if streams > 1 else 0  # one stream reads everything from the start: exact
    per = (n - warm) // streams
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    if warm:
        # Stream s reads ids[s*per : s*per + warm + per] and predicts the next token at each step; stream 0
        # scores every step (there is no earlier context), the others only their last `per` steps.
        steps = warm + per
        data = np.stack([ids[s * per:s * per + steps + 1] for s in range(streams)], axis=1)  # (steps+1, S)
        targets = data[1:].copy()
        targets[:warm, 1:] = -100  # the warm-up steps of streams 1.. are context only
        rest_from = streams * per + warm  # targets ids[rest_from+1:] are left over
    else:
        steps = per
        data = np.stack([ids[s * per:s * per + per + 1] for s in range(streams)], axis=1)  # (per+1, S)
        targets = data[1:]
        rest_from = streams * per
    state = None
    for t0 in range(0, steps, window):
        t1 = min(t0 + window, steps)
        logits, state = model.forward(data[t0:t1], state)
        T, B, V = logits.shape
        loss, k, _ = softmax_cross_entropy(logits.reshape(T * B, V), targets[t0:t1].reshape(-1))
        total += loss * k
        count += k
    # The remainder that does not divide evenly into streams: score it after `warm` characters of context
    # (from a fresh state when warm=0).
    start = max(0, rest_from - warm)
    rest = ids[start:]
    if len(ids) - 1 > rest_from:
        logits, _ = model.forward(rest[:-1, None])
        rest_targets = rest[1:].copy()
        rest_targets[:rest_from - start] = -100
        loss, k, _ = softmax_cross_entropy(logits.reshape(logits.shape[0], logits.shape[2]), rest_targets)
        total += loss * k
        count += k
    model.train(was_training)
    return total / count


# What `suite text score` (and `suite batch text`) read with: 64 streams, each warmed up on the 512 characters
# before it. On 200 KB of Python they gave one stream's bits per character to 1e-7, 1.6 times as fast on one core
# (bench/bench_score.py); the 16 cold streams that training's validation still uses were 5.7e-4 off.
SCORE_STREAMS = dict(streams=64, window=512, warm=512)


def config_dict(config: LMConfig):
    return {"model": "TokenLM"} | asdict(config)




def load_token_lm(model_dir, app, vocab_from_json):
    """(TokenLM, vocab, card) from a model folder written for ``app``; one-line CheckpointError otherwise.

    vocab_from_json builds the app's vocabulary from the card's meta["vocab"].
    """
    from suite.shipped import load_app_model

    vocab = None

    def build(config, meta):
        nonlocal vocab
        if "vocab" not in meta:
            raise KeyError("no vocabulary in meta")
        try:
            vocab = vocab_from_json(meta["vocab"])
        except (TypeError, KeyError, ValueError, AttributeError, IndexError) as exc:
            raise ValueError(f"meta.vocab is not a vocabulary ({' '.join(str(exc).split())})") from None
        if vocab.size != config.get("vocab_size"):
            raise ValueError(f"vocabulary has {vocab.size} symbols, model expects {config.get('vocab_size')}")
        return TokenLM(LMConfig(**config))

    model, card = load_app_model(model_dir, app, "TokenLM", build)
    return model, vocab, card
