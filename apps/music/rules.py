"""The rules of four-part writing that composing and harmonising keep, and the phrase plan they serve.

The rule table (one place; kernels/chorale.py applies it inside the compiled
sampling loop, ranked and relaxed as its docstring says):

    voice ranges         S C4-G5, A G3-D5, T C3-G4, B E2-C4 (stats.VOICE_RANGES, what
                         `evaluate` counts as in range)
    spacing              at most an octave between S and A and between A and T
    crossing             no voice above the one written above it (unisons allowed)
    parallels            no parallel fifths or octaves between any two voices (as
                         stats._parallels counts them)
    direct intervals     no fifth or octave reached by S and B moving the same way
                         with a leap in the soprano
    melodic intervals    no leap wider than an octave, no tritone, in minor no
                         augmented second between the 6th and the raised 7th degree
    note length          no note held longer than a whole note, but under a fermata
    grammar              a hold continues the pitch the voice holds; no rests

The phrase plan (``plan``): where bars begin and where fermatas fall, forced
into the token stream so the network sees the phrase ends as it does in Bach's
chorales (DeepBach conditions on fermatas the same way), and the cadence each
fermata asks for as chords at given steps (``_mark_cadence``); ``melody_plan`` is the
same for a harmonisation, its phrase ends taken from the tune.
"""
from dataclasses import dataclass

import numpy as np

from suite.apps.music.stats import VOICE_RANGES

MAX_UPPER_SPACING = 12
MAX_LEAP = 12
MAX_NOTE = 16  # steps: no note longer than a whole note outside a fermata


def rule_array(parallels=True, direct=True, tritone=True, augmented_second=True):
    """The int64 table kernels/chorale.py reads (its layout is documented there)."""
    flat = [p for lo_hi in VOICE_RANGES for p in lo_hi]
    return np.array(flat + [MAX_UPPER_SPACING, int(parallels), int(direct), MAX_LEAP, int(tritone),
                            int(augmented_second), MAX_NOTE], dtype=np.int64)


def _pcs(*degrees):
    """A 12-bit set of pitch classes relative to the tonic."""
    return sum(1 << (d % 12) for d in degrees)


ANY = _pcs(*range(12))
# a cadence's chords: (bass pitch class, the upper voices' pitch classes), relative to the tonic
TONIC = {"major": (0, _pcs(0, 4, 7)), "minor": (0, _pcs(0, 3, 7))}
TONIC_FINAL = {"major": (0, _pcs(0, 4, 7)), "minor": (0, _pcs(0, 3, 4, 7))}  # a Picardy third may end a minor piece
DOMINANT = (7, _pcs(7, 11, 2))           # V with the leading tone (raised in minor)
DOMINANT_SEVENTH = (7, _pcs(7, 11, 2, 5))


@dataclass
class Plan:
    """A chorale's shape before a note is chosen."""

    steps_per_bar: int
    pickup: int
    fermata: np.ndarray       # (n_steps,) bool
    cadences: list            # [(first step of the fermata, kind)]
    bass_pc: np.ndarray       # (n_steps,) int: the bass's pitch class asked for (relative to the tonic), -1 none
    upper_pcs: np.ndarray     # (n_steps,) int: 12-bit set the upper voices must take, with bass_pc

    @property
    def n_steps(self):
        return len(self.fermata)


def plan(bars, mode, rng, steps_per_bar=16, beat=4, half_share=0.4, pickup=None, soprano_pcs=None):
    """The plan of a chorale of ``bars`` bars as Bach wrote most of them: a quarter-note pickup (``pickup`` steps
    when given: 0 under a primer, whose first step is a downbeat), phrases of two bars (the first of three when
    the count is odd) ending with a fermata on the third beat, the last bar shortened by the pickup, so the piece
    is exactly ``bars`` bars. Each inner phrase ends on an authentic cadence
    (V7 through the beat before, then I on the fermata) or, with probability ``half_share``, a half cadence (V on the fermata); the last
    on an authentic one. soprano_pcs: a given melody's pitch classes relative to the tonic (-1 a rest) for its
    steps (a primer): a phrase end inside it takes the cadence its note allows (as ``melody_plan``)."""
    if bars < 1:
        raise ValueError(f"bars must be at least 1, got {bars}")
    pickup = beat if pickup is None else int(pickup)
    n_steps = bars * steps_per_bar
    ends = list(range(bars, 0, -2))[::-1]  # the bar each phrase ends in (1-based)
    if bars > 1 and ends[0] == 1:
        ends = ends[1:]  # no one-bar first phrase: it joins the next
    fermata = np.zeros(n_steps, bool)
    bass = np.full(n_steps, -1, np.int64)
    upper = np.full(n_steps, ANY, np.int64)
    cadences = []
    for k, end_bar in enumerate(ends):
        start = pickup + (end_bar - 1) * steps_per_bar + 2 * beat  # beat 3 of the phrase's last bar
        last = k == len(ends) - 1
        length = n_steps - start if last else beat
        fermata[start:start + length] = True
        kind = "authentic" if last or rng.random() >= half_share else "half"
        if soprano_pcs is not None and start < len(soprano_pcs):
            kind = _cadence_allowed(int(soprano_pcs[start]), mode, last)
        cadences.append((start, kind))
        _mark_cadence(kind, start, start + length, last, mode, bass, upper, beat)
    return Plan(steps_per_bar, pickup, fermata, cadences, bass, upper)


def _mark_cadence(kind, start, stop, last, mode, bass, upper, beat, soprano_pcs=None):
    """Write the chords a cadence asks for into bass/upper: authentic, the tonic chord over [start, stop) after
    V(7) over the dominant through the beat before; half, V over [start, stop); none, nothing. With soprano_pcs
    (a given tune), the upper voices are held to V7 the beat before only where the tune's notes there fit it."""
    if kind == "authentic":
        bass[start:stop], upper[start:stop] = TONIC_FINAL[mode] if last else TONIC[mode]
        before = max(start - beat, 0)
        bass[before:start] = DOMINANT_SEVENTH[0]
        fits = [(DOMINANT_SEVENTH[1] >> int(p)) & 1 for p in soprano_pcs[before:start] if p >= 0] \
            if soprano_pcs is not None else [1]
        if fits and all(fits):
            upper[before:start] = DOMINANT_SEVENTH[1]
    elif kind == "half":
        bass[start:stop], upper[start:stop] = DOMINANT


def _cadence_allowed(pc, mode, last):
    """The cadence a melody note (pitch class relative to the tonic, -1 a rest) allows at a phrase end."""
    if pc >= 0 and ((TONIC_FINAL[mode] if last else TONIC[mode])[1] >> pc) & 1:
        return "authentic"
    if pc >= 0 and (DOMINANT[1] >> pc) & 1:
        return "half"
    return "none"


def token_tables(vocab):
    """(token_pitch, token_onset) (V,) of a music Vocab for kernels/chorale.py: a voice token's MIDI pitch (-1 a
    rest, -2 not a voice token) and 1 for a new note or rest, 0 for a hold."""
    from suite.apps.music.tokens import HOLD_MARK, REST_TOKEN

    pitch = np.full(vocab.size, -2, np.int64)
    onset = np.zeros(vocab.size, np.int64)
    for i, tok in enumerate(vocab.tokens):
        if tok == REST_TOKEN:
            pitch[i], onset[i] = -1, 1
        elif tok.rstrip(HOLD_MARK).isdigit():
            pitch[i], onset[i] = int(tok.rstrip(HOLD_MARK)), 0 if tok.endswith(HOLD_MARK) else 1
    return pitch, onset


PHRASE_NOTE = 8  # steps: a melody note this long (a half note) or longer, past the first bar, ends a phrase


def melody_plan(steps_per_bar, mode, onsets, soprano_pcs, beat=4):
    """The plan of a harmonisation: phrase ends where the melody rests on a long note (PHRASE_NOTE steps or more,
    after its first bar) and at its last note, each under a fermata that asks for a cadence the tune allows: the
    tonic chord (bass on the tonic) when the melody's note belongs to it, after V7 over the dominant through the
    beat before (where the tune's notes there fit V7); else V (a half cadence) when the note belongs to V; else
    nothing. onsets (n,): the melody's note starts; soprano_pcs (n,): its pitch classes relative to the tonic
    (-1 a rest)."""
    n_steps = len(onsets)
    starts = np.flatnonzero(onsets)
    ends = np.append(starts[1:], n_steps)
    phrase_starts = [int(a) for a, b in zip(starts, ends) if b - a >= PHRASE_NOTE and a >= steps_per_bar
                     and soprano_pcs[a] >= 0] + [int(starts[-1])]
    fermata = np.zeros(n_steps, bool)
    bass = np.full(n_steps, -1, np.int64)
    upper = np.full(n_steps, ANY, np.int64)
    cadences = []
    for start in sorted(set(phrase_starts)):
        last = start == int(starts[-1])
        stop = n_steps if last else int(ends[np.searchsorted(starts, start)])
        fermata[start:stop] = True
        kind = _cadence_allowed(int(soprano_pcs[start]), mode, last)
        cadences.append((start, kind))
        _mark_cadence(kind, start, stop, last, mode, bass, upper, beat, soprano_pcs)
    return Plan(steps_per_bar, 0, fermata, cadences, bass, upper)
