"""The translate corpus: human translations of software messages from the gettext catalogs on this machine.

Every compiled catalog (.mo) of the target languages under LOCALE_ROOTS is read
with polib, which takes the charset from the catalog's header (the stdlib's
gettext fails on some non-UTF-8 headers). Each translated entry gives a pair
(msgid, msgstr); a plural entry gives two (msgid, msgstr[0]) and
(msgid_plural, msgstr[1]); msgctxt is dropped. A message of several lines
whose translation has as many lines gives one pair a line (help texts are
most of the long messages), otherwise it is dropped. Pairs whose translation
equals the source, that hold no letters, or are longer than MAX_CHARS are
dropped; pairs are deduplicated by (language, source) within a split.

Whole catalogs (domains) are held out: VALID_DOMAINS for validation, TEST_DOMAINS
for test, never single pairs, so a test message comes from software the
model never read. EVAL_ONLY domains (gimp20*, nano, gawk) are kept out of
training, validation, the subword vocabulary and our own test entirely,
whatever is installed: they are for others' evaluation. SKIPPED domains are
names, not messages (every language and every subdivision of every country).

A built folder holds train.jsonl, valid.jsonl, test.jsonl (one pair a line:
lang, domain, src, tgt), spm.model (the joint sentencepiece model of the
masked training text, apps/translate/placeholders.py) and report.json.
"""
import fnmatch
import json
import re
from collections import Counter
from pathlib import Path

from suite.databuild import DataError

FORMAT = 1
LANGS = ("de", "fr")
LOCALE_ROOTS = ("/usr/share/locale", "/usr/share/locale-langpack")
EVAL_ONLY = ("gimp20*", "nano", "gawk")
SKIPPED = ("iso_639-3", "iso_639_3", "iso_3166-2", "iso_3166_2")
VALID_DOMAINS = ("diffutils", "findutils", "xz", "man-db", "at-spi2-core", "pg_ctl-15")
TEST_DOMAINS = ("tar", "wget", "sed", "grep", "make", "psmisc", "adduser", "avahi", "gdk-pixbuf", "alsa-utils",
                "pg_dump-15")
MAX_CHARS = 300
SPLITS = ("train", "valid", "test")
LANG_TAG = {lang: f"<2{lang}>" for lang in LANGS}


def is_eval_only(domain):
    return any(fnmatch.fnmatchcase(domain, p) for p in EVAL_ONLY)


def split_of(domain):
    if domain in TEST_DOMAINS:
        return "test"
    return "valid" if domain in VALID_DOMAINS else "train"


def find_catalogs(langs=LANGS, roots=LOCALE_ROOTS):
    """[(lang, domain, path)] of the compiled catalogs installed, sorted; EVAL_ONLY and SKIPPED domains left out."""
    found = []
    for root in roots:
        for lang in langs:
            for path in sorted(Path(root, lang, "LC_MESSAGES").glob("*.mo")):
                found.append((lang, path.stem, path))
    return sorted(found, key=lambda x: (x[0], x[1], str(x[2])))


def entry_pairs(entry):
    """(source, target) pairs of one translated polib entry (plural entries give two)."""
    if entry.msgid_plural:
        forms = entry.msgstr_plural
        out = []
        if forms.get(0):
            out.append((entry.msgid, forms[0]))
        if forms.get(1):
            out.append((entry.msgid_plural, forms[1]))
        return out
    return [(entry.msgid, entry.msgstr)] if entry.msgstr else []


def segment_pairs(src, tgt):
    """A pair, cut at newlines when both sides have the same lines; [] when their line counts differ."""
    s_lines, t_lines = src.split("\n"), tgt.split("\n")
    if len(s_lines) != len(t_lines):
        return []
    return [(s, t) for s, t in zip(s_lines, t_lines) if s.strip() or t.strip()]


def clean_pairs(raw):
    """Filter (src, tgt) pairs: Counter of why pairs were dropped, and the kept ones."""
    kept, dropped = [], Counter()
    for src, tgt in raw:
        segments = segment_pairs(src, tgt)
        if not segments:
            dropped["line counts differ"] += 1
        for s, t in segments:
            if s.strip() == t.strip():
                dropped["translation equals source"] += 1
            elif not re.search(r"[^\W\d_]", s):
                dropped["no letters"] += 1
            elif len(s) > MAX_CHARS or len(t) > 2 * MAX_CHARS:
                dropped[f"longer than {MAX_CHARS} characters"] += 1
            else:
                kept.append((s, t))
    return kept, dropped


def read_catalog_pairs(path):
    """Translated (src, tgt) pairs of one .mo or .po catalog; DataError (one line) if unreadable."""
    import polib

    path = Path(path)
    try:
        cat = polib.mofile(str(path)) if path.suffix == ".mo" else polib.pofile(str(path))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable gettext catalog ({' '.join(str(exc).split())[:120]})") from None
    return [p for e in cat if not e.obsolete and "fuzzy" not in e.flags and e.msgid for p in entry_pairs(e)], cat


def read_pairs_tsv(path):
    """(src, tgt) pairs of a user's TSV (source<TAB>target a line; \\n and \\t escapes are read as such)."""
    from suite.databuild import read_tsv_lines

    path = Path(path)
    lines = read_tsv_lines(path, "source<TAB>target")
    unescape = lambda s: s.replace("\\n", "\n").replace("\\t", "\t")  # noqa: E731
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataError(f"{path}:{n}: expected source<TAB>target, got {len(parts)} fields: {line[:60]!r}")
        out.append((unescape(parts[0]), unescape(parts[1])))
    if not out:
        raise DataError(f"{path}: no pairs; expected source<TAB>target lines")
    return out


def catalog_language(cat, path):
    """The language of a catalog: its header's Language, else the locale folder it sits in (de/LC_MESSAGES)."""
    language = (cat.metadata.get("Language") or "").strip()
    if not language and Path(path).parent.name == "LC_MESSAGES":
        language = Path(path).parent.parent.name
    return language.split("_")[0].split("@")[0]


def read_user_pairs(source, lang):
    """[{lang, domain, src, tgt}] from a TSV file, a .po or .mo catalog, or a folder of them (recursively);
    catalogs in another language than ``lang`` are skipped."""
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source}: no such file or folder; give a TSV of source<TAB>target, a .po/.mo catalog or a "
                        "folder of them")
    if not source.is_dir() and source.suffix not in (".po", ".mo"):
        raw = [(source.stem, s, t) for s, t in read_pairs_tsv(source)]
    else:
        files = [source] if not source.is_dir() else sorted(p for p in source.rglob("*") if p.suffix in (".po", ".mo"))
        if not files:
            raise DataError(f"{source}: holds no .po or .mo catalogs")
        raw = []
        for f in files:
            pairs, cat = read_catalog_pairs(f)
            if catalog_language(cat, f) in (lang, ""):
                raw += [(f.stem, s, t) for s, t in pairs]
    rows = []
    for domain, s, t in raw:
        kept, _ = clean_pairs([(s, t)])
        rows += [{"lang": lang, "domain": domain, "src": a, "tgt": b} for a, b in kept]
    if len(rows) < 2:
        raise DataError(f"{source}: {len(rows)} usable {lang} pairs; need at least 2")
    return rows


def collect(langs=LANGS, roots=LOCALE_ROOTS, progress=None):
    """{split: [row]} from the installed catalogs, and the report's counts and skips."""
    catalogs = find_catalogs(langs, roots)
    splits = {s: [] for s in SPLITS}
    seen = {s: set() for s in SPLITS}
    domains = {s: Counter() for s in SPLITS}
    skipped, dropped, unreadable = Counter(), Counter(), []
    for i, (lang, domain, path) in enumerate(catalogs):
        if progress is not None:
            progress(i + 1, len(catalogs))
        if is_eval_only(domain):
            skipped["eval-only domain (gimp20*, nano, gawk)"] += 1
            continue
        if domain in SKIPPED:
            skipped["names, not messages (iso_639-3, iso_3166-2)"] += 1
            continue
        try:
            raw, _ = read_catalog_pairs(path)
        except DataError as exc:
            unreadable.append(str(exc))
            continue
        kept, why = clean_pairs(raw)
        dropped.update(why)
        split = split_of(domain)
        for s, t in kept:
            key = (lang, s)
            if key in seen[split]:
                dropped["duplicate source"] += 1
                continue
            seen[split].add(key)
            splits[split].append({"lang": lang, "domain": domain, "src": s, "tgt": t})
            domains[split][f"{lang}/{domain}"] += 1
    for split in ("train", "valid", "test"):
        if not any(r["lang"] == lang for r in splits[split] for lang in langs):
            raise DataError(f"no {split} pairs found under {', '.join(roots)}: are the gettext catalogs installed "
                            "(Debian packages with translations; `make apt`)?")
    counts = {s: dict(Counter(r["lang"] for r in rows)) for s, rows in splits.items()}
    report = {"languages": list(langs), "roots": list(roots), "catalogs": len(catalogs), "counts": counts,
              "domains": {s: dict(sorted(d.items())) for s, d in domains.items()},
              "skipped_catalogs": dict(skipped), "dropped_pairs": dict(dropped), "unreadable": unreadable,
              "eval_only": list(EVAL_ONLY), "valid_domains": list(VALID_DOMAINS),
              "test_domains": list(TEST_DOMAINS)}
    return splits, report


def write_jsonl(path, rows):
    from suite.fileio import write_text

    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path):
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: missing; build the data with `suite translate data build`") from None
    try:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not JSON lines ({exc}); rebuild with `suite translate data build --force`") \
            from None
    if not all(isinstance(r, dict) and {"lang", "src", "tgt"} <= set(r) for r in rows):
        raise DataError(f"{path}: rows need lang, src and tgt; rebuild with `suite translate data build --force`")
    return rows


def train_subwords(rows, vocab_size=4000, seed=0):
    """The joint sentencepiece model (unigram) of the masked sources and targets of ``rows``, as bytes."""
    import io
    import random

    import sentencepiece as spm

    from suite.apps.translate.placeholders import SLOT_CHARS, mask, mask_target

    lines = []
    for r in rows:
        m = mask(r["src"])
        if m.copy:
            continue
        lines.append(m.text)
        t = mask_target(m, r["tgt"])
        if t is not None:
            lines.append(t)
    random.Random(seed).shuffle(lines)
    lines = [ln for ln in lines if ln.strip()]
    if len(lines) < 10:
        raise DataError(f"{len(lines)} usable sentences; need at least 10 to learn subwords")
    model = io.BytesIO()
    spm.set_random_generator_seed(seed)
    # a small user corpus cannot fill a large vocabulary: cap it by what the text holds
    # what sentencepiece must hold whatever the size: every character, 256 byte pieces, our symbols, 4 specials
    needed = len(set("".join(lines))) + 256 + len(SLOT_CHARS) + len(LANG_TAG) + 4 + 16
    vocab_size = max(needed, min(vocab_size, needed + len(set(" ".join(lines).split()))))
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, model_type="unigram", vocab_size=vocab_size,
        character_coverage=1.0, byte_fallback=True, user_defined_symbols=SLOT_CHARS + list(LANG_TAG.values()),
        pad_id=0, unk_id=3, bos_id=1, eos_id=2, num_threads=1, minloglevel=2,
        split_digits=True, hard_vocab_limit=False)
    return model.getvalue()


def build_dataset(out, langs=LANGS, roots=LOCALE_ROOTS, vocab_size=4000, seed=0, progress=None, command=None):
    """Write out/{train,valid,test}.jsonl, spm.model and report.json (staged: nothing half-written); the report."""
    from suite.databuild import write_report
    from suite.fileio import staged_dir, write_bytes

    splits, report = collect(langs, roots, progress)
    with staged_dir(out) as tmp:
        for split, rows in splits.items():
            write_jsonl(tmp / f"{split}.jsonl", rows)
        write_bytes(tmp / "spm.model", train_subwords(splits["train"], vocab_size=vocab_size, seed=seed))
        report |= {"vocab_size": vocab_size, "seed": seed, "command": command}
        write_report(tmp, report, FORMAT)
    return report


def load_split(data_dir, split):
    return read_jsonl(Path(data_dir) / f"{split}.jsonl")
