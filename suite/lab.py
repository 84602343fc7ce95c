"""Classic LSTM experiments: the adding problem and the vanishing gradient, drawn.

The adding problem (Hochreiter & Schmidhuber 1997, experiment 4): each step
carries a value in [-1, 1] and a marker; exactly two steps are marked, one in
the first half of the sequence and one in the second, so at least T/2 steps
separate the first marked value from the end. The target is
0.5 + (X1 + X2) / 4 in [0, 1], read at the last step; a sequence is *solved*
when |prediction - target| < 0.04, the paper's criterion. Predicting the
constant 0.5 solves about 16 % of sequences (|X1 + X2| < 0.16), which is what a
model that cannot carry information across T/2 steps is left with.
"""
from dataclasses import dataclass

import numpy as np

from suite.kernels.losses import mse_loss
from suite.nn.layers import Linear
from suite.nn.module import Module
from suite.nn.recurrent import KINDS, Recurrent

SOLVED = 0.04  # |error| below which a sequence counts as solved (Hochreiter & Schmidhuber 1997)


def adding_batch(rng, batch_size, T):
    """x (T, B, 2) float32 = (value, marker); target (B,) float32."""
    if T < 2:
        raise ValueError(f"the adding problem needs T >= 2, got T={T}")
    values = rng.uniform(-1.0, 1.0, (T, batch_size))  # (T, B)
    first = rng.integers(0, T // 2, batch_size)
    second = rng.integers(T // 2, T, batch_size)
    markers = np.zeros((T, batch_size))
    cols = np.arange(batch_size)
    markers[first, cols] = 1.0
    markers[second, cols] = 1.0
    x = np.stack([values, markers], axis=2).astype(np.float32)  # (T, B, 2)
    target = 0.5 + (values[first, cols] + values[second, cols]) / 4.0
    return x, target.astype(np.float32)


class AddingModel(Module):
    """One recurrent layer of any kind, read out linearly at the last step."""

    def __init__(self, kind="lstm", hidden_size=32, seed=0):
        self.rnn = Recurrent(2, hidden_size, kind=kind, seed=seed)
        self.head = Linear(hidden_size, 1, seed=seed + 1)

    def forward(self, x):
        y, _ = self.rnn.forward(x)  # (T, B, H)
        self._shape = y.shape
        return self.head.forward(y[-1])[:, 0]  # (B,)

    def backward(self, dpred):
        dlast = self.head.backward(dpred[:, None])  # (B, H)
        dy = np.zeros(self._shape, dtype=dlast.dtype)  # (T, B, H): only the last step is read
        dy[-1] = dlast
        return self.rnn.backward(dy)


@dataclass
class AddingTask:
    """The trainer's task protocol for the adding problem."""

    T: int
    batch_size: int = 64
    n_valid: int = 1000
    seed: int = 0

    def __post_init__(self):
        # A fixed validation set, drawn from a stream the training batches never use.
        self.valid = adding_batch(np.random.default_rng([self.seed, 2**31]), self.n_valid, self.T)

    def train_batch(self, rng):
        return adding_batch(rng, self.batch_size, self.T)

    def loss_and_grad(self, model, batch):
        x, target = batch
        pred = model.forward(x)
        loss, dpred = mse_loss(pred, target)
        model.backward(dpred)
        return loss, len(target)

    def evaluate(self, model):
        return evaluate_adding(model, *self.valid)


def evaluate_adding(model, x, target, batch_size=500):
    errors = []
    for s in range(0, len(target), batch_size):
        errors.append(np.abs(model.forward(x[:, s:s + batch_size]) - target[s:s + batch_size]))
    err = np.concatenate(errors)
    return {"loss": float(np.mean(err ** 2)), "solve_rate": float(np.mean(err < SOLVED)),
            "mean_abs_error": float(np.mean(err))}


def state_gradient_norms(model, x, target):
    """||d loss / d h_t|| for t = 0..T-1, averaged over the batch (c_t held fixed for LSTMs).

    d loss / d h_t is the gradient with respect to the initial state of the
    same network run on the suffix x[t:] from the state it had at t, which the
    layer's backward already returns (Recurrent.dstate0). This costs O(T^2)
    steps, fine for the small models of the lab.
    """
    rnn = model.rnn
    T, B, _ = x.shape
    was_training = rnn.training
    model.train()
    # The states after each prefix: run step by step from the zero state.
    states = [rnn.zero_state(B)]
    for t in range(T - 1):
        _, s = rnn.forward(x[t:t + 1], state=states[-1])
        states.append(s)
    norms = np.empty(T)
    for t in range(T):
        y, _ = rnn.forward(x[t:], state=states[t])
        pred = model.head.forward(y[-1])[:, 0]
        _, dpred = mse_loss(pred, target)
        dlast = model.head.backward(dpred[:, None])
        dy = np.zeros_like(y)
        dy[-1] = dlast
        rnn.backward(dy)
        dh = rnn.dstate0[0][0]  # (B, R): layer 0, forward direction
        norms[t] = float(np.mean(np.linalg.norm(dh, axis=1)))
    model.zero_grad()
    model.train(was_training)
    return norms


__all__ = ["KINDS", "SOLVED", "AddingModel", "AddingTask", "adding_batch", "evaluate_adding",
           "state_gradient_norms"]
