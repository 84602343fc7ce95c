"""Slow, obvious versions of kernels/ctc.py (float64 throughout).

Two independent references for the loss: the textbook log-space forward
recursion, and brute force over every one of the C^T frame paths (tiny T only).
"""
import itertools

import numpy as np

from tests.reference.losses import log_softmax_ref


def collapse(path, blank=0):
    """The labelling a frame path emits: repeats merged, then blanks dropped."""
    out = []
    previous = None
    for c in path:
        if c != previous and c != blank:
            out.append(int(c))
        previous = c
    return tuple(out)


def labelling_log_probs_ref(log_probs, blank=0):
    """{labelling: log p(labelling)} summed over all C^T paths of a (T, C) matrix."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    T, C = log_probs.shape
    sums = {}
    for path in itertools.product(range(C), repeat=T):
        p = np.exp(sum(log_probs[t, c] for t, c in enumerate(path)))
        key = collapse(path, blank)
        sums[key] = sums.get(key, 0.0) + p
    return {k: np.log(v) for k, v in sums.items()}


def ctc_brute_force_ref(log_probs, target, blank=0):
    """-log p(target) by enumerating every path: (T, C) log-probabilities, T small."""
    return -labelling_log_probs_ref(log_probs, blank).get(tuple(int(c) for c in target), -np.inf)


def ctc_forward_ref(log_probs, target, blank=0):
    """-log p(target) by the log-space alpha recursion over the 2L+1 extended states."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    T = len(log_probs)
    ext = [blank]
    for c in target:
        ext += [int(c), blank]
    S = len(ext)
    if T == 0:
        return 0.0 if S == 1 else np.inf
    alpha = np.full(S, -np.inf)
    alpha[0] = log_probs[0, ext[0]]
    if S > 1:
        alpha[1] = log_probs[0, ext[1]]
    for t in range(1, T):
        new = np.full(S, -np.inf)
        for s in range(S):
            terms = [alpha[s]]
            if s >= 1:
                terms.append(alpha[s - 1])
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                terms.append(alpha[s - 2])
            new[s] = np.logaddexp.reduce(terms) + log_probs[t, ext[s]]
        alpha = new
    return -np.logaddexp.reduce(alpha[-2:] if S > 1 else alpha[-1:])


def ctc_loss_ref(logits, targets, input_lengths, target_lengths, blank=0, zero_infinity=True):
    """nll (B,) as kernels.ctc.ctc_loss computes it, item by item (inf or 0 when impossible)."""
    logp = log_softmax_ref(logits)  # (T, B, C)
    out = []
    for b in range(logp.shape[1]):
        nll = ctc_forward_ref(logp[:input_lengths[b], b], targets[b, :target_lengths[b]], blank)
        out.append(0.0 if (zero_infinity and np.isinf(nll)) else nll)
    return np.array(out)


def ctc_greedy_ref(logits, lengths, blank=0):
    out = []
    for b in range(logits.shape[1]):
        best = np.argmax(logits[:lengths[b], b], axis=1)
        tokens, frames = [], []
        for t, c in enumerate(best):
            if c != blank and (t == 0 or best[t - 1] != c):
                tokens.append(c)
                frames.append(t)
        out.append((np.array(tokens, np.int32), np.array(frames, np.int32)))
    return out


def ctc_align_ref(log_probs, target, blank=0):
    """(starts, ends) of the best-scoring path that emits target, by enumerating all paths."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    T, C = log_probs.shape
    target = tuple(int(c) for c in target)
    best, best_path = -np.inf, None
    for path in itertools.product(range(C), repeat=T):
        if collapse(path, blank) != target:
            continue
        score = sum(log_probs[t, c] for t, c in enumerate(path))
        if score > best:
            best, best_path = score, path
    if best_path is None:
        raise ValueError("no path emits the target")
    starts, ends = [], []
    k = -1
    for t, c in enumerate(best_path):
        if c != blank and (t == 0 or best_path[t - 1] != c):
            k += 1
            starts.append(t)
            ends.append(t)
        elif c != blank:
            ends[k] = t
    return np.array(starts, np.int32), np.array(ends, np.int32)


def _spells_words(prefix, words, separator, complete):
    """Whether prefix is words (complete) or words and the start of one (not complete), by string matching."""
    parts = [tuple(p) for p in _split(prefix, separator)]
    *whole, last = parts
    if any(w not in words for w in whole):
        return False
    if complete:
        return last == () or last in words
    return any(w[:len(last)] == last for w in words)


def _split(prefix, separator):
    parts, cur = [], []
    for t in prefix:
        if t == separator:
            parts.append(cur)
            cur = []
        else:
            cur.append(t)
    return parts + [cur]


def prefix_beam_search_ref(log_probs, beam=8, blank=0, lm=None, lm_weight=0.5, char_bonus=0.0,
                           prune=-10.0, words=None, separator=None):
    """Textbook prefix beam search: every kept prefix extended by every label above prune,
    then the best ``beam`` prefixes kept. [(tokens, score)] best first, finite scores only.
    With ``words`` (a set of token tuples), only prefixes that spell those words between
    ``separator`` tokens are grown, and complete labellings win at the end if any survive."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    T, C = log_probs.shape
    beams = {(): (0.0, -np.inf)}
    bonus = {(): 0.0}
    for t in range(T):
        lp = log_probs[t]
        nxt = {}

        def add(prefix, b=-np.inf, nb=-np.inf):
            old_b, old_nb = nxt.get(prefix, (-np.inf, -np.inf))
            nxt[prefix] = (np.logaddexp(old_b, b), np.logaddexp(old_nb, nb))

        for prefix, (p_b, p_nb) in beams.items():
            total = np.logaddexp(p_b, p_nb)
            add(prefix, b=total + lp[blank])
            if prefix:
                add(prefix, nb=p_nb + lp[prefix[-1]])
            for c in range(C):
                if c == blank or not lp[c] > prune:
                    continue
                longer = prefix + (c,)
                if words is not None and not _spells_words(longer, words, separator, complete=False):
                    continue
                add(longer, nb=(p_b if prefix and c == prefix[-1] else total) + lp[c])
                if longer not in bonus:
                    lm_score = lm_weight * lm.log_prob(prefix, c) if lm is not None else 0.0
                    bonus[longer] = bonus[prefix] + lm_score + char_bonus
        ranked = sorted(nxt.items(), key=lambda kv: np.logaddexp(*kv[1]) + bonus[kv[0]], reverse=True)
        beams = dict(ranked[:beam])
    out = []
    for prefix, (p_b, p_nb) in beams.items():
        score = np.logaddexp(p_b, p_nb) + bonus[prefix]
        if lm is not None and getattr(lm, "end_id", None) is not None:
            score += lm_weight * lm.log_prob(prefix, lm.end_id)
        if np.isfinite(score):
            out.append((prefix, float(score)))
    if words is not None and any(_spells_words(p, words, separator, complete=True) for p, _ in out):
        out = [(p, s) for p, s in out if _spells_words(p, words, separator, complete=True)]
    return sorted(out, key=lambda kv: kv[1], reverse=True)
