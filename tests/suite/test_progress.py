"""Progress on stderr: a bar on a terminal, a plain line now and then elsewhere, nothing when quiet."""
import io
import time

from suite import progress
from suite.progress import Progress, Throttle


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_a_plain_line_every_interval_and_a_short_run_gets_none(monkeypatch):
    monkeypatch.setattr(progress, "LOG_EVERY", 0.05)
    log = io.StringIO()
    bar = Progress(100, "train", stream=log)
    for i in range(5):
        bar.update(1, loss=1.0 / (i + 1))
    assert log.getvalue() == ""  # under one interval: silent
    for _ in range(3):
        time.sleep(0.06)
        bar.update(1)
    lines = log.getvalue().splitlines()
    assert len(lines) == 3 and all(line.startswith("train [") and "/100" in line for line in lines)
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()
    bar.close()
    assert len(log.getvalue().splitlines()) == 3


def test_a_terminal_gets_the_redrawn_bar_and_quiet_gets_nothing(monkeypatch):
    tty = Terminal()
    bar = Progress(3, "x", stream=tty)
    bar.update(3)
    bar.close()
    assert tty.getvalue().startswith("\rx [") and tty.getvalue().endswith("\n")
    quiet = io.StringIO()
    bar = Progress(3, "x", stream=quiet, quiet=True)
    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)
    bar.update(3)
    bar.close()
    assert quiet.getvalue() == ""


def test_counter_logs_where_stderr_is_not_a_terminal(monkeypatch, capsys):
    from suite.cli_common import counter

    monkeypatch.setattr(progress, "LOG_EVERY", 0.02)
    show = counter("reading")
    show(1, 10)
    time.sleep(0.03)
    show(2, 10)
    assert capsys.readouterr().err == "reading 2/10\n"
    assert counter("reading", quiet=True) is None


def test_throttle():
    t = Throttle(every=0.02)
    assert not t()
    time.sleep(0.03)
    assert t() and not t()
