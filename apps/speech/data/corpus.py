"""Building the synthesised corpus: train/valid features, test audio, the unseen-synthesiser tests."""
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

from suite.apps.speech.audio import load_audio
from suite.apps.speech.data.features import FEATURES, feature_dim, features
from suite.apps.speech.data.noise import (GAIN_PEAK_DB, NOISE_KINDS, PAD_SECONDS, SHAPED_BABBLE, SPEED_RANGE, TRAIN_REVERB, TRAIN_SNR,
    TRAIN_TELEPHONE, VALID_CONDITIONS, _babble, _brown, _hum, _mix_at_snr, augment)
from suite.apps.speech.data.synth import (_FESTIVAL_HINT, _INSTALL_HINT, SPLITS, SynthError, _engine, _festival_batch, _trim,
    festival_voices, list_voices, split_voices, synthesize)
from suite.apps.speech.data.text import ALPHABET, VOCABULARY, random_transcript
from suite.apps.speech.data.user import write_tsv_dataset
from suite.databuild import REPORT, DataError, chunks, parallel_map, read_report, write_npz, write_report
from suite.fileio import replace_dir, staged_dir, write_text

FORMAT_VERSION = 1
_LEGACY = ("corpus.json",)  # the report file name before suite.databuild

_SPLIT_CODE = {"train": 0, "valid": 1, "test": 2, "unseen": 3, "babble": 4, "other-noise": 5}
RATE_WPM = (130, 230)
PITCH = (20, 80)
FLITE_SHARE = 0.25  # of utterances spoken by non-espeak voices (there are ~800 espeak voices and 4-5 flite ones)
TEST_CONDITIONS = ("clean", "snr20")
_BABBLE_POOL = 24
_CHUNK = 256  # utterances per worker task: each task carries the babble pool (a few MB) with it


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


def _to_pcm16(wave):
    return (np.clip(wave, -1.0, 1.0) * 32767).round().astype(np.int16)


def _make_items(task):
    """The utterances of one worker task: (state, [(split, index), ...]) -> [item, ...]."""
    state, jobs = task
    return [_make_item(job, state) for job in jobs]


def _make_item(job, state):
    """One utterance of a split; test items are written as WAV files (clean and noisy) into the build folder.

    state: the seed, the voices by split, the build folder and the babble pool.
    """
    split, index = job
    seed, sr = state["seed"], FEATURES["sr"]
    rng = _item_rng(seed, split, index)
    text, voice, rate, pitch, wave = _spoken(rng, state["voices"][split], sr)
    item = {"split": split, "index": index, "text": text, "voice": voice, "rate": rate, "pitch": pitch}
    if split == "test":
        draws = rng.bit_generator.state
        name = f"{index:05d}.wav"
        for cond in TEST_CONDITIONS:  # the same draws for each: identical utterances, only the noise differs
            rng.bit_generator.state = draws
            noisy, _ = augment(wave, sr, rng, cond, babble=None)
            sf.write(Path(state["build_dir"]) / "test" / cond / name, _to_pcm16(noisy), sr, subtype="PCM_16")
        item.update(file=name, seconds=len(noisy) / sr, condition="+".join(TEST_CONDITIONS))
        return item
    condition = None if split == "train" else VALID_CONDITIONS[index % len(VALID_CONDITIONS)]
    wave, condition = augment(wave, sr, rng, condition, babble=state["babble"])
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
    write_npz(path, arrays)


def _check_out_dir(out_dir):
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not any((out_dir / n).exists() for n in (REPORT, *_LEGACY)):
        raise DataError(f"{out_dir} exists and is not a speech corpus (no {REPORT}); refusing to replace it: "
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
    speech corpus (holds report.json, or corpus.json from an older build).

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
        The command line to record in report.json.

    Returns
    -------
    dict, the report written to report.json.

    Raises
    ------
    SynthError if espeak-ng or flite is missing; DataError for an out_dir that is not a corpus.
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
        return write_report(build, report, FORMAT_VERSION)


def _run_jobs(jobs, state, workers, progress):
    """Every job's item, in job order, on ``workers`` processes (each item seeds itself: workers never matter)."""
    if progress is not None:
        progress(0, len(jobs))
    tasks = [(state, jobs[a:b]) for a, b in chunks(len(jobs), _CHUNK)]
    shown = None if progress is None else (lambda done, _total: progress(done, len(jobs)))
    return [item for items in parallel_map(_make_items, tasks, workers, shown) for item in items]


def read_corpus_report(out_dir):
    """The report of a built corpus (report.json, or corpus.json of an older build); DataError if none."""
    return read_report(out_dir, legacy=_LEGACY, app="speech")


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
