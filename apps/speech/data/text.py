"""Transcripts: the CTC alphabet, normalisation, label ids, random digit/command utterances."""
import unicodedata

import numpy as np

from suite.ctc_task import Alphabet

ALPHABET = ("_", " ", "'") + tuple("abcdefghijklmnopqrstuvwxyz")  # id 0 is the CTC blank
BLANK = 0
_CHAR_ID = {c: i for i, c in enumerate(ALPHABET) if i != BLANK}
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
VOCABULARY = DIGIT_WORDS + ("oh",) + COMMANDS
_OH_FOR_ZERO = 0.3    # how often a spoken zero is "oh" (as in phone numbers)
_KINDS = (0.5, 0.25, 0.25)  # digit string, commands, command followed by digits
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"})


def normalize(text):
    """Lower case, only the alphabet's characters, single spaces.

    Accents are dropped (cafe), curly quotes become "'", each digit is spelled
    out as its word ("42" -> "four two", as digit strings are read), every other
    character becomes a space, and apostrophes that do not sit inside a word go.
    """
    text = unicodedata.normalize("NFKD", str(text)).translate(_QUOTES).lower()
    out = []
    for ch in text:
        if unicodedata.combining(ch):
            continue
        if ch.isdigit() and ch in "0123456789":
            out.append(f" {DIGIT_WORDS[int(ch)]} ")
        else:
            out.append(ch if ch in _CHAR_ID else " ")
    words = (w.strip("'") for w in "".join(out).split())
    return " ".join(w for w in words if w)


def encode(text):
    """Ids of normalize(text): np.ndarray [shape=(L,), dtype=int32], never containing the blank."""
    return np.array([_CHAR_ID[c] for c in normalize(text)], dtype=np.int32)


def decode(ids, collapse=False):
    """Characters of ``ids`` with blanks dropped; ``collapse=True`` first merges repeats (CTC best path)."""
    ids = np.asarray(ids, dtype=np.int64).ravel()
    if ids.size and (ids.min() < 0 or ids.max() >= len(ALPHABET)):
        raise ValueError(f"ids must lie in [0, {len(ALPHABET)}), got min {ids.min()} max {ids.max()}")
    if collapse and ids.size:
        ids = ids[np.concatenate([[True], ids[1:] != ids[:-1]])]
    return "".join(ALPHABET[i] for i in ids if i != BLANK)


CTC_ALPHABET = Alphabet(ALPHABET, encode, decode)  # what suite.ctc_task trains and decodes with


def _digit(rng):
    d = int(rng.integers(10))
    return "oh" if d == 0 and rng.random() < _OH_FOR_ZERO else DIGIT_WORDS[d]


def random_transcript(rng):
    """One utterance: 1-7 connected digits (half), 1-3 commands, or a command then 1-4 digits."""
    kind = rng.choice(3, p=_KINDS)
    if kind == 0:
        words = [_digit(rng) for _ in range(int(rng.integers(1, 8)))]
    elif kind == 1:
        words = [COMMANDS[int(rng.integers(len(COMMANDS)))] for _ in range(int(rng.integers(1, 4)))]
    else:
        words = [COMMANDS[int(rng.integers(len(COMMANDS)))]] + [_digit(rng) for _ in range(int(rng.integers(1, 5)))]
    return " ".join(words)
