"""Voices and synthesis: espeak-ng accents x variants, flite, festival; the held-out voice split."""
import functools
import io
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SPLITS = ("train", "valid", "test")

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
