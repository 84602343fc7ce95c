import itertools

import numpy as np
import pytest

from suite.beam import beam_search, reorder

BOS, EOS, V = 0, 1, 4


def _table_step(table):
    """A decoder whose next-token distribution depends on the whole prefix (a lookup table)."""
    def step(tokens, state, rows):
        prefixes = [state[r] for r in rows]
        prefixes = [p + (int(t),) for p, t in zip(prefixes, tokens)]
        log_probs = np.log(np.array([table(p) for p in prefixes]))
        return log_probs, prefixes, None
    return step


def _garden_path(prefix):
    # greedy takes 2 (0.6) then is stuck with a flat tail; 3 (0.4) leads to a sure EOS
    last = prefix[-1]
    if len(prefix) == 1:
        return [1e-9, 1e-9, 0.6, 0.4]
    if last == 3:
        return [1e-9, 1.0 - 2e-9, 1e-9, 1e-9]
    return [1e-9, 1 / 3, 1 / 3, 1 / 3]


def test_beam_finds_what_greedy_misses():
    greedy = beam_search(_table_step(_garden_path), [()], BOS, EOS, beam=1, max_len=5, length_penalty=0.0)
    wide = beam_search(_table_step(_garden_path), [()], BOS, EOS, beam=3, max_len=5, length_penalty=0.0)
    assert greedy[0].tokens[0] == 2
    assert wide[0].tokens == [3]
    assert wide[0].log_prob == pytest.approx(np.log(0.4), abs=1e-6)


def test_beam_matches_brute_force():
    rng = np.random.default_rng(0)
    cache = {}

    def table(prefix):
        if prefix not in cache:
            p = rng.random(V) + 0.05
            p[BOS] = 1e-12
            cache[prefix] = p / p.sum()
        return cache[prefix]

    max_len = 3
    best, best_lp = None, -np.inf
    for n in range(max_len):  # sequences of n tokens then EOS
        for seq in itertools.product([2, 3], repeat=n):
            lp, prefix = 0.0, (BOS,)
            for t in seq + (EOS,):
                lp += np.log(table(prefix)[t])
                prefix = prefix + (t,)
            if lp > best_lp:
                best, best_lp = list(seq), lp
    hyps = beam_search(_table_step(table), [()], BOS, EOS, beam=50, max_len=max_len, length_penalty=0.0)
    finished = [h for h in hyps if len(h.tokens) < max_len]
    assert finished[0].tokens == best
    assert finished[0].log_prob == pytest.approx(best_lp, abs=1e-9)


def test_reorder_nested_state():
    h = np.arange(6).reshape(1, 3, 2)
    out = reorder((h, h * 10), np.array([2, 2, 0]))
    assert out[0][0, :, 0].tolist() == [4, 4, 0]
    assert out[1][0, :, 1].tolist() == [50, 50, 10]


def test_bad_beam():
    with pytest.raises(ValueError, match="beam"):
        beam_search(_table_step(_garden_path), [()], BOS, EOS, beam=0)
