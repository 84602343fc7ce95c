"""Beam search through an attention decoder (suite.nn.decoder.AttentionDecoder) for many inputs at once:
translate's sentences, caption's images.

Either runs a model on the GPU too: the decoder's layers run there, and each step's logits (and attention
weights) are copied back, so the bookkeeping here (log-softmax, the top candidates, the hypotheses) is the
host's, the same code on either side.
"""
import numpy as np


def attention_beam_search(model, memory, state, lengths=None, beam=5, max_len=30, length_penalty=0.6, nbest=1,
                          bos=1, eos=2, length_norm="wu"):
    """Beam search for B inputs at once through a suite.nn.decoder.AttentionDecoder: every input's ``beam``
    hypotheses are rows of one decoder step (B * beam rows), so a batch of sentences costs about what one
    longer step does.

    memory (B, N, K) and the decoder's initial state (as the model's encode gives them), lengths (B,) the valid
    memory items (None: all), max_len an int or (B,). Scores are sums of log-probabilities; finished hypotheses
    are ranked by score / lp(len + 1): Wu et al.'s (2016) lp(n) = ((5 + n) / 6) ** alpha (length_norm "wu", translate)
    or lp(n) = n ** alpha ("power", caption), alpha = length_penalty; the top 2K candidates of an
    input come from a compiled one-pass selection (kernels/sampling.top_k_rows). An input stops once K
    hypotheses are finished and no live one can still beat them. Returns, per input, up to ``nbest``
    (tokens, log_prob, score, attention (len + 1, N)) best first.
    """
    from suite.device import host, take_rows
    from suite.kernels.losses import log_softmax
    from suite.kernels.sampling import top_k_rows

    if beam < 1:
        raise ValueError(f"attention_beam_search: beam must be >= 1, got {beam}")
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
    if length_norm not in ("wu", "power"):
        raise ValueError(f"attention_beam_search: length_norm must be 'wu' or 'power', got {length_norm!r}")
    if length_norm == "wu":
        lp = lambda n: ((5.0 + n) / 6.0) ** length_penalty  # noqa: E731
    else:
        lp = lambda n: float(n) ** length_penalty  # noqa: E731
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
