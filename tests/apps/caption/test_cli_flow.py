"""The whole caption workflow through the CLI on a tiny dataset: build, train, export, evaluate, describe."""
import json

from click.testing import CliRunner

from suite.apps.caption.cli import cli


def test_build_train_export_evaluate_describe(tmp_path):
    data, run, model = tmp_path / "data", tmp_path / "run", tmp_path / "model"
    r = CliRunner().invoke(cli, ["data", "build", "--out", str(data), "--n", "24", "--n-valid", "6", "--n-test", "4",
                                 "--workers", "1", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["counts"]["train"] == 24
    r = CliRunner().invoke(cli, ["data", "build", "--out", str(data), "--n", "24"])
    assert r.exit_code == 1 and "already exists" in r.output
    r = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(run), "--steps", "4", "--eval-every", "2",
                                 "--channels", "4,4,4", "--hidden", "8", "--embed", "4", "--attn", "4",
                                 "--batch-size", "4", "--quiet", "--export", str(model), "--json"])
    assert r.exit_code == 0, r.output
    card = json.loads((model / "card.json").read_text())
    assert set(card["metrics"]) >= {"how", "test", "combo", "alt"}
    assert "object_set_accuracy" in card["metrics"]["test"]["model"]
    calibration = card["metrics"]["calibration"]  # fitted on valid, its error reported per held-out split
    assert calibration["chosen"]["method"] in ("platt", "raw") and set(calibration["test"]) >= {"ece", "accuracy"}
    blur = card["metrics"]["input_blur_choice"]  # chosen on valid from the grid, and what the model then reads
    assert card["config"]["input_blur"] == blur["chosen"] and len(blur["by_sigma"]) == 5
    r = CliRunner().invoke(cli, ["export", str(run), "--out", str(tmp_path / "fixed"), "--data", str(data),
                                 "--input-blur", "0.5", "--beam", "1"])
    assert r.exit_code == 0 and "input blur 0.5" in r.output, r.output
    fixed = json.loads((tmp_path / "fixed" / "card.json").read_text())
    assert fixed["config"]["input_blur"] == 0.5 and "input_blur_choice" not in fixed["metrics"]
    r = CliRunner().invoke(cli, ["evaluate", "--model", str(model), "--data", str(data), "--split", "test",
                                 "--beam", "1", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["test"]["model"]["images"] == 4
    folder = data / "images" / "test"  # a user's folder: the built test images with their captions.tsv
    r = CliRunner().invoke(cli, ["evaluate", "--model", str(model), "--data", str(data), "--images", str(folder),
                                 "--captions", str(folder / "captions.tsv"), "--beam", "1", "--json"])
    assert r.exit_code == 0, r.output
    user = json.loads(r.stdout)["user"]
    assert user["model"]["images"] == 4 and user["model"]["scored_against"] == "references"
    assert "baseline_nearest_neighbour" in user  # the built train split is there
    r = CliRunner().invoke(cli, ["evaluate", "--model", str(model), "--images", str(folder)])
    assert r.exit_code == 2 and "go together" in r.output
    png = next((data / "images" / "test").glob("*.png"))
    r = CliRunner().invoke(cli, [str(png), "--model", str(model), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["file"] == str(png) and 0 <= json.loads(r.stdout)["confidence"] <= 1
    r = CliRunner().invoke(cli, ["train", "--data", str(data), "--init", str(model), "--out", str(tmp_path / "ft"),
                                 "--steps", "2", "--eval-every", "2", "--batch-size", "4", "--quiet", "--json"])
    assert r.exit_code == 0, r.output  # a fine-tune keeps the init model's architecture and vocabulary
    assert json.loads((tmp_path / "ft" / "best" / "config.json").read_text())["config"]["hidden"] == 8
    counted = tmp_path / "counted"  # counting: captions with words the model never said ("two", plurals),
    r = CliRunner().invoke(cli, ["data", "build", "--out", str(counted), "--n", "24", "--n-valid", "6", "--n-test",
                                 "4", "--workers", "1", "--twins", "1", "--input-size", "128", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["splits"]["train"]["twin_scenes"] > 10, r.output  # at 128 px
    r = CliRunner().invoke(cli, ["train", "--data", str(counted), "--init", str(model), "--out", str(tmp_path / "ft2"),
                                 "--steps", "2", "--eval-every", "2", "--batch-size", "4", "--quiet", "--json"])
    assert r.exit_code == 0, r.output
    grown = json.loads((tmp_path / "ft2" / "best" / "config.json").read_text())
    assert grown["config"]["vocab_size"] > card["config"]["vocab_size"] and "two" in grown["meta"]["vocab"]
    assert grown["config"]["input_size"] == 128 and grown["config"]["init_grid"] == 4  # reads the data's size
    r = CliRunner().invoke(cli, ["evaluate", "--model", str(tmp_path / "ft2" / "best"), "--data", str(data),
                                 "--split", "test", "--beam", "1", "--json"])  # 64-px images, resized for it
    assert r.exit_code == 0 and json.loads(r.stdout)["test"]["model"]["images"] == 4, r.output
    r = CliRunner().invoke(cli, [str(png), "--model", str(tmp_path / "ft2" / "best")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "r2")])
    assert r.exit_code == 1 and "data build" in r.output
