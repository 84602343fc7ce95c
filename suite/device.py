"""Where a model runs: `--device cpu|cuda|auto`, and the few array helpers layers need to work on either.

- ``resolve(name)``: "auto" is "cuda" for training when a usable NVIDIA GPU is
  found, else "cpu" (finding none costs no CUDA import: the driver's files are
  looked for first); "cuda" without a usable GPU raises DeviceError naming what is
  missing (the CLI prints it as one line and exits 2).
- A model moves with ``Module.to_device``: its parameters become device arrays,
  the layers then call the @cuda.jit twins in suite.kernels.cuda (imported only
  then), and checkpoints stay host arrays (train on a GPU, run on the CPU).
- ``on_device``, ``host``, ``add_into``, ``zeros_like``, ``concat_last``,
  ``take_last``, ``take_rows``: what layer code uses so one forward/backward (and
  one decoding loop) serves both places.
"""
import os

import numpy as np

DEVICES = ("auto", "cpu", "cuda")
GPU_APPS = {"text": ("train", "generate", "score", "cells"), "music": ("train", "compose", "harmonize", "evaluate"),
            "speech": ("train", "transcribe", "evaluate"), "handwriting": ("train", "read", "evaluate"),
            "caption": ("train", "describe", "evaluate"), "translate": ("train", "text", "po", "evaluate")}
"""The commands whose models run on a GPU so far. The layers of suite.nn (Linear, Embedding, Dropout, every
Recurrent kind stacked and bidirectional, Conv2d, ReLU, MaxPool2d, AdditiveAttention, the attention decoder),
the trainer (Adam, clipping) and the softmax and CTC losses are device-aware, and these models are built of
them (a loaded model moves in suite.shipped.load_app_model; CTC decoding runs on the host; translate's
validation chrF decodes a host copy). Generation (text generate, music compose and harmonize) reads one token
at a time through the layers on the device (suite.lm.step_loop): text draws on the device's sampling kernel,
music copies each voice slot's logits back to mask them under its rules and draw on the host, as the compiled
loop does. `text cells` runs its stream through the layers there and copies every cell state back.
Translate's and caption's beam searches (suite.beam) and caption's batched greedy decoding run the encoders and
each decoder step on the device and copy each step's logits and attention back for the choices.
Still on the CPU: text score --adapt (dynamic evaluation updates the weights with host arithmetic), compress
and decompress (the arithmetic coder must see the same probabilities on the machine that decodes), and every
export."""


AUTO_COMMANDS = ("train",)
"""Where "auto" picks a GPU by itself. Not reading one file: our @cuda.jit kernels
are compiled in every new process (they are not cached on disk), which would cost a
one-file command more than the GPU saves; `--device cuda` still runs it there."""


class DeviceError(RuntimeError):
    """A device was asked for that cannot be used here: the message says why and what to do."""


def _driver_present():
    """A cheap look for an NVIDIA driver (no CUDA import): its /proc entry or libcuda."""
    if os.path.exists("/proc/driver/nvidia/version"):
        return True
    import ctypes.util

    return ctypes.util.find_library("cuda") is not None


def gpu_status():
    """(usable, reason) for our CUDA kernels: the simulator (NUMBA_ENABLE_CUDASIM=1) counts as usable
    only for tests, so it is reported but "auto" never picks it."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1" and not _driver_present():
        return False, "no NVIDIA driver found (no /proc/driver/nvidia, no libcuda)"
    try:
        from suite.kernels.cuda import status
    except Exception as exc:  # noqa: BLE001  (numba's CUDA target missing or broken)
        return False, f"numba's CUDA target cannot be imported ({exc}); pip install 'suite[cuda]'"
    return status()


def resolve(name, app=None, command=None):
    """"cpu" or "cuda" for ``--device name``; DeviceError when "cuda" cannot be used.

    app, command: where it is asked; a command whose model does not run on a GPU
    yet (GPU_APPS) gets "cpu" for "auto" and DeviceError for "cuda".
    """
    if name not in DEVICES:
        raise DeviceError(f"unknown device {name!r}: choose one of {', '.join(DEVICES)}")
    if name == "cpu":
        return "cpu"
    supported = app is None or command in GPU_APPS.get(app, ())
    if name == "auto":
        if not supported or command not in AUTO_COMMANDS or os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
            return "cpu"
        return "cuda" if gpu_status()[0] else "cpu"
    ok, reason = gpu_status()
    if not ok:
        raise DeviceError(f"--device cuda needs a usable NVIDIA GPU: {reason}; use --device cpu")
    if not supported:
        where = ", ".join(f"`suite {a} {c}`" for a, cs in GPU_APPS.items() for c in cs)
        raise DeviceError(f"`suite {app} {command}` runs on the CPU only so far (on the GPU: {where}); "
                          "use --device cpu")
    return "cuda"


def device_option(fn):
    """--device auto|cpu|cuda on a train, evaluate or inference command (shared by model_option and
    training_options). It is resolved while the command line is parsed: a device that cannot be used is a
    one-line error and exit 2 before anything loads; the result is ``current()`` inside the command."""
    import click

    class Unusable(click.ClickException):
        exit_code = 2

    def callback(ctx, param, value):
        app = ctx.parent.info_name if ctx.parent is not None else None
        try:
            ctx.meta[_META_KEY] = resolve(value, app, ctx.info_name)
        except DeviceError as exc:
            raise Unusable(str(exc)) from None
        return value

    return click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                        expose_value=False, callback=callback, is_eager=False,
                        help="Where the model runs: cuda (an NVIDIA GPU), cpu, or auto (cuda for training when a "
                             "usable GPU is found).")(fn)


_META_KEY = "suite.device"


def current():
    """The device the running command's --device resolved to ("cpu" outside a command or without one)."""
    import click

    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(_META_KEY, "cpu") if ctx is not None else "cpu"


# -- arrays on either side -------------------------------------------------------------


def on_device(a):
    """True for a device array (numba's, or the simulator's stand-in)."""
    return hasattr(a, "copy_to_host")


def host(a):
    """A NumPy array of ``a`` (a device array copied back; anything else through np.asarray)."""
    return a.copy_to_host() if on_device(a) else np.asarray(a)


def to_device(a):
    from suite.kernels.cuda import to_device as move

    return move(a)


def like(a, ref):
    """``a`` C-contiguous in ref's dtype, where ref lives (a host array cast and copied to the device for a
    device ref; a device array as it is): what a layer does to its input before calling a kernel."""
    if on_device(ref):
        if on_device(a):
            return a
        from suite.kernels.cuda import to_device as move

        return move(np.asarray(a, dtype=ref.dtype))
    return np.ascontiguousarray(host(a), dtype=ref.dtype)


def add_into(dst, src):
    """dst += src in place, on the host or the device (gradient accumulation)."""
    if on_device(dst):
        from suite.kernels.cuda.elementwise import axpy

        axpy(dst, src)
    else:
        dst += host(src)


def zeros_like(a):
    """Zeros of a's shape and dtype, where ``a`` lives."""
    if on_device(a):
        from suite.kernels.cuda import zeros

        return zeros(a.shape, a.dtype)
    return np.zeros_like(a)


def concat_last(arrays):
    """The arrays joined on their last axis, where they live (a device kernel for device arrays)."""
    if on_device(arrays[0]):
        from suite.kernels.cuda.elementwise import concat_last as join

        return join(list(arrays))
    return np.concatenate(arrays, axis=-1)


def take_last(a, start, stop):
    """a[..., start:stop] as a C-contiguous array, where ``a`` lives."""
    if on_device(a):
        from suite.kernels.cuda.elementwise import take_last as take

        return take(a, start, stop)
    return np.ascontiguousarray(a[..., start:stop])


def take_rows(a, rows):
    """a[rows] (rows: host ints, indexing the first axis) as a C-contiguous array, where ``a`` lives."""
    if on_device(a):
        from suite.kernels.cuda.elementwise import gather_rows

        shape = tuple(a.shape)
        n = int(np.prod(shape[1:], dtype=np.int64))
        return gather_rows(a.reshape(shape[0], n), np.asarray(rows)).reshape((len(rows),) + shape[1:])
    return a[rows]


def kernels(name, like):
    """The kernel module ``name`` (e.g. "lstm") for arrays like ``like``: suite.kernels.cuda.NAME for a device
    array, suite.kernels.NAME otherwise."""
    import importlib

    return importlib.import_module(f"suite.kernels.{'cuda.' if on_device(like) else ''}{name}")


def softmax_cross_entropy(logits, targets, ignore_index=-100):
    """suite.kernels.losses.softmax_cross_entropy (loss, count, dlogits), or its GPU twin for device logits
    (dlogits then stays on the device; the loss is a float either way)."""
    loss, count, dlogits = kernels("losses", logits).softmax_cross_entropy(logits, targets, ignore_index=ignore_index)
    return (float(host(loss).reshape(-1)[0]) if on_device(loss) else loss), count, dlogits
