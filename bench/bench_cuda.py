"""Our @cuda.jit LSTM against torch's cuDNN LSTM on one NVIDIA GPU, measured in the same run.

Cases (the issue's): B=64, T=100, D=H, H=256 and 512, inference (forward without a cache) and training
(forward + backward through time). Prints one JSON object: the machine (CPU, GPU), per case the median
times (ms, after cuda synchronisation) of ours and torch's, ratio = ours / torch (lower is better), and
the largest difference of outputs and input gradients from torch's on the same weights (a real GPU
correctness check beside the simulator tests).

    .venv/bin/python bench/bench_cuda.py [--repeat 20] [--sizes 256,512]

Without a usable GPU it prints {"skipped": reason} and exits 0; where torch has no CUDA, the torch columns
are null and the ratio is missing (our times and the check against the CPU kernels are still printed).
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np


def median_ms(fn, sync, repeat, warmup=3):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def case(B, T, H, repeat, torch):
    from suite.kernels.cuda import cuda, to_device, to_host
    from suite.kernels.cuda import lstm as gpu
    from suite.kernels.lstm import lstm_forward as cpu_forward

    rng = np.random.default_rng(0)
    D = H
    bound = 1 / np.sqrt(H)
    W_ih = rng.uniform(-bound, bound, (D, 4 * H)).astype(np.float32)
    W_hh = rng.uniform(-bound, bound, (H, 4 * H)).astype(np.float32)
    b = rng.uniform(-bound, bound, 4 * H).astype(np.float32)
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    dy = rng.standard_normal((T, B, H)).astype(np.float32)
    lengths = np.full(B, T, np.int64)
    dev = [to_device(a) for a in (x, W_ih, W_hh, b, dy)]
    xd, W_ihd, W_hhd, bd, dyd = dev
    h0 = np.zeros((B, H), np.float32)

    def infer():
        return gpu.lstm_infer(xd, lengths, h0, h0, W_ihd, W_hhd, bd)

    def train():
        y, hT, cT, cache = gpu.lstm_forward(xd, lengths, h0, h0, W_ihd, W_hhd, bd)
        return gpu.lstm_backward(dyd, None, None, cache)

    out = {"B": B, "T": T, "H": H}
    out["ours_infer_ms"] = round(median_ms(infer, cuda.synchronize, repeat), 3)
    out["ours_train_ms"] = round(median_ms(train, cuda.synchronize, repeat), 3)
    y_ours = to_host(infer()[0])
    y_cpu = cpu_forward(x, lengths, h0, h0, W_ih, W_hh, b)[0]
    out["max_abs_diff_vs_cpu_kernel"] = float(np.abs(y_ours - y_cpu).max())
    if torch is None:
        out.update(torch_infer_ms=None, torch_train_ms=None)
        return out
    net = torch.nn.LSTM(D, H).cuda()
    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.from_numpy(W_ih.T.copy()))
        net.weight_hh_l0.copy_(torch.from_numpy(W_hh.T.copy()))
        net.bias_ih_l0.copy_(torch.from_numpy(b))
        net.bias_hh_l0.zero_()
    xt = torch.from_numpy(x).cuda().requires_grad_(True)
    dyt = torch.from_numpy(dy).cuda()

    def t_infer():
        with torch.no_grad():
            return net(xt)

    def t_train():
        y, _ = net(xt)
        y.backward(dyt)

    out["torch_infer_ms"] = round(median_ms(t_infer, torch.cuda.synchronize, repeat), 3)
    out["torch_train_ms"] = round(median_ms(t_train, torch.cuda.synchronize, repeat), 3)
    out["infer_ratio"] = round(out["ours_infer_ms"] / out["torch_infer_ms"], 3)
    out["train_ratio"] = round(out["ours_train_ms"] / out["torch_train_ms"], 3)
    xt.grad = None
    y_t, _ = net(xt)
    y_t.backward(dyt)
    dx_ours = to_host(train()[0])
    out["max_abs_diff_y_vs_torch"] = float(np.abs(y_ours - y_t.detach().cpu().numpy()).max())
    out["max_abs_diff_dx_vs_torch"] = float(np.abs(dx_ours - xt.grad.cpu().numpy()).max())
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--sizes", default="256,512")
    args = parser.parse_args(argv)
    from suite.device_choice import gpu_status
    from suite.info import machine

    ok, reason = gpu_status()
    report = {"bench": "cuda_lstm", "machine": machine(), "gpu": reason}
    if not ok or "simulator" in reason:
        report["skipped"] = f"no usable NVIDIA GPU: {reason}"
        print(json.dumps(report, indent=2))
        return 0
    torch = torch_cuda()
    report["torch"] = None if torch is None else f"{torch.__version__}, cuDNN {torch.backends.cudnn.version()}"
    report["cases"] = [case(64, 100, int(h), args.repeat, torch) for h in args.sizes.split(",")]
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
