"""Each statistic on a hand-made chorale whose answer is known."""
import numpy as np
import pytest

from suite.apps.music.grid import REST, Chorale
from suite.apps.music.stats import REFERENCE_PC_HISTOGRAM, chorale_stats, pitch_class_histogram, summarise


def _chorale(rows, key=(0, "major"), onset=None):
    return Chorale(np.array(rows), onset, tonic=key[0], mode=key[1])


# I in C, then V7, then I: steps of one 16th each, quarter notes (4 steps) per chord
TONIC = [72, 67, 64, 48]  # C5 G4 E4 C3
DOMINANT = [71, 67, 62, 43]  # B4 G4 D4 G2
PLAGAL = [72, 69, 65, 53]  # C5 A4 F4 F3


def _cadence(penultimate, final=TONIC):
    return _chorale([TONIC] * 4 + [penultimate] * 4 + [final] * 4)


def test_clean_cadence_scores_clean():
    s = chorale_stats(_cadence(DOMINANT), (0, "major"))
    assert s["in_key"] == 1.0 and s["in_range"] == 1.0
    assert s["crossings_per_100"] == 0 and s["parallel_fifths_per_100"] == 0 and s["parallel_octaves_per_100"] == 0
    assert s["final_tonic"] == 1.0 and s["cadence"] == 1.0
    assert s["steps"] == 12 and s["notes"] == 10  # the alto's G4 is held through all three chords: one note


def test_cadence_rules():
    assert chorale_stats(_cadence(PLAGAL))["cadence"] == 1.0  # IV - I
    assert chorale_stats(_cadence([72, 69, 64, 45]))["cadence"] == 0.0  # vi - I: bass A
    assert chorale_stats(_cadence(DOMINANT, final=[72, 67, 64, 52]))["final_tonic"] == 0.0  # bass on E
    assert chorale_stats(_cadence(DOMINANT, final=[74, 67, 64, 48]))["final_tonic"] == 0.0  # D in the final chord
    minor = _chorale([[69, 64, 60, 45]] * 4 + [[68, 64, 59, 40]] * 4 + [[69, 64, 61, 45]] * 4, key=(9, "minor"))
    assert chorale_stats(minor)["cadence"] == 1.0  # E - A with a Picardy third (C#)
    suspended = _chorale([TONIC] * 4 + [[72, 67, 65, 43]] * 2 + [DOMINANT] * 2 + [TONIC] * 4)
    assert chorale_stats(suspended)["cadence"] == 1.0  # 4-3 suspension resolving over the bass G
    restruck = _chorale([TONIC] * 4 + [DOMINANT] * 4 + [TONIC] * 2 + [[72, 67, 64, 36]] * 2)
    assert chorale_stats(restruck)["cadence"] == 1.0  # the bass drops an octave on the tonic


def test_parallel_fifth_counted():
    # soprano G4 -> A4 over bass C3 -> D3 (both up a tone: a compound fifth both times);
    # alto and tenor hold, so only the S-B pair moves together
    c = _chorale([[67, 64, 60, 48]] * 2 + [[69, 64, 60, 50]] * 2)
    s = chorale_stats(c)
    assert s["parallel_fifths_per_100"] == pytest.approx(100 / 4)
    assert s["parallel_octaves_per_100"] == 0
    contrary = _chorale([[67, 64, 60, 48]] * 2 + [[69, 64, 60, 38]] * 2)  # a fifth to a fifth in contrary motion
    assert chorale_stats(contrary)["parallel_fifths_per_100"] == 0
    fourth = _chorale([[65, 64, 60, 48]] * 2 + [[67, 64, 60, 50]] * 2)  # F over C: a fourth, not a fifth
    assert chorale_stats(fourth)["parallel_fifths_per_100"] == 0
    rest_between = _chorale([[67, 64, 60, 48], [REST, 64, 60, 48], [69, 64, 60, 50]])
    assert chorale_stats(rest_between)["parallel_fifths_per_100"] == 0


def test_parallel_octaves_and_unisons_counted():
    c = _chorale([[72, 60, 55, 48]] * 2 + [[74, 62, 55, 50]] * 2)  # S, A and B move C -> D in octaves
    s = chorale_stats(c)
    assert s["parallel_octaves_per_100"] == pytest.approx(3 * 100 / 4)  # pairs S-A, S-B, A-B
    unison = _chorale([[72, 67, 64, 48], [72, 67, 64, 48], [74, 69, 69, 48], [76, 71, 71, 48]])
    assert chorale_stats(unison)["parallel_octaves_per_100"] == pytest.approx(100 / 4)  # A-T: unison to unison
    both = _chorale([[72, 67, 64, 48], [74, 69, 69, 50], [76, 71, 71, 52]])  # everything moves up a tone twice
    s = chorale_stats(both)  # octaves: S-B twice, A-T once; fifths (compound): A-B twice, T-B once
    assert s["parallel_octaves_per_100"] == pytest.approx(3 * 100 / 3)
    assert s["parallel_fifths_per_100"] == pytest.approx(3 * 100 / 3)
    repeated = _chorale([[72, 60, 55, 48], [72, 60, 55, 48]], onset=np.ones((2, 4), bool))  # re-struck, no motion
    assert chorale_stats(repeated)["parallel_octaves_per_100"] == 0


def test_crossing_counted():
    c = _chorale([[72, 67, 64, 48], [66, 67, 64, 48], [72, 67, 64, 48], [72, 67, 64, 65]])
    s = chorale_stats(c)  # S below A once, B above T once
    assert s["crossings_per_100"] == pytest.approx(2 * 100 / 4)


def test_in_key_and_in_range():
    c = _chorale([[72, 67, 64, 48], [72, 66, 64, 48], [80, 67, 64, 36], [80, 67, 64, 36]])
    s = chorale_stats(c, "C major")
    assert s["notes"] == 8
    assert s["in_key"] == pytest.approx(6 / 8)  # F#4 and G#5 are not in C major
    assert s["in_range_S"] == pytest.approx(1 / 2)  # G#5 is above G5
    assert s["in_range_B"] == pytest.approx(1 / 2)  # C2 is below E2
    assert s["in_range"] == pytest.approx(6 / 8)
    assert chorale_stats(c, (9, "minor"))["in_key"] == pytest.approx(8 / 8)  # A minor has F# and G#
    assert chorale_stats(c, "C major") == chorale_stats(c, (0, "major")) == chorale_stats(c)


def test_pitch_class_overlap():
    c = _cadence(DOMINANT)
    h = pitch_class_histogram(c)
    assert h.sum() == pytest.approx(1) and h[0] == pytest.approx(16 / 48)  # two Cs in 8 of 12 steps
    expected = np.minimum(h, REFERENCE_PC_HISTOGRAM["major"]).sum()
    assert chorale_stats(c)["pc_overlap"] == pytest.approx(expected)
    up = c.transposed(5)  # the histogram is taken relative to the tonic
    assert chorale_stats(up)["pc_overlap"] == pytest.approx(expected)
    assert chorale_stats(c, (1, "major"))["pc_overlap"] < expected  # the wrong key overlaps less
    for mode in ("major", "minor"):
        assert sum(REFERENCE_PC_HISTOGRAM[mode]) == pytest.approx(1, abs=1e-3)


def test_summarise_means():
    a, b = chorale_stats(_cadence(DOMINANT)), chorale_stats(_cadence([72, 69, 64, 45]))
    out = summarise([a, b])
    assert out["chorales"] == 2 and out["cadence"] == 0.5
    assert out["in_key"] == pytest.approx((a["in_key"] + b["in_key"]) / 2)
    with pytest.raises(ValueError):
        summarise([])
