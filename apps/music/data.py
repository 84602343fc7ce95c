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

The grid and keys live in grid.py, the tokens in tokens.py (both re-exported
here). Offsets and durations are rounded to the nearest 16th (a handful of 32nds
and grace notes are lost; the report counts them). Repeats are not expanded.
Every kept chorale is normalised to C major / A minor (grid.normalise; the shift
is recorded). Training may add transpositions to other keys (grid.augment):
every shift in [-6, 5] that keeps each voice inside the range that voice spans
in the train split's original keys.

Splits are by hymn: chorales whose titles agree (case, punctuation and spacing
aside) are harmonisations of one tune and go to the same split, so no test
melody was seen in training. Groups are ordered by a keyed hash of (seed, title)
and dealt to test, then valid, until each holds its share of chorales (default
10% and 10%); the rest train.
"""
import hashlib
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from suite.apps.music.grid import (
    MODES, REST, STEPS_PER_QUARTER, VOICES, Chorale, augment, diatonic_pitch_classes, key_name, normalise,
    parse_key, voice_ranges,
)
from suite.apps.music.tokens import (
    BAR, END, FERMATA, HOLD_MARK, PAD, PITCH_MAX, PITCH_MIN, REST_TOKEN, START, STEP, Vocab, chorale_tokens,
    decode_tokens, encode_chorale, key_token,
)
from suite.databuild import REPORT, DataError, data_dir, read_npz, read_report, write_npz, write_report

__all__ = [  # the app's one import: the grid and the tokens are re-exported from here
    "MODES", "REST", "STEPS_PER_QUARTER", "VOICES", "Chorale", "augment", "diatonic_pitch_classes", "key_name",
    "normalise", "parse_key", "voice_ranges",
    "BAR", "END", "FERMATA", "HOLD_MARK", "PAD", "PITCH_MAX", "PITCH_MIN", "REST_TOKEN", "START", "STEP", "Vocab",
    "chorale_tokens", "decode_tokens", "encode_chorale", "key_token",
    "SPLITS", "SKIP_REASONS", "DEFAULT_DATA_DIR", "DataError", "Skip", "Corpus", "parse_score", "chorale_files",
    "parse_corpus", "split_names", "build_corpus", "load_corpus", "ngram_baseline",
]
SPLITS = ("train", "valid", "test")
FORMAT_VERSION = 1
DEFAULT_SPLIT = (0.8, 0.1, 0.1)
DEFAULT_DATA_DIR = data_dir("music")  # data/music under the working folder, never inside the package
LEGACY_REPORTS = ("chorales.json",)  # the cache header's name before the suite had one report file

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
            # forceSource: never read or write music21's pickle cache, which lives in the shared /tmp/music21
            # (a pickle another local user left there would run code here)
            score = corpus.parse(path, forceSource=True)
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
    return re.sub(r"[^0-9a-z]+", " ", title.casefold().replace("’", "")).strip()


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
    for name in (REPORT, *LEGACY_REPORTS):  # no marker may vouch for the grids while they are rewritten
        (out_dir / name).unlink(missing_ok=True)
    write_npz(out_dir / "grids.npz", {"pitch": pitch, "onset": onset, "fermata": fermata, "offsets": offsets})
    write_report(out_dir, header, FORMAT_VERSION)  # written last: its presence marks a complete cache


def _cached(out_dir):
    """Whether out_dir holds a complete cache (its report, or an older build's chorales.json, and the grids)."""
    return any((out_dir / name).is_file() for name in (REPORT, *LEGACY_REPORTS)) and (out_dir / "grids.npz").is_file()


def _read_cache(out_dir):
    header = read_report(out_dir, FORMAT_VERSION, legacy=LEGACY_REPORTS, app="music")
    z = read_npz(out_dir / "grids.npz", what="music corpus (`suite music data build --force`)")
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

    out_dir: default data/music/ under the working folder. A cache of this format
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
    out_dir = Path(DEFAULT_DATA_DIR if out_dir is None else out_dir).expanduser()
    cached = _cached(out_dir)
    if cached and not force:
        try:
            chorales, header = _read_cache(out_dir)
        except DataError:  # another format or a damaged cache: parse again
            cached = False
    if not cached or force:
        t0 = time.perf_counter()
        chorales, skipped, examples = parse_corpus(progress)
        if not chorales:
            raise DataError(f"no chorale survived parsing: skipped {dict(skipped)}")
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
            raise DataError(f"the {s} split is empty ({len(chorales)} chorales, split={split})")
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
