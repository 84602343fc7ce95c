"""suite.beam.attention_beam_search on decoders whose next-token distribution is a lookup table of the whole
prefix, so the best sequence is known by brute force."""
import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from suite.beam import attention_beam_search

BOS, EOS, V = 0, 1, 4


class TableDecoder:
    """An AttentionDecoder stand-in: its state is each row's prefix (one (1, rows, MAX) array, -1 padded), its
    log-probabilities table(prefix) for one input (or table(b, prefix) with ``per_input``)."""
    MAX = 16

    def __init__(self, table, per_input=False):
        self.table, self.per_input = table, per_input
        self.attention = SimpleNamespace(set_memory=lambda memory, lengths: None)
        self.calls = 0

    def initial(self, B):
        return (np.full((1, B, self.MAX), -1, np.int64),)

    def decode_step(self, words, state, memory):
        self.calls += 1
        prefixes = state[0] if isinstance(state[0], np.ndarray) else state[0][0]  # initial, then as returned
        rows = prefixes.shape[1]
        K = rows // self.B
        new = prefixes.copy()
        logits = np.empty((1, rows, V))
        for r in range(rows):
            n = int((new[0, r] >= 0).sum())
            new[0, r, n] = words[0, r]
            prefix = tuple(int(t) for t in new[0, r, :n + 1])
            p = self.table(r // K, prefix) if self.per_input else self.table(prefix)
            logits[0, r] = np.log(p)
        return logits.astype(np.float32), ((new,),), np.zeros((1, rows, 1), np.float32)

    def search(self, B=1, **kw):
        self.B = B
        kw.setdefault("length_norm", "power")
        return attention_beam_search(self, np.zeros((B, 1, 1), np.float32), self.initial(B), bos=BOS, eos=EOS, **kw)


def _garden_path(prefix):
    # greedy takes 2 (0.6) then is stuck with a flat tail; 3 (0.4) leads to a sure EOS
    last = prefix[-1]
    if len(prefix) == 1:
        return [1e-9, 1e-9, 0.6, 0.4]
    if last == 3:
        return [1e-9, 1.0 - 2e-9, 1e-9, 1e-9]
    return [1e-9, 1 / 3, 1 / 3, 1 / 3]


def test_beam_finds_what_greedy_misses():
    greedy = TableDecoder(_garden_path).search(beam=1, max_len=5, length_penalty=0.0)[0]
    wide = TableDecoder(_garden_path).search(beam=3, max_len=5, length_penalty=0.0, nbest=3)[0]
    assert greedy[0][0][0] == 2
    tokens, log_prob, score, attention = wide[0]
    assert tokens == [3] and attention.shape == (2, 1)  # one row per emitted token and the EOS
    assert log_prob == pytest.approx(np.log(0.4), abs=1e-6) and score == pytest.approx(log_prob)


def _random_table(seed):
    rng = np.random.default_rng(seed)
    cache = {}

    def table(prefix):
        if prefix not in cache:
            p = rng.random(V) + 0.05
            p[BOS] = 1e-12
            cache[prefix] = p / p.sum()
        return cache[prefix]
    return table


def _brute_force(table, max_len):
    """The best (tokens, log_prob) over every sequence of fewer than max_len tokens then EOS."""
    best, best_lp = None, -np.inf
    for n in range(max_len):
        for seq in itertools.product([2, 3], repeat=n):
            lp, prefix = 0.0, (BOS,)
            for t in seq + (EOS,):
                lp += np.log(table(prefix)[t])
                prefix = prefix + (t,)
            if lp > best_lp:
                best, best_lp = list(seq), lp
    return best, best_lp


def test_beam_matches_brute_force():
    table = _random_table(0)
    max_len = 3
    best, best_lp = _brute_force(table, max_len)
    hyps = TableDecoder(table).search(beam=50, max_len=max_len, length_penalty=0.0, nbest=50)[0]
    finished = [h for h in hyps if len(h[0]) < max_len]  # ended with EOS (not cut at max_len)
    assert finished[0][0] == best
    assert finished[0][1] == pytest.approx(best_lp, abs=1e-5)


def test_inputs_searched_together_get_what_each_gets_alone():
    tables = [_random_table(s) for s in (1, 2, 3)]
    together = TableDecoder(lambda b, p: tables[b](p), per_input=True).search(B=3, beam=4, max_len=4, nbest=4)
    for b in range(3):
        alone = TableDecoder(tables[b]).search(beam=4, max_len=4, nbest=4)[0]
        assert [h[0] for h in together[b]] == [h[0] for h in alone]
        np.testing.assert_allclose([h[1] for h in together[b]], [h[1] for h in alone], rtol=1e-6)
        assert [h[2] for h in alone] == sorted((h[2] for h in alone), reverse=True)


def test_power_length_norm_ranks_by_log_prob_per_token():
    """length_penalty 1 with "power" (score = log_prob / (len + 1)): [2, 2, 2] (p 0.32, -0.28 a token) beats the
    more probable empty caption (p 0.6, -0.51 a token), which wins on log_prob alone."""
    def table(prefix):
        if len(prefix) == 1:
            return [1e-9, 0.6, 0.4 - 2e-9, 1e-9]
        return [1e-9, 0.99, 0.01 - 1e-9, 1e-9] if len(prefix) >= 4 else [1e-9, 0.1, 0.9 - 2e-9, 1e-9]
    plain = TableDecoder(table).search(beam=3, max_len=6, length_penalty=0.0)[0][0]
    normed = TableDecoder(table).search(beam=3, max_len=6, length_penalty=1.0)[0][0]
    assert plain[0] == [] and normed[0] == [2, 2, 2]
    assert normed[2] == pytest.approx(normed[1] / 4)
    with pytest.raises(ValueError, match="length_norm"):
        TableDecoder(table).search(beam=3, max_len=6, length_norm="none")


def test_bad_beam():
    with pytest.raises(ValueError, match="beam"):
        TableDecoder(_garden_path).search(beam=0)
