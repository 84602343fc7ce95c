"""bench/timing.py's paired timing, on a fake clock: the two sides take turns of blocks of calls, each turn waits
and its first call is not counted, and the ratio is the median of the turns' ratios."""
import importlib.util
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("bench_timing", Path(__file__).resolve().parents[1] / "bench" / "timing.py")
timing = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(timing)


def test_paired_ms_runs_blocks_in_turns_drops_each_turns_first_call_and_takes_the_median_turn_ratio(monkeypatch):
    clock = [0.0]
    order = []
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(timing.time, "sleep", lambda s: order.append(("wait", s)))

    def side(name, costs_ms):
        costs = iter(costs_ms)

        def run():
            order.append(name)
            clock[0] += next(costs) / 1e3
        return run

    # warmup 1 call a side, then 3 turns of 1 settling call (100 ms: slowed by the other side, never counted)
    # and 2 counted calls. Per turn ours / theirs = 1 / 2, 10 / 20, 10 / 5: median 0.5; all counted calls'
    # medians are 10 (ours: 1 1 10 10 10 10) and 5 (theirs: 2 2 20 20 5 5), whose ratio would be 2.
    ours = side("ours", [7] + [100, 1, 1] + [100, 10, 10] + [100, 10, 10])
    theirs = side("theirs", [7] + [100, 2, 2] + [100, 20, 20] + [100, 5, 5])
    ours_ms, theirs_ms, ratio = timing.paired_ms(ours, theirs, repeat=6, warmup=1, block=2)
    wait = ("wait", timing.SETTLE_S)  # before each turn, for the other side's threads to stop spinning
    assert timing.SETTLE_S >= 0.1
    assert order == ["ours", "theirs"] + [wait] + ["ours"] * 3 + [wait] + ["theirs"] * 3 + [wait] + ["theirs"] * 3 \
        + [wait] + ["ours"] * 3 + [wait] + ["ours"] * 3 + [wait] + ["theirs"] * 3
    assert ratio == pytest.approx(0.5)
    assert (ours_ms, theirs_ms) == (pytest.approx(10), pytest.approx(5))


def test_paired_ms_runs_at_least_three_turns(monkeypatch):
    calls = []
    clock = iter(range(1000))
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(timing.time, "sleep", lambda s: None)
    timing.paired_ms(lambda: calls.append("o"), lambda: calls.append("t"), repeat=1, warmup=0, block=1)
    assert calls.count("o") == calls.count("t") == 3 * 2
