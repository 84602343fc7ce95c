"""Kernel benchmarks against torch.nn, measured in the same run, 2 threads each.

Prints one JSON object: per case the median times (ms) of ours and torch's, run
in turns of a few calls each (bench/timing.py: each turn's first call, which
meets the other library's threads still spinning, is not counted), and ratio =
the median of each turn's ours / torch (lower is better; ratio_of_medians
beside it). The machine is shared and noisy, so the
ratio, not the absolute time, is the figure to compare between runs. Inference
and training cases also give gemm_floor_ms: the same run's time of the GEMMs
alone that the case's math needs, on the BLAS our kernels use; gemm_floor_ratio
= floor / torch is the lowest ratio any kernel built on that BLAS could reach.
The B=64 inference case's step GEMM is our own since 2026-12-08 (kernels/simd.py),
so its floor is BLAS's figure for comparison, not a bound.

    make bench            # or: .venv/bin/python bench/bench_lstm.py [--repeat 20] [--only gen]
"""
import argparse
import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from suite.kernels.lstm import lstm_backward, lstm_forward, lstm_infer  # noqa: E402
from suite.kernels.sampling import input_table, lstm_generate, new_rng  # noqa: E402
from timing import median_ms, paired_ms  # noqa: E402  (bench/timing.py, beside this file)

THREADS = 2


@njit(cache=True)
def _dots(a, b, out, repeat):
    for _ in range(repeat):
        np.dot(a, b, out)


def gemm_floor_ms(shapes, repeat):
    """Median ms of the GEMMs alone that a case's math needs, on the BLAS our kernels call (SciPy's OpenBLAS,
    through np.dot in @njit): [(M, K, N, times)] each run ``times`` times into one preallocated output. No
    kernel doing that math through this BLAS can be faster, so floor / torch bounds the ratio reachable here."""
    ops = []
    for M, K, N, times in shapes:
        a = np.full((M, K), 0.5, np.float32)
        b = np.full((K, N), 0.5, np.float32)
        ops.append((a, b, np.empty((M, N), np.float32), times))

    def run():
        for a, b, out, times in ops:
            _dots(a, b, out, times)

    return median_ms(run, repeat)


def lstm_weights(rng, layers, D, H):
    """Our layout (W_ih (D,4H), W_hh (H,4H), b (4H,)) and the torch module holding the same numbers."""
    import torch

    net = torch.nn.LSTM(D, H, num_layers=layers)
    ours = []
    with torch.no_grad():
        for k in range(layers):
            w_ih = getattr(net, f"weight_ih_l{k}").numpy()
            w_hh = getattr(net, f"weight_hh_l{k}").numpy()
            b = (getattr(net, f"bias_ih_l{k}") + getattr(net, f"bias_hh_l{k}")).numpy()
            ours.append((np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T), b.copy()))
    return ours, net


def case_inference(rng, B, T, D, H, layers, repeat):
    import torch

    weights, net = lstm_weights(rng, layers, D, H)
    x = rng.standard_normal((T, B, D)).astype(np.float32)

    def ours():
        y = x
        for W_ih, W_hh, b in weights:
            y, _, _ = lstm_infer(y, None, None, None, W_ih, W_hh, b)
        return y

    xt = torch.from_numpy(x)

    def theirs():
        with torch.no_grad():
            return net(xt)[0]

    err = float(np.abs(ours() - theirs().numpy()).max())
    ours_ms, torch_ms, ratio = paired_ms(ours, theirs, repeat)
    if B < 16:  # a matrix-vector product a step: memory-bound, no GEMM floor to speak of
        return ours_ms, torch_ms, ratio, {"max_abs_diff": err}
    # per layer, the input projection of all steps and the recurrent product of each step (batch-minor, as
    # _infer_wide runs it: OpenBLAS's faster shape for a 64-row batch), on BLAS (the kernel uses ours by halves)
    shapes = [(T * B, D if k == 0 else H, 4 * H, 1) for k in range(layers)] + [(4 * H, H, B, T)] * layers
    return ours_ms, torch_ms, ratio, {"max_abs_diff": err} | _floor(shapes, repeat, torch_ms)


def _floor(shapes, repeat, torch_ms):
    floor = gemm_floor_ms(shapes, repeat)
    return {"gemm_floor_ms": round(floor, 3), "gemm_floor_ratio": round(floor / torch_ms, 3)}


def case_training(rng, B, T, D, H, repeat):
    import torch

    weights, net = lstm_weights(rng, 1, D, H)
    W_ih, W_hh, b = weights[0]
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    dy = rng.standard_normal((T, B, H)).astype(np.float32)

    def ours():
        y, hT, cT, cache = lstm_forward(x, None, None, None, W_ih, W_hh, b)
        return lstm_backward(dy, None, None, cache)

    xt = torch.from_numpy(x).requires_grad_(True)  # both sides compute dx
    dyt = torch.from_numpy(dy)

    def theirs():
        net.zero_grad()
        xt.grad = None
        y, _ = net(xt)
        y.backward(dyt)

    # forward: x @ W_ih for all steps, r @ W_hh a step; backward: W_hh @ dG^T a step (batch-minor, as
    # lstm_backward runs it from BATCH_MINOR_ROWS), then [dW_ih; dW_hh] in one GEMM ([x | r]^T @ dG), dx. The
    # whole batch's GEMMs at two BLAS threads: from SPLIT_BATCH rows lstm_forward runs halves of the batch instead
    G = 4 * H
    shapes = [(T * B, D, G, 1), (B, H, G, T), (H, G, B, T), (D + H, T * B, G, 1), (T * B, G, D, 1)]
    ours_ms, torch_ms, ratio = paired_ms(ours, theirs, repeat)
    return ours_ms, torch_ms, ratio, _floor(shapes, repeat, torch_ms)


def case_generation(rng, steps, H, layers, V, repeat):
    """Sample ``steps`` characters: stacked LSTM + linear + softmax + sample, one token at a time."""
    import torch

    weights, net = lstm_weights(rng, layers, V, H)
    head = torch.nn.Linear(H, V)
    W_out = np.ascontiguousarray(head.weight.detach().numpy().T)
    b_out = head.bias.detach().numpy().copy()
    table0 = input_table(weights[0][0], weights[0][2])  # one-hot input: a row gather
    W_ih = [None] + [w[0] for w in weights[1:]]  # layer 0 is in table0
    W_hh = [w[1] for w in weights]
    bs = [None] + [w[2] for w in weights[1:]]
    h0 = np.zeros((layers, H), np.float32)
    c0 = np.zeros((layers, H), np.float32)
    prime = np.array([1], dtype=np.int64)

    def ours():
        return lstm_generate(prime, steps, table0, W_ih, W_hh, bs, W_out, b_out, h0, c0,
                             temperature=1.0, top_k=0, rng=new_rng(0))

    def theirs():
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            x = torch.zeros(1, 1, V)
            x[0, 0, 1] = 1.0
            state = None
            out = []
            for _ in range(steps):
                y, state = net(x, state)
                probs = torch.softmax(head(y[0, 0]), dim=-1)
                tok = int(torch.multinomial(probs, 1, generator=gen))
                out.append(tok)
                x = torch.zeros(1, 1, V)
                x[0, 0, tok] = 1.0
        return out

    def plain():
        with torch.backends.mkldnn.flags(enabled=False):
            return theirs()

    ours_ms, torch_ms, ratio = paired_ms(ours, theirs, repeat, warmup=1, block=1)  # seconds a call
    # torch's default CPU LSTM goes through oneDNN (mkldnn), slow for one step at a
    # time; its plain ATen path is the stronger baseline, so report that ratio too.
    _, plain_ms, plain_ratio = paired_ms(ours, plain, repeat, warmup=1, block=1)
    return ours_ms, torch_ms, ratio, {"torch_no_mkldnn_ms": round(plain_ms, 3),
                                      "ratio_vs_no_mkldnn": round(plain_ratio, 3)}


CASES = {
    "inference B=1 T=100 D=64 H=256": (lambda rng, r: case_inference(rng, 1, 100, 64, 256, 1, r), None),
    "inference B=64 T=100 D=64 H=256, 2 layers": (lambda rng, r: case_inference(rng, 64, 100, 64, 256, 2, r), 1.3),
    "training fwd+bwd B=64 T=100 D=64 H=256": (lambda rng, r: case_training(rng, 64, 100, 64, 256, r), 1.3),
    "training fwd+bwd B=64 T=100 D=64 H=512": (lambda rng, r: case_training(rng, 64, 100, 64, 512, max(r // 2, 3)), 1.3),
    "generation 1000 steps H=512, 2 layers, V=96 + softmax + sample": (
        lambda rng, r: case_generation(rng, 1000, 512, 2, 96, max(r // 4, 3)), 0.6),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--only", default="", help="run cases whose name contains this text")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("bench needs torch as the reference: make test-deps (pip install torch==2.13.0)")
    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    results = []
    for name, (run, target) in CASES.items():
        if args.only and args.only not in name:
            continue
        ours, theirs, ratio, extra = run(rng, args.repeat)
        row = {"case": name, "ours_ms": round(ours, 3), "torch_ms": round(theirs, 3), "ratio": round(ratio, 3),
               "ratio_of_medians": round(ours / theirs, 3), "target_ratio": target}
        row["meets_target"] = None if target is None else row["ratio"] <= target
        results.append(row | extra)
        print(json.dumps(row | extra), file=sys.stderr)
    from suite.info import machine

    print(json.dumps({"threads": THREADS, "torch": torch.__version__, "machine": machine(), "results": results},
                     indent=2))


if __name__ == "__main__":
    main()
