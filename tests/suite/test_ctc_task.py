"""suite/ctc_task.py on a tiny synthetic alphabet: training learns, batched evaluation equals one at a time,
decoding settings are chosen on validation, error rates skip empty references."""
import numpy as np
import pytest

from suite.ctc_task import (Alphabet, CTCDecoder, CTCTask, error_rates, evaluate_features, pad_targets,
                            split_logits, tune_decoding)
from suite.nn import Linear, Module, Recurrent

ABC = Alphabet.from_chars(("_", " ", "a", "b"), normalize=str.lower)  # blank, space and two letters
PATTERN = {"a": np.array([3.0, 0, 0, 0]), "b": np.array([0, 0, 3.0, 0])}


class Tiny(Module):
    """A one-layer BiLSTM and a linear read-out: the model shape the CTC task expects."""

    def __init__(self, F=4, hidden=6, seed=0):
        from types import SimpleNamespace

        self.config = SimpleNamespace(vocab_size=ABC.size)
        rng = np.random.default_rng(seed)
        self.rnn = Recurrent(F, hidden, num_layers=1, kind="lstm", bidirectional=True, seed=seed)
        self.out = Linear(self.rnn.output_size, ABC.size, rng=rng)

    def forward(self, x, lengths):
        y, _ = self.rnn.forward(np.asarray(x, self.dtype), lengths)
        return self.out.forward(y), np.asarray(lengths)

    def backward(self, dlogits):
        self.rnn.backward(self.out.backward(dlogits))


def _item(text, rng, F=4):
    """Frames that show each letter's pattern for a few steps, noise between."""
    parts = [rng.normal(scale=0.3, size=(2, F))]
    for ch in text:
        block = rng.normal(scale=0.3, size=(4, F))
        block += PATTERN.get(ch, 0.0)
        parts += [block, rng.normal(scale=0.3, size=(2, F))]
    return np.concatenate(parts).astype(np.float32)


def test_alphabet_from_chars():
    assert ABC.size == 4 and ABC.space == 1 and ABC.blank == 0
    assert ABC.encode("Ab b?").tolist() == [2, 3, 1, 3] and ABC.encode("Ab b?").dtype == np.int32
    assert ABC.decode([0, 2, 0, 1, 3]) == "a b"


def test_pad_targets():
    out, lengths = pad_targets([np.array([2, 3]), np.zeros(0, np.int32)])
    assert out.tolist() == [[2, 3], [0, 0]] and out.dtype == np.int32 and lengths.tolist() == [2, 0]


def test_ctc_task_learns_a_toy_task():
    from tests.adam import adam_steps

    rng = np.random.default_rng(1)
    texts = [str(rng.choice(["a", "b", "ab", "ba"])) for _ in range(32)]
    data = {"features": [_item(t, rng) for t in texts], "texts": texts}
    model = Tiny(seed=2)
    task = CTCTask(data, data, ABC, batch_size=8)
    before = task.evaluate(model)
    adam_steps(model, lambda step: task.loss_and_grad(model, task.train_batch(np.random.default_rng(step))), 300,
               2e-2)
    after = task.evaluate(model)
    assert set(after) == {"loss", "cer", "wer"}
    assert after["loss"] < 0.3 * before["loss"] and after["cer"] < 0.2


def test_batch_hooks_swap_items_and_augment():
    rng = np.random.default_rng(0)
    data = {"features": [rng.normal(size=(10, 4)).astype(np.float32) for _ in range(4)], "texts": ["a"] * 4}

    class Silent(CTCTask):
        def batch_items(self, idx, rng):
            feats, labels = super().batch_items(idx, rng)
            return feats, [np.zeros(0, np.int32) for _ in labels]

    task = Silent(data, data, ABC, batch_size=4, augment=lambda f, rng: np.zeros_like(f))
    x, lengths, targets, target_lengths = task.train_batch(np.random.default_rng(1))
    assert x.shape == (10, 4, 4) and not x.any() and target_lengths.tolist() == [0] * 4


def test_split_logits_and_evaluation_match_one_item_at_a_time():
    model = Tiny(seed=3).eval()
    rng = np.random.default_rng(3)
    feats = [rng.normal(size=(T, 4)).astype(np.float32) for T in (7, 0, 12, 3, 12)]
    got = split_logits(model, feats, batch_size=2)
    for f, g in zip(feats, got):
        if len(f) == 0:
            assert g.shape == (0, ABC.size)
            continue
        one, _ = model.forward(f[:, None, :], np.array([len(f)]))
        np.testing.assert_allclose(g, one[:, 0], rtol=1e-5, atol=1e-6)
    texts = ["a", "b", "ab", "ba"]
    spoken = [f for f in feats if len(f)]
    batched = evaluate_features(model, spoken, texts, ABC, batch_size=3)
    alone = [evaluate_features(model, [f], [t], ABC) for f, t in zip(spoken, texts)]
    assert batched["hypotheses"] == [a["hypotheses"][0] for a in alone]
    assert batched["ctc_loss"] == pytest.approx(np.mean([a["ctc_loss"] for a in alone]), rel=1e-5)


def test_error_rates_skip_empty_references():
    out = error_rates(["a b", "", "b"], ["a", "a", "b"])
    assert out == {"wer": pytest.approx(1 / 3, abs=1e-4), "cer": 0.5,  # "a b" -> "a": 2 of 4 characters
                   "utterances": 3, "words": 3}
    assert error_rates([""], ["a"])["wer"] == 0.0


def test_decoder_greedy_and_beam_agree_on_peaked_logits():
    logits = np.full((6, ABC.size), -5.0)
    for t, label in enumerate([2, 0, 1, 3, 3, 0]):  # "a", blank, " ", "b", "b", blank
        logits[t, label] = 5.0
    for beam in (1, 4):
        text, tokens, words = CTCDecoder(ABC, frame_seconds=0.1, beam=beam).decode(logits)
        assert text == "a b" and list(tokens) == [2, 1, 3]
        assert [w["word"] for w in words] == ["a", "b"] and words[0]["start"] == 0.0
    assert CTCDecoder(ABC, 0.1).decode(np.zeros((0, ABC.size))) == ("", [], [])


def test_tune_decoding_picks_the_lowest_wer_and_prefers_earlier_settings():
    from suite.ctc import CharNGramLM, Lexicon

    refs = ["a b", "b", "a"]

    class Fake(CTCDecoder):
        def decode(self, logits):  # right only for one setting, so the choice shows which setting won
            right = (self.lm_weight, self.bonus, self.lexicon is not None) == (0.5, 1.0, True)
            return (refs[int(logits[0, 0])] if right else "b b"), None, None

    lm = CharNGramLM.fit([ABC.encode(r) for r in refs], order=2, vocab_size=ABC.size)
    words = Lexicon([ABC.encode(w) for w in ("a", "b")], separator=ABC.space)
    logits = [np.full((2, ABC.size), float(i)) for i in range(3)]
    out = tune_decoding(Fake(ABC, 0.1, beam=4, lm=lm, all_words=words), logits, refs)
    assert (out["lexicon"], out["lm_weight"], out["bonus"], out["valid_wer"], out["beam"]) == (True, 0.5, 1.0, 0.0, 4)
    assert len(out["grid"]) == 30 and out["chosen_on"].startswith("validation split (3")
    plain = tune_decoding(Fake(ABC, 0.1), logits, refs)  # no LM, no lexicon: the bonus alone, all tied
    assert len(plain["grid"]) == 3 and (plain["lexicon"], plain["lm_weight"], plain["bonus"]) == (False, 0.0, 0.0)


def test_tune_decoding_by_groups_weighs_each_group_alike():
    refs = ["ab", "ab", "ab", "ab", "b"]
    groups = ["text"] * 4 + ["digits"]

    class Fake(CTCDecoder):
        def decode(self, logits):  # bonus 0 is right on the many text items, bonus 0.5 on the one digit item
            i = int(logits[0, 0])
            if self.bonus == 0.0:
                return (refs[i] if i < 4 else "a"), None, None
            if self.bonus == 0.5:
                return ("a" if i < 2 else refs[i]), None, None
            return "", None, None

    logits = [np.full((2, ABC.size), float(i)) for i in range(5)]
    plain = tune_decoding(Fake(ABC, 0.1), logits, refs, metric="cer")
    grouped = tune_decoding(Fake(ABC, 0.1), logits, refs, groups=groups, metric="cer")
    assert plain["bonus"] == 0.0 and grouped["bonus"] == 0.5
    assert "cer_digits" in grouped["grid"][0] and "mean CER of the groups digits, text" in grouped["chosen_on"]


def test_char_lm_is_built_once_per_stored_dict():
    """Loading a model checks its LM by building it, and the decoder asks for it again: the same stored dict gives
    the same LM object (built once), an equal but other dict a new one with the same probabilities, none none."""
    from suite.ctc import CharNGramLM
    from suite.ctc_task import char_lm

    stored = CharNGramLM.fit([[2, 3, 1, 2], [3, 2, 2]], order=3, vocab_size=ABC.size).to_dict()
    meta = {"lm": stored}
    first = char_lm(meta)
    assert char_lm({"lm": stored}) is first
    copy = {"lm": {**stored}}
    other = char_lm(copy)
    assert other is not first
    np.testing.assert_array_equal(other.distribution((2, 3)), first.distribution((2, 3)))
    assert char_lm({}) is None and char_lm(None) is None
