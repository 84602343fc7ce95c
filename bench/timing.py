"""Timing shared by the benchmarks that compare ours with a peer in the same run.

This machine is shared and its speed drifts within seconds (steal time on the
host), so the two sides take turns, and the ratio reported is the median of
each turn's ours / theirs: both sides meet nearby moments.

A turn is a block of calls of one side, not one call: each BLAS or OpenMP
library keeps its worker threads spinning for a while after a call returns
(OpenBLAS for 2**28 cycles, about 0.1 s, by default), and a call of the other
side that starts in that time shares the cores with them. bench/bench_timing_bias.py
measures it (AVX2 EPYC, 2026-12-07, bench_lstm's B=64 two-layer inference, two
threads each): torch took 87-94 ms alone and 131-137 ms right after ours, so
call by call ours / torch read 0.68-0.91 where blocks read 1.08-1.21; with
OPENBLAS_THREAD_TIMEOUT=4 (no spinning) call by call read 1.17-1.23.
So each turn's first call, the one that meets the other side's
spinning threads, is run and not counted.

One uncounted call covers the spinning only where a call takes longer than it
lasts. bench_conv.py's 16x32x32 -> 32 case takes about 10 ms a call: torch ran
its counted calls in 9.6-13.7 ms after ours at two BLAS threads, and in 7.1-8.0
ms after ours by halves of the batch, whose BLAS is held to one thread
(2026-12-07 night, alternating processes). So each turn first waits SETTLE_S
(the other side's threads go to sleep), then runs its uncounted call.
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


BLOCK = 4
"""Counted calls a turn (after the one that settles)."""

SETTLE_S = 0.2
"""Seconds each turn waits before its first call: OpenBLAS's threads spin for about 0.1 s after a call."""


def paired_ms(ours, theirs, repeat, warmup=2, block=BLOCK, settle_s=SETTLE_S):
    """(ours ms, theirs ms, ratio): the two run in turns of ``block`` counted calls each after a wait of
    ``settle_s`` and one uncounted call (which side goes first alternates), at least three turns and about
    ``repeat`` counted calls a side; the medians of all counted calls, and the median of each turn's median ours /
    median theirs."""
    for _ in range(warmup):
        ours()
        theirs()
    mine, peer, ratios = [], [], []
    for k in range(max(3, -(-repeat // block))):
        turn = {}
        for fn, name in ((ours, "ours"), (theirs, "theirs"))[::1 if k % 2 == 0 else -1]:
            time.sleep(settle_s)  # the other side's threads stop spinning
            fn()  # not counted
            times = []
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
            turn[name] = times
        mine += turn["ours"]
        peer += turn["theirs"]
        ratios.append(statistics.median(turn["ours"]) / statistics.median(turn["theirs"]))
    return statistics.median(mine), statistics.median(peer), statistics.median(ratios)
