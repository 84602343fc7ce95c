"""Do two BLAS calls at once, from two threads, run as fast as one alone? (Why kernels/lstm.py's halves of the
batch lose on some CPUs.)

Times --n single-threaded GEMMs of one half-batch step's shape (32x256 @ 256x1024, float32, np.dot in @njit,
SciPy's OpenBLAS as every kernel here uses it) alone, then the same in two threads at once, each on its own
output; and, as the peer that shows what two cores give, a plain compiled loop over an L2-sized vector the same
two ways. Prints one JSON object: for each, the ms alone, the ms of two at once, and their ratio (1.0: two cores
did twice the work in the same time; 2.0: none of it overlapped), --rounds times, with the CPU model.

    .venv/bin/python bench/bench_blas_concurrency.py [--n 2000] [--rounds 3]
"""
import argparse
import json
import sys
import threading
import time

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _dots(a, b, out, n):
    for _ in range(n):
        np.dot(a, b, out)


@njit(nogil=True, cache=True)
def _loop(v, n):
    s = 0.0
    for _ in range(n):
        for k in range(v.size):
            s += v[k] * 1.0000001
    return s


def _alone_and_two(fn, args_a, args_b):
    t0 = time.perf_counter()
    fn(*args_a)
    alone = time.perf_counter() - t0
    other = threading.Thread(target=fn, args=args_b)
    t0 = time.perf_counter()
    other.start()
    fn(*args_a)
    other.join()
    both = time.perf_counter() - t0
    return {"alone_ms": round(alone * 1e3, 1), "two_at_once_ms": round(both * 1e3, 1), "ratio": round(both / alone, 3)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="GEMMs a thread")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from suite.info import machine

    a = np.ones((32, 256), np.float32)
    b = np.ones((256, 1024), np.float32)
    outs = [np.empty((32, 1024), np.float32) for _ in range(2)]
    v = np.ones(1 << 16, np.float32)  # 256 KB
    _dots(a, b, outs[0], 2)
    _loop(v, 1)
    loops = max(args.n * 6, 1)  # about as long as the GEMMs on the AVX2 EPYC
    rounds = []
    with threadpool_limits(1, user_api="blas"):
        for _ in range(args.rounds):
            rounds.append({"gemm": _alone_and_two(_dots, (a, b, outs[0], args.n), (a, b, outs[1], args.n)),
                           "plain_loop": _alone_and_two(_loop, (v, loops), (v, loops))})
            print(json.dumps(rounds[-1]), file=sys.stderr)
    print(json.dumps({"gemm_shape": "32x256 @ 256x1024 float32, one BLAS thread each", "gemms_a_thread": args.n,
                      "machine": machine(), "rounds": rounds}, indent=2))


if __name__ == "__main__":
    main()
