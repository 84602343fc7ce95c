"""Compilation options shared by every kernel, named once.

fastmath without 'nnan'/'ninf': inputs may hold NaN or inf and we want them to
propagate, not to be assumed away. 'contract' (FMA), 'arcp', 'reassoc', 'nsz'
and 'afn' let LLVM vectorise reductions and the gate loops.
error_model="numpy" stops Numba from inserting ZeroDivisionError checks that
block vectorisation. cache=True writes compiled code to NUMBA_CACHE_DIR (or
__pycache__ beside the source) so only the first run pays for compilation.
"""

FASTMATH = {"contract", "arcp", "reassoc", "nsz", "afn"}

JIT = dict(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)
