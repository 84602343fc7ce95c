"""Bach chorales as a 16th-note grid and as a token stream for an LSTM.

Corpus: music21's bundled chorales in Riemenschneider order (the 371 files that
``music21.corpus.chorales.Iterator()`` yields). A chorale is kept when it has
exactly four parts (soprano, alto, tenor, bass, top to bottom), one metre and a
clear key; every other one is counted under one reason (the first that applies):

    parse_error          music21 could not read the file
    not_four_parts       more or fewer than 4 parts (instrumental obbligato parts,
                         divided sopranos)
    chord_in_part        a part holds a chord, not one line
    no_time_signature    no metre at all
    meter_change         more than one time signature
    voices_out_of_order  the parts' mean pitches are not S > A > T > B
    key_unclear          music21's key analysis (Krumhansl-Schmuckler with
                         Aarden-Essen weights) names a tonic that is not the final
                         bass note: modal (Phrygian, Dorian) endings and chorales
                         that close away from their key
    out_of_range         after normalisation a pitch falls outside the vocabulary
    duplicate            the same normalised grid as an earlier chorale (the list
                         names some harmonisations twice, sometimes transposed)

The grid (``Chorale``): per 16th-note step and voice a MIDI pitch or REST and an
onset flag (True: a note starts here; False: held from the step before, a tie),
a fermata flag per step (steps covered by a note that carries a fermata), the bar
length in steps and the pickup (steps before the first downbeat). Offsets and
durations are rounded to the nearest 16th (a handful of 32nds and grace notes
are lost; the report counts them). Repeats are not expanded.

Keys: every kept chorale is transposed by the shift in [-6, 5] semitones that
takes its tonic to C (major) or A (minor); the shift is recorded. Training may
add transpositions to the other keys (``augment``): every shift in [-6, 5] that
keeps each voice inside the range that voice spans in the train split's
original keys.

Tokens (BachBot-like, Liang 2016), per chorale::

    <start> <C major> || S A T B | S A T B | (.) S A T B ... <end>

    "||"    a step that begins a bar (a downbeat); "|" any other step. The bar
            delimiter gives the network the metre; the decoder recovers
            steps_per_bar and the pickup from it.
    "(.)"   the step lies under a fermata (after the delimiter, before S).
    voice   "60" a new note (MIDI pitch), "60~" the same pitch held from the step
            before, "R" a rest. Always four, in the order S, A, T, B.
    key     one of 24 "<C major>" ... "<B minor>" after <start>: the key the grid
            is in (C major or A minor unless augmented).

Splits are by hymn: chorales whose titles agree (case, punctuation and spacing
aside) are harmonisations of one tune and go to the same split, so no test
melody was seen in training. Groups are ordered by a keyed hash of (seed, title)
and dealt to test, then valid, until each holds its share of chorales (default
10% and 10%); the rest train.
"""
import hashlib
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from suite.fileio import atomic_path, write_json

REST = -1
VOICES = ("S", "A", "T", "B")
SPLITS = ("train", "valid", "test")
MODES = ("major", "minor")
STEPS_PER_QUARTER = 4  # the 16th-note grid
PITCH_MIN, PITCH_MAX = 28, 91  # E1..G6: the normalised corpus spans 30..86; room for augmentation
FORMAT_VERSION = 1
DEFAULT_SPLIT = (0.8, 0.1, 0.1)
DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[2] / "data" / "cache" / "music"
_TARGET_TONIC = {"major": 0, "minor": 9}  # normalise to C major / A minor

SKIP_REASONS = {
    "parse_error": "music21 could not read the file",
    "not_four_parts": "not exactly four parts (instrumental parts or divided voices)",
    "chord_in_part": "a part holds a chord, not a single line",
    "no_time_signature": "no time signature",
    "meter_change": "more than one time signature",
    "voices_out_of_order": "the parts' mean pitches are not soprano > alto > tenor > bass",
    "key_unclear": "the analysed tonic is not the final bass note (modal or open ending)",
    "out_of_range": f"a normalised pitch outside MIDI {PITCH_MIN}..{PITCH_MAX}",
    "duplicate": "the same normalised grid as an earlier chorale",
}


class CorpusError(ValueError):
    """A corpus that cannot be built or loaded, with what to do about it."""


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


# -- tokens -------------------------------------------------------------------------------

STEP, BAR, FERMATA, START, END, PAD = "|", "||", "(.)", "<start>", "<end>", "<pad>"
REST_TOKEN, HOLD_MARK = "R", "~"


def key_token(tonic, mode):
    return f"<{key_name(tonic, mode)}>"


class Vocab:
    """A fixed vocabulary: specials, 24 keys, rest, then onset and held tokens per pitch.

    Ids never depend on data, so any model's output can be decoded by any build.
    """

    specials = (PAD, START, END, STEP, BAR, FERMATA)

    def __init__(self, pitch_min=PITCH_MIN, pitch_max=PITCH_MAX):
        if not 0 <= pitch_min <= pitch_max <= 127:
            raise ValueError(f"need 0 <= pitch_min <= pitch_max <= 127, got {pitch_min}, {pitch_max}")
        self.pitch_min, self.pitch_max = int(pitch_min), int(pitch_max)
        keys = [key_token(t, m) for m in MODES for t in range(12)]
        pitches = range(self.pitch_min, self.pitch_max + 1)
        self.tokens = list(self.specials) + keys + [REST_TOKEN] + [str(p) for p in pitches] \
            + [f"{p}{HOLD_MARK}" for p in pitches]
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.pad_id, self.start_id, self.end_id = self.index[PAD], self.index[START], self.index[END]
        self.step_id, self.bar_id, self.fermata_id = self.index[STEP], self.index[BAR], self.index[FERMATA]
        self.rest_id = self.index[REST_TOKEN]

    @property
    def size(self):
        return len(self.tokens)

    def __len__(self):
        return len(self.tokens)

    def __eq__(self, other):
        return isinstance(other, Vocab) and self.tokens == other.tokens

    def __repr__(self):
        return f"Vocab(size={self.size}, pitches {self.pitch_min}..{self.pitch_max})"

    def key_id(self, tonic, mode):
        return self.index[key_token(tonic, mode)]

    def voice_id(self, pitch, held=False):
        """Id of one voice token; ValueError for a pitch the vocabulary lacks."""
        if pitch == REST:
            return self.rest_id
        if not self.pitch_min <= pitch <= self.pitch_max:
            raise ValueError(f"pitch {pitch} is outside the vocabulary's MIDI {self.pitch_min}..{self.pitch_max}")
        return self.index[f"{int(pitch)}{HOLD_MARK if held else ''}"]

    def voice_ids(self):
        """np.ndarray of the ids of every voice token (rest, onsets, holds): a sampling mask."""
        return np.arange(self.rest_id, self.size)

    def encode(self, tokens):
        """np.ndarray [shape=(N,), dtype=int32]; ValueError on an unknown token."""
        try:
            return np.array([self.index[t] for t in tokens], dtype=np.int32)
        except KeyError as e:
            raise ValueError(f"token {e.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids):
        """Tokens of ids; an id outside the vocabulary becomes None."""
        return [self.tokens[i] if 0 <= i < self.size else None for i in (int(i) for i in ids)]

    def to_json(self):
        return {"format": FORMAT_VERSION, "pitch_min": self.pitch_min, "pitch_max": self.pitch_max,
                "tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, obj):
        vocab = cls(obj["pitch_min"], obj["pitch_max"])
        if obj.get("tokens") is not None and list(obj["tokens"]) != vocab.tokens:
            raise ValueError("vocabulary tokens do not match this version of apps.music.data")
        return vocab


def chorale_tokens(chorale, with_key=True):
    """The chorale as a list of token strings (see the module docstring)."""
    out = [START] + ([key_token(*chorale.key)] if with_key else [])
    downbeat = (np.arange(chorale.n_steps) - chorale.pickup) % chorale.steps_per_bar == 0
    for t in range(chorale.n_steps):
        out.append(BAR if downbeat[t] else STEP)
        if chorale.fermata[t]:
            out.append(FERMATA)
        for v in range(4):
            p = int(chorale.pitch[t, v])
            out.append(REST_TOKEN if p == REST else f"{p}{'' if chorale.onset[t, v] else HOLD_MARK}")
    out.append(END)
    return out


def encode_chorale(chorale, vocab, with_key=True):
    """Token ids, np.ndarray [shape=(N,), dtype=int32]."""
    return vocab.encode(chorale_tokens(chorale, with_key))


def _voice_token(token):
    """(pitch, held) of a voice token, or None if the token is not one."""
    if token == REST_TOKEN:
        return REST, False
    held = token.endswith(HOLD_MARK)
    digits = token[:-1] if held else token
    if digits.isdigit() and int(digits) <= 127:
        return int(digits), held
    return None


_KEY_TOKEN = re.compile(r"<([A-G][#b]?) (major|minor)>")


def decode_tokens(seq, vocab=None, default_key=(0, "major"), steps_per_bar=16):
    """A Chorale from tokens (strings) or ids (with vocab), repairing malformed input.

    Never raises on bad model output. Rules, each counted in the returned repairs:
    unknown          an id outside the vocabulary or an unknown string: ignored
    misplaced        <start>, <pad>, or a key token after the first step: ignored
    no_delimiter     a voice token before any "|": a step is opened for it
    stray_fermata    "(.)" after a voice token of its step: still marks the step
    extra_voices     a step with more than 4 voice tokens: the extra ones dropped
    missing_voices   a step with 1-3 voice tokens: the rest hold their previous
                     pitch (a rest if there is none)
    empty_step       a delimiter with no voice token: the step is dropped
    bad_hold         "60~" where the voice did not sound 60: becomes an onset
    Decoding stops at <end>. Bars: steps_per_bar is the most common distance
    between "||" steps (the argument when fewer than two), the pickup the first
    "||" step modulo it.

    Returns
    -------
    (Chorale, repairs: dict reason -> count); an input without a single voice
    token gives a one-step chorale of rests with repairs["no_steps"] = 1.
    """
    repairs = Counter()
    tokens = list(seq)
    if tokens and not isinstance(tokens[0], str):
        if vocab is None:
            raise ValueError("decode_tokens needs the vocab to decode ids")
        tokens = vocab.decode(tokens)
    tonic, mode = default_key
    steps = []  # [(downbeat, fermata, [(pitch, held), ...])]
    current = None
    for token in tokens:
        if token is None:
            repairs["unknown"] += 1
            continue
        if token == END:
            break
        if token in (STEP, BAR):
            current = [token == BAR, False, []]
            steps.append(current)
            continue
        if token == FERMATA:
            if current is None:
                current = [False, False, []]
                steps.append(current)
            if current[2]:
                repairs["stray_fermata"] += 1
            current[1] = True
            continue
        key = _KEY_TOKEN.fullmatch(token)
        if key is not None:
            if steps:
                repairs["misplaced"] += 1
            else:
                tonic, mode = parse_key(key.group(1), key.group(2))
            continue
        if token in (START, PAD):
            if steps:
                repairs["misplaced"] += 1
            continue
        voice = _voice_token(token)
        if voice is None:
            repairs["unknown"] += 1
            continue
        if current is None:
            repairs["no_delimiter"] += 1
            current = [False, False, []]
            steps.append(current)
        current[2].append(voice)

    pitch, onset, fermata, downbeats = [], [], [], []
    previous = [REST] * 4
    for downbeat, is_fermata, voices in steps:
        if not voices:
            repairs["empty_step"] += 1
            continue
        if len(voices) > 4:
            repairs["extra_voices"] += len(voices) - 4
            voices = voices[:4]
        if len(voices) < 4:
            repairs["missing_voices"] += 4 - len(voices)
            voices = voices + [(previous[v], previous[v] != REST) for v in range(len(voices), 4)]
        row_p, row_o = [], []
        for v, (p, held) in enumerate(voices):
            if held and p != previous[v]:
                repairs["bad_hold"] += 1
                held = False
            row_p.append(p)
            row_o.append(not held)
        if downbeat:
            downbeats.append(len(pitch))
        pitch.append(row_p)
        onset.append(row_o)
        fermata.append(is_fermata)
        previous = row_p
    if not pitch:
        repairs["no_steps"] = 1
        pitch, onset, fermata = [[REST] * 4], [[True] * 4], [False]
    if len(downbeats) >= 2:
        gaps = Counter(np.diff(downbeats).tolist())
        steps_per_bar = max(gaps, key=lambda g: (gaps[g], -g))
    pickup = downbeats[0] % steps_per_bar if downbeats else 0
    chorale = Chorale(np.array(pitch, np.int16), np.array(onset, bool), np.array(fermata, bool),
                      steps_per_bar=steps_per_bar, pickup=pickup, tonic=tonic, mode=mode)
    return chorale, dict(repairs)


# -- parsing music21 scores -----------------------------------------------------------------

class Skip(Exception):
    """A chorale left out of the corpus, for one of SKIP_REASONS."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


def _quantise(x):
    return int(np.floor(x * STEPS_PER_QUARTER + 0.5))  # half up, not to even


def parse_score(score, name=""):
    """A music21 Score of a four-part chorale -> Chorale in its original key.

    Raises Skip(reason) for the reasons in SKIP_REASONS (not parse_error,
    out_of_range, duplicate, which the corpus builder decides).
    meta of the result: title, declared and analysed key, key correlation, and
    the notes quantisation moved or lost.
    """
    from music21 import chord, expressions, meter
    from music21 import key as m21key

    parts = list(score.parts)
    if len(parts) != 4:
        raise Skip("not_four_parts", f"{len(parts)} parts: {[p.partName or p.id for p in parts]}")
    signatures = {ts.ratioString: ts for p in parts for ts in p.recurse().getElementsByClass(meter.TimeSignature)}
    if not signatures:
        raise Skip("no_time_signature")
    if len(signatures) > 1:
        raise Skip("meter_change", ", ".join(sorted(signatures)))
    signature = next(iter(signatures.values()))
    steps_per_bar = _quantise(signature.barDuration.quarterLength)
    measures = parts[0].getElementsByClass("Measure")
    pickup = 0
    if len(measures):
        first = _quantise(measures[0].duration.quarterLength)
        if 0 < first < steps_per_bar and (measures[0].paddingLeft > 0 or measures[0].number == 0):
            pickup = first

    counts = Counter()
    voices = []
    for part in parts:
        notes = []
        for n in part.stripTies().flatten().notes:
            if isinstance(n, chord.Chord):
                raise Skip("chord_in_part", f"{part.partName or part.id} at offset {n.offset}")
            length = float(n.quarterLength)
            if length == 0:
                counts["grace_notes_dropped"] += 1
                continue
            begin, end = float(n.offset), float(n.offset) + length
            start, stop = _quantise(begin), _quantise(end)
            if start * 1.0 != begin * STEPS_PER_QUARTER or stop * 1.0 != end * STEPS_PER_QUARTER:
                counts["notes_off_grid"] += 1
            stop = max(stop, start + 1)
            has_fermata = any(isinstance(e, expressions.Fermata) for e in n.expressions)
            notes.append((start, stop, n.pitch.midi, has_fermata))
        voices.append(notes)
    n_steps = max(stop for notes in voices for _, stop, _, _ in notes)
    pitch = np.full((n_steps, 4), REST, np.int16)  # (T, 4)
    onset = np.zeros((n_steps, 4), bool)
    fermata = np.zeros(n_steps, bool)
    for v, notes in enumerate(voices):
        for start, stop, midi, has_fermata in notes:
            if onset[start, v] or pitch[start, v] != REST:
                counts["notes_overlapping"] += 1  # quantisation put two notes on one step
            pitch[start:stop, v] = midi
            onset[start, v] = True
            onset[start + 1:stop, v] = False
            fermata[start:stop] |= has_fermata
    means = [pitch[pitch[:, v] != REST, v].mean() for v in range(4)]
    if not all(means[v] > means[v + 1] for v in range(3)):
        raise Skip("voices_out_of_order", "mean pitches " + ", ".join(f"{m:.1f}" for m in means))

    analysed = score.analyze("key")
    last_bass = max(voices[3], key=lambda n: n[1])[2]
    if analysed.tonic.pitchClass != last_bass % 12:
        raise Skip("key_unclear", f"analysed {analysed.tonic.name} {analysed.mode}, final bass "
                                  f"{key_name(last_bass, 'major').split()[0]}")
    declared = next(iter(parts[0].recurse().getElementsByClass(m21key.KeySignature)), None)
    if isinstance(declared, m21key.Key):
        declared = key_name(declared.tonic.pitchClass, declared.mode)
    elif declared is not None:
        declared = f"{declared.sharps} sharps"
    meta = {
        "title": score.metadata.title if score.metadata else "",
        "declared_key": declared,
        "analysed_key": key_name(analysed.tonic.pitchClass, analysed.mode),
        "key_correlation": round(float(analysed.correlationCoefficient), 4),
        **dict(counts),
    }
    return Chorale(pitch, onset, fermata, steps_per_bar=steps_per_bar, pickup=pickup,
                   tonic=analysed.tonic.pitchClass, mode=analysed.mode, name=name, meta=meta)


def chorale_files():
    """[(name, music21 corpus path, title)] of the chorale list in Riemenschneider order."""
    from music21.corpus.chorales import ChoraleListRKBWV

    listing = ChoraleListRKBWV().byRiemenschneider
    return [(f"r{number:03d}_bwv{listing[number]['bwv']}", f"bach/bwv{listing[number]['bwv']}",
             listing[number]["title"]) for number in sorted(listing)]


def parse_corpus(progress=None):
    """Parse, normalise and deduplicate every chorale.

    progress: optional callable(done, total). Returns (chorales, skipped, examples):
    kept normalised Chorales in corpus order, Counter reason -> count, and
    reason -> up to 5 "name: detail" lines.
    """
    from music21 import corpus

    files = chorale_files()
    kept, skipped, examples, seen = [], Counter(), {}, {}

    def skip(name, reason, detail=""):
        skipped[reason] += 1
        if len(examples.setdefault(reason, [])) < 5:
            examples[reason].append(f"{name}: {detail}" if detail else name)

    vocab = Vocab()
    for i, (name, path, title) in enumerate(files):
        if progress is not None:
            progress(i, len(files))
        try:
            score = corpus.parse(path)
        except Exception as e:  # music21 raises many kinds on a bad file
            skip(name, "parse_error", f"{type(e).__name__}: {e}")
            continue
        try:
            chorale = normalise(parse_score(score, name))
        except Skip as s:
            skip(name, s.reason, s.detail)
            continue
        sounding = chorale.pitch[chorale.pitch != REST]
        if sounding.min() < vocab.pitch_min or sounding.max() > vocab.pitch_max:
            skip(name, "out_of_range", f"{sounding.min()}..{sounding.max()}")
            continue
        chorale.meta["title"] = title
        digest = hashlib.sha256(chorale.pitch.tobytes() + chorale.onset.tobytes()).hexdigest()
        if digest in seen:
            skip(name, "duplicate", f"of {seen[digest]}")
            continue
        seen[digest] = name
        kept.append(chorale)
    if progress is not None:
        progress(len(files), len(files))
    return kept, skipped, examples


# -- splits -------------------------------------------------------------------------------

def _hymn(title):
    return re.sub(r"[^a-z]+", " ", title.casefold().replace("’", "")).strip()


def split_names(chorales, seed=0, split=DEFAULT_SPLIT):
    """{"train", "valid", "test": [names]} with every hymn tune in one split."""
    if len(split) != 3 or min(split) < 0 or abs(sum(split) - 1.0) > 1e-9:
        raise ValueError(f"split must be three fractions summing to 1, got {split}")
    groups = {}
    for c in chorales:
        groups.setdefault(_hymn(c.meta.get("title", c.name) or c.name), []).append(c.name)

    def rank(hymn):
        return hashlib.sha256(f"{seed}\0{hymn}".encode()).hexdigest()

    n = len(chorales)
    quota = {"test": round(split[2] * n), "valid": round(split[1] * n)}
    out = {name: [] for name in SPLITS}
    for hymn in sorted(groups, key=rank):
        target = next((s for s in ("test", "valid") if len(out[s]) < quota[s]), "train")
        out[target].extend(groups[hymn])
    order = {c.name: i for i, c in enumerate(chorales)}
    return {s: sorted(names, key=order.get) for s, names in out.items()}


# -- the corpus and its cache -------------------------------------------------------------

@dataclass
class Corpus:
    """Normalised chorales by split, the vocabulary and the build report."""

    train: list
    valid: list
    test: list
    vocab: Vocab
    report: dict

    def split(self, name):
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)

    @property
    def augment_ranges(self):
        """Each voice's range in the train split's original keys: the bounds of augmentation."""
        return [tuple(r) for r in self.report["augment_ranges"]]

    def chorales(self, name, augmented=False):
        """The split's chorales; augmented=True: each in every key within voice ranges."""
        chorales = self.split(name)
        if not augmented:
            return list(chorales)
        ranges = self.augment_ranges
        return [a for c in chorales for a in augment(c, ranges)]

    def sequences(self, name, augmented=False):
        """Token ids per chorale, [np.ndarray int32], each <start> <key> ... <end>."""
        return [encode_chorale(c, self.vocab) for c in self.chorales(name, augmented)]

    def stream(self, name, augmented=False):
        """All of a split's token ids in one array (chorales in corpus order)."""
        return np.concatenate(self.sequences(name, augmented))


def _write_cache(out_dir, chorales, skipped, examples, seconds):
    pitch = np.concatenate([c.pitch for c in chorales]).astype(np.int8)  # (N, 4): MIDI fits int8
    onset = np.concatenate([c.onset for c in chorales])
    fermata = np.concatenate([c.fermata for c in chorales])
    offsets = np.cumsum([0] + [c.n_steps for c in chorales])
    records = [{"name": c.name, "steps_per_bar": c.steps_per_bar, "pickup": c.pickup, "tonic": c.tonic,
                "mode": c.mode, "transpose": c.transpose, "meta": c.meta} for c in chorales]
    import music21

    header = {"format": FORMAT_VERSION, "music21": music21.__version__, "parse_seconds": round(seconds, 1),
              "skipped": dict(sorted(skipped.items())), "skipped_examples": dict(sorted(examples.items())),
              "chorales": records}
    with atomic_path(out_dir / "grids.npz", suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, pitch=pitch, onset=onset, fermata=fermata, offsets=offsets)
    write_json(out_dir / "chorales.json", header)  # written last: its presence marks a complete cache


def _read_cache(out_dir):
    header = json.loads((out_dir / "chorales.json").read_text(encoding="utf-8"))
    if header.get("format") != FORMAT_VERSION:
        raise CorpusError(f"cache {out_dir} has format {header.get('format')}, expected {FORMAT_VERSION}")
    with np.load(out_dir / "grids.npz") as z:
        pitch, onset, fermata, offsets = z["pitch"], z["onset"], z["fermata"], z["offsets"]
    chorales = []
    for i, rec in enumerate(header["chorales"]):
        a, b = offsets[i], offsets[i + 1]
        chorales.append(Chorale(pitch[a:b].astype(np.int16), onset[a:b], fermata[a:b],
                                steps_per_bar=rec["steps_per_bar"], pickup=rec["pickup"], tonic=rec["tonic"],
                                mode=rec["mode"], name=rec["name"], transpose=rec["transpose"], meta=rec["meta"]))
    return chorales, header


def build_corpus(out_dir=None, seed=0, force=False, split=DEFAULT_SPLIT, progress=None):
    """Parse the chorales once (cached under out_dir), split them, and report.

    out_dir: default data/cache/music/ in the repository. A cache of this format
    is reused unless force; the split is recomputed from the seed every time
    (it is cheap). progress: optional callable(done, total) while parsing.

    Returns
    -------
    dict: counts kept and skipped (per reason, with examples), the split (chorale
    names and step counts), voice ranges, the cache files and timings.
    """
    return load_corpus(out_dir, seed=seed, force=force, split=split, progress=progress).report


def load_corpus(out_dir=None, seed=0, force=False, split=DEFAULT_SPLIT, progress=None):
    """The Corpus, parsed on first use (about 25 s, more on a busy machine) then from the cache."""
    start = time.perf_counter()
    out_dir = Path(DEFAULT_CACHE_DIR if out_dir is None else out_dir).expanduser()
    cached = (out_dir / "chorales.json").is_file() and (out_dir / "grids.npz").is_file()
    if cached and not force:
        try:
            chorales, header = _read_cache(out_dir)
        except CorpusError:
            cached = False
    if not cached or force:
        t0 = time.perf_counter()
        chorales, skipped, examples = parse_corpus(progress)
        if not chorales:
            raise CorpusError(f"no chorale survived parsing: skipped {dict(skipped)}")
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_cache(out_dir, chorales, skipped, examples, time.perf_counter() - t0)
        chorales, header = _read_cache(out_dir)
        from_cache = False
    else:
        from_cache = True

    names = split_names(chorales, seed, split)
    by_name = {c.name: c for c in chorales}
    parts = {s: [by_name[n] for n in names[s]] for s in SPLITS}
    for s in SPLITS:
        if not parts[s]:
            raise CorpusError(f"the {s} split is empty ({len(chorales)} chorales, split={split})")
    ranges = voice_ranges([c.transposed(-c.transpose) for c in parts["train"]])  # original keys
    vocab = Vocab()
    report = {
        "format": FORMAT_VERSION,
        "cache_dir": str(out_dir),
        "from_cache": from_cache,
        "music21": header["music21"],
        "parse_seconds": header["parse_seconds"],
        "seed": seed,
        "split": list(split),
        "source_chorales": len(chorales) + sum(header["skipped"].values()),
        "kept": len(chorales),
        "skipped": header["skipped"],
        "skip_reasons": {r: SKIP_REASONS[r] for r in header["skipped"]},
        "skipped_examples": header["skipped_examples"],
        "modes": dict(Counter(c.mode for c in chorales)),
        "meters": dict(Counter(f"{c.steps_per_bar} steps/bar" for c in chorales)),
        "quantisation": dict(sum((Counter({k: v for k, v in c.meta.items() if k.startswith(("notes_", "grace_"))})
                                  for c in chorales), Counter())),
        "vocab_size": vocab.size,
        "normalised_pitch_range": [int(min(c.pitch[c.pitch != REST].min() for c in chorales)),
                                   int(max(c.pitch.max() for c in chorales))],
        "augment_ranges": ranges,
        "splits": {s: {"chorales": len(parts[s]), "steps": int(sum(c.n_steps for c in parts[s])),
                       "names": names[s]} for s in SPLITS},
        "seconds": round(time.perf_counter() - start, 3),
    }
    return Corpus(parts["train"], parts["valid"], parts["test"], vocab, report)


# -- the n-gram baseline -------------------------------------------------------------------

def ngram_baseline(corpus, orders=range(1, 21), augmented=False):
    """Kneser-Ney n-gram over the token stream: order chosen on valid, scored on test.

    A step is 5 tokens (6 under a fermata), so order 20 sees about 4 steps back.
    NLL per step = all bits of the test stream (delimiters, <start>, key and <end>
    included) / the test split's grid steps, so it compares with any model of the
    same grid whatever its tokenisation.
    """
    from suite.baselines import best_order

    train = corpus.stream("train", augmented)
    valid, test = corpus.stream("valid"), corpus.stream("test")
    fit = best_order(train, valid, orders, vocab_size=corpus.vocab.size)
    bits = fit["model"].bits_per_token(test, order=fit["best"])
    steps = corpus.report["splits"]["test"]["steps"]
    bits_per_step = bits * len(test) / steps
    return {
        "order": fit["best"],
        "augmented_train": augmented,
        "train_tokens": int(len(train)),
        "test_tokens": int(len(test)),
        "test_steps": int(steps),
        "valid_bits_per_token": {int(k): round(v, 4) for k, v in fit["valid_bits"].items()},
        "test_bits_per_token": round(bits, 4),
        "test_bits_per_step": round(bits_per_step, 4),
        "test_nats_per_step": round(bits_per_step * np.log(2), 4),
    }
