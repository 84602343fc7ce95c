"""Two cores by halves of a batch: the rows of a batch that never meet (an LSTM's through time, a convolution's
images) run as two calls side by side, one thread each, with BLAS held to one thread meanwhile.

One BLAS call on two threads splits one product; the compiled loops around it (an LSTM's gates, a convolution's
unrolling) run on one core. By halves, both cores run everything. The kernels' compiled code releases the GIL.
kernels/lstm.py (SPLIT_BATCH) and kernels/conv.py (CONV_SPLIT_BATCH) say where it paid.

BLAS is held with threadpoolctl, which limits only the libraries loaded when it looks: SciPy's OpenBLAS (the one
np.dot in @njit code calls) is loaded first (kernels/blas.py). Without that, a process whose first
kernel call split ran two-thread GEMMs side by side, twice as slow as the whole batch.
"""
_POOL = None
_BLAS = None
_SPLITTING = False


def halves(B, min_rows):
    """[(0, m), (m, B)] row ranges to run side by side, or None to run the batch whole: fewer than min_rows rows,
    already inside a half, threadpoolctl missing, or BLAS on one thread (the caller's choice: keep to one core)."""
    if B < min_rows or _SPLITTING:
        return None  # small, or already inside a half (its pool thread must not wait on itself)
    threads = blas_threads()
    if threads is None or threads < 2:
        return None
    m = B // 2
    return [(0, m), (m, B)]


def blas_threads():
    """The threads BLAS may use now (1 inside a half), or None where threadpoolctl is missing."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return None
        from suite.kernels.blas import load_kernel_blas

        load_kernel_blas()  # before the controller looks: a process's first kernel call may be split
        _BLAS = ThreadpoolController().select(user_api="blas")
    return min((lib.num_threads for lib in _BLAS.lib_controllers), default=1)


def by_halves(halves, fn):
    """[fn(b0, b1) for each half], the halves at once, BLAS on one thread meanwhile (which also keeps the calls
    inside from splitting again)."""
    global _POOL, _SPLITTING
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="suite-halves")
    _SPLITTING = True
    try:
        with _BLAS.limit(limits=1):
            other = _POOL.submit(fn, *halves[1])
            try:
                first = fn(*halves[0])
            finally:
                second = other.result()  # waited for even when the first half failed
            return [first, second]
    finally:
        _SPLITTING = False
