"""Transcription speed of the shipped speech model on one core, beside torch doing the same network.

Builds a long recording (default 10 minutes) from the clips in data/examples and
the corpus test folder (if built) separated by silences, then times
`suite speech transcribe`'s path end to end (reading, cutting at silences,
features, BiLSTM, beam search with the LM) and, for the network alone, our
BiLSTM forward against torch.nn.LSTM(bidirectional) with the same weights on the
same features, one thread each. Prints one JSON object.

    .venv/bin/python bench/bench_transcribe.py [--minutes 10] [--model DIR]
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def long_recording(path, minutes, sr=16000):
    import soundfile as sf

    from suite.apps.speech.audio import load_audio

    clips = sorted((ROOT / "data" / "speech" / "test" / "clean").glob("*.wav"))[:50] or \
        sorted((ROOT / "data" / "examples").glob("*.wav"))
    waves = [load_audio(c) for c in clips]
    rng = np.random.default_rng(0)
    parts, total = [], 0
    while total < minutes * 60 * sr:
        w = waves[len(parts) % len(waves)]
        gap = np.zeros(int(rng.uniform(0.3, 1.0) * sr), np.float32)
        parts += [w, gap]
        total += len(w) + len(gap)
    sf.write(path, np.concatenate(parts)[: int(minutes * 60 * sr)], sr)


def torch_bilstm(model):
    """torch.nn.LSTM(bidirectional) + Linear holding our weights (gate order i, f, g, o as ours)."""
    import torch

    c = model.config
    net = torch.nn.LSTM(c.feature_dim * c.stack, c.hidden, num_layers=c.layers, bidirectional=True)
    with torch.no_grad():
        for k, layer in enumerate(model.rnn.layers):
            for suffix, d in (("", layer.fwd), ("_reverse", layer.bwd)):
                getattr(net, f"weight_ih_l{k}{suffix}").copy_(torch.from_numpy(d.W_ih.value.T.copy()))
                getattr(net, f"weight_hh_l{k}{suffix}").copy_(torch.from_numpy(d.W_hh.value.T.copy()))
                getattr(net, f"bias_ih_l{k}{suffix}").copy_(torch.from_numpy(d.b.value.copy()))
                getattr(net, f"bias_hh_l{k}{suffix}").zero_()
    head = torch.nn.Linear(2 * c.hidden, c.vocab_size)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(model.out.W.value.T.copy()))
        head.bias.copy_(torch.from_numpy(model.out.b.value.copy()))
    return net, head


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--model", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from suite.apps.speech.data import features
    from suite.apps.speech.model import Transcriber, load_model, stack_frames, transcribe_file
    from suite.shipped import default_model_dir

    model, card = load_model(args.model or default_model_dir("speech"))
    transcriber = Transcriber(model, card)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "long.wav"
        long_recording(wav, args.minutes)
        transcribe_file(transcriber, sorted((ROOT / "data" / "examples").glob("*.wav"))[0])  # compile
        t0 = time.perf_counter()
        text, words, seconds = transcribe_file(transcriber, wav)
        elapsed = time.perf_counter() - t0

    # the network alone, ours vs torch, on a 20 s segment's features
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    feats = features(rng.normal(0, 0.1, 20 * 16000).astype(np.float32))
    x, steps = stack_frames(feats[:, None, :], np.array([len(feats)]), model.config.stack)
    net, head = torch_bilstm(model)

    def ours():
        return model.forward(feats[:, None, :], np.array([len(feats)]))[0]

    def theirs():
        with torch.no_grad():
            return head(net(torch.from_numpy(x))[0]).numpy()

    assert np.allclose(ours(), theirs(), atol=1e-3), "torch network differs from ours"

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from timing import paired_ms  # bench/timing.py: the two in turns of a few calls, the median turn ratio

    ours_ms, torch_ms, ratio = paired_ms(ours, theirs, args.repeat, warmup=1)
    from suite.info import machine

    print(json.dumps({
        "recording_seconds": round(seconds, 1), "transcribe_seconds": round(elapsed, 2),
        "realtime_factor": round(seconds / elapsed, 1), "words": len(text.split()),
        "network_20s_segment": {"ours_ms": round(ours_ms, 2), "torch_ms": round(torch_ms, 2),
                                "ratio": round(ratio, 3), "ratio_of_medians": round(ours_ms / torch_ms, 3)},
        "threads": 1, "python": sys.version.split()[0], "machine": machine(),
    }, indent=2))


if __name__ == "__main__":
    main()
