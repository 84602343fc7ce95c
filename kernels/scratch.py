"""Working memory that each thread keeps between kernel calls.

A kernel's large temporaries (the LSTM backward's gate gradients, 26 MB at
B=64, T=100, H=256; the convolution's unrolled image columns, 15 MB for one
line image of the handwriting model's second layer) were new arrays on every
call. glibc's malloc maps a block that size afresh and unmaps it when freed,
so every 4 KB page of it faulted and was zeroed by the OS on every call:
7,214 faults a training step in the LSTM case above, 9,537 a forward and
backward of that conv layer (B=24, 16x32x800 -> 32). Each thread now keeps
one buffer, grown to the largest size asked for, and a kernel call takes its
temporaries from it (bench/bench_scratch.py measures both ways).

What is taken from the workspace must not outlive the call: nothing a kernel
returns may be a piece of it, and a second ``workspace`` call in the same
thread hands out the same memory.
"""
import threading

import numpy as np
from numba import njit

from suite.kernels.config import JIT

KEEP = True
"""False: a new array from numba's runtime allocator on every call, as the kernels allocated before (the
bench's comparison)."""

ALIGN = 16  # elements between piece starts are a multiple of this (64 bytes for float32): whole cache lines

_LOCAL = threading.local()


@njit(**JIT)
def _runtime_empty(n, like):
    """n elements of like's dtype from numba's runtime allocator (plain malloc), as the kernels' own np.empty /
    np.zeros allocated their temporaries before the workspace; NumPy's allocator asks for huge pages on large
    arrays, which fault less, so np.empty would not be the old way."""
    return np.empty(n, like.dtype)


def workspace(n, dtype):
    """A flat array of at least n elements of ``dtype`` (contents undefined) on memory this thread keeps."""
    n = max(int(n), 1)
    if not KEEP:
        return _runtime_empty(n, np.empty(0, dtype))
    buf = getattr(_LOCAL, "buf", None)
    if buf is None or buf.dtype != dtype or buf.size < n:
        buf = _LOCAL.buf = np.empty(n, dtype)
    return buf[:n]


def pieces(dtype, *shapes):
    """Arrays of the given shapes (C-contiguous, contents undefined), cut from one ``workspace``, each starting on
    a multiple of ALIGN elements."""
    sizes = [int(np.prod(shape)) for shape in shapes]
    starts, total = [], 0
    for size in sizes:
        starts.append(total)
        total += -(-size // ALIGN) * ALIGN
    buf = workspace(total, dtype)
    return [buf[start:start + size].reshape(shape) for start, size, shape in zip(starts, sizes, shapes)]
