"""Minibatches of variable-length sequences, bucketed by length.

Padding costs compute in a recurrent kernel (masked steps still pass through the
per-step GEMM), so sequences of similar length are batched together. Sampling is
stateless given a generator, which is what makes resumed training exact.
"""
import numpy as np


class BucketSampler:
    """Split sequence indices into ``n_buckets`` equal-count length buckets; draw a batch from one.

    Parameters
    ----------
    lengths : array-like [shape=(N,)]
        Length of every sequence in the dataset.
    batch_size : int
    n_buckets : int
        More buckets waste less padding but mix lengths less.
    """

    def __init__(self, lengths, batch_size, n_buckets=8):
        lengths = np.asarray(lengths)
        if lengths.ndim != 1 or len(lengths) == 0:
            raise ValueError("BucketSampler needs a non-empty 1-D array of lengths")
        self.batch_size = int(batch_size)
        order = np.argsort(lengths, kind="stable")
        n_buckets = max(1, min(n_buckets, len(lengths) // max(self.batch_size, 1)))
        self.buckets = [b for b in np.array_split(order, n_buckets) if len(b)]
        sizes = np.array([len(b) for b in self.buckets], dtype=np.float64)
        self.weights = sizes / sizes.sum()

    def sample(self, rng):
        """Indices of one batch (at most batch_size, without replacement inside the bucket)."""
        bucket = self.buckets[rng.choice(len(self.buckets), p=self.weights)]
        size = min(self.batch_size, len(bucket))
        return rng.choice(bucket, size=size, replace=False)


def pad_time_major(seqs, pad_value=0, dtype=None):
    """Stack sequences (each (T_i, ...)) into a time-major array (T_max, B, ...) plus lengths (B,)."""
    if not seqs:
        raise ValueError("pad_time_major needs at least one sequence")
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    first = np.asarray(seqs[0])
    out = np.full((int(lengths.max()), len(seqs)) + first.shape[1:], pad_value, dtype=dtype or first.dtype)
    for b, s in enumerate(seqs):
        out[: len(s), b] = s
    return out, lengths


def iterate_in_order(n, batch_size):
    """Index batches 0..n-1 in order (for evaluation)."""
    for start in range(0, n, batch_size):
        yield np.arange(start, min(start + batch_size, n))
