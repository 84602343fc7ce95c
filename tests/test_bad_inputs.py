"""A catalogue of bad inputs against every command that takes a file, a folder, a model or a number.

Each case runs the real `suite` command line in-process (suite.cli.run, the
function the installed `suite` script calls) from a scratch working folder and
asserts:
  - the exit code (1: a problem with the input, 2: a wrong flag, 130: interrupted);
  - stderr: one line `Error: ...` naming the problem (a usage error keeps
    click's Usage/Try lines above it), with the words the case expects;
  - no traceback;
  - nothing new or changed anywhere we can see: the working folder (inputs,
    the user's other folders) and the temporary folder.
Signals, races and stray files are tested with subprocesses at the end.
"""
import json
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest

from suite.cli import run

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
MODELS = Path(__file__).resolve().parents[1] / "data" / "models"


def _midi(ticks_per_beat=480, delta=0, extra=b"", meta=b""):
    """A one-track MIDI file with one note; ``delta`` is the note-on's delta time (a variable-length quantity)."""
    def vlq(n):
        out = [n & 0x7F]
        n >>= 7
        while n:
            out.append(0x80 | (n & 0x7F))
            n >>= 7
        return bytes(reversed(out))
    track = meta + vlq(delta) + b"\x90\x3c\x40" + vlq(480) + b"\x80\x3c\x40" + b"\x00\xff\x2f\x00" + extra
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_beat & 0xFFFF)
    return header + b"MTrk" + struct.pack(">I", len(track)) + track


def _bad_model(folder, app, mutate):
    """A copy of the shipped model of ``app`` whose config.json is changed by mutate(config_json_dict)."""
    import shutil

    shutil.copytree(MODELS / app, folder)
    path = folder / "config.json"
    config = json.loads(path.read_text())
    mutate(config)
    path.write_text(json.dumps(config))


def _nan_weights(folder, app):
    """A copy of the shipped model whose first tensor is NaN, with a matching hash (so only the values are bad)."""
    import hashlib
    import shutil

    from safetensors.numpy import load_file, save

    shutil.copytree(MODELS / app, folder)
    state = load_file(str(folder / "model.safetensors"))
    first = sorted(state)[0]
    state[first] = np.full_like(state[first], np.nan)
    blob = save(state)
    (folder / "model.safetensors").write_bytes(blob)
    config = json.loads((folder / "config.json").read_text())
    config["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    (folder / "config.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Bad (and a few good) input files, made once; cases copy nothing, they only read these."""
    d = tmp_path_factory.mktemp("inputs")
    (d / "empty.txt").write_bytes(b"")
    (d / "one.txt").write_text("x")
    (d / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    (d / "notes.txt").write_text("just some notes\n")
    for name in ("notes.wav", "notes.png", "notes.mid", "notes.flac", "notes.ogg", "notes.mp3", "notes.jpg"):
        (d / name).write_text("just some notes, not media\n")
    for name in ("empty.wav", "empty.png", "empty.mid"):
        (d / name).write_bytes(b"")
    wav = (EXAMPLES / "go-three-zero-four-oh.wav").read_bytes()
    (d / "truncated.wav").write_bytes(wav[:200])
    png = (EXAMPLES / "shapes.png").read_bytes()
    (d / "truncated.png").write_bytes(png[: len(png) // 2])
    import soundfile as sf

    tone = (0.3 * np.sin(np.arange(32000) * 2 * np.pi * 440 / 16000)).astype(np.float32)
    sf.write(d / "whole.ogg", tone, 16000, format="OGG", subtype="VORBIS")
    ogg = (d / "whole.ogg").read_bytes()
    (d / "truncated.ogg").write_bytes(ogg[: len(ogg) // 2])
    sf.write(d / "one-hertz.wav", np.zeros(20, np.float32), 1, subtype="FLOAT")
    (d / "tpb0.mid").write_bytes(_midi(ticks_per_beat=0))
    (d / "smpte.mid").write_bytes(_midi(ticks_per_beat=0xE728))
    (d / "huge-delta.mid").write_bytes(_midi(delta=0x0FFFFFFF))
    (d / "bars-255-1.mid").write_bytes(_midi(extra=b"", meta=b"\x00\xff\x58\x04\xff\x00\x18\x08"))
    (d / "a-folder").mkdir()
    (d / "bad.tsv").write_text("no tab on this line\n")
    (d / "missing-audio.tsv").write_text("nowhere.wav\tgo\n")
    (d / "missing-image.tsv").write_text("nowhere.png\tgo\n")
    models = d / "models"
    models.mkdir()
    (models / "empty").mkdir()
    (models / "notjson").mkdir()
    (models / "notjson" / "config.json").write_text("{not json")
    (models / "list").mkdir()
    (models / "list" / "config.json").write_text("[1, 2, 3]")
    _bad_model(models / "text-vocab-int", "text", lambda c: c["meta"].update(vocab=12))
    _bad_model(models / "text-vocab-empty", "text", lambda c: c["meta"].update(vocab=[]))
    _bad_model(models / "text-hidden-huge", "text", lambda c: c["config"].update(hidden=10**7))
    _bad_model(models / "text-hidden-str", "text", lambda c: c["config"].update(hidden="big"))
    _bad_model(models / "speech-decoding-str", "speech", lambda c: c["meta"].update(decoding="fast"))
    _bad_model(models / "speech-lm-weight-str", "speech",
               lambda c: c["meta"].update(decoding={"lm_weight": "heavy", "bonus": 0, "lexicon": False}))
    _bad_model(models / "speech-lm-other", "speech", lambda c: c["meta"].update(lm={"format": "arpa"}))
    _bad_model(models / "caption-vocab-int", "caption", lambda c: c["meta"].update(vocab=5))
    _bad_model(models / "caption-input-huge", "caption", lambda c: c["config"].update(input_size=10**6))
    _bad_model(models / "caption-init-grid-odd", "caption", lambda c: c["config"].update(init_grid=3))
    _bad_model(models / "music-as-text", "music", lambda c: c["meta"].update(app="text"))
    _bad_model(models / "handwriting-alphabet-int", "handwriting", lambda c: c["meta"].update(alphabet=5))
    _bad_model(models / "handwriting-alphabet-short", "handwriting",
               lambda c: c["meta"].update(alphabet=c["meta"]["alphabet"][:-1]))
    _bad_model(models / "handwriting-decoding-str", "handwriting", lambda c: c["meta"].update(decoding="fast"))
    _bad_model(models / "handwriting-width-zero", "handwriting",
               lambda c: c["meta"].update(decoding=dict(c["meta"]["decoding"], width_scale=0)))
    _nan_weights(models / "handwriting-nan", "handwriting")
    _bad_model(models / "writer-chars-int", "handwriting-writer", lambda c: c["meta"].update(chars=5))
    _nan_weights(models / "writer-nan", "handwriting-writer")
    _nan_weights(models / "text-nan", "text")
    _nan_weights(models / "caption-nan", "caption")
    _bad_model(models / "translate-languages-int", "translate", lambda c: c["meta"].update(languages=12))
    _bad_model(models / "translate-subwords-junk", "translate", lambda c: c["meta"].update(subwords="bm90IGEgbW9kZWw="))
    _nan_weights(models / "translate-nan", "translate")
    (d / "bad.po").write_text('msgid "x"\nmsgstr ""\nmsgid "unterminated\nmsgstr ""\n')
    (d / "empty.po").write_bytes(b"")
    (d / "de.po").write_text('msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\nmsgid "Open"\nmsgstr ""\n')
    (d / "compiled.mo").write_bytes(b"\xde\x12\x04\x95" + bytes(24))
    (d / "pairs.tsv").write_text("Open\tÖffnen\n")
    mydocs = d / "mydocs"
    mydocs.mkdir()
    (mydocs / "thesis.txt").write_text("years of work\n")
    return d


def _snapshot(root):
    out = {}
    for p in sorted(Path(root).rglob("*")):
        try:
            st = p.lstat()
        except FileNotFoundError:
            continue
        out[str(p.relative_to(root))] = (p.is_dir(), st.st_size, st.st_mtime_ns)
    return out


def _case(args, code, words, inputs, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / "mydocs").mkdir()
    (work / "mydocs" / "notes.txt").write_text("a user's own folder\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    args = [a.replace("{in}", str(inputs)).replace("{models}", str(MODELS)).replace("{ex}", str(EXAMPLES))
            for a in args]
    before, before_inputs = _snapshot(work), _snapshot(inputs)
    capsys.readouterr()
    got = run(args)
    captured = capsys.readouterr()
    err = captured.err
    assert "Traceback" not in err + captured.out, err
    assert got == code, f"exit {got}, expected {code}; stderr: {err!r}"
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines, "no message on stderr"
    if code == 2:
        assert lines[-1].startswith("Error:"), err
    else:
        assert len(lines) == 1 and lines[0].startswith(("Error:", "Interrupted")), err
    for word in words:
        assert word.lower() in lines[-1].lower(), f"{word!r} not in {lines[-1]!r}"
    assert _snapshot(work) == before, "the working folder changed"
    assert _snapshot(inputs) == before_inputs, "an input changed"
    assert not list(scratch.iterdir()), f"left in the temporary folder: {list(scratch.iterdir())}"


CASES = {
    # -- numbers -------------------------------------------------------------------------------------
    "text generate temperature nan": (["text", "generate", "--temperature", "nan"], 2, ["finite"]),
    "text generate temperature inf": (["text", "generate", "--temperature", "inf"], 2, ["finite"]),
    "text generate length negative": (["text", "generate", "--length", "-1"], 2, ["length"]),
    "text train lr nan": (["text", "train", "--lr", "nan"], 2, ["finite"]),
    "text train lr zero": (["text", "train", "--lr", "0"], 2, ["lr"]),
    "music compose temperature nan": (["music", "compose", "--temperature", "nan"], 2, ["finite"]),
    "speech train lr inf": (["speech", "train", "--lr", "inf"], 2, ["finite"]),
    "caption train dropout nan": (["caption", "train", "--dropout", "nan"], 2, ["finite"]),
    "lab adding lr nan": (["lab", "adding", "--lr", "nan"], 2, ["finite"]),
    "lab adding T 1": (["lab", "adding", "--T", "1"], 2, ["T"]),
    # -- files that are not what they claim ---------------------------------------------------------
    "text score missing": (["text", "score", "{in}/missing.py"], 1, ["missing.py", "no such file"]),
    "text score folder": (["text", "score", "{in}/a-folder"], 1, ["folder"]),
    "text score empty": (["text", "score", "{in}/empty.txt"], 1, ["at least 2"]),
    "text score one char": (["text", "score", "{in}/one.txt"], 1, ["at least 2"]),
    "text score latin1": (["text", "score", "{in}/latin1.txt"], 1, ["utf-8"]),
    "text cells missing": (["text", "cells", "{in}/missing.py", "--out", "cells"], 1, ["no such file"]),
    "text score adapt latin1": (["text", "score", "{in}/latin1.txt", "--adapt"], 1, ["utf-8"]),
    "text compress missing": (["text", "compress", "{in}/missing.py", "-o", "x.lstm"], 1, ["no such file"]),
    "text compress folder": (["text", "compress", "{in}/a-folder", "-o", "x.lstm"], 1, ["a-folder"]),
    "text compress a device": (["text", "compress", "/dev/zero", "-o", "x.lstm"], 1, ["not a regular file"]),
    "text compress out exists": (["text", "compress", "{in}/notes.txt", "-o", "{in}/latin1.txt"], 1,
                                 ["already exists", "--force"]),
    "text compress out unwritable": (["text", "compress", "{in}/notes.txt", "-o", "/proc/x/y.lstm"], 1, ["/proc/x"]),
    "text decompress not ours": (["text", "decompress", "{in}/notes.txt", "-o", "out.txt"], 1,
                                 ["not a suite text-compressed file"]),
    "text decompress no suffix": (["text", "decompress", "{in}/notes.txt"], 1, [".lstm"]),
    "music compose rewrite negative": (["music", "compose", "--rewrite", "-1"], 2, ["--rewrite"]),
    "caption evaluate images without captions": (["caption", "evaluate", "--images", "{in}/a-folder"], 2,
                                                 ["go together"]),
    "caption evaluate captions not tsv": (["caption", "evaluate", "--images", "{in}/a-folder", "--captions",
                                           "{in}/notes.txt"], 1, ["notes.txt", "line 1"]),
    "speech transcribe missing": (["speech", "transcribe", "{in}/missing.wav"], 1, ["missing.wav"]),
    "speech transcribe not audio": (["speech", "transcribe", "{in}/notes.wav"], 1, ["notes.wav"]),
    "speech transcribe text as mp3": (["speech", "transcribe", "{in}/notes.mp3"], 1, ["notes.mp3"]),
    "speech transcribe text as ogg": (["speech", "transcribe", "{in}/notes.ogg"], 1, ["notes.ogg"]),
    "speech transcribe truncated": (["speech", "transcribe", "{in}/truncated.wav"], 1, ["truncated.wav"]),
    "speech transcribe truncated ogg": (["speech", "transcribe", "{in}/truncated.ogg"], 1, ["truncated ogg"]),
    "speech transcribe 1 Hz": (["speech", "transcribe", "{in}/one-hertz.wav"], 1, ["sample rate 1 Hz"]),
    "speech transcribe folder": (["speech", "transcribe", "{in}/a-folder"], 2, ["a-folder"]),
    "speech evaluate missing tsv": (["speech", "evaluate", "{in}/missing.tsv"], 1, ["no such file"]),
    "speech evaluate malformed tsv": (["speech", "evaluate", "{in}/bad.tsv"], 1, ["bad.tsv"]),
    "speech evaluate missing audio": (["speech", "evaluate", "{in}/missing-audio.tsv"], 1, ["nowhere.wav"]),
    "caption missing": (["caption", "{in}/missing.png"], 1, ["missing.png"]),
    "caption not an image": (["caption", "{in}/notes.png"], 1, ["notes.png", "not an image"]),
    "caption empty": (["caption", "{in}/empty.png"], 1, ["empty"]),
    "caption truncated": (["caption", "{in}/truncated.png"], 1, ["truncated"]),
    "music harmonize missing": (["music", "harmonize", "{in}/missing.mid"], 1, ["missing.mid"]),
    "music harmonize not midi": (["music", "harmonize", "{in}/notes.mid"], 1, ["notes.mid"]),
    "music harmonize empty": (["music", "harmonize", "{in}/empty.mid"], 1, ["empty.mid"]),
    "music harmonize ticks per beat 0": (["music", "harmonize", "{in}/tpb0.mid"], 1, ["tpb0.mid"]),
    "music harmonize smpte": (["music", "harmonize", "{in}/smpte.mid"], 1, ["smpte.mid"]),
    "music harmonize huge delta": (["music", "harmonize", "{in}/huge-delta.mid"], 1, ["huge-delta.mid"]),
    "music compose primer huge delta": (["music", "compose", "--primer", "{in}/huge-delta.mid", "-o", "x"], 1,
                                        ["huge-delta.mid"]),
    # -- model folders ------------------------------------------------------------------------------
    "text model missing": (["text", "generate", "--model", "{in}/models/nowhere"], 1, ["no model here"]),
    "text model empty folder": (["text", "generate", "--model", "{in}/models/empty"], 1, ["no model here"]),
    "text model not json": (["text", "generate", "--model", "{in}/models/notjson"], 1, ["json"]),
    "text model json list": (["text", "generate", "--model", "{in}/models/list"], 1, ["object"]),
    "text model vocab int": (["text", "score", "{ex}/../../suite/cli.py", "--model", "{in}/models/text-vocab-int"],
                             1, ["vocab"]),
    "text model vocab empty": (["text", "generate", "--model", "{in}/models/text-vocab-empty"], 1, ["vocab"]),
    "text model hidden huge": (["text", "generate", "--model", "{in}/models/text-hidden-huge"], 1, ["hidden"]),
    "text model hidden str": (["text", "generate", "--model", "{in}/models/text-hidden-str"], 1, ["hidden"]),
    "text model nan weights": (["text", "score", "{ex}/../../suite/cli.py", "--model", "{in}/models/text-nan"], 1,
                               ["finite"]),
    "text model is music": (["text", "generate", "--model", "{models}/music"], 1, ["not a text model"]),
    "music model says text": (["music", "compose", "--model", "{in}/models/music-as-text", "-o", "x"], 1,
                              ["not a music model"]),
    "speech decoding str": (["speech", "transcribe", "{ex}/go-three-zero-four-oh.wav", "--model",
                             "{in}/models/speech-decoding-str"], 1, ["decoding"]),
    "speech lm weight str": (["speech", "transcribe", "{ex}/go-three-zero-four-oh.wav", "--model",
                              "{in}/models/speech-lm-weight-str"], 1, ["lm_weight"]),
    "speech lm other format": (["speech", "transcribe", "{ex}/go-three-zero-four-oh.wav", "--model",
                                "{in}/models/speech-lm-other"], 1, ["lm"]),
    "caption vocab int": (["caption", "{ex}/shapes.png", "--model", "{in}/models/caption-vocab-int"], 1, ["vocab"]),
    "caption input huge": (["caption", "{ex}/shapes.png", "--model", "{in}/models/caption-input-huge"], 1,
                           ["input_size=1000000 is out of range"]),
    "caption init grid odd": (["caption", "{ex}/shapes.png", "--model", "{in}/models/caption-init-grid-odd"], 1,
                              ["cannot be average-pooled"]),
    "caption nan weights": (["caption", "{ex}/shapes.png", "--model", "{in}/models/caption-nan"], 1, ["finite"]),
    "speech train init not a model": (["speech", "train", "--init", "{in}/a-folder", "--out", "run"], 1,
                                      ["no model here"]),
    # -- outputs: --force never deletes what we did not write; unwritable places are one line -----------
    "lab adding force on user folder": (["lab", "adding", "--out", "mydocs", "--force", "--steps", "2"], 1,
                                        ["did not write"]),
    "lab adding force on the working folder": (["lab", "adding", "--out", ".", "--force", "--steps", "2"], 1,
                                               ["working folder"]),
    "lab adding force on a parent": (["lab", "adding", "--out", "..", "--force", "--steps", "2"], 1,
                                     ["working folder"]),
    "lab adding force on root": (["lab", "adding", "--out", "/", "--force", "--steps", "2"], 1, ["refusing"]),
    "lab adding out unwritable": (["lab", "adding", "--out", "/proc/x", "--steps", "2", "--quiet"], 1, ["/proc/x"]),
    "lab gradients out unwritable": (["lab", "gradients", "--out", "/proc/x.png", "--steps", "0"], 1, ["/proc"]),
    "text export force on user folder": (["text", "export", "{models}/text", "--out", "mydocs", "--force"], 1,
                                         ["did not write"]),
    "text train force on user folder": (["text", "train", "--out", "mydocs", "--force", "--data", "{in}/a-folder"],
                                        1, []),
    "text cells out unwritable": (["text", "cells", "{ex}/../../suite/cli.py", "--out", "/proc/x"], 1, ["/proc/x"]),
    "caption attention unwritable": (["caption", "{ex}/shapes.png", "--attention", "/proc/x.png"], 1, ["/proc"]),
    "music compose out unwritable": (["music", "compose", "-o", "/proc/x/piece"], 1, ["/proc/x"]),
    "speech data build out is a file": (["speech", "data", "build", "--out", "{in}/notes.txt"], 2, ["notes.txt"]),
    "caption data build out is a file": (["caption", "data", "build", "--out", "{in}/notes.txt"], 2, ["notes.txt"]),
    "music data build out is a file": (["music", "data", "build", "--data", "{in}/notes.txt"], 2, ["notes.txt"]),
    "music harmonize absurd time signature": (["music", "harmonize", "{in}/bars-255-1.mid"], 1, ["time signature"]),
    # -- data folders that are not datasets -----------------------------------------------------------
    "text train no corpus": (["text", "train", "--data", "{in}/a-folder", "--out", "run"], 1, ["data build"]),
    "music train data is a file": (["music", "train", "--data", "{in}/notes.txt", "--out", "run"], 2, ["notes.txt"]),
    "speech train no corpus": (["speech", "train", "--data", "{in}/nowhere", "--out", "run"], 1, ["data build"]),
    "caption train no dataset": (["caption", "train", "--data", "{in}/a-folder", "--out", "run"], 1,
                                 ["data build"]),
    "caption train images without captions": (["caption", "train", "--images", "{in}/a-folder", "--out", "run"], 2,
                                              ["--captions"]),
    "caption evaluate no dataset": (["caption", "evaluate", "--data", "{in}/a-folder"], 1, []),
    "text export no run": (["text", "export", "{in}/nowhere", "--out", "m"], 1, []),
    "speech export no run": (["speech", "export", "{in}/nowhere", "--out", "m"], 1, []),
    "caption export no run": (["caption", "export", "{in}/nowhere", "--out", "m"], 1, []),
    "music export no run": (["music", "export", "{in}/nowhere", "--out", "m"], 1, []),
    # -- batch ------------------------------------------------------------------------------------------
    "batch inputs match nothing": (["batch", "speech", "--inputs", "{in}/nothing-*.wav", "--out", "r.jsonl"], 1,
                                   ["no such file"]),
    "batch inputs folder without audio": (["batch", "speech", "--inputs", "{in}/a-folder", "--out", "r.jsonl"], 1,
                                          ["no .wav"]),
    "batch out exists": (["batch", "text", "--inputs", "{ex}/../../suite/cli.py", "--out", "{in}/notes.txt"], 1,
                         ["already exists", "--resume"]),
    "batch resume on a file of notes": (["batch", "text", "--inputs", "{ex}/../../suite/cli.py", "--out",
                                         "{in}/notes.txt", "--resume"], 1, ["not a result line"]),
    "batch out unwritable": (["batch", "text", "--inputs", "{ex}/../../suite/cli.py", "--out", "/proc/x/r.jsonl"], 1,
                             ["/proc/x"]),
    "batch model missing": (["batch", "speech", "--inputs", "{ex}", "--out", "r.jsonl", "--model", "{in}/nowhere"], 1,
                            ["no model here"]),
    "batch retry-failed without resume": (["batch", "text", "--inputs", "{ex}/../../suite/cli.py", "--out", "r.jsonl",
                                           "--retry-failed"], 2, ["--resume"]),
    "batch timeout nan": (["batch", "text", "--inputs", "x", "--out", "r.jsonl", "--timeout", "nan"], 2, ["finite"]),
    "batch unknown app": (["batch", "nope", "--inputs", "x", "--out", "r.jsonl"], 2, ["nope"]),
    "batch scheduler unreachable": (["batch", "text", "--inputs", "{ex}/../../suite/cli.py", "--out", "r.jsonl",
                                     "--scheduler", "tcp://127.0.0.1:9"], 1, ["scheduler"]),
    # -- handwriting ------------------------------------------------------------------------------------
    "handwriting train lr nan": (["handwriting", "train", "--lr", "nan"], 2, ["finite"]),
    "handwriting train channels": (["handwriting", "train", "--channels", "0,x"], 2, ["channel"]),
    "handwriting data build out is a file": (["handwriting", "data", "build", "--out", "{in}/notes.txt"], 2,
                                             ["notes.txt"]),
    "handwriting train no corpus": (["handwriting", "train", "--data", "{in}/nowhere", "--out", "run"], 1,
                                    ["data build"]),
    "handwriting train folder without gt": (["handwriting", "train", "--data", "{in}/a-folder", "--out", "run"], 1,
                                            ["gt.txt"]),
    "handwriting train init not a model": (["handwriting", "train", "--init", "{in}/a-folder", "--out", "run"], 1,
                                           ["no model here"]),
    "handwriting export no run": (["handwriting", "export", "{in}/nowhere", "--out", "m"], 1, []),
    "handwriting read missing": (["handwriting", "read", "{in}/missing.png"], 1, ["missing.png"]),
    "handwriting write a character it cannot draw": (["handwriting", "write", "na\u00efve", "-o", "w.png"], 1,
                                                      ["cannot write"]),
    "handwriting write nothing": (["handwriting", "write", "  ", "-o", "w.png"], 1, ["empty"]),
    "handwriting write too long": (["handwriting", "write", "x" * 201, "-o", "w.png"], 1, ["at most 200"]),
    "handwriting write jpg": (["handwriting", "write", "hi", "-o", "w.jpg"], 2, [".png or .svg"]),
    "handwriting write out exists": (["handwriting", "write", "hi", "-o", "{in}/notes.png"], 1,
                                     ["already exists", "--force"]),
    "handwriting write out unwritable": (["handwriting", "write", "hi", "-o", "/proc/x/w.png"], 1, ["/proc/x"]),
    "handwriting write bias nan": (["handwriting", "write", "hi", "-o", "w.png", "--bias", "nan"], 2, ["finite"]),
    "handwriting write model a list": (["handwriting", "write", "hi", "-o", "w.png", "--model", "{in}/models/list"],
                                       1, ["config.json"]),
    "handwriting write model is the reader": (["handwriting", "write", "hi", "-o", "w.png", "--model",
                                               "{models}/handwriting"], 1, ["not a handwriting model"]),
    "handwriting write model chars int": (["handwriting", "write", "hi", "-o", "w.png", "--model",
                                           "{in}/models/writer-chars-int"], 1, ["meta.chars"]),
    "handwriting write model nan": (["handwriting", "write", "hi", "-o", "w.png", "--model",
                                     "{in}/models/writer-nan"], 1, ["not finite"]),
    "handwriting writer export no run": (["handwriting", "writer", "export", "{in}/nowhere", "--out", "m"], 1,
                                         ["no trained model"]),
    "handwriting read not an image": (["handwriting", "read", "{in}/notes.png"], 1, ["notes.png", "not an image"]),
    "handwriting read empty": (["handwriting", "read", "{in}/empty.png"], 1, ["empty"]),
    "handwriting read truncated": (["handwriting", "read", "{in}/truncated.png"], 1, ["truncated"]),
    "handwriting read folder": (["handwriting", "read", "{in}/a-folder"], 2, ["a-folder"]),
    "handwriting read lines-out unwritable": (["handwriting", "read", "{ex}/handwriting-line.png", "--lines-out",
                                              "/proc/x"], 1, ["/proc/x"]),
    "handwriting read lines-out is a file": (["handwriting", "read", "{ex}/handwriting-line.png", "--lines-out",
                                             "{in}/notes.txt", "--force"], 2, ["notes.txt"]),
    "handwriting evaluate missing tsv": (["handwriting", "evaluate", "{in}/missing.tsv"], 1, ["no such file"]),
    "handwriting evaluate missing image": (["handwriting", "evaluate", "{in}/missing-image.tsv"], 1,
                                           ["nowhere.png", "fix or remove its line"]),
    "handwriting evaluate malformed tsv": (["handwriting", "evaluate", "{in}/bad.tsv"], 1, ["bad.tsv"]),
    "handwriting model alphabet int": (["handwriting", "read", "{ex}/handwriting-line.png", "--model",
                                        "{in}/models/handwriting-alphabet-int"], 1, ["alphabet"]),
    "handwriting model alphabet short": (["handwriting", "read", "{ex}/handwriting-line.png", "--model",
                                          "{in}/models/handwriting-alphabet-short"], 1, ["alphabet"]),
    "handwriting model decoding str": (["handwriting", "read", "{ex}/handwriting-line.png", "--model",
                                        "{in}/models/handwriting-decoding-str"], 1, ["decoding"]),
    "handwriting model width zero": (["handwriting", "read", "{ex}/handwriting-line.png", "--model",
                                      "{in}/models/handwriting-width-zero"], 1, ["width_scale"]),
    "handwriting model nan weights": (["handwriting", "read", "{ex}/handwriting-line.png", "--model",
                                       "{in}/models/handwriting-nan"], 1, ["finite"]),
    "handwriting model is caption": (["handwriting", "read", "{ex}/handwriting-line.png", "--model",
                                      "{models}/caption"], 1, ["not a handwriting model"]),
    # -- devices and pipes: read forever, so refused before reading --------------------------------------
    "text score a device": (["text", "score", "/dev/zero"], 1, ["not a regular file"]),
    "text data build corpus a device": (["text", "data", "build", "--corpus", "/dev/zero", "--out", "c"], 1,
                                        ["not a regular file"]),
    "speech evaluate a device": (["speech", "evaluate", "/dev/zero"], 1, ["not a regular file"]),
    "handwriting evaluate a device": (["handwriting", "evaluate", "/dev/zero"], 1, ["not a regular file"]),
    "translate input a device": (["translate", "-i", "/dev/zero", "--to", "de"], 1, ["not a regular file"]),
    "translate po a device": (["translate", "po", "/dev/zero", "--to", "de", "-o", "x.po"], 1,
                              ["not a regular file"]),
    "translate train pairs a device": (["translate", "train", "--pairs", "/dev/zero", "--lang", "de", "--out", "r"],
                                       1, ["not a regular file"]),
    # -- translate --------------------------------------------------------------------------------------
    "translate no language": (["translate", "Open the file"], 2, ["--to"]),
    "translate language we lack": (["translate", "Open the file", "--to", "es"], 1, ["de", "fr"]),
    "translate nothing to translate": (["translate", "--to", "de"], 2, ["-i"]),
    "translate input missing": (["translate", "-i", "{in}/missing.txt", "--to", "de"], 1, ["missing.txt"]),
    "translate input binary": (["translate", "-i", "{ex}/shapes.png", "--to", "de"], 1, ["binary"]),
    "translate input empty": (["translate", "-i", "{in}/empty.txt", "--to", "de"], 1, ["no lines"]),
    "translate input latin1": (["translate", "-i", "{in}/latin1.txt", "--to", "de"], 1, ["utf-8"]),
    "translate input folder": (["translate", "-i", "{in}/a-folder", "--to", "de"], 2, ["a-folder"]),
    "translate beam zero": (["translate", "Open", "--to", "de", "--beam", "0"], 2, ["beam"]),
    "translate attention unwritable": (["translate", "Open", "--to", "de", "--attention", "/proc/nope/a.png"], 1,
                                       ["/proc/nope"]),
    "translate attention exists": (["translate", "Open", "--to", "de", "--attention", "{in}/notes.png"], 1,
                                   ["exists"]),
    "translate po missing": (["translate", "po", "{in}/missing.po", "--to", "de"], 1, ["missing.po"]),
    "translate po binary": (["translate", "po", "{ex}/shapes.png", "--to", "de", "-o", "x.po"], 1, ["binary"]),
    "translate po syntax error": (["translate", "po", "{in}/bad.po", "--to", "de", "-o", "x.po"], 1, ["line 3"]),
    "translate po empty": (["translate", "po", "{in}/empty.po", "--to", "de", "-o", "x.po"], 1, ["no messages"]),
    "translate po mo file": (["translate", "po", "{in}/compiled.mo", "--to", "de", "-o", "x.po"], 1, [".mo"]),
    "translate po in place without force": (["translate", "po", "{in}/de.po", "--to", "de"], 1, ["--force"]),
    "translate po output unwritable": (["translate", "po", "{ex}/demo.pot", "--to", "de", "-o", "/proc/nope/x.po"],
                                       1, ["/proc/nope"]),
    "translate po output exists": (["translate", "po", "{ex}/demo.pot", "--to", "de", "-o", "{in}/notes.txt"], 1,
                                   ["exists"]),
    "translate po language we lack": (["translate", "po", "{ex}/demo.pot", "--to", "es", "-o", "x.po"], 1,
                                      ["de", "fr"]),
    "translate model languages int": (["translate", "Open", "--to", "de", "--model",
                                       "{in}/models/translate-languages-int"], 1, ["languages"]),
    "translate model subwords junk": (["translate", "Open", "--to", "de", "--model",
                                       "{in}/models/translate-subwords-junk"], 1, ["subwords"]),
    "translate model nan weights": (["translate", "Open", "--to", "de", "--model", "{in}/models/translate-nan"], 1,
                                    ["finite"]),
    "translate model is caption": (["translate", "Open", "--to", "de", "--model", "{models}/caption"], 1,
                                   ["not a translate model"]),
    "translate train pairs without lang": (["translate", "train", "--pairs", "{in}/pairs.tsv", "--out", "run"], 2,
                                           ["--lang"]),
    "translate train pairs malformed": (["translate", "train", "--pairs", "{in}/bad.tsv", "--lang", "de", "--out",
                                         "run"], 1, ["bad.tsv"]),
    "translate train no corpus": (["translate", "train", "--data", "{in}/nowhere", "--out", "run"], 1,
                                  ["data build"]),
    "translate train dropout nan": (["translate", "train", "--dropout", "nan"], 2, ["finite"]),
    "translate data build out is a file": (["translate", "data", "build", "--out", "{in}/notes.txt"], 2,
                                           ["notes.txt"]),
    "translate evaluate missing": (["translate", "evaluate", "{in}/missing.tsv", "--to", "de"], 1, ["missing.tsv"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, inputs, tmp_path, monkeypatch, capsys):
    args, code, words = CASES[name]
    _case(args, code, words, inputs, tmp_path, monkeypatch, capsys)


# -- signals, races and stray files: real processes ---------------------------------------------------

def _suite(args, cwd, tmpdir, **kw):
    import subprocess
    import sys

    env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "suite.cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _wait_for(path, lines=1, timeout=120):
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= lines:
            return
        time.sleep(0.2)
    raise AssertionError(f"{path} never got {lines} lines")


def test_two_composes_at_once_never_share_a_name_or_overwrite(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    bare = [_suite(["music", "compose", "--bars", "2", "--seed", str(s)], tmp_path, scratch) for s in (1, 2)]
    same = [_suite(["music", "compose", "--bars", "2", "--seed", str(s), "-o", "same"], tmp_path, scratch)
            for s in (3, 4)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in bare + same]
    assert [r[0] for r in results[:2]] == [0, 0], results[:2]
    names = sorted(p.name for p in tmp_path.glob("chorale-*"))
    assert names == [f"chorale-{n}{ext}" for n in (1, 2) for ext in (".mid", ".png", ".wav")], names
    assert sorted(r[0] for r in results[2:]) == [0, 1], results[2:]
    loser = next(r for r in results[2:] if r[0] == 1)
    assert loser[2].strip().splitlines() == ["Error: same.mid already exists; choose another output or pass --force "
                                            "to overwrite it"]
    assert sorted(p.name for p in tmp_path.glob("same*")) == ["same.mid", "same.png", "same.wav"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left"
    assert not list(scratch.iterdir())


def test_ctrl_c_in_train_with_export_publishes_nothing_and_exits_130(tmp_path):
    import signal

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    source = tmp_path / "src"
    source.mkdir()
    for i in range(60):
        (source / f"m{i}.py").write_text("".join(f"def f{j}(x):\n    return x + {j}\n" for j in range(60 + i)))
    build = _suite(["text", "data", "build", "--corpus", str(source), "--out", "corpus"], tmp_path, scratch)
    assert build.wait(timeout=120) == 0, build.communicate()
    proc = _suite(["text", "train", "--data", "corpus", "--out", "run", "--export", "model", "--steps", "100000",
                   "--hidden", "16", "--layers", "1", "--embed", "8", "--seq-len", "16", "--batch-size", "4",
                   "--eval-every", "20", "--quiet"], tmp_path, scratch)
    _wait_for(tmp_path / "run" / "metrics.jsonl", lines=3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("Interrupted at step")
    assert not (tmp_path / "model").exists(), "a half-trained model was published"
    assert (tmp_path / "run" / "last" / "config.json").exists()
    assert not list(scratch.iterdir())


def test_sigterm_in_training_saves_and_exits_130_leaving_no_temporary_files(tmp_path):
    import signal

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = _suite(["lab", "adding", "--cell", "rnn", "--T", "20", "--hidden", "8", "--steps", "100000",
                   "--n-test", "20", "--out", "run", "--quiet"], tmp_path, scratch)
    _wait_for(tmp_path / "run" / "metrics.jsonl", lines=3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and out == "", err
    assert (tmp_path / "run" / "last" / "trainer.json").exists()
    assert not list(scratch.iterdir()) and not list((tmp_path / "run").glob("*.tmp*"))


def test_sigkill_leftovers_are_swept_by_the_next_run(tmp_path):
    """SIGKILL gives a command no chance to clean up: its hidden staging folder stays, and the next run that
    writes the same output removes it (the process that made it is gone)."""
    import signal
    import time

    from suite.apps.handwriting.data import find_hands

    if not find_hands("test")[0]:
        pytest.skip("handwriting fonts not installed (make apt)")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = _suite(["handwriting", "data", "build", "--out", "ds", "--n-train", "100000", "--workers", "1",
                   "--no-display"], tmp_path, scratch)
    deadline = time.time() + 60
    while time.time() < deadline and not [p for p in tmp_path.iterdir() if p.name.startswith(".ds.")]:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".ds.")], "no staging folder was left to sweep"
    again = _suite(["handwriting", "data", "build", "--out", "ds", "--n-train", "4", "--n-valid", "2", "--n-test",
                    "1", "--workers", "1", "--no-display"], tmp_path, scratch)
    assert again.wait(timeout=120) == 0, again.communicate()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], list(tmp_path.iterdir())
    assert (tmp_path / "ds" / "report.json").exists()
