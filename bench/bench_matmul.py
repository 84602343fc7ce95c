"""Per-step products of a few rows: kernels/matmul.py against OpenBLAS (and torch) in the same run, one thread.

out = a @ W for a (M, K) and W (K, N), as an LSTM step computes h @ W_hh (K = H, N = 4H) and its backward
pass dG @ W_hh^T (K = 4H, N = H), for M from 1 row (reading, generating) to 32. Ours is matmul_into
(rows_matmul_acc from 2 to SMALL_ROWS rows); the peers are np.dot inside @njit (SciPy's OpenBLAS, what the kernels
called before) and torch.mm into a preallocated output where torch is installed. Median microseconds of 7
batches of calls. Prints one JSON object with the CPU model.

    .venv/bin/python bench/bench_matmul.py [--H 192,256,512]
"""
import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from suite.kernels.matmul import SMALL_ROWS, matmul_into  # noqa: E402


@njit(cache=True)
def _blas_into(a, W, out, repeat):
    for _ in range(repeat):
        np.dot(a, W, out)


@njit(cache=True)
def _ours_into(a, W, out, repeat):
    for _ in range(repeat):
        matmul_into(a, W, out)


def _median_us(fn, calls):
    fn(1)
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        fn(calls)
        times.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--H", default="192,256,512", help="hidden sizes, comma-separated")
    ap.add_argument("--rows", default="1,2,5,8,16,24,32")
    args = ap.parse_args(argv)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    rows = []
    for H in (int(h) for h in args.H.split(",")):
        for shape, (K, N) in (("h @ W_hh", (H, 4 * H)), ("dG @ W_hh^T", (4 * H, H))):
            W = rng.standard_normal((K, N)).astype(np.float32)
            for M in (int(m) for m in args.rows.split(",")):
                a = rng.standard_normal((M, K)).astype(np.float32)
                out = np.empty((M, N), np.float32)
                calls = max(20, int(2e8 / (M * K * N)))
                row = {"H": H, "product": shape, "rows": M,
                       "ours_us": round(_median_us(lambda n: _ours_into(a, W, out, n), calls), 2),
                       "openblas_us": round(_median_us(lambda n: _blas_into(a, W, out, n), calls), 2)}
                err = float(np.abs(out - a.astype(np.float64) @ W.astype(np.float64)).max())
                row["ours_over_openblas"] = round(row["ours_us"] / row["openblas_us"], 3)
                if torch is not None:
                    at, Wt, ot = torch.from_numpy(a), torch.from_numpy(W), torch.from_numpy(out)

                    def mm(n):
                        for _ in range(n):
                            torch.mm(at, Wt, out=ot)

                    row["torch_us"] = round(_median_us(mm, calls), 2)
                    row["ours_over_torch"] = round(row["ours_us"] / row["torch_us"], 3)
                row["max_abs_err_vs_float64"] = err
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    from suite.info import machine

    print(json.dumps({"threads": 1, "small_rows": SMALL_ROWS, "machine": machine(), "results": rows}, indent=2))


if __name__ == "__main__":
    main()
