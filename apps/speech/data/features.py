"""Log-mel features, per-utterance normalised: what the model reads, from a corpus or a user's file."""
import functools

import numpy as np
import soxr

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


def _hz_to_mel(f):
    """Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / logstep, f / (200.0 / 3))


def _mel_to_hz(m):
    m = np.asarray(m, np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)), m * (200.0 / 3))


@functools.lru_cache(maxsize=8)
def _mel_basis(sr, n_fft, n_mels, fmin, fmax):
    """(1 + n_fft // 2, n_mels) triangular mel filters with Slaney's area normalisation: librosa.filters.mel's
    defaults, computed here (importing librosa and scipy.signal cost a command two seconds; a test checks the two
    agree)."""
    fft_freqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32).T


@functools.lru_cache(maxsize=8)
def _window(win, n_fft):
    """A periodic Hann window of ``win`` samples (scipy.signal.get_window("hann", win, fftbins=True)), zero-padded to
    n_fft."""
    w = np.zeros(n_fft, np.float32)
    w[:win] = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)
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
