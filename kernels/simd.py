"""Our own GEMM for a short right-hand side: z (M, N) = A (M, K) @ u (K, N), N a few vectors wide.

Written with 8-float vectors as values (the Vec8 type and its intrinsics below, plain LLVM vector IR): a tile's
accumulators live in registers for the whole K loop, which LLVM's vectorisers do not arrange from scalar
loops (a scalar version of the same tile measured 4.5 GFLOP/s). Each tile is 4 rows of A by 16 columns of u:
eight accumulators, two vector loads of u and four broadcasts of A a k, eight fused multiply-adds.

Where it pays: the batch-minor LSTM step (kernels/lstm.py, _infer_wide), A the (G*H, D+R+1) weights, u the
(K, B) state of a half of a 64-row batch. OpenBLAS packs all of A on every call, which it cannot spread over
the 100 steps that reuse it; here A's rows stream straight from memory. One thread, AVX2 EPYC, 2026-12-08,
1024 x K @ K x 32, 100 calls, medians of six turns (scratch): K=321 79-88 GFLOP/s against OpenBLAS's 73-76,
K=513 78-90 against 75-78.

The same tile (_tile) reads a convolution's taps straight from its padded input (taps_gemm, taps_gemm_planes;
kernels/conv.py), each row of U a slice of the input starting at the tap's offset, and taps_gemm_t gives its
weight gradient (one thread, 1,088 columns, 144 taps, 32 filters: 90-98 GFLOP/s both, about this core's peak).

float32 and C-contiguous only, N a multiple of 8; other arrays go to np.dot (gemm_cols).
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model

from suite.kernels.config import JIT

LANES = 8
_V8 = ir.VectorType(ir.FloatType(), LANES)


class Vec8(types.Type):
    """Eight float32 lanes in one register (LLVM <8 x float>)."""

    def __init__(self):
        super().__init__(name="vec8f32")


vec8 = Vec8()


@register_model(Vec8)
class _Vec8Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _V8)


def _f32_c(arr):
    return isinstance(arr, types.Array) and arr.dtype == types.float32 and arr.layout == "C"


def _lane_ptr(context, builder, arrty, arr, idx):
    data = cgutils.create_struct_proxy(arrty)(context, builder, value=arr).data
    return builder.bitcast(builder.gep(data, [idx]), _V8.as_pointer())


@intrinsic
def vload(typingctx, arr, idx):
    """The 8 floats of a C-contiguous float32 array from flat index idx (no bounds check)."""
    if not (_f32_c(arr) and isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        return builder.load(_lane_ptr(context, builder, sig.args[0], args[0], args[1]), align=4)

    return vec8(arr, idx), codegen


@intrinsic
def vstore(typingctx, arr, idx, v):
    """Store 8 floats into a C-contiguous float32 array from flat index idx (no bounds check)."""
    if not (_f32_c(arr) and isinstance(idx, types.Integer) and v == vec8):
        return None

    def codegen(context, builder, sig, args):
        builder.store(args[2], _lane_ptr(context, builder, sig.args[0], args[0], args[1]), align=4)
        return context.get_dummy_value()

    return types.none(arr, idx, v), codegen


def _splat(builder, x):
    """x (a float) in all eight lanes."""
    one = builder.insert_element(ir.Constant(_V8, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(_V8, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))


@intrinsic
def vsplat_at(typingctx, arr, idx):
    """arr's float at flat index idx (C-contiguous float32, no bounds check, no wraparound of negative indices:
    plain address arithmetic, where arr[i] would spend registers on the wraparound) in all eight lanes."""
    if not (_f32_c(arr) and isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        data = cgutils.create_struct_proxy(sig.args[0])(context, builder, value=args[0]).data
        return _splat(builder, builder.load(builder.gep(data, [args[1]]), align=4))

    return vec8(arr, idx), codegen


@intrinsic
def vzero(typingctx):
    """Eight zeros."""
    def codegen(context, builder, sig, args):
        return ir.Constant(_V8, [0.0] * LANES)

    return vec8(), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """a * b + c lane by lane, fused where the CPU has FMA (llvm.fmuladd)."""
    if not (a == b == c == vec8):
        return None

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V8, [_V8] * 3), "llvm.fmuladd.v8f32")
        return builder.call(fn, list(args))

    return vec8(a, b, c), codegen


def _row_start(starts, k):
    """Where row k of U starts in its flat array: starts[k] (a convolution's taps), or k * starts (a dense U,
    starts its width: no table to read)."""


@overload(_row_start, inline="always", jit_options=JIT)
def _row_start_impl(starts, k):
    if isinstance(starts, types.Integer):
        return lambda starts, k: k * starts
    return lambda starts, k: starts[k]


@njit(inline="always", **JIT)
def _tile(Af, a0, a1, a2, a3, K, src, starts, j, acc):
    """acc (a _zero_tile or _load_tile) plus the 4 x 16 tile of A @ U over K steps: A's four rows start at Af[a0],
    Af[a1], Af[a2], Af[a3] (one float a step, broadcast), U's row k at src[_row_start(starts, k) + j] (16 floats).
    Eight accumulators, two loads of U and four broadcasts of A a step, eight fused multiply-adds."""
    c00, c01, c10, c11, c20, c21, c30, c31 = acc
    for k in range(K):
        p = _row_start(starts, k) + j
        v0 = vload(src, p)
        v1 = vload(src, p + 8)
        w = vsplat_at(Af, a0 + k)
        c00 = vfma(w, v0, c00)
        c01 = vfma(w, v1, c01)
        w = vsplat_at(Af, a1 + k)
        c10 = vfma(w, v0, c10)
        c11 = vfma(w, v1, c11)
        w = vsplat_at(Af, a2 + k)
        c20 = vfma(w, v0, c20)
        c21 = vfma(w, v1, c21)
        w = vsplat_at(Af, a3 + k)
        c30 = vfma(w, v0, c30)
        c31 = vfma(w, v1, c31)
    return c00, c01, c10, c11, c20, c21, c30, c31


@njit(inline="always", **JIT)
def _rows_tile(Af, r0, K, src, starts, j):
    """The 4 x 16 tile of A @ U at A's rows r0 / K .. + 3 (flat Af, K wide), from zero."""
    return _tile(Af, r0, r0 + K, r0 + 2 * K, r0 + 3 * K, K, src, starts, j, _zero_tile())


@njit(inline="always", **JIT)
def _zero_tile():
    """A tile's eight accumulators, zero."""
    return vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero(), vzero()


@njit(inline="always", **JIT)
def _load_tile(zf, o, N):
    """The 4 x 16 values of the flat z (N wide) from index o, as a tile's accumulators."""
    return (vload(zf, o), vload(zf, o + 8), vload(zf, o + N), vload(zf, o + N + 8),
            vload(zf, o + 2 * N), vload(zf, o + 2 * N + 8), vload(zf, o + 3 * N), vload(zf, o + 3 * N + 8))


@njit(inline="always", **JIT)
def _store_tile(zf, o, N, t, rows=4):
    """A _tile's 4 x 16 values (its first ``rows`` rows) into the flat z (N wide) from index o."""
    for r in range(rows):
        vstore(zf, o + r * N, t[2 * r])
        vstore(zf, o + r * N + 8, t[2 * r + 1])


@njit(**JIT)
def _gemm_cols_f32(A, u, z):
    """z = A @ u for C-contiguous float32 A (M, K), u (K, N), z (M, N), N a multiple of 8: tiles of 4 rows by 16
    columns (8 columns in the last tile where N % 16 == 8), then one row at a time for M % 4."""
    M, K = A.shape
    N = u.shape[1]
    Af = A.ravel()
    uf = u.ravel()
    zf = z.ravel()
    N16 = N - N % 16
    M4 = M - M % 4
    for g in range(0, M4, 4):
        r0 = g * K
        for j in range(0, N16, 16):
            _store_tile(zf, g * N + j, N, _rows_tile(Af, r0, K, uf, N, j))
        if N16 < N:
            c0 = vzero()
            c1 = vzero()
            c2 = vzero()
            c3 = vzero()
            for k in range(K):
                v = vload(uf, k * N + N16)
                c0 = vfma(vsplat_at(Af, r0 + k), v, c0)
                c1 = vfma(vsplat_at(Af, r0 + K + k), v, c1)
                c2 = vfma(vsplat_at(Af, r0 + 2 * K + k), v, c2)
                c3 = vfma(vsplat_at(Af, r0 + 3 * K + k), v, c3)
            o = g * N + N16
            vstore(zf, o, c0)
            vstore(zf, o + N, c1)
            vstore(zf, o + 2 * N, c2)
            vstore(zf, o + 3 * N, c3)
    for g in range(M4, M):
        r0 = g * K
        for j in range(0, N, 8):
            c0 = vzero()
            for k in range(K):
                c0 = vfma(vsplat_at(Af, r0 + k), vload(uf, k * N + j), c0)
            vstore(zf, g * N + j, c0)


def gemm_cols(A, u, z):
    """z[:] = A @ u inside @njit code: _gemm_cols_f32 for C-contiguous float32 arrays whose N is a multiple of
    8, np.dot (BLAS) otherwise."""
    np.dot(A, u, z)


@overload(gemm_cols, jit_options=JIT)
def _gemm_cols_impl(A, u, z):
    if _f32_c(A) and _f32_c(u) and _f32_c(z):
        def impl(A, u, z):
            if u.shape[1] % LANES == 0 and A.shape[1] == u.shape[0] and z.shape == (A.shape[0], u.shape[1]):
                _gemm_cols_f32(A, u, z)
            else:
                np.dot(A, u, z)
        return impl
    return lambda A, u, z: np.dot(A, u, z)


@njit(**JIT)
def taps_gemm(W, src, offs, z):
    """z (M, N) = W (M, K) @ U where U[k, j] = src[offs[k] + j]: a stride-1 convolution whose K taps are read
    straight from the flat padded input (src), row k starting at offs[k] (no unrolled columns). float32,
    C-contiguous; M a multiple of 4, N of 16, and src long enough for offs[k] + N. Tiles of 4 rows by 16 columns,
    the columns outermost so that the input they read stays in cache for every row."""
    M, K = W.shape
    N = z.shape[1]
    Wf = W.ravel()
    zf = z.ravel()
    for j in range(0, N, 16):
        for g in range(0, M, 4):
            _store_tile(zf, g * N + j, N, _rows_tile(Wf, g * K, K, src, offs, j))


@njit(**JIT)
def taps_gemm_planes(W, src, offs, out, rows, Ho, Wo, Wp):
    """taps_gemm straight into output planes: out (flat, C-contiguous float32) receives rows < ``rows`` of W @ U as
    planes of Ho x Wo, plane m at m*Ho*Wo, where U's columns run over the wide grid of Ho x Wp (row oh of the
    output is columns oh*Wp .. oh*Wp + Wo - 1; the junk columns past Wo are never computed). Wo a multiple of 16,
    M (W's rows) of 4; the columns outermost, as taps_gemm."""
    M, K = W.shape
    Wf = W.ravel()
    P = Ho * Wo
    for oh in range(Ho):
        for ow in range(0, Wo, 16):
            j = oh * Wp + ow
            o = oh * Wo + ow
            for g in range(0, M, 4):
                _store_tile(out, g * P + o, P, _rows_tile(Wf, g * K, K, src, offs, j), min(4, rows - g))


TAPS_V_BYTES = 16 << 10
"""taps_gemm_t runs V in blocks of rows of about this many bytes (half this EPYC's 32 KiB L1)."""


@njit(**JIT)
def taps_gemm_t(src, offs, V, z):
    """z (K, F) += U @ V where U[k, n] = src[offs[k] + n] for n < N and V is (N, F): a stride-1 convolution's
    weight gradient (transposed), taps read straight from the flat padded input. float32, C-contiguous; K (the
    length of offs) a multiple of 4, F of 16. Tiles of 4 taps by 16 filters."""
    N, F = V.shape
    Vf = V.ravel()
    zf = z.ravel()
    nb = max(16, (TAPS_V_BYTES // (4 * F)) // 16 * 16)  # rows of V a block: the block stays in L1 for every tap
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        _taps_gemm_t_block(src, offs, Vf, F, n0, n1, zf)


@njit(**JIT)
def _taps_gemm_t_block(src, offs, Vf, F, n0, n1, zf):
    """taps_gemm_t over rows n0..n1 of V (flat, F wide): the tile with the taps broadcast (A's rows are the taps'
    slices of src) and V's rows as U (width F), added to z."""
    K = offs.shape[0]
    for g in range(0, K, 4):
        a0, a1, a2, a3 = offs[g] + n0, offs[g + 1] + n0, offs[g + 2] + n0, offs[g + 3] + n0
        for j in range(0, F, 16):
            o = g * F + j
            _store_tile(zf, o, F, _tile(src, a0, a1, a2, a3, n1 - n0, Vf, F, n0 * F + j, _load_tile(zf, o, F)))
