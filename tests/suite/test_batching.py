import numpy as np
import pytest

from suite.batching import BucketSampler, iterate_in_order, pad_time_major


def test_buckets_group_similar_lengths_and_cover_every_sequence():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, 1000)
    sampler = BucketSampler(lengths, batch_size=32, n_buckets=8)
    assert sorted(np.concatenate(sampler.buckets).tolist()) == list(range(1000))
    spreads = []
    for _ in range(50):
        idx = sampler.sample(rng)
        assert len(idx) == 32 and len(set(idx.tolist())) == 32
        spreads.append(np.ptp(lengths[idx]))
    assert np.mean(spreads) < 0.3 * np.ptp(lengths)  # far less padding than random batches


def test_sampling_is_a_function_of_the_generator():
    sampler = BucketSampler(np.arange(100), batch_size=10)
    a = sampler.sample(np.random.default_rng([1, 5]))
    b = sampler.sample(np.random.default_rng([1, 5]))
    np.testing.assert_array_equal(a, b)


def test_pad_time_major_and_order():
    x, lengths = pad_time_major([np.array([1, 2, 3]), np.array([4])], pad_value=-1)
    assert x.shape == (3, 2) and lengths.tolist() == [3, 1]
    assert x[:, 1].tolist() == [4, -1, -1]
    assert [b.tolist() for b in iterate_in_order(5, 2)] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError):
        pad_time_major([])
    with pytest.raises(ValueError):
        BucketSampler([], 4)
