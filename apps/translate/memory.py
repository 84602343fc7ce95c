"""The translation memory: the training pairs themselves, looked up by edit distance.

Every CAT tool (translate-toolkit's `pretranslate --tm`, OmegaT, Poedit) offers
a stored human translation when a new message is (nearly) one already
translated; the model is for the rest. The shipped model carries its training
pairs (zlib-compressed in its config's meta) and, for a message whose nearest
stored source is at least ``threshold`` similar (rapidfuzz's normalised
Levenshtein similarity, 0..1; the threshold chosen on validation and kept in
the card), gives the stored translation, provided it holds exactly the
message's placeholders; otherwise the model translates. The plain memory
(always the nearest, no threshold) is also the baseline the card reports.
"""
import base64
import gc
import json
import zlib


def _well_formed(pairs):
    """Whether JSON-read ``pairs`` is {lang: [[source, target], ...]} of strings. Plain loops: the shipped
    memory's 82,000 pairs took 70 ms to check with nested generators."""
    if not isinstance(pairs, dict):
        return False
    for rows in pairs.values():
        if not isinstance(rows, list):
            return False
        for p in rows:
            if type(p) is not list or len(p) != 2 or type(p[0]) is not str or type(p[1]) is not str:
                return False
    return True


class Memory:
    def __init__(self, pairs):
        """pairs: {lang: [(source, target), ...]} (or two-item lists); the first target of a repeated source is
        kept."""
        self.pairs, self._exact = {}, {}
        for lang, rows in pairs.items():
            seen = {}
            for s, t in rows:
                seen.setdefault(s, t)
            self._exact[lang] = seen
            self.pairs[lang] = list(seen.items())
        self._sources = {lang: list(seen) for lang, seen in self._exact.items()}

    @classmethod
    def from_rows(cls, rows):
        """From corpus rows ({lang, src, tgt})."""
        pairs = {}
        for r in rows:
            pairs.setdefault(r["lang"], []).append((r["src"], r["tgt"]))
        return cls(pairs)

    def __len__(self):
        return sum(len(v) for v in self.pairs.values())

    def nearest(self, text, lang, cutoff=0.0):
        """(similarity, source, target) of the stored pair nearest ``text``, or None (nothing >= cutoff)."""
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein

        exact = self._exact.get(lang, {}).get(text)
        if exact is not None:
            return 1.0, text, exact
        choices = self._sources.get(lang)
        if not choices:
            return None
        best = process.extractOne(text, choices, scorer=Levenshtein.normalized_similarity,
                                  score_cutoff=cutoff or None)
        if best is None:
            return None
        return float(best[1]), best[0], self.pairs[lang][best[2]][1]

    def to_meta(self):
        blob = json.dumps(self.pairs, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return base64.b64encode(zlib.compress(blob, 9)).decode("ascii")

    @classmethod
    def from_meta(cls, text):
        # Python's cyclic GC paused meanwhile: these 164,000 new lists and tuples hold no cycles, yet they set off
        # full collections that walk everything loaded before (numba's objects): ~80 ms of `suite translate`
        enabled = gc.isenabled()
        gc.disable()
        try:
            pairs = json.loads(zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True)))
            if not _well_formed(pairs):
                raise ValueError("not a memory of {lang: [[source, target], ...]}")
            return cls(pairs)
        finally:
            if enabled:
                gc.enable()
