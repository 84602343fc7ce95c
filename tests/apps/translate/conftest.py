"""A tiny subword model and corpus shared by the translate tests (sentencepiece trains in well under a second)."""
import pytest

PAIRS = [
    ("Open the file", "Datei öffnen"), ("Close the file", "Datei schließen"), ("Save the file", "Datei speichern"),
    ("Cannot open %s", "Kann %s nicht öffnen"), ("Cannot read %s: %s", "Kann %s nicht lesen: %s"),
    ("_Quit", "_Beenden"), ("File name:", "Dateiname:"), ("Delete {count} files?", "{count} Dateien löschen?"),
    ("<b>Warning</b>", "<b>Warnung</b>"), ("memory exhausted", "Speicher erschöpft"),
    ("write error", "Schreibfehler"), ("invalid argument", "ungültiges Argument"),
    ("Print the version and exit", "Version anzeigen und beenden"), ("Show help", "Hilfe anzeigen"),
    ("No such file or directory", "Datei oder Verzeichnis nicht gefunden"), ("Permission denied", "Zugriff verweigert"),
]


@pytest.fixture(scope="session")
def subwords():
    from suite.apps.translate.data import train_subwords
    from suite.apps.translate.model import Subwords

    rows = [{"lang": lang, "src": s, "tgt": t} for s, t in PAIRS for lang in ("de", "fr")] * 3
    return Subwords(train_subwords(rows, vocab_size=400))


@pytest.fixture(scope="session")
def rows():
    return [{"lang": "de", "domain": "toy", "src": s, "tgt": t} for s, t in PAIRS]
