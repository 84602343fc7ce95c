"""Convolution and attention kernels against torch, measured in the same run, 2 threads each.

Prints one JSON object: per case the median times (ms) of ours and torch's, run
in turns of a few calls each, and ratio = the median of each turn's ours / torch
(lower is better; bench/timing.py). The machine
is shared and noisy, so the ratio, not the absolute time, is the figure to
compare between runs. Both sides compute every gradient, the input's included.
When other jobs load the machine, two threads per side oversubscribe the cores
and both times balloon; --threads 1 then gives steadier ratios.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/bench_conv.py \
        [--repeat 20] [--threads 2] [--only conv]

(as `make bench` runs bench_lstm.py: lifting the pinned core type lets
kernels/__init__.py pick OpenBLAS's AVX-512 GEMMs where the CPU has them).
"""
import argparse
import json
import os
import sys


def _threads_from_argv(argv):
    """--threads N, read before numpy loads BLAS (which reads its thread count once)."""
    for k, arg in enumerate(argv):
        if arg == "--threads" and k + 1 < len(argv):
            return int(argv[k + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return 2


THREADS = _threads_from_argv(sys.argv[1:])
os.environ["OPENBLAS_NUM_THREADS"] = str(THREADS)

import suite  # noqa: E402,F401  (sets the BLAS core type before numpy loads BLAS)
import numpy as np  # noqa: E402

from suite.kernels.attention import additive_attention_backward, additive_attention_forward  # noqa: E402
from suite.kernels.conv import conv2d_backward, conv2d_forward  # noqa: E402
from timing import paired_ms  # noqa: E402  (bench/timing.py, beside this file)


def case_conv(rng, B, C, H, F, k, padding, repeat):
    """Forward + backward (dx, dw, db) of one conv layer."""
    import torch

    x = rng.standard_normal((B, C, H, H)).astype(np.float32)
    w = (rng.standard_normal((F, C, k, k)) * np.sqrt(2 / (C * k * k))).astype(np.float32)
    b = rng.standard_normal(F).astype(np.float32)
    Ho = H + 2 * padding - k + 1
    dy = rng.standard_normal((B, F, Ho, Ho)).astype(np.float32)

    def ours():
        y = conv2d_forward(x, w, b, 1, padding)
        return y, conv2d_backward(dy, x, w, 1, padding)

    xt, wt, bt = (torch.from_numpy(a).requires_grad_(True) for a in (x, w, b))
    dyt = torch.from_numpy(dy)

    def theirs():
        xt.grad = wt.grad = bt.grad = None
        y = torch.nn.functional.conv2d(xt, wt, bt, padding=padding)
        y.backward(dyt)
        return y

    y, (dx, dw, db) = ours()
    yt = theirs()
    err = max(float(np.abs(y - yt.detach().numpy()).max()),
              float(np.abs(dx - xt.grad.numpy()).max()))
    return (*paired_ms(ours, theirs, repeat), {"max_abs_diff": err})


def torch_additive_attention(torch, qp, keys, values, v, lengths):
    """The same attention in whole-tensor torch ops (what a torch user would write)."""
    scores = torch.tanh(qp[:, :, None, :] + keys[None]) @ v          # (T, B, N)
    mask = torch.arange(keys.shape[1])[None, :] >= lengths[:, None]  # (B, N)
    alpha = torch.softmax(scores.masked_fill(mask[None], float("-inf")), dim=-1)
    return torch.einsum("tbn,bnv->tbv", alpha, values)


def case_attention(rng, T, B, N, A, V, repeat):
    """Forward + backward (dqp, dkeys, dvalues, dv) over a memory of mixed lengths."""
    import torch

    qp = rng.standard_normal((T, B, A)).astype(np.float32)
    keys = rng.standard_normal((B, N, A)).astype(np.float32)
    values = rng.standard_normal((B, N, V)).astype(np.float32)
    v = (rng.standard_normal(A) / np.sqrt(A)).astype(np.float32)
    lengths = rng.integers(N // 2, N + 1, B)
    dcontext = rng.standard_normal((T, B, V)).astype(np.float32)

    def ours():
        context, alpha, cache = additive_attention_forward(qp, keys, values, v, lengths)
        return context, additive_attention_backward(dcontext, qp, keys, values, v, lengths,
                                                    alpha, cache)

    tensors = [torch.from_numpy(a).requires_grad_(True) for a in (qp, keys, values, v)]
    lt = torch.from_numpy(lengths)
    dct = torch.from_numpy(dcontext)

    def theirs():
        for t in tensors:
            t.grad = None
        context = torch_additive_attention(torch, *tensors, lt)
        context.backward(dct)
        return context

    context, grads = ours()
    ct = theirs()
    err = max(float(np.abs(context - ct.detach().numpy()).max()),
              float(np.abs(grads[0] - tensors[0].grad.numpy()).max()))
    return (*paired_ms(ours, theirs, repeat), {"max_abs_diff": err})


CASES = {
    "conv fwd+bwd B=32 3x64x64 -> 16, 3x3, padding 1":
        lambda rng, r: case_conv(rng, 32, 3, 64, 16, 3, 1, r),
    "conv fwd+bwd B=32 16x32x32 -> 32, 3x3, padding 1":
        lambda rng, r: case_conv(rng, 32, 16, 32, 32, 3, 1, r),
    "attention fwd+bwd T=12 B=32 N=64 A=128 V=64":
        lambda rng, r: case_attention(rng, 12, 32, 64, 128, 64, r),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--only", default="", help="run cases whose name contains this text")
    parser.add_argument("--threads", type=int, default=2,
                        help="BLAS and torch threads, the same for both (default 2)")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("bench needs torch as the reference: make test-deps (pip install torch==2.13.0)")
    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    results = []
    for name, run in CASES.items():
        if args.only and args.only not in name:
            continue
        ours, theirs, ratio, extra = run(rng, args.repeat)
        row = {"case": name, "ours_ms": round(ours, 3), "torch_ms": round(theirs, 3), "ratio": round(ratio, 3),
               "ratio_of_medians": round(ours / theirs, 3)}
        results.append(row | extra)
        print(json.dumps(row | extra), file=sys.stderr)
    from suite.info import machine

    print(json.dumps({"threads": THREADS, "torch": torch.__version__, "machine": machine(), "results": results},
                     indent=2))


if __name__ == "__main__":
    main()
