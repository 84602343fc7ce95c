"""Baselines every app reports beside its model, on the same split.

- NGramModel: interpolated Kneser-Ney with modified discounts (Chen & Goodman 1998)
  over integer tokens, the classic strong n-gram language model.
- xz_bits_per_char: what a general-purpose compressor makes of the test text.

The n-gram tables are sorted numpy arrays of n-gram keys: each n-gram of tokens
is one uint64 (exact base-(V+1) digits while (V+1)^order fits in 64 bits, a
splitmix64 hash chain beyond that), counted with np.unique and looked up with
np.searchsorted, so fitting 4 M tokens up to order 8 takes seconds, not minutes.
"""
import base64
import binascii
import lzma
import time
import zlib

import numpy as np
from numba import njit

_DISCOUNT_FLOOR = 0.1  # keeps every discount > 0, so lower orders (and unseen tokens) keep mass


@njit(cache=True)
def _splitmix64(x):
    # a uint64 or an array of them (uint64 arithmetic wraps, which is the point of a hash)
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _lookup(sorted_keys, queries):
    """(index, found) of each query in a sorted key array."""
    where = np.searchsorted(sorted_keys, queries)
    where = np.minimum(where, len(sorted_keys) - 1)
    return where, sorted_keys[where] == queries


def _unique(values):
    """np.unique(values, return_inverse=True), in one pass where values are already sorted (exact n-gram keys'
    contexts are: loading the handwriting model's 7-gram spent 26 ms of its start in np.unique's sorts, 5 here)."""
    if len(values) < 2 or not np.all(values[1:] >= values[:-1]):
        return np.unique(values, return_inverse=True)
    new = np.empty(len(values), bool)
    new[0] = True
    np.not_equal(values[1:], values[:-1], out=new[1:])
    return values[new], np.cumsum(new) - 1


PACKED = "zlib+base64:"  # an array in to_dict: little-endian 8-byte integers, zlib-compressed, base64 text


def _pack(array):
    """An int64/uint64 array as one JSON string: ~20x faster to read back than a list of numbers (a 7-gram's
    1.5 M counts took ~0.3 s to parse as JSON lists), and smaller."""
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    return PACKED + base64.b64encode(zlib.compress(data, 6)).decode("ascii")


def _unpack(value, dtype):
    """to_dict's array back: a _pack string, or a plain list of integers (models exported before packing)."""
    if not isinstance(value, str):
        return np.array(value, dtype=dtype)
    if not value.startswith(PACKED):
        raise ValueError(f"an array must be a list of integers or {PACKED!r} text, got {value[:20]!r}")
    try:
        data = zlib.decompress(base64.b64decode(value[len(PACKED):], validate=True))
    except (binascii.Error, zlib.error) as error:
        raise ValueError(f"a packed array does not decode: {error}") from None
    if len(data) % 8:
        raise ValueError(f"a packed array has {len(data)} bytes, not a multiple of 8")
    return np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)


def _discounts(counts):
    """Modified Kneser-Ney discounts [0, D1, D2, D3+] from the count-of-counts."""
    n1, n2, n3, n4 = (int(np.count_nonzero(counts == r)) for r in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5
    out = [0.0]
    for r, (lo, hi) in enumerate(((n1, n2), (n2, n3), (n3, n4)), start=1):
        d = r - (r + 1) * y * hi / lo if lo > 0 else y
        out.append(float(np.clip(d, _DISCOUNT_FLOOR, r - _DISCOUNT_FLOOR)))
    return np.array(out)


class _Level:
    """Counts of the n-grams of one length, and their contexts, in two modes.

    mode "raw": ordinary counts (the model's top order); mode "cont": continuation
    counts N1+(. h w), the number of distinct tokens seen before (h, w) (every lower
    order, as Kneser-Ney prescribes).
    """

    def __init__(self, keys, raw, ctx_of):
        self.keys = keys  # (G,) sorted n-gram keys
        self.counts = {"raw": raw}  # (G,) int64
        self.ctx_keys, self._ctx_index = _unique(ctx_of)  # (C,), (G,)
        self.denominator, self.gamma, self.discount = {}, {}, {}
        self._context_stats("raw")

    def set_continuation(self, cont):
        self.counts["cont"] = cont
        self._context_stats("cont")

    def _context_stats(self, mode):
        counts = self.counts[mode]
        d = _discounts(counts)
        n_ctx = len(self.ctx_keys)
        denominator = np.bincount(self._ctx_index, weights=counts, minlength=n_ctx)  # (C,)
        held = np.bincount(self._ctx_index, weights=d[np.minimum(counts, 3)], minlength=n_ctx)
        self.denominator[mode] = denominator
        self.gamma[mode] = held / denominator  # mass left for the lower order
        self.discount[mode] = d

    def update(self, mode, gram_keys, ctx_keys, p_lower):
        """P(w | h) at this level, given P(w | shorter h) = p_lower, for each query."""
        g, g_found = _lookup(self.keys, gram_keys)
        c = np.where(g_found, self.counts[mode][g], 0)
        h, h_found = _lookup(self.ctx_keys, ctx_keys)
        discounted = np.maximum(c - self.discount[mode][np.minimum(c, 3)], 0.0)
        p = discounted / self.denominator[mode][h] + self.gamma[mode][h] * p_lower
        return np.where(h_found, p, p_lower)  # an unseen context backs off entirely


@njit(cache=True)
def _key(prefix, token, base, exact):
    """NGramModel._combine of one key (uint64 arithmetic wraps, as the hash wants)."""
    x = prefix * base + token
    return x if exact else _splitmix64(x)


@njit(cache=True)
def _find(sorted_keys, query):
    """Index of query in a sorted key array, or -1 (_lookup of one query)."""
    i = min(np.searchsorted(sorted_keys, query), len(sorted_keys) - 1)
    return i if sorted_keys[i] == query else -1


@njit(cache=True)
def _next_distribution(context, V, base, exact, g_off, g_keys, g_counts, c_off, c_keys, c_den, c_gamma, disc):
    """NGramModel.next_distribution compiled: the same arithmetic, level by level (one context lookup a level,
    since every candidate word shares it), so the same float64 values."""
    p = np.full(V, 1.0 / V)
    n = len(context)
    for k in range(1, len(g_off)):
        prefix = np.uint64(0)
        for i in range(n - (k - 1), n):
            prefix = _key(prefix, context[i], base, exact)
        h = _find(c_keys[c_off[k - 1]:c_off[k]], prefix)
        if h < 0:
            continue  # an unseen context backs off entirely
        h += c_off[k - 1]
        gk = g_keys[g_off[k - 1]:g_off[k]]
        den, gamma = c_den[h], c_gamma[h]
        for w in range(V):
            g = _find(gk, _key(prefix, np.uint64(w), base, exact))
            c = g_counts[g_off[k - 1] + g] if g >= 0 else 0
            discounted = max(c - disc[k - 1, min(c, 3)], 0.0)
            p[w] = discounted / den + gamma * p[w]
    return p


class NGramModel:
    """Interpolated modified Kneser-Ney n-gram model over tokens 0..vocab_size-1.

    Every step is a proper distribution over the whole vocabulary with no zero:
    the unigram level interpolates with the uniform 1/vocab_size. A sequence is one
    stream: its start is padded with a begin token (id vocab_size), never predicted.
    A model fitted at order K also evaluates any order k <= K exactly as an order-k
    model would (`order=` argument), which is how `best_order` fits once.

    Parameters
    ----------
    order : int
        n: the longest n-gram, i.e. n-1 tokens of context.
    vocab_size : int
    """

    def __init__(self, order, vocab_size):
        if int(order) < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if int(vocab_size) < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        self.order = int(order)
        self.vocab_size = int(vocab_size)
        self.base = self.vocab_size + 1  # + the begin token
        self.exact = self.base ** self.order <= 2**64  # keys are base-(V+1) numbers
        self.levels = None
        self.fit_seconds = {}  # {k: cumulative seconds to fit levels 1..k}
        self._packed = {}  # {order: the levels' arrays for _next_distribution}

    def _check(self, ids, name):
        ids = np.asarray(ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"{name} must be a 1-D integer array, got shape {ids.shape} dtype {ids.dtype}")
        if ids.size == 0:
            raise ValueError(f"{name} is empty")
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(f"{name} must lie in [0, {self.vocab_size}), got [{ids.min()}, {ids.max()}]")
        return ids.astype(np.uint64)

    def _combine(self, prefix_keys, tokens):
        """Key of (prefix..., token) from the key of prefix; the empty prefix has key 0."""
        keys = prefix_keys * np.uint64(self.base) + tokens
        return keys if self.exact else _splitmix64(keys)

    def _stream_keys(self, ids, order):
        """Yield (k, keys of the k-grams ending at each position, keys of their contexts)."""
        pad = order - 1
        stream = np.concatenate([np.full(pad, self.vocab_size, np.uint64), ids])  # (P+N,)
        previous = np.zeros(len(stream), np.uint64)  # key of the empty prefix
        for k in range(1, order + 1):
            shifted = np.empty_like(previous)
            shifted[0] = 0
            shifted[1:] = previous[:-1]
            current = self._combine(shifted, stream)  # (P+N,)
            yield k, current[pad:], shifted[pad:]
            previous = current

    def fit(self, ids):
        """Count n-grams of orders 1..order in ids (int array, shape (N,)). Returns self."""
        ids = self._check(ids, "ids")
        start = time.perf_counter()
        self.levels, previous_grams, self._packed = [], None, {}
        for k, grams, contexts in self._stream_keys(ids, self.order):
            keys, first, raw = np.unique(grams, return_index=True, return_counts=True)
            self.levels.append(_Level(keys, raw.astype(np.int64), contexts[first]))
            if previous_grams is not None:
                # The distinct (k)-grams ending at a position, grouped by the (k-1)-gram
                # ending there: how many distinct tokens precede each (k-1)-gram.
                suffix_keys, cont = np.unique(previous_grams[first], return_counts=True)
                assert len(suffix_keys) == len(self.levels[-2].keys)
                self.levels[-2].set_continuation(cont.astype(np.int64))
            previous_grams = grams
            self.fit_seconds[k] = time.perf_counter() - start
        return self

    def _order(self, order):
        if self.levels is None:
            raise ValueError("fit the model first")
        order = self.order if order is None else int(order)
        if not 1 <= order <= self.order:
            raise ValueError(f"order must lie in [1, {self.order}], got {order}")
        return order

    def token_probabilities(self, ids, order=None):
        """P(ids[t] | ids[:t]) for every t, np.ndarray [shape=(N,), dtype=float64]."""
        order = self._order(order)
        ids = self._check(ids, "ids")
        p = np.full(len(ids), 1.0 / self.vocab_size)
        for k, grams, contexts in self._stream_keys(ids, order):
            p = self.levels[k - 1].update("raw" if k == order else "cont", grams, contexts, p)
        return p

    def bits_per_token(self, ids, order=None):
        """Mean -log2 P(ids[t] | ids[:t]) over the sequence, one stream from its start."""
        return float(-np.mean(np.log2(self.token_probabilities(ids, order))))

    def next_distribution(self, context, order=None):
        """P(w | context) for every w, np.ndarray [shape=(vocab_size,)], sums to 1.

        context: the tokens so far (most recent last); fewer than order-1 tokens
        means the start of a stream.
        """
        order = self._order(order)
        context = [int(t) for t in context][-(order - 1):] if order > 1 else []
        if any(not 0 <= t < self.vocab_size for t in context):
            raise ValueError(f"context tokens must lie in [0, {self.vocab_size})")
        context = [self.vocab_size] * (order - 1 - len(context)) + context
        if order not in self._packed:
            self._packed[order] = self._pack(order)
        return _next_distribution(np.array(context, np.uint64), self.vocab_size, np.uint64(self.base), self.exact,
                                  *self._packed[order])

    def _pack(self, order):
        """Levels 1..order as flat arrays for _next_distribution: (g_off, g_keys, g_counts, c_off, c_keys,
        c_den, c_gamma, disc), each level's counts, denominators, gammas and discounts in the mode that level
        plays at this order ("raw" at the top, "cont" below)."""
        levels = self.levels[:order]
        modes = ["cont"] * (order - 1) + ["raw"]

        def offsets(arrays):
            return np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)

        return (offsets([lv.keys for lv in levels]), np.concatenate([lv.keys for lv in levels]),
                np.concatenate([lv.counts[m] for lv, m in zip(levels, modes)]).astype(np.int64),
                offsets([lv.ctx_keys for lv in levels]), np.concatenate([lv.ctx_keys for lv in levels]),
                np.concatenate([lv.denominator[m] for lv, m in zip(levels, modes)]),
                np.concatenate([lv.gamma[m] for lv, m in zip(levels, modes)]),
                np.stack([lv.discount[m] for lv, m in zip(levels, modes)]))

    def to_dict(self, packed=True):
        """The fitted counts as JSON-ready arrays (keys delta-coded); from_dict rebuilds the same model.

        packed: each array as one _pack string; False: plain lists of integers, as models were exported before
        packing (readable, ~20x slower to parse)."""
        if self.levels is None:
            raise ValueError("to_dict needs a fitted model; call fit first")
        pack = _pack if packed else (lambda a: a.tolist())
        levels = []
        for level in self.levels:
            entry = {"keys": pack(np.diff(level.keys, prepend=np.uint64(0))),
                     "counts": pack(level.counts["raw"])}
            if "cont" in level.counts:
                entry["continuation"] = pack(level.counts["cont"])
            if not self.exact:  # hashed keys: the context of a gram is not its key // base
                entry["contexts"] = pack(level.ctx_keys[level._ctx_index])
            levels.append(entry)
        return {"order": self.order, "vocab_size": self.vocab_size, "levels": levels}

    @classmethod
    def from_dict(cls, d):
        """Rebuild a fitted model from to_dict() output; ValueError (one line) if malformed."""
        try:
            model = cls(int(d["order"]), int(d["vocab_size"]))
            levels = d["levels"]
            if len(levels) != model.order:
                raise ValueError(f"{len(levels)} levels for order {model.order}")
            model.levels = []
            for k, entry in enumerate(levels, start=1):
                keys = np.cumsum(_unpack(entry["keys"], np.uint64), dtype=np.uint64)
                raw = _unpack(entry["counts"], np.int64)
                contexts = (keys // np.uint64(model.base) if model.exact
                            else _unpack(entry["contexts"], np.uint64))
                if not len(keys) == len(raw) == len(contexts):
                    raise ValueError(f"level {k} has arrays of different lengths")
                level = _Level(keys, raw, contexts)
                if k < model.order:
                    level.set_continuation(_unpack(entry["continuation"], np.int64))
                model.levels.append(level)
        except (KeyError, TypeError, OverflowError) as error:
            raise ValueError(f"malformed n-gram dictionary: {error!r}") from None
        return model


def best_order(train_ids, valid_ids, orders=range(1, 9), *, vocab_size):
    """Fit once at max(orders), pick the order with the lowest validation bits/token.

    Returns
    -------
    dict with
        valid_bits : {order: bits per token on valid_ids}
        best : the order with the fewest bits (the lowest order on a tie)
        seconds : {order: fit time of levels 1..order + evaluation time at that order}
        model : the fitted NGramModel of order max(orders); evaluate the chosen
            order on test with model.bits_per_token(test_ids, order=best)
    """
    orders = sorted(set(int(k) for k in orders))
    if not orders or orders[0] < 1:
        raise ValueError(f"orders must be positive integers, got {orders}")
    model = NGramModel(orders[-1], vocab_size).fit(train_ids)
    valid_bits, seconds = {}, {}
    for k in orders:
        start = time.perf_counter()
        valid_bits[k] = model.bits_per_token(valid_ids, order=k)
        seconds[k] = model.fit_seconds[k] + time.perf_counter() - start
    best = min(orders, key=lambda k: (valid_bits[k], k))
    return {"valid_bits": valid_bits, "best": best, "seconds": seconds, "model": model}


def xz_bits_per_char(text, preset=9 | lzma.PRESET_EXTREME):
    """Size of `xz -9e` output in bits per character of text (per byte for bytes).

    The conventional compressor baseline, and an unequal one on both sides: xz
    sees only the text it compresses (no training data, so it must learn the
    language from the test split itself, and pays for its ~60-byte container),
    while it codes every character exactly where a model's vocabulary may have
    folded rare characters into <unk>.
    """
    data = text if isinstance(text, (bytes, bytearray)) else text.encode("utf-8")
    if len(text) == 0:
        raise ValueError("text is empty")
    return 8.0 * len(lzma.compress(bytes(data), preset=preset)) / len(text)
