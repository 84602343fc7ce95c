"""Timing shared by the benchmarks that compare ours with a peer in the same run.

This machine is shared and its speed drifts within seconds (steal time on the
host), so the two sides run in turns, call by call, and the ratio reported is
the median of each turn's ours / theirs: both sides meet the same moments,
steadier than medians taken one after the other.
"""
import statistics
import time


def median_ms(fn, repeat, warmup=2):
    """Median wall time of ``fn()`` in ms over ``repeat`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def paired_ms(ours, theirs, repeat, warmup=2):
    """(ours ms, theirs ms, ratio): the medians of the two run in turns (which goes first alternates) and the
    median of each turn's ours / theirs."""
    for _ in range(warmup):
        ours()
        theirs()
    mine, peer = [], []
    for k in range(repeat):
        for fn, into in ((ours, mine), (theirs, peer))[::1 if k % 2 == 0 else -1]:
            t0 = time.perf_counter()
            fn()
            into.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(mine), statistics.median(peer), statistics.median(a / b for a, b in zip(mine, peer))
