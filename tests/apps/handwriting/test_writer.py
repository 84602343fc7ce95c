"""The writer (Graves 2013 synthesis): pen-offset data, the model's gradients, a tiny training run whose loss
falls, and `write` / `writer export` through the CLI with bad input."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from suite.apps.handwriting import strokes as st
from suite.apps.handwriting.cli import cli
from suite.apps.handwriting.writer import (WriterConfig, WriterModel, WriterTask, chunks, encode, pack,
                                           sample_points, writer_chars)
from tests.gradcheck import check_directional

TEXTS = ["the quick brown fox", "jumps over 13 lazy dogs", "Pack my box, with five", "dozen liquor jugs."]


def test_offsets_round_trip_and_mark_stroke_ends():
    strokes = st.hershey_strokes("Hi there", "scripts")
    seq = st.to_offsets(strokes)
    assert seq.shape == (sum(len(s) for s in strokes), 3)
    assert seq[:, 2].sum() == len(strokes) and seq[-1, 2] == 1
    back = st.from_offsets(seq)
    assert len(back) == len(strokes)
    for a, b in zip(back, strokes):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_thinning_keeps_stroke_ends_and_spacing():
    rng = np.random.default_rng(0)
    strokes = st.jitter(st.hershey_strokes("minimum", "cursive"), rng)
    thinned = st.thin(strokes, 1.5)
    for full, thin in zip(strokes, thinned):
        np.testing.assert_array_equal(thin[0], full[0])
        np.testing.assert_array_equal(thin[-1], full[-1])
        steps = np.hypot(*np.diff(thin[:-1], axis=0).T)
        assert (steps >= 1.5).all()
    assert sum(map(len, thinned)) < sum(map(len, strokes))


def test_chunks_keep_words_whole_and_short():
    assert chunks("the quick brown fox jumps", 10) == ["the quick", "brown fox", "jumps"]
    assert chunks("a supercalifragilistic word", 8) == ["a", "supercal", "ifragili", "stic", "word"]
    assert chunks("   ", 10) == []


def test_encode_names_what_cannot_be_written():
    chars = writer_chars()
    assert len(encode("Hello, 42!", chars)) == 10
    with pytest.raises(ValueError, match="é"):
        encode("café", chars)


def test_model_gradients_match_finite_differences():
    chars = writer_chars()
    cfg = WriterConfig(vocab_size=len(chars), hidden=6, mixtures=2, bumps=2, seed=1)
    model = WriterModel(cfg).to(np.float64)
    rng = np.random.default_rng(0)
    batch = [(st.training_line(t, st.HANDS[i % 3], rng)[:15], i % 3, t[:5]) for i, t in enumerate(TEXTS[:3])]
    task = WriterTask(TEXTS, TEXTS, chars, cfg, batch_size=3, valid_lines=1)
    model.zero_grad()
    task.loss_and_grad(model, batch)
    for name, p in model.named_parameters():
        check_directional(lambda: _loss(model, task, batch), p.value, p.grad, rng, name, rtol=1e-5)


def _loss(model, task, batch):
    from suite.kernels.mdn import mdn_nll

    x, targets, lengths, ids, n_ids = pack(*zip(*batch), task.chars, task.config)
    out, _, _ = model.forward(x.astype(np.float64), lengths, ids, n_ids)
    T, B, W = out.shape
    mask = (np.arange(T)[:, None] < lengths[None, :]).astype(np.float64).reshape(-1)
    return mdn_nll(out.reshape(T * B, W), targets.reshape(T * B, 3), mask / mask.sum())[0]


def test_sampling_bias_narrows_the_spread():
    rng = np.random.default_rng(0)
    out = np.tile(rng.standard_normal(13), (4000, 1))  # one 2-component mixture, many draws
    loose, tight = sample_points(out, 0.0, rng), sample_points(out, 3.0, rng)
    assert tight[:, :2].std(axis=0).sum() < 0.5 * loose[:, :2].std(axis=0).sum()
    assert set(np.unique(loose[:, 2])) <= {0.0, 1.0}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("writer")
    run = root / "run"
    r = CliRunner().invoke(cli, ["writer", "train", "--out", str(run), "--hidden", "16", "--mixtures", "3",
                                 "--bumps", "2", "--batch-size", "4", "--max-chars", "6", "--steps", "60",
                                 "--eval-every", "30", "--lr", "0.01", "--quiet", "--json"])
    assert r.exit_code == 0, r.output
    return root, run


def test_training_loss_falls(tiny):
    _, run = tiny
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r["loss"] for r in rows if r["split"] == "train"]
    assert train[-1] < train[0] - 0.3, train


def test_write_png_svg_and_bad_input(tiny, tmp_path):
    root, run = tiny
    model = str(run / "best")
    png, svg = tmp_path / "a.png", tmp_path / "a.svg"
    r = CliRunner().invoke(cli, ["write", "Hi there\nfriend", "-o", str(png), "--model", model, "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert [p["line"] for p in info["pieces"]] == [0, 0, 1] and info["points"] > 0  # max-chars 6: "Hi", "there"
    assert Image.open(png).mode == "L"
    r = CliRunner().invoke(cli, ["write", "Hi", "-o", str(png), "--model", model])
    assert r.exit_code == 1 and "already exists" in r.output and "--force" in r.output
    r = CliRunner().invoke(cli, ["write", "Hi", "-o", str(svg), "--model", model, "--seed", "3"])
    assert r.exit_code == 0 and svg.read_text().startswith("<svg") and "<polyline" in svg.read_text()
    r = CliRunner().invoke(cli, ["write", "naïve", "-o", str(tmp_path / "b.png"), "--model", model])
    assert r.exit_code == 1 and "cannot write 'ï'" in r.output and not (tmp_path / "b.png").exists()
    r = CliRunner().invoke(cli, ["write", "Hi", "-o", str(tmp_path / "b.jpg"), "--model", model])
    assert r.exit_code == 2 and ".png or .svg" in r.output
    r = CliRunner().invoke(cli, ["write", "Hi", "-o", str(tmp_path / "no" / "such" / "b.png"), "--model",
                                 str(tmp_path)])
    assert r.exit_code == 1 and "config.json missing" in r.output
    (tmp_path / "afile").write_text("")  # an output path that cannot be written (as root, modes do not stop it)
    r = CliRunner().invoke(cli, ["write", "Hi", "-o", str(tmp_path / "afile" / "b.png"), "--model", model])
    assert r.exit_code == 1 and r.output.startswith("Error: ") and len(r.output.strip().splitlines()) == 1


def test_export_card_has_legibility_beside_hershey(tiny):
    root, run = tiny
    out = root / "model"
    r = CliRunner().invoke(cli, ["writer", "export", str(run), "--out", str(out), "--texts", "2", "--biases", "0,2",
                                 "--json"])
    assert r.exit_code == 0, r.output
    card = json.loads((out / "card.json").read_text())
    table = card["metrics"]["legibility"]
    assert set(table["written"]) == {"0.0", "2.0"} and table["texts"] == 2
    assert 0 <= table["hershey"]["cer"] and card["metrics"]["test_nll_per_point"] > 0
    assert card["app"] == "handwriting" and card["config"]["model"] == "HandwritingWriter"
    r = CliRunner().invoke(cli, ["writer", "export", str(run), "--out", str(out), "--biases", "x"])
    assert r.exit_code == 2


def test_a_line_ends_when_the_window_passes_its_last_character():
    from suite.apps.handwriting.writer import _past_the_end

    K = 2
    window = np.zeros((3, 3 * K))
    window[:, :K] = 1.0        # weights
    window[:, K:2 * K] = 4.0   # sharp bumps
    window[0, 2 * K:] = 1.0    # row 0: at character 1 of 3
    window[1, 2 * K:] = 3.0    # row 1: at position 3, one past its last character (0, 1, 2)
    window[2, 2 * K:] = 3.0    # row 2: at position 3 of a 5-character text
    assert _past_the_end(window, [3, 3, 5]).tolist() == [False, True, False]


def test_pieces_are_laid_out_left_to_right_and_lines_top_to_bottom(tiny):
    from suite.apps.handwriting.writer import load_writer, write_text

    _, run = tiny
    model, card = load_writer(run / "best")
    strokes, pieces = write_text(model, card, "ab cd efgh\nij", seed=1)
    assert [p["line"] for p in pieces] == [0, 0, 1] and [p["text"] for p in pieces] == ["ab cd", "efgh", "ij"]
    with pytest.raises(ValueError, match="at most"):
        write_text(model, card, "x" * 201)
