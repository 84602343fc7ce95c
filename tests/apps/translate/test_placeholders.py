import pytest

from suite.apps.translate.placeholders import (SLOT_RE, find_accelerator, mask, mask_target, place_accelerator,
                                               placeholders_of, preserved, slot, unmask)

MESSAGES = [
    "Cannot open file %s: %s\n",
    "%1$s of %2$s copied",
    "100%% done",
    "Read %<PRIu64> bytes in %.2f s",
    "Hello, %(name)s! You have %(count)d new messages.",
    "Delete {count} files from {folder}?",
    "Value {0:>8} is out of range ({1})",
    "Set ${HOME} or $XDG_CONFIG_HOME first",
    "<b>Warning:</b> the file <i>%s</i> is read-only",
    "Tom &amp; Jerry &#169; &lt;tag&gt;",
    "See https://example.org/docs/page.html for help.",
    "Write to bugs@example.org.",
    "Usage: %s [OPTION]... FILE\n",
    "  -v, --verbose\tprint more\n",
    "Save _As…",
    "E_xit",
    "&Open recent",
    "Name:",
    "  indented text  ",
    "%-10.3lu items, %*d columns, %5.1f%%",
    "%s",
    "",
]


@pytest.mark.parametrize("message", MESSAGES)
def test_mask_then_unmask_of_the_same_text_is_the_message(message):
    m = mask(message)
    assert unmask(m.text, m) == message


@pytest.mark.parametrize("message", [m for m in MESSAGES if placeholders_of(m)])
def test_placeholders_survive_any_model_output(message):
    m = mask(message)
    slots = SLOT_RE.findall(m.text)
    outputs = ["", "irgendwas", "".join(reversed(slots)), "x " + " y ".join(slots * 2),
               f"{slot(40)} {slot(63)} Text"]
    for out in outputs:
        result = unmask(out, m, "de")
        assert preserved(message, result), (message, out, result)


def test_unordered_printf_codes_go_back_in_source_order():
    m = mask("copied %s to %d")
    a, b = SLOT_RE.findall(m.text)
    assert unmask(f"nach {b} kopiert {a}", m) == "nach %s kopiert %d"
    m = mask("%1$s to %2$s")  # positional: the translation may reorder them
    a, b = SLOT_RE.findall(m.text)
    assert unmask(f"{b} von {a}", m) == "%2$s von %1$s"


def test_preserved_catches_a_lost_or_reordered_placeholder():
    assert not preserved("open %s", "öffnen")
    assert not preserved("%s and %d", "%d und %s")
    assert preserved("%1$s and %2$d", "%2$d und %1$s")
    assert not preserved("<b>x</b>", "<b>x")


def test_accelerators():
    assert find_accelerator("Save _As") == ("_", 5)
    assert find_accelerator("max_depth is %d") is None
    assert find_accelerator("Tom & Jerry") is None
    assert find_accelerator("&amp; more") is None
    assert find_accelerator("E_xit") == ("_", 1)
    assert find_accelerator("see https://example.org/?a=1&group=wget") is None
    assert find_accelerator("Open {File_Name}") is None
    m = mask("_File")
    assert m.text == "File" and m.accel == ("_", "F")
    assert unmask("Fichier", m, "fr") == "_Fichier"
    assert unmask("Datei öffnen", mask("_Open")) == "_Datei öffnen"  # no word starts with o: the first letter
    assert place_accelerator("Speichern unter", "&", "u") == "Speichern &unter"


def test_edges_and_french_colon():
    m = mask("File name:\n")
    assert m.text == "File name" and m.suffix == ":\n"
    assert unmask("Dateiname", m, "de") == "Dateiname:\n"
    assert unmask("Nom du fichier", m, "fr") == "Nom du fichier :\n"


def test_mask_target_uses_the_sources_slots_or_refuses():
    m = mask("Cannot open %s: %s")
    assert mask_target(m, "Kann %s nicht öffnen: %s") == f"Kann {slot(0)} nicht öffnen: {slot(1)}"
    assert mask_target(m, "Kann nicht öffnen: %s") is None  # a placeholder lost: not a pair to learn from
    assert mask_target(m, "Kann %d nicht öffnen: %s") is None
    assert mask_target(mask("_Quit"), "_Beenden") == "Beenden"


def test_only_placeholders_or_our_slot_characters_are_copied():
    assert mask("%s: %s").copy
    assert mask(f"weird {slot(3)} text").copy
    assert unmask("anything", mask(f"weird {slot(3)} text")) == f"weird {slot(3)} text"


@pytest.mark.parametrize("message", ["Home page: <https://www.gnu.org/software/sed/>.", "Mail bugs@example.org now",
                                     "Set $HOME first"])
def test_a_character_the_model_puts_beside_an_open_ended_placeholder_never_joins_it(message):
    m = mask(message)
    (k,) = SLOT_RE.findall(m.text)
    for out in (f"x{k}].", f"a{k}b", f"({k})", f"{k}s"):
        result = unmask(out, m, "de")
        assert preserved(message, result), (out, result)
