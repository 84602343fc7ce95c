"""The handwriting workflow through the CLI on a tiny corpus (build, train, export, evaluate, read), and bad input."""
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from suite.apps.handwriting.cli import cli
from suite.apps.handwriting.data import find_hands

pytestmark = pytest.mark.skipif(not find_hands("test")[0], reason="handwriting fonts not installed (make apt)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("hw")
    data, run, model = root / "data", root / "run", root / "model"
    r = CliRunner().invoke(cli, ["data", "build", "--out", str(data), "--n-train", "24", "--n-valid", "6",
                                 "--n-test", "3", "--workers", "1", "--no-display", "--json"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["data", "build", "--out", str(data), "--n-train", "24"])
    assert r.exit_code == 1 and "already exists" in r.output
    r = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(run), "--steps", "3", "--eval-every", "3",
                                 "--channels", "2,3", "--hidden", "8", "--layers", "1", "--batch-size", "4",
                                 "--lm-order", "2", "--quiet", "--export", str(model), "--json"])
    assert r.exit_code == 0, r.output
    return root, data, model


def test_card_has_every_test_set_with_the_peer(trained):
    _, _, model = trained
    card = json.loads((model / "card.json").read_text())
    assert card["app"] == "handwriting" and set(card["metrics"]["test"]) == {"digits", "fonts", "hershey"}
    for m in card["metrics"]["test"].values():
        assert {"cer", "wer", "exact", "greedy_no_lm", "tesseract"} <= set(m)
    assert "lm_weight" in card["decoding"]


def test_evaluate_a_folder_by_hand(trained):
    _, data, model = trained
    r = CliRunner().invoke(cli, ["evaluate", str(data / "test" / "fonts" / "lines.tsv"), "--model", str(model),
                                 "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["utterances"] == 3 and 0 <= report["cer"]


def test_read_prints_text_json_and_reports_bad_files(trained, tmp_path):
    _, data, model = trained
    png = sorted((data / "test" / "fonts").glob("*.png"))[0]
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    half = png.read_bytes()
    (tmp_path / "truncated.png").write_bytes(half[:len(half) // 2])
    Image.new("L", (300, 60), 255).save(tmp_path / "blank.png")
    Image.new("L", (1, 1), 0).save(tmp_path / "dot.png")
    r = CliRunner().invoke(cli, ["read", str(png), "--model", str(model)])
    assert r.exit_code == 0 and len(r.stdout.splitlines()) <= 1
    files = [png, tmp_path / "notes.png", tmp_path / "empty.png", tmp_path / "truncated.png", tmp_path / "blank.png",
             tmp_path / "dot.png", tmp_path / "missing.png"]
    r = CliRunner().invoke(cli, ["read", *map(str, files), "--model", str(model), "--json"])
    assert r.exit_code == 1
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["file"] for o in out] == [str(png), str(tmp_path / "blank.png"), str(tmp_path / "dot.png")]
    assert out[1]["text"] == "" and out[1]["lines"] == []
    assert {"text", "confidence", "lines", "seconds"} <= set(out[0])
    for line in out[0]["lines"]:
        assert len(line["box"]) == 4
        for w in line["words"]:
            assert line["box"][0] - 20 <= w["x0"] <= w["x1"] <= line["box"][2] + 20
    errors = [l for l in r.stderr.splitlines() if l]
    assert len(errors) == 4 and all(l.startswith("Error: ") for l in errors)
    assert "Traceback" not in r.output


def test_lines_out_writes_the_cut_lines_and_never_overwrites(trained, tmp_path):
    _, data, model = trained
    pngs = sorted((data / "test" / "fonts").glob("*.png"))[:3]
    lines = [np.asarray(Image.open(p).convert("L")) for p in pngs]
    w = max(l.shape[1] for l in lines)
    page = np.full((sum(l.shape[0] + 30 for l in lines), w), 255, np.uint8)
    y = 15
    for l in lines:
        page[y:y + l.shape[0], :l.shape[1]] = l
        y += l.shape[0] + 30
    Image.fromarray(page).save(tmp_path / "page.png")
    out = tmp_path / "cut"
    r = CliRunner().invoke(cli, ["read", str(tmp_path / "page.png"), "--model", str(model), "--lines-out", str(out),
                                 "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert len(result["lines"]) == 3 and len(list(out.glob("page-*.png"))) == 3
    assert result["lines"][0]["box"][1] < result["lines"][1]["box"][1] < result["lines"][2]["box"][1]
    r = CliRunner().invoke(cli, ["read", str(tmp_path / "page.png"), "--model", str(model), "--lines-out", str(out)])
    assert r.exit_code == 1 and "--force" in r.output


def test_fine_tune_on_a_user_folder_with_a_new_character(trained, tmp_path):
    _, data, model = trained
    user = tmp_path / "mine"
    user.mkdir()
    for i, png in enumerate(sorted((data / "test" / "fonts").glob("*.png"))):
        shutil.copy(png, user / f"l{i}.png")
        (user / f"l{i}.gt.txt").write_text(f"\u00e9t\u00e9 {i}\n")  # é is not in the shipped alphabet
    run = tmp_path / "run"
    r = CliRunner().invoke(cli, ["train", "--data", str(user), "--init", str(model), "--out", str(run), "--steps", "2",
                                 "--eval-every", "2", "--lm-order", "2", "--quiet", "--json"])
    assert r.exit_code == 0, r.output
    config = json.loads((run / "best" / "config.json").read_text())
    assert "\u00e9" in config["meta"]["alphabet"] and config["config"]["vocab_size"] == len(config["meta"]["alphabet"])
    r = CliRunner().invoke(cli, ["train", "--data", str(user), "--init", str(model), "--out", str(tmp_path / "r2"),
                                 "--hidden", "99"])
    assert r.exit_code == 2 and "--init" in r.output


def test_every_command_has_help():
    for args in (["--help"], ["read", "--help"], ["train", "--help"], ["data", "build", "--help"],
                 ["evaluate", "--help"], ["export", "--help"]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 0 and "Example" in r.output or args == ["--help"], args


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "I;16", "JPEG", "TIFF", "inverted"])
def test_any_image_mode_reads_like_the_grey_original(trained, tmp_path, mode):
    _, data, model = trained
    png = sorted((data / "test" / "fonts").glob("*.png"))[0]
    grey = Image.open(png).convert("L")
    if mode == "I;16":
        img, name = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257), "x.png"
    elif mode == "JPEG":
        img, name = grey.convert("RGB"), "x.jpg"
    elif mode == "TIFF":
        img, name = grey, "x.tif"
    elif mode == "inverted":
        img, name = Image.fromarray(255 - np.asarray(grey)), "x.png"
    else:
        img, name = grey.convert(mode), "x.png"
    img.save(tmp_path / name)
    r = CliRunner().invoke(cli, ["read", str(png), str(tmp_path / name), "--model", str(model), "--json",
                                 "--beam", "1"])
    assert r.exit_code == 0, r.output
    original, other = (json.loads(line) for line in r.stdout.splitlines())
    if mode in ("RGB", "RGBA", "P", "I;16", "TIFF"):
        assert other["text"] == original["text"] and other["lines"][0]["box"] == original["lines"][0]["box"]
    else:
        assert len(other["lines"]) == len(original["lines"])


def test_export_can_refit_a_smaller_lm(trained, tmp_path):
    root, data, _ = trained
    r = CliRunner().invoke(cli, ["export", str(root / "run"), "--out", str(tmp_path / "m"), "--data", str(data),
                                 "--lm-order", "3", "--json"])
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["meta"]["lm_order"] == 3 and config["meta"]["lm"]["order"] == 3
    r = CliRunner().invoke(cli, ["export", str(root / "run"), "--out", str(tmp_path / "m"), "--data", str(data)])
    assert r.exit_code == 1 and "--force" in r.output
