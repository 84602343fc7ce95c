"""`suite translate`: English software messages into German or French; fill gettext .po catalogs.

Parses, calls apps/translate (data.py, memory.py, model.py, placeholders.py, po.py, plot.py), reports;
the train command's body and the option bundles are suite.cli_common's.
"""
import json
import sys
from pathlib import Path

import click

from suite.cli_common import (FiniteFloatRange, architecture_from_init, command_line, default_command_group,
                              export_source, fail, finish_training, load_or_fail, model_option, prepare_run_dir,
                              run_training, training_options)
from suite.cli_common import counter as _bar
from suite.threads import single_blas_thread

DEFAULT_DATA = "data/translate"   # suite.databuild.data_dir("translate"), named here so that --help needs no numpy
DEFAULT_RUN_DIR = "runs/translate"
LANGUAGES = ("de", "fr")


def _load(model_dir):
    from suite.apps.translate.model import load_model

    return load_or_fail(load_model, "translate", model_dir)


def _check_lang(card, lang):
    have = card["meta"]["languages"]
    if lang not in have:
        raise click.ClickException(f"this model translates into {', '.join(have)}, not {lang!r}; pass --to "
                                   f"{' or --to '.join(have)}, or train a model for {lang!r} (suite translate train)")


def translate_options(fn):
    """--to, --model, --beam: what the sentence, .po and batch commands share."""
    fn = click.option("--beam", type=click.IntRange(1, 64), default=5, show_default=True,
                      help="Beam size (1 = greedy).")(fn)
    fn = model_option(fn)
    return click.option("--to", "lang", required=True, metavar="LANG",
                        help="Target language: de or fr (the shipped model's); a trained model lists its own.")(fn)


@click.group(cls=default_command_group("text"))
def cli():
    """Translate English software messages into German or French (BiLSTM encoder, attention, LSTM decoder).

    Learnt from the human translations in the gettext catalogs installed on
    this machine. Placeholders (%s, %1$d, {name}, <b>, &amp;), accelerators
    (_File, &File) and trailing newlines and colons are copied, never
    translated. A line the model's translation memory (its training pairs)
    holds nearly verbatim gets the stored human translation (--no-memory: the
    network alone). `suite translate TEXT` is short for `suite translate text TEXT`.

    \b
    Examples:
      suite translate "Open the file" --to de
      suite translate -i messages.txt --to fr --json
      suite translate po app.pot --to de -o de.po      # fill untranslated entries, marked fuzzy
      suite translate data build && suite translate train && suite translate export runs/translate
    """


@cli.command("text")
@click.argument("sentences", nargs=-1)
@click.option("-i", "--input", "input_file", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Translate this file, one message a line (- for standard input).")
@translate_options
@click.option("--nbest", type=click.IntRange(1, 64), default=1, show_default=True,
              help="With --json: this many alternatives a message.")
@click.option("--no-memory", is_flag=True, help="The network alone: never the translation memory's stored "
                                                "translation of a (nearly) identical message.")
@click.option("--attention", "attention_out", type=click.Path(dir_okay=False), default=None,
              help="Draw the alignment (attention) of the first message to this PNG.")
@click.option("--force", is_flag=True, help="Overwrite an existing --attention file.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object a message: source, translation, log_prob, nbest.")
def text_cmd(sentences, input_file, lang, model_dir, beam, nbest, no_memory, attention_out, force, as_json):
    """Translate messages given as arguments or read from a file, one a line, in order.

    \b
    Examples:
      suite translate "Cannot open file %s" --to de
      suite translate text "Save _As…" "Quit" --to fr --json --nbest 3
      printf 'Open\\nClose\\n' | suite translate -i - --to de
    """
    from suite.fileio import OutputExistsError, check_writable

    if bool(sentences) == bool(input_file):
        raise click.UsageError("give the messages as arguments or with -i FILE (- for standard input), not both")
    if input_file is not None:
        sentences = _read_lines(input_file)
        if not sentences:
            raise click.ClickException(f"{'standard input' if input_file == '-' else input_file}: no lines to "
                                       "translate; give one message a line")
    model, sub, card = _load(model_dir)
    _check_lang(card, lang)
    if attention_out:
        try:
            check_writable(attention_out, force=force)
        except (OutputExistsError, OSError) as exc:
            raise fail(exc) from None
    from suite.apps.translate.model import translator_for

    translator = translator_for(model, sub, card, beam=beam, nbest=nbest, memory=not no_memory)
    sentences = list(sentences)
    bar = _bar("translating") if len(sentences) > CHUNK else None
    for start in range(0, len(sentences), CHUNK):  # a long file streams out a chunk at a time
        with single_blas_thread():
            results = translator.translate(sentences[start:start + CHUNK], lang)
        if start == 0 and attention_out:  # the network's alignment, even where the memory gave the line
            network = results[0] if no_memory else translator_for(model, sub, card, beam=beam, memory=False) \
                .translate(sentences[:1], lang)[0]
            _attention(network, sub, lang, attention_out, force)
        for r in results:
            if as_json:
                click.echo(json.dumps({"source": r["source"], "translation": r["text"], "log_prob": r["log_prob"],
                                       "nbest": r["nbest"][:nbest], "memory": r["memory"]}, ensure_ascii=False))
            else:
                click.echo(r["text"].replace("\n", "\\n"))
        if bar:
            bar(min(start + CHUNK, len(sentences)), len(sentences))


CHUNK = 256  # messages translated (and printed) at a time


def _attention(result, sub, lang, out, force):
    from suite.apps.translate.plot import alignment_figure

    if result["attention"] is None:
        raise click.ClickException("--attention draws one line of text; the first message has several lines "
                                   "or nothing to translate")
    try:
        alignment_figure(result, sub, lang, out, force=force)
    except OSError as exc:
        raise fail(exc) from None


def _read_lines(path):
    from suite.fileio import InputTooLargeError, read_bytes_limited

    try:
        data = read_bytes_limited("standard input" if path == "-" else path,
                                  stream=sys.stdin.buffer if path == "-" else None)
    except (OSError, InputTooLargeError) as exc:
        raise fail(exc) from None
    if b"\0" in data:
        raise click.ClickException(f"{path}: a binary file; give UTF-8 text, one message a line")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path}: not UTF-8 (byte {exc.start}); convert it, e.g. with iconv -t UTF-8") \
            from None
    return [line.replace("\\n", "\n") for line in text.splitlines()]


@cli.command("po")
@click.argument("catalog", type=click.Path(dir_okay=False))
@translate_options
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), default=None,
              help="Write the filled catalog here [default: CATALOG with .pot -> LANG.po beside it; a .po is "
                   "only rewritten in place with --force].")
@click.option("--force", is_flag=True, help="Overwrite an existing output (or the input itself).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def po_cmd(catalog, lang, model_dir, beam, out, force, as_json):
    """Fill the untranslated entries of a gettext catalog (.po or .pot), each marked `#, fuzzy` for review.

    Translated entries, comments, flags, references and obsolete entries stay
    exactly as they were; plural entries get the language's nplurals forms;
    the file keeps its charset. The result passes `msgfmt --check`.

    \b
    Examples:
      suite translate po app.pot --to de -o po/de.po
      suite translate po po/fr.po --to fr --force        # fill in place
    """
    from suite.apps.translate.model import translator_for
    from suite.apps.translate.po import PoError, default_output, fill_file, read_catalog
    from suite.fileio import OutputExistsError, check_writable

    out = out or default_output(catalog, lang)
    try:
        read_catalog(catalog)  # a bad catalog is reported before the model loads
        check_writable(out, force=force)
    except OutputExistsError:
        raise click.ClickException(f"{out} already exists; pass --force to overwrite it, or -o OTHER.po") from None
    except (PoError, OSError) as exc:
        raise fail(exc) from None
    model, sub, card = _load(model_dir)
    _check_lang(card, lang)
    translator = translator_for(model, sub, card, beam=beam)

    def translate(texts):
        with single_blas_thread():
            return [r["text"] for r in translator.translate(texts, lang, progress=_bar("translating"))]

    try:
        stats = fill_file(catalog, out, lang, translate, force=force)
    except OutputExistsError:
        raise click.ClickException(f"{out} already exists; pass --force to overwrite it") from None
    except (PoError, OSError) as exc:
        raise fail(exc) from None
    if as_json:
        click.echo(json.dumps(stats))
    else:
        click.echo(f"filled {stats['filled']} of {stats['entries']} entries ({stats['translated_before']} were "
                   f"translated), marked fuzzy; wrote {out}")


@cli.group()
def data():
    """Build the translation corpus from the gettext catalogs on this machine."""


@data.command("build")
@click.option("--out", type=click.Path(file_okay=False), default=DEFAULT_DATA, show_default=True)
@click.option("--vocab-size", type=click.IntRange(200, 32000), default=4000, show_default=True,
              help="Subword vocabulary (sentencepiece unigram, joint for en, de, fr).")
@click.option("--lang", "langs", multiple=True, type=click.Choice(LANGUAGES), default=LANGUAGES, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def data_build(out, vocab_size, langs, seed, force, as_json):
    """Pairs from every installed .mo catalog of de and fr; whole domains held out for validation and test.

    The gimp20*, nano and gawk catalogs are never read (kept for evaluation by others).

    Example: suite translate data build --out data/translate
    """
    from suite.apps.translate.data import build_dataset
    from suite.databuild import DataError, check_data_dir

    try:
        check_data_dir(out, force, "translate")
        report = build_dataset(out, langs=tuple(langs), vocab_size=vocab_size, seed=seed,
                               progress=_bar("reading catalogs"), command=command_line("translate"))
    except (DataError, OSError) as exc:
        raise fail(exc) from None
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"wrote {out}: " + "; ".join(f"{s} " + ", ".join(f"{k} {v}" for k, v in c.items())
                                               for s, c in report["counts"].items()))


def _splits(data_dir, pairs, lang, init_sub, vocab_size, seed):
    """(train rows, valid rows, Subwords, data record) from a built corpus or the user's pairs."""
    from suite.apps.translate.data import load_split, read_user_pairs, train_subwords
    from suite.apps.translate.model import Subwords
    from suite.databuild import DataError, holdout_split, read_report

    try:
        if pairs is not None:
            if lang is None:
                raise click.UsageError("--pairs needs --lang (the language of the targets: de or fr)")
            rows = read_user_pairs(pairs, lang)
            train_idx, held = holdout_split(len(rows), seed=seed)
            train, valid = [rows[i] for i in train_idx], [rows[i] for i in held]
            sub = init_sub or Subwords(train_subwords(train, vocab_size, seed))
            return train, valid, sub, {"source": str(pairs), "pairs": len(rows), "lang": lang}
        data_dir = Path(data_dir)
        if not data_dir.exists():
            raise DataError(f"{data_dir}: no such folder; run `suite translate data build` first, or pass "
                            "--pairs FILE.tsv (or a folder of .po files) with --lang")
        report = read_report(data_dir, app="translate")
        train, valid = load_split(data_dir, "train"), load_split(data_dir, "valid")
        sub = init_sub or Subwords((data_dir / "spm.model").read_bytes())
        return train, valid, sub, {"source": str(data_dir), "report": report}
    except (DataError, OSError) as exc:
        raise fail(exc) from None


@cli.command()
@click.option("--pairs", type=click.Path(), default=None,
              help="Train on your own pairs: a TSV of source<TAB>target, or a folder of translated .po files "
                   "(5 % held out for validation). Needs --lang.")
@click.option("--lang", type=click.Choice(LANGUAGES), default=None, help="The target language of --pairs.")
@click.option("--embed", type=click.IntRange(8, 1024), default=128, show_default=True)
@click.option("--enc-hidden", type=click.IntRange(8, 1024), default=160, show_default=True,
              help="Encoder LSTM units per direction.")
@click.option("--enc-layers", type=click.IntRange(1, 6), default=2, show_default=True)
@click.option("--hidden", type=click.IntRange(8, 2048), default=256, show_default=True, help="Decoder LSTM units.")
@click.option("--attn", type=click.IntRange(8, 1024), default=128, show_default=True)
@click.option("--dropout", type=FiniteFloatRange(0, 1, max_open=True), default=0.2, show_default=True)
@click.option("--label-smoothing", type=FiniteFloatRange(0, 1, max_open=True), default=0.1, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
@click.option("--vocab-size", type=click.IntRange(200, 32000), default=4000, show_default=True,
              help="Subwords learnt from --pairs (a built corpus brings its own).")
@click.option("--init", "init_dir", type=click.Path(file_okay=False), default=None,
              help="Start from this translate model (fine-tuning; keeps its subwords), e.g. data/models/translate.")
@training_options(steps=7000, eval_every=500, lr=2e-3, data=DEFAULT_DATA, out=DEFAULT_RUN_DIR,
                  data_help="A corpus from `suite translate data build`.")
@click.pass_context
def train(ctx, pairs, lang, data_dir, out, embed, enc_hidden, enc_layers, hidden, attn, dropout, label_smoothing,
          batch_size, vocab_size, init_dir, **opts):
    """Train the translation model; the best checkpoint by validation loss is kept.

    \b
    Examples:
      suite translate train --minutes 60 --export data/models/translate
      suite translate train --pairs mine.tsv --lang de --init data/models/translate --lr 5e-4 --steps 1000
    """
    from suite.apps.translate.model import (TranslateConfig, TranslateModel, TranslateTask, config_dict,
                                            prepare_pairs)

    architecture = {"embed": embed, "enc_hidden": enc_hidden, "enc_layers": enc_layers, "hidden": hidden,
                    "attn": attn, "dropout": dropout, "label_smoothing": label_smoothing}
    init_model = init_sub = init_card = None
    if init_dir is not None:
        init_model, init_sub, init_card = _load(init_dir)
        architecture = architecture_from_init(ctx, architecture, init_card)
    out = prepare_run_dir(out, opts["resume"], opts["force"], opts["export"])
    train_rows, valid_rows, sub, source = _splits(data_dir, pairs, lang, init_sub, vocab_size, opts["seed"])
    train_pairs, skipped = prepare_pairs(train_rows, sub)
    valid_pairs, _ = prepare_pairs(valid_rows, sub)
    if not train_pairs or not valid_pairs:
        raise click.ClickException("no usable training or validation pairs after masking placeholders; "
                                   "check the data")
    config = TranslateConfig(vocab_size=sub.size, seed=opts["seed"], **architecture)
    model = TranslateModel(config)
    if init_model is not None:
        model.load_state_dict(init_model.state_dict())
    langs = sorted({r["lang"] for r in train_rows} | set(init_card["meta"]["languages"] if init_card else []))
    meta = {"subwords": sub.to_meta(), "languages": langs, "data": source, "train_pairs": len(train_pairs),
            "skipped_pairs": dict(skipped), "decoding": {"beam": 5, "length_penalty": 0.6}}
    if init_card is not None:
        meta["init"] = {"from": str(init_dir), "step": init_card["meta"].get("step")}
    task = TranslateTask(train_pairs, valid_pairs, sub, valid_rows, batch_size=batch_size)
    summary = run_training("translate", model, task, config_dict(config), meta, out=out, init=init_dir,
                           describe_eval=lambda r: f"valid NLL {r['loss']:.4f}/subword, greedy chrF "
                                                   f"{r.get('chrf', float('nan')):.2f}", **opts)
    if opts["export"]:
        summary["card"] = _export(out / "best", opts["export"], data_dir if pairs is None else None, None,
                                  opts["quiet"], memory_rows=train_rows)
    finish_training(summary, opts["as_json"], f"best validation NLL {summary['valid'].get('loss', float('nan')):.4f}",
                    opts["export"])


def _export(best, out, data_dir, export_command, quiet, limit=None, memory_rows=None):
    from suite.apps.translate.model import export_model

    try:
        with single_blas_thread():
            return export_model(best, out, data_dir, export_command=export_command,
                                progress_for=lambda what: _bar(what, quiet), limit=limit, memory_rows=memory_rows)
    except (ValueError, OSError) as exc:
        raise fail(exc) from None


@cli.command("export")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default="data/models/translate", show_default=True)
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=DEFAULT_DATA, show_default=True,
              help="The built corpus whose test split is evaluated.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Evaluate the first N test pairs a language.")
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def export_cmd(run, out, data_dir, limit, force, as_json):
    """Export a trained model (RUN/best) with a card: chrF and BLEU on held-out domains beside the copy and
    translation-memory baselines, placeholder preservation, speed.

    Example: suite translate export runs/translate --out data/models/translate --force
    """
    best = export_source(run, out, force)
    card = _export(best, out, data_dir, command_line("translate"), False, limit=limit)
    if as_json:
        click.echo(json.dumps(card, indent=2))
        return
    _print_metrics(card["metrics"].get("test", {}))
    click.echo(f"exported {best} to {out}")


def _print_metrics(test):
    for lang, m in test.items():
        click.echo(f"{lang} ({m['pairs']} pairs), chrF / BLEU: model with memory {m['model_with_memory']['chrf']:.1f} "
                   f"/ {m['model_with_memory']['bleu']:.1f}, model {m['model']['chrf']:.1f} / {m['model']['bleu']:.1f}, "
                   f"memory {m['memory']['chrf']:.1f} / {m['memory']['bleu']:.1f}, copy {m['copy']['chrf']:.1f} / "
                   f"{m['copy']['bleu']:.1f}; placeholders kept {m['placeholders']['model_with_memory']:.3f}; "
                   f"{m['model']['sentences_per_second']:.1f} sentences/s")


@cli.command()
@click.argument("pairs", type=click.Path(exists=False))
@translate_options
@click.option("--train-pairs", type=click.Path(), default=None,
              help="Pairs for the translation memory (a TSV or a folder of .po files) [default: the model's own "
                   "memory, its training pairs].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def evaluate(pairs, lang, model_dir, beam, train_pairs, as_json):
    """chrF and BLEU (sacrebleu, with signatures) of the model on PAIRS (a TSV of source<TAB>reference or a
    folder of translated .po/.mo catalogs), beside the copy and translation-memory baselines.

    \b
    Examples:
      suite translate evaluate /usr/share/locale/de/LC_MESSAGES/nano.mo --to de
      suite translate evaluate my-po-folder/ --to fr --json
    """
    from suite.apps.translate.data import read_user_pairs
    from suite.apps.translate.memory import Memory
    from suite.apps.translate.model import evaluate_rows
    from suite.databuild import DataError

    model, sub, card = _load(model_dir)
    _check_lang(card, lang)
    try:
        rows = read_user_pairs(pairs, lang)
        memory = Memory.from_rows(read_user_pairs(train_pairs, lang)) if train_pairs else model.memory
    except (DataError, OSError) as exc:
        raise fail(exc) from None
    dec = card["meta"].get("decoding") or {}
    with single_blas_thread():
        report = evaluate_rows(model, sub, rows, memory or Memory({}), lang, beam=beam,
                               length_penalty=float(dec.get("length_penalty", 0.6)),
                               threshold=dec.get("memory_threshold"), progress=_bar("translating"))
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print_metrics({lang: report})


# -- `suite batch translate`: fill many catalogs (suite.batch) --------------------------------------------
def _batch_load(lang, model_dir=None, beam=5):
    from suite.apps.translate.model import load_model, translator_for
    from suite.shipped import default_model_dir

    model, sub, card = load_model(model_dir or default_model_dir("translate"))
    if lang not in card["meta"]["languages"]:
        raise ValueError(f"this model translates into {', '.join(card['meta']['languages'])}, not {lang!r}")
    translator = translator_for(model, sub, card, beam=beam)
    translator.translate(["Open the file"], lang)  # compile
    return translator, lang


def _batch_run(state, path):
    from suite.apps.translate.po import default_output, fill_file

    translator, lang = state
    if Path(path).suffix != ".pot":
        raise ValueError(f"{path}: not a .pot template; a batch fills templates (X.pot -> LANG.po beside it); fill "
                         "a .po catalog with `suite translate po FILE.po --to LANG --force`")
    return fill_file(path, default_output(path, lang), lang,
                     lambda texts: [r["text"] for r in translator.translate(texts, lang)])


def batch_job():
    from suite.batch import BatchJob
    from suite.cli_common import option_objects

    return BatchJob("translate po", "Fill gettext templates (as `suite translate po`): each X.pot gets LANG.po "
                    "beside it, every entry marked fuzzy; an existing LANG.po is an error for that input, never "
                    "overwritten.", (".pot",), _batch_load, _batch_run,
                    options=option_objects(translate_options))
