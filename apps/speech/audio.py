"""Reading users' audio files: whole (load_audio) or as a stream of segments (iter_segments).

Decoding is libsndfile's (through soundfile): WAV, FLAC, OGG (Vorbis, Opus) and MP3
at any sample rate, any channel count. Where libsndfile cannot decode a file and
audioread has a real decoder (ffmpeg, GStreamer), that is tried next; audioread's
own raw reader adds nothing libsndfile lacks, so it is not counted. Channels are
averaged to mono and the result resampled with soxr.

Every failure is an AudioError whose one-line message names the file and the
problem: missing, empty (0 bytes), not audio, truncated or corrupt. A valid audio
file that holds no samples is not an error: it loads as an empty array (and
transcribes to empty text).
"""
import contextlib
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

__all__ = ["AudioError", "SUPPORTED", "load_audio", "audio_info", "iter_segments", "find_cut"]

SUPPORTED = "WAV, FLAC, OGG and MP3"
_BLOCK_SECONDS = 4.0      # read long files this much at a time: bounded memory whatever the file's length
_FRAME_SECONDS = 0.010    # energy frames for finding silences (the feature hop)
_PAUSE_SECONDS = 0.25     # a silence this long is a pause between words, not a stop closure inside one
_MIN_SEGMENT_FRACTION = 0.25  # never cut before this fraction of max_seconds (no crumbs of segments)


class AudioError(ValueError):
    """A file that cannot be read as audio; the message names the file and the problem."""


def _fail(path, problem):
    raise AudioError(f"{path}: {problem}")


def _check_file(path):
    path = Path(path)
    if not path.exists():
        _fail(path, "no such file")
    if path.is_dir():
        _fail(path, "is a folder, not an audio file")
    if path.stat().st_size == 0:
        _fail(path, "empty file (0 bytes); nothing to decode")
    return path


def _wav_truncation(path):
    """(declared, present) data bytes of a RIFF/WAVE file whose data chunk is cut short, else None.

    libsndfile silently shortens a truncated WAV to what is there; we would rather say so.
    Streaming writers (espeak-ng --stdout, some recorders) leave a placeholder size
    (0, 0xFFFFFFFF, 0x7FFFF000...); those are not truncation.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                present = size - pos - 8
                if chunk_size == 0 or chunk_size >= 0x7FFF0000:
                    return None
                return (chunk_size, present) if chunk_size > present else None
            pos += 8 + chunk_size + (chunk_size & 1)
    return None


def _ogg_truncation(path):
    """A problem string if ``path`` is an Ogg stream whose last page lacks the end-of-stream flag, else None.

    libsndfile decodes a cut Ogg file as far as it goes and reports the shorter
    length as the whole (its frame count comes from the last page it finds), so
    the only sign is the missing EOS flag (bit 2 of the header-type byte) on the
    last page.
    """
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"OggS":
                return None
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = f.read()
    except OSError:
        return None
    last = tail.rfind(b"OggS")
    if last < 0 or last + 6 > len(tail):
        return "corrupt or truncated Ogg stream (no complete last page)"
    if not tail[last + 5] & 0x04:
        return "corrupt or truncated Ogg stream (its last page is not the end of the stream)"
    return None


def _empty_flac(path):
    """(sample rate, channels) of a FLAC file that declares zero samples (libsndfile refuses to open those)."""
    with open(path, "rb") as f:
        head = f.read(42)
    if len(head) < 42 or head[:4] != b"fLaC" or (head[4] & 0x7F) != 0:  # first block must be STREAMINFO
        return None
    bits = int.from_bytes(head[18:26], "big")  # sample rate (20 bits), channels-1 (3), bits-1 (5), samples (36)
    total, rate, channels = bits & ((1 << 36) - 1), bits >> 44, ((bits >> 41) & 7) + 1
    return (rate, channels) if total == 0 and rate > 0 else None


@contextlib.contextmanager
def _decoder_notes_hidden():
    """Hide what C decoders print on file descriptor 2 while probing a file (libmpg123's
    "Note: Illegal Audio-MPEG-Header" for a non-MP3): the user gets our one-line error instead."""
    import os
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. captured): nothing to hide
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _audioread_backends():
    try:
        import audioread
    except ImportError:
        return []
    return [b for b in audioread.available_backends() if b.__name__ != "RawAudioFile"]


def _decode_problem(path, err):
    """Turn a libsndfile error into the user's words."""
    msg = str(err)
    if "Format not recognised" in msg or "not a regular file" in msg:
        problem = f"not an audio file this program can decode (reads {SUPPORTED}; convert others with ffmpeg)"
    elif "malformed" in msg or "lost sync" in msg or "psf_fseek" in msg or "Internal" in msg:
        problem = "corrupt or truncated audio file; cannot decode"
    else:
        problem = f"cannot decode: {msg.splitlines()[0] if msg else type(err).__name__}"
    return problem


class _Source:
    """An opened audio file: native sample rate, channels, and a generator of float32 (n, channels) blocks."""

    def __init__(self, path):
        self.path = _check_file(path)
        self.kind = None
        cut = _wav_truncation(self.path)
        if cut is not None:
            _fail(self.path, f"truncated WAV: header declares {cut[0]} data bytes, file holds {cut[1]}")
        cut = _ogg_truncation(self.path)
        if cut is not None:
            _fail(self.path, cut)
        empty = _empty_flac(self.path)
        if empty is not None:
            self.kind, (self.sr, self.channels), self.frames = "empty", empty, 0
            return
        try:
            with _decoder_notes_hidden():
                info = sf.info(str(self.path))
            self.kind, self.sr, self.channels, self.frames = "soundfile", info.samplerate, info.channels, info.frames
            return
        except (sf.LibsndfileError, RuntimeError) as err:
            error = err
        for backend in _audioread_backends():
            try:
                import audioread
                with audioread.audio_open(str(self.path), backends=[backend]) as f:
                    self.sr, self.channels = f.samplerate, f.channels
                self.kind, self.backend, self.frames = "audioread", backend, None
                return
            except Exception:  # noqa: BLE001 - any decoder failure means "try the next one"
                continue
        _fail(self.path, _decode_problem(self.path, error))

    MIN_RATE = 4000  # below this no speech band survives (and resampling 1 Hz to 16 kHz took minutes)

    def check_rate(self):
        if not self.MIN_RATE <= self.sr <= 768000:
            _fail(self.path, f"sample rate {self.sr} Hz is outside what speech is recorded at "
                             f"({self.MIN_RATE} to 768000 Hz); resample the file (e.g. sox in.wav -r 16000 out.wav)")
        return self

    def blocks(self, seconds=_BLOCK_SECONDS):
        if self.kind == "empty":
            return
        if self.kind == "soundfile":
            got = 0
            try:
                with sf.SoundFile(str(self.path)) as f:
                    size = max(1, int(seconds * self.sr))
                    while True:  # not f.blocks(): it pads a stream that ends early with zeros
                        block = f.read(size, dtype="float32", always_2d=True)
                        if not len(block):
                            break
                        got += len(block)
                        yield block
            except (sf.LibsndfileError, RuntimeError) as err:
                _fail(self.path, _decode_problem(self.path, err))
            # Compressed streams (MP3) that end early decode what they hold and stop short of the header's count.
            if self.frames and got < 0.98 * self.frames - 2048:
                _fail(self.path, f"truncated: header declares {self.frames / self.sr:.2f} s, "
                                 f"decoded {got / self.sr:.2f} s")
            return
        import audioread
        with audioread.audio_open(str(self.path), backends=[self.backend]) as f:
            for buf in f:  # 16-bit little-endian interleaved
                yield (np.frombuffer(buf, "<i2").astype(np.float32) / 32768.0).reshape(-1, self.channels)


def _mono(block, path):
    x = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
    if not np.all(np.isfinite(x)):
        _fail(path, "holds NaN or infinite samples (corrupt float audio)")
    return np.ascontiguousarray(x, dtype=np.float32)


def audio_info(path):
    """dict(sr, channels, seconds or None when unknown before decoding) of a readable audio file."""
    src = _Source(path)
    return {"sr": src.sr, "channels": src.channels,
            "seconds": None if src.frames is None else src.frames / src.sr}


def load_audio(path, sr=16000):
    """A whole audio file as mono float32 at ``sr``.

    Parameters
    ----------
    path : str or Path
        WAV, FLAC, OGG or MP3 (others where an audioread decoder such as ffmpeg exists).
    sr : int
        Output sample rate.

    Returns
    -------
    wave : np.ndarray [shape=(N,), dtype=float32]
        Channels averaged; empty (N = 0) for a valid file with no samples.

    Raises
    ------
    AudioError
        Missing, empty (0 bytes), not audio, truncated or corrupt; one line naming the file.
    """
    src = _Source(path).check_rate()
    parts = [_mono(b, src.path) for b in src.blocks(seconds=600.0)]
    wave = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if src.sr != sr and len(wave):
        wave = soxr.resample(wave, src.sr, sr, quality="HQ").astype(np.float32, copy=False)
    return wave


def _frame_db(wave, sr):
    """Energy per 10 ms frame in dB (float64), smoothed over 50 ms so a single quiet frame is not a pause."""
    hop = max(1, int(round(_FRAME_SECONDS * sr)))
    n = len(wave) // hop
    power = np.square(wave[: n * hop].astype(np.float64)).reshape(n, hop).mean(axis=1)  # (n,)
    power = np.convolve(power, np.ones(5) / 5, mode="same")
    return 10 * np.log10(power + 1e-12), hop


def find_cut(wave, sr, min_samples=0):
    """Where to cut ``wave`` (a sample index in (min_samples, len(wave)]) so the cut falls in a pause.

    Frames are silent below an adaptive threshold between the floor (1st percentile)
    and the speech level (95th percentile), so it works for clean and noisy recordings.
    The cut goes to the middle of the LAST pause of at least 0.25 s (long segments,
    between words); failing that, the longest silent run; failing that (speech with no
    silence at all), the quietest frame.
    """
    db, hop = _frame_db(wave, sr)
    first = int(np.ceil(min_samples / hop))
    if len(db) <= first + 1:
        return len(wave)
    floor, level = np.percentile(db, 1), np.percentile(db, 95)  # 1%: a 20 s window's 0.2 s pause sets the floor
    silent = db < floor + max(6.0, 0.3 * (level - floor))
    silent[:first] = False
    edges = np.flatnonzero(np.diff(np.concatenate([[0], silent.astype(np.int8), [0]])))
    runs = list(zip(edges[::2], edges[1::2]))  # [start, end) frame runs of silence
    if runs:
        pause = int(round(_PAUSE_SECONDS / _FRAME_SECONDS))
        long_runs = [r for r in runs if r[1] - r[0] >= pause]
        start, end = long_runs[-1] if long_runs else max(runs, key=lambda r: (r[1] - r[0], r[0]))
        frame = (start + end) // 2
    else:
        frame = first + int(np.argmin(db[first:]))
    return int(min(len(wave), max(frame * hop + hop // 2, min_samples + 1)))


def iter_segments(path, sr=16000, max_seconds=20.0):
    """Yield ``(start_seconds, wave)`` pieces of a recording, in order, covering it without gaps.

    The file is read in blocks and resampled as a stream, so memory stays bounded
    (about max_seconds of audio plus one block) for a recording of any length. Each
    piece is at most ``max_seconds`` long and is cut in a pause between words where
    the window holds one (see find_cut). A short file yields one piece; an empty
    one yields one empty piece.

    Raises
    ------
    AudioError
        As load_audio (raised before the first piece for a bad file; a file corrupt
        past its start raises when the reader gets there).
    """
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    src = _Source(path).check_rate()
    max_len = max(1, int(max_seconds * sr))
    min_len = int(_MIN_SEGMENT_FRACTION * max_len)
    stream = None if src.sr == sr else soxr.ResampleStream(src.sr, sr, 1, dtype="float32", quality="HQ")
    buf = np.zeros(0, np.float32)
    start = 0  # output samples already yielded
    blocks = src.blocks()
    done = False
    while not done:
        block = next(blocks, None)
        if block is None:
            done = True
            x = stream.resample_chunk(np.zeros(0, np.float32), last=True) if stream else np.zeros(0, np.float32)
        else:
            x = _mono(block, src.path)
            x = stream.resample_chunk(x, last=False) if stream else x
        buf = np.concatenate([buf, x.astype(np.float32, copy=False)])
        while len(buf) > max_len:
            cut = find_cut(buf[:max_len], sr, min_samples=min_len)
            yield start / sr, buf[:cut].copy()
            start += cut
            buf = buf[cut:]
    if len(buf) or start == 0:
        yield start / sr, buf
