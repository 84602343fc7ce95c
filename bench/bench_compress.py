"""The text compressor (`suite text compress`) against xz, bzip2 and zstd, on files the model never trained on.

Files: 20 Python modules from this environment's site-packages (the text model
trained on the standard library only; site-packages were excluded from its
corpus), chosen deterministically (sorted paths between 8 and 64 KB, evenly
spaced), and 5 non-Python texts (licences in /usr/share/common-licenses). For
each: bits per character of xz -9e, bzip2 -9, zstd -19 (their CLIs, whole files
with headers), of the static model (the trained weights reading the file as one
stream: an ideal code length) and of the adapted model (the real .lstm file size,
header included: the adapting LSTM mixed with the match model), and seconds per
MB of each; the adapted scorer (`score --adapt`, no match model) is timed too;
every .lstm file is decompressed and compared with the original. The model and its settings are the same for
every file. Prints one JSON object.

    .venv/bin/python bench/bench_compress.py [--model DIR] [--py 20] [--other 5]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LICENSES = ("GPL-3", "Apache-2.0", "MPL-2.0", "LGPL-2.1", "Artistic")


def python_files(n):
    import site

    roots = [Path(p) for p in site.getsitepackages() if Path(p).is_dir()]
    files = sorted(p for root in roots for p in root.rglob("*.py")
                   if 8_000 <= p.stat().st_size <= 64_000 and "__pycache__" not in p.parts)
    if len(files) < n:
        return files
    step = len(files) / n
    return [files[int(k * step)] for k in range(n)]


def other_files(n):
    root = Path("/usr/share/common-licenses")
    return [root / name for name in LICENSES if (root / name).is_file()][:n]


def peer(cmd, data):
    t0 = time.perf_counter()
    out = subprocess.run(cmd, input=data, capture_output=True, check=True).stdout
    return len(out), time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--py", type=int, default=20)
    ap.add_argument("--other", type=int, default=5)
    args = ap.parse_args()

    from suite.apps.text.compress import START, compress, decompress, model_hash, settings_of
    from suite.apps.text.model import LN2, load_model
    from suite.dyneval import adaptive_score
    from suite.info import cpu_model
    from suite.shipped import default_model_dir

    model_dir = args.model or default_model_dir("text")
    model, vocab, card = load_model(model_dir)
    settings = settings_of(card)
    sha = model_hash(model_dir)
    compress(model, vocab, sha, b"compile\n", settings)  # numba's on-disk cache makes this quick after the first run
    rows = []
    for kind, paths in (("python", python_files(args.py)), ("other", other_files(args.other))):
        for path in paths:
            data = path.read_bytes()
            text = data.decode("utf-8", "surrogateescape")
            n = len(text)
            row = {"file": str(path), "kind": kind, "chars": n, "bytes": len(data)}
            for name, cmd in (("xz", ["xz", "-9e", "-c"]), ("bzip2", ["bzip2", "-9", "-c"]),
                              ("zstd", ["zstd", "-19", "-c", "-q"])):
                size, seconds = peer(cmd, data)
                row[name] = {"bits_per_char": round(8 * size / n, 4), "seconds_per_mb": round(seconds / len(data) * 1e6, 2)}
            ids = vocab.encode(START + text)
            t0 = time.perf_counter()
            static = float(adaptive_score(model, ids, replace(settings, lr=0.0, decay=0.0)).mean()) / LN2
            row["static"] = {"bits_per_char": round(static, 4),
                             "seconds_per_mb": round((time.perf_counter() - t0) / len(data) * 1e6, 2)}
            t0 = time.perf_counter()
            scored = float(adaptive_score(model, ids, settings).mean()) / LN2
            row["adapted_score"] = {"bits_per_char": round(scored, 4),
                                    "chars_per_second": round(n / (time.perf_counter() - t0))}
            t0 = time.perf_counter()
            blob, info = compress(model, vocab, sha, data, settings)
            t_c = time.perf_counter() - t0
            t0 = time.perf_counter()
            back = decompress(model, vocab, sha, blob)
            t_d = time.perf_counter() - t0
            row["adapted"] = {"bits_per_char": round(8 * len(blob) / n, 4), "seconds_per_mb": round(t_c / len(data) * 1e6, 2),
                              "decompress_seconds_per_mb": round(t_d / len(data) * 1e6, 2),
                              "chars_per_second": round(n / t_c), "round_trip": back == data, "method": info["method"]}
            rows.append(row)
            print(f"{path.name}: xz {row['xz']['bits_per_char']:.3f} bzip2 {row['bzip2']['bits_per_char']:.3f} "
                  f"static {static:.3f} adapted {row['adapted']['bits_per_char']:.3f}", file=sys.stderr)
    py = [r for r in rows if r["kind"] == "python"]
    margin = sorted(min(r["xz"]["bits_per_char"], r["bzip2"]["bits_per_char"]) - r["adapted"]["bits_per_char"]
                    for r in py)
    chars = sum(r["chars"] for r in rows)
    seconds = sum(r["bytes"] * r["adapted"]["seconds_per_mb"] / 1e6 for r in rows)
    summary = {
        "python_files": len(py),
        "adapted_below_xz_and_bzip2": sum(1 for r in py if r["adapted"]["bits_per_char"] < min(
            r["xz"]["bits_per_char"], r["bzip2"]["bits_per_char"])),
        "median_margin_below_the_better_of_xz_bzip2": round(statistics.median(margin), 4) if margin else None,
        "median_bits_per_char": {name: round(statistics.median(r[name]["bits_per_char"] for r in py), 4)
                                 for name in ("xz", "bzip2", "zstd", "static", "adapted_score", "adapted")}
        if py else None,
        "compress_chars_per_second": round(chars / seconds) if seconds else None,
        "adapted_scoring_chars_per_second": round(chars / sum(r["chars"] / r["adapted_score"]["chars_per_second"]
                                                             for r in rows)) if rows else None,
        "round_trips_exact": all(r["adapted"]["round_trip"] for r in rows),
    }
    print(json.dumps({"bench": "text compressor", "cpu": cpu_model(), "threads": {
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"), "cores": os.cpu_count()},
        "adapt": settings.to_json(), "summary": summary, "files": rows}, indent=1))


if __name__ == "__main__":
    main()
