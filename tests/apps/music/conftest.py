"""Shared fixtures for the music model and CLI tests: synthetic chorales and a tiny trained model.

The chorales are made here (block chords of I, IV, V, vi in C major / A minor,
a fermata on the final tonic), so these tests need neither music21 nor the
corpus cache; a model learns their token structure in a couple of seconds.
"""
import numpy as np
import pytest

from suite.apps.music.data import Chorale, Vocab, _write_cache, encode_chorale, load_corpus
from suite.lm import LMConfig, StreamTask, TokenLM, config_dict
from suite.train import TrainConfig, Trainer

CHORDS = {  # (S, A, T, B) per scale degree, close to Bach's spacing
    "major": {"I": (72, 67, 64, 48), "IV": (72, 69, 65, 53), "V": (71, 67, 62, 55), "vi": (72, 69, 64, 57)},
    "minor": {"I": (72, 69, 64, 57), "IV": (74, 69, 62, 50), "V": (71, 68, 64, 52), "vi": (72, 65, 60, 53)},
}


def synthetic_chorale(seed, mode="major", bars=4, name=None):
    """Quarter-note chords (4 steps each) in 4/4, random progression, ending V - I with a fermata."""
    rng = np.random.default_rng(seed)
    degrees = list(rng.choice(["I", "IV", "vi", "V"], size=bars * 4 - 2)) + ["V", "I"]
    rows = []
    for d in degrees:
        rows += [CHORDS[mode][d]] * 4
    pitch = np.array(rows, np.int16)  # (T, 4)
    onset = np.zeros_like(pitch, bool)
    onset[::4] = True
    fermata = np.zeros(len(pitch), bool)
    fermata[-4:] = True
    return Chorale(pitch, onset, fermata, steps_per_bar=16, pickup=0, tonic=0 if mode == "major" else 9, mode=mode,
                   name=name or f"syn{seed:03d}", meta={"title": f"Synthetic hymn {seed}"})


@pytest.fixture(scope="session")
def chorales():
    return [synthetic_chorale(i, "major" if i % 2 == 0 else "minor") for i in range(12)]


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory, chorales):
    """A corpus cache holding the synthetic chorales (what `suite music data build` writes)."""
    out = tmp_path_factory.mktemp("music-cache")
    _write_cache(out, chorales, {}, {}, 0.0)
    return out


@pytest.fixture(scope="session")
def corpus(corpus_dir):
    return load_corpus(corpus_dir)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, chorales):
    """(model, vocab, run_dir, loss before, loss after): a tiny LSTM trained on the synthetic stream."""
    vocab = Vocab()
    ids = np.concatenate([encode_chorale(c, vocab) for c in chorales])
    # One layer: it finds the 5-token step structure in a few hundred steps (two layers plateau longer).
    model = TokenLM(LMConfig(vocab.size, embed=16, hidden=32, layers=1, dropout=0.0, seed=0))
    task = StreamTask(ids, ids[:600], seq_len=32, batch_size=16)
    before = task.evaluate(model)["loss"]
    out = tmp_path_factory.mktemp("music-run")
    cfg = TrainConfig(steps=500, lr=2e-2, warmup=10, eval_every=500, checkpoint_every=500)
    meta = {"app": "music", "vocab": vocab.to_json(), "seed": 0}
    Trainer(model, task, cfg, out, model_config=config_dict(model.config), meta=meta, quiet=True).fit()
    after = task.evaluate(model)["loss"]
    return model, vocab, out / "best", before, after


@pytest.fixture(scope="session")
def model_dir(trained):
    return trained[2]


def write_melody(path, notes, ticks_per_beat=480, key=None):
    """A one-track MIDI melody from [(start step, end step, pitch)] on the 16th-note grid."""
    import mido

    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    track = mido.MidiTrack()
    if key:
        track.append(mido.MetaMessage("key_signature", key=key, time=0))
    per_step = ticks_per_beat // 4
    events = []
    for start, end, pitch in notes:
        events += [(start * per_step, 1, "note_on", pitch), (end * per_step, 0, "note_off", pitch)]
    now = 0
    for tick, _, kind, pitch in sorted(events):
        track.append(mido.Message(kind, note=pitch, velocity=80 if kind == "note_on" else 0, time=tick - now))
        now = tick
    midi.tracks.append(track)
    midi.save(str(path))
    return path

