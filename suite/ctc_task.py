"""The CTC task every sequence recogniser shares (speech today, handwriting next): training, evaluation, decoding.

An app brings three things:

- an ``Alphabet``: label ids <-> text, id ``blank`` (0) the CTC blank;
- a model with ``forward(x (T, B, F), lengths (B,)) -> (logits (T', B, C), steps (B,))``,
  ``backward(dlogits)`` and ``config.vocab_size`` (C, the blank included);
- splits as ``{"features": [(T_i, F) arrays], "texts": [str]}``.

What is here:

- ``CTCTask``: the trainer task (suite.train.Trainer): bucketed batches of
  (features, label ids), batch-mean CTC loss; validation CTC loss and greedy CER/WER.
  Apps subclass it to swap or augment the items of a batch (``batch_items``,
  ``augment``).
- ``forward_by_length``, ``split_logits``, ``evaluate_features``: batched
  evaluation, utterances of similar length run together (per-sequence lengths
  keep them independent).
- ``CTCDecoder``: logits -> text, tokens and word times, by greedy decoding or
  prefix beam search with a character LM, a character bonus and a word lexicon.
- ``tune_decoding``: the LM weight, character bonus and lexicon use with the
  lowest WER on validation, so that test figures stay held out.
- ``error_rates``: WER/CER by jiwer, empty references skipped.
"""
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from suite.device import host

from suite.batching import BucketSampler, iterate_in_order, pad_time_major

LM_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # the grid tune_decoding searches on the validation split
CHAR_BONUSES = (0.0, 0.5, 1.0)


@dataclass(frozen=True)
class Alphabet:
    """Characters and how text maps to their ids: encode(text) -> int32 ids without blanks, decode(ids) -> text."""

    chars: tuple            # id -> character; chars[blank] is only a placeholder
    encode: Callable        # text -> np.ndarray [shape=(L,), dtype=int32], normalised, never the blank
    decode: Callable        # ids -> text, blanks dropped
    blank: int = 0

    @property
    def size(self):
        """C: the number of labels, the blank included."""
        return len(self.chars)

    @property
    def space(self):
        """The id of " ", which separates words (for word times and the lexicon)."""
        return self.chars.index(" ")

    @classmethod
    def from_chars(cls, chars, normalize=str):
        """The plain alphabet over ``chars`` (chars[0] the blank): characters not in it are dropped."""
        chars = tuple(chars)
        ids = {c: i for i, c in enumerate(chars) if i != 0}

        def encode(text):
            return np.array([ids[c] for c in normalize(text) if c in ids], dtype=np.int32)

        def decode(labels):
            return "".join(chars[i] for i in np.asarray(labels, dtype=np.int64).ravel() if i != 0)
        return cls(chars, encode, decode)


def pad_targets(seqs):
    """List of int label arrays -> (B, S) int32 zero-padded, lengths (B,)."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    out = np.zeros((len(seqs), max(int(lengths.max()), 1)), dtype=np.int32)
    for b, s in enumerate(seqs):
        out[b, :len(s)] = s
    return out, lengths


class CTCTask:
    """Trainer task: bucketed batches of (features, label ids), CTC loss; validation CTC loss, CER, WER.

    augment: None, or augment(features (T, F), rng) -> float32 features, applied
    to every training item after ``batch_items``.
    """

    def __init__(self, train, valid, alphabet, batch_size=32, valid_batch=64, augment=None):
        self.alphabet = alphabet
        self.train_feats = train["features"]
        self.train_labels = [alphabet.encode(t) for t in train["texts"]]
        self.valid = valid
        self.batch_size = batch_size
        self.valid_batch = valid_batch
        self.augment = augment
        self.sampler = BucketSampler([len(f) for f in self.train_feats], batch_size)

    def batch_items(self, idx, rng):
        """(features, label ids) of the drawn training items: where an app replaces some of them."""
        return [self.train_feats[i] for i in idx], [self.train_labels[i] for i in idx]

    def train_batch(self, rng):
        idx = self.sampler.sample(rng)
        feats, labels = self.batch_items(idx, rng)
        feats = [self.augment(f, rng) if self.augment else np.asarray(f, np.float32) for f in feats]
        x, lengths = pad_time_major(feats, dtype=np.float32)  # (T, B, F)
        targets, target_lengths = pad_targets(labels)         # (B, S)
        return x, lengths, targets, target_lengths

    def loss_and_grad(self, model, batch):
        from suite.ctc import ctc_loss_mean

        x, lengths, targets, target_lengths = batch
        logits, steps = model.forward(x, lengths)
        loss, dlogits = ctc_loss_mean(logits, targets, steps, target_lengths)
        model.backward(dlogits)
        return float(loss), len(lengths)

    def evaluate(self, model):
        out = evaluate_features(model, self.valid["features"], self.valid["texts"], self.alphabet,
                                batch_size=self.valid_batch)
        return {"loss": out["ctc_loss"], "cer": out["cer"], "wer": out["wer"]}


def forward_by_length(model, features, batch_size=64, indices=None):
    """Yield (indices, logits (T', B, C), steps (B,)) over the features, batched with others of similar length.

    indices: which of ``features`` to run (default all).
    """
    indices = np.arange(len(features)) if indices is None else np.asarray(indices, dtype=np.int64)
    order = indices[np.argsort([len(features[i]) for i in indices], kind="stable")]  # similar lengths together
    for batch in iterate_in_order(len(order), batch_size):
        idx = order[batch]
        x, lengths = pad_time_major([np.asarray(features[i], np.float32) for i in idx], dtype=np.float32)
        logits, steps = model.forward(x, lengths)
        yield idx, host(logits), steps  # decoding and scoring run on the host whichever device ran the model


def evaluate_features(model, features, texts, alphabet, batch_size=64):
    """CTC loss per item and greedy-decoding CER/WER over precomputed features (no LM, no beam)."""
    import jiwer

    from suite.kernels.ctc import ctc_greedy, ctc_loss

    total, count, hyps = 0.0, 0, [None] * len(features)
    for idx, logits, steps in forward_by_length(model, features, batch_size):
        targets, target_lengths = pad_targets([alphabet.encode(texts[i]) for i in idx])
        nll, _ = ctc_loss(logits, targets, steps, target_lengths)
        total += float(np.sum(nll[np.isfinite(nll)]))
        count += int(np.isfinite(nll).sum())
        for i, (tokens, _) in zip(idx, ctc_greedy(logits, steps)):
            hyps[i] = alphabet.decode(tokens)
    refs = list(texts)
    return {"ctc_loss": total / max(count, 1), "cer": _rate(jiwer.cer, refs, hyps),
            "wer": _rate(jiwer.wer, refs, hyps), "hypotheses": hyps}


def split_logits(model, feats, batch_size=64):
    """Each item's (T', C) logits, batched by length (per-sequence lengths keep them independent)."""
    out = [np.zeros((0, model.config.vocab_size), np.float32)] * len(feats)
    spoken = [i for i in range(len(feats)) if len(feats[i])]
    for idx, logits, steps in forward_by_length(model, feats, batch_size, indices=spoken):
        for b, i in enumerate(idx):
            out[i] = np.ascontiguousarray(logits[:steps[b], b])
    return out


def _rate(fn, refs, hyps):
    """jiwer's rate over the whole set; empty references are skipped (jiwer rejects them)."""
    pairs = [(r, h) for r, h in zip(refs, hyps) if r.strip()]
    if not pairs:
        return 0.0
    return float(fn([r for r, _ in pairs], [h for _, h in pairs]))


def error_rates(refs, hyps):
    """{"wer", "cer" (rounded to 4 places), "utterances", "words"} of hypotheses against references."""
    import jiwer

    return {"wer": round(_rate(jiwer.wer, refs, hyps), 4), "cer": round(_rate(jiwer.cer, refs, hyps), 4),
            "utterances": len(refs), "words": sum(len(r.split()) for r in refs)}


def error_rates_by(labels, refs, hyps):
    """{label: error_rates} of the hypotheses grouped by a label per item (voice, hand, kind), in first-seen order."""
    groups = {}
    for label, r, h in zip(labels, refs, hyps):
        rs, hs = groups.setdefault(label, ([], []))
        rs.append(r)
        hs.append(h)
    return {label: error_rates(rs, hs) for label, (rs, hs) in groups.items()}


_BUILT_LM = [None, None]  # [the meta "lm" dict built last, its CharNGramLM]


def char_lm(meta):
    """The character n-gram LM stored in a checkpoint's meta ("lm"), or None.

    The LM last built is kept and handed out again for the same dict (the same
    object, not an equal one): loading a model checks its LM by building it
    (check_decoding_meta) and its decoder then asks for it, and a 7-gram takes
    ~0.3 s to build. A CharNGramLM only reads its counts, so sharing it is safe.
    """
    from suite.ctc import CharNGramLM

    lm = (meta or {}).get("lm")
    if not lm:
        return None
    if _BUILT_LM[0] is not lm:
        _BUILT_LM[:] = [lm, CharNGramLM.from_dict(lm)]
    return _BUILT_LM[1]


def lexicon(meta, alphabet):
    """The word lexicon stored in a checkpoint's meta ("lexicon", a word list) as a suite.ctc.Lexicon, or None."""
    from suite.ctc import Lexicon

    words = (meta or {}).get("lexicon")
    return Lexicon([alphabet.encode(w) for w in words], separator=alphabet.space) if words else None


def check_decoding_meta(meta, where):
    """Raise ValueError (one line) unless a checkpoint's decoding settings, LM and lexicon are usable.

    Checked when a model loads, so a config.json edited into the wrong shape
    is refused before any audio or image is read, not halfway through decoding.
    """
    import math

    decoding = meta.get("decoding")
    if decoding is not None:
        if not isinstance(decoding, dict):
            raise ValueError(f"{where}: meta.decoding must be an object, got {type(decoding).__name__}")
        for key in ("lm_weight", "bonus", "valid_wer", "valid_cer"):
            v = decoding.get(key, 0.0)
            if v is None and key.startswith("valid"):
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{where}: meta.decoding.{key} must be a finite number, got {v!r}")
        if not isinstance(decoding.get("lexicon", False), bool):
            raise ValueError(f"{where}: meta.decoding.lexicon must be true or false")
        beam = decoding.get("beam", 1)
        if isinstance(beam, bool) or not isinstance(beam, int) or not 1 <= beam <= 1024:
            raise ValueError(f"{where}: meta.decoding.beam must be a whole number from 1 to 1024, got {beam!r}")
    words = meta.get("lexicon")
    if words is not None and (not isinstance(words, list) or not all(isinstance(w, str) for w in words)):
        raise ValueError(f"{where}: meta.lexicon must be a list of words")
    try:
        char_lm(meta)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"{where}: meta.lm is not a character LM of ours ({' '.join(str(exc).split())})") from None


class CTCDecoder:
    """Text, tokens and word times from one item's (T', C) logits.

    beam 1 without an LM or lexicon is greedy decoding; otherwise prefix beam
    search (suite.ctc.prefix_beam_search) with ``lm`` weighted by ``lm_weight``,
    ``bonus`` per character, and held to ``lexicon`` when it is set.
    ``all_words`` is the lexicon a model has, whether or not it is in use
    (tune_decoding tries both). frame_seconds: the time one logit frame spans.
    """

    def __init__(self, alphabet, frame_seconds, beam=8, lm=None, lm_weight=0.5, bonus=0.0, all_words=None,
                 use_lexicon=False):
        self.alphabet = alphabet
        self.frame_seconds = frame_seconds
        self.beam = beam
        self.lm = lm
        self.lm_weight = lm_weight
        self.bonus = bonus
        self.all_words = all_words
        self.lexicon = all_words if use_lexicon else None

    def decode(self, logits):
        """(text, tokens, word times) for one item's (T', C) logits."""
        from suite.ctc import prefix_beam_search, word_times
        from suite.kernels.ctc import ctc_align, ctc_greedy
        from suite.kernels.losses import log_softmax

        if len(logits) == 0:
            return "", [], []
        log_probs = log_softmax(logits.astype(np.float64))  # (T', C)
        if self.beam > 1 or self.lm is not None or self.lexicon is not None:
            best = prefix_beam_search(log_probs, beam=self.beam, blank=self.alphabet.blank, lm=self.lm,
                                      lm_weight=self.lm_weight, char_bonus=self.bonus, lexicon=self.lexicon)
            tokens = np.array(best[0][0], dtype=np.int32) if best else np.zeros(0, np.int32)
        else:
            tokens = ctc_greedy(logits[:, None, :], np.array([len(logits)]))[0][0]
        if len(tokens) == 0:
            return "", [], []
        starts, ends = ctc_align(log_probs, tokens)
        words = word_times(tokens, starts, ends, space_id=self.alphabet.space, frame_seconds=self.frame_seconds,
                           id_to_char=self.alphabet.chars)
        return self.alphabet.decode(tokens), tokens, words


def tune_decoding(decoder, logits, refs, lm_weights=LM_WEIGHTS, bonuses=CHAR_BONUSES, progress=None, groups=None,
                  metric="wer"):
    """The LM weight, character bonus and lexicon use with the lowest error rate, and the grid searched.

    decoder: a CTCDecoder (its settings are changed while searching); logits:
    each validation item's (T', C) logits (split_logits); refs: their
    normalised texts. metric: "wer" or "cer". groups: an optional label per
    item; the score is then the mean of the groups' rates, so that a kind of
    item (say digit strings beside prose) weighs as much as the others whatever
    its count. Ties go to the earlier setting (smaller weights, no lexicon).
    Without an LM only the bonus is searched; without a lexicon
    (decoder.all_words), decoding without one.
    """
    if decoder.lm is None:
        lm_weights = (0.0,)
    grid = [(x, w, b) for x in ((False, True) if decoder.all_words else (False,))
            for w in lm_weights for b in bonuses]
    names = sorted(set(groups)) if groups is not None else []
    results = []
    for k, (x, w, b) in enumerate(grid):
        decoder.lexicon = decoder.all_words if x else None
        decoder.lm_weight, decoder.bonus = w, b
        hyps = [decoder.decode(l)[0] for l in logits]
        result = {"lexicon": x, "lm_weight": w, "bonus": b} | error_rates(refs, hyps)
        result["score"] = result[metric]
        if names:
            by = {g: rates[metric] for g, rates in sorted(error_rates_by(groups, refs, hyps).items())}
            result |= {f"{metric}_{g}": v for g, v in by.items()}
            result["score"] = round(sum(by.values()) / len(by), 4)
        results.append(result)
        if progress is not None:
            progress(k + 1, len(grid))
    best = min(results, key=lambda r: (r["score"], r["cer"]))
    keys = ("lexicon", "lm_weight", "bonus")
    how = f"mean {metric.upper()} of the groups {', '.join(names)}" if names else f"lowest {metric.upper()}"
    return {"beam": decoder.beam} | {k: best[k] for k in keys} | {
        "valid_wer": best["wer"], "valid_cer": best["cer"],
        "chosen_on": f"validation split ({len(refs)} utterances), {how}",
        "grid": [{k: v for k, v in r.items() if k not in ("utterances", "words")} for r in results]}
