"""Baselines: the Kneser-Ney n-gram model and the xz compressor."""
from collections import Counter

import numpy as np
import pytest

from suite.baselines import NGramModel, best_order, xz_bits_per_char


def _reference_kn(train, vocab_size, order):
    """Slow, obvious interpolated modified Kneser-Ney: P(w | history) from dicts."""
    begin = vocab_size
    seq = [begin] * (order - 1) + list(train)
    grams = {k: Counter() for k in range(1, order + 1)}
    for t in range(order - 1, len(seq)):
        for k in range(1, order + 1):
            grams[k][tuple(seq[t - k + 1 : t + 1])] += 1
    continuation = {k: Counter() for k in range(1, order)}
    for k in range(1, order):
        for gram in grams[k + 1]:
            continuation[k][gram[1:]] += 1  # one more distinct token seen before gram[1:]

    def discounts(counts):
        n = [sum(1 for c in counts if c == r) for r in range(5)]
        y = n[1] / (n[1] + 2 * n[2]) if n[1] + n[2] else 0.5  # no singletons: a plain 0.5
        d = [r - (r + 1) * y * n[r + 1] / n[r] if n[r] else y for r in (1, 2, 3)]
        return [0.0] + [min(max(d_r, 0.1), r - 0.1) for r, d_r in zip((1, 2, 3), d)]

    def prob(history, w, n):
        p = 1.0 / vocab_size
        for k in range(1, n + 1):
            table = grams[k] if k == n else continuation[k]
            d = discounts(list(table.values()))
            h = tuple(history[len(history) - (k - 1) :]) if k > 1 else ()
            seen = {g[-1]: c for g, c in table.items() if g[:-1] == h}
            if seen:
                total = sum(seen.values())
                gamma = sum(d[min(c, 3)] for c in seen.values()) / total
                c = seen.get(w, 0)
                p = max(c - d[min(c, 3)], 0.0) / total + gamma * p
        return p

    def stream(ids, n):
        padded = [begin] * (n - 1) + list(ids)
        return np.array([prob(padded[t : t + n - 1], padded[t + n - 1], n) for t in range(len(ids))])

    return stream


def _markov2(n, vocab_size, rng, noise=0.1):
    """x[t] = x[t-1] + x[t-2] (mod V), replaced by a random token with probability noise."""
    x = list(rng.integers(0, vocab_size, 2))
    for _ in range(n - 2):
        x.append((x[-1] + x[-2]) % vocab_size if rng.random() > noise else int(rng.integers(vocab_size)))
    return np.array(x)


def test_matches_a_slow_reference_at_every_order():
    rng = np.random.default_rng(0)
    vocab_size = 5
    train = np.concatenate([_markov2(300, vocab_size - 1, rng), rng.integers(0, vocab_size - 1, 60)])
    test = rng.integers(0, vocab_size, 40)  # holds token 4, never seen in train
    model = NGramModel(4, vocab_size).fit(train)
    reference = _reference_kn(train, vocab_size, 4)
    for k in range(1, 5):
        np.testing.assert_allclose(model.token_probabilities(test, order=k), reference(test, k), rtol=1e-12)
        alone = NGramModel(k, vocab_size).fit(train)  # a lower order of a big model is that model
        np.testing.assert_allclose(alone.token_probabilities(test), reference(test, k), rtol=1e-12)


@pytest.mark.parametrize("exact", [True, False])
def test_every_step_is_a_distribution_over_the_vocab(exact):
    rng = np.random.default_rng(1)
    vocab_size = 9
    train = rng.integers(0, vocab_size - 2, 3000)  # the last two tokens never occur
    model = NGramModel(5, vocab_size)
    model.exact = exact  # the hashed keys used when (V+1)^order overflows 64 bits
    model.fit(train)
    for k in range(1, 6):
        for _ in range(10):
            context = rng.integers(0, vocab_size, rng.integers(0, 8))
            p = model.next_distribution(context, order=k)
            assert p.shape == (vocab_size,) and p.min() > 0
            assert abs(p.sum() - 1.0) < 1e-12
        seq = rng.integers(0, vocab_size, 12)
        stream = model.token_probabilities(seq, order=k)
        step = [model.next_distribution(seq[:t], order=k)[seq[t]] for t in range(len(seq))]
        np.testing.assert_array_equal(stream, step)  # the compiled lookup does the stream's arithmetic exactly
    model.fit(train[::-1].copy())  # refitted: the compiled lookup's tables follow
    seq = rng.integers(0, vocab_size, 12)
    assert model.token_probabilities(seq)[-1] == model.next_distribution(seq[:-1])[seq[-1]]


def test_higher_order_wins_on_repetitive_text():
    text = "the quick brown fox jumps over the lazy dog; " * 60
    ids = np.frombuffer(text.encode(), np.uint8).astype(np.int64)
    model = NGramModel(5, 256).fit(ids[: len(ids) // 2])
    bits1 = model.bits_per_token(ids[len(ids) // 2 :], order=1)
    bits5 = model.bits_per_token(ids[len(ids) // 2 :], order=5)
    assert bits1 > 3.5 and bits5 < 0.2


def test_best_order_is_chosen_on_validation():
    rng = np.random.default_rng(2)
    vocab_size = 6
    train = _markov2(20_000, vocab_size, rng)
    same = best_order(train, _markov2(2000, vocab_size, rng), orders=range(1, 6), vocab_size=vocab_size)
    assert same["best"] >= 3 and same["best"] == min(same["valid_bits"], key=same["valid_bits"].get)
    assert same["valid_bits"][3] < same["valid_bits"][1] - 1.0
    assert set(same["seconds"]) == {1, 2, 3, 4, 5} and same["model"].order == 5
    noise = best_order(train, rng.integers(0, vocab_size, 2000), orders=range(1, 6), vocab_size=vocab_size)
    assert noise["best"] == 1


def test_invalid_input_is_refused():
    model = NGramModel(3, 4)
    with pytest.raises(ValueError, match="fit the model first"):
        model.bits_per_token([0, 1])
    with pytest.raises(ValueError, match=r"must lie in \[0, 4\)"):
        model.fit([0, 1, 4])
    with pytest.raises(ValueError, match="empty"):
        model.fit(np.array([], np.int64))
    model.fit([0, 1, 2, 3, 0, 1])
    with pytest.raises(ValueError, match=r"order must lie in \[1, 3\]"):
        model.bits_per_token([0, 1], order=4)
    with pytest.raises(ValueError, match="order must be >= 1"):
        NGramModel(0, 4)


def test_xz_bits_per_char():
    assert xz_bits_per_char("abcdefgh" * 5000) < 0.05
    random_bytes = np.random.default_rng(3).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    assert 8.0 < xz_bits_per_char(random_bytes) < 8.1  # incompressible, plus the container
    with pytest.raises(ValueError, match="empty"):
        xz_bits_per_char("")
