"""A user's own recordings: transcript TSVs (file<TAB>text) and the LibriSpeech layout."""
from pathlib import Path

from suite.databuild import DataError
from suite.fileio import write_text

def read_tsv_dataset(path):
    """[(audio Path, text)] from a transcript TSV: ``file<TAB>text`` per line, files relative to the TSV.

    ``path`` is the .tsv itself or a folder holding transcripts.tsv (or exactly one
    .tsv). Blank lines and lines starting with "#" are skipped, and so is a header
    line "file<TAB>text" (or path/audio). Text is returned as written; compare
    with normalize(). Raises DataError naming the file and line of a bad row,
    or the audio files that do not exist.
    """
    path = Path(path)
    if path.is_dir():
        tsv = path / "transcripts.tsv"
        if not tsv.exists():
            found = sorted(path.glob("*.tsv"))
            if len(found) != 1:
                raise DataError(f"{path}: no transcripts.tsv (file<TAB>text per line)"
                                   + (f"; several .tsv files: {', '.join(p.name for p in found)}" if found else ""))
            tsv = found[0]
    elif path.exists():
        tsv = path
    else:
        raise DataError(f"{path}: no such file or folder")
    rows, missing = [], []
    for n, line in enumerate(_read_tsv_text(tsv).splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if "\t" not in line:
            raise DataError(f"{tsv}:{n}: expected 'file<TAB>text', found no tab in {line[:60]!r}")
        file, text = line.split("\t", 1)
        if n == 1 and file.strip().lower() in ("file", "path", "audio") and text.strip().lower() in ("text",
                                                                                                   "transcript"):
            continue
        audio = (tsv.parent / file.strip()).resolve() if not Path(file.strip()).is_absolute() else Path(file.strip())
        if not audio.exists():
            missing.append(file.strip())
        rows.append((audio, text.strip()))
    if missing:
        raise DataError(f"{tsv}: {len(missing)} audio file(s) not found, first {missing[0]!r} "
                           f"(paths are relative to the .tsv)")
    return rows


def read_librispeech(path):
    """[(flac Path, text)] from LibriSpeech-style ``*.trans.txt`` files ("<id> <TEXT>"; <id>.flac beside them).

    ``path`` is any folder above them (a subset like dev-clean, or one speaker).
    Sorted by utterance id. Raises DataError when there are none or a listed
    .flac is missing.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: not a folder (expected LibriSpeech <speaker>/<chapter>/*.trans.txt)")
    rows = []
    for trans in sorted(path.rglob("*.trans.txt")):
        for n, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            utt, _, text = line.strip().partition(" ")
            audio = trans.parent / f"{utt}.flac"
            if not audio.exists():
                raise DataError(f"{trans}:{n}: {audio.name} not found beside the transcript")
            rows.append((audio, text.strip()))
    if not rows:
        raise DataError(f"{path}: no *.trans.txt files found (LibriSpeech layout)")
    return sorted(rows, key=lambda r: r[0].stem)


def write_tsv_dataset(folder, rows, name="transcripts.tsv"):
    """Write ``file<TAB>text`` lines (files relative to ``folder``) atomically."""
    lines = []
    for file, text in rows:
        if "\t" in str(file) or "\n" in str(file) or "\t" in text or "\n" in text:
            raise ValueError(f"tab or newline in a transcript row: {file!r} {text!r}")
        lines.append(f"{file}\t{text}\n")
    write_text(Path(folder) / name, "".join(lines))


def _read_tsv_text(tsv):
    """A user's transcript TSV as text (a BOM dropped), read with suite.fileio's bound (no device, no 2 GB file)."""
    from suite.fileio import InputTooLargeError, read_bytes_limited

    try:
        return read_bytes_limited(tsv).decode("utf-8-sig")
    except InputTooLargeError as exc:
        raise DataError(str(exc)) from None
