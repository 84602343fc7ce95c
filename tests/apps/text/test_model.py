"""The text app: the model learns, generation agrees with the model, scoring and cells work."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from suite.apps.text.cells import analyse, text_features
from suite.apps.text.data import Vocab
from suite.apps.text.model import load_model
from suite.lm import LN2, LMConfig, StreamTask, TokenLM, config_dict, score_ids
from suite.cli import cli
from suite.nn.checkpoint import save_checkpoint
from suite.train import TrainConfig, Trainer

TEXT = "def add(a, b):\n    # sum\n    return 'a' + \"b\"\n\n" * 40


def _tiny(vocab, seed=0):
    return TokenLM(LMConfig(vocab.size, embed=8, hidden=16, layers=2, dropout=0.0, seed=seed))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    vocab = Vocab.from_text(TEXT)
    ids = vocab.encode(TEXT)
    model = _tiny(vocab)
    task = StreamTask(ids, ids[:400], seq_len=32, batch_size=16)
    before = task.evaluate(model)["bpc"]
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(steps=300, lr=2e-2, warmup=10, eval_every=300, checkpoint_every=300)
    Trainer(model, task, cfg, out, model_config=config_dict(model.config),
            meta={"app": "text", "vocab": vocab.to_json()}, quiet=True).fit()
    return model, vocab, before, out


def test_training_lowers_bits_per_char(trained):
    model, vocab, before, _ = trained
    after = score_ids(model, vocab.encode(TEXT[:400])) / LN2
    assert after < 0.5 * before, (before, after)


def test_greedy_generation_follows_the_models_own_argmax(trained):
    """The compiled loop and the training-path forward must be the same network."""
    model, vocab, _, _ = trained
    prime = vocab.encode("def ")
    ids = np.concatenate(list(model.generate(prime, 30, temperature=0.0)))
    seq = list(prime)
    for _ in range(30):
        logits, _ = model.forward(np.array(seq)[:, None])
        seq.append(int(np.argmax(logits[-1, 0])))
    np.testing.assert_array_equal(ids, seq[len(prime):])


def test_sampling_is_reproducible_and_chunk_invariant(trained):
    model, vocab, _, _ = trained
    prime = vocab.encode("\n")
    a = np.concatenate(list(model.generate(prime, 100, temperature=1.0, seed=3, chunk=7)))
    b = np.concatenate(list(model.generate(prime, 100, temperature=1.0, seed=3, chunk=64)))
    c = np.concatenate(list(model.generate(prime, 100, temperature=1.0, seed=4)))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_score_matches_a_direct_computation(trained):
    model, vocab, _, _ = trained
    ids = vocab.encode(TEXT[:50])
    logits, _ = model.forward(ids[:-1, None])
    logp = logits[:, 0] - np.log(np.exp(logits[:, 0]).sum(axis=1, keepdims=True))
    expected = -logp[np.arange(len(ids) - 1), ids[1:]].mean()
    assert score_ids(model, ids, streams=1) == pytest.approx(expected, rel=1e-5)


def test_text_features_mark_strings_comments_and_indentation():
    text = 'x = "a#b"  # c\n    y\n'
    f = text_features(text)
    inside = "".join(ch for ch, row in zip(text, f) if row[0])
    comment = "".join(ch for ch, row in zip(text, f) if row[1])
    assert inside == '"a#b"' and comment == "# c"
    assert f[text.index("y"), 2] == 4 and f[text.index("y"), 3] == 4


def test_cells_analysis_reports_a_correlation_per_feature(trained):
    model, vocab, _, _ = trained
    result = analyse(model, vocab, TEXT[:600])
    assert set(result["best"]) == {"inside string", "inside comment", "indent depth", "position in line"}
    for best in result["best"].values():
        assert -1.0 <= best["r"] <= 1.0 and 0 <= best["cell"] < 16


def test_cli_generate_score_cells_and_bad_inputs(trained, tmp_path):
    model, vocab, _, run = trained
    mdir = str(run / "best")
    r = CliRunner()
    out = r.invoke(cli, ["text", "generate", "--model", mdir, "--prime", "def ", "--length", "20", "--seed", "1", "--json"])
    assert out.exit_code == 0, out.output
    again = r.invoke(cli, ["text", "generate", "--model", mdir, "--prime", "def ", "--length", "20", "--seed", "1", "--json"])
    assert json.loads(out.output)["text"] == json.loads(again.output)["text"]
    src = tmp_path / "a.py"
    src.write_text(TEXT[:300])
    scored = r.invoke(cli, ["text", "score", str(src), "--model", mdir, "--json"])
    assert scored.exit_code == 0 and json.loads(scored.output)["bits_per_char"] > 0
    cells_out = tmp_path / "cells"
    res = r.invoke(cli, ["text", "cells", str(src), "--out", str(cells_out), "--model", mdir])
    assert res.exit_code == 0, res.output
    assert (cells_out / "cells.html").exists() and (cells_out / "cells.png").exists()
    again = r.invoke(cli, ["text", "cells", str(src), "--out", str(cells_out), "--model", mdir])
    assert again.exit_code == 1 and "--force" in again.output
    # Bad inputs: one line, non-zero exit, no traceback.
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    corrupt = tmp_path / "model"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{not json")
    for args, needle in [(["score", str(tmp_path / "missing.py")], "no such file"),
                         (["score", str(binary)], "not UTF-8"),
                         (["score", str(empty)], "at least 2 characters"),
                         (["generate", "--model", str(corrupt)], "not valid JSON"),
                         (["generate", "--model", str(tmp_path / "nomodel")], "no model here")]:
        extra = ["--model", mdir] if args[0] == "score" else []
        res = r.invoke(cli, ["text", *args, *extra])
        assert res.exit_code == 1, (args, res.output)
        assert needle in res.output and "Traceback" not in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1, res.output


def test_load_model_round_trip(trained, tmp_path):
    model, vocab, _, _ = trained
    save_checkpoint(tmp_path, model.state_dict(), config_dict(model.config), meta={"app": "text", "vocab": vocab.to_json()})
    loaded, v2, card = load_model(tmp_path)
    assert v2 == vocab
    for (n, p), q in zip(model.named_parameters(), loaded.parameters()):
        np.testing.assert_array_equal(p.value, q.value, err_msg=n)


@pytest.mark.parametrize("length", [30, 200, 517, 1333])
def test_warm_streams_score_every_target_once(trained, length):
    """With no recurrence (W_hh = 0) a token's prediction depends on itself only, so any cutting into streams
    must give the one-stream figure exactly, if every target is scored once and warm-up steps not at all."""
    model, vocab, _, _ = trained
    memoryless = _tiny(vocab, seed=1)
    for layer in memoryless.rnn.layers:
        layer.fwd.W_hh.value[:] = 0.0
    ids = vocab.encode((TEXT * 2)[:length])
    exact = score_ids(memoryless, ids, streams=1)
    for streams, window, warm in ((4, 7, 16), (8, 50, 64), (64, 512, 512)):
        assert score_ids(memoryless, ids, streams=streams, window=window, warm=warm) == \
            pytest.approx(exact, rel=1e-6)


def test_warm_streams_agree_with_one_stream(trained):
    model, vocab, _, _ = trained
    rng = np.random.default_rng(0)
    text = "".join(TEXT[i:i + 60] for i in rng.integers(0, len(TEXT) - 60, 40))  # not periodic
    ids = vocab.encode(text)
    exact = score_ids(model, ids, streams=1)
    warmed = score_ids(model, ids, streams=16, window=64, warm=100)
    cold = score_ids(model, ids, streams=16, window=64)
    assert abs(warmed - exact) / LN2 < 1e-4
    assert abs(warmed - exact) < abs(cold - exact)
