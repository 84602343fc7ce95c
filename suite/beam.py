"""Beam search for step-by-step decoders: one input at a time (``beam_search``, caption) or many inputs at
once through an attention decoder (``attention_beam_search``, translate).

Either runs a model on the GPU too: the decoder's layers run there, and each step's logits (and attention
weights) are copied back, so the bookkeeping here (log-softmax, the top candidates, the hypotheses) is the
host's, the same code on either side.

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


def attention_beam_search(model, memory, state, lengths=None, beam=5, max_len=30, length_penalty=0.6, nbest=1,
                          bos=1, eos=2):
    """Beam search for B inputs at once through a suite.nn.decoder.AttentionDecoder: every input's ``beam``
    hypotheses are rows of one decoder step (B * beam rows), so a batch of sentences costs about what one
    longer step does.

    memory (B, N, K) and the decoder's initial state (as the model's encode gives them), lengths (B,) the valid
    memory items (None: all), max_len an int or (B,). Scores are sums of log-probabilities; finished hypotheses
    are ranked by Wu et al.'s (2016) length penalty lp = ((5 + len) / 6) ** alpha; the top 2K candidates of an
    input come from a compiled one-pass selection (kernels/sampling.top_k_rows). An input stops once K
    hypotheses are finished and no live one can still beat them. Returns, per input, up to ``nbest``
    (tokens, log_prob, score, attention (len + 1, N)) best first.
    """
    from suite.device import host, take_rows
    from suite.kernels.losses import log_softmax
    from suite.kernels.sampling import top_k_rows

    B, S = memory.shape[0], memory.shape[1]
    K, BOS, EOS = beam, bos, eos
    lengths = np.full(B, S, np.int64) if lengths is None else np.asarray(lengths)
    max_len = np.broadcast_to(np.asarray(max_len), (B,))
    rows = np.repeat(np.arange(B), K)  # input of each of the B*K rows
    memory, lengths = take_rows(memory, rows), lengths[rows]  # memory stays where the model is
    state = tuple(host(s)[:, rows] for s in state)  # the recurrent layers keep their state on the host between calls
    scores = np.full((B, K), -np.inf)
    scores[:, 0] = 0.0  # one live hypothesis per sentence at the start
    words = np.full((1, B * K), BOS, np.int64)
    history = np.zeros((B, K, 0), np.int64)
    attn_hist = np.zeros((B, K, 0, S), np.float32)
    finished = [[] for _ in range(B)]
    alive = np.ones(B, bool)
    lp = lambda n: ((5.0 + n) / 6.0) ** length_penalty  # noqa: E731
    model.attention.set_memory(memory, lengths)  # every row keeps its sentence's memory: project the keys once
    for t in range(int(max_len.max())):
        logits, state, alpha = model.decode_step(words, state, None)
        logits, alpha = host(logits), host(alpha)  # a model on the device: this step's logits come back
        logp = log_softmax(logits[0]).astype(np.float64).reshape(B, K, -1)  # (B, K, V)
        V = logp.shape[2]
        total = (scores[:, :, None] + logp).reshape(B, K * V)
        top = top_k_rows(total, 2 * K)  # (B, 2K) best candidates, best first
        new_scores = np.full((B, K), -np.inf)
        new_rows = np.zeros((B, K), np.int64)
        new_words = np.full((B, K), EOS, np.int64)
        for b in np.flatnonzero(alive):
            k_out = 0
            for idx in top[b]:
                if idx < 0:
                    break
                s = total[b, idx]
                if not np.isfinite(s):
                    break
                k, v = divmod(int(idx), V)
                if v == EOS or t + 1 >= max_len[b]:
                    toks = history[b, k].tolist() + ([] if v == EOS else [v])
                    att = np.concatenate([attn_hist[b, k], alpha[0, b * K + k][None]], axis=0)
                    finished[b].append((toks, float(s), float(s) / lp(len(toks) + 1), att))
                    continue
                new_scores[b, k_out], new_rows[b, k_out], new_words[b, k_out] = s, k, v
                k_out += 1
                if k_out == K:
                    break
            best_done = sorted((f[2] for f in finished[b]), reverse=True)
            live_bound = new_scores[b].max() / lp(max_len[b])  # a live score only falls; this is its best
            if len(best_done) >= K and (k_out == 0 or live_bound <= best_done[K - 1]) or k_out == 0:
                alive[b] = False
                new_scores[b] = -np.inf
        if not alive.any():
            break
        flat_rows = (np.arange(B)[:, None] * K + new_rows).reshape(-1)
        history = np.concatenate([history[np.arange(B)[:, None], new_rows], new_words[:, :, None]], axis=2)
        attn_hist = np.concatenate([attn_hist[np.arange(B)[:, None], new_rows],
                                    alpha[0][flat_rows].reshape(B, K, 1, S)], axis=2)
        scores = new_scores
        state = tuple(tuple(a[:, flat_rows] for a in part) if part is not None else None for part in state)
        words = new_words.reshape(1, B * K)
    out = []
    for b in range(B):
        hyps = sorted(finished[b], key=lambda f: -f[2])
        out.append(hyps[:nbest] if hyps else [([], -np.inf, -np.inf, np.zeros((1, S), np.float32))])
    return out
