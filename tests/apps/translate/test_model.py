import numpy as np
import pytest

from suite.apps.translate.model import (BOS, EOS, TranslateConfig, TranslateModel, Translator, beam_search_batch,
                                        make_batch, prepare_pairs)
from suite.apps.translate.placeholders import preserved
from tests.adam import adam_steps
from tests.gradcheck import check_gradients


def _tiny(sub, dtype=np.float32, seed=0, smoothing=0.0, dropout=0.0, size=1):
    config = TranslateConfig(vocab_size=sub.size, embed=6 * size, enc_hidden=5 * size, enc_layers=2, hidden=7 * size,
                             attn=4 * size,
                             dropout=dropout, label_smoothing=smoothing, seed=seed)
    return TranslateModel(config).to(dtype)


def _smoothed_loss(model, batch, eps):
    """The label-smoothed objective computed from scratch in NumPy: what the gradient must be the gradient of."""
    src, src_len, inputs, targets = batch
    memory, state = model.encode(src, src_len)
    logits, _, _ = model.decode_step(inputs, state, memory, src_len)
    z = logits.reshape(-1, logits.shape[-1]).astype(np.float64)
    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    t = targets.reshape(-1)
    keep = t != 0
    nll = -logp[keep, t[keep]]
    return float(((1 - eps) * nll + eps * -logp[keep].mean(axis=1)).mean())


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_whole_model_gradient_matches_finite_differences(subwords, rows, eps):
    model = _tiny(subwords, np.float64, smoothing=eps)
    pairs, _ = prepare_pairs(rows[:3], subwords)
    batch = make_batch(pairs)
    model.zero_grad()
    model.loss_and_grad(*batch)
    grads = {name: p.grad.copy() for name, p in model.named_parameters()}
    model.eval()
    params = {name: p.value for name, p in model.named_parameters()}
    assert len(params) > 15
    check_gradients(lambda: _smoothed_loss(model, batch, eps), params, grads, rtol=1e-4, atol=1e-8, sample=3, rng=1,
                    rule="approx")


def test_padding_does_not_change_a_sentences_loss(subwords, rows):
    model = _tiny(subwords, np.float64)
    model.eval()
    pairs, _ = prepare_pairs(rows, subwords)
    short, long_ = min(pairs, key=lambda p: len(p[0])), max(pairs, key=lambda p: len(p[0]))
    alone, _ = model.loss_and_grad(*make_batch([short]))
    b = make_batch([short, long_])
    memory, state = model.encode(b[0], b[1])
    logits, _, _ = model.decode_step(b[2], state, memory, b[1])
    m1, s1 = model.encode(*make_batch([short])[:2])
    l1, _, _ = model.decode_step(make_batch([short])[2], s1, m1, make_batch([short])[1])
    T = l1.shape[0]
    assert np.allclose(logits[:T, 0], l1[:, 0], atol=1e-10)
    assert np.isfinite(alone)


def test_loss_falls_when_training(subwords, rows):
    model = _tiny(subwords, seed=3, size=4)
    pairs, _ = prepare_pairs(rows, subwords)
    batch = make_batch(pairs)
    losses = adam_steps(model, lambda step: model.loss_and_grad(*batch)[0], 150, 2e-2)
    assert losses[-1] < 0.55 * losses[0], losses[::25]


def _greedy(model, src, src_len, max_len):
    memory, state = model.encode(src, src_len)
    words, out = np.array([[BOS]]), []
    for _ in range(max_len):
        logits, state, _ = model.decode_step(words, state, memory, src_len)
        w = int(logits[0, 0].argmax())
        if w == EOS:
            break
        out.append(w)
        words = np.array([[w]])
    return out


def test_beam_one_is_greedy_and_batching_changes_nothing(subwords, rows):
    model = _tiny(subwords, seed=5)
    model.eval()
    pairs, _ = prepare_pairs(rows, subwords)
    batch = make_batch(pairs[:5])
    together = beam_search_batch(model, batch[0], batch[1], beam=3, max_len=12, nbest=3)
    greedy = beam_search_batch(model, batch[0], batch[1], beam=1, max_len=12)
    for i, p in enumerate(pairs[:5]):
        src = p[0][:, None]
        alone = beam_search_batch(model, src, np.array([len(p[0])]), beam=3, max_len=12, nbest=3)[0]
        assert [h[0] for h in alone] == [h[0] for h in together[i]]
        assert np.allclose([h[1] for h in alone], [h[1] for h in together[i]], atol=1e-4)
        assert greedy[i][0][0] == _greedy(model, src, np.array([len(p[0])]), 12)[:12]
        scores = [h[2] for h in together[i]]
        assert scores == sorted(scores, reverse=True)


def test_an_untrained_model_still_keeps_every_placeholder(subwords):
    model = _tiny(subwords, seed=7)
    model.eval()
    messages = ["Cannot open %s: %s\n", "%1$s of %2$s", "<b>%d</b> files in {folder}", "_Save as…",
                "Read %<PRIu64> bytes from https://example.org/x", "  %(name)s is %(age)d years old:"]
    out = Translator(model, subwords, beam=2).translate(messages, "de")
    for msg, r in zip(messages, out):
        assert preserved(msg, r["text"]), (msg, r["text"])
        assert r["text"].endswith("\n") == msg.endswith("\n")


def test_a_message_of_several_lines_is_translated_line_by_line(subwords):
    model = _tiny(subwords, seed=7)
    model.eval()
    out = Translator(model, subwords, beam=2).translate(["Open the file\n\nClose the file"], "fr")[0]
    assert out["text"].count("\n") == 2 and out["text"].split("\n")[1] == ""


def test_memory_round_trips_and_refuses_other_shapes():
    import base64
    import gc
    import json
    import zlib

    from suite.apps.translate.memory import Memory

    rows = [{"lang": "de", "src": "a", "tgt": "b"}, {"lang": "de", "src": "a", "tgt": "c"},
            {"lang": "fr", "src": "x", "tgt": "y"}]
    memory = Memory.from_rows(rows)
    back = Memory.from_meta(memory.to_meta())
    assert back.pairs == memory.pairs == {"de": [("a", "b")], "fr": [("x", "y")]}  # the first target kept
    assert back.nearest("a", "de") == (1.0, "a", "b") and back.nearest("x!", "fr")[2] == "y"
    for bad in ([], {"de": "x"}, {"de": [["a"]]}, {"de": [["a", 1]]}, {"de": [["a", "b", "c"]]}):
        text = base64.b64encode(zlib.compress(json.dumps(bad).encode())).decode()
        with pytest.raises(ValueError, match="not a memory"):
            Memory.from_meta(text)
    assert gc.isenabled()  # from_meta pauses the collector while it reads, and turns it back on
