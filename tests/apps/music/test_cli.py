"""`suite music`: compose/harmonize write real files, never overwrite, and fail in one line on bad input."""
import json
import os
import wave

import numpy as np
import pytest
from click.testing import CliRunner

from suite.apps.music.cli import cli as music_cli
from suite.apps.music.model import load_model
from suite.cli import cli
from suite.shipped import default_model_dir
from suite.apps.music.compose import read_midi
from tests.apps.music.conftest import synthetic_chorale, write_melody


def run(*args, cwd=None):
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(cli, ["music", *map(str, args)])
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(cli, ["music", *map(str, args)])
    finally:
        os.chdir(old)


def one_line_error(result, *words):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for word in words:
        assert word in lines[0], (word, lines[0])


def check_outputs(base, tracks=4):
    import mido
    from PIL import Image

    midi = mido.MidiFile(f"{base}.mid")
    voiced = [t for t in midi.tracks if any(m.type == "note_on" and m.velocity > 0 for m in t)]
    assert len(midi.tracks) == tracks and len(voiced) >= 3
    with wave.open(f"{base}.wav", "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert len(pcm) > 0 and np.abs(pcm.astype(np.int32)).max() > 1000  # audible
    with Image.open(f"{base}.png") as image:
        assert image.size[0] > 100 and image.size[1] > 100
    return midi


def test_every_command_has_help():
    commands = ["data build", "train", "export", "evaluate", "compose", "harmonize"]
    for command in commands:
        result = run(*command.split(), "--help")
        assert result.exit_code == 0 and "Example" in result.output, (command, result.output)
    assert all(c.split()[0] in run("--help").output for c in commands)
    assert music_cli.help


def test_compose_writes_midi_audio_and_picture_without_overwriting(model_dir, tmp_path):
    first = run("compose", "--model", model_dir, "--bars", 4, "--seed", 1, cwd=tmp_path)
    assert first.exit_code == 0, first.output
    assert "chorale-1.mid" in first.output and "chorale-1.wav" in first.output and "chorale-1.png" in first.output
    check_outputs(tmp_path / "chorale-1")
    second = run("compose", "--model", model_dir, "--bars", 4, "--seed", 1, "--json", cwd=tmp_path)
    info = json.loads(second.output)
    assert info["files"]["mid"] == "chorale-2.mid" and info["seed"] == 1
    assert (tmp_path / "chorale-1.mid").read_bytes() == (tmp_path / "chorale-2.mid").read_bytes()  # --seed
    explicit = run("compose", "--model", model_dir, "--bars", 4, "-o", tmp_path / "chorale-1")
    one_line_error(explicit, "already exists", "--force")
    forced = run("compose", "--model", model_dir, "--bars", 4, "--seed", 2, "-o", tmp_path / "chorale-1.mid",
                 "--force", "--key", "Eb", "--mode", "minor")
    assert forced.exit_code == 0 and "Eb minor" in forced.output, forced.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"chorale-{i}.{e}" for i in (1, 2) for e in ("mid", "png", "wav")]


def test_compose_bad_inputs_fail_in_one_line(model_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("not a MIDI file")
    one_line_error(run("compose", "--model", model_dir, "--primer", tmp_path / "missing.mid"), "no such file")
    one_line_error(run("compose", "--model", model_dir, "--primer", tmp_path / "notes.txt"), "not a readable MIDI")
    one_line_error(run("compose", "--model", model_dir, "--key", "H"), "unknown key 'H'")
    one_line_error(run("compose", "--model", model_dir, "--key", "D minor", "--mode", "major"), "does not match")
    one_line_error(run("compose", "--model", model_dir, "-o", tmp_path / "notes.txt" / "x"), "cannot write")
    one_line_error(run("compose", "--model", tmp_path), "no model here")
    tune = write_melody(tmp_path / "long.mid", [(4 * i, 4 * i + 4, 67 + i % 5) for i in range(32)])  # 8 bars
    one_line_error(run("compose", "--model", model_dir, "--primer", tune, "--bars", 4, "-o", tmp_path / "x"),
                   "longer than the 4 bars")
    assert not list(tmp_path.glob("x*")) and not list(tmp_path.glob(".x*"))  # nothing half-written


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_compose_into_a_read_only_folder_fails_in_one_line(model_dir, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        one_line_error(run("compose", "--model", model_dir, "-o", folder / "x"), "cannot write")
    finally:
        folder.chmod(0o755)


def test_compose_continues_a_primer_once(model_dir, tmp_path):
    from suite.apps.music.render import write_midi

    start = synthetic_chorale(50, bars=2).transposed(2)  # two bars in D major, four voices
    write_midi(start, tmp_path / "start.mid")
    result = run("compose", "--model", model_dir, "--bars", 4, "--seed", 4, "--primer", tmp_path / "start.mid",
                 "-o", tmp_path / "more", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["primer_steps"] == 32 and 32 <= info["steps"] <= 64 and info["key"] == "D major"
    check_outputs(tmp_path / "more")
    score = read_midi(tmp_path / "more.mid")
    np.testing.assert_array_equal(score.pitch[:32], start.pitch)  # the primer, once, then new music


def test_harmonize_writes_four_voices_and_keeps_the_tune(model_dir, tmp_path):
    tune = [(0, 4, 67), (4, 8, 69), (8, 12, 71), (12, 16, 67), (16, 20, 72), (20, 28, 71), (28, 32, 67)]
    path = write_melody(tmp_path / "tune.mid", tune)
    result = run("harmonize", path, "--model", model_dir, "--seed", 0, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["files"]["mid"] == str(tmp_path / "tune-harmonized-1.mid") and info["key"] == "G major"
    midi = check_outputs(tmp_path / "tune-harmonized-1")
    soprano, now, start = [], 0, {}
    per_step = midi.ticks_per_beat // 4
    for msg in midi.tracks[0]:
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            start[msg.note] = now
        elif msg.type in ("note_on", "note_off"):
            soprano.append((start.pop(msg.note) // per_step, now // per_step, msg.note))
    assert sorted(soprano) == tune
    one_line_error(run("harmonize", tmp_path / "nope.mid", "--model", model_dir), "no such file")


def test_train_export_and_evaluate_on_a_small_corpus(corpus_dir, tmp_path):
    run_dir, export = tmp_path / "run", tmp_path / "model"
    result = run("train", "--data", corpus_dir, "--out", run_dir, "--steps", 20, "--hidden", 16, "--embed", 8,
                 "--layers", 1, "--seq-len", 32, "--batch-size", 8, "--eval-every", 10, "--export", export,
                 "--compositions", 2, "--quiet", "--json")
    assert result.exit_code == 0, result.output
    card = json.loads((export / "card.json").read_text())
    nll = card["metrics"]["nll"]
    assert nll["model_nats_per_step"] > 0 and nll["ngram_nats_per_step"] > 0 and nll["split"] == "test"
    stats = card["metrics"]["statistics"]
    assert stats["composed"]["chorales"] == 2 and stats["test"]["chorales"] >= 1
    assert card["data"]["kept"] == 12 and card["training"]["seed"] == 0 and card["date"]
    assert card["training"]["command"] is None or card["training"]["command"].startswith("suite music train")
    load_model(export)
    again = run("train", "--data", corpus_dir, "--out", run_dir, "--steps", 20)
    one_line_error(again, "already exists")
    evaluated = run("evaluate", "--model", export, "--data", corpus_dir, "--compositions", 2, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["nll"]["test_steps"] == nll["test_steps"]
    built = run("data", "build", "--data", corpus_dir, "--json")
    assert built.exit_code == 0 and json.loads(built.output)["from_cache"]


def test_cache_is_a_hidden_old_name_of_data(corpus_dir):
    for command in ("data build", "train", "export", "evaluate"):
        help_text = run(*command.split(), "--help").output
        assert "--data" in help_text and "--cache" not in help_text, (command, help_text)
    built = run("data", "build", "--cache", corpus_dir, "--json")  # command lines in older cards
    assert built.exit_code == 0, built.output
    assert json.loads(built.output)["from_cache"] and json.loads(built.output)["cache_dir"] == str(corpus_dir)


@pytest.mark.skipif(not (default_model_dir("music") / "config.json").exists(), reason="no shipped music model")
def test_compose_with_no_flags_uses_the_shipped_model(tmp_path):
    result = run("compose", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    check_outputs(tmp_path / "chorale-1")
