"""A progress bar on stderr: loss, steps/s and ETA; silent when not a terminal."""
import sys
import time


def _fmt_seconds(seconds):
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Progress:
    """``Progress(total, label)``; call ``update(n, **fields)`` and ``close()``.

    Draws at most ~10 times a second. With ``quiet`` or a non-terminal stderr it
    prints nothing (logs and JSONL carry the numbers instead).
    """

    def __init__(self, total, label="", start=0, quiet=False, stream=None):
        self.total = total
        self.label = label
        self.count = start
        self.start_count = start
        self.stream = stream or sys.stderr
        self.enabled = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
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

    def _draw(self):
        rate = self.rate()
        eta = (self.total - self.count) / rate if rate > 0 else 0
        frac = self.count / self.total if self.total else 1.0
        bar = "#" * int(20 * frac) + "-" * (20 - int(20 * frac))
        extra = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in self.fields.items())
        line = f"\r{self.label} [{bar}] {self.count}/{self.total} {extra} {rate:.1f}/s ETA {_fmt_seconds(eta)}"
        self.stream.write(line[:200] + "\x1b[K")
        self.stream.flush()

    def close(self):
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
