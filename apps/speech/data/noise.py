"""Augmentation: speed, silence, gain, reverb, telephone band, noise at an SNR; non-speech clips."""
import re

import numpy as np
import soxr

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
    import scipy.signal  # here, not at import: a command that only reads audio skips its second

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
    import scipy.signal  # here, not at import: a command that only reads audio skips its second

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
    import scipy.signal  # here, not at import: a command that only reads audio skips its second

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
