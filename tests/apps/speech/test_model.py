import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from suite.apps.speech.data import ALPHABET, encode, feature_dim
from suite.apps.speech.model import (SpeechConfig, SpeechModel, SpeechTask, Transcriber, config_dict, evaluate_features,
                                     load_model, read_eval_tsv, stack_frames)
from suite.ctc_task import pad_targets
from suite.nn.checkpoint import save_checkpoint
from tests.gradcheck import check_gradients


def _tiny(dtype=np.float32, seed=0, F=4):
    config = SpeechConfig(feature_dim=F, vocab_size=len(ALPHABET), stack=2, hidden=5, layers=2, dropout=0.0,
                          seed=seed)
    return SpeechModel(config).to(dtype)


def test_stack_frames_layout():
    x = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)  # (T, B, F)
    y, steps = stack_frames(x, np.array([5, 3]), 2)
    assert y.shape == (3, 2, 6) and steps.tolist() == [3, 2]
    assert np.array_equal(y[1, 0], np.concatenate([x[2, 0], x[3, 0]]))
    assert np.array_equal(y[2, 1], np.concatenate([x[4, 1], np.zeros(3)]))


def test_model_gradient_matches_finite_differences():
    from suite.ctc import ctc_loss_mean

    model = _tiny(np.float64)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 2, 4))
    lengths = np.array([12, 9])
    targets, tlens = pad_targets([encode("go"), encode("no")])

    def loss():
        logits, steps = model.forward(x, lengths)
        return ctc_loss_mean(logits, targets, steps, tlens)

    model.zero_grad()
    value, dlogits = loss()
    model.backward(dlogits)
    grads = {n: p.grad.copy() for n, p in model.named_parameters()}
    check_gradients(lambda: loss()[0], {n: p.value for n, p in model.named_parameters()}, grads, rtol=1e-4,
                    atol=1e-8, sample=3, rng=rng, rule="approx")


def test_ctc_training_learns_a_toy_task():
    """Two 'words' with distinct feature patterns; a few hundred Adam steps must read them."""
    from tests.adam import adam_steps

    rng = np.random.default_rng(1)
    F = 4
    pattern = {"go": np.array([3.0, 0, 0, 0]), "no": np.array([0, 0, 3.0, 0])}

    def utterance(word):
        T = int(rng.integers(10, 16))
        x = rng.normal(scale=0.3, size=(T, F))
        x[3:T - 3] += pattern[word]
        return x.astype(np.float32)

    texts = [str(rng.choice(["go", "no"])) for _ in range(24)]
    data = {"features": [utterance(t) for t in texts], "texts": texts}
    model = _tiny(seed=2, F=F)
    task = SpeechTask(data, data, batch_size=8, augment=False)
    before = evaluate_features(model, data["features"], texts)["ctc_loss"]
    adam_steps(model, lambda step: task.loss_and_grad(model, task.train_batch(np.random.default_rng(step))), 300,
               2e-2)
    after = evaluate_features(model, data["features"], texts)
    assert after["ctc_loss"] < 0.3 * before
    assert after["cer"] < 0.2


def test_tune_decoding_picks_the_setting_with_the_lowest_validation_wer(monkeypatch):
    from suite.apps.speech.model import lexicon_words, tune_decoding
    from suite.ctc import CharNGramLM

    texts = ["go three", "stop", "one two"]
    lm = CharNGramLM.fit([encode(t) for t in texts], order=3, vocab_size=len(ALPHABET))
    card = {"meta": {"lm": lm.to_dict(), "decoding": {"lm_weight": 0.5, "bonus": 0.0}}}
    split = {"features": [np.zeros((6, 4), np.float32)] * 3, "texts": texts}
    calls = iter(range(10**6))

    def fake_decode(self, logits):  # right only for one setting, so the choice shows which setting won
        i = next(calls) % len(texts)
        right = (self.lm_weight, self.bonus, self.lexicon is not None) == (0.75, 0.5, winner_has_lexicon)
        return (texts[i] if right else "go"), None, None
    monkeypatch.setattr(Transcriber, "decode", fake_decode)
    winner_has_lexicon = False
    out = tune_decoding(_tiny().eval(), card, split)
    assert (out["lexicon"], out["lm_weight"], out["bonus"], out["valid_wer"]) == (False, 0.75, 0.5, 0.0)
    assert len(out["grid"]) == 15 and out["chosen_on"].startswith("validation")
    winner_has_lexicon = True
    with_words = {"meta": card["meta"] | {"lexicon": lexicon_words(texts)}}
    out = tune_decoding(_tiny().eval(), with_words, split)
    assert (out["lexicon"], out["lm_weight"], out["bonus"], out["valid_wer"]) == (True, 0.75, 0.5, 0.0)
    assert len(out["grid"]) == 30
    no_lm = tune_decoding(_tiny().eval(), {"meta": {"lm": None}}, split)
    assert {g["lm_weight"] for g in no_lm["grid"]} == {0.0} and len(no_lm["grid"]) == 3


@pytest.fixture
def model_dir(tmp_path):
    model = SpeechModel(SpeechConfig(feature_dim=feature_dim(), vocab_size=len(ALPHABET), hidden=4, layers=1))
    d = tmp_path / "model"
    save_checkpoint(d, model.state_dict(), config_dict(model.config),
                    meta={"app": "speech", "lm": None, "decoding": {"lm_weight": 0.5, "bonus": 0.0}})
    return d


def _cli():
    from suite.apps.speech.cli import cli
    return cli


def test_lexicon_words_and_transcriber_lexicon_switches():
    from suite.apps.speech.model import lexicon, lexicon_words

    assert lexicon_words(["Go three", "three  OH", ""]) == ["go", "oh", "three"]
    meta = {"lm": None, "lexicon": ["go", "three"], "decoding": {"lexicon": True}}
    model = _tiny().eval()
    assert lexicon({"meta": meta}).size == 2 and lexicon({"meta": {}}) is None
    assert Transcriber(model, {"meta": meta}).lexicon is not None
    assert Transcriber(model, {"meta": meta}, use_lexicon=False).lexicon is None
    assert Transcriber(model, {"meta": meta | {"decoding": {"lexicon": False}}}).lexicon is None


def test_transcriber_handles_empty_and_silence(model_dir):
    model, card = load_model(model_dir)
    t = Transcriber(model, card, beam=4)
    assert t.transcribe_wave(np.zeros(0, np.float32), 16000) == ("", [])
    text, words = t.transcribe_wave(np.zeros(16000, np.float32), 16000)
    assert isinstance(text, str) and isinstance(words, list)


def test_cli_transcribes_good_files_and_reports_bad_ones(model_dir, tmp_path):
    good = tmp_path / "a.wav"
    sf.write(good, (0.1 * np.sin(np.arange(8000) / 5.0)).astype(np.float32), 8000)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    r = CliRunner().invoke(_cli(), ["transcribe", str(good), str(empty), str(video), "--model", str(model_dir),
                                    "--json"])
    assert r.exit_code == 1
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["file"] for row in rows] == [str(good)]
    assert rows[0]["seconds"] == pytest.approx(1.0, abs=0.01)
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("Error:") for e in errors)
    assert "Traceback" not in r.output


def test_corrupt_model_is_one_line_error(model_dir, tmp_path):
    (model_dir / "model.safetensors").write_bytes(b"\x00" * 10)
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(1600, np.float32), 16000)
    r = CliRunner().invoke(_cli(), ["transcribe", str(wav), "--model", str(model_dir)])
    assert r.exit_code == 1 and r.output.startswith("Error:") and len(r.output.strip().splitlines()) == 1


def test_evaluate_tsv_reads_rows_and_rejects_bad_files(tmp_path):
    tsv = tmp_path / "t.tsv"
    tsv.write_text("a.wav\tgo\tvoiceA\tclean\nb.wav\tno\n")
    rows = read_eval_tsv(tsv)
    assert rows[0][1:] == ("go", "voiceA", "clean") and rows[1][2:] == ("-", "-")
    (tmp_path / "bad.tsv").write_text("just one column\n")
    with pytest.raises(ValueError, match="bad.tsv:1"):
        read_eval_tsv(tmp_path / "bad.tsv")
    with pytest.raises(ValueError, match="no such file"):
        read_eval_tsv(tmp_path / "missing.tsv")


def test_every_command_has_help():
    for name in ["transcribe", "train", "evaluate", "export"]:
        r = CliRunner().invoke(_cli(), [name, "--help"])
        assert r.exit_code == 0 and "Example" in r.output


def test_non_speech_clips_replace_batch_items_with_empty_transcripts():
    rng = np.random.default_rng(0)
    data = {"features": [rng.normal(size=(30, feature_dim())).astype(np.float32) for _ in range(8)],
            "texts": ["go"] * 8}
    task = SpeechTask(data, data, batch_size=8, augment=False, non_speech=1.0, noise_pool=20)
    x, lengths, targets, target_lengths = task.train_batch(np.random.default_rng(1))
    assert target_lengths.tolist() == [0] * 8
    task = SpeechTask(data, data, batch_size=8, augment=False, non_speech=0.0)
    assert task.train_batch(np.random.default_rng(1))[3].tolist() == [2] * 8


def test_non_speech_kinds_are_finite_and_quiet_enough():
    from suite.apps.speech.data import NON_SPEECH_KINDS, non_speech

    rng = np.random.default_rng(3)
    for kind in NON_SPEECH_KINDS:
        wave, got = non_speech(rng, kind=kind)
        assert got == kind and wave.dtype == np.float32 and np.isfinite(wave).all()
        assert 0 < np.abs(wave).max() <= 10 ** (-6 / 20) + 1e-6
