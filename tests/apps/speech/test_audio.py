"""Reading users' audio (apps/speech/audio.py): formats, rates, channels, every bad input, long-file segments."""
import numpy as np
import pytest
import soundfile as sf

from suite.apps.speech.audio import AudioError, audio_info, find_cut, iter_segments, load_audio

SR_IN = 44100


def _stereo_tone(seconds=1.0, sr=SR_IN):
    t = np.arange(int(seconds * sr)) / sr
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    right = 0.25 * np.sin(2 * np.pi * 440 * t)  # in phase: the mono mix is 0.375 * sin
    return np.stack([left, right], axis=1).astype(np.float32)  # (N, 2)


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_load_audio_formats_stereo_44k(tmp_path, ext):
    path = tmp_path / f"tone.{ext}"
    sf.write(path, _stereo_tone(), SR_IN)
    wave = load_audio(path, sr=16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 16000) <= (1200 if ext == "mp3" else 1)  # mp3: encoder delay/padding
    mid = wave[4000:12000]
    rms = np.sqrt(np.mean(mid ** 2))
    assert rms == pytest.approx(0.375 / np.sqrt(2), rel=0.05)  # channels averaged, level kept through resampling
    spectrum = np.abs(np.fft.rfft(mid))
    assert np.argmax(spectrum) * 16000 / len(mid) == pytest.approx(440, abs=3)  # still 440 Hz at the new rate


def test_load_audio_keeps_rate_and_mono(tmp_path):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype(np.float32)
    sf.write(tmp_path / "m.wav", x, 8000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "m.wav", sr=8000), x, atol=1e-7)
    assert audio_info(tmp_path / "m.wav") == {"sr": 8000, "channels": 1, "seconds": 1.0}


def test_zero_length_audio_is_empty_not_error(tmp_path):
    sf.write(tmp_path / "zero.wav", np.zeros((0, 1), np.float32), 16000)
    sf.write(tmp_path / "zero.ogg", np.zeros((0, 2), np.float32), 44100)
    for name in ("zero.wav", "zero.ogg"):
        wave = load_audio(tmp_path / name)
        assert wave.shape == (0,) and wave.dtype == np.float32
    assert [(s, len(w)) for s, w in iter_segments(tmp_path / "zero.wav")] == [(0.0, 0)]


def test_zero_sample_flac_is_empty(tmp_path):
    # libsndfile can neither write nor open a FLAC of 0 samples: write STREAMINFO by hand (16 kHz, 1 ch, 16 bit).
    bits = (16000 << 44) | (0 << 41) | (15 << 36) | 0
    streaminfo = (4096).to_bytes(2, "big") * 2 + bytes(6) + bits.to_bytes(8, "big") + bytes(16)
    (tmp_path / "zero.flac").write_bytes(b"fLaC" + bytes([0x80, 0, 0, 34]) + streaminfo)
    assert load_audio(tmp_path / "zero.flac").shape == (0,)


def _bad_files(tmp_path):
    x = _stereo_tone(2.0)
    sf.write(tmp_path / "good.wav", x, SR_IN)
    sf.write(tmp_path / "good.flac", x, SR_IN)
    sf.write(tmp_path / "good.ogg", x, SR_IN)
    sf.write(tmp_path / "good.mp3", x, SR_IN)
    files = {"empty.wav": b"", "notes.txt": b"hello, this is not audio\n" * 40}
    # An MP4 container (what a phone's video is): an ftyp box, then data that is no stream libsndfile reads.
    files["clip.mp4"] = (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00\x00\x00\x08free"
                         + bytes(range(256)) * 20)
    for ext in ("wav", "flac", "ogg", "mp3"):
        data = (tmp_path / f"good.{ext}").read_bytes()
        files[f"cut.{ext}"] = data[: len(data) // 3]
    files["garbled.ogg"] = (tmp_path / "good.ogg").read_bytes()[:64] + bytes(4000)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


@pytest.mark.parametrize("name, words", [
    ("missing.wav", "no such file"),
    ("empty.wav", "empty file (0 bytes)"),
    ("notes.txt", "not an audio file"),
    ("clip.mp4", "not an audio file"),
    ("cut.wav", "truncated WAV"),
    ("cut.flac", "corrupt or truncated"),
    ("cut.ogg", "corrupt or truncated"),
    ("cut.mp3", "truncated"),
    ("garbled.ogg", "corrupt or truncated"),
    (".", "is a folder"),
])
def test_bad_inputs_raise_one_line_naming_file(tmp_path, name, words):
    _bad_files(tmp_path)
    path = tmp_path / name
    with pytest.raises(AudioError) as info:
        load_audio(path)
    msg = str(info.value)
    assert words in msg and str(path) in msg and "\n" not in msg
    with pytest.raises(AudioError):  # the streaming reader says the same
        list(iter_segments(path))


def test_audio_error_is_value_error():
    assert issubclass(AudioError, ValueError)


# ------------------------------------------------------------------------------------------------ long recordings

def _speechlike(seconds, sr, rng):
    """'Words': 0.2-0.6 s bursts of modulated noise, 0.05 s gaps (stop closures) inside long runs."""
    n = int(seconds * sr)
    x = rng.standard_normal(n) * 0.2
    t = np.arange(n) / sr
    return x * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))


def _recording(sr, rng, total=180.0):
    """A 3-minute signal: speech-like runs of 2-12 s separated by pauses of 0.4-1.2 s (low noise, not zeros)."""
    parts, pauses, pos = [], [], 0.0
    while pos < total:
        talk = min(rng.uniform(2, 12), total - pos)
        parts.append(_speechlike(talk, sr, rng))
        pos += talk
        if pos >= total:
            break
        gap = rng.uniform(0.4, 1.2)
        parts.append(rng.standard_normal(int(gap * sr)) * 1e-3)  # -60 dBFS room noise
        pauses.append((pos, pos + gap))
        pos += len(parts[-1]) / sr
    return np.concatenate(parts).astype(np.float32), pauses


def test_iter_segments_cuts_in_pauses(tmp_path):
    rng = np.random.default_rng(1)
    wave, pauses = _recording(SR_IN, rng)
    stereo = np.stack([wave, wave], axis=1)
    sf.write(tmp_path / "long.flac", stereo, SR_IN)
    segments = list(iter_segments(tmp_path / "long.flac", sr=16000, max_seconds=20.0))
    total = len(wave) / SR_IN
    assert len(segments) >= total / 20
    pos = 0.0
    for start, seg in segments:  # in order, no gaps or overlaps, none too long
        assert start == pytest.approx(pos, abs=1e-9)
        assert 0 < len(seg) <= 20 * 16000
        pos = start + len(seg) / 16000
    assert pos == pytest.approx(total, abs=0.01)
    for start, _ in segments[1:]:  # every cut in a pause (the resampler's delay is well under 50 ms)
        assert any(a - 0.05 <= start <= b + 0.05 for a, b in pauses), f"cut at {start:.2f} s is mid-word"
    joined = np.concatenate([s for _, s in segments])
    reference = load_audio(tmp_path / "long.flac", sr=16000)
    assert len(joined) == len(reference)
    np.testing.assert_allclose(joined[16000:-16000], reference[16000:-16000], atol=2e-3)


def test_iter_segments_without_silence_still_bounded(tmp_path):
    rng = np.random.default_rng(2)
    sf.write(tmp_path / "talk.wav", _speechlike(45.0, 16000, rng).astype(np.float32), 16000)
    segments = list(iter_segments(tmp_path / "talk.wav", max_seconds=10.0))
    assert all(len(s) <= 160000 for _, s in segments)
    assert sum(len(s) for _, s in segments) == 45 * 16000


def test_iter_segments_short_file_is_one_segment(tmp_path):
    sf.write(tmp_path / "short.ogg", _stereo_tone(3.0), SR_IN)
    segments = list(iter_segments(tmp_path / "short.ogg", max_seconds=20.0))
    assert len(segments) == 1 and segments[0][0] == 0.0
    assert abs(len(segments[0][1]) - 48000) <= 1


def test_find_cut_prefers_last_long_pause():
    sr = 16000
    rng = np.random.default_rng(3)
    talk = lambda s: rng.standard_normal(int(s * sr)) * 0.3  # noqa: E731
    quiet = lambda s: np.zeros(int(s * sr))  # noqa: E731
    x = np.concatenate([talk(2), quiet(0.5), talk(3), quiet(0.06), talk(1), quiet(0.4), talk(2)])
    cut = find_cut(x, sr) / sr
    assert 6.56 <= cut <= 6.96  # the 0.4 s pause, not the 50 ms closure after it nor the earlier pause
    assert find_cut(x, sr, min_samples=7 * sr) > 7 * sr  # never before the minimum


def test_decoder_notes_do_not_reach_stderr(tmp_path):
    """libmpg123 prints "Note: Illegal Audio-MPEG-Header" on fd 2 for text named .mp3; only our error may show."""
    import subprocess
    import sys

    (tmp_path / "text.mp3").write_bytes(b"hello, this is not audio\n" * 40)
    code = ("from suite.apps.speech.audio import AudioError, load_audio\n"
            "try:\n    load_audio(r'%s')\nexcept AudioError as e:\n    print(e)\n" % (tmp_path / "text.mp3"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "not an audio file" in out.stdout and out.stderr == ""
