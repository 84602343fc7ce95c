"""suite/ctc.py: prefix beam search against brute force over all paths, the character
LM, word timings and the batch-mean loss."""
import json

import numpy as np
import pytest

from suite.kernels.ctc import ctc_greedy, ctc_loss
from suite.ctc import CharNGramLM, Lexicon, ctc_loss_mean, prefix_beam_search, word_times
from tests.reference.ctc import labelling_log_probs_ref, prefix_beam_search_ref
from tests.reference.losses import log_softmax_ref


SEQS = [[1, 2, 3, 1, 2], [2, 3, 3, 1], [1, 2, 1, 2, 3, 3], [], [3, 1]]  # LM training data


def _peaked(T, C, seed, blank_share=0.7, peak=8.0):
    """(T, C) log-probs whose frames are mostly confident blanks, the rest confident labels."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((T, C))
    best = np.where(rng.random(T) < blank_share, 0, rng.integers(1, C, T))
    logits[np.arange(T), best] += peak
    return log_softmax_ref(logits)


# ---------------------------------------------------------------- loss

def test_ctc_loss_mean_is_the_batch_mean():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 3, 4)).astype(np.float32)
    targets = np.array([[1, 2], [3, 3], [2, 0]])
    args = (targets, [6, 5, 1], [2, 2, 1])
    nll, dlogits = ctc_loss(logits, *args)
    loss, dmean = ctc_loss_mean(logits, *args)
    assert isinstance(loss, float) and dmean.dtype == np.float32
    np.testing.assert_allclose(loss, nll.mean(), rtol=1e-12)
    np.testing.assert_allclose(dmean, dlogits / 3, rtol=1e-6)


# ---------------------------------------------------------------- beam search

@pytest.mark.parametrize("seed", range(4))
def test_wide_beam_is_exact_on_tiny_cases(seed):
    rng = np.random.default_rng(seed)
    log_probs = log_softmax_ref(1.5 * rng.standard_normal((5, 3)))
    exact = labelling_log_probs_ref(log_probs)  # every labelling with its probability
    # 5 frames over 2 labels: 63 prefixes of up to 5 labels, 25 of them possible;
    # a beam of 100 never drops one
    result = prefix_beam_search(log_probs, beam=100, prune=-np.inf)
    assert len(result) == len(exact)
    best = max(exact, key=exact.get)
    assert result[0][0] == best
    for tokens, score in result:
        assert score == pytest.approx(exact[tokens], abs=1e-10)
    scores = [s for _, s in result]
    assert scores == sorted(scores, reverse=True)
    # the default beam of 8 still finds the most probable labelling here
    assert prefix_beam_search(log_probs)[0][0] == best


@pytest.mark.parametrize("peaked", [False, True])
@pytest.mark.parametrize("with_lm", [False, True])
def test_matches_textbook_beam_search(peaked, with_lm):
    """The exact skipping of hopeless prefixes changes nothing: same prefixes, same scores."""
    T, C = 40, 6
    lm = CharNGramLM.fit(SEQS, order=3, vocab_size=C) if with_lm else None
    for seed in range(3):
        log_probs = (_peaked(T, C, seed, peak=4.0) if peaked
                     else log_softmax_ref(np.random.default_rng(seed).standard_normal((T, C))))
        for beam, prune, bonus in [(1, -10.0, 0.0), (4, -2.0, 0.5), (8, -np.inf, 1.0), (16, -10.0, 0.0)]:
            kwargs = dict(beam=beam, prune=prune, lm=lm, lm_weight=0.7, char_bonus=bonus)
            got = prefix_beam_search(log_probs, **kwargs)
            expected = prefix_beam_search_ref(log_probs, **kwargs)
            assert [tokens for tokens, _ in got] == [tokens for tokens, _ in expected]
            np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_beam_one_is_greedy_on_peaked_inputs(seed):
    log_probs = _peaked(60, 6, seed)
    tokens, _ = ctc_greedy(log_probs[:, None, :], [60])[0]
    (best, score), = prefix_beam_search(log_probs, beam=1)
    assert best == tuple(tokens.tolist())
    assert score <= 0.0
    # pruning loses nothing that matters on confident frames
    assert prefix_beam_search(log_probs, beam=8)[0][0] == prefix_beam_search(
        log_probs, beam=8, prune=-np.inf)[0][0] == best


def test_blank_id_other_than_zero():
    log_probs = np.log(np.array([[0.1, 0.1, 0.8], [0.7, 0.1, 0.2], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]]))
    assert prefix_beam_search(log_probs, blank=2)[0][0] == (0, 0)
    assert prefix_beam_search(log_probs, blank=0)[0][0] == (2, 2)


def test_lm_changes_an_ambiguous_decision():
    # frames: label 3, blank, then 1 or 2 almost equally (1 slightly ahead), blank
    probs = np.array([[0.02, 0.01, 0.01, 0.96],
                      [0.96, 0.01, 0.01, 0.02],
                      [0.02, 0.50, 0.46, 0.02],
                      [0.96, 0.01, 0.02, 0.01]])
    log_probs = np.log(probs)
    assert prefix_beam_search(log_probs)[0][0] == (3, 1)
    lm = CharNGramLM.fit([[3, 2]] * 20 + [[1, 1]] * 5, order=2, vocab_size=4)
    assert lm.log_prob((3,), 2) > lm.log_prob((3,), 1)
    assert prefix_beam_search(log_probs, lm=lm, lm_weight=0.5)[0][0] == (3, 2)
    assert prefix_beam_search(log_probs, lm=lm, lm_weight=0.0)[0][0] == (3, 1)


def test_char_bonus_favours_longer_outputs():
    # one frame: blank 0.6, label 1 0.4
    log_probs = np.log(np.array([[0.6, 0.4]]))
    assert prefix_beam_search(log_probs)[0][0] == ()
    assert prefix_beam_search(log_probs, char_bonus=1.0)[0][0] == (1,)


WORDS = [(2, 3), (2, 4, 4), (5,)]  # token words; 1 is the separator


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("with_lm", [False, True])
def test_lexicon_search_matches_textbook_search_with_word_matching(seed, with_lm):
    """The trie gives what string matching of every prefix against the word list gives."""
    T, C = 30, 6
    lm = CharNGramLM.fit([[2, 3, 1, 5], [2, 4, 4, 1, 2, 3], [5]], order=3, vocab_size=C) if with_lm else None
    log_probs = log_softmax_ref(np.random.default_rng(seed).standard_normal((T, C)))
    for beam, prune in [(1, -10.0), (4, -2.0), (8, -np.inf), (16, -10.0)]:
        got = prefix_beam_search(log_probs, beam=beam, prune=prune, lm=lm, lexicon=Lexicon(WORDS, separator=1))
        expected = prefix_beam_search_ref(log_probs, beam=beam, prune=prune, lm=lm, words=set(WORDS), separator=1)
        assert [tokens for tokens, _ in got] == [tokens for tokens, _ in expected]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-12)


def test_lexicon_turns_a_non_word_into_the_nearest_word():
    # frames spell 2 4 (not a word) most probably; "2 4 4" needs the weaker blank in frame 3
    probs = np.array([[0.02, 0.01, 0.93, 0.01, 0.02, 0.01],
                      [0.90, 0.01, 0.01, 0.02, 0.05, 0.01],
                      [0.02, 0.01, 0.02, 0.01, 0.93, 0.01],
                      [0.30, 0.01, 0.01, 0.01, 0.66, 0.01],
                      [0.02, 0.01, 0.01, 0.01, 0.94, 0.01]])
    log_probs = np.log(probs / probs.sum(axis=1, keepdims=True))
    assert prefix_beam_search(log_probs)[0][0] == (2, 4)
    lexicon = Lexicon(WORDS, separator=1)
    out = prefix_beam_search(log_probs, lexicon=lexicon)
    assert out[0][0] == (2, 4, 4) and all(lexicon.complete(tokens) for tokens, _ in out)


def test_lexicon_rules():
    lexicon = Lexicon(WORDS + [(2, 3)], separator=1)
    assert lexicon.size == 3
    assert lexicon.allows((), 2) and not lexicon.allows((), 1) and not lexicon.allows((), 3)
    assert lexicon.allows((2, 3), 1) and not lexicon.allows((2,), 1) and not lexicon.allows((2, 3, 1), 1)
    assert lexicon.complete(()) and lexicon.complete((2, 3)) and lexicon.complete((2, 3, 1))
    assert lexicon.complete((2, 3, 1, 5)) and not lexicon.complete((2, 4)) and not lexicon.complete((3,))
    # nothing complete survived: the incomplete labellings are returned rather than nothing
    log_probs = np.log(np.array([[0.05, 0.05, 0.9, 0.0 + 1e-9, 1e-9, 1e-9]]))
    log_probs -= np.log(np.exp(log_probs).sum())
    assert prefix_beam_search(log_probs, beam=1, lexicon=lexicon)[0][0] == (2,)
    for bad in ([()], [(2, 1)], []):
        with pytest.raises(ValueError, match="lexicon"):
            Lexicon(bad, separator=1)
    with pytest.raises(ValueError, match="lexicon must be"):
        prefix_beam_search(log_probs, lexicon={(2, 3)})


def test_beam_search_bad_args():
    log_probs = np.log(np.full((3, 4), 0.25))
    with pytest.raises(ValueError, match="not log-probabilities"):
        prefix_beam_search(log_probs + 1.0)
    with pytest.raises(ValueError, match="beam must be"):
        prefix_beam_search(log_probs, beam=0)
    with pytest.raises(ValueError, match="blank = 4"):
        prefix_beam_search(log_probs, blank=4)
    with pytest.raises(ValueError, match="log_probs has shape"):
        prefix_beam_search(log_probs[0])
    with pytest.raises(ValueError, match="log_prob"):
        prefix_beam_search(log_probs, lm=object())
    with pytest.raises(ValueError, match="lm_weight"):
        prefix_beam_search(log_probs, lm_weight=-1.0)
    assert prefix_beam_search(np.zeros((0, 4))) == [((), 0.0)]


# ---------------------------------------------------------------- character LM

@pytest.mark.parametrize("order", [1, 2, 4])
def test_lm_distributions_sum_to_one(order):
    lm = CharNGramLM.fit(SEQS, order=order, vocab_size=5)
    for context in [(), (1,), (1, 2), (3, 3, 1, 2), (4, 4, 4), (0,)]:
        p = lm.distribution(context)
        assert p.shape == (6,) and (p > 0).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert [lm.log_prob(context, t) for t in range(6)] == pytest.approx(np.log(p).tolist())


def test_lm_learns_and_ends():
    lm = CharNGramLM.fit([[1, 2, 3]] * 30, order=3, vocab_size=4)
    assert lm.end_id == 4
    assert lm.distribution(()).argmax() == 1  # sequences start with 1
    assert lm.distribution((1, 2)).argmax() == 3
    assert lm.distribution((1, 2, 3)).argmax() == lm.end_id
    assert lm.sequence_log_prob([1, 2, 3]) > lm.sequence_log_prob([1, 2]) + 1.0
    assert lm.sequence_log_prob([1, 2, 3], end=False) > lm.sequence_log_prob([3, 2, 1], end=False)


@pytest.mark.parametrize("vocab_size,order", [(5, 3), (254, 9)])  # exact keys, then hashed ones
def test_lm_round_trips_through_json(vocab_size, order):
    lm = CharNGramLM.fit(SEQS + [[vocab_size - 1, 1, 2]], order=order, vocab_size=vocab_size)
    assert lm.model.exact == (vocab_size == 5)
    d = json.loads(json.dumps(lm.to_dict()))
    back = CharNGramLM.from_dict(d)
    assert back.order == order and back.vocab_size == vocab_size
    for context in [(), (1,), (1, 2), (2, 3, 3), (3, 1, 2, 1, 2, 3, 3, 1)]:
        np.testing.assert_allclose(back.distribution(context), lm.distribution(context), rtol=1e-12)


def test_lm_bad_args():
    with pytest.raises(ValueError, match="outside"):
        CharNGramLM.fit([[1, 5]], vocab_size=5)
    with pytest.raises(ValueError, match="empty"):
        CharNGramLM.fit([], vocab_size=5)
    with pytest.raises(ValueError, match="order"):
        CharNGramLM.fit(SEQS, order=0, vocab_size=5)
    lm = CharNGramLM.fit(SEQS, vocab_size=5)
    with pytest.raises(ValueError, match="context tokens"):
        lm.distribution((5,))
    with pytest.raises(ValueError, match="format"):
        CharNGramLM.from_dict({"format": "something else"})
    broken = lm.to_dict()
    del broken["levels"][0]["counts"]
    with pytest.raises(ValueError, match="malformed"):
        CharNGramLM.from_dict(broken)
    packed = lm.to_dict()["levels"][1]["counts"]
    for bad, why in [("12,3", "list of integers"), ("zlib+base64:@@@", "does not decode"),
                     ("zlib+base64:" + packed[len("zlib+base64:"):][:-8], "does not decode"),
                     ("zlib+base64:eJxjAAAAAQAB", "not a multiple of 8")]:
        broken = lm.to_dict()
        broken["levels"][1]["counts"] = bad
        with pytest.raises(ValueError, match=why):
            CharNGramLM.from_dict(broken)


def test_lm_reads_unpacked_lists():
    """Models exported before arrays were packed (plain JSON lists of integers, keys delta-coded) still load."""
    lm = CharNGramLM.fit(SEQS, order=3, vocab_size=5)
    assert all(v.startswith("zlib+base64:") for entry in lm.to_dict()["levels"] for v in entry.values())
    lists = lm.to_dict(packed=False)
    assert all(isinstance(v, list) for entry in lists["levels"] for v in entry.values())
    assert lists["levels"][1]["keys"] == np.diff(lm.model.levels[1].keys, prepend=np.uint64(0)).tolist()
    back = CharNGramLM.from_dict(json.loads(json.dumps(lists)))
    for context in [(), (1,), (1, 2), (2, 3, 3)]:
        np.testing.assert_allclose(back.distribution(context), lm.distribution(context), rtol=1e-12)


# ---------------------------------------------------------------- word timings

def test_word_times():
    chars = ["_", " ", "a", "b"]
    tokens = [1, 2, 3, 1, 1, 3, 1]  # " ab  b "
    starts = [0, 2, 4, 6, 8, 10, 12]
    ends = [1, 3, 5, 6, 9, 11, 13]
    words = word_times(tokens, starts, ends, space_id=1, frame_seconds=0.02, id_to_char=chars)
    assert [w["word"] for w in words] == ["ab", "b"]
    assert words[0]["start"] == pytest.approx(0.04) and words[0]["end"] == pytest.approx(0.12)
    assert words[1]["start"] == pytest.approx(0.20) and words[1]["end"] == pytest.approx(0.24)
    assert word_times([], [], [], 1, 0.02, chars) == []
    with pytest.raises(ValueError, match="one start and end per token"):
        word_times(tokens, starts[:-1], ends, 1, 0.02, chars)
    with pytest.raises(ValueError, match="frame_seconds"):
        word_times(tokens, starts, ends, 1, 0.0, chars)


@pytest.mark.parametrize("values", [[], [7], [1, 1, 2, 5, 5, 5, 9], [3, 1, 2, 3, 1], [2, 2, 2]])
def test_unique_of_sorted_and_unsorted_keys_is_numpys(values):
    from suite.baselines import _unique

    values = np.array(values, dtype=np.uint64)
    got, want = _unique(values), np.unique(values, return_inverse=True)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert got[1].dtype.kind == want[1].dtype.kind == "i"
