"""Kernel calls with their large temporaries on memory each thread keeps (suite/kernels/scratch.py) against a new
array each call, as before.

Cases: one LSTM layer's forward and backward (bench_lstm.py's training case: B=64, T=100, D=64, H=256 and 512),
and one conv layer's forward and backward at the handwriting model's second layer's size (B=24 lines,
16x32x800 -> 32 channels, 3x3, padding 1). Each way runs in its own process (so one cannot warm the other's
memory), the two alternating, --rounds times. Each process warms up, then times --steps steps and counts the
page faults they take (getrusage's minor faults). Prints one JSON object: per case and way, the median of the
rounds' median step times, the page faults a step, and kept/fresh, with the CPU model.

    .venv/bin/python bench/bench_scratch.py [--cases lstm256,lstm512,conv-line] [--rounds 3] [--steps 15]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


CASES = {"lstm256": "LSTM forward+backward B=64 T=100 D=64 H=256", "lstm512": "the same at H=512",
         "conv-line": "conv forward+backward B=24 16x32x800 -> 32, 3x3, padding 1"}


def _lstm_step(H):
    import numpy as np

    from suite.kernels.lstm import lstm_backward, lstm_forward

    rng = np.random.default_rng(0)
    T, B, D = 100, 64, 64
    W_ih = (0.1 * rng.standard_normal((D, 4 * H))).astype(np.float32)
    W_hh = (0.1 * rng.standard_normal((H, 4 * H))).astype(np.float32)
    b = np.zeros(4 * H, np.float32)
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    dy = rng.standard_normal((T, B, H)).astype(np.float32)

    def step():
        _, _, _, cache = lstm_forward(x, None, None, None, W_ih, W_hh, b)
        return lstm_backward(dy, None, None, cache)

    return step


def _conv_step():
    import numpy as np

    from suite.kernels.conv import conv2d_backward, conv2d_forward

    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 16, 32, 800)).astype(np.float32)
    w = (0.1 * rng.standard_normal((32, 16, 3, 3))).astype(np.float32)
    b = np.zeros(32, np.float32)

    def step():
        y = conv2d_forward(x, w, b, 1, 1)
        return conv2d_backward(y, x, w, 1, 1)

    return step


def child(case, steps, keep):
    import resource
    import time

    from suite.kernels import scratch

    scratch.KEEP = keep
    step = _conv_step() if case == "conv-line" else _lstm_step(int(case[len("lstm"):]))
    for _ in range(3):
        step()
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    print(json.dumps({"ms": 1000 * statistics.median(times), "faults_per_step": faults / steps}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--fresh", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        return child(args.child, args.steps, keep=not args.fresh)
    env = dict(os.environ, OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    results = []
    for case in args.cases.split(","):
        if case not in CASES:
            ap.error(f"unknown case {case!r}: choose from {', '.join(CASES)}")
        runs = {"kept": [], "fresh": []}
        for _ in range(args.rounds):
            for setting in runs:
                cmd = [sys.executable, __file__, "--child", case, "--steps", str(args.steps)]
                out = subprocess.run(cmd + (["--fresh"] if setting == "fresh" else []), env=env,
                                     capture_output=True, text=True, check=True).stdout
                runs[setting].append(json.loads(out.strip().splitlines()[-1]))
        row = {"case": case}
        for setting, got in runs.items():
            row[f"{setting}_ms"] = round(statistics.median(r["ms"] for r in got), 1)
            row[f"{setting}_faults_per_step"] = round(statistics.median(r["faults_per_step"] for r in got))
            row[f"{setting}_ms_by_round"] = [round(r["ms"], 1) for r in got]
        row["kept_over_fresh"] = round(row["kept_ms"] / row["fresh_ms"], 3)
        results.append(row)
        print(json.dumps(row), file=sys.stderr)
    from suite.info import machine

    print(json.dumps({"cases": CASES, "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "1"),
                      "machine": machine(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
