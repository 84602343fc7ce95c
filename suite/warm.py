"""Fill numba's on-disk cache for the shipped models' main commands, so a user's first command is not a compile.

`make install` runs ``python -m suite.warm``: each app's main job once on the
example inputs in data/examples (outputs to a temporary folder, thrown away),
in this one process. A command that fails (a missing optional package, a
model not shipped) is reported in one line and the others still run; the
install never fails because of it.
"""
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "data" / "examples"


def commands(tmp):
    return [
        ("text", ["text", "generate", "--prime", "def ", "--length", "20", "--seed", "1"]),
        ("text", ["text", "score", str(Path(__file__)), "--adapt"]),
        ("text", ["text", "compress", str(Path(__file__)), "-o", str(tmp / "warm.lstm")]),
        ("music", ["music", "compose", "-o", str(tmp / "chorale"), "--bars", "2", "--seed", "1"]),
        ("speech", ["speech", "transcribe", str(EXAMPLES / "go-three-zero-four-oh.wav")]),
        ("caption", ["caption", str(EXAMPLES / "shapes.png")]),
        ("handwriting", ["handwriting", "read", str(EXAMPLES / "handwriting-line.png")]),
        ("handwriting", ["handwriting", "write", "warm", "-o", str(tmp / "warm.png")]),
        ("translate", ["translate", "Open the file", "--to", "de"]),
    ]


def main():
    from click.testing import CliRunner

    from suite.cli import cli

    runner = CliRunner()
    with tempfile.TemporaryDirectory() as folder:
        for app, args in commands(Path(folder)):
            t0 = time.perf_counter()
            result = runner.invoke(cli, args)
            seconds = time.perf_counter() - t0
            if result.exit_code == 0:
                print(f"warm: {app} {args[1]} compiled and cached in {seconds:.1f} s", file=sys.stderr)
            else:
                reason = (result.output.strip().splitlines() or [repr(result.exception)])[-1]
                print(f"warm: {app} {args[1]} skipped ({reason})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
