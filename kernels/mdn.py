"""Mixture density output for pen offsets (Graves 2013, section 4.1): loss and gradient in one pass.

A network output row of 6M + 1 numbers is read as

    [e, pi_1..M, mu1_1..M, mu2_1..M, log s1_1..M, log s2_1..M, r_1..M]

end of stroke  P(pen up) = sigmoid(e)
weights        pi = softmax(pi)
means          mu1, mu2
deviations     s1 = exp(log s1), s2 = exp(log s2)
correlations   rho = tanh(r)

and the target (dx, dy, pen_up) gets the negative log-likelihood
-log sum_j pi_j N(dx, dy | mu_j, s_j, rho_j) - log Bernoulli(pen_up | e). The mixture
sum is taken in log space (max-shifted), accumulated in float64.
"""
import math

import numpy as np
from numba import njit

from suite.kernels.config import JIT


def mdn_size(mixtures):
    """Output width for ``mixtures`` bivariate Gaussians plus the end-of-stroke unit."""
    return 6 * mixtures + 1


@njit(**JIT)
def _mdn_nll(out, target, weight, dout):
    N, W = out.shape
    M = (W - 1) // 6
    logn = np.empty(M)                               # log pi_j + log N_j of one row
    total = 0.0
    for n in range(N):
        wn = weight[n]
        if wn == 0.0:
            dout[n] = 0
            continue
        row = out[n]
        x1, x2, up = target[n, 0], target[n, 1], target[n, 2]
        # end of stroke: -log Bernoulli, with log sigmoid written stably
        e = row[0]
        log_p = -math.log1p(math.exp(-abs(e))) + min(e, 0.0)       # log sigmoid(e)
        log_q = log_p - e                                           # log sigmoid(-e)
        nll = -(up * log_p + (1.0 - up) * log_q)
        dout[n, 0] = wn * (math.exp(log_p) - up)
        # mixture weights: log softmax
        pm = row[1]
        for j in range(1, M):
            pm = max(pm, row[1 + j])
        ps = 0.0
        for j in range(M):
            ps += math.exp(row[1 + j] - pm)
        log_z = pm + math.log(ps)
        best = -np.inf
        for j in range(M):
            s1, s2 = math.exp(row[1 + 3 * M + j]), math.exp(row[1 + 4 * M + j])
            rho = math.tanh(row[1 + 5 * M + j])
            z1, z2 = (x1 - row[1 + M + j]) / s1, (x2 - row[1 + 2 * M + j]) / s2
            om = 1.0 - rho * rho
            zz = z1 * z1 + z2 * z2 - 2.0 * rho * z1 * z2
            logn[j] = (row[1 + j] - log_z) - math.log(2.0 * math.pi) - row[1 + 3 * M + j] - row[1 + 4 * M + j] \
                - 0.5 * math.log(om) - zz / (2.0 * om)
            best = max(best, logn[j])
        s = 0.0
        for j in range(M):
            s += math.exp(logn[j] - best)
        log_mix = best + math.log(s)
        nll -= log_mix
        total += wn * nll
        for j in range(M):
            g = math.exp(logn[j] - log_mix)                         # responsibility gamma_j
            pi = math.exp(row[1 + j] - log_z)
            s1, s2 = math.exp(row[1 + 3 * M + j]), math.exp(row[1 + 4 * M + j])
            rho = math.tanh(row[1 + 5 * M + j])
            z1, z2 = (x1 - row[1 + M + j]) / s1, (x2 - row[1 + 2 * M + j]) / s2
            om = 1.0 - rho * rho
            zz = z1 * z1 + z2 * z2 - 2.0 * rho * z1 * z2
            a1, a2 = (z1 - rho * z2) / om, (z2 - rho * z1) / om   # -d(zz / 2om) / dz
            dout[n, 1 + j] = wn * (pi - g)
            dout[n, 1 + M + j] = -wn * g * a1 / s1
            dout[n, 1 + 2 * M + j] = -wn * g * a2 / s2
            dout[n, 1 + 3 * M + j] = wn * g * (1.0 - z1 * a1)     # through s = exp(log s)
            dout[n, 1 + 4 * M + j] = wn * g * (1.0 - z2 * a2)
            dout[n, 1 + 5 * M + j] = -wn * g * (rho + z1 * z2 - zz * rho / om)  # through rho = tanh(r)
    return total


def mdn_nll(out, target, weight):
    """Weighted sum of the per-row NLL and its gradient.

    Parameters
    ----------
    out : np.ndarray [shape=(N, 6M + 1), dtype=float32 or float64]  network outputs, layout above
    target : np.ndarray [shape=(N, 3)]  (dx, dy, pen_up) with pen_up 0 or 1
    weight : np.ndarray [shape=(N,)]  each row's weight (0 skips a padded row; 1/count gives the mean)

    Returns (loss: float, dout: np.ndarray like out).
    """
    out = np.ascontiguousarray(out)
    if out.dtype not in (np.float32, np.float64) or out.ndim != 2 or (out.shape[1] - 1) % 6 or out.shape[1] < 7:
        raise ValueError(f"out must be float (N, 6M + 1), got {out.dtype} {out.shape}")
    N = out.shape[0]
    target = np.ascontiguousarray(target, dtype=np.float64)
    weight = np.ascontiguousarray(weight, dtype=np.float64)
    if target.shape != (N, 3) or weight.shape != (N,):
        raise ValueError(f"target must be ({N}, 3) and weight ({N},), got {target.shape} and {weight.shape}")
    dout = np.empty_like(out)
    return float(_mdn_nll(out, target, weight, dout)), dout
