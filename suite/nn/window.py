"""The soft-window LSTM as a layer (Graves 2013's first layer of handwriting synthesis), on kernels/window.py.

    layer = WindowLSTM(input_size, hidden_size, n_chars=V, n_bumps=K)
    y, w, phi, window, state = layer(x, lengths, chars, n_chars, state=None)   # x (T, B, D)
    dx = layer.backward(dy, dw)                                               # adds the grads

y (T, B, H) the hidden states, w (T, B, V) the characters in view at each step,
phi (T, B, U) the window over character positions, window (T, B, 3K) its (a, b,
kappa); state (h, c, w, kappa) continues a sequence (generation, one step a call).

Parameters W_x (D, 4H), b (4H,), W_hh (H, 4H), W_w (V, 4H) (the kernel's fused W_rec over [h, w]), W_win (H, 3K),
b_win (3K,). Initialisation as LSTMLayer (forget bias 1, orthogonal recurrent
blocks over h, small uniform elsewhere); the window starts with unit weights
and widths (a = b = 1) and a step of exp(-2.5) ~ 0.08 characters per point,
about what a Hershey line has (12 points a character).
"""
import numpy as np

from suite.kernels.window import window_lstm_backward, window_lstm_forward
from suite.nn.layers import make_rng
from suite.nn.module import Module, Parameter
from suite.nn.recurrent import _input_init, _recurrent_init

KAPPA_STEP_BIAS = -2.5


class WindowLSTM(Module):
    def __init__(self, input_size, hidden_size, n_chars, n_bumps=10, rng=None, seed=0):
        rng = make_rng(rng, seed)
        H, V, K = hidden_size, n_chars, n_bumps
        self.W_x = Parameter(_input_init(rng, input_size, 4 * H))  # (D, 4H)
        b = np.zeros(4 * H)
        b[H:2 * H] = 1.0  # forget gate
        self.b = Parameter(b)
        self.W_hh = Parameter(_recurrent_init(rng, H, H, 4))  # (H, 4H)
        self.W_w = Parameter(_input_init(rng, V, 4 * H))  # (V, 4H) from the window vector of the step before
        self.W_win = Parameter(rng.uniform(-0.1 / np.sqrt(H), 0.1 / np.sqrt(H), (H, 3 * K)))  # (H, 3K)
        b_win = np.zeros(3 * K)
        b_win[2 * K:] = KAPPA_STEP_BIAS
        self.b_win = Parameter(b_win)
        self.sizes = (input_size, H, V, K)
        self._cache = None

    def zero_state(self, batch_size):
        _, H, V, K = self.sizes
        dt = self.W_x.value.dtype
        return (np.zeros((batch_size, H), dt), np.zeros((batch_size, H), dt), np.zeros((batch_size, V), dt),
                np.zeros((batch_size, K), dt))

    def forward(self, x, lengths, chars, n_chars, state=None):
        D = self.sizes[0]
        x = np.ascontiguousarray(x, dtype=self.W_x.value.dtype)
        if x.ndim != 3 or x.shape[2] != D:
            raise ValueError(f"WindowLSTM: input has shape {x.shape}, expected (T, B, {D})")
        T, B, _ = x.shape
        xg = (x.reshape(T * B, D) @ self.W_x.value + self.b.value).reshape(T, B, -1)  # (T, B, 4H)
        y, w, phi, window, state, cache = window_lstm_forward(
            xg, lengths, chars, n_chars, state if state is not None else self.zero_state(B),
            np.concatenate([self.W_hh.value, self.W_w.value]), self.W_win.value, self.b_win.value)
        self._cache = (x, cache) if self.training else None
        return y, w, phi, window, state

    def backward(self, dy, dw):
        if self._cache is None:
            raise RuntimeError("WindowLSTM.backward needs a forward in training mode first")
        (x, cache), self._cache = self._cache, None
        dxg, grads = window_lstm_backward(dy, dw, cache)  # (T, B, 4H)
        T, B, D = x.shape
        flat = dxg.reshape(T * B, -1)
        self.W_x.grad += x.reshape(T * B, D).T @ flat
        self.b.grad += flat.sum(axis=0)
        H = self.sizes[1]
        W_rec = grads.pop("W_rec")  # (H + V, 4H): the fused kernel's matrix, split back
        self.W_hh.grad += W_rec[:H]
        self.W_w.grad += W_rec[H:]
        for name, g in grads.items():
            getattr(self, name).grad += g
        return (flat @ self.W_x.value.T).reshape(T, B, D)
