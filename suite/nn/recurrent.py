"""Recurrent layers on our kernels: every LSTM variant, GRU and the tanh RNN,
stacked and bidirectional.

The kernels run one direction of one layer over a whole (padded, time-major)
batch; stacking and bidirectionality are compositions written here once:

  layer l+1 consumes layer l's output (forward and backward halves concatenated
  on the feature axis when bidirectional), with dropout between layers only;
  the backward direction is the same kernel with reverse=True, which runs each
  sequence from its own last step (len-1) down to 0, as a packed torch sequence.

Kinds (`kind=`, with `proj_size=`):
  "lstm"      vanilla LSTM (Hochreiter & Schmidhuber 1997, forget gate of Gers 2000);
              proj_size > 0 adds a recurrent projection (this is then LSTMP)
  "peephole"  LSTM with peephole weights (Gers & Schmidhuber 2000); proj_size allowed
  "cifg"      coupled input-forget gate, f = 1 - i (Greff et al. 2017); no peepholes,
              no projection
  "lstmp"     LSTM with recurrent projection (Sak et al. 2014); needs
              0 < proj_size < hidden_size; the same as kind="lstm" with proj_size
  "gru"       gated recurrent unit (Cho et al. 2014), gate order r, z, n as torch
  "rnn"       plain tanh RNN, the baseline
proj_size with "cifg", "gru" or "rnn" is an error rather than silently ignored.

State follows torch.nn: for LSTM kinds a tuple (h, c) with h of shape
(num_layers * dirs, B, R) and c of shape (num_layers * dirs, B, H), where
R = proj_size or hidden_size; for GRU/RNN a tuple (h,). Row l * dirs + d holds
layer l, direction d (0 forward, 1 backward). For LSTM kinds, forward(...,
return_cells=True) also gives every layer's and direction's cell state at
every step, in the same row order (for looking inside a model: text cells).

Parameter names: "layers.{l}.fwd.W_ih", "layers.{l}.bwd.W_hh", ... with
W_ih (D, G*H), W_hh (R, G*H), b (G*H,) [+ peep (3, H), W_hr (H, P)] for LSTM
kinds, W_ih/W_hh/b_ih/b_hh for GRU (torch keeps b_hh apart because the n gate
multiplies it by r), W_ih/W_hh/b for the RNN.
"""
import numpy as np

from suite.device import add_into, concat_last, host, kernels, like, take_last
from suite.nn.layers import Dropout, make_rng
from suite.nn.module import Module, Parameter

LSTM_KINDS = ("lstm", "peephole", "cifg", "lstmp")
KINDS = LSTM_KINDS + ("gru", "rnn")


def orthogonal(rng, rows, cols):
    """A (rows, cols) matrix with orthonormal rows or columns, whichever are fewer.

    Orthogonal recurrent weights keep the norm of a signal through many steps
    of the linear part of the recurrence (Saxe et al. 2014).
    """
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # sign fix: makes q uniformly (Haar) distributed
    return q if rows >= cols else q.T


def _recurrent_init(rng, rows, hidden_size, n_blocks):
    """(rows, n_blocks * H): an orthogonal (rows, H) block per gate."""
    return np.concatenate([orthogonal(rng, rows, hidden_size) for _ in range(n_blocks)], axis=1)


def _input_init(rng, input_size, cols):
    """Small uniform input weights, uniform(+-1/sqrt(fan_in)) (LeCun / torch scaling)."""
    bound = 1.0 / np.sqrt(input_size)
    return rng.uniform(-bound, bound, (input_size, cols))


class _Direction(Module):
    """One direction of one layer over a whole sequence; subclasses call one kernel family."""

    _cache = None

    def _take_cache(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward needs a forward in training "
                               "mode first (eval-mode forward keeps no cache)")
        cache, self._cache = self._cache, None  # a cache serves one backward
        return cache

    def _accumulate(self, grads):
        for name, g in grads.items():
            add_into(getattr(self, name).grad, g)

    def _kernels(self, family):
        """suite.kernels.FAMILY, or its @cuda.jit twin when the weights are on the device."""
        return kernels(family, self.W_ih.value)


class LSTMLayer(_Direction):
    """LSTM (optionally peephole, CIFG, projected) over (T, B, D), one direction.

    Initialisation: forget-gate bias 1.0 so the cell remembers from the start
    (Gers et al. 2000, Jozefowicz et al. 2015); for CIFG, where f = 1 - i, the
    same effect is an input-gate bias of -1.0. Recurrent weights orthogonal per
    gate block; input, peephole and projection weights small uniform.
    """

    def __init__(self, input_size, hidden_size, peephole=False, cifg=False, proj_size=0,
                 reverse=False, rng=None, seed=0):
        rng = make_rng(rng, seed)
        H, G = hidden_size, (3 if cifg else 4)
        R = proj_size or hidden_size
        self.W_ih = Parameter(_input_init(rng, input_size, G * H))  # (D, G*H)
        self.W_hh = Parameter(_recurrent_init(rng, R, H, G))  # (R, G*H)
        b = np.zeros(G * H)  # (G*H,)
        if cifg:
            b[0:H] = -1.0  # input gate (f = 1 - i)
        else:
            b[H:2 * H] = 1.0  # forget gate
        self.b = Parameter(b)
        bound = 1.0 / np.sqrt(H)
        self.peep = Parameter(rng.uniform(-bound, bound, (3, H))) if peephole else None  # (3, H)
        self.W_hr = Parameter(rng.uniform(-bound, bound, (H, R))) if proj_size else None  # (H, P)
        self.cifg, self.reverse = bool(cifg), bool(reverse)

    def forward(self, x, lengths, state, return_cells=False):
        """-> y, (hT, cT) [, cells (T, B, H): the cell state after each step, 0 at padded steps].

        With return_cells the training kernel runs (also in eval mode, where its
        cache is then dropped): it keeps every cell state, the inference kernel none.
        """
        h0, c0 = state
        args = (x, lengths, h0, c0, self.W_ih.value, self.W_hh.value, self.b.value)
        kw = dict(peep=self.peep.value if self.peep is not None else None,
                  W_hr=self.W_hr.value if self.W_hr is not None else None,
                  cifg=self.cifg, reverse=self.reverse)
        if self.training or return_cells:
            y, hT, cT, cache = self._kernels("lstm").lstm_forward(*args, **kw)
            self._cache = cache if self.training else None
        else:
            self._cache = None
            y, hT, cT = self._kernels("lstm").lstm_infer(*args, **kw)
        if not return_cells:
            return y, (hT, cT)
        return y, (hT, cT), self._cells(host(cache.cs), lengths)

    def _cells(self, cs, lengths):
        """The kernel's (T+1, B, H) cell slots -> (T, B, H), row t the state after reading x[t].

        Forward, c0 sits at slot 0 and step t writes slot t+1; reverse, c0 sits at
        slot len[b] and step t writes slot t, so slot len[b] (c0) is zeroed there.
        The result is a view of the slots when nothing needs zeroing.
        """
        if not self.reverse:
            return cs[1:]
        cells = cs[:-1]
        if lengths is not None:
            cells = np.where((np.arange(cells.shape[0])[:, None] < lengths[None, :])[:, :, None], cells, 0)
            cells = cells.astype(cs.dtype, copy=False)
        return cells

    def backward(self, dy, dstate):
        dhT, dcT = dstate
        dx, dh0, dc0, grads = self._kernels("lstm").lstm_backward(dy, dhT, dcT, self._take_cache())
        self._accumulate(grads)
        return dx, (dh0, dc0)


class GRULayer(_Direction):
    """GRU over (T, B, D), one direction; gates r, z, n as torch.nn.GRU.

    Initialisation: orthogonal recurrent blocks, small uniform input weights,
    zero biases.
    """

    def __init__(self, input_size, hidden_size, reverse=False, rng=None, seed=0):
        rng = make_rng(rng, seed)
        H = hidden_size
        self.W_ih = Parameter(_input_init(rng, input_size, 3 * H))  # (D, 3H)
        self.W_hh = Parameter(_recurrent_init(rng, H, H, 3))  # (H, 3H)
        self.b_ih = Parameter(np.zeros(3 * H))
        self.b_hh = Parameter(np.zeros(3 * H))
        self.reverse = bool(reverse)

    def forward(self, x, lengths, state):
        (h0,) = state
        args = (x, lengths, h0, self.W_ih.value, self.W_hh.value, self.b_ih.value,
                self.b_hh.value)
        if self.training:
            y, hT, self._cache = self._kernels("gru").gru_forward(*args, reverse=self.reverse)
        else:
            self._cache = None
            y, hT = self._kernels("gru").gru_infer(*args, reverse=self.reverse)
        return y, (hT,)

    def backward(self, dy, dstate):
        dx, dh0, grads = self._kernels("gru").gru_backward(dy, dstate[0], self._take_cache())
        self._accumulate(grads)
        return dx, (dh0,)


class RNNLayer(_Direction):
    """tanh RNN over (T, B, D), one direction: h_t = tanh(x_t W_ih + h_{t-1} W_hh + b)."""

    def __init__(self, input_size, hidden_size, reverse=False, rng=None, seed=0):
        rng = make_rng(rng, seed)
        self.W_ih = Parameter(_input_init(rng, input_size, hidden_size))  # (D, H)
        self.W_hh = Parameter(orthogonal(rng, hidden_size, hidden_size))  # (H, H)
        self.b = Parameter(np.zeros(hidden_size))
        self.reverse = bool(reverse)

    def forward(self, x, lengths, state):
        (h0,) = state
        args = (x, lengths, h0, self.W_ih.value, self.W_hh.value, self.b.value)
        if self.training:
            y, hT, self._cache = self._kernels("gru").rnn_forward(*args, reverse=self.reverse)
        else:
            self._cache = None
            y, hT = self._kernels("gru").rnn_infer(*args, reverse=self.reverse)
        return y, (hT,)

    def backward(self, dy, dstate):
        dx, dh0, grads = self._kernels("gru").rnn_backward(dy, dstate[0], self._take_cache())
        self._accumulate(grads)
        return dx, (dh0,)


def _make_direction(kind, input_size, hidden_size, proj_size, reverse, rng):
    if kind in LSTM_KINDS:
        return LSTMLayer(input_size, hidden_size, peephole=(kind == "peephole"),
                         cifg=(kind == "cifg"), proj_size=proj_size, reverse=reverse, rng=rng)
    cls = GRULayer if kind == "gru" else RNNLayer
    return cls(input_size, hidden_size, reverse=reverse, rng=rng)


class RecurrentLayer(Module):
    """One layer of a stack: a forward direction `fwd` and, if bidirectional, `bwd`.

    The output concatenates the directions on the feature axis: (T, B, dirs * R).
    """

    def __init__(self, kind, input_size, hidden_size, proj_size, bidirectional, rng):
        self.fwd = _make_direction(kind, input_size, hidden_size, proj_size, False, rng)
        self.bwd = (_make_direction(kind, input_size, hidden_size, proj_size, True, rng)
                    if bidirectional else None)

    def directions(self):
        return [self.fwd] if self.bwd is None else [self.fwd, self.bwd]

    def forward(self, x, lengths, states, return_cells=False):
        """states: one state tuple per direction -> y (T, B, dirs*R), list of final states
        [, list of (T, B, H) cell-state sequences per direction (LSTM kinds, with return_cells)]."""
        kw = {"return_cells": True} if return_cells else {}
        outs = [d.forward(x, lengths, s, **kw) for d, s in zip(self.directions(), states)]
        y = outs[0][0] if len(outs) == 1 else concat_last([o[0] for o in outs])
        if return_cells:
            return y, [o[1] for o in outs], [o[2] for o in outs]
        return y, [o[1] for o in outs]

    def backward(self, dy, dstates):
        """dy (T, B, dirs*R) -> dx (T, B, D), list of initial-state gradients per direction."""
        dirs = self.directions()
        R = dy.shape[2] // len(dirs)
        dx, dstate0 = None, []
        for k, (d, ds) in enumerate(zip(dirs, dstates)):
            dy_k = dy if len(dirs) == 1 else take_last(dy, k * R, (k + 1) * R)  # (T, B, R)
            dx_k, ds0 = d.backward(dy_k, ds)
            if dx is None:
                dx = dx_k
            else:
                add_into(dx, dx_k)
            dstate0.append(ds0)
        return dx, dstate0


class Recurrent(Module):
    """A stack of recurrent layers: torch.nn.LSTM/GRU/RNN semantics on our kernels.

    Parameters
    ----------
    input_size, hidden_size : int
    num_layers : int
        Layer l+1 reads layer l's (concatenated bidirectional) output.
    kind : str
        One of KINDS; see the module docstring.
    bidirectional : bool
    proj_size : int
        Recurrent projection size P (0 = none); allowed for "lstm", "peephole"
        and required for "lstmp", always 0 < P < hidden_size.
    dropout : float
        Dropout probability on the outputs of every layer but the last, in
        training mode only.
    seed : int
        Seeds the initial weights and the dropout masks.

    forward(x (T, B, D), lengths (B,) or None, state or None)
        -> y (T, B, dirs * R), state; outputs at padded steps (t >= lengths[b]) are 0.
    forward(x, lengths, state, return_cells=True) (LSTM kinds; ValueError for GRU/RNN)
        -> y, state, cells (L * dirs, T, B, H): cells[l * dirs + d, t] is the cell
        state c of layer l, direction d after it read step t (the backward
        direction reads t last to first), 0 at padded steps; the same in training
        and eval mode (the training kernel runs, which keeps every c_t).
    backward(dy (T, B, dirs * R), dstate or None) -> dx (T, B, D); adds parameter
        gradients and leaves the gradient w.r.t. the initial state in self.dstate0
        (same layout as state; also when forward started from the zero state).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, kind="lstm",
                 bidirectional=False, proj_size=0, dropout=0.0, seed=0):
        _check_config(input_size, hidden_size, num_layers, kind, proj_size, dropout)
        self.config = dict(input_size=input_size, hidden_size=hidden_size,
                           num_layers=num_layers, kind=kind, bidirectional=bool(bidirectional),
                           proj_size=proj_size, dropout=float(dropout), seed=seed)
        self.kind, self.num_layers, self.hidden_size = kind, num_layers, hidden_size
        self.input_size = input_size
        self.num_directions = 2 if bidirectional else 1
        self.state_size = proj_size or hidden_size  # R: size of h and of each y half
        self.output_size = self.num_directions * self.state_size
        rng = np.random.default_rng(seed)
        self.layers = [RecurrentLayer(kind, input_size if l == 0 else self.output_size,
                                      hidden_size, proj_size, bidirectional, rng)
                       for l in range(num_layers)]
        self.drops = [Dropout(dropout, rng=np.random.default_rng(rng.integers(2**63)))
                      for _ in range(num_layers - 1)]
        self.dstate0 = None

    @property
    def has_cell(self):
        return self.kind in LSTM_KINDS

    def state_shapes(self, batch_size):
        """Shapes of the state tuple: ((L*dirs, B, R), (L*dirs, B, H)) or ((L*dirs, B, H),)."""
        n = self.num_layers * self.num_directions
        h = (n, batch_size, self.state_size)
        return (h, (n, batch_size, self.hidden_size)) if self.has_cell else (h,)

    def zero_state(self, batch_size):
        return tuple(np.zeros(s, dtype=self.dtype) for s in self.state_shapes(batch_size))

    # -- forward -------------------------------------------------------------------
    def forward(self, x, lengths=None, state=None, return_cells=False):
        if return_cells and not self.has_cell:
            raise ValueError(f"Recurrent: cell states exist for the LSTM kinds ({', '.join(LSTM_KINDS)}) only; "
                             f"this one is kind={self.kind!r}")
        x = self._move(x)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"Recurrent: x has shape {tuple(x.shape)}, expected (T, B, "
                             f"{self.input_size})")
        T, B, _ = x.shape
        lengths = self._check_lengths(lengths, T, B)
        rows = self._split_state(state, B, "state")  # one tuple (or Nones) per (layer, dir)
        dirs = self.num_directions
        finals, cells = [], []
        for l, layer in enumerate(self.layers):
            if l > 0:
                x = self.drops[l - 1].forward(x)
            if return_cells:
                x, fin, layer_cells = layer.forward(x, lengths, rows[l * dirs:(l + 1) * dirs], return_cells=True)
                cells += layer_cells
            else:
                x, fin = layer.forward(x, lengths, rows[l * dirs:(l + 1) * dirs])
            finals += fin
        self._B = B
        if return_cells:
            return x, self._join_state(finals, B), np.stack(cells)  # (L*dirs, T, B, H), a copy
        return x, self._join_state(finals, B)

    # -- backward ------------------------------------------------------------------
    def backward(self, dy, dstate=None):
        B = getattr(self, "_B", None)
        if B is None or not self.training:
            raise RuntimeError("Recurrent.backward needs a forward in training mode first")
        dy = self._move(dy)
        if dy.ndim != 3 or tuple(dy.shape[1:]) != (B, self.output_size):
            raise ValueError(f"Recurrent.backward: dy has shape {tuple(dy.shape)}, expected "
                             f"(T, {B}, {self.output_size})")
        if dstate is None:
            dstate = self.zero_state(B)
        rows = self._split_state(dstate, B, "dstate")
        dirs = self.num_directions
        dstate0 = [None] * len(rows)
        for l in reversed(range(self.num_layers)):
            dy, ds0 = self.layers[l].backward(dy, rows[l * dirs:(l + 1) * dirs])
            dstate0[l * dirs:(l + 1) * dirs] = ds0
            if l > 0:
                dy = self.drops[l - 1].backward(dy)
        self._B = None
        self.dstate0 = self._join_state(dstate0, B)
        return dy

    # -- helpers -------------------------------------------------------------------
    def _move(self, a):
        """A sequence as the kernels take it: C-contiguous in the parameters' dtype, on their device."""
        return like(a, self.layers[0].fwd.W_ih.value)

    @staticmethod
    def _check_lengths(lengths, T, B):
        if lengths is None:
            return None
        lengths = np.asarray(lengths)
        if lengths.shape != (B,) or lengths.dtype.kind not in "iu":
            raise ValueError(f"Recurrent: lengths must be integers of shape ({B},), got "
                             f"{lengths.dtype} {lengths.shape}")
        if B and (lengths.min() < 0 or lengths.max() > T):
            raise ValueError(f"Recurrent: lengths must lie in [0, T={T}], got "
                             f"[{lengths.min()}, {lengths.max()}]")
        return np.ascontiguousarray(lengths, dtype=np.int64)

    def _split_state(self, state, B, what):
        """state tuple -> one per-direction tuple of (B, .) arrays per row; Nones if no state."""
        shapes = self.state_shapes(B)
        n = shapes[0][0]
        if state is None:
            return [(None,) * len(shapes)] * n
        if isinstance(state, np.ndarray):
            state = (state,)
        if len(state) != len(shapes):
            raise ValueError(f"Recurrent: {what} must be a tuple of {len(shapes)} arrays "
                             f"for kind={self.kind!r}, got {len(state)}")
        state = [self._move(s) for s in state]  # on the parameters' device
        for name, s, shape in zip(("h", "c"), state, shapes):
            if tuple(s.shape) != shape:
                raise ValueError(f"Recurrent: {what} {name} has shape {tuple(s.shape)}, expected {shape}")
        return [tuple(s[k] for s in state) for k in range(n)]

    def _join_state(self, rows, B):
        """Per-row state tuples -> tuple of stacked arrays (None parts become zeros)."""
        out = []
        for j, shape in enumerate(self.state_shapes(B)):
            out.append(np.stack([host(r[j]) if r[j] is not None else np.zeros(shape[1:], self.dtype)
                                 for r in rows]))  # host arrays on either device: one copy a call
        return tuple(out)


def _check_config(input_size, hidden_size, num_layers, kind, proj_size, dropout):
    if kind not in KINDS:
        raise ValueError(f"Recurrent: kind must be one of {', '.join(KINDS)}; got {kind!r}")
    for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                    ("num_layers", num_layers)):
        if int(v) != v or v < 1:
            raise ValueError(f"Recurrent: {name} must be a positive integer, got {v!r}")
    if int(proj_size) != proj_size or proj_size < 0:
        raise ValueError(f"Recurrent: proj_size must be an integer >= 0, got {proj_size!r}")
    if kind == "lstmp" and proj_size == 0:
        raise ValueError("Recurrent: kind='lstmp' needs 0 < proj_size < hidden_size")
    if proj_size and kind not in ("lstm", "peephole", "lstmp"):
        raise ValueError(f"Recurrent: proj_size applies to kinds lstm, peephole, lstmp only; "
                         f"got proj_size={proj_size} with kind={kind!r}")
    if proj_size >= hidden_size:
        raise ValueError(f"Recurrent: proj_size must be smaller than hidden_size, got "
                         f"proj_size={proj_size}, hidden_size={hidden_size}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"Recurrent: dropout must lie in [0, 1), got {dropout}")


def LSTM(input_size, hidden_size, **kwargs):
    """Recurrent(kind="lstm"); proj_size > 0 gives LSTMP."""
    return Recurrent(input_size, hidden_size, kind="lstm", **kwargs)


def GRU(input_size, hidden_size, **kwargs):
    """Recurrent(kind="gru")."""
    return Recurrent(input_size, hidden_size, kind="gru", **kwargs)


def RNN(input_size, hidden_size, **kwargs):
    """Recurrent(kind="rnn"), the tanh baseline."""
    return Recurrent(input_size, hidden_size, kind="rnn", **kwargs)
