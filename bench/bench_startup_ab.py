"""What the two startup fixes of 2026-12-07 save, measured side by side in one run (warm numba cache).

The fixes: the `suite` command's import hook (suite/lean_imports.py: numba loads
scipy.linalg.cython_blas alone and skips cffi's parser) and n-gram LM arrays
stored packed in config.json. Each variant is a new process, run in turn with
the others (interleaved, so a slow minute of the machine hits all of them):

- "new": `suite ...` as shipped;
- "no hook": the same command line through `suite.cli.run` without the hook;
- "JSON-list LM": the shipped handwriting model with its LM written back as the
  plain JSON lists models were exported with before (a copy in a temp folder).

Prints one JSON object: medians (seconds) over --repeat runs after a warm-up,
and whether every variant printed the same text. The peer is the same command
without the fix, measured in the same run.

    .venv/bin/python bench/bench_startup_ab.py [--repeat 5]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "data" / "examples"


def unpacked_copy(model_dir, out_dir):
    """A copy of a model folder whose LM arrays are JSON lists of integers (the format before packing)."""
    from suite.ctc import CharNGramLM

    shutil.copytree(model_dir, out_dir)
    config = json.loads((model_dir / "config.json").read_text())
    config["meta"]["lm"] = CharNGramLM.from_dict(config["meta"]["lm"]).to_dict(packed=False)
    # compact, as the exporter wrote the lists (5.4 MB for the shipped model; indented it would be 30 MB)
    (out_dir / "config.json").write_text(json.dumps(config, separators=(",", ":")) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from suite.info import cpu_model

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    suite = str(Path(sys.executable).with_name("suite"))
    plain = [sys.executable, "-c", "import sys; sys.argv[0] = 'suite'; from suite.cli import run; sys.exit(run())"]
    line = str(EXAMPLES / "handwriting-line.png")
    clip = str(EXAMPLES / "go-three-zero-four-oh.wav")
    shipped = ROOT / "data" / "models" / "handwriting"
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "handwriting-json-lists"
        unpacked_copy(shipped, old)
        read = ["handwriting", "read", line, "--model"]
        variants = {
            "handwriting read: new": [suite, *read, str(shipped)],
            "handwriting read: no hook": [*plain, *read, str(shipped)],
            "handwriting read: JSON-list LM": [suite, *read, str(old)],
            "handwriting read: neither (before)": [*plain, *read, str(old)],
            "speech transcribe: new": [suite, "speech", "transcribe", clip],
            "speech transcribe: no hook (before)": [*plain, "speech", "transcribe", clip],
            "suite --help": [suite, "--help"],
        }
        times = {name: [] for name in variants}
        outputs = {}
        for k in range(args.repeat + 1):
            for name, cmd in variants.items():
                t0 = time.perf_counter()
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=tmp).stdout
                if k:
                    times[name].append(time.perf_counter() - t0)
                outputs.setdefault(name.split(":")[0], set()).add(out)
    print(json.dumps({"bench": "startup fixes, interleaved A/B, numba cache warm", "cpu": cpu_model(),
                      "repeat": args.repeat,
                      "median_seconds": {name: round(statistics.median(v), 3) for name, v in times.items()},
                      "same_output": all(len(v) == 1 for v in outputs.values())}, indent=1))


if __name__ == "__main__":
    main()
