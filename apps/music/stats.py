"""Statistics of a four-part chorale, to set compositions beside Bach's.

``chorale_stats(grid, key)`` gives, for one chorale (notes counted at their onsets):

    pc_overlap          histogram intersection, sum_k min(h_k, r_k), of the chorale's
                        pitch-class histogram relative to its tonic (weighted by
                        sounding steps, all voices) with the corpus's for that mode
                        (REFERENCE_PC_HISTOGRAM); 1 = identical shares
    in_key              share of notes whose pitch class is in the key: the major
                        scale, or for minor the natural minor plus the raised 6th
                        and 7th (``grid.diatonic_pitch_classes``)
    in_range            share of notes inside their voice's range (VOICE_RANGES:
                        S C4-G5, A G3-D5, T C3-G4, B E2-C4); in_range_S ... per voice
    crossings_per_100   steps on which some voice sounds below the next lower one
                        (S<A, A<T or T<B), per 100 steps
    parallel_fifths_per_100, parallel_octaves_per_100
                        per 100 steps, summed over all 6 voice pairs. For a pair,
                        take the steps where either voice starts a note (or a
                        rest); between two consecutive such steps both voices must
                        sound at each, both must move, in the same direction, and
                        the interval (upper minus lower, modulo 12) must be 7 at
                        both (fifths, compound ones included) or 0 at both (octaves
                        and unisons). Crossed voices give negative intervals and
                        never count.
    final_tonic         1 if the final sonority (the last step, all voices
                        sounding) has the tonic in the bass and only pitch classes
                        of the tonic triad (either third in minor: Picardy)
    cadence             1 if final_tonic and, at some step under the bass's last
                        note on a pitch class other than the tonic, that note is
                        the 5th degree with the upper voices inside V7 (1 3 5 7 of
                        the dominant, with the leading tone) or the 4th degree with
                        them inside IV (its 3rd major or minor): an authentic or
                        plagal cadence. Any step, so a suspension resolving over
                        the bass note still counts.

``summarise(stats)`` averages a list of such dicts.
"""
import numpy as np

from suite.apps.music.grid import REST, VOICES, diatonic_pitch_classes, parse_key

VOICE_RANGES = ((60, 79), (55, 74), (48, 67), (40, 60))  # S C4-G5, A G3-D5, T C3-G4, B E2-C4 (MIDI)

# Pitch-class shares relative to the tonic (index 0 = tonic), weighted by sounding
# steps over all four voices: `reference_histograms(corpus.train)` of the
# normalised chorales (seed 0, 219 train chorales), rounded to 4 digits.
REFERENCE_PC_HISTOGRAM = {
    "major": (0.198, 0.0073, 0.1361, 0.0012, 0.139, 0.084, 0.0152, 0.2095, 0.0069, 0.1089, 0.0073, 0.0865),
    "minor": (0.1864, 0.0017, 0.118, 0.1397, 0.0154, 0.1092, 0.0075, 0.2023, 0.0545, 0.0236, 0.0983, 0.0433),
}


def _key(grid, key):
    if key is None:
        return grid.key
    if isinstance(key, str):
        return parse_key(key)
    tonic, mode = key
    return int(tonic) % 12, mode


def pitch_class_histogram(grid, key=None):
    """(12,) shares of sounding steps per pitch class relative to the tonic (sums to 1)."""
    tonic, _ = _key(grid, key)
    sounding = grid.pitch[grid.pitch != REST].astype(np.int64)
    counts = np.bincount((sounding - tonic) % 12, minlength=12).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def reference_histograms(chorales):
    """{mode: (12,) list} pitch-class histogram relative to the tonic over chorales of each mode."""
    out = {}
    for mode in ("major", "minor"):
        counts = np.zeros(12)
        for c in chorales:
            if c.mode == mode:
                counts += pitch_class_histogram(c) * np.count_nonzero(c.pitch != REST)
        out[mode] = (counts / max(counts.sum(), 1.0)).round(4).tolist()
    return out


def _parallels(grid):
    """(fifths, octaves): counts over all voice pairs, as the module docstring defines them."""
    fifths = octaves = 0
    for upper in range(4):
        for lower in range(upper + 1, 4):
            events = np.flatnonzero(grid.onset[:, upper] | grid.onset[:, lower])  # (E,)
            hi, lo = grid.pitch[events, upper].astype(np.int64), grid.pitch[events, lower].astype(np.int64)
            sounding = (hi != REST) & (lo != REST)
            both = sounding[:-1] & sounding[1:]  # (E-1,)
            move_hi, move_lo = np.diff(hi), np.diff(lo)
            same_way = (move_hi != 0) & (np.sign(move_hi) == np.sign(move_lo))
            interval = hi - lo
            kind = np.where(interval > 0, interval % 12, -1)  # crossed or unison: see below
            kind = np.where(interval == 0, 0, kind)
            ok = both & same_way
            fifths += int(np.count_nonzero(ok & (kind[:-1] == 7) & (kind[1:] == 7)))
            octaves += int(np.count_nonzero(ok & (kind[:-1] == 0) & (kind[1:] == 0)))
    return fifths, octaves


def _final_tonic(grid, tonic, mode):
    last = grid.pitch[-1]
    if np.any(last == REST):
        return False
    thirds = {4} if mode == "major" else {3, 4}
    triad = {tonic % 12} | {(tonic + t) % 12 for t in thirds} | {(tonic + 7) % 12}
    return int(last[3]) % 12 == tonic and {int(p) % 12 for p in last} <= triad


def _cadence(grid, tonic, mode):
    if not _final_tonic(grid, tonic, mode):
        return False
    starts, ends, pitches = grid.notes(3)
    before = np.flatnonzero(pitches[:-1] % 12 != tonic)  # a re-struck tonic (or its octave) is still the end
    if len(before) == 0:
        return False
    last = before[-1]
    start, end, bass = starts[last], ends[last], int(pitches[last]) % 12
    chords = {(tonic + 7) % 12: {(tonic + s) % 12 for s in (7, 11, 2, 5)},  # V(7), leading tone raised
              (tonic + 5) % 12: {(tonic + s) % 12 for s in (5, 8, 9, 0)}}  # IV or iv
    if bass not in chords:
        return False
    for t in range(start, end):
        upper = grid.pitch[t, :3]
        if np.all(upper != REST) and {int(p) % 12 for p in upper} <= chords[bass]:
            return True
    return False


def chorale_stats(grid, key=None):
    """Statistics of one chorale (see the module docstring) as a dict of floats.

    key: (tonic pitch class, mode), a name like "D major", or None for the grid's own.
    """
    tonic, mode = _key(grid, key)
    n = grid.n_steps
    in_key = diatonic_pitch_classes(tonic, mode)
    notes = [grid.notes(v)[2] for v in range(4)]
    all_notes = np.concatenate(notes)
    stats = {"steps": float(n), "notes": float(len(all_notes))}
    reference = np.asarray(REFERENCE_PC_HISTOGRAM[mode])
    stats["pc_overlap"] = float(np.minimum(pitch_class_histogram(grid, (tonic, mode)), reference).sum())
    stats["in_key"] = float(np.mean([p % 12 in in_key for p in all_notes])) if len(all_notes) else 0.0
    inside = [(p >= VOICE_RANGES[v][0]) & (p <= VOICE_RANGES[v][1]) for v, p in enumerate(notes)]
    stats["in_range"] = float(np.concatenate(inside).mean()) if len(all_notes) else 0.0
    for v, name in enumerate(VOICES):
        stats[f"in_range_{name}"] = float(inside[v].mean()) if len(inside[v]) else 0.0
    pitch = grid.pitch.astype(np.int64)
    sounding = pitch != REST
    crossed = (pitch[:, :-1] < pitch[:, 1:]) & sounding[:, :-1] & sounding[:, 1:]  # (T, 3) adjacent pairs
    stats["crossings_per_100"] = 100.0 * np.count_nonzero(crossed.any(axis=1)) / n
    fifths, octaves = _parallels(grid)
    stats["parallel_fifths_per_100"] = 100.0 * fifths / n
    stats["parallel_octaves_per_100"] = 100.0 * octaves / n
    stats["final_tonic"] = float(_final_tonic(grid, tonic, mode))
    stats["cadence"] = float(_cadence(grid, tonic, mode))
    return stats


def summarise(stats):
    """Means of each statistic over a list of chorale_stats dicts, plus "chorales": their number."""
    stats = list(stats)
    if not stats:
        raise ValueError("summarise needs at least one chorale's statistics")
    out = {"chorales": len(stats)}
    for name in stats[0]:
        out[name] = float(np.mean([s[name] for s in stats]))
    return out
