"""The music model: training lowers the loss, composing and harmonising, MIDI input, forced sampling."""
import numpy as np
import pytest

from suite.apps.music.compose import (
    MusicError, Score, _cuts, compose, find_key, forced_tokens, harmonize, read_midi, resolve_key,
)
from suite.apps.music.data import END, REST, decode_tokens, encode_chorale
from suite.apps.music.model import MusicTask, load_model, nats_per_step
from suite.nn.checkpoint import CheckpointError, save_checkpoint
from tests.apps.music.conftest import synthetic_chorale, write_melody


def test_training_lowers_the_loss(trained):
    _, _, _, before, after = trained
    assert after < 0.35 * before, (before, after)


def test_music_task_reports_per_step_units(trained, corpus):
    model, vocab, _, _, _ = trained
    task = MusicTask(corpus.stream("train"), corpus.stream("valid"), seq_len=32, batch_size=4,
                     valid_steps=corpus.report["splits"]["valid"]["steps"])
    metrics = task.evaluate(model)
    tokens_per_step = len(corpus.stream("valid")) / corpus.report["splits"]["valid"]["steps"]
    assert metrics["nats_per_step"] == pytest.approx(metrics["loss"] * tokens_per_step)
    assert metrics["bits_per_step"] == pytest.approx(metrics["nats_per_step"] / np.log(2))
    assert nats_per_step(model, corpus, "test") > 0


def test_load_model_round_trip_and_one_line_errors(trained, tmp_path):
    model, vocab, model_dir, _, _ = trained
    loaded, loaded_vocab, card = load_model(model_dir)
    assert loaded_vocab == vocab and card["meta"]["app"] == "music"
    for name, a in model.state_dict().items():
        np.testing.assert_array_equal(a, loaded.state_dict()[name])
    with pytest.raises(CheckpointError, match="no model here"):
        load_model(tmp_path / "nothing")
    save_checkpoint(tmp_path / "other", model.state_dict(), {"model": "TokenLM"}, meta={"app": "text"})
    with pytest.raises(CheckpointError, match="not a music model") as info:
        load_model(tmp_path / "other")
    assert "\n" not in str(info.value)


def test_compose_gives_four_voices_within_the_bars_in_the_key(trained):
    model, vocab, *_ = trained
    result = compose(model, vocab, bars=4, key="D", seed=1)
    assert result.grid.pitch.shape[1] == 4 and 1 <= result.grid.n_steps <= 64
    assert result.key == (2, "major") and result.key_transpose == 2
    assert result.grid.key == (0, "major")  # composed in the normalised key
    assert result.ending in ("end", "phrase", "cut", "plan") and isinstance(result.repairs, dict)
    minor = compose(model, vocab, bars=4, key="G", mode="minor", seed=1)
    assert minor.key == (7, "minor") and minor.key_transpose == -2 and minor.grid.key == (9, "minor")


def test_compose_is_reproducible_under_a_seed(trained):
    model, vocab, *_ = trained
    a, b = (compose(model, vocab, bars=4, seed=5, temperature=1.5) for _ in range(2))
    assert a.grid.same_music(b.grid)
    others = [compose(model, vocab, bars=4, seed=s, temperature=1.5).grid for s in range(6, 12)]
    assert not all(a.grid.same_music(o) for o in others)


def test_a_four_part_primer_is_continued_not_repeated(trained):
    model, vocab, *_ = trained
    source = synthetic_chorale(99)
    primer = Score(source.pitch[:32], source.onset[:32], 16, (0, "major"), "test")
    result = compose(model, vocab, bars=4, seed=2, primer=primer)
    assert result.primer_steps == 32
    np.testing.assert_array_equal(result.grid.pitch[:32], primer.pitch)
    assert 32 <= result.grid.n_steps <= 64  # the primer once, then at most two more bars


def test_a_melody_primer_keeps_its_notes_and_gets_harmonised(trained):
    model, vocab, *_ = trained
    source = synthetic_chorale(98).transposed(5)  # F major
    primer = Score(source.pitch[:32, :1], source.onset[:32, :1], 16, (5, "major"), "test")
    result = compose(model, vocab, bars=4, seed=3, primer=primer)
    assert result.key == (5, "major")
    np.testing.assert_array_equal(result.grid.pitch[:32, 0] + result.key_transpose, primer.pitch[:, 0])
    assert (result.grid.pitch[:32, 1:] != REST).mean() > 0.9  # lower voices sampled under it


def test_a_primer_longer_than_the_piece_is_an_error(trained):
    model, vocab, *_ = trained
    source = synthetic_chorale(97, bars=4)
    primer = Score(source.pitch, source.onset, 16, (0, "major"), "test")
    with pytest.raises(MusicError, match="longer than the 3 bars"):
        compose(model, vocab, bars=3, primer=primer)


def test_harmonize_keeps_the_soprano_exactly(trained):
    model, vocab, *_ = trained
    source = synthetic_chorale(96, mode="minor").transposed(-2)  # G minor
    pitch = source.pitch[:, :1].copy()
    onset = source.onset[:, :1].copy()
    pitch[20:24, 0] = REST  # a rest in the tune
    onset[20, 0] = True
    onset[24, 0] = True
    melody = Score(pitch, onset, 16, (7, "minor"), "test")
    for seed in range(3):
        result = harmonize(model, vocab, melody, seed=seed, temperature=1.5)
        sounding = result.grid.pitch[:, 0]
        written = np.where(sounding == REST, REST, sounding + result.key_transpose)
        np.testing.assert_array_equal(written, pitch[:, 0])
        np.testing.assert_array_equal(result.grid.onset[:, 0] | (sounding == REST), onset[:, 0] | (pitch[:, 0] == REST))
        assert result.grid.n_steps == len(pitch) and result.grid.fermata[-1]


def test_forced_tokens_and_cuts():
    from suite.apps.music.data import Vocab

    vocab = Vocab()
    pitch = np.array([[72], [72], [74]], np.int16)
    onset = np.array([[True], [False], [True]])
    forced, slot = forced_tokens(vocab, pitch, onset, steps_per_bar=2)
    assert vocab.decode(forced[:5]) == ["||", "72", None, None, None]  # -1 decodes to None
    assert vocab.decode(forced[5:7]) == ["|", "72~"] and vocab.decode(forced[10:12]) == ["||", "74"]
    assert slot.tolist() == [-1, 0, 1, 2, 3] * 3
    chorale = synthetic_chorale(1, bars=2)
    ids = encode_chorale(chorale, vocab)
    cuts = _cuts(vocab, ids, 2, 32)
    assert cuts[-1][:2] == (32, "end")
    grid, repairs = decode_tokens(vocab.decode(ids[:cuts[-1][2]]) + [END])
    assert grid.same_music(chorale) and not repairs
    assert _cuts(vocab, ids, 2, 20)[-1][:2] == (20, "cut")


def test_read_midi_melody_chords_key_and_errors(tmp_path):
    scale = [(4 * i, 4 * i + 4, p) for i, p in enumerate((67, 69, 71, 72, 74, 76, 78, 79, 74, 71, 67))]
    score = read_midi(write_melody(tmp_path / "g.mid", scale))
    assert score.voices == 1 and score.n_steps == 44 and score.key == (7, "major")
    assert score.key_source == "key finder" and score.steps_per_bar == 16
    assert score.pitch[4, 0] == 69 and score.onset[4, 0] and not score.onset[5, 0]
    chords = scale + [(0, 4, 55), (4, 8, 60)]  # a lower line in the same track: the top line is the melody
    assert np.array_equal(read_midi(write_melody(tmp_path / "c.mid", chords)).pitch, score.pitch)
    assert read_midi(write_melody(tmp_path / "k.mid", scale, key="Em")).key == (4, "minor")
    assert find_key(score.pitch, "minor") == (4, "minor")
    (tmp_path / "t.mid").write_text("not midi at all")
    with pytest.raises(MusicError, match="not a readable MIDI file"):
        read_midi(tmp_path / "t.mid")
    with pytest.raises(MusicError, match="no such file"):
        read_midi(tmp_path / "missing.mid")
    with pytest.raises(MusicError, match="unknown key"):
        resolve_key("H")


def test_generate_forced_positions_are_emitted_and_fed_back(trained):
    model, vocab, *_ = trained
    forced = np.full(40, -1, np.int64)
    forced[[0, 5, 17, 39]] = [vocab.bar_id, vocab.voice_id(60), vocab.voice_id(48), vocab.end_id]
    out = np.concatenate(list(model.generate([vocab.start_id], 40, seed=4, chunk=16, forced=forced)))
    np.testing.assert_array_equal(out[[0, 5, 17, 39]], forced[[0, 5, 17, 39]])
    # Forced steps draw no random number: forcing a prefix equals priming with it.
    prefix = out[:10]
    forced = np.r_[prefix, np.full(30, -1)]
    a = np.concatenate(list(model.generate([vocab.start_id], 40, seed=7, chunk=16, forced=forced)))
    b = np.concatenate(list(model.generate(np.r_[vocab.start_id, prefix], 30, seed=7, chunk=16)))
    np.testing.assert_array_equal(a[10:], b)
