"""Reading speed of the shipped handwriting model on one core, beside Tesseract 5 on the same line images.

Reads N line images (default 200) of the corpus's held-out-hand test set
(data/handwriting/test/fonts, built by `suite handwriting data build`; without
it, lines drawn here in the test hands) through `suite handwriting read`'s path
(file -> ink -> line at 32 px -> conv + BiLSTM -> CTC decoding), after one line
to compile, with one BLAS and one numba thread; then Tesseract (`--psm 7`, one
text line, OMP_THREAD_LIMIT=1) on the same files, one process per file as a
user would run it. Prints one JSON object: lines a second, CER of each, ratio; and ours again read as
`evaluate` reads (32 files a batch: batched_lines_per_s, and whether every text is the same as one by one).

    .venv/bin/python bench/bench_handwriting.py [--lines 200] [--model DIR]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]


def line_files(n, tmp):
    """[(png path, text)]: the built test set's first n lines, or n lines drawn here in the test hands."""
    from suite.apps.handwriting.data import find_hands, read_lines_tsv, text_pieces

    tsv = ROOT / "data" / "handwriting" / "test" / "fonts" / "lines.tsv"
    if tsv.exists():
        return [(p, t) for p, t, _ in read_lines_tsv(tsv)[:n]], str(tsv.parent.relative_to(ROOT))
    import numpy as np
    from PIL import Image

    from suite.apps.handwriting.render import render_font_line

    hands, _ = find_hands("test")
    pieces = text_pieces(0)["test"]
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        hand, path, case = hands[i % len(hands)]
        text = pieces[i % len(pieces)]
        text = text.upper() if case == "upper" else text
        png = Path(tmp) / f"{i:04d}.png"
        Image.fromarray(render_font_line(text, path, rng)).save(png)
        out.append((png, text))
    return out, "drawn by the bench in the test hands"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()

    from suite.apps.handwriting.data import clean
    from suite.apps.handwriting.model import Reader, load_model
    from suite.ctc_task import error_rates
    from suite.info import cpu_model
    from suite.shipped import default_model_dir

    model, card = load_model(args.model or default_model_dir("handwriting"))
    result = {"cpu": cpu_model(), "threads": 1, "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        files, source = line_files(args.lines, tmp)
        result["lines"], result["source"] = len(files), source
        refs = [clean(t) for _, t in files]
        for name, reader in (("suite_beam_lm", Reader(model, card)), ("suite_greedy", Reader(model, card, beam=1,
                                                                                             use_lm=False))):
            reader.read_file(files[0][0], layout="line")  # compile (numba's cache makes this quick after the first run)
            t0 = time.perf_counter()
            hyps = [reader.read_file(p, layout="line")["text"] for p, _ in files]
            elapsed = time.perf_counter() - t0
            result[name] = {"lines_per_s": round(len(files) / elapsed, 2), "cer": error_rates(refs, hyps)["cer"]}
            # as `evaluate` reads: 32 files at a time, their lines through the network in one batch
            t0 = time.perf_counter()
            batched = [r["text"] for r in reader.read_files([p for p, _ in files], layout="line")]
            elapsed = time.perf_counter() - t0
            result[name]["batched_lines_per_s"] = round(len(files) / elapsed, 2)
            result[name]["batched_reads_alike"] = batched == hyps
        exe = shutil.which("tesseract")
        if exe:
            env = {"OMP_THREAD_LIMIT": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            t0 = time.perf_counter()
            hyps = []
            for p, _ in files:
                run = subprocess.run([exe, str(p), "stdout", "--psm", "7", "-l", "eng"], capture_output=True,
                                     text=True, env=env)
                hyps.append(clean(run.stdout))
            elapsed = time.perf_counter() - t0
            version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
            result["tesseract"] = {"version": version.strip(), "lines_per_s": round(len(files) / elapsed, 2),
                                   "cer": error_rates(refs, hyps)["cer"]}
            result["speed_ratio_suite_beam_over_tesseract"] = round(
                result["suite_beam_lm"]["lines_per_s"] / result["tesseract"]["lines_per_s"], 2)
        else:
            result["tesseract"] = None
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
