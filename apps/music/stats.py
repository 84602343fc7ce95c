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

    direct_per_100      direct (hidden) fifths and octaves into the outer voices per 100
                        steps: between consecutive events of S and B, both move the same
                        way into a fifth or octave (mod 12) that was not one before, the
                        soprano by more than a whole tone
    augmented_per_100   melodic augmented intervals per 100 steps, all voices: tritone
                        leaps (6 semitones; without spelling the diminished fifth counts
                        too) and, in minor, the step between the 6th and raised 7th degrees
    out_of_range        notes outside their voice's range (a count)
    cadence_authentic, cadence_half, cadence_plagal, cadence_none
                        shares of the phrase ends (the first step of each fermata run;
                        the last step when there is no fermata) by the chord there and
                        the bass before it: authentic (tonic chord over the tonic, the
                        bass's previous note the dominant), half (V over the dominant),
                        plagal (tonic chord, bass from the 4th degree), none otherwise
    note_lengths        (``note_length_histogram``) shares of note durations in 16ths,
                        bins 1, 2, 3, 4, 6, 8, 12, 16+ (others to the nearest bin below)

``summarise(stats)`` averages a list of such dicts. ``music21_parallels`` counts
parallels and direct intervals with music21's VoiceLeadingQuartet over the same
events, a second detector to check ours against.
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


def _pair_events(grid, upper, lower):
    """Consecutive events of a voice pair: (hi0, lo0, hi1, lo1) pitch arrays where both sound at both events."""
    events = np.flatnonzero(grid.onset[:, upper] | grid.onset[:, lower])  # (E,)
    hi, lo = grid.pitch[events, upper].astype(np.int64), grid.pitch[events, lower].astype(np.int64)
    sounding = (hi != REST) & (lo != REST)
    both = sounding[:-1] & sounding[1:]
    return hi[:-1][both], lo[:-1][both], hi[1:][both], lo[1:][both]


def _direct(grid):
    """Direct fifths and octaves into the outer voices (see the module docstring)."""
    hi0, lo0, hi1, lo1 = _pair_events(grid, 0, 3)
    move_hi, move_lo = hi1 - hi0, lo1 - lo0
    same_way = (move_hi != 0) & (np.sign(move_hi) == np.sign(move_lo))
    before, after = (hi0 - lo0) % 12, (hi1 - lo1) % 12
    perfect = ((after == 7) | (after == 0)) & (hi1 > lo1)
    return int(np.count_nonzero(same_way & perfect & (before != after) & (np.abs(move_hi) > 2)))


def _augmented(grid, tonic, mode):
    count = 0
    for v in range(4):
        pitches = grid.notes(v)[2]
        leaps = np.abs(np.diff(pitches))
        count += int(np.count_nonzero(leaps == 6))
        if mode == "minor":
            degree = (pitches - tonic) % 12
            pair = ((degree[:-1] == 8) & (degree[1:] == 11)) | ((degree[:-1] == 11) & (degree[1:] == 8))
            count += int(np.count_nonzero(pair & (leaps == 3)))
    return count


def phrase_ends(grid):
    """The steps that end phrases: the first step of each fermata run, or the last step when there is none."""
    fermata = grid.fermata.astype(bool)
    starts = np.flatnonzero(fermata & ~np.r_[False, fermata[:-1]])
    return starts if len(starts) else np.array([grid.n_steps - 1])


def cadence_kind(grid, step, tonic, mode):
    """"authentic", "half", "plagal" or "none": the chord at ``step`` and the bass note before it."""
    chord = grid.pitch[step]
    if np.any(chord == REST):
        return "none"
    pcs = {(int(p) - tonic) % 12 for p in chord}
    bass = (int(chord[3]) - tonic) % 12
    starts, _, pitches = grid.notes(3)
    earlier = pitches[starts < step]
    changed = [int(p - tonic) % 12 for p in earlier if (int(p) - tonic) % 12 != bass]
    before = changed[-1] if changed else None
    tonic_chord = {0, 7} | ({4} if mode == "major" else {3, 4})
    if bass == 0 and pcs <= tonic_chord:
        return "authentic" if before == 7 else "plagal" if before == 5 else "none"
    if bass == 7 and pcs <= {7, 11, 2}:
        return "half"
    return "none"


NOTE_LENGTH_BINS = (1, 2, 3, 4, 6, 8, 12, 16)


def note_length_histogram(grid):
    """(8,) shares of note durations (16ths) in NOTE_LENGTH_BINS, all voices; a length goes to the bin at or below."""
    counts = np.zeros(len(NOTE_LENGTH_BINS))
    for v in range(4):
        starts, ends, _ = grid.notes(v)
        bins = np.searchsorted(NOTE_LENGTH_BINS, ends - starts, side="right") - 1
        counts += np.bincount(np.clip(bins, 0, len(NOTE_LENGTH_BINS) - 1), minlength=len(NOTE_LENGTH_BINS))
    return counts / max(counts.sum(), 1.0)


def music21_parallels(grid):
    """(fifths, octaves, direct) as music21's VoiceLeadingQuartet judges the same consecutive events: parallelFifth,
    parallelUnisonOrOctave over all six pairs (not by contrary motion, which music21 includes and our rule
    leaves to taste), hiddenFifth or hiddenOctave for S and B (with our soprano-leap
    condition, which music21's hidden intervals do not have). Pitches spelled by music21's default from MIDI."""
    from music21 import note, voiceLeading

    fifths = octaves = direct = 0
    for upper in range(4):
        for lower in range(upper + 1, 4):
            for a, b, c, d in zip(*_pair_events(grid, upper, lower)):
                q = voiceLeading.VoiceLeadingQuartet(note.Note(int(a)), note.Note(int(c)), note.Note(int(b)),
                                                     note.Note(int(d)))
                similar = not q.contraryMotion()  # music21 also names consecutive fifths by contrary motion
                fifths += bool(q.parallelFifth()) and similar
                octaves += bool(q.parallelUnisonOrOctave()) and similar
                if (upper, lower) == (0, 3) and abs(int(c) - int(a)) > 2 and (q.hiddenFifth() or q.hiddenOctave()):
                    direct += 1
    return fifths, octaves, direct


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


RULE_FAULTS = ("crossings", "parallel fifths and octaves", "direct fifths and octaves into the outer voices",
               "augmented melodic intervals", "notes out of range")


def rule_faults(grid, key=None):
    """The breaches of the rules composing keeps (apps/music/rules.py), counted as these statistics count them:
    crossed steps, parallels, direct intervals, augmented intervals and out-of-range notes, summed."""
    tonic, mode = _key(grid, key)
    pitch = grid.pitch.astype(np.int64)
    sounding = pitch != REST
    crossed = int(np.count_nonzero(((pitch[:, :-1] < pitch[:, 1:]) & sounding[:, :-1] & sounding[:, 1:]).any(axis=1)))
    out = sum(int(np.count_nonzero((p < VOICE_RANGES[v][0]) | (p > VOICE_RANGES[v][1])))
              for v, p in enumerate(grid.notes(v)[2] for v in range(4)))
    return crossed + sum(_parallels(grid)) + _direct(grid) + _augmented(grid, tonic, mode) + out


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
    stats["direct_per_100"] = 100.0 * _direct(grid) / n
    stats["augmented_per_100"] = 100.0 * _augmented(grid, tonic, mode) / n
    stats["out_of_range"] = float(sum(int(np.count_nonzero(~x)) for x in inside))
    kinds = [cadence_kind(grid, s, tonic, mode) for s in phrase_ends(grid)]
    for kind in ("authentic", "half", "plagal", "none"):
        stats[f"cadence_{kind}"] = kinds.count(kind) / len(kinds)
    for length, share in zip(NOTE_LENGTH_BINS, note_length_histogram(grid)):
        stats[f"note_length_{length}"] = float(share)
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
