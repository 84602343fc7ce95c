"""Feed-forward layers: Linear, Embedding, Dropout.

Weights are stored (in, out) so that y = x @ W, the layout the kernels use for
their input projections. Every random choice comes from an explicit
np.random.Generator (the `rng` argument, else one made from `seed`), never from
numpy's global state, so a model is reproducible from its config alone.
"""
import numpy as np

from suite.device import host, like, on_device, to_device
from suite.nn.module import Module, Parameter


def make_rng(rng=None, seed=0):
    """The Generator to draw from: `rng` if given, else a fresh one from `seed`."""
    return rng if rng is not None else np.random.default_rng(seed)


def _need_cache(layer, cache):
    if cache is None:
        raise RuntimeError(f"{type(layer).__name__}.backward needs a forward in training "
                           "mode first (eval-mode forward keeps no cache)")
    return cache


class Linear(Module):
    """y = x @ W + b for x of shape (..., in_features).

    Initialisation uniform(+-1/sqrt(in_features)) for W and b (LeCun's fan-in
    scaling, as torch.nn.Linear) keeps the output variance near the input's.
    """

    def __init__(self, in_features, out_features, bias=True, rng=None, seed=0):
        rng = make_rng(rng, seed)
        bound = 1.0 / np.sqrt(in_features)
        self.W = Parameter(rng.uniform(-bound, bound, (in_features, out_features)))
        self.b = Parameter(rng.uniform(-bound, bound, out_features)) if bias else None
        self.in_features, self.out_features = in_features, out_features
        self._x = None

    def forward(self, x):
        if on_device(self.W.value):
            return self._forward_device(x)
        x = np.asarray(x, dtype=self.W.value.dtype)
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: input has shape {x.shape}, "
                             f"expected (..., {self.in_features})")
        self._x = x if self.training else None
        y = x @ self.W.value  # (..., out)
        if self.b is not None:
            y += self.b.value
        return y

    def _forward_device(self, x):
        from suite.kernels.cuda.elementwise import add_row
        from suite.kernels.cuda.gemm import gemm

        x = like(x, self.W.value)
        if tuple(x.shape)[-1] != self.in_features:
            raise ValueError(f"Linear: input has shape {tuple(x.shape)}, expected (..., {self.in_features})")
        self._x = x if self.training else None
        x2 = x.reshape(x.size // self.in_features, self.in_features)
        y = gemm(x2, self.W.value)  # (N, out)
        if self.b is not None:
            add_row(y, self.b.value)
        return y.reshape(tuple(x.shape)[:-1] + (self.out_features,))

    def _backward_device(self, x, dy):
        from suite.kernels.cuda.elementwise import col_sum_into
        from suite.kernels.cuda.gemm import gemm

        x2 = x.reshape(x.size // self.in_features, self.in_features)
        dy2 = like(dy, x).reshape(x2.shape[0], self.out_features)
        gemm(x2, dy2, self.W.grad, trans_a=True, beta=1.0)  # W.grad += x^T dy
        if self.b is not None:
            col_sum_into(self.b.grad, dy2)
        return gemm(dy2, self.W.value, trans_b=True).reshape(x.shape)

    def backward(self, dy):
        x = _need_cache(self, self._x)
        if on_device(self.W.value):
            return self._backward_device(x, dy)
        x2 = x.reshape(-1, self.in_features)  # (N, in)
        dy2 = np.asarray(dy, dtype=x.dtype).reshape(-1, self.out_features)  # (N, out)
        self.W.grad += x2.T @ dy2
        if self.b is not None:
            self.b.grad += dy2.sum(axis=0)
        return (dy2 @ self.W.value.T).reshape(x.shape)


class Embedding(Module):
    """Rows of a (V, E) table looked up by integer ids of any shape.

    Initialisation uniform(-0.1, 0.1), the range used by the LSTM language
    models of Zaremba et al. 2014 and Merity et al. 2017 (AWD-LSTM).
    """

    def __init__(self, num_embeddings, embedding_dim, rng=None, seed=0):
        rng = make_rng(rng, seed)
        self.W = Parameter(rng.uniform(-0.1, 0.1, (num_embeddings, embedding_dim)))
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self._ids = None

    def forward(self, ids):
        ids = host(ids)
        if ids.dtype.kind not in "iu":
            raise ValueError(f"Embedding: ids must be integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise ValueError(f"Embedding: ids must lie in [0, {self.num_embeddings}), "
                             f"got [{ids.min()}, {ids.max()}]")
        self._ids = ids if self.training else None
        if on_device(self.W.value):
            from suite.kernels.cuda.elementwise import gather_rows

            return gather_rows(self.W.value, ids.reshape(-1)).reshape(ids.shape + (self.embedding_dim,))
        return self.W.value[ids]  # (*ids.shape, E)

    def backward(self, dy):
        ids = _need_cache(self, self._ids)
        if on_device(self.W.value):
            from suite.kernels.cuda.elementwise import scatter_add_rows

            scatter_add_rows(self.W.grad, ids.reshape(-1), like(dy, self.W.grad).reshape(ids.size, self.embedding_dim))
            return None
        # a repeated id gets the sum of its rows' gradients: np.add.at does not
        # drop duplicates the way fancy-index += would
        np.add.at(self.W.grad, ids.reshape(-1),
                  np.asarray(dy, dtype=self.W.grad.dtype).reshape(-1, self.embedding_dim))
        return None  # ids have no gradient


class Dropout(Module):
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p).

    The identity in eval mode (and when p == 0), so inference needs no rescaling.
    """

    def __init__(self, p=0.5, rng=None, seed=0):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must lie in [0, 1), got {p}")
        self.p = float(p)
        self.rng = make_rng(rng, seed)
        self._mask = None

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        keep = self.rng.random(tuple(x.shape)) >= self.p  # drawn on the host on either device: same masks
        self._mask = keep.astype(x.dtype) / np.dtype(x.dtype).type(1.0 - self.p)  # (x.shape)
        if on_device(x):
            from suite.kernels.cuda.elementwise import multiply

            self._mask = to_device(self._mask)
            return multiply(x, self._mask)
        return x * self._mask

    def backward(self, dy):
        if self.p == 0.0:
            return dy
        mask = _need_cache(self, self._mask)
        if on_device(mask):
            from suite.kernels.cuda.elementwise import multiply

            return multiply(like(dy, mask), mask)
        return dy * mask
