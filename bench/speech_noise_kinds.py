"""Accuracy, not speed: WER of a speech model on test/snr20 split by the kind of noise each file carries.

The corpus build does not record which noise kind (white, pink or babble, which
without a babble pool is speech-shaped noise) an snr20 test file got. Each
test/snr20 file and its test/clean twin hold the same utterance, so their
difference is the noise alone; its spectrum tells the kinds apart (white: flat
to 8 kHz; pink: falling as 1/f; speech-shaped: band-passed to 100-4000 Hz, next
to nothing above 5 kHz). Prints one JSON object.

    .venv/bin/python bench/speech_noise_kinds.py [--model data/models/speech] [--data data/speech]
"""
import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def noise_kind(noisy, clean, sr):
    """"white", "pink" or "speech-shaped" from the power above 5 kHz over that in 0.5-2 kHz of noisy - clean."""
    noise = noisy[:len(clean)] - clean
    power = np.abs(np.fft.rfft(noise)) ** 2
    freq = np.fft.rfftfreq(len(noise), 1 / sr)
    ratio = power[freq > 5000].mean() / max(power[(freq > 500) & (freq < 2000)].mean(), 1e-30)
    return "white" if ratio > 0.3 else "pink" if ratio > 0.01 else "speech-shaped"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "data" / "models" / "speech"))
    ap.add_argument("--data", default=str(ROOT / "data" / "speech"))
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import soundfile as sf

    from suite.apps.speech.model import Transcriber, evaluate_tsv, load_model
    from suite.ctc_task import error_rates
    from suite.threads import single_blas_thread

    tsv = Path(args.data) / "test" / "snr20" / "transcripts.tsv"
    model, card = load_model(args.model)
    with single_blas_thread():
        report = evaluate_tsv(Transcriber(model, card), tsv)
    groups = {}
    for h in report["hypotheses"]:
        noisy, sr = sf.read(h["file"])
        clean, _ = sf.read(h["file"].replace(f"{os.sep}snr20{os.sep}", f"{os.sep}clean{os.sep}"))
        refs, hyps = groups.setdefault(noise_kind(noisy, clean, sr), ([], []))
        refs.append(h["ref"])
        hyps.append(h["hyp"])
    out = {"model": args.model, "test": str(tsv), "wer": report["wer"],
           "by_noise_kind": {k: error_rates(r, h) | {"wrong_utterances": sum(a != b for a, b in zip(r, h))}
                             for k, (r, h) in sorted(groups.items())}}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
