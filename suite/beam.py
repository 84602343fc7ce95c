"""Beam search for step-by-step decoders (caption now, translation later).

The decoder is a function of the current tokens of K live hypotheses:

    step(tokens (K,), state, rows (K,)) -> (log_probs (K, V), new_state, extra)

``state`` is whatever the decoder keeps (recurrent state, attention memory...);
``rows`` says which row of the *previous* state each live hypothesis continues,
so the decoder reorders its own state (``reorder`` below does it for the usual
tuple of (L, K, H) arrays). ``extra`` (e.g. attention weights, (K, N)) is kept
per hypothesis for inspection.

Scores are sums of log-probabilities; finished hypotheses are ranked by
score / length**length_penalty (Wu et al. 2016 use a similar normalisation), so
a longer complete description is not beaten just by being longer.
"""
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Hypothesis:
    tokens: list            # emitted tokens, without BOS and EOS
    log_prob: float         # sum of token log-probabilities (EOS included)
    extras: list = field(default_factory=list)  # one entry per emitted token (and EOS)

    def normalised(self, length_penalty):
        return self.log_prob / max(len(self.tokens) + 1, 1) ** length_penalty


def reorder(state, rows, axis=1):
    """Take rows ``rows`` of every array in a (nested) tuple state along ``axis``."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return type(state)(reorder(s, rows, axis) for s in state)
    return np.take(state, rows, axis=axis)


def beam_search(step, state, bos, eos, beam=5, max_len=30, length_penalty=1.0):
    """Best-first list of finished Hypothesis objects (at most ``beam``).

    beam=1 is greedy decoding. Hypotheses still alive at max_len are returned as
    if finished (without EOS), so the result is never empty.
    """
    if beam < 1:
        raise ValueError(f"beam_search: beam must be >= 1, got {beam}")
    live = [Hypothesis([], 0.0)]
    tokens = np.array([bos])
    rows = np.array([0])
    finished = []
    for _ in range(max_len):
        log_probs, state, extra = step(tokens, state, rows)
        log_probs = np.asarray(log_probs, dtype=np.float64)  # (K, V)
        V = log_probs.shape[1]
        total = np.array([h.log_prob for h in live])[:, None] + log_probs  # (K, V)
        flat = total.ravel()
        order = np.argsort(-flat, kind="stable")[: 2 * beam]
        next_live, next_rows, next_tokens = [], [], []
        for idx in order:
            k, v = divmod(int(idx), V)
            h = live[k]
            extras = h.extras + ([extra[k]] if extra is not None else [])
            if v == eos:
                finished.append(Hypothesis(list(h.tokens), float(flat[idx]), extras))
            else:
                next_live.append(Hypothesis(h.tokens + [v], float(flat[idx]), extras))
                next_rows.append(k)
                next_tokens.append(v)
            if len(next_live) == beam:
                break
        if len(finished) >= beam:
            # a live score only falls (log-probs <= 0); the longest allowed length
            # divides it least, so this bounds what any live hypothesis can still reach
            best_live = max((h.log_prob for h in next_live), default=-np.inf) / (max_len + 1) ** length_penalty
            worst_done = sorted(h.normalised(length_penalty) for h in finished)[-beam]
            if best_live <= worst_done:
                break
        if not next_live:
            break
        live, rows, tokens = next_live, np.array(next_rows), np.array(next_tokens)
    else:
        finished.extend(live)
    finished.sort(key=lambda h: -h.normalised(length_penalty))
    return finished[:beam]
