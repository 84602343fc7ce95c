"""Checkpoints: round trip, and every way a checkpoint can be broken raises
CheckpointError with one line that names the file."""
import json
import os

import numpy as np
import pytest

from suite.nn import CheckpointError, Embedding, Linear, Module, load_checkpoint, read_card
from suite.nn import save_checkpoint
from suite.nn.checkpoint import CONFIG, WEIGHTS


class Tiny(Module):
    def __init__(self, vocab=7, dim=4, seed=0):
        self.emb = Embedding(vocab, dim, seed=seed)
        self.out = Linear(dim, vocab, seed=seed + 1)


CONFIG_DICT = {"vocab": 7, "dim": 4, "kind": "lstm"}


@pytest.fixture
def ckpt(tmp_path):
    path = tmp_path / "models" / "tiny"
    save_checkpoint(path, Tiny().state_dict(), CONFIG_DICT, meta={"seed": 0, "bpc": 1.5})
    return path


def expect_error(path, name, match):
    """load_checkpoint(path) fails with one line that starts with path/name and matches."""
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(str(path / name) + ": "), msg
    assert match in msg, msg
    return msg


def test_round_trip(ckpt):
    model = Tiny()
    state, config = load_checkpoint(ckpt)
    assert config == CONFIG_DICT
    assert list(state) == list(model.state_dict())
    for name, value in model.state_dict().items():
        assert state[name].dtype == np.float32
        np.testing.assert_array_equal(state[name], value)
    rebuilt = Tiny(seed=99)  # different init, same shapes
    rebuilt.load_state_dict(state)
    ids = np.array([[1, 2, 3]])
    np.testing.assert_array_equal(rebuilt.out(rebuilt.emb(ids)), model.out(model.emb(ids)))
    card = read_card(ckpt)
    assert card["meta"] == {"seed": 0, "bpc": 1.5} and card["format_version"] == 1
    assert card["tensors"]["emb.W"] == {"shape": [7, 4], "dtype": "float32"}
    assert sorted(os.listdir(ckpt)) == [CONFIG, WEIGHTS]


def test_other_dtypes_round_trip(tmp_path):
    state = {"f64": np.arange(6.0).reshape(2, 3), "ids": np.arange(4, dtype=np.int64),
             "empty": np.zeros((0, 3), np.float32), "strided": np.arange(12.0)[::2]}
    save_checkpoint(tmp_path, state, {})
    loaded, _ = load_checkpoint(tmp_path)
    for k, v in state.items():
        assert loaded[k].dtype == v.dtype
        np.testing.assert_array_equal(loaded[k], v)


def test_missing_directory_and_files(tmp_path, ckpt):
    expect_error(tmp_path / "nowhere", CONFIG, "no such file")
    os.remove(ckpt / WEIGHTS)
    expect_error(ckpt, WEIGHTS, "no such file")
    os.remove(ckpt / CONFIG)
    expect_error(ckpt, CONFIG, "no such file")


def test_corrupt_bytes(ckpt):
    blob = bytearray((ckpt / WEIGHTS).read_bytes())
    blob[-5] ^= 0xFF  # inside the tensor data, where safetensors itself checks nothing
    (ckpt / WEIGHTS).write_bytes(bytes(blob))
    expect_error(ckpt, WEIGHTS, "sha256")


def test_truncated_file(ckpt):
    blob = (ckpt / WEIGHTS).read_bytes()
    (ckpt / WEIGHTS).write_bytes(blob[: len(blob) // 2])
    expect_error(ckpt, WEIGHTS, "truncated")


def _edit_card(path, edit):
    card = json.loads((path / CONFIG).read_text())
    edit(card)
    (path / CONFIG).write_text(json.dumps(card))


def test_unreadable_safetensors_with_matching_hash(ckpt):
    import hashlib
    garbage = b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}"
    (ckpt / WEIGHTS).write_bytes(garbage)
    _edit_card(ckpt, lambda c: c.update(weights_sha256=hashlib.sha256(garbage).hexdigest()))
    expect_error(ckpt, WEIGHTS, "not a readable safetensors file")


def test_shape_mismatch(ckpt):
    _edit_card(ckpt, lambda c: c["tensors"]["out.W"].update(shape=[8, 7]))
    msg = expect_error(ckpt, WEIGHTS, "out.W has shape (4, 7), config expects (8, 7)")
    assert msg == f"{ckpt / WEIGHTS}: out.W has shape (4, 7), config expects (8, 7)"


def test_dtype_mismatch(ckpt):
    _edit_card(ckpt, lambda c: c["tensors"]["emb.W"].update(dtype="float64"))
    expect_error(ckpt, WEIGHTS, "emb.W has dtype float32, config expects float64")


def test_missing_and_unexpected_keys(ckpt):
    _edit_card(ckpt, lambda c: c["tensors"].update({"head.W": {"shape": [2], "dtype": "float32"}}))
    expect_error(ckpt, WEIGHTS, "missing tensor head.W")
    _edit_card(ckpt, lambda c: [c["tensors"].pop(k) for k in ("head.W", "out.b")])
    expect_error(ckpt, WEIGHTS, "unexpected tensor out.b")


def test_state_checked_against_the_callers_model(ckpt):
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(ckpt, expect=Tiny(vocab=9).state_dict())
    assert str(e.value) == f"{ckpt / WEIGHTS}: emb.W has shape (7, 4), model expects (9, 4)"
    load_checkpoint(ckpt, expect=Tiny().to(np.float64).state_dict())  # dtype is the model's affair


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"format_version": 99}', "format_version is 99"),
    ('{"format_version": 1, "config": {}}', "'meta' is missing"),
    ("\xff\xfe", "not valid JSON"),
])
def test_bad_config_json(ckpt, text, match):
    (ckpt / CONFIG).write_bytes(text.encode("latin-1"))
    expect_error(ckpt, CONFIG, match)


def test_atomic_write_leaves_no_temp_files(ckpt, monkeypatch):
    before = (ckpt / WEIGHTS).read_bytes()
    # overwriting a checkpoint leaves exactly the two files
    save_checkpoint(ckpt, Tiny(seed=3).state_dict(), CONFIG_DICT)
    assert sorted(os.listdir(ckpt)) == [CONFIG, WEIGHTS]
    assert (ckpt / WEIGHTS).read_bytes() != before
    before = (ckpt / WEIGHTS).read_bytes()
    # a config that is not JSON fails before anything is written
    with pytest.raises(TypeError):
        save_checkpoint(ckpt, Tiny(seed=4).state_dict(), {"bad": object()})
    assert (ckpt / WEIGHTS).read_bytes() == before
    # a crash at the moment of the move leaves the old file and no temp file
    def crash(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(ckpt, Tiny(seed=5).state_dict(), CONFIG_DICT)
    assert sorted(os.listdir(ckpt)) == [CONFIG, WEIGHTS]
    assert (ckpt / WEIGHTS).read_bytes() == before
    monkeypatch.undo()
    load_checkpoint(ckpt)


def test_half_finished_save_is_detected(ckpt, tmp_path):
    """New weights moved into place but the old config kept (a crash between the
    two moves): the hash in the config no longer matches."""
    other = tmp_path / "other"
    save_checkpoint(other, Tiny(seed=8).state_dict(), CONFIG_DICT)
    os.replace(other / WEIGHTS, ckpt / WEIGHTS)
    expect_error(ckpt, WEIGHTS, "sha256")


def test_a_large_meta_value_is_written_compactly_and_reads_back(tmp_path):
    import json

    import numpy as np

    from suite.nn.checkpoint import COMPACT_OVER, read_card, save_checkpoint

    big = {"levels": [[i, i + 1, [i, i]] for i in range(COMPACT_OVER // 8)]}
    save_checkpoint(tmp_path, {"w": np.zeros(2, np.float32)}, {"hidden": 2}, meta={"lm": big, "note": "small"})
    text = (tmp_path / "config.json").read_text()
    assert json.dumps(big, separators=(",", ":")) in text and '\n    "note": "small"' in text
    assert read_card(tmp_path)["meta"]["lm"] == big
