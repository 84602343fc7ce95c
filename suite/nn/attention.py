"""Additive (Bahdanau) attention as a layer, on kernels/attention.py.

The memory (image regions for captioning, encoder states for translation) is
set once per batch; its projection to keys is one GEMM, shared by every query
step. Queries come time-major, all T steps at once in training (the decoder
state at every step is known before attention reads it, as in Luong et al.
2015's "attention after the RNN"), or one step at a time (T = 1) in eval mode
for greedy or beam-search decoding, with the memory rows repeated per beam.

    layer.set_memory(memory, lengths)     # memory (B, N, K): keys = memory @ Wk + bk
    context, alpha = layer(query)         # query (T, B, Q): context (T, B, K), alpha (T, B, N)
    dquery = layer.backward(dcontext)     # adds grads; layer.dmemory is d loss / d memory

The memory is both the keys' source and the values, so dmemory sums both paths.
"""
import numpy as np

from suite.device import add_into, kernels, like, on_device
from suite.nn.layers import _need_cache, make_rng
from suite.nn.module import Module, Parameter


class AdditiveAttention(Module):
    """score[t, b, n] = v . tanh(query[t, b] @ Wq + memory[b, n] @ Wk + bk), softmax over
    the valid n, context = the alpha-weighted sum of memory rows.

    Parameters Wq (Q, A), Wk (K, A), bk (A,), v (A,). Initialisation
    uniform(+-1/sqrt(fan_in)) for Wq, Wk and v (fan_in Q, K, A: LeCun's
    scaling, as Linear), bk zero.

    Keys are computed by set_memory from the weights of that moment: call it
    again for each batch (after every optimiser step).
    """

    def __init__(self, query_size, memory_size, attn_size, rng=None, seed=0):
        rng = make_rng(rng, seed)
        for name, value in (("query_size", query_size), ("memory_size", memory_size),
                            ("attn_size", attn_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"AdditiveAttention: {name} must be an integer >= 1, "
                                 f"got {value!r}")
        Q, K, A = int(query_size), int(memory_size), int(attn_size)

        def uniform(fan_in, shape):
            bound = 1.0 / np.sqrt(fan_in)
            return rng.uniform(-bound, bound, shape)

        self.Wq = Parameter(uniform(Q, (Q, A)))  # (Q, A)
        self.Wk = Parameter(uniform(K, (K, A)))  # (K, A)
        self.bk = Parameter(np.zeros(A))         # (A,)
        self.v = Parameter(uniform(A, A))        # (A,)
        self.query_size, self.memory_size, self.attn_size = Q, K, A
        self._memory = self._keys = self._lengths = None
        self._cache = None
        self.dmemory = None

    def set_memory(self, memory, lengths=None):
        """Fix the memory the next forward calls attend over.

        Parameters
        ----------
        memory : np.ndarray [shape=(B, N, K)]
        lengths : np.ndarray [shape=(B,), int] or None
            Valid items per row, 1 <= len <= N (items beyond get zero weight);
            None means all N.
        """
        memory = self._move(memory)
        if memory.ndim != 3 or memory.shape[2] != self.memory_size or memory.shape[1] == 0:
            raise ValueError(f"AdditiveAttention: memory has shape {tuple(memory.shape)}, expected "
                             f"(B, N, {self.memory_size}) with N >= 1")
        B, N, K = memory.shape
        if lengths is not None:
            lengths = np.asarray(lengths)
            if lengths.shape != (B,) or not (lengths.dtype.kind in "iu" or lengths.size == 0):
                raise ValueError(f"AdditiveAttention: lengths has shape {lengths.shape} and dtype "
                                 f"{lengths.dtype}, expected ({B},) integers")
            if lengths.size and (lengths.min() < 1 or lengths.max() > N):
                raise ValueError(f"AdditiveAttention: lengths must lie in [1, N={N}], got min "
                                 f"{lengths.min()} and max {lengths.max()}")
        self._memory = memory
        keys = self._matmul(memory.reshape(B * N, K), self.Wk.value)  # (B*N, A)
        self._add_row(keys, self.bk.value)
        self._keys = keys.reshape(B, N, self.attn_size)        # (B, N, A)
        self._lengths = lengths
        self._cache = None
        self.dmemory = None

    def forward(self, query):
        """Attend with every query step.

        Parameters
        ----------
        query : np.ndarray [shape=(T, B, Q)]

        Returns
        -------
        context : np.ndarray [shape=(T, B, K)]
        alpha : np.ndarray [shape=(T, B, N)]
        """
        if self._memory is None:
            raise RuntimeError("AdditiveAttention.forward needs set_memory(memory) first")
        query = self._move(query)
        B = self._memory.shape[0]
        if query.ndim != 3 or tuple(query.shape)[1:] != (B, self.query_size):
            raise ValueError(f"AdditiveAttention: query has shape {tuple(query.shape)}, expected "
                             f"(T, {B}, {self.query_size}) for memory of {B} rows")
        T = query.shape[0]
        qp = self._matmul(query.reshape(T * B, self.query_size), self.Wq.value).reshape(T, B, self.attn_size)
        context, alpha, cache = kernels("attention", qp).additive_attention_forward(
            qp, self._keys, self._memory, self.v.value, self._lengths)  # (T, B, A) queries projected
        self._cache = (query, qp, alpha, cache) if self.training else None
        return context, alpha

    def backward(self, dcontext):
        """Backprop the latest training forward: adds every parameter's gradient,
        sets self.dmemory (B, N, K), returns dquery (T, B, Q)."""
        query, qp, alpha, cache = _need_cache(self, self._cache)
        dqp, dkeys, dvalues, dv = kernels("attention", qp).additive_attention_backward(
            self._move(dcontext), qp, self._keys, self._memory, self.v.value, self._lengths, alpha, cache)
        T, B, Q = query.shape
        N, K, A = self._memory.shape[1], self.memory_size, self.attn_size
        dqp2 = dqp.reshape(T * B, A)    # (T*B, A)
        dkeys2 = dkeys.reshape(B * N, A)  # (B*N, A)
        mem2 = self._memory.reshape(B * N, K)  # (B*N, K)
        if on_device(qp):
            from suite.kernels.cuda.elementwise import col_sum_into
            from suite.kernels.cuda.gemm import gemm

            gemm(query.reshape(T * B, Q), dqp2, self.Wq.grad, trans_a=True, beta=1.0)
            gemm(mem2, dkeys2, self.Wk.grad, trans_a=True, beta=1.0)
            col_sum_into(self.bk.grad, dkeys2)
            add_into(self.v.grad, dv)
            # the memory feeds the keys (through Wk) and is the values itself
            self.dmemory = gemm(dkeys2, self.Wk.value, trans_b=True).reshape(B, N, K)
            add_into(self.dmemory, dvalues)
            return gemm(dqp2, self.Wq.value, trans_b=True).reshape(T, B, Q)
        self.Wq.grad += query.reshape(T * B, Q).T @ dqp2
        self.Wk.grad += mem2.T @ dkeys2
        self.bk.grad += dkeys2.sum(axis=0)
        self.v.grad += dv
        # the memory feeds the keys (through Wk) and is the values itself
        self.dmemory = dvalues + (dkeys2 @ self.Wk.value.T).reshape(B, N, K)
        return (dqp2 @ self.Wq.value.T).reshape(T, B, Q)

    # -- on either device ----------------------------------------------------------------
    def _move(self, a):
        """a C-contiguous array in the parameters' dtype, where the parameters are."""
        return like(a, self.Wq.value)

    @staticmethod
    def _matmul(a, W):
        if on_device(W):
            from suite.kernels.cuda.gemm import gemm

            return gemm(a, W)
        return a @ W

    @staticmethod
    def _add_row(y, b):
        if on_device(y):
            from suite.kernels.cuda.elementwise import add_row

            add_row(y, b)
        else:
            y += b
