"""Four voices on a 16th-note grid, and keys.

The grid (``Chorale``): per 16th-note step and voice a MIDI pitch or REST and an
onset flag (True: a note starts here; False: held from the step before, a tie),
a fermata flag per step (steps covered by a note that carries a fermata), the bar
length in steps and the pickup (steps before the first downbeat), the key
(tonic pitch class and mode) and the transposition applied to the source.

Keys: ``normalise`` transposes a chorale by the shift in [-6, 5] semitones that
takes its tonic to C (major) or A (minor). ``augment`` adds the other keys: every
shift in [-6, 5] that keeps each voice inside given ranges.
"""
import re
from dataclasses import dataclass, field, replace

import numpy as np

REST = -1
VOICES = ("S", "A", "T", "B")
MODES = ("major", "minor")
STEPS_PER_QUARTER = 4  # the 16th-note grid
_TARGET_TONIC = {"major": 0, "minor": 9}  # normalise to C major / A minor


# -- keys ---------------------------------------------------------------------------------

_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")


def key_name(tonic, mode):
    """'D major', 'F# minor': the usual spelling of the key with this tonic pitch class."""
    names = _MAJOR_NAMES if mode == "major" else _MINOR_NAMES
    return f"{names[int(tonic) % 12]} {mode}"


def parse_key(name, mode=None):
    """(tonic pitch class, mode) from 'D', 'F#', 'Bb' (or music21's 'B-'), 'f# minor'.

    mode: "major" or "minor"; None takes it from the name ("G minor") or major.
    Raises ValueError saying what a key looks like.
    """
    text = str(name).strip()
    parts = text.split()
    if len(parts) == 2:
        text, named_mode = parts[0], parts[1].lower()
        if named_mode not in MODES or (mode is not None and mode != named_mode):
            raise ValueError(f"key {name!r} does not match mode {mode!r}" if named_mode in MODES
                             else f"unknown mode {parts[1]!r} in key {name!r}: use major or minor")
        mode = named_mode
    mode = "major" if mode is None else str(mode).lower()
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: use major or minor")
    match = re.fullmatch(r"([A-Ga-g])(#{1,2}|b{1,2}|-{1,2})?", text)
    if match is None:
        raise ValueError(f"unknown key {name!r}: use a letter A-G with an optional # or b (D, F#, Bb)")
    accidental = match.group(2) or ""
    shift = len(accidental) if accidental.startswith("#") else -len(accidental)
    return (_LETTER_PC[match.group(1).upper()] + shift) % 12, mode


def diatonic_pitch_classes(tonic, mode):
    """Pitch classes in the key: the major scale; for minor the natural minor plus the
    raised 6th and 7th (melodic and harmonic minor), as chorales use them."""
    steps = (0, 2, 4, 5, 7, 9, 11) if mode == "major" else (0, 2, 3, 5, 7, 8, 9, 10, 11)
    return frozenset((int(tonic) + s) % 12 for s in steps)


# -- the grid -----------------------------------------------------------------------------

def _canonical_onsets(pitch, onset):
    """A held step must continue the same pitch; a rest run starts with one onset."""
    held_ok = np.zeros_like(onset)
    held_ok[1:] = pitch[1:] == pitch[:-1]
    onset = onset | ~held_ok
    rest = pitch == REST
    onset[1:] &= ~(rest[1:] & rest[:-1])  # (T-1, 4): a rest continues a rest, never "starts"
    return onset


@dataclass(eq=False)
class Chorale:
    """Four voices on a 16th-note grid.

    pitch : np.ndarray [shape=(T, 4), dtype=int16]  MIDI pitch of S, A, T, B; REST = -1
    onset : np.ndarray [shape=(T, 4), dtype=bool]   True where a note (or a rest run)
        starts; None: wherever the pitch changes. Made canonical on construction
        (a "held" step whose pitch differs from the step before becomes an onset).
    fermata : np.ndarray [shape=(T,), dtype=bool] or None (no fermatas)
    """

    pitch: np.ndarray
    onset: np.ndarray = None
    fermata: np.ndarray = None
    steps_per_bar: int = 16
    pickup: int = 0  # steps before the first downbeat, 0 <= pickup < steps_per_bar
    tonic: int = 0  # pitch class of the key's tonic as the grid stands
    mode: str = "major"
    name: str = ""
    transpose: int = 0  # semitones added to the source (normalisation + augmentation)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        pitch = np.asarray(self.pitch)
        if pitch.ndim != 2 or pitch.shape[1] != 4 or pitch.shape[0] < 1:
            raise ValueError(f"pitch has shape {pitch.shape}, expected (T, 4) with T >= 1")
        if not np.issubdtype(pitch.dtype, np.integer):
            raise ValueError(f"pitch must hold integers, got dtype {pitch.dtype}")
        if pitch.min() < REST or pitch.max() > 127:
            raise ValueError(f"pitch values must be MIDI 0..127 or REST={REST}, got [{pitch.min()}, {pitch.max()}]")
        self.pitch = pitch.astype(np.int16)
        n = len(pitch)
        onset = np.ones((n, 4), bool) if self.onset is None else np.asarray(self.onset, bool)
        if self.onset is None:
            onset[1:] = pitch[1:] != pitch[:-1]
        if onset.shape != (n, 4):
            raise ValueError(f"onset has shape {onset.shape}, expected {(n, 4)}")
        self.onset = _canonical_onsets(self.pitch, onset.copy())
        fermata = np.zeros(n, bool) if self.fermata is None else np.asarray(self.fermata, bool).copy()
        if fermata.shape != (n,):
            raise ValueError(f"fermata has shape {fermata.shape}, expected {(n,)}")
        self.fermata = fermata
        self.steps_per_bar, self.pickup = int(self.steps_per_bar), int(self.pickup)
        if self.steps_per_bar < 1 or not 0 <= self.pickup < self.steps_per_bar:
            raise ValueError(f"need steps_per_bar >= 1 and 0 <= pickup < steps_per_bar, got "
                             f"{self.steps_per_bar} and {self.pickup}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be major or minor, got {self.mode!r}")
        self.tonic = int(self.tonic) % 12

    @property
    def n_steps(self):
        return len(self.pitch)

    @property
    def key(self):
        return self.tonic, self.mode

    @property
    def key_name(self):
        return key_name(self.tonic, self.mode)

    def transposed(self, shift):
        """The same chorale `shift` semitones higher (rests stay rests)."""
        pitch = np.where(self.pitch == REST, REST, self.pitch + int(shift))
        return replace(self, pitch=pitch, onset=self.onset, tonic=self.tonic + int(shift),
                       transpose=self.transpose + int(shift), meta=dict(self.meta))

    def notes(self, voice):
        """(start, end, pitch) arrays of one voice's notes, end exclusive, in steps."""
        starts = np.flatnonzero(self.onset[:, voice])  # (N,)
        ends = np.append(starts[1:], self.n_steps)
        keep = self.pitch[starts, voice] != REST
        return starts[keep], ends[keep], self.pitch[starts[keep], voice].astype(np.int64)

    def same_music(self, other):
        """Equal grids, bars and key (names and metadata aside)."""
        return (self.pitch.shape == other.pitch.shape and np.array_equal(self.pitch, other.pitch)
                and np.array_equal(self.onset, other.onset) and np.array_equal(self.fermata, other.fermata)
                and (self.steps_per_bar, self.pickup, self.key) == (other.steps_per_bar, other.pickup, other.key))


def normalise(chorale):
    """Transposed to C major / A minor by the shift in [-6, 5] semitones (stays near its register)."""
    shift = (_TARGET_TONIC[chorale.mode] - chorale.tonic + 6) % 12 - 6
    return chorale.transposed(shift)


def voice_ranges(chorales):
    """[(lowest, highest)] MIDI pitch of each voice over the chorales."""
    out = []
    for v in range(4):
        sounding = np.concatenate([c.pitch[c.pitch[:, v] != REST, v] for c in chorales])
        out.append((int(sounding.min()), int(sounding.max())))
    return out


def augment(chorale, ranges, shifts=range(-6, 6)):
    """The chorale in every key that keeps each voice within ranges [(lo, hi)] * 4.

    shifts: semitones to try (default: all 12 keys); the original (shift 0) is
    included when it fits. Returns a list of Chorale.
    """
    out = []
    for shift in shifts:
        fits = True
        for v, (lo, hi) in enumerate(ranges):
            sounding = chorale.pitch[chorale.pitch[:, v] != REST, v]
            if sounding.size and (sounding.min() + shift < lo or sounding.max() + shift > hi):
                fits = False
                break
        if fits:
            out.append(chorale.transposed(shift))
    return out
