"""Accuracy, not speed: handwriting models side by side on the validation split, read as export reads.

Export chooses a model's decoding on validation; before a fine-tune is exported (and
its test sets read), this reads the validation lines with each --run's weights and
the shipped model's decoding (its reading width, character LM, LM weight and bonus):
CER of the digit strings and of the text lines, greedy without the LM and with the
beam and the LM. --average A adds the weights (1 - A) * shipped + A * run for each
run. Prints one JSON object.

    .venv/bin/python bench/handwriting_valid.py --run runs/handwriting-pen/last [--average 0.5]
"""
import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "data" / "models" / "handwriting"),
                    help="the shipped model: its decoding is used for every run")
    ap.add_argument("--data", default=str(ROOT / "data" / "handwriting-jitter"), help="a built corpus (valid.npz)")
    ap.add_argument("--run", action="append", default=[], help="a checkpoint folder to compare (repeatable)")
    ap.add_argument("--average", type=float, action="append", default=[],
                    help="also the weights (1 - A) * model + A * run (repeatable)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from suite.apps.handwriting.data import load_split
    from suite.apps.handwriting.model import Reader, alphabet_of, load_model, scored_truth, split_logits, widen
    from suite.ctc_task import error_rates_by

    shipped, card = load_model(args.model)
    valid = load_split(args.data, "valid")
    scale = float(card["meta"]["decoding"].get("width_scale", 1.0))
    base = {k: v.copy() for k, v in shipped.state_dict().items()}
    refs, groups = scored_truth(valid, alphabet_of(card))
    beam, greedy = Reader(shipped, card), Reader(shipped, card, beam=1, use_lm=False)  # read whatever it holds

    def score(state):
        shipped.load_state_dict(state)
        logits = split_logits(shipped, [widen(f, scale) for f in valid["features"]])
        plain = error_rates_by(groups, refs, [greedy.decode(x)[0] for x in logits])
        full = error_rates_by(groups, refs, [beam.decode(x)[0] for x in logits])
        return {f"greedy_cer_{g}": r["cer"] for g, r in sorted(plain.items())} | \
            {f"lm_cer_{g}": r["cer"] for g, r in sorted(full.items())}

    out = {"data": args.data, "lines": len(groups), "width_scale": scale, "shipped": score(base)}
    for run in args.run:
        state = load_model(run)[0].state_dict()
        out[run] = score(state)
        for a in args.average:
            mixed = {k: (1 - a) * base[k] + a * state[k] if base[k].dtype.kind == "f" else base[k] for k in base}
            out[f"{run} averaged {a}"] = score(mixed)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
