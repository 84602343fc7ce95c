"""Dynamic evaluation and the compressor: honest code lengths, exact round trips, mismatches caught in one line."""
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from suite.apps.text.compress import HEADER, CompressError, compress, decompress
from suite.apps.text.data import Vocab
from suite.dyneval import Adaptation, adaptive_score, choose_adaptation, with_match_model
from suite.kernels.rangecoder import (
    _decode, _decode_target, _encode, finish, match_predictions, new_coder, quantise,
)
from suite.lm import LMConfig, TokenLM
from suite.nn.checkpoint import save_checkpoint

TEXT = "def add(a, b):\n    # sum of two\n    return a + b\n\n" * 12
SHA = "ab" * 32
ADAPT = Adaptation(lr=1.0, decay=0.0, segment=50)  # an untrained tiny model learns with a big step


@pytest.fixture(scope="module")
def lm():
    vocab = Vocab.from_text(TEXT)
    return TokenLM(LMConfig(vocab.size, embed=8, hidden=16, layers=2, dropout=0.1, seed=3)), vocab


# -- the range coder against an exact ideal code length ------------------------------------------
def test_quantise_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    for V, total in ((5, 1 << 16), (97, 1 << 16), (300, 1 << 12)):
        logits = (rng.normal(size=V) * 4).astype(np.float32)
        freq, cum = np.zeros(V, np.int64), np.zeros(V + 1, np.int64)
        quantise(logits, freq, cum, total)
        p = np.exp(logits.astype(np.float64) - logits.max())
        p /= p.sum()
        ref = 1 + np.floor(p * (total - V)).astype(np.int64)
        ref[np.argmax(logits)] += total - ref.sum()
        np.testing.assert_array_equal(freq, ref)
        assert freq.min() >= 1 and cum[-1] == total and np.array_equal(np.diff(cum), freq)
        pred, weight = int(rng.integers(V)), 0.7  # mixed with the match model's prediction
        quantise(logits, freq, cum, total, pred, weight)
        mixed = (1 - weight) * p
        mixed[pred] += weight
        ref = 1 + np.floor(mixed * (total - V)).astype(np.int64)
        ref[np.argmax(mixed)] += total - ref.sum()
        np.testing.assert_array_equal(freq, ref)


def test_the_match_model_predicts_what_followed_the_same_context_before():
    rng = np.random.default_rng(2)
    part = rng.integers(1, 40, 300)
    syms = np.concatenate([part, rng.integers(1, 40, 50), part])  # the first 300 tokens come back
    pred, weight = match_predictions(syms)
    assert (pred[:6] == -1).all()  # nothing before the first context
    again = slice(350 + 20, 650)
    assert (pred[again] == syms[again]).mean() > 0.95 and weight[again][-50:].min() > 0.9
    assert weight[:350].mean() < 0.2  # random tokens: its few guesses earn little weight


def test_range_coder_round_trip_within_four_bytes_of_the_ideal_length():
    rng = np.random.default_rng(1)
    total = 1 << 16
    for n in (0, 1, 7, 3000):
        freqs = rng.integers(1, 4000, size=(n, 6))
        freqs[:, -1] += total - freqs.sum(axis=1)  # each row sums to total
        freqs = np.maximum(freqs, 1)
        freqs[:, 0] += total - freqs.sum(axis=1)
        syms = rng.integers(0, 6, n)
        buf = np.zeros(8 * n + 16, np.uint8)
        st = new_coder()
        ideal = 0.0
        for f, s in zip(freqs, syms):
            cum = np.concatenate([[0], np.cumsum(f)])
            _encode(st, buf, int(cum[s]), int(f[s]), total)
            ideal += math.log2(total / f[s])
        size = finish(st, buf)
        assert size <= math.ceil(ideal / 8) + 4
        data = buf[:size].copy()
        st = new_coder(data)
        out = []
        for f in freqs:
            cum = np.concatenate([[0], np.cumsum(f)])
            target = _decode_target(st, total)
            s = int(np.searchsorted(cum, target, side="right") - 1)
            _decode(st, data, int(cum[s]), int(f[s]))
            out.append(s)
        assert out == syms.tolist()


# -- dynamic evaluation ---------------------------------------------------------------------------
def test_each_score_uses_only_the_past_and_the_callers_model_is_untouched(lm):
    model, vocab = lm
    ids = vocab.encode(TEXT)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    full = adaptive_score(model, ids, ADAPT)
    prefix = adaptive_score(model, ids[:101], ADAPT)  # two whole segments
    np.testing.assert_array_equal(prefix, full[:100])
    assert all(np.array_equal(v, model.state_dict()[k]) for k, v in before.items())


def test_adapting_learns_a_repeated_text(lm):
    model, vocab = lm
    ids = vocab.encode(TEXT)
    static = adaptive_score(model, ids, Adaptation(lr=0.0, segment=50))
    adapted = adaptive_score(model, ids, ADAPT)
    half = len(ids) // 2
    assert adapted[half:].mean() < 0.9 * static[half:].mean()
    settings, table = choose_adaptation(model, [ids[:200], ids[200:400]], segment=50)
    assert len(table) == 8 and settings.lr > 0


def test_adaptation_settings_are_checked():
    with pytest.raises(ValueError, match="lr >= 0"):
        Adaptation(lr=-1)
    with pytest.raises(ValueError, match="malformed"):
        Adaptation.from_json({"decay": 0.1})


# -- the compressor -------------------------------------------------------------------------------
CASES = {
    "empty": b"",
    "one byte": b"x",
    "text": TEXT.encode(),
    "crlf and unknown characters": "def f():\r\n    return '\u00e9\u2603 \U0001F600'\r\n".encode(),
    "latin-1, not UTF-8": "caf\u00e9 na\u00efve\n".encode("latin-1") * 3,
    "binary": bytes(range(256)) * 2,
    "bytes that look like surrogates": b"a\xed\xb2\x80b\n",
}


@pytest.mark.parametrize("name", list(CASES))
def test_round_trip_is_exact(lm, name):
    model, vocab = lm
    data = CASES[name]
    blob, info = compress(model, vocab, SHA, data, ADAPT)
    assert decompress(model, vocab, SHA, blob) == data
    assert len(blob) <= HEADER.size + max(len(data), 1)  # never larger than the original stored
    if name == "text":
        assert info["method"] == "coded" and len(blob) < len(data)
        payload_bits = 8 * (len(blob) - HEADER.size)
        assert info["bits"] <= payload_bits <= 1.01 * info["bits"] + 32  # what the model says, within 1 % + 4 bytes
        ids = vocab.encode("\n" + TEXT)  # the coder's bits are the scorer's mixture, up to the 16-bit rounding
        ideal = with_match_model(ids, adaptive_score(model, ids, ADAPT)).sum() / math.log(2)
        assert abs(info["bits"] - ideal) < 0.02 * ideal + 8


def test_mismatches_fail_in_one_line(lm):
    model, vocab = lm
    data = TEXT.encode()
    blob, _ = compress(model, vocab, SHA, data, ADAPT)
    with pytest.raises(CompressError, match="decompress with the model that compressed it"):
        decompress(model, vocab, "cd" * 32, blob)
    damaged = bytearray(blob)
    damaged[HEADER.size + 10] ^= 0x40
    with pytest.raises(CompressError, match="checksum"):
        decompress(model, vocab, SHA, bytes(damaged))
    other = TokenLM(LMConfig(vocab.size, embed=8, hidden=16, layers=2, dropout=0.1, seed=4))
    with pytest.raises(CompressError, match="checksum"):  # the same hash claimed, other weights: caught
        decompress(other, vocab, SHA, blob)
    for bad in (b"", b"SLM1", b"not ours at all" * 10):
        with pytest.raises(CompressError, match="not a suite text-compressed file"):
            decompress(model, vocab, SHA, bad)


def test_cli_round_trip_refuses_to_overwrite_and_leaves_nothing_on_damage(lm, tmp_path):
    from suite.cli import cli

    model, vocab = lm
    folder = tmp_path / "model"
    save_checkpoint(folder, model.state_dict(), {"model": "TokenLM", **model.config.__dict__},
                    meta={"app": "text", "vocab": vocab.to_json(), "adapt": ADAPT.to_json()})
    src = tmp_path / "code.py"
    src.write_bytes(TEXT.encode())
    runner = CliRunner()
    r = runner.invoke(cli, ["text", "compress", str(src), "--model", str(folder), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["out"] == f"{src}.lstm" and info["compressed_bytes"] < info["bytes"]
    r = runner.invoke(cli, ["text", "compress", str(src), "--model", str(folder)])
    assert r.exit_code == 1 and "already exists" in r.output and "--force" in r.output
    r = runner.invoke(cli, ["text", "decompress", f"{src}.lstm", "-o", str(tmp_path / "copy.py"), "--model",
                            str(folder)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "copy.py").read_bytes() == src.read_bytes()
    blob = bytearray((tmp_path / "code.py.lstm").read_bytes())
    blob[HEADER.size + 20] ^= 0xFF  # inside the coded stream (its last bytes are the coder's flush)
    (tmp_path / "bad.lstm").write_bytes(bytes(blob))
    r = runner.invoke(cli, ["text", "decompress", str(tmp_path / "bad.lstm"), "--model", str(folder)])
    assert r.exit_code == 1 and "checksum" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
    r = runner.invoke(cli, ["text", "score", str(src), "--adapt", "--model", str(folder), "--json"])
    assert r.exit_code == 0, r.output
    scored = json.loads(r.output)
    assert scored["adapted_bits_per_char"] < scored["static_bits_per_char"] and scored["adapt"]["segment"] == 50
