import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from suite.apps.caption.model import (CaptionConfig, CaptionModel, Vocab, caption_beams, caption_image, config_dict,
                                      greedy_batch, load_model, teacher_batch)
from suite.nn.checkpoint import save_checkpoint

WORDS = ["a", "small", "large", "red", "blue", "circle", "square", "left", "of"]


def _tiny(dtype=np.float32, seed=0, size=16):
    config = CaptionConfig(vocab_size=len(WORDS) + 4, input_size=size, channels=[3, 4], embed=5, hidden=6, attn=4,
                           dropout=0.0, seed=seed)
    return CaptionModel(config).to(dtype), Vocab(WORDS)


def _batch(vocab, B=2, size=16, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((B, 3, size, size))
    caps = [["a", "red", "circle"], ["a", "large", "blue", "square", "left", "of", "a", "red", "circle"]][:B]
    return images, *teacher_batch(vocab, caps)


def _check_gradients_by_differences(model, images, inputs, targets, per_array=3):
    """Every parameter's gradient, at per_array random entries, against central differences (float64 model)."""
    model.train()
    model.zero_grad()
    model.loss_and_grad(images, inputs, targets)
    grads = {name: p.grad.copy() for name, p in model.named_parameters()}
    model.eval()  # probes: forward only
    rng = np.random.default_rng(1)
    checked = 0
    for name, p in model.named_parameters():
        flat = p.value.reshape(-1)
        for i in rng.choice(flat.size, size=min(per_array, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + 1e-6
            up, _ = model.loss_and_grad(images, inputs, targets)
            flat[i] = old - 1e-6
            down, _ = model.loss_and_grad(images, inputs, targets)
            flat[i] = old
            numeric = (up - down) / 2e-6
            assert grads[name].reshape(-1)[i] == pytest.approx(numeric, rel=1e-4, abs=1e-8), (name, i)
            checked += 1
    assert checked > 20


def test_whole_model_gradient_matches_finite_differences():
    model, vocab = _tiny(np.float64)
    _check_gradients_by_differences(model, *_batch(vocab))


def _factored(dtype=np.float64, seed=0):
    """The tiny model with sizes, colours and shapes factored (vocab ids: WORDS[i] is id i + 4)."""
    from dataclasses import replace

    model, vocab = _tiny(dtype, seed)
    classes = [[vocab.index[w] for w in group] for group in (("small", "large"), ("red", "blue"), ("circle", "square"))]
    return CaptionModel(replace(model.config, factored=classes)).to(dtype), vocab


def test_factored_output_gradient_matches_finite_differences():
    model, vocab = _factored()
    assert {"cls.W", "fact.W"} <= {name for name, _ in model.named_parameters()}
    _check_gradients_by_differences(model, *_batch(vocab), per_array=4)


def test_factored_output_chooses_within_a_class_from_the_memory_alone():
    """Within a class the logits differ by fact(context) only: changing the LSTM's words changes the shape class's
    share but not the ratio between "circle" and "square" at a step whose attention context is held fixed."""
    model, vocab = _factored(seed=2)
    model.eval()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1, 2, model.config.hidden))
    context = np.repeat(rng.standard_normal((1, 1, model.mem_size)), 2, axis=1)  # one context, two states
    logits = model.output_logits(a, context)
    circle, square, left = vocab.index["circle"], vocab.index["square"], vocab.index["left"]
    gap = logits[0, :, circle] - logits[0, :, square]
    assert gap[0] == pytest.approx(gap[1])          # the states differ, the within-class choice does not
    assert logits[0, 0, left] != pytest.approx(logits[0, 1, left])  # other words follow the state as before
    plain = CaptionModel(_tiny(np.float64, 2)[0].config).to(np.float64)
    assert not hasattr(plain, "fact")               # without classes: no extra weights, old checkpoints load


def test_factored_config_of_the_wrong_shape_is_refused():
    from dataclasses import replace

    model, _ = _tiny()
    for bad in ([[5]], [[5, 6], [6, 7]], [[0, 5]], [[5, 99]]):
        with pytest.raises(ValueError, match="factored"):
            CaptionModel(replace(model.config, factored=bad))


def test_smooth_is_scipy_gaussian_filter_and_sigma_zero_is_identity():
    from scipy.ndimage import gaussian_filter

    from suite.apps.caption.model import smooth

    images = np.random.default_rng(0).random((2, 3, 9, 12)).astype(np.float32)
    assert smooth(images, 0.0) is images
    for sigma in (0.25, 0.5, 1.0, 3.0):  # 3.0: the kernel (radius 12) is wider than the 9-row image
        want = gaussian_filter(images, sigma=(0, 0, sigma, sigma))
        np.testing.assert_allclose(smooth(images, sigma), want, atol=1e-5)


def test_input_blur_smooths_what_the_encoder_sees_and_bad_values_are_refused():
    from dataclasses import replace

    from suite.apps.caption.model import smooth

    model, vocab = _tiny(seed=4)
    model.eval()
    images = np.random.default_rng(1).random((2, 3, 16, 16)).astype(np.float32)
    blurred = CaptionModel(replace(model.config, input_blur=0.75))
    blurred.load_state_dict(model.state_dict())
    blurred.eval()
    np.testing.assert_allclose(blurred.encode(images)[0], model.encode(smooth(images, 0.75))[0], atol=1e-6)
    assert not np.allclose(blurred.encode(images)[0], model.encode(images)[0], atol=1e-3)
    for bad in (-0.5, 9.0, "0.5", None):
        with pytest.raises(ValueError, match="input_blur"):
            CaptionModel(replace(model.config, input_blur=bad))


def test_export_chooses_the_input_blur_with_the_most_exact_objects_on_validation(monkeypatch):
    import suite.apps.caption.data as data
    import suite.apps.caption.model as cm

    model, vocab = _tiny(seed=6)
    model.config.input_blur = 0.25
    monkeypatch.setattr(data, "load_split", lambda d, split, size=None: (np.zeros((3, 3, 16, 16)), [["a"]] * 3, None))
    accuracy = {0.0: 0.5, 0.5: 0.9, 1.0: 0.9, 2.0: 0.1}  # a tie between 0.5 and 1.0: the smaller wins
    seen = []

    def fake_captions(m, v, images, beam, progress=None):
        seen.append(m.config.input_blur)
        return [str(m.config.input_blur)]

    monkeypatch.setattr(cm, "caption_images", fake_captions)
    monkeypatch.setattr(cm, "score_split", lambda hyps, refs, scenes: {"object_set_accuracy": accuracy[float(hyps[0])],
                                                                       "relation_accuracy": 0.5})
    best, record = cm.choose_input_blur(model, vocab, "unused", choices=(0.0, 0.5, 1.0, 2.0))
    assert best == 0.5 and record["chosen"] == 0.5 and seen == [0.0, 0.5, 1.0, 2.0]
    assert record["by_sigma"]["2.0"]["object_set_accuracy"] == 0.1
    assert model.config.input_blur == 0.25  # the model is left as it came


def test_loss_falls_when_training():
    from tests.adam import adam_steps

    model, vocab = _tiny(seed=3)
    images, inputs, targets = _batch(vocab)
    losses = adam_steps(model, lambda step: model.loss_and_grad(images.astype(np.float32), inputs, targets)[0], 120,
                        1e-2)
    assert losses[-1] < 0.4 * losses[0], losses[::20]


def test_beam_and_greedy_agree_at_beam_one():
    model, vocab = _tiny(seed=5)
    model.eval()
    images = np.random.default_rng(2).random((3, 3, 16, 16)).astype(np.float32)
    greedy = greedy_batch(model, images, max_len=8)
    together = caption_beams(model, vocab, images, beam=3, max_len=8, batch=2)  # two batches
    for b in range(3):
        hyps = caption_image(model, vocab, images[b], beam=1, max_len=8)
        assert hyps[0]["tokens"] == greedy[b]
        assert hyps[0]["attention"].shape[1] == model.grid ** 2
        alone = caption_image(model, vocab, images[b], beam=3, max_len=8)
        assert [h["tokens"] for h in together[b]] == [h["tokens"] for h in alone] and len(alone) == 3
        np.testing.assert_allclose([h["log_prob"] for h in together[b]], [h["log_prob"] for h in alone], atol=1e-5)


def test_beam_scores_are_sorted_and_sum_log_probs():
    model, vocab = _tiny(seed=6)
    model.eval()
    image = np.random.default_rng(3).random((3, 16, 16)).astype(np.float32)
    hyps = caption_image(model, vocab, image, beam=4, max_len=6, length_penalty=0.0)
    scores = [h["log_prob"] for h in hyps]
    assert scores == sorted(scores, reverse=True)
    # rescoring the best hypothesis with teacher forcing gives the same log-probability
    best = hyps[0]
    ids = best["tokens"] + ([2] if len(best["tokens"]) < 6 else [])
    memory, state = model.encode(image[None])
    words = np.array([1] + ids[:-1])[:, None]
    logits, _, _ = model.decode_step(words, state, memory)
    z = logits[:, 0].astype(np.float64)
    logp = z - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)) - z.max(1, keepdims=True)
    assert sum(logp[t, i] for t, i in enumerate(ids)) == pytest.approx(best["log_prob"], abs=1e-4)


@pytest.fixture
def model_dir(tmp_path):
    model, vocab = _tiny(size=64)
    model.config.input_size = 64
    d = tmp_path / "model"
    save_checkpoint(d, model.state_dict(), config_dict(model.config), meta={"app": "caption", "vocab": WORDS})
    return d


def _cli():
    from suite.apps.caption.cli import cli
    return cli


def test_cli_captions_images_and_reports_bad_ones(model_dir, tmp_path):
    good = tmp_path / "scene.png"
    Image.new("RGB", (90, 70), (240, 240, 230)).save(good)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    r = CliRunner().invoke(_cli(), [str(good), str(bad), "--model", str(model_dir), "--json", "--beam", "2"])
    assert r.exit_code == 1
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["file"] == str(good) and isinstance(rows[0]["caption"], str)
    assert "broken.png" in r.stderr and "Traceback" not in r.output


def test_cli_attention_picture_never_overwrites(model_dir, tmp_path):
    img = tmp_path / "scene.png"
    Image.new("RGB", (64, 64), (250, 250, 250)).save(img)
    out = tmp_path / "att.png"
    r = CliRunner().invoke(_cli(), ["describe", str(img), "--model", str(model_dir), "--attention", str(out)])
    assert r.exit_code == 0, r.output
    assert Image.open(out).size[0] > 100
    r = CliRunner().invoke(_cli(), [str(img), "--model", str(model_dir), "--attention", str(out)])
    assert r.exit_code == 1 and "already exists" in r.output


def test_corrupt_model_is_one_line_error(model_dir, tmp_path):
    (model_dir / "model.safetensors").write_bytes(b"garbage")
    img = tmp_path / "x.png"
    Image.new("RGB", (64, 64)).save(img)
    r = CliRunner().invoke(_cli(), [str(img), "--model", str(model_dir)])
    assert r.exit_code == 1 and r.output.startswith("Error:") and len(r.output.strip().splitlines()) == 1
    with pytest.raises(ValueError):
        load_model(model_dir)


def test_every_command_has_help():
    cli = _cli()
    for name in ["describe", "train", "evaluate", "export", "data"]:
        r = CliRunner().invoke(cli, [name, "--help"])
        assert r.exit_code == 0 and "Example" in r.output or name == "data"


def test_calibration_fits_a_known_logistic_and_lowers_the_error():
    from suite.apps.caption.model import calibrated, expected_calibration_error, fit_calibration

    rng = np.random.default_rng(0)
    feats = np.column_stack([rng.normal(-2, 1.5, 4000), rng.exponential(2.0, 4000)])
    truth = 1 / (1 + np.exp(-(0.5 + 1.2 * feats[:, 0] + 0.8 * feats[:, 1])))
    correct = rng.random(4000) < truth
    w = fit_calibration(feats, correct)
    assert abs(w[1] - 1.2) < 0.25 and abs(w[2] - 0.8) < 0.25
    p = calibrated(w, feats)
    assert expected_calibration_error(p, correct) < 0.03
    assert expected_calibration_error(np.exp(feats[:, 0]).clip(0, 1), correct) > 0.1  # the raw probability is not
    assert expected_calibration_error([0.0, 1.0], [False, True]) == 0.0


def test_grow_vocab_keeps_every_old_output_and_adds_the_new_words():
    from suite.apps.caption.model import grow_vocab

    model, vocab = _tiny()
    model.eval()
    images, words, _ = _batch(vocab)[:3]
    bigger, grown = grow_vocab(model, vocab, ["two", "circles", "red"])  # "red" is known: not added twice
    bigger.eval()
    assert grown.words[:vocab.size] == vocab.words and grown.words[vocab.size:] == ["two", "circles"]
    memory, state = model.encode(images)
    old, _, _ = model.decode_step(words, state, memory)
    memory, state = bigger.encode(images)
    new, _, _ = bigger.decode_step(words, state, memory)
    np.testing.assert_allclose(new[..., :vocab.size], old, rtol=1e-6, atol=1e-6)
    assert new.shape[-1] == vocab.size + 2
    assert grow_vocab(model, vocab, ["red"]) == (model, vocab)


def test_word_dropout_hides_input_words_only():
    from suite.apps.caption.model import CaptionTask, Vocab, teacher_batch

    vocab = Vocab("a small red circle left of large blue square".split())
    refs = [["a small red circle left of a large blue square"], ["a large blue square"]] * 8
    images = np.zeros((16, 3, 8, 8), np.uint8)
    plain = CaptionTask(vocab, images, refs, images, refs, batch_size=16, first_only=True)
    dropped = CaptionTask(vocab, images, refs, images, refs, batch_size=16, first_only=True, word_dropout=0.5)
    _, inputs, targets = plain.train_batch(np.random.default_rng(0))
    _, inputs_d, targets_d = dropped.train_batch(np.random.default_rng(0))
    np.testing.assert_array_equal(targets, targets_d)  # the targets are untouched
    unk = vocab.index["<unk>"]
    hidden = inputs_d != inputs
    assert hidden.any() and np.all(inputs_d[hidden] == unk)
    assert np.all(inputs_d[0] == 1) and not np.any(hidden & (inputs <= 2))  # BOS and padding never hidden
    assert 0.3 < hidden.sum() / (inputs > 2).sum() < 0.7
    # without word dropout the batch is what it always was (no extra draw from the generator)
    _, again, _ = CaptionTask(vocab, images, refs, images, refs, batch_size=16, first_only=True,
                              word_dropout=0.0).train_batch(np.random.default_rng(0))
    np.testing.assert_array_equal(again, inputs)
    assert teacher_batch(vocab, [["a"]])[0].shape == (2, 1)


def test_a_model_reads_a_larger_input_with_the_same_weights_and_pools_to_the_same_init_grid():
    """at_input_size: a 16-px model (grid 4, initial state from the grid pooled to 2x2) reading 32 px keeps every
    weight; its grid is 8x8 and its initial state the mean of 4x4 blocks; gradients still match differences."""
    from suite.apps.caption.model import at_input_size

    model, vocab = _tiny(np.float64)
    assert at_input_size(model, 16) is model
    big = at_input_size(model, 32)
    assert big.config.input_size == 32 and big.config.init_grid == 2 and big.grid == 8 and big.pool == 4
    for name, value in model.state_dict().items():
        assert np.array_equal(big.state_dict()[name], value), name
    images, inputs, targets = _batch(vocab, size=32)
    big.eval()
    memory, state = big.encode(images)
    assert memory.shape == (2, 64, 4 + 2)
    x = np.concatenate([images, np.broadcast_to(big._coords_in, (2,) + big._coords_in.shape)], axis=1)
    for layer in big.encoder:
        x = layer.forward(x)  # (2, 4, 8, 8)
    pooled = np.stack([x[:, :, i:i + 4, j:j + 4].mean(axis=(2, 3)) for i in (0, 4) for j in (0, 4)], axis=2)
    z = np.tanh(pooled.reshape(2, -1) @ big.init.W.value + big.init.b.value)
    np.testing.assert_allclose(np.concatenate([state[0][0], state[1][0]], axis=1), z, rtol=1e-12, atol=1e-12)
    _check_gradients_by_differences(big, images, inputs, targets)
    with pytest.raises(ValueError, match="cannot be average-pooled to 3x3"):
        CaptionModel(CaptionConfig(vocab_size=13, input_size=32, channels=[3, 4], init_grid=3))


def test_factored_model_refuses_the_gpu_in_one_line():
    model, _ = _factored()
    with pytest.raises(ValueError, match="runs on the CPU only: use --device cpu"):
        model.to_device("cuda")
