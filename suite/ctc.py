"""Decoding CTC outputs: prefix beam search with a character LM, word timings, and the
batch-mean loss for training. Shared by the speech and handwriting apps.

The compiled pieces (loss, greedy decoding, forced alignment) are in kernels/ctc.py;
beam search is Python because its state is a dictionary of variable-length
prefixes, and it stays fast by only extending a prefix with the few labels a
frame gives real probability to.
"""
import heapq
import math

import numpy as np

from suite.kernels.ctc import ctc_loss
from suite.baselines import NGramModel

NEG_INF = -math.inf


def _logaddexp(a, b):
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


# ---------------------------------------------------------------- training

def ctc_loss_mean(logits, targets, input_lengths, target_lengths, blank=0, zero_infinity=True):
    """CTC loss averaged over the batch items, and its gradient (kernels.ctc.ctc_loss / B).

    Parameters
    ----------
    logits : np.ndarray [shape=(T, B, C), dtype=float32 or float64]
    targets : np.ndarray [shape=(B, S), dtype=int]
    input_lengths, target_lengths : np.ndarray [shape=(B,), dtype=int]
    blank : int
    zero_infinity : bool

    Returns
    -------
    loss : float
        mean_b -log p(target_b | x_b) (items with no alignment count 0 under zero_infinity).
    dlogits : np.ndarray [shape=(T, B, C), dtype=logits.dtype]
    """
    from suite.device import host, kernels, on_device

    loss = kernels("ctc", logits).ctc_loss  # suite.kernels.ctc's, or its GPU twin for device logits
    nll, dlogits = loss(logits, targets, input_lengths, target_lengths, blank, zero_infinity)
    nll = host(nll)
    B = len(nll)
    if B == 0:
        return 0.0, dlogits
    if on_device(dlogits):
        from suite.kernels.cuda.elementwise import scale

        scale(dlogits, 1.0 / B)
    else:
        dlogits *= dlogits.dtype.type(1.0 / B)
    return float(nll.mean()), dlogits


# ---------------------------------------------------------------- character LM

class CharNGramLM:
    """A character n-gram LM for beam search: interpolated modified Kneser-Ney.

    A thin adapter over suite.baselines.NGramModel, which models one stream. The
    training sequences are joined into one stream with an end symbol (id
    ``vocab_size``, ``end_id`` here) after each, repeated order-1 times, so every
    sequence starts from the same all-end context that ``log_prob`` pads a short
    context with, and the model learns where sequences end.

    Parameters
    ----------
    model : suite.baselines.NGramModel
        Fitted over vocab_size + 1 tokens (the last is the end symbol).
    vocab_size : int
        Token ids are 0..vocab_size-1 (a CTC blank id included, it simply never occurs).
    """

    FORMAT = "suite.char_ngram_lm/1"
    CACHE_SIZE = 100_000  # contexts whose distribution is kept; one is ~vocab_size floats

    def __init__(self, model, vocab_size):
        if model.vocab_size != vocab_size + 1:
            raise ValueError(f"model has {model.vocab_size} tokens, "
                             f"expected vocab_size + 1 = {vocab_size + 1}")
        self.model = model
        self.vocab_size = int(vocab_size)
        self.order = model.order
        self._cache = {}  # context tuple -> list of log-probabilities (vocab_size + 1,)

    @property
    def end_id(self):
        """The end-of-sequence symbol, predicted like a token (never part of a context)."""
        return self.vocab_size

    @classmethod
    def fit(cls, seqs, order=4, *, vocab_size):
        """Count n-grams of a list of token-id sequences; returns a CharNGramLM.

        Parameters
        ----------
        seqs : iterable of sequences of int in [0, vocab_size)
        order : int
            n: order - 1 tokens of context.
        vocab_size : int
        """
        vocab_size = int(vocab_size)
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        if int(order) < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        pad = max(int(order) - 1, 1)
        pieces = []
        for i, seq in enumerate(seqs):
            seq = np.asarray(seq, dtype=np.int64).reshape(-1)
            if seq.size and (seq.min() < 0 or seq.max() >= vocab_size):
                raise ValueError(f"sequence {i} holds ids outside [0, {vocab_size}): "
                                 f"[{seq.min()}, {seq.max()}]")
            pieces += [np.full(pad, vocab_size, np.int64), seq]
        if not pieces:
            raise ValueError("seqs is empty: give at least one training sequence")
        pieces.append(np.array([vocab_size], np.int64))  # the last sequence ends too
        model = NGramModel(order, vocab_size + 1).fit(np.concatenate(pieces))
        return cls(model, vocab_size)

    def _context(self, context):
        n = self.order - 1
        if n == 0:
            return ()
        # a beam search's prefixes are tuples of ints already: sliced, not rebuilt (it asks ~1,000 times a line)
        context = context[-n:] if type(context) is tuple else tuple(int(t) for t in context[-n:])
        return (self.vocab_size,) * (n - len(context)) + context if len(context) < n else context

    def _log_distribution(self, key):
        row = self._cache.get(key)
        if row is None:
            p = self.model.next_distribution(key)  # (vocab_size + 1,)
            row = np.log(p).tolist()
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = row
        return row

    def distribution(self, context):
        """P(token | context) for every token and the end symbol.

        Parameters
        ----------
        context : sequence of int
            The tokens so far, most recent last; the start of a sequence is padded.

        Returns
        -------
        np.ndarray [shape=(vocab_size + 1,), dtype=float64], sums to 1; the last entry is end_id.
        """
        if any(not 0 <= int(t) < self.vocab_size for t in context):
            raise ValueError(f"context tokens must lie in [0, {self.vocab_size}), the vocabulary")
        return np.exp(np.array(self._log_distribution(self._context(context))))

    def log_prob(self, context, token):
        """Natural log P(token | context); token in [0, vocab_size] (vocab_size = end_id)."""
        return self._log_distribution(self._context(context))[token]

    def sequence_log_prob(self, seq, end=True):
        """Sum of log P over seq from the start of a sequence, plus its end if end."""
        seq = tuple(int(t) for t in seq)
        total = sum(self.log_prob(seq[:i], t) for i, t in enumerate(seq))
        return total + (self.log_prob(seq, self.end_id) if end else 0.0)

    def to_dict(self, packed=True):
        """JSON-ready form (the n-gram counts, see NGramModel.to_dict) that from_dict reads back."""
        return {"format": self.FORMAT, "order": self.order, "vocab_size": self.vocab_size,
                "levels": self.model.to_dict(packed)["levels"]}

    @classmethod
    def from_dict(cls, d):
        """Rebuild a CharNGramLM from to_dict() output (e.g. read back from a model card)."""
        if not isinstance(d, dict) or d.get("format") != cls.FORMAT:
            got = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"not a character LM dictionary: format is {got!r}, expected {cls.FORMAT!r}")
        try:
            vocab_size = int(d["vocab_size"])
            model = NGramModel.from_dict({"order": d["order"], "vocab_size": vocab_size + 1, "levels": d["levels"]})
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed character LM dictionary: {error!r}") from None
        return cls(model, vocab_size)


# ---------------------------------------------------------------- lexicon

class Lexicon:
    """The words a beam search may spell: a trie over token ids, words split by ``separator``.

    Lexicon-constrained decoding (as in Graves et al. 2009 for handwriting): a
    prefix may only grow into a known word, a separator may only follow a
    complete word, and a finished labelling must end on one. For a closed
    vocabulary (digits and commands) this removes non-words such as "thre".

    Parameters
    ----------
    words : iterable of sequences of int
        Each word's token ids (no separator inside, none empty).
    separator : int
        The token between words (the space).
    """

    _END = -1  # trie key marking a complete word
    CACHE_SIZE = 200_000  # prefixes whose trie node is remembered (a long batch job must not grow without end)

    def __init__(self, words, separator):
        self.separator = int(separator)
        self.root = {}
        self.size = 0
        for word in words:
            word = tuple(int(t) for t in word)
            if not word or self.separator in word:
                raise ValueError(f"lexicon word {word!r} is empty or holds the separator {self.separator}")
            node = self.root
            for t in word:
                node = node.setdefault(t, {})
            if self._END not in node:
                node[self._END] = {}
                self.size += 1
        if not self.size:
            raise ValueError("the lexicon has no words")
        self._nodes = {(): self.root}  # prefix -> trie node of its last (partial) word; None = not allowed

    def _node(self, prefix):
        node = self._nodes.get(prefix, False)
        if node is False:  # prefixes grow a label at a time, so the parent is almost always cached
            parent = self._node(prefix[:-1])
            c = prefix[-1]
            if parent is None:
                node = None
            elif c == self.separator:
                node = self.root if self._END in parent and parent is not self.root else None
            else:
                node = parent.get(c)
            if len(self._nodes) >= self.CACHE_SIZE:
                self._nodes = {(): self.root}
            self._nodes[prefix] = node
        return node

    def allows(self, prefix, token):
        """Whether prefix + (token,) can still become a sequence of lexicon words."""
        return self._node(tuple(prefix) + (int(token),)) is not None

    def complete(self, prefix):
        """Whether prefix is a sequence of whole lexicon words (empty, or a trailing separator, included)."""
        node = self._node(tuple(prefix))
        return node is not None and (node is self.root or self._END in node)


# ---------------------------------------------------------------- beam search

def _check_log_probs(log_probs):
    log_probs = np.asarray(log_probs)
    if log_probs.dtype.kind != "f":
        raise ValueError(f"log_probs has dtype {log_probs.dtype}, expected float")
    if log_probs.ndim != 2 or log_probs.shape[1] == 0:
        raise ValueError(f"log_probs has shape {log_probs.shape}, expected (T, C) with C >= 1")
    log_probs = log_probs.astype(np.float64)
    if len(log_probs):
        with np.errstate(divide="ignore", invalid="ignore"):
            m = log_probs.max(axis=1, keepdims=True)
            lse = m[:, 0] + np.log(np.exp(log_probs - m).sum(axis=1))
        if not np.allclose(lse, 0.0, atol=1e-3):
            raise ValueError("log_probs rows are not log-probabilities (their exp does not sum to 1): "
                             "apply log_softmax to the scores first")
    return log_probs


def prefix_beam_search(log_probs, beam=8, blank=0, lm=None, lm_weight=0.5, char_bonus=0.0,
                       prune=-10.0, lexicon=None):
    """CTC prefix beam search (Hannun et al. 2014), in log space, with an optional character LM.

    Each prefix keeps two probabilities: of the frames so far ending in blank and
    ending in its last label, because a repeated label only extends a prefix after
    a blank. A prefix's score is log(p_blank + p_label) plus, for each of its
    labels, ``lm_weight * lm.log_prob(prefix before it, label) + char_bonus``.
    At the end an LM with an ``end_id`` also scores the end of the sequence.

    Parameters
    ----------
    log_probs : np.ndarray [shape=(T, C), dtype=float]
        Per-frame log-probabilities (log_softmax of the network's scores).
    beam : int
        Prefixes kept after each frame.
    blank : int
    lm : object with log_prob(context_tuple, token) -> float, optional
        E.g. CharNGramLM.
    lm_weight : float
    char_bonus : float
        Added per emitted label: offsets the LM's per-label cost, which would
        otherwise favour short outputs.
    prune : float
        A frame only extends prefixes with labels whose log-probability exceeds this
        (blank-dominated frames then cost almost nothing); -inf disables pruning.
    lexicon : Lexicon, optional
        Only prefixes that spell lexicon words are grown; at the end, labellings
        that stop inside a word are dropped unless no complete one survived.

    Returns
    -------
    list of (tokens, score)
        At most ``beam`` pairs, best first: tokens a tuple of int, score a finite float.
    """
    log_probs = _check_log_probs(log_probs)
    T, C = log_probs.shape
    if isinstance(beam, bool) or not isinstance(beam, (int, np.integer)) or beam < 1:
        raise ValueError(f"beam must be an int >= 1, got {beam!r}")
    if not 0 <= blank < C:
        raise ValueError(f"blank = {blank} is outside [0, {C}), the class range of log_probs")
    if lm is not None and not callable(getattr(lm, "log_prob", None)):
        raise ValueError(f"lm must have a log_prob(context, token) method, got {type(lm).__name__}")
    if not lm_weight >= 0:
        raise ValueError(f"lm_weight must be >= 0, got {lm_weight}")
    if lexicon is not None and not isinstance(lexicon, Lexicon):
        raise ValueError(f"lexicon must be a suite.ctc.Lexicon, got {type(lexicon).__name__}")
    rows = log_probs.tolist()
    allowed = log_probs > prune  # (T, C)
    allowed[:, blank] = False
    # the labels worth extending with at each frame, most probable first
    candidates = [sorted(np.flatnonzero(a).tolist(), key=row.__getitem__, reverse=True)
                  for a, row in zip(allowed, rows)]

    beams = {(): (0.0, NEG_INF)}  # prefix -> (log p ending in blank, log p ending in its last label)
    bonus = {(): 0.0}  # prefix -> its LM score and label bonuses
    for t in range(T):
        lp = rows[t]
        lp_blank = lp[blank]
        nxt = {}
        # 1. a kept prefix stays as it is: one more blank, or its last label repeated
        for prefix, (p_b, p_nb) in beams.items():
            nxt[prefix] = (_logaddexp(p_b, p_nb) + lp_blank,
                           p_nb + lp[prefix[-1]] if prefix else NEG_INF)
        # 2. a kept prefix one label longer than another kept prefix gets that path too
        for prefix in beams:
            if prefix and prefix[:-1] in beams and lp[prefix[-1]] > prune:
                parent, c = prefix[:-1], prefix[-1]
                p_b, p_nb = beams[parent]
                # a repeat of the last label is a new label only after a blank
                add = (p_b if parent and c == parent[-1] else _logaddexp(p_b, p_nb)) + lp[c]
                b, nb = nxt[prefix]
                nxt[prefix] = (b, _logaddexp(nb, add))
        # 3. new prefixes. Each has one parent, so its score is final when made; the
        # kept ones' scores can only grow. Once `beam` scores reach a threshold, a new
        # prefix below it can never be kept: skip it (exactly, this is not a heuristic),
        # and since labels come most probable first, skip the rest of the frame too.
        heap = heapq.nlargest(beam, (_logaddexp(b, nb) + bonus[p] for p, (b, nb) in nxt.items()))
        heap.reverse()  # ascending: a valid min-heap
        threshold = heap[0] if len(heap) >= beam else NEG_INF
        for prefix, (p_b, p_nb) in sorted(beams.items(), key=lambda kv: _logaddexp(*kv[1]) + bonus[kv[0]],
                                          reverse=True):
            p_total = _logaddexp(p_b, p_nb)
            last = prefix[-1] if prefix else -1
            ceiling = p_total + bonus[prefix] + char_bonus  # lm.log_prob <= 0 adds nothing
            for c in candidates[t]:
                if ceiling + lp[c] <= threshold:
                    break
                longer = prefix + (c,)
                if longer in nxt:  # kept already: done in step 2
                    continue
                if lexicon is not None and not lexicon.allows(prefix, c):
                    continue
                acoustic = (p_b if c == last else p_total) + lp[c]
                extra = bonus.get(longer)
                if extra is None:
                    extra = bonus[prefix] + char_bonus
                    if lm is not None:
                        extra += lm_weight * lm.log_prob(prefix, c)
                    bonus[longer] = extra
                score = acoustic + extra
                if score <= threshold:
                    continue
                nxt[longer] = (NEG_INF, acoustic)
                if len(heap) >= beam:
                    heapq.heapreplace(heap, score)
                    threshold = heap[0]
                else:
                    heapq.heappush(heap, score)
                    threshold = heap[0] if len(heap) >= beam else NEG_INF
        beams = dict(heapq.nlargest(beam, nxt.items(), key=lambda kv: _logaddexp(*kv[1]) + bonus[kv[0]]))

    end_id = getattr(lm, "end_id", None) if lm is not None else None
    out = []
    for prefix, (p_b, p_nb) in beams.items():
        score = _logaddexp(p_b, p_nb) + bonus[prefix]
        if score == NEG_INF:  # no path emits it (a repeat with no frame left for its blank)
            continue
        if end_id is not None:
            score += lm_weight * lm.log_prob(prefix, end_id)
        out.append((prefix, score))
    if lexicon is not None and any(lexicon.complete(prefix) for prefix, _ in out):
        out = [(prefix, score) for prefix, score in out if lexicon.complete(prefix)]
    out.sort(key=lambda kv: kv[1], reverse=True)
    return out


# ---------------------------------------------------------------- timings

def word_times(tokens, starts, ends, space_id, frame_seconds, id_to_char):
    """Words and their times from aligned tokens (e.g. kernels.ctc.ctc_align's frames).

    Parameters
    ----------
    tokens : sequence of int [length N]
    starts, ends : sequence of int [length N]
        First and last frame of each token (inclusive).
    space_id : int
        The token that separates words; runs of it and leading/trailing ones make no empty words.
    frame_seconds : float
        Duration of one frame.
    id_to_char : mapping or sequence
        id_to_char[token] is the token's text.

    Returns
    -------
    list of {"word": str, "start": float, "end": float}
        start is the start of the word's first frame, end the end of its last, in seconds.
    """
    tokens, starts, ends = list(tokens), list(starts), list(ends)
    if not len(tokens) == len(starts) == len(ends):
        raise ValueError(f"tokens, starts and ends have lengths {len(tokens)}, {len(starts)}, "
                         f"{len(ends)}: expected one start and end per token")
    if not frame_seconds > 0:
        raise ValueError(f"frame_seconds must be > 0, got {frame_seconds}")
    words = []
    current = []  # indices of the current word's tokens
    for i in range(len(tokens) + 1):
        if i < len(tokens) and tokens[i] != space_id:
            current.append(i)
            continue
        if current:
            words.append({"word": "".join(id_to_char[int(tokens[j])] for j in current),
                          "start": float(starts[current[0]]) * frame_seconds,
                          "end": float(ends[current[-1]] + 1) * frame_seconds})
            current = []
    return words
