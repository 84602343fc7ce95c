"""MIDI, audio (FluidSynth and our synthesiser) and the piano roll, on a tiny grid."""
import wave

import numpy as np
import pytest

from suite.apps.music import render
from suite.apps.music.grid import REST, Chorale
from suite.apps.music.render import piano_roll, render_audio, synthesise, write_midi

mido = pytest.importorskip("mido")


def _grid():
    """8 steps: soprano C5 held 4 steps then D5 twice (re-struck), alto rests then enters."""
    pitch = np.array([[72, REST, 64, 48]] * 4 + [[74, 67, 65, 43]] * 2 + [[74, 67, 64, 48]] * 2)
    onset = np.zeros((8, 4), bool)
    onset[0] = True
    onset[4] = True
    onset[6] = [True, False, True, True]  # soprano re-strikes D5, alto holds G4
    return Chorale(pitch, onset, steps_per_bar=16, pickup=0, tonic=0, mode="major", name="tiny")


def _read_wav(path):
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2
        frames = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())
        return frames.astype(np.float64) / 32768, w.getframerate()


def test_midi_has_one_track_per_voice(tmp_path):
    path = write_midi(_grid(), tmp_path / "out.mid", tempo=90, key_transpose=2)
    midi = mido.MidiFile(str(path))
    assert midi.type == 1 and len(midi.tracks) == 4
    assert [t.name for t in midi.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    ons = [[m for m in t if m.type == "note_on" and m.velocity > 0] for t in midi.tracks]
    assert [len(o) for o in ons] == [3, 1, 3, 3]  # S: C5, D5, D5 again; A: G4 held to the end
    assert [m.note for m in ons[0]] == [74, 76, 76]  # transposed up a tone
    assert {m.channel for m in ons[1]} == {1}
    # the held C5 lasts 4 sixteenths: 4 * 120 ticks
    absolute, events = 0, []
    for m in midi.tracks[0]:
        absolute += m.time
        if m.type in ("note_on", "note_off"):
            events.append((absolute, m.type, m.note))
    assert events[:2] == [(0, "note_on", 74), (480, "note_off", 74)]
    assert events[-1] == (960, "note_off", 76)
    tempos = [m.tempo for m in midi.tracks[0] if m.type == "set_tempo"]
    assert tempos == [mido.bpm2tempo(90)]
    assert midi.length == pytest.approx(8 * 60 / 90 / 4)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_midi_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="tempo"):
        write_midi(_grid(), tmp_path / "x.mid", tempo=0)
    with pytest.raises(ValueError, match="outside MIDI"):
        write_midi(_grid(), tmp_path / "x.mid", key_transpose=60)
    assert not list(tmp_path.iterdir())


def test_synthesiser_wav(tmp_path):
    info = render_audio(_grid(), tmp_path / "out.wav", tempo=120, sample_rate=16000, engine="synth")
    audio, rate = _read_wav(tmp_path / "out.wav")
    expected = 8 * 60 / 120 / 4 + render.RELEASE  # 1 s of music plus the release tail
    assert info["engine"] == "synth" and rate == 16000 and audio.shape[1] == 2
    assert len(audio) / rate == pytest.approx(expected, abs=2 / rate)
    assert info["seconds"] == pytest.approx(expected, abs=2 / rate)
    assert 0.85 < np.abs(audio).max() < 0.9  # normalised, no clipping
    quarter = len(audio) // 5
    assert all(np.sqrt(np.mean(audio[i * quarter:(i + 1) * quarter] ** 2)) > 0.02 for i in range(4))


def test_synthesiser_plays_the_right_pitch():
    a4 = Chorale(np.array([[69, REST, REST, REST]] * 16))
    audio = synthesise(a4, tempo=60, sample_rate=16000)[:, 0]  # 4 s
    spectrum = np.abs(np.fft.rfft(audio[4000:36000] * np.hanning(32000)))
    assert np.fft.rfftfreq(32000, 1 / 16000)[np.argmax(spectrum)] == pytest.approx(440, abs=1)
    silent = synthesise(Chorale(np.full((4, 4), REST)), tempo=60, sample_rate=8000)
    assert not silent.any()


def test_auto_falls_back_to_the_synthesiser(tmp_path, monkeypatch):
    monkeypatch.setattr(render, "find_fluidsynth", lambda: None)
    info = render_audio(_grid(), tmp_path / "out.wav", tempo=120, sample_rate=8000)
    assert info["engine"] == "synth" and "not installed" in info["fallback"]
    with pytest.raises(RuntimeError, match="not installed"):
        render_audio(_grid(), tmp_path / "other.wav", engine="fluidsynth")
    with pytest.raises(ValueError):
        render_audio(_grid(), tmp_path / "other.wav", engine="piano")


@pytest.mark.skipif(render.find_fluidsynth() is None,
                    reason="FluidSynth or a GM soundfont is not installed (apt-get install fluidsynth fluid-soundfont-gm)")
def test_fluidsynth_wav(tmp_path):
    info = render_audio(_grid(), tmp_path / "out.wav", tempo=120, sample_rate=22050, engine="fluidsynth")
    audio, rate = _read_wav(tmp_path / "out.wav")
    assert info["engine"] == "fluidsynth" and rate == 22050
    assert 1.0 <= len(audio) / rate < 1.0 + 5.0  # the music, then FluidSynth's reverb tail
    assert np.sqrt(np.mean(audio[: rate // 2] ** 2)) > 0.02
    assert 0.85 < np.abs(audio).max() < 0.9


def test_piano_roll_png(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    grid = _grid()
    grid.fermata[4:6] = True
    path = piano_roll(grid, tmp_path / "roll.png", key_transpose=-3)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = np.asarray(pil.open(path).convert("RGB"))
    assert image.shape[0] > 200 and image.shape[1] > 300
    colours = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in render.VOICE_COLOURS}
    pixels = {tuple(p) for p in image.reshape(-1, 3)[::7]}
    assert len(colours & pixels) == 4  # every voice drawn in its colour
    assert list(tmp_path.iterdir()) == [path]
