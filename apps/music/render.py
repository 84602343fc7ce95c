"""A Chorale to a MIDI file, to audio, and to a piano-roll picture.

Audio has two engines. "fluidsynth": the FluidSynth program renders the MIDI file
with a General MIDI soundfont (Debian packages fluidsynth and fluid-soundfont-gm).
"synth": our own additive synthesiser in NumPy, organ-like (a few harmonics per
note under an attack-decay-sustain-release envelope, each voice panned in stereo),
so audio never depends on a system package. engine="auto" takes FluidSynth when
the program and a soundfont are installed, else the synthesiser.

Every file is written atomically (a temporary file beside it, then os.replace).
"""
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from suite.apps.music.grid import STEPS_PER_QUARTER, VOICES, key_name
from suite.fileio import atomic_path

VOICE_NAMES = ("Soprano", "Alto", "Tenor", "Bass")
VOICE_COLOURS = ("#1f77b4", "#2ca02c", "#ff7f0e", "#d62728")
DEFAULT_PROGRAMS = (19, 19, 19, 19)  # General MIDI "Church Organ" (0-based): clear attacks, as chorales were played
TICKS_PER_BEAT = 480
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
              "/usr/share/sounds/sf2/TimGM6mb.sf2")
_PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def note_name(midi):
    """'C4' for 60."""
    return f"{_PITCH_NAMES[int(midi) % 12]}{int(midi) // 12 - 1}"


def _notes(grid, key_transpose):
    """[(start, end, pitch) arrays] per voice, transposed and checked for MIDI range."""
    out = []
    for v in range(4):
        starts, ends, pitches = grid.notes(v)
        pitches = pitches + int(key_transpose)
        if pitches.size and (pitches.min() < 0 or pitches.max() > 127):
            raise ValueError(f"key_transpose={key_transpose} moves voice {VOICES[v]} outside MIDI 0..127")
        out.append((starts, ends, pitches))
    return out


def _check_tempo(tempo):
    if not 10 <= float(tempo) <= 400:
        raise ValueError(f"tempo must lie in 10..400 quarter notes per minute, got {tempo}")
    return float(tempo)


def _time_signature(steps_per_bar):
    if steps_per_bar % STEPS_PER_QUARTER == 0:
        return steps_per_bar // STEPS_PER_QUARTER, 4
    return steps_per_bar, 16


def write_midi(grid, path, tempo=80, key_transpose=0, programs=DEFAULT_PROGRAMS):
    """A type-1 MIDI file with one track (and channel) per voice, S, A, T, B.

    Notes start at onset steps and end where the next onset (or rest) begins;
    held steps extend the note. The soprano track also carries tempo, metre and
    key. key_transpose: semitones added to every pitch (and the key).
    """
    import mido

    tempo = _check_tempo(tempo)
    ticks_per_step = TICKS_PER_BEAT // STEPS_PER_QUARTER
    voices = _notes(grid, key_transpose)
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    for v, (starts, ends, pitches) in enumerate(voices):
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=VOICE_NAMES[v], time=0))
        if v == 0:
            numerator, denominator = _time_signature(grid.steps_per_bar)
            track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo), time=0))
            track.append(mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator, time=0))
            tonic, mode = key_name(grid.tonic + key_transpose, grid.mode).split()
            try:
                track.append(mido.MetaMessage("key_signature", key=tonic + ("m" if mode == "minor" else ""), time=0))
            except (ValueError, KeyError):
                pass  # a spelling mido does not list: the key signature is decoration only
        track.append(mido.Message("program_change", channel=v, program=int(programs[v]), time=0))
        velocity = 90 if v == 0 else 78  # the tune a little above the others
        events = []  # (tick, order, message): note_off (0) before note_on (1) at one tick
        for start, end, pitch in zip(starts, ends, pitches):
            events.append((int(start) * ticks_per_step, 1, "note_on", int(pitch)))
            events.append((int(end) * ticks_per_step, 0, "note_off", int(pitch)))
        now = 0
        for tick, _, kind, pitch in sorted(events):
            track.append(mido.Message(kind, channel=v, note=pitch, velocity=velocity if kind == "note_on" else 0,
                                      time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=0))
        midi.tracks.append(track)
    with atomic_path(path, suffix=".mid") as tmp:
        midi.save(str(tmp))
    return Path(path)


def find_fluidsynth():
    """(fluidsynth program, soundfont path) or None when either is missing."""
    program = shutil.which("fluidsynth")
    soundfont = next((f for f in SOUNDFONTS if os.path.isfile(f)), None)
    return (program, soundfont) if program and soundfont else None


def render_audio(grid, path, tempo=80, sample_rate=22050, key_transpose=0, engine="auto"):
    """A 16-bit WAV of the chorale; returns {"engine", "seconds", "sample_rate", "path"}.

    engine: "auto" (FluidSynth if installed, else ours; ours also when FluidSynth
    fails, with the reason in "fallback"), "fluidsynth" (RuntimeError if it is
    missing or fails) or "synth".
    """
    if engine not in ("auto", "fluidsynth", "synth"):
        raise ValueError(f"engine must be auto, fluidsynth or synth, got {engine!r}")
    tempo = _check_tempo(tempo)
    if not 8000 <= int(sample_rate) <= 96000:
        raise ValueError(f"sample_rate must lie in 8000..96000, got {sample_rate}")
    info = {}
    if engine in ("auto", "fluidsynth"):
        found = find_fluidsynth()
        try:
            if found is None:
                raise RuntimeError("fluidsynth or a General MIDI soundfont (fluid-soundfont-gm) is not installed")
            seconds = _render_fluidsynth(grid, path, tempo, int(sample_rate), key_transpose, *found)
            return {"engine": "fluidsynth", "seconds": seconds, "sample_rate": int(sample_rate), "path": str(path)}
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            if engine == "fluidsynth":
                raise RuntimeError(f"FluidSynth rendering failed: {e}") from e
            info["fallback"] = str(e)
    audio = synthesise(grid, tempo, int(sample_rate), key_transpose)  # (N, 2)
    write_wav(path, audio, int(sample_rate))
    return {"engine": "synth", "seconds": len(audio) / int(sample_rate), "sample_rate": int(sample_rate),
            "path": str(path), **info}


def _render_fluidsynth(grid, path, tempo, sample_rate, key_transpose, program, soundfont):
    with tempfile.TemporaryDirectory(prefix="suite-music-") as folder:
        midi_path = Path(folder) / "in.mid"
        write_midi(grid, midi_path, tempo, key_transpose)
        with atomic_path(path, suffix=".wav") as tmp:
            command = [program, "-ni", "-q", "-g", "0.6", "-r", str(sample_rate), "-T", "wav", "-O", "s16",
                       "-F", str(tmp), soundfont, str(midi_path)]
            # libpulse, loaded by fluidsynth even to write a file, makes a pulse-* folder in TMPDIR (and a link to
            # it in ~/.config/pulse) unless XDG_RUNTIME_DIR names a folder: ours, removed with it
            env = dict(os.environ, XDG_RUNTIME_DIR=folder)
            done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
            if done.returncode != 0 or not tmp.is_file() or tmp.stat().st_size <= 44:
                raise RuntimeError(f"{' '.join(command[:1])} exited {done.returncode}: "
                                   f"{(done.stderr or done.stdout).strip()[-300:]}")
            with wave.open(str(tmp), "rb") as w:
                channels, rate = w.getnchannels(), w.getframerate()
                if w.getsampwidth() != 2:
                    raise RuntimeError(f"fluidsynth wrote {8 * w.getsampwidth()}-bit audio, expected 16")
                pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, channels)  # (N, C)
            peak = np.abs(pcm.astype(np.int32)).max()
            if peak > 0:  # the same loudness as our synthesiser's output
                pcm = np.round(pcm * (0.89 * 32767 / peak)).astype("<i2")
            with wave.open(str(tmp), "wb") as w:
                w.setnchannels(channels)
                w.setsampwidth(2)
                w.setframerate(rate)
                w.writeframes(pcm.tobytes())
            return len(pcm) / rate


# -- our own synthesiser ------------------------------------------------------------------

HARMONICS = (1.0, 0.5, 0.28, 0.16, 0.09, 0.05)  # organ-like: a bright but soft spectrum
ATTACK, DECAY, SUSTAIN, RELEASE = 0.015, 0.08, 0.7, 0.09  # seconds, seconds, level, seconds
GAP = 0.025  # seconds of silence before a re-struck note, so repeated pitches are heard twice
PANS = (-0.45, -0.15, 0.15, 0.45)  # S left ... B right, as a choir stands


def _envelope(n_on, n_total, sample_rate):
    """ADSR over n_total samples with the key released after n_on."""
    t = np.arange(n_total) / sample_rate  # (n_total,)
    env = np.where(t < ATTACK, t / ATTACK,
                   np.where(t < ATTACK + DECAY, 1.0 - (1.0 - SUSTAIN) * (t - ATTACK) / DECAY, SUSTAIN))
    level_at_release = env[min(n_on, n_total) - 1] if n_on > 0 else 0.0
    after = np.arange(n_total) >= n_on
    env[after] = level_at_release * np.maximum(0.0, 1.0 - (t[after] - n_on / sample_rate) / RELEASE)
    return env


def synthesise(grid, tempo=80, sample_rate=22050, key_transpose=0):
    """Stereo float audio, np.ndarray [shape=(N, 2), dtype=float32], peak 0.89.

    N = steps * seconds per step + the release tail.
    """
    step_seconds = 60.0 / _check_tempo(tempo) / STEPS_PER_QUARTER
    total = int(round(grid.n_steps * step_seconds * sample_rate)) + int(RELEASE * sample_rate)
    out = np.zeros((total, 2), np.float64)  # (N, 2)
    nyquist = sample_rate / 2
    for v, (starts, ends, pitches) in enumerate(_notes(grid, key_transpose)):
        left, right = np.cos((PANS[v] + 1) * np.pi / 4), np.sin((PANS[v] + 1) * np.pi / 4)  # equal power
        gain = 0.3 if v == 0 else 0.25
        for start, end, pitch in zip(starts, ends, pitches):
            begin = int(round(start * step_seconds * sample_rate))
            n_on = int(round((end - start) * step_seconds * sample_rate))
            n_on = max(n_on - int(GAP * sample_rate), n_on // 2)
            n_total = min(n_on + int(RELEASE * sample_rate), total - begin)
            t = np.arange(n_total) / sample_rate
            freq = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
            tone = sum(a * np.sin(2 * np.pi * freq * k * t)
                       for k, a in enumerate(HARMONICS, start=1) if freq * k < nyquist)
            note = gain * tone * _envelope(n_on, n_total, sample_rate)
            out[begin:begin + n_total, 0] += left * note
            out[begin:begin + n_total, 1] += right * note
    peak = np.abs(out).max()
    if peak > 0:
        out *= 0.89 / peak
    return out.astype(np.float32)


def write_wav(path, audio, sample_rate):
    """16-bit PCM WAV of float audio in [-1, 1], shape (N,) or (N, channels)."""
    audio = np.asarray(audio, np.float64)
    if audio.ndim == 1:
        audio = audio[:, None]
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")  # (N, C)
    with atomic_path(path, suffix=".wav") as tmp:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(pcm.shape[1])
            w.setsampwidth(2)
            w.setframerate(int(sample_rate))
            w.writeframes(pcm.tobytes())
    return Path(path)


# -- the picture --------------------------------------------------------------------------

def piano_roll(grid, path, key_transpose=0, title=None, dpi=110):
    """A PNG piano roll: time in bars on x, pitch (note names) on y, one colour per voice.

    Fermatas are shaded; bar lines are drawn; each note is its own box, so a
    repeated pitch shows as two.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    voices = _notes(grid, key_transpose)
    spb, pickup = grid.steps_per_bar, grid.pickup
    n_bars = (grid.n_steps - pickup) / spb
    sounding = np.concatenate([p for _, _, p in voices]) if any(len(p) for _, _, p in voices) else np.array([60])
    low, high = int(sounding.min()) - 2, int(sounding.max()) + 2
    fig, ax = plt.subplots(figsize=(min(max(6.0, 0.55 * n_bars + 2), 24.0), 4.8), dpi=dpi)
    for p in range(low, high + 1):
        if p % 12 in (1, 3, 6, 8, 10):  # the black keys, as on a keyboard
            ax.axhspan(p - 0.5, p + 0.5, color="#f0f0f0", zorder=0, lw=0)
    steps = np.arange(grid.n_steps)
    for start in steps[grid.fermata & ~np.r_[False, grid.fermata[:-1]]]:
        stop = start + np.argmin(np.r_[grid.fermata[start:], False])
        ax.axvspan((start - pickup) / spb, (stop - pickup) / spb, color="#fff3b0", zorder=0.5, lw=0)
    for v, (starts, ends, pitches) in enumerate(voices):
        if len(pitches):
            ax.barh(pitches, (ends - starts) / spb, left=(starts - pickup) / spb, height=0.8,
                    color=VOICE_COLOURS[v], edgecolor="white", linewidth=0.6, label=VOICE_NAMES[v], zorder=2)
    first_bar = -1 if pickup else 0
    for bar in range(first_bar + 1, int(np.ceil(n_bars)) + 1):
        ax.axvline(bar, color="#999999", lw=0.6, zorder=1)
    ax.set_xlim(-pickup / spb, n_bars)
    ax.set_ylim(low - 0.5, high + 0.5)
    tick_bars = range(0, int(np.ceil(n_bars)), max(1, int(np.ceil(n_bars / 24))))
    ax.set_xticks([b + 0.5 for b in tick_bars], [str(b + 1) for b in tick_bars])
    naturals = [p for p in range(low, high + 1) if p % 12 in (0, 2, 4, 5, 7, 9, 11)]
    labelled = naturals if high - low <= 40 else [p for p in naturals if p % 12 in (0, 7)]
    ax.set_yticks(labelled, [note_name(p) for p in labelled], fontsize=7)
    ax.set_xlabel("bar")
    ax.set_ylabel("pitch")
    ax.set_title(title or f"{grid.name or 'chorale'} ({key_name(grid.tonic + key_transpose, grid.mode)})")
    ax.legend(loc="upper right", fontsize=7, ncol=4, framealpha=0.9)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
