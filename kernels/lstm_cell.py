"""The LSTM cell, written once: one batch row of one time step.

Every LSTM kernel (training forward, inference forward, the generation loop)
calls this one function, so the gate equations exist in one place.

Gate order is fixed here and nowhere else: i, f, g, o (as torch.nn.LSTM), each
a block of H columns of the fused gate matrix. A CIFG cell (coupled input and
forget gate, Greff et al. 2017) has no forget block: its blocks are i, g, o and
f = 1 - i. A peephole cell (Gers & Schmidhuber 2000) adds diagonal weights from
the cell: i and f see c_{t-1}, o sees c_t.
"""
from numba import njit

from suite.kernels._math import sigmoid, tanh
from suite.kernels.config import JIT


def n_gates(cifg):
    """Number of H-wide blocks in the fused gate matrix."""
    return 3 if cifg else 4


# Deliberately not inline="always": the gate loop reads and writes z at four
# offsets, so LLVM versions it with a runtime overlap check. Inlined into a
# loop over batch rows, LLVM hoists that check out of the row loop, where the
# z ranges of all rows overlap; the check fails for B >= 2 and every row runs
# the scalar loop (measured: 11.6 vs 1.3 ns per element at B=64, H=256).
# A call per row keeps the check per row. For the same reason c_prev and c_out
# must not be the same memory (exact aliasing also fails the check): keep two
# cell-state buffers and swap them.
@njit(**JIT)
def lstm_cell_row(z, c_prev, peep, use_peep, cifg, c_out, h_out):
    """Advance one batch row by one step, in place.

    Parameters
    ----------
    z : np.ndarray [shape=(G*H,)]
        Gate pre-activations (input projection + recurrent projection + bias).
        Overwritten with the gate activations (what backward needs).
        For CIFG the f activation is not stored (it is 1 - i).
    c_prev : np.ndarray [shape=(H,)]
    peep : np.ndarray [shape=(3, H)]
        Peephole weights for i, f, o (rows); ignored unless use_peep.
    use_peep, cifg : bool
    c_out, h_out : np.ndarray [shape=(H,)]
        New cell state and new (pre-projection) hidden state. c_out must
        not be c_prev's memory (correct, but ~10x slower, see above).
    """
    H = c_prev.shape[0]
    one = z.dtype.type(1.0)
    if cifg:
        gi, gg, go = 0, H, 2 * H
        for j in range(H):
            zi = z[gi + j]
            if use_peep:
                zi += peep[0, j] * c_prev[j]
            i = sigmoid(zi)
            g = tanh(z[gg + j])
            c = (one - i) * c_prev[j] + i * g
            zo = z[go + j]
            if use_peep:
                zo += peep[2, j] * c
            o = sigmoid(zo)
            z[gi + j] = i
            z[gg + j] = g
            z[go + j] = o
            c_out[j] = c
            h_out[j] = o * tanh(c)
    else:
        gi, gf, gg, go = 0, H, 2 * H, 3 * H
        for j in range(H):
            zi = z[gi + j]
            zf = z[gf + j]
            if use_peep:
                zi += peep[0, j] * c_prev[j]
                zf += peep[1, j] * c_prev[j]
            i = sigmoid(zi)
            f = sigmoid(zf)
            g = tanh(z[gg + j])
            c = f * c_prev[j] + i * g
            zo = z[go + j]
            if use_peep:
                zo += peep[2, j] * c
            o = sigmoid(zo)
            z[gi + j] = i
            z[gf + j] = f
            z[gg + j] = g
            z[go + j] = o
            c_out[j] = c
            h_out[j] = o * tanh(c)
