"""`suite batch APP` gives what the single-file command gives, for the apps' real jobs (loopback cluster)."""
import json
from pathlib import Path

import pytest

from suite.cli import run

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"


@pytest.mark.parametrize("app, single, example, key", [
    ("speech", ["speech", "transcribe"], "go-three-zero-four-oh.wav", "text"),
    ("caption", ["caption"], "shapes.png", "caption"),
    ("handwriting", ["handwriting", "read"], "handwriting-page.png", "text"),
])
def test_batch_equals_the_single_file_command(app, single, example, key, tmp_path, capsys):
    files = [tmp_path / f"{i}{Path(example).suffix}" for i in range(3)]
    for f in files:
        f.write_bytes((EXAMPLES / example).read_bytes())
    (tmp_path / f"bad{Path(example).suffix}").write_text("not media")
    capsys.readouterr()
    assert run(single + [str(files[0]), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    out = tmp_path / "r.jsonl"
    assert run(["batch", app, "--inputs", str(tmp_path), "--out", str(out), "--workers", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "3 done" not in err and "4 done, 1 failed" in err
    records = {Path(r["input"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert sorted(records) == sorted([f.name for f in files] + [f"bad{Path(example).suffix}"])
    for f in files:
        assert records[f.name]["status"] == "ok" and records[f.name]["result"][key] == expected[key]
    assert records[f"bad{Path(example).suffix}"]["status"] == "error"


def test_batch_music_harmonizes_beside_each_melody_like_the_single_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run(["music", "compose", "--bars", "2", "--seed", "1", "-o", "tune"]) == 0
    (tmp_path / "in").mkdir()
    (tmp_path / "tune.mid").rename(tmp_path / "in" / "tune.mid")
    (tmp_path / "in" / "bad.mid").write_text("not midi")
    assert run(["music", "harmonize", "in/tune.mid", "-o", "single", "--seed", "0"]) == 0
    assert run(["batch", "music", "--inputs", "in", "--out", "r.jsonl", "--workers", "1", "--quiet"]) == 1
    records = {Path(r["input"]).name: r for r in map(json.loads, (tmp_path / "r.jsonl").read_text().splitlines())}
    assert records["bad.mid"]["status"] == "error"
    made = Path(records["tune.mid"]["result"]["midi"])
    assert made == Path("in/tune-harmonized-1.mid")
    assert made.read_bytes() == (tmp_path / "single.mid").read_bytes()


def test_batch_translate_fills_each_catalog_like_the_single_command(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "demo.pot").write_bytes((EXAMPLES / "demo.pot").read_bytes())
    (tmp_path / "b" / "broken.pot").write_text('msgid "x"\nmsgstr "unterminated\n')
    assert run(["translate", "po", str(EXAMPLES / "demo.pot"), "--to", "fr", "-o", str(tmp_path / "single.po")]) == 0
    out = tmp_path / "r.jsonl"
    assert run(["batch", "translate", "--to", "fr", "--inputs", str(tmp_path / "a"), "--inputs", str(tmp_path / "b"),
                "--out", str(out), "--workers", "1", "--quiet"]) == 1
    records = {r["input"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records[str(tmp_path / "b" / "broken.pot")]["status"] == "error"
    for d in ("a", "b"):
        r = records[str(tmp_path / d / "demo.pot")]
        assert r["status"] == "ok" and r["result"]["output"] == str(tmp_path / d / "fr.po")
        assert (tmp_path / d / "fr.po").read_bytes() == (tmp_path / "single.po").read_bytes()
    # a second run never overwrites what the first wrote
    assert run(["batch", "translate", "--to", "fr", "--inputs", str(tmp_path / "a"), "--out", str(tmp_path / "s.jsonl"),
                "--workers", "1", "--quiet"]) == 1
    (again,) = map(json.loads, (tmp_path / "s.jsonl").read_text().splitlines())
    assert again["status"] == "error" and "exists" in again["error"]
