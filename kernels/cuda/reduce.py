"""Reductions the device kernels share: block-wide trees, and column sums.

``block_sum``, ``block_max`` and ``block_min`` take one value from every
thread of a 1-D block and give every thread the result, through one
shared-memory tree: each thread writes its value to ``red[threadIdx.x]``,
then the lower half of the threads folds the upper half in, halving until
``red[0]`` holds the result. Hence:

- the block size is a power of two (each caller's THREADS, or its checked
  ``threads``): the tree spans ``cuda.blockDim.x`` threads, whether the caller
  fixed that at compile time or at launch;
- ``red`` is a shared array of at least blockDim.x elements, in the dtype
  the reduction should run in (the caller allocates it: shared arrays need a
  compile-time size);
- every thread of the block calls the reduction (it synchronises), and may
  reuse ``red`` as soon as it returns (it synchronises once more after every
  thread has read the result).

The pairing is fixed, so a float sum is the same bit for bit run after run.
Device functions are compiled for each argument type they are called with, so
one source serves float32, float64 and int64.
"""
from suite.kernels.cuda import cuda

_SUM, _MAX, _MIN = 0, 1, 2


@cuda.jit(device=True)
def _tree(red, x, op):
    """x of every thread folded by op (_SUM, _MAX or _MIN) over the block; every thread gets it."""
    tid = cuda.threadIdx.x
    red[tid] = x
    cuda.syncthreads()
    s = cuda.blockDim.x // 2
    while s > 0:
        if tid < s:
            a = red[tid]
            b = red[tid + s]
            if op == _SUM:
                red[tid] = a + b
            elif op == _MAX:
                red[tid] = max(a, b)
            else:
                red[tid] = min(a, b)
        cuda.syncthreads()
        s //= 2
    out = red[0]
    cuda.syncthreads()  # every thread has read red[0] before a next reduction overwrites it
    return out


@cuda.jit(device=True)
def block_sum(red, x):
    """The sum of x over the block's threads, in red's dtype (every thread gets it)."""
    return _tree(red, x, _SUM)


@cuda.jit(device=True)
def block_max(red, x):
    """The max of x over the block's threads (every thread gets it)."""
    return _tree(red, x, _MAX)


@cuda.jit(device=True)
def block_min(red, x):
    """The min of x over the block's threads (every thread gets it)."""
    return _tree(red, x, _MIN)


@cuda.jit
def column_sums(a, out):
    """out[k] = the sum of column k of a (N, K), rows in order, in out's dtype; a thread per column."""
    k = cuda.grid(1)
    if k < a.shape[1]:
        acc = out.dtype.type(0.0)
        for m in range(a.shape[0]):
            acc += a[m, k]
        out[k] = acc
