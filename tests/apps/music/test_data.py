"""The chorale grid (grid.py), tokens and vocabulary (tokens.py), splits, cache and baseline (data.py)."""
import json
import time

import numpy as np
import pytest

from suite.apps.music import data, tokens
from suite.apps.music.data import (
    BAR,
    END,
    FERMATA,
    REST,
    SPLITS,
    START,
    STEP,
    Chorale,
    Skip,
    Vocab,
    augment,
    chorale_tokens,
    decode_tokens,
    encode_chorale,
    key_name,
    load_corpus,
    normalise,
    parse_key,
    split_names,
)


def _tiny(pickup=2, steps_per_bar=12, tonic=0, mode="major"):
    """Seven steps in 3/4 with a pickup: held notes, a rest, a fermata."""
    pitch = np.array([
        [72, 67, 64, 48],
        [72, 67, 64, 48],  # all held
        [74, 67, REST, 43],  # tenor rests
        [74, 65, REST, 43],
        [76, 65, 60, 48],
        [76, 64, 60, 48],
        [76, 64, 60, 36],
    ])
    onset = np.array([
        [1, 1, 1, 1],
        [0, 0, 0, 0],
        [1, 0, 1, 1],
        [0, 1, 0, 0],
        [1, 0, 1, 1],
        [0, 1, 0, 0],
        [1, 0, 0, 1],  # soprano re-strikes E5
    ], bool)
    fermata = np.array([0, 0, 0, 0, 1, 1, 1], bool)
    return Chorale(pitch, onset, fermata, steps_per_bar=steps_per_bar, pickup=pickup, tonic=tonic, mode=mode)


# -- keys ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, mode, expected", [
    ("C", None, (0, "major")), ("D", "minor", (2, "minor")), ("F#", "major", (6, "major")),
    ("Bb", None, (10, "major")), ("B-", "minor", (10, "minor")), ("f# minor", None, (6, "minor")),
    ("Cb", None, (11, "major")), ("e", "MINOR", (4, "minor")),
])
def test_parse_key(name, mode, expected):
    assert parse_key(name, mode) == expected


@pytest.mark.parametrize("name, mode", [("H", None), ("C##b", None), ("D", "dorian"), ("G minor", "major"), ("", None)])
def test_parse_key_rejects(name, mode):
    with pytest.raises(ValueError):
        parse_key(name, mode)


def test_key_names_round_trip():
    for mode in ("major", "minor"):
        for tonic in range(12):
            assert parse_key(key_name(tonic, mode)) == (tonic, mode)


# -- the grid -----------------------------------------------------------------------------

def test_chorale_canonical_onsets():
    pitch = np.array([[60, 55, REST, 48], [62, 55, REST, 48], [62, 55, REST, 48]])
    c = Chorale(pitch, onset=np.zeros((3, 4), bool))  # every step claims "held"
    assert c.onset[0].all()  # nothing to hold at the start
    assert c.onset[1, 0] and not c.onset[2, 0]  # a changed pitch cannot be held
    assert not c.onset[1:, 1].any() and not c.onset[1:, 2].any()  # held note, continued rest
    default = Chorale(pitch)
    assert np.array_equal(default.onset, c.onset)
    s, e, p = c.notes(0)
    assert s.tolist() == [0, 1] and e.tolist() == [1, 3] and p.tolist() == [60, 62]
    assert len(c.notes(2)[0]) == 0


@pytest.mark.parametrize("kwargs", [
    dict(pitch=np.zeros((3, 3), int)), dict(pitch=np.zeros((0, 4), int)), dict(pitch=np.full((2, 4), 128)),
    dict(pitch=np.zeros((2, 4)), ), dict(pitch=np.zeros((2, 4), int), fermata=np.zeros(3, bool)),
    dict(pitch=np.zeros((2, 4), int), pickup=16), dict(pitch=np.zeros((2, 4), int), mode="dorian"),
])
def test_chorale_rejects(kwargs):
    with pytest.raises(ValueError):
        Chorale(**kwargs)


def test_transposition_and_normalise():
    c = _tiny(tonic=2)  # as if in D major
    up = c.transposed(3)
    assert up.tonic == 5 and up.transpose == 3
    assert np.array_equal(up.pitch[c.pitch == REST], c.pitch[c.pitch == REST])
    assert np.array_equal(up.pitch[c.pitch != REST], c.pitch[c.pitch != REST] + 3)
    assert np.array_equal(up.onset, c.onset) and np.array_equal(up.fermata, c.fermata)
    n = normalise(c)
    assert n.key == (0, "major") and n.transpose == -2
    assert normalise(_tiny(tonic=6)).transpose == -6  # F# major goes down, not up
    assert normalise(_tiny(tonic=11)).transpose == 1
    minor = normalise(_tiny(tonic=4, mode="minor"))  # E minor -> A minor
    assert minor.key == (9, "minor") and minor.transpose == 5
    assert normalise(minor).transpose == 5  # already normalised: no further shift


def test_augment_stays_in_ranges():
    c = _tiny()
    ranges = [(70, 79), (60, 70), (55, 66), (36, 50)]
    keys = augment(c, ranges)
    shifts = [a.transpose for a in keys]
    assert 0 in shifts
    for a in keys:
        for v, (lo, hi) in enumerate(ranges):
            sounding = a.pitch[a.pitch[:, v] != REST, v]
            assert lo <= sounding.min() and sounding.max() <= hi
    # soprano 72..76 in 70..79 allows -2..+3; bass 36..48 in 36..50 allows 0..+2
    assert shifts == [0, 1, 2]
    assert [a.tonic for a in keys] == [0, 1, 2]


# -- tokens -------------------------------------------------------------------------------

def test_tokens_of_a_tiny_chorale():
    tokens = chorale_tokens(_tiny())
    assert tokens[:2] == [START, "<C major>"]
    assert tokens[2:7] == [STEP, "72", "67", "64", "48"]  # pickup step: not a downbeat
    assert tokens[7:12] == [STEP, "72~", "67~", "64~", "48~"]
    assert tokens[12:17] == [BAR, "74", "67~", "R", "43"]  # the downbeat after the 2-step pickup
    assert tokens[22:28] == [STEP, FERMATA, "76", "65~", "60", "48"]
    assert tokens[-1] == END
    assert len(tokens) == 2 + 7 * 5 + 3 + 1


@pytest.mark.parametrize("pickup, spb, tonic, mode", [(2, 12, 0, "major"), (0, 16, 9, "minor"), (5, 6, 3, "major")])
def test_token_round_trip(pickup, spb, tonic, mode):
    vocab = Vocab()
    c = _tiny(pickup, spb, tonic, mode)
    # 7 steps hold one downbeat at most: the bar length must be given (two "||" would tell it)
    back, repairs = decode_tokens(encode_chorale(c, vocab), vocab, steps_per_bar=spb)
    assert repairs == {}
    assert back.same_music(c)
    strings, _ = decode_tokens(chorale_tokens(c), steps_per_bar=spb)
    assert strings.same_music(c)
    longer = Chorale(np.concatenate([c.pitch] * 5), np.concatenate([c.onset] * 5), np.concatenate([c.fermata] * 5),
                     steps_per_bar=spb, pickup=pickup, tonic=tonic, mode=mode)
    assert decode_tokens(chorale_tokens(longer))[0].same_music(longer)  # bar length read from the "||"


def test_vocab_json_round_trip_and_errors():
    vocab = Vocab()
    again = Vocab.from_json(json.loads(json.dumps(vocab.to_json())))
    assert again == vocab and again.size == vocab.size
    assert vocab.tokens[vocab.pad_id] == "<pad>" and vocab.decode([vocab.key_id(9, "minor")]) == ["<A minor>"]
    assert len(set(vocab.tokens)) == vocab.size
    assert vocab.tokens[vocab.voice_id(60, held=True)] == "60~"
    ids = vocab.voice_ids()
    assert vocab.tokens[ids[0]] == "R" and all(tokens._voice_token(vocab.tokens[i]) for i in ids)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode(["<start>", "C4"])
    with pytest.raises(ValueError, match="outside"):
        vocab.voice_id(vocab.pitch_max + 1)
    with pytest.raises(ValueError):
        Vocab.from_json({**vocab.to_json(), "tokens": vocab.tokens[:-1]})
    assert vocab.decode([-1, vocab.size, 0]) == [None, None, "<pad>"]


def test_decode_repairs_malformed_steps():
    tokens = [START, "<G major>", "60", "55",  # voices before any delimiter
              BAR, "72", "67", "64", "48", "40",  # an extra voice
              STEP, "72~", "65~",  # two voices missing, and a bad hold (65 was not sounding)
              STEP,  # an empty step
              STEP, "72", FERMATA, "67", "64", "48",  # fermata after S
              "junk", "<D minor>", STEP, "71", "67", "62", "43", END, STEP, "1", "2", "3", "4"]
    c, repairs = decode_tokens(tokens)
    assert repairs == {"no_delimiter": 1, "extra_voices": 1, "missing_voices": 4, "bad_hold": 1,
                       "empty_step": 1, "stray_fermata": 1, "unknown": 1, "misplaced": 1}
    assert c.key == (7, "major")  # the key after <start>; the later one is ignored
    assert c.n_steps == 5  # the empty step dropped, nothing after <end>
    assert c.pitch[0].tolist() == [60, 55, REST, REST]  # missing voices with nothing to hold: rests
    assert c.pitch[2].tolist() == [72, 65, 64, 48] and c.onset[2].tolist() == [False, True, False, False]
    assert c.fermata.tolist() == [False, False, False, True, False]


def test_decode_never_raises_on_random_ids():
    vocab = Vocab()
    rng = np.random.default_rng(0)
    for n in (0, 1, 3, 50, 400):
        ids = rng.integers(-3, vocab.size + 3, size=n)
        c, repairs = decode_tokens(ids, vocab)
        assert c.n_steps >= 1 and isinstance(repairs, dict)
    c, repairs = decode_tokens([], vocab)
    assert repairs == {"no_steps": 1} and c.n_steps == 1 and (c.pitch == REST).all()
    with pytest.raises(ValueError, match="vocab"):
        decode_tokens([1, 2, 3])


# -- splits and the cache -----------------------------------------------------------------

def _fake_corpus(n=40):
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        c = _tiny().transposed(int(rng.integers(-2, 3)))
        c = normalise(c)
        c.name, c.meta = f"r{i:03d}_bwv{i}", {"title": f"Hymn {i // 2}"}  # pairs share a tune
        out.append(c)
    return out


def test_split_is_disjoint_deterministic_and_keeps_tunes_together():
    chorales = _fake_corpus(40)
    a = split_names(chorales, seed=0)
    assert split_names(chorales, seed=0) == a
    names = [n for s in SPLITS for n in a[s]]
    assert sorted(names) == sorted(c.name for c in chorales)  # disjoint and complete
    assert len(a["test"]) == 4 and len(a["valid"]) == 4 and len(a["train"]) == 32
    where = {n: s for s in SPLITS for n in a[s]}
    for i in range(0, 40, 2):
        assert where[f"r{i:03d}_bwv{i}"] == where[f"r{i + 1:03d}_bwv{i + 1}"]
    assert split_names(chorales, seed=1) != a
    with pytest.raises(ValueError):
        split_names(chorales, split=(0.5, 0.5, 0.5))


def test_cache_round_trip(tmp_path, monkeypatch):
    chorales = _fake_corpus(30)
    calls = []

    def fake_parse(progress=None):
        calls.append(1)
        return [c.transposed(0) for c in chorales], data.Counter({"key_unclear": 2}), {"key_unclear": ["x", "y"]}

    monkeypatch.setattr(data, "parse_corpus", fake_parse)
    report = data.build_corpus(tmp_path, seed=3)
    assert not report["from_cache"] and report["kept"] == 30 and report["skipped"] == {"key_unclear": 2}
    assert report["source_chorales"] == 32
    assert (tmp_path / "grids.npz").is_file() and (tmp_path / "report.json").is_file()
    start = time.perf_counter()
    corpus = load_corpus(tmp_path, seed=3)
    assert time.perf_counter() - start < 2.0
    assert corpus.report["from_cache"] and len(calls) == 1
    assert corpus.report["splits"] == report["splits"]
    by_name = {c.name: c for c in chorales}
    for c in corpus.train + corpus.valid + corpus.test:
        assert c.same_music(by_name[c.name]) and c.transpose == by_name[c.name].transpose
    stream = corpus.stream("test")
    assert stream.dtype == np.int32 and stream[0] == corpus.vocab.start_id
    assert len(corpus.chorales("train", augmented=True)) >= len(corpus.train)
    load_corpus(tmp_path, seed=3, force=True)
    assert len(calls) == 2


def test_cache_is_byte_identical_and_an_older_build_still_reads(tmp_path, monkeypatch):
    chorales = _fake_corpus(30)
    calls = []

    def fake_parse(progress=None):
        calls.append(1)
        return [c.transposed(0) for c in chorales], data.Counter(), {}

    monkeypatch.setattr(data, "parse_corpus", fake_parse)
    first = load_corpus(tmp_path, seed=3)
    grids = (tmp_path / "grids.npz").read_bytes()
    load_corpus(tmp_path, seed=3, force=True)
    assert (tmp_path / "grids.npz").read_bytes() == grids and len(calls) == 2
    (tmp_path / "report.json").rename(tmp_path / "chorales.json")  # the header's name before report.json
    again = load_corpus(tmp_path, seed=3)
    assert again.report["from_cache"] and len(calls) == 2 and again.report["splits"] == first.report["splits"]
    load_corpus(tmp_path, seed=3, force=True)  # a rebuild leaves one marker, the new one
    assert (tmp_path / "report.json").is_file() and not (tmp_path / "chorales.json").exists()
    (tmp_path / "report.json").write_text(json.dumps({"format": 0}))
    assert not load_corpus(tmp_path, seed=3).report["from_cache"] and len(calls) == 4  # old format: parsed again


def test_ngram_baseline_runs_on_the_token_stream(tmp_path, monkeypatch):
    chorales = _fake_corpus(30)
    monkeypatch.setattr(data, "parse_corpus", lambda progress=None: (chorales, data.Counter(), {}))
    corpus = load_corpus(tmp_path)
    result = data.ngram_baseline(corpus, orders=(1, 2, 6))
    assert result["order"] in (1, 2, 6)
    expected = result["test_bits_per_token"] * result["test_tokens"] / result["test_steps"]
    assert result["test_bits_per_step"] == pytest.approx(expected, rel=1e-3)
    assert result["test_nats_per_step"] == pytest.approx(expected * np.log(2), rel=1e-3)


# -- one real chorale (music21's corpus; about a second) ----------------------------------

def test_parse_one_real_chorale():
    corpus = pytest.importorskip("music21.corpus")
    score = corpus.parse("bach/bwv269")  # Aus meines Herzens Grunde: 3/4, a quarter-note pickup
    c = data.parse_score(score, "r001_bwv269")
    assert c.key == (7, "major") and c.steps_per_bar == 12 and c.pickup == 4
    assert c.fermata.any() and c.onset.any() and (~c.onset).any()
    means = [c.pitch[c.pitch[:, v] != REST, v].mean() for v in range(4)]
    assert means == sorted(means, reverse=True)
    n = normalise(c)
    assert n.key == (0, "major") and n.transpose == 5  # G -> C: up a fourth, not down a fifth
    back, repairs = decode_tokens(encode_chorale(n, Vocab()), Vocab())
    assert repairs == {} and back.same_music(n)
    three = type(score)()
    for part in list(score.parts)[:3]:
        three.insert(0, part)
    with pytest.raises(Skip) as skip:
        data.parse_score(three)
    assert skip.value.reason == "not_four_parts"
