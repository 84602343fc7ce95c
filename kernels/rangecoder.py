"""Arithmetic coding driven by a stacked LSTM, compiled: the text compressor's core.

A 32-bit carry-less range coder (Subbotin's): frequencies are integers summing to
``total`` <= 2**16; the encoder writes bytes into a buffer, the decoder reads them.
``code_tokens`` codes (or decodes) a run of tokens, one LSTM step per token
(sampling.feed_token / output_logits, the generation loop's step): the model's
softmax, quantised to frequencies (every symbol at least 1, the rounding remainder
to the likeliest), codes the token, then the token is fed to get the next
prediction. Encoder and decoder run this one function, so they compute the same
frequencies bit for bit on the same machine and build.

Symbol 0 is the escape: a token outside the vocabulary is coded as 0 followed by
its code point in two uniform parts (11 + 10 bits: U+0000..U+10FFFF, lone
surrogates included, which is how undecodable bytes travel).

The coder state is a uint64 array [low, range, code, position] (32-bit values).

A match model rides beside the LSTM (as in lpaq, cmix and lstm-compress): the
last MATCH_MIN tokens are hashed to the place they last occurred, and the token
that followed there is predicted, with a weight learnt from how often
predictions at this match length came true so far (counts per length bucket).
The coded distribution is (1 - w) * LSTM + w * [the predicted token]. It is what
lets a model beat xz on files that repeat themselves. ``match_step`` is one step
of it, shared by the coder and by the scorer (``match_predictions``).
"""
import numpy as np
from numba import njit

from suite.kernels.config import JIT
from suite.kernels.sampling import feed_token, output_logits

MASK = 0xFFFFFFFF
TOP = 1 << 24
BOT = 1 << 16
MATCH_MIN = 6        # tokens of context hashed to find an earlier occurrence
MATCH_HASH_BITS = 20
MATCH_BUCKETS = 16   # match lengths 0..15+ each learn their own weight
ESCAPE_HIGH = 1088   # code point >> 10: 0..1087 covers U+0000..U+10FFFF
ESCAPE_LOW = 1024


def new_match():
    """(table, state, counts) of an empty match model: hash -> position + 1, [pointer, length, predicted token,
    bucket], and per bucket [predictions, hits] as float64."""
    state = np.zeros(4, np.int64)
    state[2] = -1
    return np.zeros(1 << MATCH_HASH_BITS, np.int64), state, np.zeros((MATCH_BUCKETS, 2), np.float64)


@njit(**JIT)
def match_weight(state, counts):
    """The predicted token (-1 none) and its weight for the next position."""
    if state[2] < 0:
        return -1, 0.0
    b = state[3]
    return state[2], (counts[b, 1] + 0.5) / (counts[b, 0] + 1.0)


@njit(**JIT)
def match_step(syms, t, table, state, counts):
    """After token syms[t] is known: score the prediction made for it, follow or drop the match, index the
    context ending at t, and set the prediction for t + 1."""
    s = syms[t]
    if state[2] >= 0:
        b = state[3]
        counts[b, 0] += 1.0
        if state[2] == s:
            counts[b, 1] += 1.0
            state[0] += 1
            state[1] += 1
        else:
            state[0] = 0
            state[1] = 0
    if t + 1 >= MATCH_MIN:
        h = np.uint64(0)
        for k in range(t + 1 - MATCH_MIN, t + 1):
            h = (h * np.uint64(1000003)) ^ np.uint64(syms[k] + 1)
        h = (h ^ (h >> np.uint64(29))) & np.uint64((1 << MATCH_HASH_BITS) - 1)
        if state[0] == 0 and table[h] > 0:
            state[0] = table[h]
            state[1] = 0
        table[h] = t + 1
    if state[0] > 0:
        state[2] = syms[state[0]]  # the token that followed the earlier occurrence (always before t + 1)
        state[3] = min(state[1], MATCH_BUCKETS - 1)
    else:
        state[2] = -1


@njit(**JIT)
def match_predictions(syms):
    """(predicted token (n,), weight (n,)) the match model gives each position of syms, from the tokens before it."""
    n = syms.shape[0]
    pred = np.full(n, -1, np.int64)
    weight = np.zeros(n, np.float64)
    table = np.zeros(1 << MATCH_HASH_BITS, np.int64)
    state = np.zeros(4, np.int64)
    state[2] = -1
    counts = np.zeros((MATCH_BUCKETS, 2), np.float64)
    for t in range(n):
        pred[t], weight[t] = match_weight(state, counts)
        match_step(syms, t, table, state, counts)
    return pred, weight


def new_coder(data=None):
    """A coder state: for encoding (data None), or for decoding ``data`` (its first 4 bytes loaded)."""
    state = np.zeros(4, np.uint64)
    state[1] = MASK
    if data is not None:
        code = 0
        for k in range(4):
            code = (code << 8) | (int(data[k]) if k < len(data) else 0)
        state[2] = code
        state[3] = 4
    return state


@njit(**JIT)
def _renormalise(low, rng):
    """(whether a byte leaves the coder, the range): Subbotin's carry-less test, the same for encoder and decoder.
    The top byte is settled when low and low + range agree on it; a range fallen below BOT is cut to what keeps
    the top byte settled."""
    if (low ^ ((low + rng) & np.uint64(MASK))) < np.uint64(TOP):
        return True, rng
    if rng < np.uint64(BOT):
        return True, (np.uint64(0) - low) & np.uint64(BOT - 1)
    return False, rng


@njit(**JIT)
def _encode(st, buf, cum, freq, total):
    low, rng, pos = st[0], st[1], st[3]
    rng = rng // np.uint64(total)
    low = (low + np.uint64(cum) * rng) & np.uint64(MASK)
    rng = rng * np.uint64(freq)
    while True:
        shift, rng = _renormalise(low, rng)
        if not shift:
            break
        buf[pos] = np.uint8((low >> np.uint64(24)) & np.uint64(0xFF))
        pos += np.uint64(1)
        low = (low << np.uint64(8)) & np.uint64(MASK)
        rng = (rng << np.uint64(8)) & np.uint64(MASK)
    st[0], st[1], st[3] = low, rng, pos


@njit(**JIT)
def _decode_target(st, total):
    """The frequency slot the next symbol covers (range divided by total, kept for _decode)."""
    rng = st[1] // np.uint64(total)
    st[1] = rng
    value = ((st[2] - st[0]) & np.uint64(MASK)) // rng
    return min(int(value), total - 1)


@njit(**JIT)
def _decode(st, data, cum, freq):
    low, rng, code, pos = st[0], st[1], st[2], st[3]
    low = (low + np.uint64(cum) * rng) & np.uint64(MASK)
    rng = rng * np.uint64(freq)
    n = data.shape[0]
    while True:
        shift, rng = _renormalise(low, rng)
        if not shift:
            break
        byte = np.uint64(data[pos]) if pos < np.uint64(n) else np.uint64(0)
        code = ((code << np.uint64(8)) | byte) & np.uint64(MASK)
        pos += np.uint64(1)
        low = (low << np.uint64(8)) & np.uint64(MASK)
        rng = (rng << np.uint64(8)) & np.uint64(MASK)
    st[0], st[1], st[2], st[3] = low, rng, code, pos


@njit(**JIT)
def finish(st, buf):
    """Flush the encoder: its last 4 bytes. Returns the number of bytes written."""
    low, pos = st[0], st[3]
    for _ in range(4):
        buf[pos] = np.uint8((low >> np.uint64(24)) & np.uint64(0xFF))
        pos += np.uint64(1)
        low = (low << np.uint64(8)) & np.uint64(MASK)
    st[0], st[3] = low, pos
    return int(pos)


@njit(**JIT)
def quantise(logits, freq, cum, total, pred=-1, weight=0.0):
    """freq (V,) int64 >= 1 summing to total from (1 - weight) * softmax(logits) + weight * [token pred];
    cum (V+1,) their running sums. The rounding remainder goes to the likeliest token."""
    V = logits.shape[0]
    m = logits[0]
    for i in range(1, V):
        if logits[i] > m:
            m = logits[i]
    s = 0.0
    for i in range(V):
        s += np.exp(np.float64(logits[i]) - np.float64(m))
    spare = total - V
    used = 0
    best = 0
    top = -1.0
    for i in range(V):
        p = (1.0 - weight) * np.exp(np.float64(logits[i]) - np.float64(m)) / s
        if i == pred:
            p += weight
        if p > top:
            top = p
            best = i
        f = 1 + int(p * spare)
        freq[i] = f
        used += f
    freq[best] += total - used
    cum[0] = 0
    for i in range(V):
        cum[i + 1] = cum[i] + freq[i]


@njit(**JIT)
def code_tokens(encode, syms, points, start, stop, table0, W_ih, W_hh, b, W_out, b_out, h, c, cifg, logits, st, buf,
                total, table, mstate, counts):
    """Code syms[start:stop] (encode) into buf, or decode them from buf (decode) into syms and, for escapes, points.

    logits (V,) holds the model's prediction for position ``start`` and, on return, for ``stop``; h, c (L, H) the
    state after the token before ``start``, advanced in place; table, mstate, counts: the match model (new_match). Returns the number of bits the model's quantised
    frequencies cost (the ideal code length of this run, escapes included).
    """
    V = logits.shape[0]
    freq = np.empty(V, np.int64)
    cum = np.empty(V + 1, np.int64)
    z = np.empty(table0.shape[1], dtype=table0.dtype)
    c_new = np.empty(h.shape[1], dtype=table0.dtype)
    peep = np.zeros((3, h.shape[1]), dtype=table0.dtype)
    L = h.shape[0]
    bits = 0.0
    for j in range(start, stop):
        pred, weight = match_weight(mstate, counts)
        quantise(logits, freq, cum, total, pred, weight)
        if encode:
            s = syms[j]
            _encode(st, buf, cum[s], freq[s], total)
            if s == 0:
                cp = points[j]
                _encode(st, buf, cp >> 10, 1, ESCAPE_HIGH)
                _encode(st, buf, cp & 1023, 1, ESCAPE_LOW)
        else:
            target = _decode_target(st, total)
            lo, hi = 0, V  # the symbol s with cum[s] <= target < cum[s + 1]
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if cum[mid] <= target:
                    lo = mid
                else:
                    hi = mid
            s = lo
            _decode(st, buf, cum[s], freq[s])
            syms[j] = s
            if s == 0:
                high = _decode_target(st, ESCAPE_HIGH)
                _decode(st, buf, high, 1)
                low = _decode_target(st, ESCAPE_LOW)
                _decode(st, buf, low, 1)
                points[j] = high * ESCAPE_LOW + low
        bits += np.log2(total / freq[s])
        if s == 0:
            bits += np.log2(ESCAPE_HIGH * ESCAPE_LOW)
        match_step(syms, j, table, mstate, counts)
        feed_token(s, table0, W_ih, W_hh, b, h, c, cifg, z, c_new, peep)
        output_logits(h[L - 1], W_out, b_out, logits)
    return bits


@njit(**JIT)
def prime(tok, table0, W_ih, W_hh, b, W_out, b_out, h, c, cifg, logits):
    """Feed one token (the implicit one before the text) and leave the prediction for what follows in logits."""
    z = np.empty(table0.shape[1], dtype=table0.dtype)
    c_new = np.empty(h.shape[1], dtype=table0.dtype)
    peep = np.zeros((3, h.shape[1]), dtype=table0.dtype)
    feed_token(tok, table0, W_ih, W_hh, b, h, c, cifg, z, c_new, peep)
    output_logits(h[h.shape[0] - 1], W_out, b_out, logits)
