"""Slow, obvious versions of kernels/sampling.py: the generator on Python ints,
the sampler in NumPy, and the generation loop one step at a time."""
import numpy as np

MASK = (1 << 64) - 1


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK


def xoshiro_next(s):
    """xoshiro256** on a list of four Python ints, advanced in place (Vigna's C code)."""
    result = (_rotl((s[1] * 5) & MASK, 7) * 9) & MASK
    t = (s[1] << 17) & MASK
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


def seed_ref(seed):
    """splitmix64 outputs 1..4 from the seed, as four Python ints."""
    x = seed & MASK
    out = []
    for _ in range(4):
        x = (x + 0x9E3779B97F4A7C15) & MASK
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        out.append(z ^ (z >> 31))
    return out


def uniform_ref(s):
    return (xoshiro_next(s) >> 11) / 2.0 ** 53


def sample_ref(logits, temperature, top_k, s):
    """One id: argmax at temperature 0, else inverse CDF over the top_k softmax."""
    x = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return int(np.argmax(x))
    V = x.shape[0]
    keep = np.ones(V, dtype=bool)
    if 0 < top_k < V:
        order = np.argsort(-x, kind="stable")  # ties: lower id first
        keep[:] = False
        keep[order[:top_k]] = True
    p = np.where(keep, np.exp((x - x.max()) / temperature), 0.0)
    u = uniform_ref(s) * p.sum()
    cdf = np.cumsum(p)
    hit = np.nonzero((u < cdf) & (p > 0))[0]
    return int(hit[0]) if hit.size else int(np.nonzero(p)[0][-1])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def lstm_step_ref(z, c, cifg):
    """Gate pre-activations z (G*H,) and cell c (H,) -> (h, c); gates i,f,g,o (CIFG: i,g,o, f=1-i)."""
    H = c.shape[0]
    if cifg:
        i, g, o = _sigmoid(z[:H]), np.tanh(z[H:2 * H]), _sigmoid(z[2 * H:])
        f = 1.0 - i
    else:
        i, f, g, o = _sigmoid(z[:H]), _sigmoid(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), _sigmoid(z[3 * H:])
    c = f * c + i * g
    return o * np.tanh(c), c


def generate_ref(prime, n_steps, table0, W_ih, W_hh, b, W_out, b_out, h0, c0,
                 temperature, top_k, s, cifg=False):
    """The documented contract, step by step: (ids, hT, cT, logits per sampled id)."""
    h = [np.array(r) for r in h0]
    c = [np.array(r) for r in c0]
    L = len(h)
    seq = list(prime)
    ids, all_logits = [], []
    for t in range(len(prime) - 1 + n_steps):
        z = table0[seq[t]] + h[0] @ W_hh[0]
        h[0], c[0] = lstm_step_ref(z, c[0], cifg)
        for layer in range(1, L):
            z = b[layer] + h[layer - 1] @ W_ih[layer] + h[layer] @ W_hh[layer]
            h[layer], c[layer] = lstm_step_ref(z, c[layer], cifg)
        if t >= len(prime) - 1:
            logits = h[-1] @ W_out + b_out
            all_logits.append(logits)
            ids.append(sample_ref(logits, temperature, top_k, s))
            seq.append(ids[-1])
    return np.array(ids, dtype=np.int64), np.array(h), np.array(c), all_logits
