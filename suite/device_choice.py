"""Which device a command runs on: `--device cpu|cuda|auto`, resolved while the command line is parsed.

- ``resolve(name)``: "auto" is "cuda" for training when a usable NVIDIA GPU is
  found, else "cpu" (finding none costs no CUDA import: the driver's files are
  looked for first); "cuda" without a usable GPU raises DeviceError naming what is
  missing (the CLI prints it as one line and exits 2).
- ``device_option`` puts --device on a command; ``current()`` is what it resolved to.

No NumPy here: every app's CLI imports this module to build its options, and
`suite --help` should not pay for NumPy. The array helpers are in suite.device.
"""
import os

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
