import json
import shutil
import subprocess

import polib
import pytest
from click.testing import CliRunner

from suite.apps.translate.placeholders import preserved

from .conftest import PAIRS


def _cli():
    from suite.apps.translate.cli import cli
    return cli


def _run(args, input=None):
    return CliRunner().invoke(_cli(), [str(a) for a in args], input=input)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("translate")
    tsv = tmp / "pairs.tsv"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in PAIRS * 2), encoding="utf-8")
    r = _run(["train", "--pairs", tsv, "--lang", "de", "--out", tmp / "run", "--steps", 6, "--eval-every", 3,
              "--embed", 8, "--enc-hidden", 8, "--enc-layers", 1, "--hidden", 8, "--attn", 8, "--vocab-size", 400,
              "--export", tmp / "model", "--quiet"])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp / "model" / "card.json").read_text())
    assert card["app"] == "translate" and card["decoding"]["beam"] == 5
    return tmp / "model"


def test_sentences_from_arguments_and_standard_input_in_order(model_dir):
    r = _run(["Open the file", "--to", "de", "--model", model_dir])
    assert r.exit_code == 0, r.output
    assert len(r.stdout.splitlines()) == 1
    r = _run(["-i", "-", "--to", "de", "--model", model_dir, "--json", "--nbest", 2],
             input="Cannot open %s\nSave the file\n_Quit\n")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["source"] for x in rows] == ["Cannot open %s", "Save the file", "_Quit"]
    assert all(set(x) == {"source", "translation", "log_prob", "nbest", "memory"} and 1 <= len(x["nbest"]) <= 2
               for x in rows)
    assert preserved("Cannot open %s", rows[0]["translation"])


def test_a_message_the_memory_holds_gets_its_human_translation(model_dir):
    """The model folder carries its training pairs; a model trained without a corpus uses exact matches only."""
    sources = [s for s, _ in PAIRS]
    r = _run(["-i", "-", "--to", "de", "--model", model_dir, "--json"], input="\n".join(sources) + "\n")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    recalled = [(x, t) for x, (_, t) in zip(rows, PAIRS) if x["memory"] is not None]
    assert len(recalled) >= len(PAIRS) - 2  # 5 % of the 32 training rows are held out for validation
    assert all(x["memory"] == 1.0 and x["translation"] == t for x, t in recalled)
    r = _run(["text", "Open the fil", "--to", "de", "--model", model_dir, "--json"])  # one letter off: the model
    assert json.loads(r.stdout)["memory"] is None
    r = _run(["-i", "-", "--to", "de", "--model", model_dir, "--json", "--no-memory"], input="Open the file\n")
    assert json.loads(r.stdout)["memory"] is None


def test_a_language_the_model_lacks_is_one_line(model_dir):
    r = _run(["Open", "--to", "fr", "--model", model_dir])
    assert r.exit_code == 1 and "translates into de" in r.output and "Traceback" not in r.output
    r = _run(["--to", "de", "--model", model_dir])
    assert r.exit_code == 2


def test_attention_picture_never_overwrites(model_dir, tmp_path):
    out = tmp_path / "att.png"
    r = _run(["text", "Delete {count} files?", "--to", "de", "--model", model_dir, "--attention", out])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = _run(["Open", "--to", "de", "--model", model_dir, "--attention", out])
    assert r.exit_code == 1 and "already exists" in r.output


POT = '''msgid ""
msgstr ""
"Project-Id-Version: demo 1.0\\n"
"Language: \\n"
"MIME-Version: 1.0\\n"
"Content-Type: text/plain; charset=CHARSET\\n"
"Content-Transfer-Encoding: 8bit\\n"

#: src/main.c:10
#, c-format
msgid "Cannot open %s: %s\\n"
msgstr ""

#: src/main.c:12
msgid "_Quit"
msgstr ""

#: src/main.c:20
#, c-format
msgid "%d file deleted"
msgid_plural "%d files deleted"
msgstr[0] ""
msgstr[1] ""

#: src/ui.c:3
msgid "<b>Warning</b>"
msgstr "<b>Warnung</b>"
'''


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="msgfmt (Debian gettext) is not installed")
def test_po_fills_a_template_that_msgfmt_accepts(model_dir, tmp_path):
    pot = tmp_path / "demo.pot"
    pot.write_text(POT, encoding="utf-8")
    r = _run(["po", pot, "--to", "de", "--model", model_dir, "--json"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "de.po"
    assert json.loads(r.stdout)["filled"] == 3
    check = subprocess.run(["msgfmt", "--check", "--use-fuzzy", "-o", "/dev/null", str(out)], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stderr
    from .test_po import _pofilter_ok

    _pofilter_ok(out, tmp_path, "de")  # what an (untrained) network wrote: printf, variables, xmltags, nplurals
    po = polib.pofile(str(out))
    by_id = {e.msgid: e for e in po}
    assert by_id["<b>Warning</b>"].msgstr == "<b>Warnung</b>" and "fuzzy" not in by_id["<b>Warning</b>"].flags
    entry = by_id["Cannot open %s: %s\n"]
    assert "fuzzy" in entry.flags and preserved(entry.msgid, entry.msgstr)
    plural = by_id["%d file deleted"]
    assert len(plural.msgstr_plural) == 2 and all(preserved("%d", v) for v in plural.msgstr_plural.values())
    # the output exists now: no silent overwrite
    r = _run(["po", pot, "--to", "de", "--model", model_dir])
    assert r.exit_code == 1 and "already exists" in r.output


def test_po_bad_inputs_are_one_line(model_dir, tmp_path):
    cases = [
        (["po", tmp_path / "missing.po", "--to", "de"], "missing.po"),
        (["po", tmp_path, "--to", "de"], None),
    ]
    bad = tmp_path / "bad.po"
    bad.write_text('msgid "x"\nmsgstr "unterminated\n', encoding="utf-8")
    cases.append((["po", bad, "--to", "de", "-o", tmp_path / "out.po"], "line"))
    good = tmp_path / "good.pot"
    good.write_text(POT, encoding="utf-8")
    cases.append((["po", good, "--to", "de", "-o", "/proc/nope/x.po"], "/proc/nope"))
    for args, needle in cases:
        r = _run(args + ["--model", model_dir])
        assert r.exit_code in (1, 2), (args, r.output)
        assert "Traceback" not in r.output and r.output.strip().splitlines()[-1].startswith("Error"), r.output
        if needle:
            assert needle in r.output, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.po", "good.pot"]


def test_a_model_folder_of_the_wrong_shape_is_one_line(model_dir, tmp_path):
    for key, value in (("languages", 12), ("languages", ["xx"]), ("subwords", "bm90IGEgbW9kZWw="),
                       ("memory", "bm90IGEgbW9kZWw="), ("decoding", {"memory_threshold": "high"}),
                       ("decoding", "fast")):
        broken = tmp_path / f"m-{key}-{len(str(value))}"
        shutil.copytree(model_dir, broken)
        config = json.loads((broken / "config.json").read_text())
        config["meta"][key] = value
        (broken / "config.json").write_text(json.dumps(config))
        r = _run(["Open", "--to", "de", "--model", broken])
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1, r.output


def test_training_on_pairs_needs_their_language(tmp_path):
    tsv = tmp_path / "p.tsv"
    tsv.write_text("a\tb\n", encoding="utf-8")
    r = _run(["train", "--pairs", tsv, "--out", tmp_path / "run"])
    assert r.exit_code == 2 and "--lang" in r.output
    assert not (tmp_path / "run").exists()


def _mo(root, lang, domain, pairs):
    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Language": lang}
    for s, t in pairs:
        po.append(polib.POEntry(msgid=s, msgstr=t))
    folder = root / lang / "LC_MESSAGES"
    folder.mkdir(parents=True, exist_ok=True)
    po.save_as_mofile(str(folder / f"{domain}.mo"))


def test_data_build_holds_out_domains_and_never_reads_the_evaluation_ones(tmp_path):
    from suite.apps.translate.data import build_dataset, load_split

    root = tmp_path / "locale"
    for lang in ("de", "fr"):
        _mo(root, lang, "coreutils", PAIRS[:12] + [("Line one\nLine two", "Zeile eins\nZeile zwei")])
        _mo(root, lang, "tar", PAIRS[12:14])       # a test domain
        _mo(root, lang, "findutils", PAIRS[14:])   # a validation domain
        for domain in ("gimp20-std-plug-ins", "nano", "gawk"):
            _mo(root, lang, domain, [("Zebra crossing secret", "Geheimer Zebrastreifen")])
    report = build_dataset(tmp_path / "data", roots=(str(root),), vocab_size=400)
    assert report["skipped_catalogs"] == {"eval-only domain (gimp20*, nano, gawk)": 6}
    splits = {s: load_split(tmp_path / "data", s) for s in ("train", "valid", "test")}
    assert {r["domain"] for r in splits["test"]} == {"tar"} and {r["domain"] for r in splits["valid"]} == {"findutils"}
    everything = json.dumps(splits)
    assert "Zebra" not in everything
    assert {"lang": "de", "domain": "coreutils", "src": "Line two", "tgt": "Zeile zwei"} in splits["train"]
