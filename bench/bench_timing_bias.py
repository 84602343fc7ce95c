"""Why bench/timing.py counts no turn's first call: the call-by-call pairing it replaced, measured beside it.

bench_lstm.py's B=64 two-layer inference case, two threads each, timed four ways in one run: torch alone
(median of calls in a row), torch right after each of ours (call by call, the old pairing: OpenBLAS's worker
threads still spin after our call returns), and the ratio ours / torch call by call against in blocks
(bench/timing.py's paired_ms). Prints one JSON object with the CPU model. Run it with and without
OPENBLAS_THREAD_TIMEOUT=4 (OpenBLAS's threads then sleep at once instead of spinning):

    .venv/bin/python bench/bench_timing_bias.py
    OPENBLAS_THREAD_TIMEOUT=4 .venv/bin/python bench/bench_timing_bias.py
"""
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from bench_lstm import lstm_infer, lstm_weights  # noqa: E402
from timing import median_ms, paired_ms  # noqa: E402


def call_by_call(ours, theirs, repeat):
    """(ours ms, theirs ms, ratio) with the two alternating call by call, every call counted (the old way)."""
    mine, peer = [], []
    for k in range(repeat):
        for fn, into in ((ours, mine), (theirs, peer))[::1 if k % 2 == 0 else -1]:
            t0 = time.perf_counter()
            fn()
            into.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(mine), statistics.median(peer), statistics.median(a / b for a, b in zip(mine, peer))


def main():
    try:
        import torch
    except ImportError:
        sys.exit("bench needs torch as the reference: make test-deps (pip install torch==2.13.0)")
    from suite.info import machine

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    weights, net = lstm_weights(rng, 2, 64, 256)
    x = rng.standard_normal((100, 64, 64)).astype(np.float32)
    xt = torch.from_numpy(x)

    def ours():
        y = x
        for W_ih, W_hh, b in weights:
            y, _, _ = lstm_infer(y, None, None, None, W_ih, W_hh, b)
        return y

    def theirs():
        with torch.no_grad():
            return net(xt)[0]

    ours(), theirs()
    rows = []
    for _ in range(3):
        old = call_by_call(ours, theirs, 15)
        new = paired_ms(ours, theirs, 15)
        rows.append({"ours_alone_ms": round(median_ms(ours, 15), 2), "torch_alone_ms": round(median_ms(theirs, 15), 2),
                     "call_by_call": {"ours_ms": round(old[0], 2), "torch_ms": round(old[1], 2), "ratio": round(old[2], 3)},
                     "blocks": {"ours_ms": round(new[0], 2), "torch_ms": round(new[1], 2), "ratio": round(new[2], 3)}})
    print(json.dumps({"bench": "timing bias: B=64 T=100 H=256 two-layer inference", "machine": machine(),
                      "OPENBLAS_THREAD_TIMEOUT": os.environ.get("OPENBLAS_THREAD_TIMEOUT"), "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
