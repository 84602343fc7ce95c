"""Reproducible sampling and the compiled generation loop.

Randomness is an explicit state array, never numpy's global generator: a
xoshiro256** state (Blackman & Vigna 2018), four uint64 words seeded from an
int by splitmix64. A sampling call advances the array in place, so a caller
that keeps the array continues the stream exactly where it stopped.

One draw rule everywhere: a sample costs exactly one uniform draw, except at
temperature 0 (argmax), which costs none. ``lstm_generate`` samples with the
same core as ``sample_logits``, so a NumPy step loop that calls
``sample_logits`` with the same state reproduces its ids.
"""
import numpy as np
from numba import njit

from suite.kernels.config import JIT
from suite.kernels.lstm_cell import lstm_cell_row, n_gates
from suite.kernels.matmul import GEMV_BLAS_MIN, row_matmul_add  # z += x @ W, one row

_FLOATS = (np.float32, np.float64)
_MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------- the generator

def _splitmix64(x):
    """One splitmix64 step on a Python int: (new x, output)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x, z ^ (z >> 31)


def new_rng(seed):
    """A fresh xoshiro256** state seeded from an int.

    Parameters
    ----------
    seed : int
        Any Python int; taken modulo 2**64.

    Returns
    -------
    np.ndarray [shape=(4,), dtype=uint64]
        Pass it to the sampling functions, which advance it in place.
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {type(seed).__name__}")
    x = int(seed) & _MASK64
    words = []
    for _ in range(4):
        x, out = _splitmix64(x)
        words.append(out)
    # splitmix64 is a bijection of its counter, so four outputs are never all zero.
    return np.array(words, dtype=np.uint64)


def _check_rng(rng, name="rng"):
    if not isinstance(rng, np.ndarray) or rng.dtype != np.uint64 or rng.shape != (4,):
        got = f"shape {rng.shape}, dtype {rng.dtype}" if isinstance(rng, np.ndarray) else type(rng).__name__
        raise ValueError(f"{name} must be a (4,) uint64 state from new_rng(seed), got {got}")
    if not rng.flags.c_contiguous or not rng.flags.writeable:
        raise ValueError(f"{name} must be a contiguous, writeable array: it is advanced in place")
    if not rng.any():
        raise ValueError(f"{name} is all zeros, a fixed point of xoshiro256**; use new_rng(seed)")


_U17 = np.uint64(17)
_U45 = np.uint64(45)
_U19 = np.uint64(19)
_U7 = np.uint64(7)
_U57 = np.uint64(57)
_U11 = np.uint64(11)
_U5 = np.uint64(5)
_U9 = np.uint64(9)
_TWO_M53 = 1.0 / 9007199254740992.0  # 2**-53


@njit(**JIT)
def _next_u64(s):
    """xoshiro256**: next 64-bit output, advancing s (4,) uint64 in place."""
    x = s[1] * _U5
    result = ((x << _U7) | (x >> _U57)) * _U9
    t = s[1] << _U17
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = (s[3] << _U45) | (s[3] >> _U19)
    return result


@njit(**JIT)
def _next_uniform(s):
    """A float64 uniform in [0, 1) from the top 53 bits of one output."""
    return np.float64(_next_u64(s) >> _U11) * _TWO_M53


# ---------------------------------------------------------------- sampling

@njit(**JIT)
def _argmax(x):
    best = 0
    for v in range(1, x.shape[0]):
        if x[v] > x[best]:
            best = v
    return best


@njit(**JIT)
def _sample_core(logits, temperature, top_k, state, probs):
    """Draw one id from softmax(logits / temperature) restricted to the top_k.

    probs (V,) float64 is scratch. Ties at the k-th largest logit keep the
    lowest ids, so exactly top_k ids stay. Inverse CDF over one uniform draw.
    """
    V = logits.shape[0]
    if temperature == 0.0:
        return _argmax(logits)
    m = np.float64(logits[_argmax(logits)])
    threshold = -np.inf
    ties_left = V
    if 0 < top_k < V:
        threshold = np.float64(np.partition(logits, V - top_k)[V - top_k])
        ties_left = top_k
        for v in range(V):
            if logits[v] > threshold:
                ties_left -= 1
    total = 0.0
    for v in range(V):
        x = np.float64(logits[v])
        keep = x > threshold
        if x == threshold and ties_left > 0:
            keep = True
            ties_left -= 1
        p = 0.0
        if keep:
            # x == m spelled out: fastmath may compute (x - m) * (1 / T), and 1 / T
            # overflows for a tiny T, which would make the kept maximum 0 * inf = NaN.
            p = 1.0 if x == m else np.exp((x - m) / temperature)
        probs[v] = p
        total += p
    u = _next_uniform(state) * total
    acc = 0.0
    last = 0
    for v in range(V):
        if probs[v] > 0.0:
            acc += probs[v]
            last = v
            if u < acc:
                return v
    return last  # u rounded up to total


def _check_temperature_top_k(temperature, top_k):
    if not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature is {temperature}, expected a finite value >= 0 (0 means argmax)")
    if isinstance(top_k, (bool, np.bool_)) or int(top_k) != top_k or top_k < 0:
        raise ValueError(f"top_k is {top_k}, expected an int >= 0 (0 means all)")
    return float(temperature), int(top_k)


def sample_logits(logits, temperature, top_k, rng):
    """Sample one id from logits; wraps ``_sample_core``.

    Parameters
    ----------
    logits : np.ndarray [shape=(V,), dtype=float32 or float64]
    temperature : float
        >= 0; 0 means argmax (lowest id among ties) and draws nothing.
    top_k : int
        >= 0; keep the top_k largest logits (ties keep the lowest ids); 0 means all.
    rng : np.ndarray [shape=(4,), dtype=uint64]
        From ``new_rng``; advanced in place by one draw unless temperature == 0.

    Returns
    -------
    int
    """
    logits = np.asarray(logits)
    if logits.dtype not in _FLOATS:
        raise ValueError(f"logits has dtype {logits.dtype}, expected float32 or float64")
    if logits.ndim != 1 or logits.shape[0] == 0:
        raise ValueError(f"logits has shape {logits.shape}, expected (V,) with V >= 1")
    temperature, top_k = _check_temperature_top_k(temperature, top_k)
    _check_rng(rng)
    probs = np.empty(logits.shape[0], dtype=np.float64)  # (V,)
    return int(_sample_core(np.ascontiguousarray(logits), temperature, top_k, rng, probs))


# ---------------------------------------------------------------- generation

@njit(**JIT)
def _generate(prime, n_steps, table0, W_ih, W_hh, b, W_out, b_out, h, c,
              temperature, top_k, state, cifg, forced, blas, ids):
    """Feed prime then sample n_steps ids into ids, updating h, c (L, H) in place.

    forced (n_steps,): -1 samples step j; any other value is written to ids[j]
    and fed back like a sampled id, with no output layer and no random draw.

    W_ih, W_hh, b are tuples indexed by layer (W_ih[0], b[0] unused: layer 0
    gathers its input projection from table0). Every buffer is allocated here,
    once, so the step loop allocates nothing but np.partition's copy for top_k.
    blas: the LSTM's products through BLAS's GEMV (matmul.GEMV_BLAS_MIN).
    """
    L = h.shape[0]
    V = W_out.shape[1]
    z = np.empty(table0.shape[1], dtype=table0.dtype)  # (G*H,)
    logits = np.empty(V, dtype=table0.dtype)  # (V,)
    probs = np.empty(V, dtype=np.float64)  # (V,)
    peep = np.zeros((3, h.shape[1]), dtype=table0.dtype)  # peepholes are not supported here
    # A separate output buffer for c: with c_prev and c_out the same memory LLVM
    # cannot prove the cell loop free of overlap and runs it scalar (~10x slower).
    c_new = np.empty(h.shape[1], dtype=table0.dtype)  # (H,)
    gemv = np.empty(table0.shape[1] if blas else 0, dtype=table0.dtype)  # (G*H,) BLAS's products, or none
    P = prime.shape[0]
    # The last token of prime + ids is never fed: h, c end where a next call
    # that primes with that token continues, so chunks join seamlessly.
    for t in range(P - 1 + n_steps):
        tok = prime[t] if t < P else ids[t - P]
        feed_token(tok, table0, W_ih, W_hh, b, h, c, cifg, z, c_new, peep, gemv)
        if t >= P - 1:
            j = t - (P - 1)
            if forced[j] >= 0:
                ids[j] = forced[j]
                continue
            output_logits(h[L - 1], W_out, b_out, logits)
            ids[j] = _sample_core(logits, temperature, top_k, state, probs)


@njit(**JIT)
def feed_token(tok, table0, W_ih, W_hh, b, h, c, cifg, z, c_new, peep, gemv=None):
    """One step of the stacked LSTM on token id ``tok``: h, c (L, H) updated in place.

    z (G*H,), c_new (H,) and peep (3, H) zeros are scratch (see ``_generate``);
    layer 0's input projection is the row tok of table0. gemv (G*H,): the products go through BLAS into it
    (matmul.row_matmul_add); without it (the compressor, whose coder needs the same bits on every run) they
    never call BLAS.
    """
    z[:] = table0[tok]
    row_matmul_add(h[0], W_hh[0], z, gemv)
    lstm_cell_row(z, c[0], peep, False, cifg, c_new, h[0])
    c[0, :] = c_new
    for layer in range(1, h.shape[0]):
        z[:] = b[layer]
        row_matmul_add(h[layer - 1], W_ih[layer], z, gemv)
        row_matmul_add(h[layer], W_hh[layer], z, gemv)
        lstm_cell_row(z, c[layer], peep, False, cifg, c_new, h[layer])
        c[layer, :] = c_new


@njit(**JIT)
def output_logits(h_top, W_out, b_out, logits):
    """logits (V,) = h_top @ W_out + b_out, in place."""
    logits[:] = b_out
    row_matmul_add(h_top, W_out, logits)


def input_table(W_ih0, b0, embedding=None):
    """Layer 0's input projection for every token id, computed once.

    Parameters
    ----------
    W_ih0 : np.ndarray [shape=(D, G*H)]
        Layer 0's input weights; for one-hot inputs D is the vocabulary size.
    b0 : np.ndarray [shape=(G*H,)]
        Layer 0's bias (both torch biases summed).
    embedding : np.ndarray [shape=(V, D)], optional
        Token embeddings; None means one-hot inputs (V = D).

    Returns
    -------
    np.ndarray [shape=(V, G*H), dtype=W_ih0.dtype]
        embedding @ W_ih0 + b0 (or W_ih0 + b0).
    """
    W_ih0 = np.asarray(W_ih0)
    b0 = np.asarray(b0)
    if W_ih0.dtype not in _FLOATS:
        raise ValueError(f"W_ih0 has dtype {W_ih0.dtype}, expected float32 or float64")
    if W_ih0.ndim != 2:
        raise ValueError(f"W_ih0 has shape {W_ih0.shape}, expected (D, G*H)")
    if b0.shape != (W_ih0.shape[1],) or b0.dtype != W_ih0.dtype:
        raise ValueError(f"b0 has shape {b0.shape} and dtype {b0.dtype}, "
                         f"expected ({W_ih0.shape[1]},) {W_ih0.dtype} for W_ih0 {W_ih0.shape}")
    if embedding is None:
        return np.ascontiguousarray(W_ih0 + b0)  # (V, G*H)
    embedding = np.asarray(embedding)
    if embedding.ndim != 2 or embedding.shape[1] != W_ih0.shape[0] or embedding.dtype != W_ih0.dtype:
        raise ValueError(f"embedding has shape {embedding.shape} and dtype {embedding.dtype}, "
                         f"expected (V, {W_ih0.shape[0]}) {W_ih0.dtype} for W_ih0 {W_ih0.shape}")
    return np.ascontiguousarray(embedding @ W_ih0 + b0)  # (V, G*H)


def _layer_arrays(name, seq, L, shape, dtype, skip_first):
    """Per-layer arrays as a list of contiguous arrays (None in slot 0 if skip_first)."""
    if seq is None and skip_first and L == 1:
        return [None]
    if isinstance(seq, np.ndarray) and seq.ndim == len(shape):
        raise ValueError(f"{name} must be a sequence of {L} per-layer arrays (or a stacked array), "
                         f"got one array of shape {seq.shape}")
    try:
        n = len(seq)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of {L} per-layer arrays") from None
    if n != L:
        raise ValueError(f"{name} has {n} layers, expected {L} (the rows of h0)")
    out = []
    for layer in range(L):
        if skip_first and layer == 0:
            out.append(None)
            continue
        a = np.asarray(seq[layer])
        if a.shape != shape or a.dtype != dtype:
            raise ValueError(f"{name}[{layer}] has shape {a.shape} and dtype {a.dtype}, "
                             f"expected {shape} {dtype}")
        out.append(np.ascontiguousarray(a))
    return out


def lstm_generate(prime, n_steps, table0, W_ih, W_hh, b, W_out, b_out, h0, c0,
                  temperature=1.0, top_k=0, rng=None, cifg=False, forced=None):
    """Sample n_steps ids from a stacked LSTM + output layer; wraps ``_generate``.

    The whole loop (cells, output layer, softmax, draw) runs in compiled code.
    prime is fed first; the output after its last token gives ids[0], and
    each sampled id is fed back as the next input.

    Chunking: hT, cT are the state *before* the last token of prime + ids is
    fed. Calling again with prime=ids[-1:], h0=hT, c0=cT and the same rng
    array continues exactly as one longer call would.

    Parameters
    ----------
    prime : np.ndarray [shape=(P,), dtype=int], P >= 1
        Token ids in [0, V).
    n_steps : int
    table0 : np.ndarray [shape=(V, G*H)]
        Layer 0's input projection per token (see ``input_table``); G = 3 if cifg else 4.
    W_ih : sequence of L arrays [shape=(H, G*H)]
        Input weights of each layer; W_ih[0] is ignored (None is fine): it is in table0.
        For L == 1, W_ih and b may be None.
    W_hh : sequence of L arrays [shape=(H, G*H)]
        Recurrent weights of each layer.
    b : sequence of L arrays [shape=(G*H,)]
        Biases of each layer; b[0] is ignored (it is in table0).
        A stacked (L, ...) array works for any of the three.
    W_out : np.ndarray [shape=(H, V)]
    b_out : np.ndarray [shape=(V,)]
    h0, c0 : np.ndarray [shape=(L, H)]
        Not modified.
    temperature : float
        >= 0; 0 means greedy (argmax).
    top_k : int
        >= 0; 0 means all ids.
    rng : None, int or np.ndarray [shape=(4,), dtype=uint64]
        An array from ``new_rng`` is advanced in place (one draw per sampled
        id unless temperature == 0); an int seeds a new state; None means seed 0.
    cifg : bool
        Coupled input-forget gate cells (G = 3). Peepholes are not supported.
    forced : None or np.ndarray [shape=(n_steps,), dtype=int]
        Ids to emit instead of sampling: -1 samples that step, any id in [0, V)
        is written to ids and fed back as if sampled (no random draw is used,
        so forcing the first k steps equals priming with those ids). Harmony
        under a given melody: force the melody's tokens, sample the rest.

    Returns
    -------
    ids : np.ndarray [shape=(n_steps,), dtype=int64]
    hT, cT : np.ndarray [shape=(L, H)]
    rng : np.ndarray [shape=(4,), dtype=uint64]
        The advanced state (the same array when one was passed).

    All float arrays share one dtype, float32 or float64.
    """
    args = checked_generation_args(prime, n_steps, table0, W_ih, W_hh, b, W_out, b_out, h0, c0, temperature, top_k,
                                   rng, cifg, forced)
    ids = np.empty(int(n_steps), dtype=np.int64)  # (n_steps,)
    _generate(*args, args[4][0].size >= GEMV_BLAS_MIN, ids)
    h, c, rng = args[8], args[9], args[12]
    return ids, h, c, rng


def checked_generation_args(prime, n_steps, table0, W_ih, W_hh, b, W_out, b_out, h0, c0, temperature, top_k, rng,
                            cifg, forced):
    """``_generate``'s arguments but ids, checked and made contiguous (see ``lstm_generate``): prime, n_steps,
    table0, W_ih, W_hh, b (tuples), W_out, b_out, h, c (copies of h0, c0), temperature, top_k, rng, cifg, forced.
    ValueError naming the argument that is wrong."""
    h0 = np.asarray(h0)
    c0 = np.asarray(c0)
    if h0.dtype not in _FLOATS:
        raise ValueError(f"h0 has dtype {h0.dtype}, expected float32 or float64")
    if h0.ndim != 2 or h0.shape[0] < 1 or h0.shape[1] < 1:
        raise ValueError(f"h0 has shape {h0.shape}, expected (L, H) with L, H >= 1")
    L, H = h0.shape
    dtype = h0.dtype
    if c0.shape != h0.shape or c0.dtype != dtype:
        raise ValueError(f"c0 has shape {c0.shape} and dtype {c0.dtype}, expected {h0.shape} {dtype}")
    GH = n_gates(cifg) * H
    table0 = np.asarray(table0)
    if table0.ndim != 2 or table0.shape[1] != GH or table0.shape[0] < 1 or table0.dtype != dtype:
        raise ValueError(f"table0 has shape {table0.shape} and dtype {table0.dtype}, "
                         f"expected (V, {GH}) {dtype} for hidden_size={H}, cifg={bool(cifg)}")
    V = table0.shape[0]
    W_out = np.asarray(W_out)
    b_out = np.asarray(b_out)
    if W_out.shape != (H, V) or W_out.dtype != dtype:
        raise ValueError(f"W_out has shape {W_out.shape} and dtype {W_out.dtype}, "
                         f"expected ({H}, {V}) {dtype}: sampled ids are fed back through table0 ({V} rows)")
    if b_out.shape != (V,) or b_out.dtype != dtype:
        raise ValueError(f"b_out has shape {b_out.shape} and dtype {b_out.dtype}, expected ({V},) {dtype}")
    W_hh_l = _layer_arrays("W_hh", W_hh, L, (H, GH), dtype, skip_first=False)
    W_ih_l = _layer_arrays("W_ih", W_ih, L, (H, GH), dtype, skip_first=True)
    b_l = _layer_arrays("b", b, L, (GH,), dtype, skip_first=True)
    # Layer 0 slots are never read; any array of the right type keeps the tuple uniform.
    W_ih_l[0] = W_hh_l[0]
    b_l[0] = table0[0]

    prime = np.asarray(prime)
    if prime.ndim != 1 or prime.shape[0] < 1 or prime.dtype.kind not in "iu":
        raise ValueError(f"prime has shape {prime.shape} and dtype {prime.dtype}, expected (P,) ints with P >= 1")
    if prime.min() < 0 or prime.max() >= V:
        raise ValueError(f"prime holds ids outside [0, {V}): min {prime.min()}, max {prime.max()}")
    if isinstance(n_steps, (bool, np.bool_)) or int(n_steps) != n_steps or n_steps < 0:
        raise ValueError(f"n_steps is {n_steps}, expected an int >= 0")
    temperature, top_k = _check_temperature_top_k(temperature, top_k)
    if rng is None:
        rng = new_rng(0)
    elif isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        rng = new_rng(rng)
    else:
        _check_rng(rng)

    h = np.array(h0, order="C")  # (L, H), copied: the caller's state is not touched
    c = np.array(c0, order="C")  # (L, H)
    if forced is None:
        forced = np.full(int(n_steps), -1, dtype=np.int64)  # (n_steps,)
    else:
        forced = np.asarray(forced)
        if forced.shape != (int(n_steps),) or forced.dtype.kind not in "iu":
            raise ValueError(f"forced has shape {forced.shape} and dtype {forced.dtype}, "
                             f"expected ({int(n_steps)},) ints (one per step, -1 = sample)")
        if forced.size and (forced.min() < -1 or forced.max() >= V):
            raise ValueError(f"forced holds values outside -1 (sample) and ids [0, {V}): "
                             f"min {forced.min()}, max {forced.max()}")
        forced = np.ascontiguousarray(forced, dtype=np.int64)
    return (np.ascontiguousarray(prime, dtype=np.int64), int(n_steps), np.ascontiguousarray(table0),
            tuple(W_ih_l), tuple(W_hh_l), tuple(b_l), np.ascontiguousarray(W_out), np.ascontiguousarray(b_out),
            h, c, temperature, top_k, rng, bool(cifg), forced)


@njit(**JIT)
def _top_k_rows(x, k, out):
    """out[r] = the indices of the k largest x[r] (finite or -inf), largest first; ties keep the lower index."""
    R, N = x.shape
    vals = np.empty(k, dtype=np.float64)
    for r in range(R):
        n = 0
        for j in range(N):
            v = x[r, j]
            if n == k and not v > vals[k - 1]:
                continue
            # insertion into the sorted (descending) list of at most k
            pos = n if n < k else k - 1
            while pos > 0 and v > vals[pos - 1]:
                if pos < k:
                    vals[pos] = vals[pos - 1]
                    out[r, pos] = out[r, pos - 1]
                pos -= 1
            vals[pos] = v
            out[r, pos] = j
            if n < k:
                n += 1
        for j in range(n, k):
            out[r, j] = -1


def top_k_rows(x, k):
    """Indices (R, k) of each row's k largest values of x (R, N), largest first (ties: lower index first);
    -1 where a row has fewer than k entries. The beam search's selection: O(N k) in one pass instead of a sort."""
    x = np.ascontiguousarray(x)
    if x.ndim != 2 or x.dtype not in (np.float32, np.float64):
        raise ValueError(f"top_k_rows: x has shape {x.shape} and dtype {x.dtype}, expected (R, N) float")
    if not 1 <= k:
        raise ValueError(f"top_k_rows: k must be >= 1, got {k}")
    out = np.empty((x.shape[0], k), dtype=np.int64)
    _top_k_rows(x, int(k), out)
    return out
