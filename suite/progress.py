"""Progress on stderr: a bar with loss, steps/s and ETA on a terminal; a plain line every LOG_EVERY
seconds otherwise (a log, a pipe, a batch system), so no long command goes a minute without a word.
SUITE_PROGRESS_EVERY sets LOG_EVERY (seconds)."""
import math
import os
import sys
import time


def _log_every():
    try:
        value = float(os.environ.get("SUITE_PROGRESS_EVERY", "30"))
    except ValueError:
        return 30.0
    return value if value > 0 and math.isfinite(value) else 30.0


LOG_EVERY = _log_every()


def is_terminal(stream):
    return hasattr(stream, "isatty") and stream.isatty()


class Throttle:
    """True at most once every ``every`` seconds, the first time ``every`` seconds after it was made."""

    def __init__(self, every=None):
        self.every = LOG_EVERY if every is None else every
        self.last = time.monotonic()

    def __call__(self):
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            return True
        return False


def _fmt_seconds(seconds):
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Progress:
    """``Progress(total, label)``; call ``update(n, **fields)`` and ``close()``.

    Draws at most ~10 times a second on a terminal; on anything else it writes a
    plain line every LOG_EVERY seconds (none for a run shorter than that). With
    ``quiet`` it prints nothing (logs and JSONL carry the numbers instead).
    """

    def __init__(self, total, label="", start=0, quiet=False, stream=None):
        self.total = total
        self.label = label
        self.count = start
        self.start_count = start
        self.stream = stream or sys.stderr
        self.enabled = not quiet and is_terminal(self.stream)
        self.log = Throttle() if not quiet and not self.enabled else None
        self.t0 = time.perf_counter()
        self._last_draw = 0.0
        self.fields = {}

    def rate(self):
        elapsed = time.perf_counter() - self.t0
        return (self.count - self.start_count) / elapsed if elapsed > 0 else 0.0

    def update(self, n=1, **fields):
        self.count += n
        self.fields.update(fields)
        now = time.perf_counter()
        if self.enabled and (now - self._last_draw > 0.1 or self.count >= self.total):
            self._last_draw = now
            self._draw()
        elif self.log is not None and self.log():
            self.stream.write(self._line() + "\n")
            self.stream.flush()

    def _draw(self):
        self.stream.write("\r" + self._line()[:200] + "\x1b[K")
        self.stream.flush()

    def _line(self):
        rate = self.rate()
        eta = (self.total - self.count) / rate if rate > 0 else 0
        frac = self.count / self.total if self.total else 1.0
        bar = "#" * int(20 * frac) + "-" * (20 - int(20 * frac))
        extra = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in self.fields.items())
        return f"{self.label} [{bar}] {self.count}/{self.total} {extra} {rate:.1f}/s ETA {_fmt_seconds(eta)}"

    def close(self):
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
