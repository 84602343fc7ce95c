"""Speech data (apps/speech/data/): text, voices, synthesis, augmentation, features, corpus, user datasets."""
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from suite.apps.speech import data
from suite.apps.speech.data import corpus
from suite.apps.speech.data import (
    ALPHABET, BLANK, COMMANDS, FEATURES, PAD_SECONDS, SPEED_RANGE, VOCABULARY, DatasetError, SynthError, add_noise,
    augment, build_corpus, decode, encode, feature_dim, features, load_split, normalize, parse_condition,
    random_transcript, read_librispeech, read_tsv_dataset, split_voices,
)

SR = 16000
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make apt)")
needs_engines = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("flite") is None,
                                   reason="espeak-ng and flite not installed (make apt)")


# ------------------------------------------------------------------------------------------------------------ text

def test_alphabet_layout():
    assert ALPHABET[BLANK] == "_" and BLANK == 0 and ALPHABET[1] == " " and ALPHABET[2] == "'"
    assert "".join(ALPHABET[3:]) == "abcdefghijklmnopqrstuvwxyz" and len(set(ALPHABET)) == 29


@pytest.mark.parametrize("raw, clean", [
    ("Seven  FOUR\ttwo", "seven four two"),
    ("Don’t stop!", "don't stop"),
    ("Café, déjà-vu.", "cafe deja vu"),
    ("call 911", "call nine one one"),
    ("'quoted' ... ''", "quoted"),
    ("", ""),
])
def test_normalize(raw, clean):
    assert normalize(raw) == clean


def test_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        text = random_transcript(rng)
        ids = encode(text)
        assert ids.dtype == np.int32 and ids.min() > BLANK
        assert decode(ids) == text
    assert encode("").shape == (0,) and decode([]) == ""
    assert decode(encode("Don't GO")) == "don't go"


def test_decode_drops_blanks_and_collapses_repeats():
    a, b = encode("a")[0], encode("b")[0]
    path = [0, a, a, 0, a, b, b, 0]
    assert decode(path) == "aaabb"
    assert decode(path, collapse=True) == "aab"  # a blank between repeats keeps both
    with pytest.raises(ValueError, match="ids must lie"):
        decode([len(ALPHABET)])


def test_random_transcripts_use_the_vocabulary_and_vary():
    rng = np.random.default_rng(1)
    texts = [random_transcript(rng) for _ in range(400)]
    words = [t.split() for t in texts]
    assert all(w in VOCABULARY for ws in words for w in ws)
    lengths = {len(ws) for ws in words}
    assert min(lengths) == 1 and max(lengths) >= 6
    assert any(all(w in COMMANDS for w in ws) for ws in words)  # commands only
    assert any(ws[0] in COMMANDS and len(ws) > 1 and ws[1] not in COMMANDS for ws in words)  # command + digits
    assert any(all(w not in COMMANDS for w in ws) and len(ws) >= 4 for ws in words)  # digit strings
    assert any("oh" in ws for ws in words) and any("zero" in ws for ws in words)
    assert random_transcript(np.random.default_rng(5)) == random_transcript(np.random.default_rng(5))


# ---------------------------------------------------------------------------------------------------------- voices

FAKE_VOICES = ([f"espeak:{a}+{v}" for a in ("en", "en-us", "en-gb-scotland") for v in
                [f"m{i}" for i in range(1, 9)] + [f"f{i}" for i in range(1, 6)] + ["Alex", "klatt"]]
               + [f"espeak:{a}" for a in ("en", "en-us", "en-gb-scotland")]
               + ["flite:awb", "flite:kal", "flite:kal16", "flite:rms", "flite:slt"])


def test_split_voices_holds_out_whole_voices():
    split = split_voices(FAKE_VOICES, seed=0)
    sets = {k: set(v) for k, v in split.items()}
    assert not (sets["train"] & sets["valid"] or sets["train"] & sets["test"] or sets["valid"] & sets["test"])
    assert sets["train"] | sets["valid"] | sets["test"] == set(FAKE_VOICES)

    def variants(vs):
        return {v.split(":")[1].partition("+")[2] for v in vs if v.startswith("espeak:")}

    assert variants(split["train"]).isdisjoint(variants(split["valid"]) | variants(split["test"]))
    for held in variants(split["test"]) | variants(split["valid"]):  # held out in every accent
        assert sum(v.endswith(f"+{held}") if held else "+" not in v for v in sets["test"] | sets["valid"]) == 3
    assert 1 <= len(variants(split["test"])) <= 3 and 1 <= len(variants(split["valid"])) <= 3
    flite_test = [v for v in split["test"] if v.startswith("flite:")]
    assert flite_test in (["flite:awb"], ["flite:kal", "flite:kal16"], ["flite:rms"], ["flite:slt"])
    assert not any(v.startswith("flite:") for v in split["valid"])


def test_split_voices_deterministic():
    a = split_voices(FAKE_VOICES, seed=3)
    assert a == split_voices(list(reversed(FAKE_VOICES)), seed=3)  # order of the input does not matter
    assert any(split_voices(FAKE_VOICES, seed=s) != a for s in range(4, 8))


@needs_engines
def test_list_voices_finds_accents_variants_and_flite():
    voices = data.list_voices()
    for v in ("espeak:en-us", "espeak:en-us+m3", "espeak:en-gb-scotland+f2", "espeak:en-029+m1", "flite:slt"):
        assert v in voices
    assert "flite:awb_time" not in voices and not any("mb-" in v for v in voices)
    assert len(voices) > 300


# ------------------------------------------------------------------------------------------------------- synthesis

@needs_espeak
def test_synthesize_espeak_plausible():
    slow = data.synthesize("one two three four five", "espeak:en-us+m3", rate_wpm=130, pitch=30)
    fast = data.synthesize("one two three four five", "espeak:en-us+m3", rate_wpm=230, pitch=70)
    assert slow.dtype == np.float32 and slow.ndim == 1 and np.isfinite(slow).all()
    assert 1.0 < len(slow) / SR < 5.0 and len(fast) < 0.8 * len(slow)  # 5 words, and rate matters
    assert 0.05 < np.abs(slow).max() <= 1.0


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed (make apt)")
def test_synthesize_flite_16k_and_8k_resampled():
    wave = data.synthesize("stop", "flite:slt", sr=8000)
    assert 0.2 < len(wave) / 8000 < 2.0 and np.isfinite(wave).all()
    with pytest.raises(SynthError, match="flite has no voice 'nope'"):  # flite itself would fall back silently
        data.synthesize("stop", "flite:nope")


def test_synthesize_missing_binary_names_the_fix(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SynthError, match=r"espeak-ng not found: install it with `make apt`") as info:
        data.synthesize("yes", "espeak:en-us")
    assert "\n" not in str(info.value)
    with pytest.raises(SynthError, match="apt-get install espeak-ng flite"):
        data.synthesize("yes", "flite:slt")


def test_synthesize_rejects_unknown_engine():
    with pytest.raises(ValueError, match="engine"):
        data.synthesize("yes", "sapi:david")


# ---------------------------------------------------------------------------------------------------- augmentation

def _fake_speech(seconds=1.5, seed=0):
    """Three 'words' of modulated harmonic sound with short gaps (no synthesiser needed)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((140, 280, 560, 1120), 1))
    envelope = (np.sin(2 * np.pi * 2 * t) > -0.3).astype(float)
    return (0.3 * x * envelope + 1e-3 * rng.standard_normal(len(t))).astype(np.float32)


def _measured_snr(clean, noisy, sr=SR):
    """Speech power over frames within 40 dB of the loudest frame, over the noise's power."""
    hop = sr // 100
    n = len(clean) // hop
    frames = clean[: n * hop].astype(np.float64).reshape(n, hop)
    power = (frames ** 2).mean(axis=1)
    signal = power[power >= power.max() * 1e-4].mean()
    noise = np.mean((noisy.astype(np.float64) - clean) ** 2)
    return 10 * np.log10(signal / noise)


def test_augment_length_within_speed_and_padding_range():
    wave = _fake_speech()
    lo = len(wave) / SPEED_RANGE[1] + 2 * PAD_SECONDS[0] * SR - 2
    hi = len(wave) / SPEED_RANGE[0] + 2 * PAD_SECONDS[1] * SR + 2
    lengths = []
    for seed in range(30):
        out, name = augment(wave, SR, np.random.default_rng(seed), condition="reverb+telephone")
        assert name == "reverb+telephone" and out.dtype == np.float32 and np.isfinite(out).all()
        assert lo <= len(out) <= hi
        lengths.append(len(out))
    assert max(lengths) - min(lengths) > 0.2 * len(wave)  # the speed and padding really vary


@pytest.mark.parametrize("snr", [30, 20, 10])
def test_augment_hits_the_snr_it_names(snr):
    wave = _fake_speech()
    for seed in range(6):  # each seed draws a noise kind (white, pink, babble)
        clean, c_name = augment(wave, SR, np.random.default_rng(seed), condition="clean")
        noisy, n_name = augment(wave, SR, np.random.default_rng(seed), condition=f"snr{snr}")
        assert (c_name, n_name) == ("clean", f"snr{snr}") and len(clean) == len(noisy)
        assert _measured_snr(clean, noisy) == pytest.approx(snr, abs=0.3)


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
def test_add_noise_kinds_at_snr(kind):
    wave = np.concatenate([np.zeros(4000), _fake_speech(), np.zeros(4000)]).astype(np.float32)
    pool = [_fake_speech(2.0, seed=s) * 0.5 for s in range(3)]
    for babble in (None, pool):
        noisy = add_noise(wave, SR, np.random.default_rng(1), 15, kind, babble=babble)
        assert _measured_snr(wave, noisy) == pytest.approx(15, abs=0.3)  # padding does not change the SNR


def test_training_babble_is_part_talkers_part_speech_shaped():
    from suite.apps.speech.data.noise import SHAPED_BABBLE, _babble

    n = SR
    tone = [np.sin(2 * np.pi * 1000 * np.arange(n) / SR)]  # a "talker" whose every mix is a pure 1 kHz tone
    broadband = []
    for seed in range(40):
        spec = np.abs(np.fft.rfft(_babble(n, SR, np.random.default_rng(seed), tone))) ** 2
        broadband.append(spec[995:1006].sum() / spec.sum() < 0.5)  # bins are 1 Hz wide here
    assert 0 < sum(broadband) < 40 and abs(np.mean(broadband) - SHAPED_BABBLE) < 0.25
    assert all(np.std(_babble(n, SR, np.random.default_rng(s), None)) > 0 for s in range(3))  # no pool: all shaped


def test_augment_draws_conditions_and_is_reproducible():
    wave = _fake_speech(0.5)
    names = [augment(wave, SR, np.random.default_rng(s))[1] for s in range(200)]
    for part in ("clean", "snr10", "snr20", "snr30", "reverb", "telephone"):
        assert any(part in n for n in names), part
    a, _ = augment(wave, SR, np.random.default_rng(7))
    b, _ = augment(wave, SR, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    for bad in ("noisy", "snr20+snr10", "clean+snr20x"):
        with pytest.raises(ValueError, match="unknown condition"):
            parse_condition(bad)
    assert parse_condition("telephone+snr10") == (False, True, 10)


# -------------------------------------------------------------------------------------------------------- features

def test_features_shape_and_normalisation():
    wave = _fake_speech(1.0)
    x = features(wave)
    assert feature_dim() == FEATURES["n_mels"] * (1 + FEATURES["deltas"])
    assert x.shape == (1 + SR // 160, feature_dim()) and x.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(features(wave * 0.01), x, atol=1e-3)  # gain does not matter
    x8 = features(wave[::2], sr=8000)  # resampled to 16 kHz first
    assert abs(len(x8) - len(x)) <= 1


def test_features_empty_and_silent():
    assert features(np.zeros(0, np.float32)).shape == (0, feature_dim())
    for wave in (np.zeros(16000, np.float32), np.zeros(50, np.float32), np.full(3000, 1e-9, np.float32)):
        x = features(wave)
        assert x.shape == (1 + len(wave) // 160, feature_dim()) and np.isfinite(x).all()
    with pytest.raises(ValueError, match="NaN"):
        features(np.array([0.0, np.nan], np.float32))


def test_features_with_deltas():
    config = dict(FEATURES, deltas=2)
    x = features(_fake_speech(0.3), config=config)
    assert x.shape[1] == feature_dim(config) == 3 * FEATURES["n_mels"] and np.isfinite(x).all()
    assert np.isfinite(features(np.ones(10, np.float32), config=config)).all()  # one frame


# ---------------------------------------------------------------------------------------------------------- corpus

def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name != "report.json"}


@pytest.fixture(scope="module")
def tiny_corpora(tmp_path_factory):
    if shutil.which("espeak-ng") is None or shutil.which("flite") is None:
        pytest.skip("espeak-ng and flite not installed (make apt)")
    root = tmp_path_factory.mktemp("speech")
    calls = []
    one = build_corpus(root / "w1", n_train=12, n_valid=4, n_test=4, seed=5, workers=1, n_unseen=0,
                       progress=lambda d, t: calls.append((d, t)))
    two = build_corpus(root / "w2", n_train=12, n_valid=4, n_test=4, seed=5, workers=2, n_unseen=0)
    return root, one, two, calls


def test_build_corpus_independent_of_workers(tiny_corpora):
    root, one, two, _ = tiny_corpora
    a, b = _tree(root / "w1"), _tree(root / "w2")
    assert sorted(a) == sorted(b)
    for name in a:
        if name.endswith(".npz"):
            za, zb = np.load(root / "w1" / name), np.load(root / "w2" / name)
            for key in za.files:
                np.testing.assert_array_equal(za[key], zb[key], err_msg=f"{name}:{key}")
        else:
            assert a[name] == b[name], name
    assert one["splits"] == two["splits"] and one["voices"] == two["voices"]


def test_build_corpus_layout_and_report(tiny_corpora):
    root, report, _, calls = tiny_corpora
    out = root / "w1"
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    assert calls[0] == (0, 20) and calls[-1] == (20, 20)
    assert report["splits"]["train"]["utterances"] == 12 and report["features"]["dim"] == feature_dim()
    assert report["seed"] == 5 and report["utterances_per_second"] > 0 and "command" in report
    train_voices, test_voices = set(report["voices"]["train"]), set(report["voices"]["test"])
    train = load_split(out, "train")
    assert len(train) == 12 and train.features.dtype == np.float16
    for feats, text, voice, condition in train:
        assert feats.shape[1] == feature_dim() and np.isfinite(feats).all() and 50 < len(feats) < 1500
        assert set(text.split()) <= set(VOCABULARY) and voice in train_voices
        parse_condition(condition)
    columns = {k: train[k] for k in train.keys()}  # the dict-of-columns view the trainer reads
    assert len(columns["features"]) == len(columns["texts"]) == 12 and columns["voices"] == train.voice
    np.testing.assert_array_equal(columns["features"][-1], train[-1][0])
    assert columns["features"][-1].dtype == np.float32 and len(columns["features"][:3]) == 3
    valid = load_split(out, "valid")
    assert valid.condition == list(data.VALID_CONDITIONS[:4])
    assert not any(out.glob(".*")) and not any(root.glob(".w1*"))  # no build leftovers
    clean, noisy = read_tsv_dataset(out / "test" / "clean"), read_tsv_dataset(out / "test" / "snr20")
    assert [t for _, t in clean] == [t for _, t in noisy] and len(clean) == 4
    for (c_path, _), (n_path, _) in zip(clean, noisy):
        c, sr = sf.read(c_path)
        n, _ = sf.read(n_path)
        assert sr == SR and len(c) == len(n)
        assert _measured_snr(c, n) == pytest.approx(20, abs=0.5)  # 16-bit rounding aside
    test = load_split(out, "test/snr20")
    assert len(test) == 4 and test.condition == ["snr20"] * 4 and set(test.voice) <= test_voices


def test_build_corpus_refuses_a_folder_that_is_not_a_corpus(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not a speech corpus"):
        build_corpus(tmp_path, n_train=1, n_valid=0, n_test=0)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


@pytest.mark.skipif(not data.festival_voices(), reason="festival not installed (apt-get install festival "
                                                       "festvox-kdlpc16k)")
def test_build_unseen_test(tmp_path):
    report = data.build_unseen_test(tmp_path, n=3, seed=1)
    rows = read_tsv_dataset(tmp_path / "test" / "unseen-festival")
    assert report["utterances"] == len(rows) == 3
    for path, text in rows:
        wave, sr = sf.read(path)
        assert sr == SR and 0.3 < len(wave) / sr < 8 and set(text.split()) <= set(VOCABULARY)


@pytest.mark.skipif(not data.festival_voices(), reason="festival not installed (apt-get install festival "
                                                       "festvox-kdlpc16k)")
def test_build_other_noise_mixes_each_kind_at_20_db(tmp_path):
    (tmp_path / "clean").mkdir()
    items = []
    for i in range(3):
        wave = np.concatenate([np.zeros(3000), _fake_speech(seed=i), np.zeros(3000)]).astype(np.float32)
        sf.write(tmp_path / "clean" / f"{i:05d}.wav", wave, SR, subtype="FLOAT")
        items.append({"file": f"{i:05d}.wav", "text": "one two"})
    report = corpus._build_other_noise(tmp_path, items, seed=0, n_talkers=2)
    assert report["kinds"] == {k: 1 for k in data.OTHER_NOISE_KINDS} and report["babble_talkers"] == 2
    from suite.apps.speech.model import read_eval_tsv

    rows = read_eval_tsv(tmp_path / data.OTHER_NOISE / "transcripts.tsv")
    assert [(p.name, t, c) for p, t, _, c in rows] == [(it["file"], "one two", k)
                                                       for it, k in zip(items, data.OTHER_NOISE_KINDS)]
    for it in items:
        clean, _ = sf.read(tmp_path / "clean" / it["file"])
        noisy, _ = sf.read(tmp_path / data.OTHER_NOISE / it["file"])
        assert _measured_snr(clean, noisy) == pytest.approx(20, abs=0.3)


# ------------------------------------------------------------------------------------------------------ user data

def test_read_tsv_dataset(tmp_path):
    (tmp_path / "audio").mkdir()
    for name in ("a.wav", "b.flac"):
        sf.write(tmp_path / "audio" / name, np.zeros(160, np.float32), SR)
    (tmp_path / "transcripts.tsv").write_text("file\ttext\naudio/a.wav\tYes go\n\n# note\naudio/b.flac\t\n")
    rows = read_tsv_dataset(tmp_path)
    assert [(p.name, t) for p, t in rows] == [("a.wav", "Yes go"), ("b.flac", "")]
    assert rows[0][0].is_absolute() and read_tsv_dataset(tmp_path / "transcripts.tsv") == rows
    (tmp_path / "bad.tsv").write_text("audio/a.wav yes\n")
    with pytest.raises(DatasetError, match=r"bad.tsv:1: expected 'file<TAB>text'"):
        read_tsv_dataset(tmp_path / "bad.tsv")
    (tmp_path / "gone.tsv").write_text("audio/a.wav\tyes\naudio/c.wav\tno\n")
    with pytest.raises(DatasetError, match=r"1 audio file\(s\) not found, first 'audio/c.wav'"):
        read_tsv_dataset(tmp_path / "gone.tsv")
    with pytest.raises(DatasetError, match="no transcripts.tsv"):
        read_tsv_dataset(tmp_path / "audio")


def test_read_librispeech(tmp_path):
    chapter = tmp_path / "dev-clean" / "84" / "121123"
    chapter.mkdir(parents=True)
    (chapter / "84-121123.trans.txt").write_text("84-121123-0001 GO DO YOU HEAR\n84-121123-0000 BUT IN LESS\n")
    for i in range(2):
        sf.write(chapter / f"84-121123-000{i}.flac", np.zeros(160, np.float32), SR)
    rows = read_librispeech(tmp_path)
    assert [(p.name, t) for p, t in rows] == [("84-121123-0000.flac", "BUT IN LESS"),
                                              ("84-121123-0001.flac", "GO DO YOU HEAR")]
    (chapter / "84-121123-0001.flac").unlink()
    with pytest.raises(DatasetError, match="84-121123-0001.flac not found"):
        read_librispeech(tmp_path)
    (tmp_path / "nothing-here").mkdir()
    with pytest.raises(DatasetError, match=r"no \*.trans.txt"):
        read_librispeech(tmp_path / "nothing-here")


@pytest.mark.parametrize("args", [(16000, 512, 40, 20.0, 7600.0), (22050, 1024, 80, 0.0, 11025.0),
                                  (8000, 256, 20, 300.0, 3400.0)])
def test_our_mel_filters_and_window_are_librosas_and_scipys(args):
    """The featuriser computes its filterbank and window itself (importing librosa and scipy.signal cost every
    command two seconds); they must equal what the model was trained with."""
    import librosa
    import scipy.signal

    from suite.apps.speech.data.features import _mel_basis, _window

    sr, n_fft, n_mels, fmin, fmax = args
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).T
    np.testing.assert_allclose(_mel_basis(*args), ref, rtol=1e-5, atol=1e-8)
    win = n_fft * 25 // 32
    np.testing.assert_allclose(_window(win, n_fft)[:win], scipy.signal.get_window("hann", win, fftbins=True),
                               atol=1e-7)
    assert not _window(win, n_fft)[win:].any()


def test_transcribing_does_not_import_scipy_signal():
    import subprocess
    import sys

    code = ("import sys, numpy as np; from suite.apps.speech.data import features; "
            "features(np.zeros(1600, np.float32) + 0.1); print('scipy.signal' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
