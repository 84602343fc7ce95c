"""`suite batch` against a shell loop of single-file commands, on short speech clips and caption images.

For each app, the same files go through (a) a loop that runs the single-file
command once per file (`suite speech transcribe F`, `suite caption F`), as a
shell loop would: every call loads the model and its compiled kernels anew;
(b) `suite batch APP` with 1 and with 2 workers on a LocalCluster (cluster
start, model load and compile counted). The loop runs on the first
--loop-files files only (its per-file cost does not depend on how many); the
batch runs on all of them. Prints one JSON object: files a second, the ratio
batch / loop, and the CPU.

Inputs: the built corpora's test files (data/speech/test/clean, data/caption
images/test) when they are there, else copies of data/examples/ (the same
content, so only the per-file overhead differs from real data).

    .venv/bin/python bench/bench_batch.py [--files 500] [--loop-files 20]
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

ROOT = Path(__file__).resolve().parents[1]
SUITE = [sys.executable, "-m", "suite.cli"]


def inputs(app, n, tmp):
    corpus = {"speech": ROOT / "data" / "speech" / "test" / "clean",
              "caption": ROOT / "data" / "caption" / "images" / "test"}[app]
    ext = {"speech": ".wav", "caption": ".png"}[app]
    files = sorted(corpus.glob(f"*{ext}"))[:n] if corpus.is_dir() else []
    source = str(corpus.relative_to(ROOT)) if files else "copies of data/examples"
    if len(files) < n:
        example = ROOT / "data" / "examples" / {"speech": "go-three-zero-four-oh.wav", "caption": "shapes.png"}[app]
        folder = Path(tmp) / app
        folder.mkdir()
        for i in range(n - len(files)):
            shutil.copy(example, folder / f"{i:05d}{ext}")
        files += sorted(folder.glob(f"*{ext}"))
    return [str(f) for f in files[:n]], source


def loop(app, files):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    command = {"speech": ["speech", "transcribe"], "caption": ["caption"]}[app]
    t0 = time.perf_counter()
    for f in files:
        subprocess.run(SUITE + command + [f], env=env, capture_output=True, check=True)
    return len(files) / (time.perf_counter() - t0)


def batch(app, files, workers, tmp):
    listing = Path(tmp) / f"{app}-{workers}.txt"
    listing.write_text("\n".join(files) + "\n")
    out = Path(tmp) / f"{app}-{workers}.jsonl"
    t0 = time.perf_counter()
    subprocess.run(SUITE + ["batch", app, "--inputs", str(listing), "--out", str(out), "--workers", str(workers),
                            "--quiet"], capture_output=True, check=True)
    elapsed = time.perf_counter() - t0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == len(files) and all(r["status"] == "ok" for r in records), "batch lost or failed inputs"
    return len(files) / elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--loop-files", type=int, default=20)
    ap.add_argument("--apps", default="speech,caption")
    args = ap.parse_args()

    from suite.info import cpu_model

    result = {"cpu": cpu_model(), "cores": os.cpu_count(), "files": args.files, "loop_files": args.loop_files}
    with tempfile.TemporaryDirectory() as tmp:
        for app in args.apps.split(","):
            files, source = inputs(app, args.files, tmp)
            one = loop(app, files[:args.loop_files])
            row = {"source": source, "loop_files_per_s": round(one, 2)}
            for workers in (1, 2):
                rate = batch(app, files, workers, tmp)
                row[f"batch_{workers}_worker_files_per_s"] = round(rate, 2)
                row[f"batch_{workers}_over_loop"] = round(rate / one, 1)
            result[app] = row
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
