"""How long a user waits for each app's main command, end to end, with numba's cache warm (`make install` warms it).

Runs each command as a user would (a new `suite` process), once to be sure the
cache is warm, then --repeat times, and prints one JSON object: the median
seconds of each, beside `suite --help` (the floor: Python and click
starting). One BLAS thread. The peer is that floor, measured in the same run.

    .venv/bin/python bench/bench_startup.py [--repeat 5]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "data" / "examples"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from suite.info import cpu_model

    suite = str(Path(sys.executable).with_name("suite"))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        commands = {
            "suite --help": ["--help"],
            "text generate --length 100": ["text", "generate", "--length", "100", "--seed", "1"],
            "music compose (16 bars, MIDI + audio + PNG)": ["music", "compose", "-o", f"{tmp}/c", "--seed", "1",
                                                            "--force"],
            "speech transcribe (2.6 s clip)": ["speech", "transcribe", str(EXAMPLES / "go-three-zero-four-oh.wav")],
            "caption image": ["caption", str(EXAMPLES / "shapes.png")],
            "handwriting read line": ["handwriting", "read", str(EXAMPLES / "handwriting-line.png")],
            "handwriting write (5 words)": ["handwriting", "write", "The quick brown fox jumps", "-o",
                                            f"{tmp}/w.png", "--force"],
            "translate one message": ["translate", "Open the file", "--to", "de"],
        }
        result = {}
        for name, cmd in commands.items():
            times = []
            for k in range(args.repeat + 1):
                t0 = time.perf_counter()
                subprocess.run([suite, *cmd], env=env, capture_output=True, check=True, cwd=tmp)
                if k:
                    times.append(time.perf_counter() - t0)
            result[name] = round(statistics.median(times), 2)
    print(json.dumps({"bench": "command latency, numba cache warm", "cpu": cpu_model(), "repeat": args.repeat,
                      "median_seconds": result}, indent=1))


if __name__ == "__main__":
    main()
