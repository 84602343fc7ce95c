"""bench/timing.py's paired timing, on a fake clock: the two sides take turns and the ratio is per turn."""
import importlib.util
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("bench_timing", Path(__file__).resolve().parents[1] / "bench" / "timing.py")
timing = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(timing)


def test_paired_ms_alternates_and_takes_the_median_of_each_turns_ratio(monkeypatch):
    clock = [0.0]
    order = []
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])

    def side(name, warmup_ms, turn_ms):
        costs = iter(warmup_ms + turn_ms)

        def run():
            order.append(name)
            clock[0] += next(costs) / 1e3
        return run

    # per turn ours / theirs = 0.5, 0.5, 0.5, 2, 2: median 0.5, though the medians' ratio is 10 / 5 = 2
    ours = side("ours", [7, 7], [1, 1, 10, 10, 10])
    theirs = side("theirs", [7, 7], [2, 2, 20, 5, 5])
    ours_ms, theirs_ms, ratio = timing.paired_ms(ours, theirs, repeat=5)
    assert order[4:] == ["ours", "theirs", "theirs", "ours", "ours", "theirs", "theirs", "ours", "ours", "theirs"]
    assert ratio == pytest.approx(0.5)
    assert (ours_ms, theirs_ms) == (pytest.approx(10), pytest.approx(5))
