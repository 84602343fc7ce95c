"""The whole speech workflow through the CLI on a tiny corpus: build, train, export, evaluate, transcribe."""
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from suite.apps.speech.cli import cli

pytestmark = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("flite")),
                                reason="needs espeak-ng and flite (make apt)")


def test_build_train_export_evaluate_transcribe(tmp_path):
    data, run, model = tmp_path / "data", tmp_path / "run", tmp_path / "model"
    r = CliRunner().invoke(cli, ["data", "build", "--out", str(data), "--n-train", "12", "--n-valid", "4",
                                 "--n-test", "3", "--n-unseen", "0", "--workers", "1", "--json"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(run), "--steps", "3", "--eval-every", "3",
                                 "--hidden", "8", "--layers", "1", "--batch-size", "4", "--quiet",
                                 "--export", str(model), "--json"])
    assert r.exit_code == 0, r.output
    card = json.loads((model / "card.json").read_text())
    assert {"clean", "snr20"} <= set(card["metrics"]["test"])
    assert card["metrics"]["test"]["clean"]["utterances"] == 3
    assert card["decoding"]["chosen_on"].startswith("validation") and len(card["decoding"]["grid"]) == 30
    from suite.apps.speech.data import load_split

    train_words = {w for t in load_split(data, "train")["texts"] for w in t.split()}
    assert card["lexicon"] == sorted(train_words) and len(train_words) > 3
    assert json.loads((model / "config.json").read_text())["meta"]["decoding"] == card["decoding"]
    tsv = data / "test" / "clean" / "transcripts.tsv"
    r = CliRunner().invoke(cli, ["evaluate", str(tsv), "--model", str(model), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["utterances"] == 3 and 0.0 <= report["cer"]
    wav = next((data / "test" / "clean").glob("*.wav"))
    r = CliRunner().invoke(cli, ["transcribe", str(wav), "--model", str(model), "--json", "--beam", "2"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["file"] == str(wav)
    r = CliRunner().invoke(cli, ["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "r2")])
    assert r.exit_code == 1 and "data build" in r.output

    # fine-tuning starts from the exported weights: one step at a tiny learning rate leaves them almost unchanged
    from suite.apps.speech.model import load_model

    tuned = tmp_path / "tuned"
    r = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(tmp_path / "r3"), "--init", str(model),
                                 "--steps", "1", "--eval-every", "1", "--lr", "1e-7", "--batch-size", "4", "--quiet",
                                 "--export", str(tuned)])
    assert r.exit_code == 0, r.output
    before, after = load_model(model)[0].state_dict(), load_model(tuned)
    assert after[1]["config"]["hidden"] == 8 and after[1]["meta"]["init"]["from"] == str(model)
    assert max(float(np.abs(after[0].state_dict()[k] - v).max()) for k, v in before.items()) < 1e-4
    r = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(tmp_path / "r4"), "--init", str(model),
                                 "--hidden", "16"])
    assert r.exit_code == 2 and "--hidden 16 differs" in r.output
    r = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(tmp_path / "r5"), "--init",
                                 str(tmp_path / "none")])
    assert r.exit_code == 1 and "no model here" in r.output and "data/models/speech" in r.output
    assert not (tmp_path / "r5").exists()
