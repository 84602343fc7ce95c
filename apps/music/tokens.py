"""Chorales as a token stream for an LSTM (BachBot-like, Liang 2016), and back.

Per chorale::

    <start> <C major> || S A T B | S A T B | (.) S A T B ... <end>

    "||"    a step that begins a bar (a downbeat); "|" any other step. The bar
            delimiter gives the network the metre; the decoder recovers
            steps_per_bar and the pickup from it.
    "(.)"   the step lies under a fermata (after the delimiter, before S).
    voice   "60" a new note (MIDI pitch), "60~" the same pitch held from the step
            before, "R" a rest. Always four, in the order S, A, T, B.
    key     one of 24 "<C major>" ... "<B minor>" after <start>: the key the grid
            is in (C major or A minor unless augmented).

A step is 5 tokens (6 under a fermata). The vocabulary is fixed (it does not
depend on data), so ids mean the same in every build.
"""
import re
from collections import Counter

import numpy as np

from suite.apps.music.grid import MODES, REST, Chorale, key_name, parse_key

PITCH_MIN, PITCH_MAX = 28, 91  # E1..G6: the normalised corpus spans 31..84; room for augmentation
VOCAB_FORMAT = 1


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
        return {"format": VOCAB_FORMAT, "pitch_min": self.pitch_min, "pitch_max": self.pitch_max,
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
