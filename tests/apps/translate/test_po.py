"""Filling gettext catalogs: only the empty msgstrs change, byte for byte; msgfmt and pofilter accept the result."""
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

from suite.apps.translate.po import PLURAL_FORMS, PoError, _quote, fill, read_catalog, write_catalog
from suite.fileio import OutputExistsError

MSGFMT = shutil.which("msgfmt")
MSGCAT = shutil.which("msgcat")
POFILTER = Path(sys.executable).parent / "pofilter"
needs_msgfmt = pytest.mark.skipif(MSGFMT is None, reason="msgfmt (GNU gettext) is not installed")


def fake(strings):
    """A translator that keeps printf codes, tags and newlines: what a good model does."""
    return ["«" + s + "»" for s in strings]


POT = r'''# SOME DESCRIPTIVE TITLE.
# Copyright (C) YEAR THE PACKAGE'S COPYRIGHT HOLDER
# This file is distributed under the same license as the PACKAGE package.
# FIRST AUTHOR <EMAIL@ADDRESS>, YEAR.
#
#, fuzzy
msgid ""
msgstr ""
"Project-Id-Version: demo 1.0\n"
"Report-Msgid-Bugs-To: \n"
"POT-Creation-Date: 2024-01-01 12:00+0000\n"
"PO-Revision-Date: YEAR-MO-DA HO:MI+ZONE\n"
"Last-Translator: FULL NAME <EMAIL@ADDRESS>\n"
"Language-Team: LANGUAGE <LL@li.org>\n"
"Language: \n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=CHARSET\n"
"Content-Transfer-Encoding: 8bit\n"
"Plural-Forms: nplurals=INTEGER; plural=EXPRESSION;\n"

# A translator's note.
#. TRANSLATORS: %s is a user name
#: src/main.c:10 src/main.c:12
#, c-format
msgid "Hello, %s!"
msgstr ""

#: src/main.c:20
#, c-format
msgid "%d file was copied to %s"
msgid_plural "%d files were copied to %s"
msgstr[0] ""
msgstr[1] ""

#: src/menu.c:5
msgctxt "menu"
msgid "Open"
msgstr ""

#: src/dialog.c:9
msgctxt "verb"
msgid "Open"
msgstr ""

#: src/main.c:30
msgid ""
"This is a long message that xgettext wrapped over several lines because it "
"is longer than the page width of seventy-nine columns."
msgstr ""

#: src/main.c:40
msgid ""
"Usage: demo [OPTION]... FILE\n"
"  -h, --help  show this help\n"
msgstr ""

#: src/main.c:50
#, c-format
#| msgid "Moved %1$s"
msgid "Moved %1$s to %2$s"
msgstr ""

#: src/main.c:60
#| msgid "Press <b>OK</b>"
msgid "Press <b>OK</b> to go on"
msgstr ""

#~ msgid "Gone"
#~ msgstr ""
'''

PO_DE = r'''# German translation of demo.
# Anna <anna@example.org>, 2024.
#
msgid ""
msgstr ""
"Project-Id-Version: demo 1.0\n"
"PO-Revision-Date: 2024-02-01 10:00+0100\n"
"Last-Translator: Anna <anna@example.org>\n"
"Language-Team: German <de@li.org>\n"
"Language: de\n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Content-Transfer-Encoding: 8bit\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\n"

#: src/main.c:10
#, c-format
msgid "Hello, %s!"
msgstr "Hallo, %s!"

#: src/main.c:11
#, c-format
msgid "Goodbye, %s!"
msgstr ""

#: src/main.c:20
msgid "one apple"
msgid_plural "some apples"
msgstr[0] "ein Apfel"
msgstr[1] ""

#: src/main.c:21
#, c-format
msgid "%d folder"
msgid_plural "%d folders"
msgstr[0] ""
msgstr[1] ""

#: src/main.c:30
#, fuzzy
#| msgid "Save"
msgid "Save as"
msgstr ""

#: src/main.c:31
#, fuzzy
msgid "Quit"
msgstr "Beenden"

#: src/main.c:40
msgid ""
"A translated message that is long enough to be wrapped by msgmerge over two "
"lines."
msgstr ""
"Eine übersetzte Nachricht, die lang genug ist, um von msgmerge auf zwei "
"Zeilen umbrochen zu werden."

#: src/main.c:50
msgid "Unwrapped untranslated message that is long enough that its translation must be wrapped."
msgstr ""

#~ msgid "Old"
#~ msgstr "Alt"

#~ msgid "Older"
#~ msgstr ""
'''

PO_PL = r'''msgid ""
msgstr ""
"Language: pl\n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Content-Transfer-Encoding: 8bit\n"
"Plural-Forms: nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);\n"

#, c-format
msgid "%d file"
msgid_plural "%d files"
msgstr[0] ""
msgstr[1] ""

msgid "Cancel"
msgstr ""
'''

PO_LATIN1 = '''msgid ""
msgstr ""
"Language: de\\n"
"MIME-Version: 1.0\\n"
"Content-Type: text/plain; charset=ISO-8859-1\\n"
"Content-Transfer-Encoding: 8bit\\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\\n"

# Übersetzt von Jürgen.
msgid "Size"
msgstr "Größe"

msgid "Close"
msgstr ""

msgid "Delete"
msgstr "Löschen"
'''


def _write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _fill_file(tmp_path, text, lang, name="in.po", translate=fake, encoding="utf-8"):
    """Fill a catalog written from ``text``; returns (input path, output path, output text, stats)."""
    src = _write(tmp_path, name, text, encoding)
    catalog = read_catalog(src)
    out_text, stats = fill(catalog, lang, translate)
    out = write_catalog(catalog, out_text, tmp_path / f"out.{lang}.po")
    return src, out, out_text, stats


def _blocks(text):
    return text.split("\n\n")


def _without_msgstr_and_flags(block):
    """An entry block without its flag lines and its msgstr lines (the msgstr is the entry's last part)."""
    lines = [ln for ln in block.split("\n") if not ln.startswith("#,")]
    first = next((i for i, ln in enumerate(lines) if ln.startswith("msgstr")), len(lines))
    return lines[:first]


def _assert_only_empty_entries_changed(before, after, header_fields=()):
    """Block by block: unchanged, or an untranslated entry whose lines other than msgstr and flags are identical
    and that gained a fuzzy flag and a translation. The header may differ only in ``header_fields`` lines."""
    old, new = _blocks(before), _blocks(after)
    assert len(old) == len(new)
    filled = []
    for k, (a, b) in enumerate(zip(old, new)):
        if a == b:
            continue
        if k == 0:
            changed = [(x, y) for x, y in zip(a.split("\n"), b.split("\n")) if x != y]
            assert len(a.split("\n")) == len(b.split("\n"))
            assert all(x.split(":")[0] == y.split(":")[0] and x.strip('"').split(":")[0] in header_fields
                       for x, y in changed), changed
            continue
        assert _without_msgstr_and_flags(a) == _without_msgstr_and_flags(b)
        flag_lines = [ln for ln in b.split("\n") if ln.startswith("#,")]
        assert len(flag_lines) == 1 and "fuzzy" in flag_lines[0].split(", ")
        entry = polib.pofile(b)[0] if not b.startswith("#~") else None
        assert entry is not None and (entry.msgstr or all(entry.msgstr_plural.values()))
        filled.append(entry)
    return filled


def _msgfmt_ok(path):
    for options in (["--check"], ["--check", "--use-fuzzy"]):
        result = subprocess.run([MSGFMT, *options, "-o", "/dev/null", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def _pofilter_ok(path, tmp_path, lang, left_alone=()):
    """pofilter's checks that matter for a machine translation, run on fuzzy entries too (--fuzzy): no failure
    but on the msgids ``left_alone`` (entries of the input that fill must not touch)."""
    if not POFILTER.exists():
        pytest.skip(f"pofilter (translate-toolkit) is not installed next to {sys.executable}")
    report = tmp_path / "pofilter.po"
    result = subprocess.run([str(POFILTER), "--fuzzy", "--progress=none", f"--language={lang}", "-t", "printf",
                             "-t", "variables", "-t", "xmltags", "-t", "nplurals", "-i", str(path), "-o",
                             str(report)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    failures = [e for e in polib.pofile(str(report)) if "(pofilter)" in e.tcomment] if report.exists() else []
    assert {e.msgid for e in failures} <= set(left_alone), [str(e) for e in failures]


# --- filling ---------------------------------------------------------------------------------------------------


@needs_msgfmt
def test_pot_gets_a_header_for_the_language_and_every_message_filled_fuzzy(tmp_path):
    src, out, text, stats = _fill_file(tmp_path, POT, "de", name="demo.pot")
    assert stats == {"entries": 8, "translated_before": 0, "filled": 8, "plural_filled": 1,
                     "skipped_obsolete": 1, "left_empty": 0}
    filled = _assert_only_empty_entries_changed(POT, text, ("Language", "Content-Type", "Plural-Forms"))
    assert len(filled) == 8
    assert '"Language: de\\n"' in text and '"Content-Type: text/plain; charset=UTF-8\\n"' in text
    assert f'"Plural-Forms: {PLURAL_FORMS["de"]}\\n"' in text
    assert text.startswith(POT.split('msgid ""')[0] + 'msgid ""')  # the header's comments and fuzzy flag stay

    # gettext's layout: fuzzy merged into the flag line; a new flag line after the references, before #| and msgctxt
    assert '#: src/main.c:10 src/main.c:12\n#, fuzzy, c-format\nmsgid "Hello, %s!"\nmsgstr "«Hello, %s!»"\n' in text
    assert '#, fuzzy, c-format\n#| msgid "Moved %1$s"\nmsgid "Moved %1$s to %2$s"\n' in text
    assert '#: src/main.c:60\n#, fuzzy\n#| msgid "Press <b>OK</b>"\n' in text
    assert '#: src/menu.c:5\n#, fuzzy\nmsgctxt "menu"\nmsgid "Open"\nmsgstr "«Open»"\n' in text
    assert 'msgctxt "verb"\nmsgid "Open"\nmsgstr "«Open»"\n' in text
    assert 'msgstr[0] "«%d file was copied to %s»"\nmsgstr[1] "«%d files were copied to %s»"\n' in text
    # a \n inside: msgstr "" and one line per piece; a long one wrapped at 79 columns
    assert 'msgstr ""\n"«Usage: demo [OPTION]... FILE\\n"\n"  -h, --help  show this help\\n"\n"»\\n"\n' in text
    assert 'msgstr ""\n"«This is a long message that xgettext wrapped over several lines because it "\n' in text
    assert all(len(line) <= 79 for line in text.splitlines())
    assert text.endswith("#~ msgid \"Gone\"\n#~ msgstr \"\"\n")

    assert out.read_bytes() == text.encode("utf-8")
    assert src.read_text(encoding="utf-8") == POT  # the input is never touched
    _msgfmt_ok(out)
    _pofilter_ok(out, tmp_path, "de")


@needs_msgfmt
def test_french_plural_forms_and_translations_from_the_pot(tmp_path):
    _, out, text, stats = _fill_file(tmp_path, POT, "fr", name="demo.pot")
    assert f'"Plural-Forms: {PLURAL_FORMS["fr"]}\\n"' in text and '"Language: fr\\n"' in text
    entry = next(e for e in polib.pofile(text) if e.msgid_plural)
    assert entry.msgstr_plural == {0: "«%d file was copied to %s»", 1: "«%d files were copied to %s»"}
    assert "fuzzy" in entry.flags and "c-format" in entry.flags
    _msgfmt_ok(out)
    _pofilter_ok(out, tmp_path, "fr")


@needs_msgfmt
def test_translated_entries_header_and_obsolete_entries_stay_byte_identical(tmp_path):
    _, out, text, stats = _fill_file(tmp_path, PO_DE, "de")
    assert stats == {"entries": 8, "translated_before": 4, "filled": 4, "plural_filled": 1,
                     "skipped_obsolete": 2, "left_empty": 0}
    filled = _assert_only_empty_entries_changed(PO_DE, text)
    assert [e.msgid for e in filled] == ["Goodbye, %s!", "%d folder", "Save as",
                                         "Unwrapped untranslated message that is long enough that its translation "
                                         "must be wrapped."]
    assert _blocks(text)[0] == _blocks(PO_DE)[0]  # a complete header is left exactly as it was
    assert 'msgstr[0] "ein Apfel"\nmsgstr[1] ""\n' in text  # half a plural counts as translated: left
    assert '#, fuzzy\n#| msgid "Save"\nmsgid "Save as"\nmsgstr "«Save as»"\n' in text  # already fuzzy: one flag
    assert 'msgstr ""\n"«Unwrapped untranslated message that is long enough that its translation "\n' \
           '"must be wrapped.»"\n' in text
    _msgfmt_ok(out)
    _pofilter_ok(out, tmp_path, "de", left_alone=["one apple"])  # half translated in the input


@needs_msgfmt
def test_the_catalogs_own_plural_forms_win(tmp_path):
    """nplurals=3 in the header: three msgstr[i], for a language PLURAL_FORMS does not know."""
    _, out, text, stats = _fill_file(tmp_path, PO_PL, "pl")
    assert stats["plural_filled"] == 1
    assert 'msgstr[0] "«%d file»"\nmsgstr[1] "«%d files»"\nmsgstr[2] "«%d files»"\n' in text
    _assert_only_empty_entries_changed(PO_PL, text)
    _msgfmt_ok(out)
    _pofilter_ok(out, tmp_path, "pl")


@needs_msgfmt
def test_latin1_catalog_is_written_back_in_latin1(tmp_path):
    src, out, text, stats = _fill_file(tmp_path, PO_LATIN1, "de", translate=lambda xs: [x + " ä" for x in xs],
                                       encoding="iso-8859-1")
    assert stats["filled"] == 1
    data = out.read_bytes()
    assert b'msgstr "Close \xe4"' in data and b'msgstr "Gr\xf6\xdfe"' in data and b"# \xdcbersetzt" in data
    before = src.read_bytes()
    assert data.replace(b'#, fuzzy\nmsgid "Close"\nmsgstr "Close \xe4"', b'msgid "Close"\nmsgstr ""') == before
    _msgfmt_ok(out)


def test_translate_is_called_once_with_each_string_once(tmp_path):
    calls = []

    def translate(strings):
        calls.append(list(strings))
        return fake(strings)

    catalog = read_catalog(_write(tmp_path, "demo.pot", POT))
    fill(catalog, "de", translate)
    assert len(calls) == 1
    assert calls[0].count("Open") == 1  # two contexts, one string
    assert calls[0][:3] == ["Hello, %s!", "%d file was copied to %s", "%d files were copied to %s"]


def test_progress_says_how_many_entries_are_filled(tmp_path):
    seen = []
    catalog = read_catalog(_write(tmp_path, "x.po", PO_DE))
    fill(catalog, "de", fake, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 4), (4, 4)]


def test_a_fully_translated_catalog_comes_back_unchanged_without_a_translate_call(tmp_path):
    done = PO_LATIN1.replace('msgid "Close"\nmsgstr ""', 'msgid "Close"\nmsgstr "Schließen"')
    catalog = read_catalog(_write(tmp_path, "x.po", done, "iso-8859-1"))
    text, stats = fill(catalog, "de", lambda xs: pytest.fail("nothing to translate"))
    assert text == done and stats["filled"] == 0 and stats["translated_before"] == 3


@needs_msgfmt
def test_newlines_at_the_edges_follow_the_msgid(tmp_path):
    """msgfmt --check rejects a msgstr that does not begin and end with \\n like its msgid: a model that
    drops or adds one is corrected; two trailing newlines stay two."""
    po = ('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
          'msgid "Line\\n"\nmsgstr ""\n\nmsgid "Two\\n\\n"\nmsgstr ""\n\nmsgid "\\nLead"\nmsgstr ""\n\n'
          'msgid "Plain"\nmsgstr ""\n')
    answers = {"Line\n": "Zeile", "Two\n\n": "Zwei\n\n", "\nLead": "Vorne", "Plain": "Schlicht\n"}
    _, out, text, _ = _fill_file(tmp_path, po, "de", translate=lambda xs: [answers[x] for x in xs])
    assert {e.msgid: e.msgstr for e in polib.pofile(text)} == {"Line\n": "Zeile\n", "Two\n\n": "Zwei\n\n",
                                                                "\nLead": "\nVorne", "Plain": "Schlicht"}
    _msgfmt_ok(out)


def test_an_empty_translation_leaves_the_entry_untranslated(tmp_path):
    catalog = read_catalog(_write(tmp_path, "x.po", PO_PL))
    text, stats = fill(catalog, "pl", lambda xs: ["" if x == "Cancel" else "x" for x in xs])
    assert stats["filled"] == 1 and stats["left_empty"] == 1
    assert 'msgid "Cancel"\nmsgstr ""\n' in text


def test_a_translate_that_returns_the_wrong_count_is_the_callers_error(tmp_path):
    catalog = read_catalog(_write(tmp_path, "x.po", PO_PL))
    with pytest.raises(ValueError, match="3 strings"):
        fill(catalog, "pl", lambda xs: xs[:1])


def test_crlf_file_keeps_its_line_endings(tmp_path):
    catalog = read_catalog(_write(tmp_path, "x.po", PO_PL.replace("\n", "\r\n")))
    text, stats = fill(catalog, "pl", fake)
    assert stats["filled"] == 2
    assert "\n" not in text.replace("\r\n", "")
    assert '#, fuzzy\r\nmsgid "Cancel"\r\nmsgstr "«Cancel»"\r\n' in text


@needs_msgfmt
def test_catalog_without_header_and_header_with_fields_on_one_line(tmp_path):
    bare = 'msgid "First"\nmsgstr ""\n\nmsgid "Second"\nmsgstr ""\n'
    text, stats = fill(read_catalog(_write(tmp_path, "bare.po", bare)), "de", fake)
    assert text == '#, fuzzy\nmsgid "First"\nmsgstr "«First»"\n\n#, fuzzy\nmsgid "Second"\nmsgstr "«Second»"\n'

    squashed = 'msgid ""\nmsgstr "Language: \\nContent-Type: text/plain; charset=CHARSET\\n"\n\nmsgid "A"\nmsgstr ""\n'
    _, out, text, _ = _fill_file(tmp_path, squashed, "fr", name="squashed.pot")
    assert text.startswith('msgid ""\nmsgstr ""\n"Language: fr\\n"\n"Content-Type: text/plain; charset=UTF-8\\n"\n'
                           f'"Plural-Forms: {PLURAL_FORMS["fr"]}\\n"\n\n')
    _msgfmt_ok(out)


@pytest.mark.skipif(MSGCAT is None, reason="msgcat (GNU gettext) is not installed")
def test_new_msgstrs_are_wrapped_as_msgcat_wraps_them(tmp_path):
    strings = ["short", "a\nb\nc", "ends with a newline\n", "x" * 71, "x" * 72,
               "This is a fairly long message that will need to be wrapped because it is longer than seventy nine "
               "columns, with a \"quote\", a\ttab and a back\\slash in it, and e-mail, path/to/file and foo.bar.",
               "Übersetzung mit Umlauten, die länger ist als eine Zeile von neunundsiebzig Zeichen, ganz gewiß."]
    src = 'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n' + "".join(
        f'msgctxt "{k}"\nmsgid "{k}"\n' + "".join(_quote("msgstr", s)) + "\n" for k, s in enumerate(strings))
    path = _write(tmp_path, "wrap.po", src)
    result = subprocess.run([MSGCAT, str(path)], capture_output=True, text=True, check=True)
    assert result.stdout == src[:-1]


# --- bad inputs ------------------------------------------------------------------------------------------------


def _bad(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


HEADER = b'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'


@pytest.mark.parametrize("name, data, expected", [
    ("binary.po", b"\x00\x01binary", "is a binary file"),
    ("empty.po", b"", "holds no messages (it is empty)"),
    ("blank.po", b"\n\n  \n", "holds no messages (it is empty)"),
    ("header.po", HEADER, "holds no messages;"),
    ("obsolete.po", HEADER + b'#~ msgid "a"\n#~ msgstr "b"\n', "holds no messages (only obsolete"),
    ("quote.po", HEADER + b'msgid "a\nmsgstr ""\n', "line 5: syntax error (unterminated string)"),
    ("twice.po", HEADER + b'msgid "a"\nmsgid "b"\nmsgstr ""\n', "line 6: syntax error"),
    ("junk.po", HEADER + b'msgid "a"\nmsgstr ""\nwhat is this\n', "line 7: syntax error (unexpected 'what')"),
    ("escape.po", HEADER + b'msgid "a\\q"\nmsgstr ""\n', "line 5: syntax error (invalid escape \\q)"),
    ("utf8.po", HEADER + b'msgid "a"\nmsgstr ""\n\nmsgid "b\xff"\nmsgstr ""\n', "line 8: bytes that are not valid"),
    ("charset.po", HEADER.replace(b"UTF-8", b"KLINGON") + b'msgid "a"\nmsgstr ""\n', "unknown charset 'KLINGON'"),
])
def test_bad_catalogs_are_one_line_errors_that_name_the_file(tmp_path, name, data, expected):
    path = _bad(tmp_path, name, data)
    with pytest.raises(PoError) as caught:
        read_catalog(path)
    message = str(caught.value)
    assert expected in message and message.startswith(str(path)) and "\n" not in message


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(PoError, match="no such file"):
        read_catalog(tmp_path / "nope.po")
    with pytest.raises(PoError, match="is a folder"):
        read_catalog(tmp_path)


@needs_msgfmt
def test_compiled_mo_is_refused_with_the_fix(tmp_path):
    po = _write(tmp_path, "x.po", PO_DE)
    mo = tmp_path / "x.mo"
    subprocess.run([MSGFMT, "-o", str(mo), str(po)], check=True)
    with pytest.raises(PoError, match=r"is a compiled \.mo catalog; pass the \.po source"):
        read_catalog(mo)


def test_a_catalog_for_another_language_or_without_known_plural_forms(tmp_path):
    catalog = read_catalog(_write(tmp_path, "x.po", PO_DE))
    with pytest.raises(PoError, match="Language: de, not fr; pass --to de"):
        fill(catalog, "fr", fake)
    no_plural_forms = POT.replace('"Plural-Forms: nplurals=INTEGER; plural=EXPRESSION;\\n"\n', "")
    catalog = read_catalog(_write(tmp_path, "y.pot", no_plural_forms))
    with pytest.raises(PoError, match="no Plural-Forms and none is known for 'es'"):
        fill(catalog, "es", fake)


# --- writing ---------------------------------------------------------------------------------------------------


def test_existing_output_needs_force_and_is_left_untouched(tmp_path):
    catalog = read_catalog(_write(tmp_path, "x.po", PO_DE))
    text, _ = fill(catalog, "de", fake)
    out = _write(tmp_path, "out.po", "keep me")
    with pytest.raises(OutputExistsError):
        write_catalog(catalog, text, out)
    assert out.read_text() == "keep me"
    write_catalog(catalog, text, out, force=True)
    assert out.read_text(encoding="utf-8") == text


def test_filling_in_place_needs_force(tmp_path):
    path = _write(tmp_path, "x.po", PO_DE)
    catalog = read_catalog(path)
    text, _ = fill(catalog, "de", fake)
    with pytest.raises(PoError, match="is the input catalog itself; pass --force"):
        write_catalog(catalog, text, path)
    assert path.read_text(encoding="utf-8") == PO_DE
    write_catalog(catalog, text, path, force=True)
    assert path.read_text(encoding="utf-8") == text
    assert [p.name for p in tmp_path.iterdir()] == ["x.po"]  # no temporary file left


def test_a_character_the_charset_cannot_hold_names_it_and_msgconv(tmp_path):
    catalog = read_catalog(_write(tmp_path, "x.po", PO_LATIN1, "iso-8859-1"))
    text, _ = fill(catalog, "de", lambda xs: ["Schließen €" for _ in xs])
    with pytest.raises(PoError, match=r"U\+20AC.*iso8859-1.*msgconv --to-code=UTF-8") as caught:
        write_catalog(catalog, text, tmp_path / "out.po")
    assert "out.po: line 15: " in str(caught.value)  # the msgstr of "Close", after its new fuzzy line
    assert not (tmp_path / "out.po").exists()


def test_the_pofilter_check_does_catch_a_broken_translation(tmp_path):
    """Guard against a vacuous check: a translator that loses printf codes and tags must fail it."""
    _, out, _, _ = _fill_file(tmp_path, POT, "de", name="demo.pot",
                              translate=lambda xs: [x.replace("%s", "").replace("<b>", "") for x in xs])
    with pytest.raises(AssertionError, match="Hello"):
        _pofilter_ok(out, tmp_path, "de")


def test_fill_file_makes_typographic_quotes_fit_a_latin1_catalog(tmp_path):
    from suite.apps.translate.po import fill_file

    src = tmp_path / "de.po"
    src.write_bytes(('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=ISO-8859-1\\n"\n"Language: de\\n"\n\n'
                     'msgid "Open \\"%s\\""\nmsgstr ""\n\nmsgid "Size"\nmsgstr "Gr\xf6\xdfe"\n').encode("latin-1"))
    stats = fill_file(src, tmp_path / "out.po", "de", lambda xs: ["\u201e%s\u201c \u00f6ffnen\u2026" for _ in xs])
    assert stats["filled"] == 1
    data = (tmp_path / "out.po").read_bytes()
    assert 'msgstr "\\"%s\\" \xf6ffnen..."'.encode("latin-1") in data and "Gr\xf6\xdfe".encode("latin-1") in data
