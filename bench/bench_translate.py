"""Translation speed of the shipped translate model on one core, beside the translation-memory peer.

Translates N held-out messages (default 300 a language, the test split of
data/translate built by `suite translate data build`; without it, the
messages of data/examples) through `suite translate`'s path (mask
placeholders -> subwords -> BiLSTM encoder -> beam search batched over
sentences and beams -> unmask), after one batch to compile, with one BLAS and
one numba thread, at beam 5 and beam 1. The peer is what a localiser already
has: a translation memory (the nearest training msgid by edit distance with
rapidfuzz, translate-toolkit's `pretranslate --tm` idea) on the same messages,
timed in the same run. Prints one JSON object: sentences a second, chrF of each,
ratio.

    .venv/bin/python bench/bench_translate.py [--n 300] [--model DIR]
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="Messages a language.")
    ap.add_argument("--model", default=None)
    args = ap.parse_args()

    from suite.apps.translate.data import load_split
    from suite.apps.translate.memory import Memory
    from suite.apps.translate.model import Translator, chrf, load_model, translator_for
    from suite.info import cpu_model
    from suite.shipped import default_model_dir

    model, sub, card = load_model(args.model or default_model_dir("translate"))
    data = ROOT / "data" / "translate"
    result = {"cpu": cpu_model(), "threads": 1, "python": sys.version.split()[0]}
    if (data / "test.jsonl").exists():
        test, train = load_split(data, "test"), load_split(data, "train")
        source = "data/translate test split (held-out domains)"
    else:
        lines = (ROOT / "data" / "examples" / "messages.txt").read_text(encoding="utf-8").splitlines()
        test = [{"lang": lang, "src": s, "tgt": s} for lang in card["meta"]["languages"] for s in lines]
        train, source = test, "data/examples/messages.txt (no corpus built: chrF is against the source)"
    result["source"] = source
    for lang in card["meta"]["languages"]:
        rows = [r for r in test if r["lang"] == lang][:args.n]
        srcs, refs = [r["src"] for r in rows], [r["tgt"] for r in rows]
        out = {"messages": len(rows)}
        for beam in (5, 1):
            tr = Translator(model, sub, beam=beam)
            tr.translate(srcs[:8], lang)  # compile (numba's on-disk cache makes this quick after the first run)
            t0 = time.perf_counter()
            hyps = [h["text"] for h in tr.translate(srcs, lang)]
            elapsed = time.perf_counter() - t0
            out[f"suite_beam{beam}"] = {"sentences_per_s": round(len(rows) / elapsed, 2), "chrf": chrf(hyps, refs)}
        tr = translator_for(model, sub, card, beam=5)  # what `suite translate` runs: the memory, then the network
        t0 = time.perf_counter()
        hyps = [h["text"] for h in tr.translate(srcs, lang)]
        elapsed = time.perf_counter() - t0
        out["suite_beam5_with_memory"] = {"sentences_per_s": round(len(rows) / elapsed, 2), "chrf": chrf(hyps, refs)}
        memory = Memory.from_rows([r for r in train if r["lang"] == lang])
        t0 = time.perf_counter()
        hyps = [(memory.nearest(s, lang) or (0, s, s))[2] for s in srcs]
        elapsed = time.perf_counter() - t0
        out["translation_memory"] = {"pairs": len(memory), "sentences_per_s": round(len(rows) / elapsed, 2),
                                     "chrf": chrf(hyps, refs)}
        out["speed_ratio_beam5_over_memory"] = round(out["suite_beam5"]["sentences_per_s"] /
                                                     out["translation_memory"]["sentences_per_s"], 3)
        result[lang] = out
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
