"""Synthetic speech for a CTC recogniser: text, voices, synthesis, augmentation, features, corpus.

No recorded corpus is reachable here, so the corpus is synthesised: random
transcripts over a small vocabulary (connected digits, "oh" for zero, and ten
commands) spoken by espeak-ng (English accents x voice variants, random rate and
pitch) and flite, then augmented (speed, silence, reverb, telephone band, noise).

Held-out voices, not held-out sentences, make the test honest: split_voices keeps
whole espeak variants (a held-out variant is never heard in any accent in train)
and one whole flite speaker out of training. An optional third engine that never
appears in training (festival, `build_unseen_test`) measures how far the model
carries to a synthesiser it has not heard at all.

Corpus layout (build_corpus)::

    out_dir/corpus.json              report: counts, voices per split, conditions, config, timing
    out_dir/train.npz, valid.npz     float16 log-mel features concatenated + offsets + text/voice/condition
    out_dir/test/clean/*.wav         held-out voices as real audio (16 kHz PCM), transcripts.tsv beside them
    out_dir/test/snr20/*.wav         the same utterances with noise at 20 dB SNR
    out_dir/test/unseen-festival/    (when festival is installed) another synthesiser, never trained on
    out_dir/test/snr20-other-noise/  (when festival is installed) test/clean under noise kinds training never mixes in
    out_dir/test/utterances.tsv      file, voice, rate, pitch, text of each test utterance

The test set is audio so evaluation goes through exactly the path a user's files
take (load_audio -> features). Every item draws its randomness from its own seed
(seed, split, index), so the corpus is the same whatever the number of workers.
"""
import functools
import io
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf
import soxr

from suite.apps.speech.audio import AudioError, load_audio
from suite.fileio import atomic_path, replace_dir, staged_dir, write_json, write_text

__all__ = [
    "ALPHABET", "BLANK", "DIGIT_WORDS", "COMMANDS", "VOCABULARY", "normalize", "encode", "decode",
    "random_transcript",
    "SynthError", "list_voices", "festival_voices", "split_voices", "synthesize",
    "SPEED_RANGE", "PAD_SECONDS", "NOISE_KINDS", "TRAIN_SNR", "VALID_CONDITIONS", "parse_condition",
    "condition_name", "augment", "add_noise", "active_power",
    "FEATURES", "feature_dim", "features",
    "DatasetError", "build_corpus", "build_unseen_test", "load_split", "Split", "read_tsv_dataset",
    "read_librispeech", "write_tsv_dataset", "AudioError", "load_audio",
]

FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")

# ---------------------------------------------------------------------------------------------------------- text

ALPHABET = ("_", " ", "'") + tuple("abcdefghijklmnopqrstuvwxyz")  # id 0 is the CTC blank
BLANK = 0
_CHAR_ID = {c: i for i, c in enumerate(ALPHABET) if i != BLANK}
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
VOCABULARY = DIGIT_WORDS + ("oh",) + COMMANDS
_OH_FOR_ZERO = 0.3    # how often a spoken zero is "oh" (as in phone numbers)
_KINDS = (0.5, 0.25, 0.25)  # digit string, commands, command followed by digits
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"})


def normalize(text):
    """Lower case, only the alphabet's characters, single spaces.

    Accents are dropped (cafe), curly quotes become "'", each digit is spelled
    out as its word ("42" -> "four two", as digit strings are read), every other
    character becomes a space, and apostrophes that do not sit inside a word go.
    """
    text = unicodedata.normalize("NFKD", str(text)).translate(_QUOTES).lower()
    out = []
    for ch in text:
        if unicodedata.combining(ch):
            continue
        if ch.isdigit() and ch in "0123456789":
            out.append(f" {DIGIT_WORDS[int(ch)]} ")
        else:
            out.append(ch if ch in _CHAR_ID else " ")
    words = (w.strip("'") for w in "".join(out).split())
    return " ".join(w for w in words if w)


def encode(text):
    """Ids of normalize(text): np.ndarray [shape=(L,), dtype=int32], never containing the blank."""
    return np.array([_CHAR_ID[c] for c in normalize(text)], dtype=np.int32)


def decode(ids, collapse=False):
    """Characters of ``ids`` with blanks dropped; ``collapse=True`` first merges repeats (CTC best path)."""
    ids = np.asarray(ids, dtype=np.int64).ravel()
    if ids.size and (ids.min() < 0 or ids.max() >= len(ALPHABET)):
        raise ValueError(f"ids must lie in [0, {len(ALPHABET)}), got min {ids.min()} max {ids.max()}")
    if collapse and ids.size:
        ids = ids[np.concatenate([[True], ids[1:] != ids[:-1]])]
    return "".join(ALPHABET[i] for i in ids if i != BLANK)


def _digit(rng):
    d = int(rng.integers(10))
    return "oh" if d == 0 and rng.random() < _OH_FOR_ZERO else DIGIT_WORDS[d]


def random_transcript(rng):
    """One utterance: 1-7 connected digits (half), 1-3 commands, or a command then 1-4 digits."""
    kind = rng.choice(3, p=_KINDS)
    if kind == 0:
        words = [_digit(rng) for _ in range(int(rng.integers(1, 8)))]
    elif kind == 1:
        words = [COMMANDS[int(rng.integers(len(COMMANDS)))] for _ in range(int(rng.integers(1, 4)))]
    else:
        words = [COMMANDS[int(rng.integers(len(COMMANDS)))]] + [_digit(rng) for _ in range(int(rng.integers(1, 5)))]
    return " ".join(words)


# -------------------------------------------------------------------------------------------------------- voices

_INSTALL_HINT = "install it with `make apt` (or `apt-get install espeak-ng flite`)"
_FESTIVAL_HINT = "install it with `apt-get install festival festvox-kdlpc16k`"
_BINARY = {"espeak": "espeak-ng", "flite": "flite", "festival": "festival"}
FESTIVAL_VOICE_DIR = Path("/usr/share/festival/voices")
_FLITE_F0 = {"slt": 170.0, "kal": 95.0, "kal16": 95.0, "awb": 130.0}  # default mean F0 (Hz) where settable


class SynthError(RuntimeError):
    """A synthesiser is missing or failed; the message says which and how to fix it."""


def _run(cmd, **kw):
    try:
        return subprocess.run(cmd, capture_output=True, check=True, **kw)
    except FileNotFoundError:
        hint = _FESTIVAL_HINT if cmd[0] in ("festival", "text2wave") else _INSTALL_HINT
        raise SynthError(f"{cmd[0]} not found: {hint}") from None
    except subprocess.CalledProcessError as err:
        msg = (err.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise SynthError(f"{cmd[0]} failed ({' '.join(cmd[:4])} ...): {msg[0] if msg else f'exit {err.returncode}'}") \
            from None


def _table_rows(text):
    """Rows of espeak-ng's --voices table as column lists (the header skipped)."""
    return [line.split() for line in text.splitlines()[1:] if line.strip()]


@functools.lru_cache(maxsize=None)
def _espeak_accents():
    rows = _table_rows(_run(["espeak-ng", "--voices=en"]).stdout.decode())
    seen, accents = set(), []
    for row in rows:  # Pty Language Age/Gender VoiceName File [Other...]
        if len(row) >= 5 and row[1].startswith("en") and row[4].startswith("gmw/") and row[4] not in seen:
            seen.add(row[4])  # gmw/ only: mb/ voices need the (non-free) mbrola binary
            accents.append(row[1])
    return tuple(sorted(accents))


@functools.lru_cache(maxsize=None)
def _espeak_variants():
    rows = _table_rows(_run(["espeak-ng", "--voices=variant"]).stdout.decode())
    return tuple(sorted({row[4][3:] for row in rows if len(row) >= 5 and row[4].startswith("!v/")}))


@functools.lru_cache(maxsize=None)
def _flite_voices():
    out = _run(["flite", "-lv"]).stdout.decode()
    names = out.split(":", 1)[-1].split()
    return tuple(sorted(n for n in names if not n.endswith("_time")))  # awb_time speaks clock times only


def festival_voices():
    """Festival voices installed (ids like "festival:ked_diphone"); empty without festival."""
    if shutil.which("festival") is None or not FESTIVAL_VOICE_DIR.is_dir():
        return []
    return sorted(f"festival:{p.name}" for p in FESTIVAL_VOICE_DIR.glob("*/*") if p.is_dir())


def list_voices(engines=("espeak", "flite")):
    """Every training voice: "espeak:<accent>" and "espeak:<accent>+<variant>", and "flite:<voice>".

    espeak-ng's English accents (gmw/ voices) times its variants (plus the accent's
    default voice), and flite's voices without its limited-domain ones.
    Raises SynthError when a synthesiser is not installed.
    """
    voices = []
    if "espeak" in engines:
        for accent in _espeak_accents():
            voices.append(f"espeak:{accent}")
            voices += [f"espeak:{accent}+{v}" for v in _espeak_variants()]
    if "flite" in engines:
        voices += [f"flite:{v}" for v in _flite_voices()]
    if "festival" in engines:
        voices += festival_voices()
    return voices


def _engine(voice):
    engine, sep, name = voice.partition(":")
    if not sep or not name or engine not in _BINARY:
        raise ValueError(f"voice {voice!r} is not '<engine>:<name>' with engine one of {sorted(_BINARY)}")
    return engine, name


def _espeak_variant(voice):
    return _engine(voice)[1].partition("+")[2]  # "" for the accent's default voice


def _speaker(voice):
    """flite's kal and kal16 are one speaker at two sample rates: hold them out together."""
    return re.sub(r"\d+$", "", _engine(voice)[1])


def split_voices(voices, seed=0, valid_fraction=0.1, test_fraction=0.1):
    """Hold out whole voices: {"train": [...], "valid": [...], "test": [...]} (each sorted).

    espeak voices are split by VARIANT: a held-out variant goes to valid or test
    in every accent, so no accent of it is heard in training (about
    valid_fraction and test_fraction of the variants). Other engines' voices are
    grouped by speaker and one speaker per engine goes to test (when the engine
    has two or more). Deterministic under ``seed`` and independent of the order
    of ``voices``.
    """
    voices = sorted(set(voices))
    rng = np.random.default_rng([seed, 0x5E11])
    out = {name: [] for name in SPLITS}
    espeak = [v for v in voices if _engine(v)[0] == "espeak"]
    variants = sorted({_espeak_variant(v) for v in espeak})
    n_test = int(round(test_fraction * len(variants))) if len(variants) >= 3 else 0
    n_valid = int(round(valid_fraction * len(variants))) if len(variants) >= 3 else 0
    n_test, n_valid = max(n_test, len(variants) >= 3), max(n_valid, len(variants) >= 3)
    order = [variants[i] for i in rng.permutation(len(variants))]
    where = {v: "test" for v in order[:n_test]}
    where.update({v: "valid" for v in order[n_test:n_test + n_valid]})
    for v in espeak:
        out[where.get(_espeak_variant(v), "train")].append(v)
    for engine in sorted({_engine(v)[0] for v in voices} - {"espeak"}):
        mine = [v for v in voices if _engine(v)[0] == engine]
        speakers = sorted({_speaker(v) for v in mine})
        held = speakers[int(rng.integers(len(speakers)))] if len(speakers) >= 2 else None
        for v in mine:
            out["test" if _speaker(v) == held else "train"].append(v)
    return {k: sorted(v) for k, v in out.items()}


def _read_wav_bytes(data, sr):
    wave, native = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    wave = wave.mean(axis=1)
    if native != sr and len(wave):
        wave = soxr.resample(wave, native, sr, quality="HQ")
    return np.ascontiguousarray(wave, dtype=np.float32)


def synthesize(text, voice, rate_wpm=None, pitch=None, sr=16000):
    """Speak ``text`` with ``voice`` ("espeak:en-us+m3", "flite:slt", "festival:ked_diphone").

    Parameters
    ----------
    text : str
        Spoken as given (pass normalize(text) for the recogniser's alphabet).
    rate_wpm : int or None
        Words per minute (espeak's default is 175); flite and festival stretch
        durations by 175 / rate_wpm.
    pitch : int or None
        espeak's 0-99 pitch (default 50). flite maps it to a mean F0 of
        default * 2 ** ((pitch - 50) / 100) where the voice allows; festival ignores it.
    sr : int
        Output sample rate (the engines' native 22.05 or 16 kHz is resampled).

    Returns
    -------
    wave : np.ndarray [shape=(N,), dtype=float32]

    Raises
    ------
    SynthError
        The engine is not installed (the message names `make apt`) or it failed.
    """
    engine, name = _engine(voice)
    stretch = None if rate_wpm is None else 175.0 / float(rate_wpm)
    if engine == "espeak":
        cmd = ["espeak-ng", "-v", name, "--stdout", "-b", "1"]  # text on stdin (UTF-8): no option parsing of it
        if rate_wpm is not None:
            cmd += ["-s", str(int(rate_wpm))]
        if pitch is not None:
            cmd += ["-p", str(int(pitch))]
        return _read_wav_bytes(_run(cmd, input=text.encode("utf-8")).stdout, sr)
    if engine == "flite":
        if name not in _flite_voices():  # flite falls back to its default voice without a word
            raise SynthError(f"flite has no voice {name!r}; it has {', '.join(_flite_voices())}")
        with tempfile.TemporaryDirectory(prefix="suite-flite-") as tmp:
            out = os.path.join(tmp, "out.wav")
            cmd = ["flite", "-voice", name]
            if stretch is not None:
                cmd += ["--setf", f"duration_stretch={stretch:.4f}"]
            if pitch is not None and name in _FLITE_F0:
                cmd += ["--setf", f"int_f0_target_mean={_FLITE_F0[name] * 2 ** ((pitch - 50) / 100):.1f}"]
            _run(cmd + ["-t", text, "-o", out])
            with open(out, "rb") as f:
                return _read_wav_bytes(f.read(), sr)
    return _festival_batch([text], name, [stretch], sr)[0]


def _festival_batch(texts, voice, stretches, sr=16000):
    """Many utterances from one festival process (starting festival costs ~0.7 s; an utterance ~20 ms)."""
    if shutil.which("festival") is None:
        raise SynthError(f"festival not found: {_FESTIVAL_HINT}")
    with tempfile.TemporaryDirectory(prefix="suite-festival-") as tmp:
        lines = [f"(voice_{voice})"]
        for i, (text, stretch) in enumerate(zip(texts, stretches)):
            clean = re.sub(r'[\\"]', " ", text)
            lines += [f"(Parameter.set 'Duration_Stretch {1.0 if stretch is None else stretch:.4f})",
                      f'(set! utt (Utterance Text "{clean}"))', "(utt.synth utt)",
                      f"(utt.save.wave utt \"{tmp}/{i:06d}.wav\" 'riff)"]
        script = os.path.join(tmp, "batch.scm")
        with open(script, "w") as f:
            f.write("\n".join(lines) + "\n")
        proc = _run(["festival", "--batch", script])
        waves = []
        for i in range(len(texts)):
            path = os.path.join(tmp, f"{i:06d}.wav")
            if not os.path.exists(path):
                said = (proc.stdout + proc.stderr).decode("utf-8", "replace").strip().splitlines()
                raise SynthError(f"festival voice {voice!r} wrote no audio: {said[-1] if said else 'no output'}")
            with open(path, "rb") as f:
                waves.append(_read_wav_bytes(f.read(), sr))
    return waves


def _trim(wave, rel_db=-50.0):
    """Drop the synthesiser's own leading/trailing silence (augment adds silence of a controlled length)."""
    if not len(wave):
        return wave
    loud = np.flatnonzero(np.abs(wave) > np.abs(wave).max() * 10 ** (rel_db / 20))
    return wave[loud[0]:loud[-1] + 1] if len(loud) else wave[:0]


# -------------------------------------------------------------------------------------------------- augmentation

SPEED_RANGE = (0.85, 1.15)    # speed perturbation factor (Ko et al. 2015): tempo and pitch together
PAD_SECONDS = (0.05, 0.5)     # leading and trailing silence, each
GAIN_PEAK_DB = (-20.0, -1.0)  # the clean speech's peak after augmentation, dBFS
NOISE_KINDS = ("white", "pink", "babble")
SHAPED_BABBLE = 0.5  # share of training/validation "babble" that is speech-shaped noise, not talkers
TRAIN_SNR = {"clean": 0.3, 30: 0.2, 20: 0.25, 10: 0.25}  # noise level probabilities in training
TRAIN_REVERB, TRAIN_TELEPHONE = 0.2, 0.1
VALID_CONDITIONS = ("clean", "snr30", "snr20", "snr10", "reverb", "telephone", "reverb+snr20", "telephone+snr20")
_ACTIVE_DB = -40.0  # frames within this of the loudest count as speech for the SNR


def condition_name(reverb=False, telephone=False, snr=None):
    """Canonical name: "clean", "snr20", "reverb", "telephone+snr10", "reverb+telephone+snr30", ..."""
    parts = (["reverb"] if reverb else []) + (["telephone"] if telephone else [])
    parts += [] if snr is None else [f"snr{int(snr)}"]
    return "+".join(parts) or "clean"


def parse_condition(name):
    """(reverb, telephone, snr or None) of a condition name; ValueError names what is allowed."""
    reverb = telephone = False
    snr = None
    for part in str(name).split("+"):
        if part == "reverb" and not reverb:
            reverb = True
        elif part == "telephone" and not telephone:
            telephone = True
        elif re.fullmatch(r"snr-?\d+", part) and snr is None:
            snr = int(part[3:])
        elif part != "clean" or name != "clean":
            raise ValueError(f"unknown condition {name!r}: use 'clean' or '+'-joined parts from reverb, telephone, "
                             f"snr<dB> (e.g. 'reverb+snr20')")
    return reverb, telephone, snr


def active_power(wave, sr):
    """Mean power of the frames within 40 dB of the loudest 10 ms frame (speech, not its padding)."""
    hop = max(1, int(sr * 0.010))
    n = len(wave) // hop
    if n == 0:
        return float(np.mean(np.square(wave, dtype=np.float64))) if len(wave) else 0.0
    power = np.square(wave[: n * hop], dtype=np.float64).reshape(n, hop).mean(axis=1)  # (n,)
    active = power >= power.max() * 10 ** (_ACTIVE_DB / 10)
    return float(power[active].mean())


def _pink(n, rng):
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    spec[1:] /= np.sqrt(f[1:])  # 1/f power
    spec[0] = 0
    return np.fft.irfft(spec, n)


def _brown(n, rng):
    x = np.cumsum(rng.standard_normal(n))
    return x - np.linspace(x[0], x[-1], n)  # 1/f^2 power, no drift


def _hum(n, sr, rng):
    """Mains hum (50 or 60 Hz) with four harmonics and a little hiss."""
    t = np.arange(n) / sr
    f0 = 50.0 if rng.random() < 0.5 else 60.0
    x = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) for k in range(1, 6))
    return x + 0.05 * rng.standard_normal(n)


def _speech_shaped(n, sr, rng):
    """Babble without speech: pink noise in the speech band, modulated at syllable rate (3-6 Hz)."""
    sos = scipy.signal.butter(2, [100, min(4000, 0.45 * sr)], btype="band", fs=sr, output="sos")
    x = scipy.signal.sosfilt(sos, _pink(n, rng))
    env = np.abs(scipy.signal.sosfilt(scipy.signal.butter(2, rng.uniform(3, 6), fs=sr, output="sos"),
                                      rng.standard_normal(n)))
    return x * (0.3 + env / (env.max() + 1e-12))


def _babble(n, sr, rng, pool, shaped=None):
    """Babble noise: a few talkers from ``pool`` or (no pool, or a SHAPED_BABBLE share of draws) speech-shaped noise.

    The test set has no pool (its noise must hold no training voice), so its
    babble is all speech-shaped; training on real talkers alone left the model
    reading that noise as words (in the first corpora, 83 of the 128 wrong test
    utterances at 20 dB SNR had it). shaped: that share instead of SHAPED_BABBLE.
    """
    if not pool or rng.random() < (SHAPED_BABBLE if shaped is None else shaped):
        return _speech_shaped(n, sr, rng)
    out = np.zeros(n)
    for _ in range(int(rng.integers(3, 7))):  # a few talkers at once: speech you cannot follow
        src = pool[int(rng.integers(len(pool)))]
        if not len(src):
            continue
        talker = np.resize(np.roll(src, int(rng.integers(len(src)))), n)  # tiled to length n
        out += talker * rng.uniform(0.5, 1.0) / (np.sqrt(np.mean(np.square(src))) + 1e-12)
    return out


NON_SPEECH_KINDS = ("white", "pink", "brown", "hum", "speech-shaped", "dither")


def non_speech(rng, sr=16000, seconds=(0.5, 4.0), kind=None):
    """A clip with no words in it (transcript ""): (float32 wave, kind).

    Noise of several colours, mains hum with harmonics, speech-shaped modulated
    noise, or near-silence, at a peak between -60 and -6 dBFS. Training on these
    teaches the recogniser that sound is not speech (without them, per-utterance
    normalisation makes any noise look like an utterance and it invents words).
    """
    n = int(rng.uniform(*seconds) * sr)
    kind = kind or NON_SPEECH_KINDS[int(rng.integers(len(NON_SPEECH_KINDS)))]
    if kind == "white":
        x = rng.standard_normal(n)
    elif kind == "pink":
        x = _pink(n, rng)
    elif kind == "brown":
        x = _brown(n, rng)
    elif kind == "hum":
        x = _hum(n, sr, rng)
    elif kind == "speech-shaped":
        x = _speech_shaped(n, sr, rng)
    else:  # dither: near-silence
        x = rng.standard_normal(n) * 1e-3
    peak_db = rng.uniform(-60.0, -6.0) if kind != "dither" else rng.uniform(-90.0, -60.0)
    x = np.asarray(x, dtype=np.float64)
    x *= 10 ** (peak_db / 20) / (np.abs(x).max() + 1e-12)
    return x.astype(np.float32), kind


def add_noise(wave, sr, rng, snr_db, kind="white", babble=None):
    """``wave`` plus ``kind`` noise scaled so active_power(wave) / noise power = snr_db (float32)."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")
    n = len(wave)
    if n == 0:
        return wave.astype(np.float32)
    noise = {"white": lambda: rng.standard_normal(n), "pink": lambda: _pink(n, rng),
             "babble": lambda: _babble(n, sr, rng, babble)}[kind]()
    return _mix_at_snr(wave, sr, noise, snr_db)


def _mix_at_snr(wave, sr, noise, snr_db):
    """wave + noise scaled so active_power(wave) / its power = snr_db (float32)."""
    p_noise = np.mean(np.square(noise))
    p_signal = active_power(wave, sr)
    if p_noise <= 0 or p_signal <= 0:
        return wave.astype(np.float32)
    return (wave + noise * np.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))).astype(np.float32)


def _reverb(x, sr, rt60, drr_db, rng):
    """A short room: direct path plus an exponentially decaying noise tail (energy drr_db below the direct)."""
    n = max(2, int(rt60 * sr))
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    tail[0] = 0
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(np.square(tail)))
    tail[0] = 1.0
    y = scipy.signal.fftconvolve(x, tail)[: len(x)]  # the tail rings into the trailing silence, then is cut
    return y * np.sqrt(np.mean(np.square(x)) / (np.mean(np.square(y)) + 1e-20))


def augment(wave, sr, rng, condition=None, babble=None):
    """One augmented copy of a clean utterance and the name of its condition.

    Always: speed perturbation (resampling, factor in SPEED_RANGE: output length
    is len / factor before padding), leading and trailing silence (each in
    PAD_SECONDS), and a gain putting the speech peak at -20 to -1 dBFS. Then the
    condition's parts: "reverb" (RT60 0.15-0.5 s, direct-to-reverberant 0-10 dB),
    "telephone" (band-pass ~300-3400 Hz), "snr<dB>" (white, pink or babble noise
    at that SNR over the speech frames, see active_power). ``condition=None``
    draws one as in training (TRAIN_SNR, TRAIN_REVERB, TRAIN_TELEPHONE).

    Every random quantity is drawn in a fixed order whatever the condition, so the
    same rng state with "clean" and with "snr20" gives the same utterance, once
    without and once with noise (the test set's clean/snr20 pairs are made so).

    Parameters
    ----------
    wave : np.ndarray [shape=(N,), dtype=float32]
    rng : np.random.Generator
    condition : str or None
    babble : list of np.ndarray or None
        Speech to mix into babble noise; None: speech-shaped modulated noise.

    Returns
    -------
    (np.ndarray [shape=(M,), dtype=float32], str)
    """
    speed = rng.uniform(*SPEED_RANGE)
    lead, trail = rng.uniform(*PAD_SECONDS, size=2)
    peak_db = rng.uniform(*GAIN_PEAK_DB)
    rt60, drr_db = rng.uniform(0.15, 0.5), rng.uniform(0.0, 10.0)
    band = (rng.uniform(250, 400), rng.uniform(3000, 3600))
    kind = NOISE_KINDS[int(rng.integers(len(NOISE_KINDS)))]
    u_snr, u_reverb, u_tel = rng.random(3)
    room_seed, noise_seed = rng.integers(2**63, size=2)  # variable-length draws get their own generators
    if condition is None:
        levels = list(TRAIN_SNR)
        snr = levels[int(np.searchsorted(np.cumsum(list(TRAIN_SNR.values())), u_snr * sum(TRAIN_SNR.values())))]
        reverb, telephone, snr = u_reverb < TRAIN_REVERB, u_tel < TRAIN_TELEPHONE, None if snr == "clean" else snr
    else:
        reverb, telephone, snr = parse_condition(condition)
    x = np.asarray(wave, dtype=np.float64)
    if len(x) > 1:
        x = soxr.resample(x, sr, sr / speed, quality="LQ")  # played back at sr: `speed` times faster
    x = np.concatenate([np.zeros(int(lead * sr)), x, np.zeros(int(trail * sr))])
    if reverb:
        x = _reverb(x, sr, rt60, drr_db, np.random.default_rng(room_seed))
    if telephone:
        sos = scipy.signal.butter(4, [band[0], min(band[1], 0.45 * sr)], btype="band", fs=sr, output="sos")
        x = scipy.signal.sosfilt(sos, x)
    peak = np.abs(x).max() if len(x) else 0.0
    gain = 10 ** (peak_db / 20) / peak if peak > 0 else 1.0
    if snr is not None:
        x = add_noise(x, sr, np.random.default_rng(noise_seed), snr, kind, babble)
    return (x * gain).astype(np.float32), condition_name(reverb, telephone, snr)


# ------------------------------------------------------------------------------------------------------ features

FEATURES = dict(
    sr=16000,
    n_mels=40,          # log-mel filterbank (Graves et al. 2013 used 40 + energy)
    win_ms=25,
    hop_ms=10,          # 100 frames per second
    n_fft=512,
    fmin=20.0,
    fmax=7600.0,
    floor_db=70.0,      # mel energies floored 70 dB below the utterance's loudest: gain-invariant, no log(0)
    deltas=0,           # 0: statics only (a bidirectional LSTM sees context itself); 1 or 2 add derivatives
    norm="utterance",   # per-utterance mean and variance normalisation of every dimension
)


def feature_dim(config=None):
    """F, the width of features(): n_mels * (1 + deltas)."""
    c = FEATURES if config is None else config
    return int(c["n_mels"]) * (1 + int(c["deltas"]))


@functools.lru_cache(maxsize=8)
def _mel_basis(sr, n_fft, n_mels, fmin, fmax):
    import librosa  # imported here: a second or so, and only the featuriser needs it

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32).T


@functools.lru_cache(maxsize=8)
def _window(win, n_fft):
    w = np.zeros(n_fft, np.float32)
    w[:win] = scipy.signal.get_window("hann", win, fftbins=True)
    return w


def _deltas(x, width=2):
    """Regression deltas over +-width frames (edge frames repeated), any T >= 1."""
    padded = np.pad(x, ((width, width), (0, 0)), mode="edge")
    t = len(x)
    num = sum(k * (padded[width + k:width + k + t] - padded[width - k:width - k + t]) for k in range(1, width + 1))
    return num / (2 * sum(k * k for k in range(1, width + 1)))


def features(wave, sr=16000, config=None):
    """Log-mel features, per-utterance normalised.

    Parameters
    ----------
    wave : np.ndarray [shape=(N,)]
        Resampled to config["sr"] if ``sr`` differs.
    config : dict or None
        FEATURES (the default) or a variant of it.

    Returns
    -------
    np.ndarray [shape=(T, F), dtype=float32]
        T = 1 + N // hop (frames centred on multiples of the hop; 0 for an empty
        wave), F = feature_dim(config). Finite for any finite input, silence included.
    """
    c = FEATURES if config is None else config
    f_dim = feature_dim(c)
    wave = np.asarray(wave, dtype=np.float32).ravel()
    if sr != c["sr"] and len(wave):
        wave = soxr.resample(wave, sr, c["sr"], quality="HQ").astype(np.float32)
    if not len(wave):
        return np.zeros((0, f_dim), np.float32)
    if not np.all(np.isfinite(wave)):
        raise ValueError("wave holds NaN or infinite samples")
    win, hop, n_fft = int(c["sr"] * c["win_ms"] / 1000), int(c["sr"] * c["hop_ms"] / 1000), int(c["n_fft"])
    n_frames = 1 + len(wave) // hop
    padded = np.zeros((n_frames - 1) * hop + n_fft, np.float32)  # centred frames: win // 2 zeros in front
    padded[win // 2: win // 2 + len(wave)] = wave[: len(padded) - win // 2]
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]  # (T, n_fft)
    power = np.abs(np.fft.rfft(frames * _window(win, n_fft), axis=1)) ** 2  # (T, n_fft // 2 + 1)
    mel = power.astype(np.float32) @ _mel_basis(c["sr"], n_fft, c["n_mels"], c["fmin"], c["fmax"])  # (T, n_mels)
    floor = max(float(mel.max()) * 10 ** (-c["floor_db"] / 10), 1e-20)
    x = np.log(mel + floor)
    parts = [x]
    for _ in range(int(c["deltas"])):
        parts.append(_deltas(parts[-1]))
    x = np.concatenate(parts, axis=1) if len(parts) > 1 else x  # (T, F)
    x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-3)
    return x.astype(np.float32)


# ------------------------------------------------------------------------------------------------------- corpus

_SPLIT_CODE = {"train": 0, "valid": 1, "test": 2, "unseen": 3, "babble": 4, "other-noise": 5}
RATE_WPM = (130, 230)
PITCH = (20, 80)
FLITE_SHARE = 0.25  # of utterances spoken by non-espeak voices (there are ~800 espeak voices and 4-5 flite ones)
TEST_CONDITIONS = ("clean", "snr20")
_BABBLE_POOL = 24
_STATE = {}  # per worker process: voices by split and the babble pool (set by _init_worker)


class DatasetError(ValueError):
    """A transcript file or corpus that cannot be read; the message names the file and line."""


def _item_rng(seed, split, index):
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SPLIT_CODE[split], index)))


def _pick_voice(rng, voices):
    espeak = [v for v in voices if v.startswith("espeak:")]
    other = [v for v in voices if not v.startswith("espeak:")]
    use_other = rng.random() < FLITE_SHARE
    pool = other if (use_other and other) or not espeak else espeak
    return pool[int(rng.integers(len(pool)))]


def _spoken(rng, voices, sr):
    """(text, voice, rate, pitch, trimmed wave) of one random utterance."""
    text = random_transcript(rng)
    voice = _pick_voice(rng, voices)
    rate, pitch = int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1)), int(rng.integers(PITCH[0], PITCH[1] + 1))
    return text, voice, rate, pitch, _trim(synthesize(text, voice, rate, pitch, sr))


def _babble_pool(train_voices, seed, sr, n=_BABBLE_POOL):
    """Longer utterances (three transcripts each) by training voices: the talkers of babble noise."""
    rng = _item_rng(seed, "babble", 0)
    pool = []
    for _ in range(n):
        text = " ".join(random_transcript(rng) for _ in range(3))
        voice = _pick_voice(rng, train_voices)
        pool.append(_trim(synthesize(text, voice, int(rng.integers(*RATE_WPM)), int(rng.integers(*PITCH)), sr)))
    return pool


def _init_worker(state):
    _STATE.clear()
    _STATE.update(state)


def _to_pcm16(wave):
    return (np.clip(wave, -1.0, 1.0) * 32767).round().astype(np.int16)


def _make_item(job):
    """One utterance of a split; test items are written as WAV files (clean and noisy) into the build folder."""
    split, index = job
    seed, sr = _STATE["seed"], FEATURES["sr"]
    rng = _item_rng(seed, split, index)
    text, voice, rate, pitch, wave = _spoken(rng, _STATE["voices"][split], sr)
    item = {"split": split, "index": index, "text": text, "voice": voice, "rate": rate, "pitch": pitch}
    if split == "test":
        state = rng.bit_generator.state
        name = f"{index:05d}.wav"
        for cond in TEST_CONDITIONS:  # the same draws for each: identical utterances, only the noise differs
            rng.bit_generator.state = state
            noisy, _ = augment(wave, sr, rng, cond, babble=None)
            sf.write(Path(_STATE["build_dir"]) / "test" / cond / name, _to_pcm16(noisy), sr, subtype="PCM_16")
        item.update(file=name, seconds=len(noisy) / sr, condition="+".join(TEST_CONDITIONS))
        return item
    condition = None if split == "train" else VALID_CONDITIONS[index % len(VALID_CONDITIONS)]
    wave, condition = augment(wave, sr, rng, condition, babble=_STATE["babble"])
    item.update(features=features(wave, sr).astype(np.float16), condition=condition, seconds=len(wave) / sr)
    return item


def _save_npz(path, items):
    feats = [it["features"] for it in items]
    lengths = np.array([len(f) for f in feats], np.int64)
    arrays = dict(
        features=np.concatenate(feats) if feats else np.zeros((0, feature_dim()), np.float16),  # (sum T, F)
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),  # (n + 1,): item i is [o[i], o[i+1])
        text=np.array([it["text"] for it in items], dtype=str),
        voice=np.array([it["voice"] for it in items], dtype=str),
        condition=np.array([it["condition"] for it in items], dtype=str),
        rate=np.array([it["rate"] for it in items], np.int16),
        pitch=np.array([it["pitch"] for it in items], np.int16),
        feature_config=np.array(json.dumps(FEATURES)),
    )
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:  # a file object: np.savez would otherwise append ".npz" to the temp name
            np.savez(f, **arrays)


def write_tsv_dataset(folder, rows, name="transcripts.tsv"):
    """Write ``file<TAB>text`` lines (files relative to ``folder``) atomically."""
    lines = []
    for file, text in rows:
        if "\t" in str(file) or "\n" in str(file) or "\t" in text or "\n" in text:
            raise ValueError(f"tab or newline in a transcript row: {file!r} {text!r}")
        lines.append(f"{file}\t{text}\n")
    write_text(Path(folder) / name, "".join(lines))


def _check_out_dir(out_dir):
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "corpus.json").exists():
        raise DatasetError(f"{out_dir} exists and is not a speech corpus (no corpus.json); refusing to replace it: "
                           f"choose an empty or new folder")
    return out_dir


def _check_engines():
    for binary in ("espeak-ng", "flite"):
        if shutil.which(binary) is None:
            raise SynthError(f"{binary} not found: {_INSTALL_HINT}")


def _tool_version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return None


def build_corpus(out_dir, n_train=16000, n_valid=800, n_test=800, seed=0, workers=2, progress=None,
                 n_unseen=200, command=None):
    """Synthesise, augment and featurise a train/valid/test corpus under ``out_dir``.

    Everything is written into a temporary sibling folder and swapped in at the
    end (suite.fileio.replace_dir), so ``out_dir`` holds the old corpus or the new
    one, never half of one. An existing ``out_dir`` is replaced only if it is a
    speech corpus (holds corpus.json).

    Parameters
    ----------
    n_train, n_valid, n_test : int
        Utterances per split. train: random conditions (clean included); valid:
        VALID_CONDITIONS in turn; test: held-out voices as WAV under test/clean and
        test/snr20 (the same utterances).
    seed : int
        Fixes the voice split and every utterance; the output does not depend on ``workers``.
    workers : int
        Processes (1: all in this one).
    progress : callable(done, total) or None
    n_unseen : int
        Utterances by festival under test/unseen-festival when festival is
        installed (0: none); skipped with a note in the report otherwise. With
        them comes test/snr20-other-noise (see _build_other_noise).
    command : str or None
        The command line to record in corpus.json.

    Returns
    -------
    dict, the report written to corpus.json.

    Raises
    ------
    SynthError if espeak-ng or flite is missing; DatasetError for an out_dir that is not a corpus.
    """
    for name, n in (("n_train", n_train), ("n_valid", n_valid), ("n_test", n_test), ("n_unseen", n_unseen)):
        if n < 0:
            raise ValueError(f"{name} must be >= 0, got {n}")
    out_dir = _check_out_dir(Path(out_dir).expanduser().resolve())
    _check_engines()
    t0 = time.perf_counter()
    voices = split_voices(list_voices(), seed)
    sr = FEATURES["sr"]
    with staged_dir(out_dir) as build:
        for cond in TEST_CONDITIONS:
            (build / "test" / cond).mkdir(parents=True)
        state = {"seed": seed, "voices": voices, "build_dir": str(build),
                 "babble": _babble_pool(voices["train"], seed, sr)}
        jobs = [(split, i) for split, n in (("train", n_train), ("valid", n_valid), ("test", n_test))
                for i in range(n)]
        items = _run_jobs(jobs, state, workers, progress)
        synth_seconds = time.perf_counter() - t0
        by_split = {s: [it for it in items if it["split"] == s] for s in SPLITS}
        for s in ("train", "valid"):
            _save_npz(build / f"{s}.npz", by_split[s])
        test = by_split["test"]
        for cond in TEST_CONDITIONS:
            write_tsv_dataset(build / "test" / cond, [(it["file"], it["text"]) for it in test])
        _write_utterances(build / "test" / "utterances.tsv", test)
        unseen = other_noise = None
        if n_unseen and festival_voices():
            unseen = _build_unseen(build / "test", n_unseen, seed)
            other_noise = _build_other_noise(build / "test", test, seed)
        report = _report(out_dir, items, by_split, voices, seed, t0, synth_seconds, workers, command,
                         dict(n_train=n_train, n_valid=n_valid, n_test=n_test, n_unseen=n_unseen), unseen)
        if other_noise:
            report["files"]["test"][OTHER_NOISE] = f"test/{OTHER_NOISE}/transcripts.tsv"
            report["other_noise"] = other_noise
        write_json(build / "corpus.json", report)
    return report


def _run_jobs(jobs, state, workers, progress):
    total = len(jobs)
    items = []
    if progress is not None:
        progress(0, total)
    if workers <= 1 or total <= 1:
        saved = dict(_STATE)
        _init_worker(state)
        try:
            for job in jobs:
                items.append(_make_item(job))
                if progress is not None:
                    progress(len(items), total)
        finally:
            _init_worker(saved)
        return items
    # fork where there is one: workers inherit the imported modules instead of re-importing them
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ctx.Pool(workers, initializer=_init_worker, initargs=(state,)) as pool:
        for item in pool.imap(_make_item, jobs, chunksize=16):  # in job order, whatever finishes first
            items.append(item)
            if progress is not None:
                progress(len(items), total)
    return items


def _write_utterances(path, items):
    rows = ["file\tvoice\trate\tpitch\ttext\n"]
    rows += [f"{it['file']}\t{it['voice']}\t{it['rate']}\t{it['pitch']}\t{it['text']}\n" for it in items]
    write_text(path, "".join(rows))


def _report(out_dir, items, by_split, voices, seed, t0, synth_seconds, workers, command, counts, unseen):
    seconds = time.perf_counter() - t0
    n_items = len(items)
    splits = {}
    for s in SPLITS:
        its = by_split[s]
        splits[s] = {
            "utterances": len(its),
            "audio_hours": round(sum(it["seconds"] for it in its) / 3600, 3),
            "frames": int(sum(len(it["features"]) for it in its)) if s != "test" else None,
            "voices_used": len({it["voice"] for it in its}),
            "by_engine": dict(Counter(it["voice"].split(":")[0] for it in its)),
            "conditions": dict(sorted(Counter(it["condition"] for it in its).items())),
        }
    splits["test"]["conditions"] = {c: len(by_split["test"]) for c in TEST_CONDITIONS}
    skipped = {}
    if unseen is None and counts["n_unseen"]:
        skipped["unseen"] = f"festival is not installed, so no unseen-synthesiser test: {_FESTIVAL_HINT}"
    return {
        "format_version": FORMAT_VERSION,
        "app": "speech",
        "seed": seed,
        "command": command or ("build_corpus(" + ", ".join(f"{k}={v}" for k, v in counts.items())
                               + f", seed={seed}, workers={workers})"),
        "counts": counts,
        "splits": splits,
        "files": {"train": "train.npz", "valid": "valid.npz",
                  "test": {c: f"test/{c}/transcripts.tsv" for c in TEST_CONDITIONS}
                  | ({"unseen-festival": "test/unseen-festival/transcripts.tsv"} if unseen else {}),
                  "test_utterances": "test/utterances.tsv"},
        "voices": voices,
        "voice_split": "whole espeak variants (every accent) and one flite speaker held out; see split_voices",
        "vocabulary": list(VOCABULARY),
        "alphabet": list(ALPHABET),
        "augmentation": {"speed": SPEED_RANGE, "pad_seconds": PAD_SECONDS, "peak_dbfs": GAIN_PEAK_DB,
                         "train_snr": {str(k): v for k, v in TRAIN_SNR.items()}, "train_reverb": TRAIN_REVERB,
                         "train_telephone": TRAIN_TELEPHONE, "valid_conditions": list(VALID_CONDITIONS),
                         "noise_kinds": list(NOISE_KINDS), "shaped_babble": SHAPED_BABBLE, "rate_wpm": RATE_WPM,
                         "pitch": PITCH,
                         "flite_share": FLITE_SHARE},
        "features": dict(FEATURES, dim=feature_dim()),
        "unseen": unseen,
        "skipped": skipped,
        "engines": {"espeak-ng": _tool_version(["espeak-ng", "--version"]),
                    "flite": _tool_version(["flite", "--version"]),
                    "festival": _tool_version(["festival", "--version"]) if unseen else None},
        "workers": workers,
        "seconds": round(seconds, 1),
        "utterances_per_second": round(n_items / max(synth_seconds, 1e-9), 1),
        "python": sys.version.split()[0],
    }


def _build_unseen(test_dir, n, seed, voices=None):
    """Write test_dir/unseen-festival/ (WAV, transcripts.tsv, utterances.tsv); returns its report."""
    voices = voices or festival_voices()
    if not voices:
        raise SynthError(f"festival has no voices: {_FESTIVAL_HINT}")
    sr = FEATURES["sr"]
    folder = Path(test_dir) / "unseen-festival"
    folder.mkdir(parents=True, exist_ok=True)
    plans = []
    for i in range(n):
        rng = _item_rng(seed, "unseen", i)
        text, voice = random_transcript(rng), voices[int(rng.integers(len(voices)))]
        rate = int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1))
        plans.append((i, text, voice, rate, rng))
    items = []
    for voice in sorted({p[2] for p in plans}):
        mine = [p for p in plans if p[2] == voice]
        waves = _festival_batch([p[1] for p in mine], _engine(voice)[1], [175.0 / p[3] for p in mine], sr)
        for (i, text, _, rate, rng), wave in zip(mine, waves):
            wave, _ = augment(_trim(wave), sr, rng, "clean")
            name = f"{i:05d}.wav"
            sf.write(folder / name, _to_pcm16(wave), sr, subtype="PCM_16")
            items.append({"index": i, "file": name, "text": text, "voice": voice, "rate": rate, "pitch": "",
                          "seconds": len(wave) / sr})
    items.sort(key=lambda it: it["index"])
    write_tsv_dataset(folder, [(it["file"], it["text"]) for it in items])
    _write_utterances(folder / "utterances.tsv", items)
    return {"engine": "festival", "voices": voices, "utterances": len(items), "condition": "clean",
            "audio_hours": round(sum(it["seconds"] for it in items) / 3600, 4),
            "apt": "festival festvox-kdlpc16k"}


OTHER_NOISE = "snr20-other-noise"
OTHER_NOISE_KINDS = ("festival-babble", "brown", "hum")


def _build_other_noise(test_dir, test_items, seed, snr_db=20, n_talkers=12):
    """Write test_dir/snr20-other-noise: the clean test utterances under noise never mixed into training.

    Kinds in turn: babble of festival talkers (a synthesiser training never
    hears; training babble is training voices or speech-shaped noise), brown
    noise, mains hum (training hears those two only alone, as non-speech
    clips). Reads test_dir/clean; returns its report.
    """
    sr = FEATURES["sr"]
    voices = festival_voices()
    rng = _item_rng(seed, "other-noise", len(test_items))  # the talkers' draws: an index no utterance has
    texts = [" ".join(random_transcript(rng) for _ in range(3)) for _ in range(n_talkers)]
    talkers = []
    for k, voice in enumerate(voices):
        mine = texts[k::len(voices)]
        talkers += [_trim(w) for w in _festival_batch(mine, _engine(voice)[1], [None] * len(mine), sr)]
    folder = Path(test_dir) / OTHER_NOISE
    folder.mkdir(parents=True, exist_ok=True)
    rows, kinds = [], Counter()
    for i, it in enumerate(test_items):
        rng = _item_rng(seed, "other-noise", i)
        wave = load_audio(Path(test_dir) / "clean" / it["file"], sr)
        kind = OTHER_NOISE_KINDS[i % len(OTHER_NOISE_KINDS)]
        n = len(wave)
        noise = {"festival-babble": lambda: _babble(n, sr, rng, talkers, shaped=0.0), "brown": lambda: _brown(n, rng),
                 "hum": lambda: _hum(n, sr, rng)}[kind]()
        sf.write(folder / it["file"], _to_pcm16(_mix_at_snr(wave, sr, noise, snr_db)), sr, subtype="PCM_16")
        rows.append(f"{it['file']}\t{it['text']}\t-\t{kind}\n")
        kinds[kind] += 1
    # file, text, voice ("-": from test/utterances.tsv), condition: `suite speech evaluate` reports WER by kind
    write_text(folder / "transcripts.tsv", "".join(rows))
    return {"from": "test/clean", "snr_db": snr_db, "kinds": dict(kinds), "babble_talkers": len(talkers),
            "babble_voices": voices, "utterances": len(test_items)}


def build_unseen_test(out_dir, n=200, seed=0):
    """Add (or replace) out_dir/test/unseen-festival: ``n`` utterances by festival, a synthesiser never trained on.

    Written into a temporary folder and swapped in whole. Raises SynthError when
    festival (apt: festival festvox-kdlpc16k) is not installed. Returns its report.
    """
    test_dir = Path(out_dir) / "test"
    test_dir.mkdir(parents=True, exist_ok=True)
    if not festival_voices():
        raise SynthError(f"festival not found: {_FESTIVAL_HINT}")
    tmp = Path(tempfile.mkdtemp(prefix=".unseen-build-", dir=test_dir))
    try:
        report = _build_unseen(tmp, n, seed)
        replace_dir(tmp / "unseen-festival", test_dir / "unseen-festival")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


# ------------------------------------------------------------------------------------------------------ reading


class _Frames(Sequence):
    """Per-utterance feature arrays of a Split, made float32 on access (stored float16, concatenated)."""

    def __init__(self, features, offsets):
        self._features, self._offsets = features, offsets

    def __len__(self):
        return len(self._offsets) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(f"utterance {i} out of range for {len(self)}")
        i %= len(self)
        return self._features[self._offsets[i]:self._offsets[i + 1]].astype(np.float32)  # (T_i, F)


@dataclass
class Split:
    """A featurised split: utterance i is features[offsets[i]:offsets[i+1]] (float16, (T_i, F)) and its labels.

    Indexing by position gives one utterance, ``split[i] -> (features float32 (T, F),
    text, voice, condition)``; indexing by name gives a column like a dict of
    lists: ``split["features"]`` (a sequence of float32 (T_i, F) arrays),
    ``split["texts"]``, ``split["voices"]``, ``split["conditions"]``.
    """

    features: np.ndarray   # (sum T, F) float16
    offsets: np.ndarray    # (n + 1,) int64
    text: list
    voice: list
    condition: list

    def __len__(self):
        return len(self.text)

    def keys(self):
        return ("features", "texts", "voices", "conditions")

    def __getitem__(self, i):
        if isinstance(i, str):
            columns = {"features": lambda: _Frames(self.features, self.offsets), "texts": lambda: self.text,
                       "voices": lambda: self.voice, "conditions": lambda: self.condition}
            if i not in columns:
                raise KeyError(f"{i!r}: a Split has columns {', '.join(self.keys())}")
            return columns[i]()
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} out of range for a split of {len(self)}")
        i %= len(self)
        return (self.features[self.offsets[i]:self.offsets[i + 1]].astype(np.float32), self.text[i],
                self.voice[i], self.condition[i])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def lengths(self):
        """Frames per utterance: np.ndarray [shape=(n,), dtype=int64]."""
        return np.diff(self.offsets)


def load_split(out_dir, name):
    """A split of a built corpus as a Split (``split[i]`` an utterance, ``split["texts"]`` a column).

    ``name`` is "train" or "valid" (read from <name>.npz), or a test folder
    ("test" = "test/clean", "test/snr20", "test/unseen-festival", or any folder
    holding a transcripts.tsv): its audio goes through load_audio and features(),
    exactly as a user's files would, and voice/condition come from utterances.tsv.
    """
    out_dir = Path(out_dir)
    if name in ("train", "valid"):
        path = out_dir / f"{name}.npz"
        if not path.exists():
            raise DatasetError(f"{path} not found: build the corpus first (suite speech data build)")
        with np.load(path) as z:
            saved = json.loads(str(z["feature_config"]))
            if feature_dim(saved) != feature_dim() or saved.get("n_mels") != FEATURES["n_mels"]:
                raise DatasetError(f"{path} was built with other features ({saved}); rebuild the corpus")
            return Split(z["features"], z["offsets"], z["text"].tolist(), z["voice"].tolist(),
                         z["condition"].tolist())
    folder = out_dir / ("test/clean" if name == "test" else name)
    rows = read_tsv_dataset(folder)
    meta = {}
    for utt in (folder / "utterances.tsv", folder.parent / "utterances.tsv"):
        if utt.exists():
            for line in utt.read_text(encoding="utf-8").splitlines()[1:]:
                cols = line.split("\t")
                meta.setdefault(cols[0], cols[1])
            break
    feats, texts, voices = [], [], []
    for path, text in rows:
        feats.append(features(load_audio(path, FEATURES["sr"])).astype(np.float16))
        texts.append(text)
        voices.append(meta.get(path.name, ""))
    lengths = np.array([len(f) for f in feats], np.int64)
    return Split(np.concatenate(feats) if feats else np.zeros((0, feature_dim()), np.float16),
                 np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), texts, voices,
                 [folder.name] * len(texts))


def read_tsv_dataset(path):
    """[(audio Path, text)] from a transcript TSV: ``file<TAB>text`` per line, files relative to the TSV.

    ``path`` is the .tsv itself or a folder holding transcripts.tsv (or exactly one
    .tsv). Blank lines and lines starting with "#" are skipped, and so is a header
    line "file<TAB>text" (or path/audio). Text is returned as written; compare
    with normalize(). Raises DatasetError naming the file and line of a bad row,
    or the audio files that do not exist.
    """
    path = Path(path)
    if path.is_dir():
        tsv = path / "transcripts.tsv"
        if not tsv.exists():
            found = sorted(path.glob("*.tsv"))
            if len(found) != 1:
                raise DatasetError(f"{path}: no transcripts.tsv (file<TAB>text per line)"
                                   + (f"; several .tsv files: {', '.join(p.name for p in found)}" if found else ""))
            tsv = found[0]
    elif path.exists():
        tsv = path
    else:
        raise DatasetError(f"{path}: no such file or folder")
    rows, missing = [], []
    for n, line in enumerate(tsv.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if "\t" not in line:
            raise DatasetError(f"{tsv}:{n}: expected 'file<TAB>text', found no tab in {line[:60]!r}")
        file, text = line.split("\t", 1)
        if n == 1 and file.strip().lower() in ("file", "path", "audio") and text.strip().lower() in ("text",
                                                                                                   "transcript"):
            continue
        audio = (tsv.parent / file.strip()).resolve() if not Path(file.strip()).is_absolute() else Path(file.strip())
        if not audio.exists():
            missing.append(file.strip())
        rows.append((audio, text.strip()))
    if missing:
        raise DatasetError(f"{tsv}: {len(missing)} audio file(s) not found, first {missing[0]!r} "
                           f"(paths are relative to the .tsv)")
    return rows


def read_librispeech(path):
    """[(flac Path, text)] from LibriSpeech-style ``*.trans.txt`` files ("<id> <TEXT>"; <id>.flac beside them).

    ``path`` is any folder above them (a subset like dev-clean, or one speaker).
    Sorted by utterance id. Raises DatasetError when there are none or a listed
    .flac is missing.
    """
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path}: not a folder (expected LibriSpeech <speaker>/<chapter>/*.trans.txt)")
    rows = []
    for trans in sorted(path.rglob("*.trans.txt")):
        for n, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            utt, _, text = line.strip().partition(" ")
            audio = trans.parent / f"{utt}.flac"
            if not audio.exists():
                raise DatasetError(f"{trans}:{n}: {audio.name} not found beside the transcript")
            rows.append((audio, text.strip()))
    if not rows:
        raise DatasetError(f"{path}: no *.trans.txt files found (LibriSpeech layout)")
    return sorted(rows, key=lambda r: r[0].stem)
