"""Where a model runs: `--device cpu|cuda|auto`, and the few array helpers layers need to work on either.

- Which device a command runs on (``resolve``, ``device_option``, ``current``)
  is suite.device_choice's, kept apart so that it needs no NumPy.
- A model moves with ``Module.to_device``: its parameters become device arrays,
  the layers then call the @cuda.jit twins in suite.kernels.cuda (imported only
  then), and checkpoints stay host arrays (train on a GPU, run on the CPU).
- ``on_device``, ``host``, ``add_into``, ``zeros_like``, ``concat_last``,
  ``take_last``, ``take_rows``: what layer code uses so one forward/backward (and
  one decoding loop) serves both places.
"""
import numpy as np


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
