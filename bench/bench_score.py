"""How fast `suite text score` reads a large file, and that its streams give one stream's bits per character.

Scores 200,000 characters of Python's standard library (sorted .py files,
concatenated) with the shipped text model: `suite text score FILE --json` as a
user runs it (a new process, numba cache warm, the machine's BLAS threads), and
in this process the two ways of reading: the shipped setting (`suite.lm.SCORE_STREAMS`:
many streams side by side, each warmed up on the characters before it) and the
exact one (one stream, the whole text in order), which is the peer. Prints one
JSON object with characters a second, the ratio, and the difference in bits per
character (issue 20: at least 20,000 characters a second, within 1e-4).

    .venv/bin/python bench/bench_score.py [--chars 200000]
"""
import argparse
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path


def stdlib_text(chars):
    parts, total = [], 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        parts.append(text)
        total += len(text)
        if total >= chars:
            break
    return "".join(parts)[:chars]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=200_000)
    args = ap.parse_args()
    import numpy as np

    from suite.apps.text.model import load_model
    from suite.info import cpu_model
    from suite.lm import LN2, SCORE_STREAMS, score_ids
    from suite.shipped import default_model_dir

    text = stdlib_text(args.chars)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stdlib.py.txt"
        path.write_text(text, encoding="utf-8")
        suite = str(Path(sys.executable).with_name("suite"))
        subprocess.run([suite, "text", "score", str(path), "--json"], capture_output=True, check=True)  # warm cache
        t0 = time.perf_counter()
        run = subprocess.run([suite, "text", "score", str(path), "--json"], capture_output=True, check=True,
                             text=True)
        cli_seconds = time.perf_counter() - t0
    cli = json.loads(run.stdout)
    model, vocab, _ = load_model(default_model_dir("text"))
    ids = vocab.encode(text)
    score_ids(model, ids[:4000], **SCORE_STREAMS)  # compile
    timings = {}
    for name, kw in (("streams", SCORE_STREAMS), ("one_stream", dict(streams=1, window=4096))):
        t0 = time.perf_counter()
        bpc = score_ids(model, ids, **kw) / LN2
        timings[name] = {"bits_per_char": round(float(bpc), 7), "seconds": round(time.perf_counter() - t0, 3),
                         "chars_per_s": round(len(text) / (time.perf_counter() - t0))}
    print(json.dumps({
        "bench": "suite text score, 200 KB of Python", "cpu": cpu_model(), "chars": len(text),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"), "setting": SCORE_STREAMS,
        "cli": {"seconds": round(cli_seconds, 3), "chars_per_s": round(len(text) / cli_seconds),
                "bits_per_char": cli["bits_per_char"]},
        "in_process": timings,
        "ours_vs_one_stream_speed": round(timings["streams"]["chars_per_s"] / timings["one_stream"]["chars_per_s"],
                                          2),
        "bpc_difference": float(np.float64(abs(timings["streams"]["bits_per_char"]
                                               - timings["one_stream"]["bits_per_char"]))),
    }, indent=1))


if __name__ == "__main__":
    main()
