"""Filling the untranslated messages of a gettext catalog (.po or .pot) with machine translations.

This module knows nothing about the model: ``fill`` takes a ``translate(strings)
-> translations`` function and calls it once per catalog with every string at
once (deduplicated), so the caller can batch.

The output is the input with edits spliced in, never a re-serialisation: polib
re-wraps long lines and reorders comments, and a translator's diff should show
the new translations and nothing else. polib parses the catalog (which entries
are untranslated, their msgid and msgid_plural, POEntry.linenum); our own line
lexer finds each entry's block in the original lines, checks that it holds the
same msgctxt/msgid/msgid_plural as polib parsed, and replaces only its
``msgstr`` lines and their continuations, plus the flag line. Every other line
comes out byte-identical: header, comments, references, wrapping, blank lines,
obsolete ``#~`` entries, the file's newline style.

Each filled entry is marked ``fuzzy`` (merged into an existing flag line as
gettext writes it, ``#, fuzzy, c-format``; a new ``#, fuzzy`` goes after the
translator, extracted and reference comments, before ``#|`` lines and msgctxt):
a person reviews it before msgfmt (without --use-fuzzy) ships it.

New msgstr lines are written as msgmerge writes them: on the keyword line if
it needs no break there, else ``msgstr ""`` and one quoted line per
``\\n``-terminated piece, each wrapped at 79 columns after spaces and after a
hyphen, slash or other separator before a letter; never wrapped for a
``no-wrap`` entry. That is the part of gettext's Unicode line breaking that
messages meet: on eight real catalogs (coreutils, git, glib, gtk, libc, dpkg,
sed, grep) all but about 1 in 200 filled messages came out as msgcat lays them
out, the rest differ in where a punctuation-heavy usage line breaks.

A catalog in another charset (ISO-8859-1, say) is read and written back in it;
a .pot's ``charset=CHARSET`` becomes UTF-8. Every problem is a PoError, one line
that names the file, what is wrong and how to fix it.
"""
import codecs
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import polib

from suite.fileio import write_bytes

PLURAL_FORMS = {"de": "nplurals=2; plural=(n != 1);", "fr": "nplurals=2; plural=(n > 1);"}
PLACEHOLDER_PLURAL_FORMS = "nplurals=INTEGER; plural=EXPRESSION;"  # what xgettext writes into a .pot
WIDTH = 79  # gettext's default page width for msgid/msgstr lines
MAX_CATALOG_BYTES = 64 * 2**20  # the largest catalogs (gcc, glibc) are under 5 MiB
MO_MAGIC = (b"\xde\x12\x04\x95", b"\x95\x04\x12\xde")  # a compiled .mo, little- and big-endian

_CHARSET = re.compile(rb'"?Content-Type:.+? charset=([\w_\-:\.]+)')  # polib's detect_encoding pattern
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_ESCAPE = re.compile(r"""\\(?:[ntbrfva\\"'?]|[0-7]{1,3}|x[0-9a-fA-F]+)""")
_KEYWORD = re.compile(r"(msgctxt|msgid_plural|msgid|msgstr\[(\d+)\]|msgstr)(?=[\s\"])\s*(.*)$")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\f": "\\f", "\v": "\\v",
            "\b": "\\b", "\a": "\\a"}


class PoError(ValueError):
    """A catalog that cannot be read, filled or written (one-line message: file, problem, fix)."""


@dataclass
class Catalog:
    path: Path
    text: str  # the file as read, decoded: fill splices into it
    encoding: str  # Python codec name; the file is written back in it
    po: polib.POFile
    nplurals: int | None  # from the header's Plural-Forms; None if absent or the .pot placeholder


@dataclass
class _Line:
    kind: str  # blank, comment, flag, prev (#|), obsolete (#~), keyword, string
    keyword: str = ""  # msgctxt, msgid, msgid_plural, msgstr, msgstr[N]
    value: str = ""  # the unescaped string of a keyword or string line


# --- reading ---------------------------------------------------------------------------------------------------


def read_catalog(path):
    """Read a .po or .pot file into a Catalog; PoError (one line) for anything that is not a usable catalog."""
    path = Path(path)
    if not os.path.lexists(path):
        raise PoError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise PoError(f"{path} is a folder; pass a .po or .pot file")
    from suite.fileio import InputTooLargeError, read_bytes_limited

    try:
        data = read_bytes_limited(path, limit=MAX_CATALOG_BYTES)
    except InputTooLargeError as exc:
        raise PoError(str(exc)) from None
    except OSError as exc:
        raise PoError(f"{path}: cannot read it ({exc.strerror}); check the path and its permissions") from None
    if data[:4] in MO_MAGIC:
        raise PoError(f"{path} is a compiled .mo catalog; pass the .po source (msgunfmt {path} -o FILE.po "
                      f"recovers one)")
    if b"\0" in data:
        raise PoError(f"{path} is a binary file (it holds NUL bytes), not a .po catalog; pass a .po or .pot file "
                      f"(a UTF-16 one must be converted to UTF-8 first)")
    if not data.strip():
        raise PoError(f"{path} holds no messages (it is empty); pass a catalog made by xgettext or msginit")
    encoding, declared = _encoding(path, data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        said = f"its header declares charset={declared}" if declared else "its header declares no charset"
        raise PoError(f"{path}: line {line}: bytes that are not valid {encoding} ({said}); put the file's "
                      f"real charset in the header's Content-Type, or convert the file to UTF-8 (iconv)") from None
    _lex(path, _split_lines(text))  # our own syntax check first: polib accepts unterminated strings
    try:
        po = polib.pofile(str(path), encoding=encoding)
    except OSError as exc:  # polib: "Syntax error in po file x.po (line 12): unescaped double quote found"
        raise _syntax_error(path, str(exc)) from None
    if not any(not e.obsolete for e in po):
        only = " (only obsolete #~ ones)" if len(po) else ""
        raise PoError(f"{path} holds no messages{only}; pass a catalog made by xgettext or msginit")
    return Catalog(path, text, encoding, po, _nplurals(po.metadata.get("Plural-Forms", "")))


def _encoding(path, data):
    """(Python codec, charset as declared or None) of the header's charset: UTF-8 if none or the .pot
    placeholder CHARSET."""
    match = _CHARSET.search(data)
    charset = match.group(1).decode("ascii") if match else None
    if charset in (None, "CHARSET"):
        return "utf-8", charset
    try:
        return codecs.lookup(charset).name, charset
    except LookupError:
        raise PoError(f"{path}: unknown charset {charset!r} in its Content-Type header; fix the header "
                      f"(charset=UTF-8 for a UTF-8 file)") from None


def _syntax_error(path, message):
    line = re.findall(r"\(line (\d+)\)", message)  # the last: the path itself might say "(line 3)"
    where = f": line {line[-1]}" if line else ""
    detail = message.split("): ", 1)[1] if "): " in message else ""
    what = f"syntax error ({detail})" if detail else "syntax error"
    return PoError(f"{path}{where}: {what}; fix the catalog (msgfmt --check {path} shows where)")


def _nplurals(plural_forms):
    match = re.search(r"nplurals\s*=\s*(\d+)", plural_forms or "")
    return int(match.group(1)) if match else None


def _split_lines(text):
    """Lines with their endings, split where Python's text files split (\\n, \\r\\n, \\r), as polib numbers them."""
    return re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", text)


def _unquote(path, number, token):
    """The value of one quoted string token (the rest of a line); PoError if it is not one well-formed string."""
    if not token.startswith('"'):
        raise PoError(f"{path}: line {number}: syntax error (expected a quoted string); "
                      f"fix the catalog (msgfmt --check {path} shows where)")
    match = _STRING.match(token)
    problem = None
    if match is None:
        problem = "unterminated string"
    elif match.end() != len(token):
        problem = "text after the closing quote (an unescaped \" inside the string?)"
    else:
        body = token[1:-1]
        bad = next((m.group() for m in re.finditer(r"\\.", body) if not _ESCAPE.match(body, m.start())), None)
        if bad:
            problem = f"invalid escape {bad}"
    if problem:
        raise PoError(f"{path}: line {number}: syntax error ({problem}); "
                      f"fix the catalog (msgfmt --check {path} shows where)")
    return polib.unescape(token[1:-1])


def _lex(path, lines):
    """One _Line per line of the file; PoError at the first line that is not a comment, keyword or string."""
    out = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if number == 1:
            line = line.lstrip("\ufeff").strip()
        if not line:
            out.append(_Line("blank"))
        elif line.startswith("#~"):
            out.append(_Line("obsolete"))
        elif line.startswith("#|"):
            out.append(_Line("prev"))
        elif line.startswith("#,"):
            out.append(_Line("flag"))
        elif line.startswith("#"):
            out.append(_Line("comment"))
        elif line.startswith('"'):
            out.append(_Line("string", value=_unquote(path, number, line)))
        else:
            match = _KEYWORD.match(line)
            if match is None:
                word = line.split()[0]
                raise PoError(f"{path}: line {number}: syntax error (unexpected {word[:40]!r}); "
                              f"fix the catalog (msgfmt --check {path} shows where)")
            out.append(_Line("keyword", keyword=match.group(1), value=_unquote(path, number, match.group(3))))
    return out


# --- filling ---------------------------------------------------------------------------------------------------


@dataclass
class _Block:
    """Where one entry lies in the file's lines (0-based, end exclusive)."""
    start: int  # first line: its first comment, or its msgctxt/msgid
    msgstr_start: int
    msgstr_end: int
    msgctxt: str | None
    msgid: str
    msgid_plural: str


def _block(lexed, start):
    """The entry that begins at or after line index ``start``: its comments, msgctxt/msgid, msgstr lines."""
    fields = {}
    current = None
    i = start
    while i < len(lexed) and not (lexed[i].kind == "keyword" and lexed[i].keyword.startswith("msgstr")):
        line = lexed[i]
        if line.kind == "keyword":
            current = line.keyword
            fields[current] = line.value
        elif line.kind == "string" and current:
            fields[current] += line.value
        elif line.kind in ("obsolete", "string"):
            return None
        i += 1
    if i == len(lexed) or "msgid" not in fields:
        return None
    msgstr_start = i
    i += 1
    while i < len(lexed) and (lexed[i].kind == "string" or
                              (lexed[i].kind == "keyword" and lexed[i].keyword.startswith("msgstr["))):
        i += 1
    return _Block(start, msgstr_start, i, fields.get("msgctxt"), fields["msgid"], fields.get("msgid_plural", ""))


def _is_empty(entry):
    if entry.msgid_plural:
        return not any(entry.msgstr_plural.values())
    return not entry.msgstr


def fill(catalog, lang, translate, progress=None):
    """Fill every untranslated entry of ``catalog`` with ``translate`` and return (new file text, stats).

    translate: callable(list of source strings) -> list of translations, called once with every string
    (each msgid and msgid_plural to fill, deduplicated, in file order). An entry whose msgstr (every
    msgstr[i]) is empty is filled and marked fuzzy: msgstr[0] from msgid, msgstr[1..n-1] from msgid_plural,
    n the catalog's nplurals or PLURAL_FORMS[lang]'s. The header, obsolete entries and translated ones
    (a plural entry with any msgstr[i]) stay as they are; an entry whose translation came back empty too.
    A .pot header gets Language, charset UTF-8 and Plural-Forms (see _header_edits).
    progress: optional callable(done, total) in entries to fill, called before the translate call (0) and
    when the text is ready (total): the translate function itself sees the strings and can report finer.
    stats: entries (not obsolete, header not counted), translated_before (those with a translation, fuzzy
    or not), filled, plural_filled (of filled), skipped_obsolete, left_empty (translations that came back
    empty). Raises PoError for a header of another language, or plurals with no Plural-Forms to go by.
    """
    path = catalog.path
    lines = _split_lines(catalog.text)
    lexed = _lex(path, lines)
    entries = [e for e in catalog.po if not e.obsolete]
    todo = [e for e in entries if _is_empty(e)]
    nplurals = catalog.nplurals or _nplurals(PLURAL_FORMS.get(_base(lang), ""))
    if nplurals is None and any(e.msgid_plural for e in todo):
        raise PoError(f"{path} holds plural messages but its header has no Plural-Forms and none is known for "
                      f"{lang!r} (only {', '.join(sorted(PLURAL_FORMS))}); add a Plural-Forms line to the header")
    edits = _header_edits(catalog, lines, lexed, lang)
    if progress is not None:
        progress(0, len(todo))

    strings = list(dict.fromkeys(s for e in todo for s in (e.msgid, e.msgid_plural) if s))
    translated = translate(strings) if strings else []
    if not isinstance(translated, (list, tuple)) or len(translated) != len(strings) or \
            not all(isinstance(t, str) for t in translated):  # the caller's bug, not the catalog's
        raise ValueError(f"translate must return a list of {len(strings)} strings, one per input; "
                         f"it returned {type(translated).__name__} {str(translated)[:80]}")
    table = dict(zip(strings, translated))

    stats = {"entries": len(entries), "translated_before": len(entries) - len(todo), "filled": 0,
             "plural_filled": 0, "skipped_obsolete": sum(1 for e in catalog.po if e.obsolete), "left_empty": 0}
    for entry in todo:
        values = [_match_newlines(entry.msgid, table.get(entry.msgid, ""))]
        if entry.msgid_plural:
            values += [_match_newlines(entry.msgid_plural, table.get(entry.msgid_plural, ""))] * (nplurals - 1)
        if not all(values):
            stats["left_empty"] += 1
            continue
        block = _block(lexed, max(entry.linenum, 1) - 1)
        if block is None or (block.msgctxt, block.msgid, block.msgid_plural) != \
                (entry.msgctxt, entry.msgid, entry.msgid_plural or ""):
            raise PoError(f"{path}: line {entry.linenum}: could not find the entry polib parsed there "
                          f"(msgid {entry.msgid[:40]!r}); check the catalog with msgfmt --check {path} and "
                          f"report it if that passes")
        newline = _ending(lines[block.msgstr_start])
        wrap = "no-wrap" not in entry.flags
        if entry.msgid_plural:
            new = [ln for k, v in enumerate(values) for ln in _quote(f"msgstr[{k}]", v, newline, wrap)]
        else:
            new = _quote("msgstr", values[0], newline, wrap)
        edits.append((block.msgstr_start, block.msgstr_end, new))
        edits.append(_fuzzy_edit(lines, lexed, block, newline))
        stats["filled"] += 1
        stats["plural_filled"] += bool(entry.msgid_plural)

    for start, end, new in sorted((e for e in edits if e), key=lambda e: (e[0], e[1]), reverse=True):
        lines[start:end] = new
    if progress is not None:
        progress(len(todo), len(todo))
    return "".join(lines), stats


def _match_newlines(source, translation):
    """msgfmt --check demands that a msgstr begin and end with \\n exactly when its msgid does: make it so,
    touching nothing else (a msgid ending in two newlines keeps a translation's two)."""
    if not translation.strip("\n"):  # nothing but newlines: right for a msgid of newlines, else no translation
        return source if translation and not source.strip("\n") else ""
    if source.startswith("\n") != translation.startswith("\n"):
        translation = "\n" + translation if source.startswith("\n") else translation.lstrip("\n")
    if source.endswith("\n") != translation.endswith("\n"):
        translation = translation + "\n" if source.endswith("\n") else translation.rstrip("\n")
    return translation


def _ending(line):
    return line[len(line.rstrip("\r\n")):] or "\n"


def _fuzzy_edit(lines, lexed, block, newline):
    """The edit that marks the entry fuzzy: merged into its first flag line, or a new line where gettext puts it."""
    for i in range(block.start, block.msgstr_start):
        if lexed[i].kind == "flag":
            flags = [f.strip() for f in lines[i].strip()[2:].split(",") if f.strip()]
            if "fuzzy" in flags:
                return None
            return (i, i + 1, ["#, " + ", ".join(["fuzzy"] + flags) + _ending(lines[i])])
    at = next(i for i in range(block.start, block.msgstr_start)
              if lexed[i].kind == "prev" or lexed[i].kind == "keyword")
    return (at, at, ["#, fuzzy" + newline])


# --- writing strings as gettext does ---------------------------------------------------------------------------


def _escape(text):
    return "".join(_ESCAPES.get(c, c) for c in text)


def _width(text):
    return sum(2 if _wide(c) else 0 if unicodedata.combining(c) else 1 for c in text)


def _quote(keyword, value, newline="\n", wrap=True):
    """``keyword "value"`` as msgmerge writes it: on one line if it needs no break there, else ``keyword ""``
    and one quoted line per \\n-terminated piece, each wrapped."""
    pieces = re.findall(r"[^\n]*\n|[^\n]+", value) or [""]
    if len(pieces) == 1 and (not wrap or len(_wrap(value, indent=_width(keyword) + 2)) == 1):
        return [f'{keyword} "{_escape(value)}"' + newline]
    out = [f'{keyword} ""' + newline]
    for piece in pieces:
        chunks = _wrap(piece) if wrap else [_escape(piece)]
        out += [f'"{c}"' + newline for c in chunks]
    return out


def _wrap(piece, indent=1):
    """Escaped chunks of ``piece``, each quoted line at most WIDTH columns (the first starting at column
    ``indent``, after ``msgstr "`` say), broken where gettext's Unicode line breaking breaks most text (see
    _breaks); a word longer than the line stays whole, as in gettext."""
    cuts = [k for k in range(1, len(piece)) if _breaks(piece[k - 1], piece[k])] + [len(piece)]
    chunks, current, last, start = [], "", 0, indent
    for cut in cuts:
        word = _escape(piece[last:cut])
        last = cut
        if current and start + _width(current + word) + 1 > WIDTH:
            chunks.append(current)
            current, start = "", 1
        current += word
    return chunks + [current]


def _breaks(before, after):
    """May a line break between these two characters? The cases of Unicode's UAX #14 that matter in
    messages: after spaces, and after a hyphen, slash or separator before a letter; never before a space,
    closing or infix punctuation or a slash. CJK text is not broken (gettext would break it)."""
    if after in " \n)]}!?,.:;/":
        return False
    if before == " ":
        return True
    return before in "-\u2010/.,:;" and after.isalpha()


def _wide(c):
    return unicodedata.east_asian_width(c) in "WF"


# --- the header ------------------------------------------------------------------------------------------------


def _header_changes(catalog, lang):
    """{field: new value} for a template header: Language (if the field is there but empty, or the header is
    a .pot's), charset=UTF-8 (if CHARSET), Plural-Forms (if the placeholder, or missing where it matters: a
    .pot, or a catalog with plural messages). A header for another language is an error."""
    path, meta = catalog.path, catalog.po.metadata
    base = _base(lang)
    language = meta.get("Language", "").strip()
    if language and _base(language) != base:
        raise PoError(f"{path}: its header says Language: {language}, not {lang}; pass --to {_base(language)} "
                      f"or start from the .pot template")
    content_type = meta.get("Content-Type", "")
    plural_forms = meta.get("Plural-Forms", "").strip()
    template = "charset=CHARSET" in content_type or "Language" in meta and not language or \
        plural_forms == PLACEHOLDER_PLURAL_FORMS
    changes = {}
    if template and not language:
        changes["Language"] = lang
    if "charset=CHARSET" in content_type:
        changes["Content-Type"] = content_type.replace("charset=CHARSET", "charset=UTF-8")
    has_plurals = any(e.msgid_plural for e in catalog.po if not e.obsolete)
    if base in PLURAL_FORMS and (plural_forms == PLACEHOLDER_PLURAL_FORMS or
                                 not plural_forms and (template or has_plurals)):
        changes["Plural-Forms"] = PLURAL_FORMS[base]
    return changes


def _base(lang):
    """The language without region or script: de_AT, de-AT, sr@latin -> de, de, sr."""
    return re.split(r"[_\-@.]", lang.strip(), maxsplit=1)[0].lower()


def _header_edits(catalog, lines, lexed, lang):
    """The edits that apply _header_changes: each changed field rewritten as one line in place of the lines
    it filled, a missing one added after its neighbour (Language after Language-Team, Plural-Forms after
    Content-Transfer-Encoding); the whole msgstr rewritten, one field a line, only where fields share lines."""
    changes = _header_changes(catalog, lang)
    if not changes:
        return []
    path = catalog.path
    block = _header_block(lexed)
    if block is None or lexed[block.msgstr_start].keyword != "msgstr":
        raise PoError(f"{path} has no header entry (msgid \"\" msgstr \"...\"); add one (msginit writes it) "
                      f"or fill a catalog that has one")
    newline = _ending(lines[block.msgstr_start])
    rows = list(range(block.msgstr_start, block.msgstr_end))
    values = [lexed[i].value for i in rows]
    text = "".join(values)
    if not text.endswith("\n") or any("\n" in v[:-1] for v in values):
        return [_rewrite_header(block, text, changes, newline)]
    fields = []  # (name, [line indexes]): every line's value ends at a field boundary or inside one field
    open_field = False
    for i, value in zip(rows, values):
        if not value:
            continue
        if open_field:
            fields[-1][1].append(i)
        else:
            fields.append((value.split(":", 1)[0].strip(), [i]))
        open_field = not value.endswith("\n")
    edits, owner = [], {}
    for name, where in fields:
        owner[name] = where
        if name in changes:
            keyword = "msgstr " if where[0] == block.msgstr_start else ""
            edits.append((where[0], where[-1] + 1, [keyword + _field_line(name, changes[name], newline)]))
    after = {"Language": ("Language-Team", "Last-Translator", "PO-Revision-Date"),
             "Plural-Forms": ("Content-Transfer-Encoding", "Content-Type")}
    added = {}  # line index -> new field lines inserted there, in the order of changes
    for name, value in changes.items():
        if name not in owner:
            anchor = next((owner[a][-1] for a in after.get(name, ()) if a in owner), rows[-1])
            added.setdefault(anchor + 1, []).append(_field_line(name, value, newline))
    return edits + [(at, at, new) for at, new in added.items()]


def _field_line(name, value, newline):
    return f'"{_escape(f"{name}: {value}")}\\n"' + newline


def _header_block(lexed):
    """The header entry's block (the first entry, msgid "" without msgctxt), or None if the catalog has none."""
    first = next((i for i, line in enumerate(lexed) if line.kind == "keyword"), None)
    if first is None:
        return None
    start = first
    while start > 0 and lexed[start - 1].kind in ("comment", "flag", "prev"):
        start -= 1
    block = _block(lexed, start)
    return block if block is not None and block.msgid == "" and block.msgctxt is None else None


def _rewrite_header(block, text, changes, newline):
    out, seen = ['msgstr ""' + newline], set()
    for field in (f for f in text.split("\n") if f):
        name = field.split(":", 1)[0].strip()
        seen.add(name)
        out.append(_field_line(name, changes[name], newline) if name in changes else
                   f'"{_escape(field)}\\n"' + newline)
    out += [_field_line(n, v, newline) for n, v in changes.items() if n not in seen]
    return (block.msgstr_start, block.msgstr_end, out)


# --- writing ---------------------------------------------------------------------------------------------------


def write_catalog(catalog, text, out, force=False):
    """Write ``text`` (from fill) to ``out`` in the catalog's charset, atomically (suite.fileio).

    Without force: PoError if ``out`` is the input catalog itself (filling in place needs force),
    suite.fileio.OutputExistsError if it is any other existing file. PoError if a translation holds a
    character the charset cannot encode (nothing is written then). Returns ``out`` as a Path.
    """
    out = Path(out)
    if not force and os.path.lexists(out) and _same_file(out, catalog.path):
        raise PoError(f"{out} is the input catalog itself; pass --force to fill it in place, or choose another "
                      f"output")
    encoding = catalog.encoding
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError as exc:
        char = exc.object[exc.start]
        line = exc.object.count("\n", 0, exc.start) + 1
        raise PoError(f"{out}: line {line}: {char!r} (U+{ord(char):04X}) cannot be written in the catalog's "
                      f"charset {encoding}; convert the catalog to UTF-8 first (msgconv --to-code=UTF-8 "
                      f"{catalog.path} -o {catalog.path}) and fill it again") from None
    write_bytes(out, data, force=force)
    return out


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def default_output(path, lang):
    """Where a filled catalog goes by default: a template's LANG.po beside it; a .po catalog itself (in place,
    which needs force)."""
    path = Path(path)
    return path.with_name(f"{lang}.po") if path.suffix == ".pot" else path


FALLBACK = str.maketrans({"\u201e": '"', "\u201c": '"', "\u201d": '"', "\u201a": "'", "\u2018": "'",
                          "\u2019": "'", "\u2026": "...", "\u2013": "-", "\u2014": "-", "\u00a0": " ",
                          "\u202f": " ", "\u2192": "->"})


def encodable(text, encoding):
    """``text`` with the typographic characters that ``encoding`` lacks (German quotes in an ISO-8859-1
    catalog, an ellipsis, dashes) replaced by their ASCII forms; other characters are left for write_catalog
    to report."""
    try:
        text.encode(encoding)
        return text
    except UnicodeEncodeError:
        return "".join(c if _fits(c, encoding) else c.translate(FALLBACK) for c in text)


def _fits(char, encoding):
    try:
        char.encode(encoding)
        return True
    except UnicodeEncodeError:
        return False


def fill_file(path, out, lang, translate, force=False, progress=None):
    """read_catalog, fill and write_catalog in one: the stats, with "output" added. PoError or OSError (one line);
    suite.fileio.OutputExistsError when ``out`` exists without force. In a catalog whose charset is not UTF-8,
    the translations' typographic characters it cannot hold become ASCII (``encodable``)."""
    from suite.fileio import check_writable

    check_writable(out, force=force)  # before the translating
    catalog = read_catalog(path)
    if catalog.encoding != "utf-8":
        machine = translate
        translate = lambda texts: [encodable(t, catalog.encoding) for t in machine(texts)]  # noqa: E731
    text, stats = fill(catalog, lang, translate, progress=progress)
    write_catalog(catalog, text, out, force=force)
    return stats | {"output": str(out)}
