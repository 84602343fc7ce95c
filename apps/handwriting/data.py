"""The handwriting corpus: line images with their text, drawn from what this machine has.

Sources (see DESIGN.md, "Data we can really have here"):

- real handwritten digits: scikit-learn's load_digits; scans 0-1259 draw the
  training strings, 1260-1399 validation, 1400-1796 only the test strings;
- handwriting fonts from Debian packages (the Makefile installs them), whole
  hands held out: ``HANDS`` says which hand serves which split, so validation
  and test are written in hands training never saw;
- English text: the Python reference manual (pydoc_data.topics, in every
  Python) and the licence texts in /usr/share/common-licenses, cut into line-
  long pieces, each piece in one split only (by a hash of its text);
- Hershey vector fonts as pen strokes: the ``hershey`` test set only.

Train and validation lines are stored prepared (apps.handwriting.lines:
ink columns at the model's height) in train.npz/valid.npz; test sets are
written as PNG files with NAME.gt.txt beside each (the kraken/Calamari
convention) and a lines.tsv (file, text, hand), so evaluation reads them
exactly as `suite handwriting read` does.

A user's own data (``read_user_lines``): a folder of line images with
NAME.gt.txt beside each, or a TSV of image<TAB>text.
"""
import functools
import string
import unicodedata
import zlib
from pathlib import Path

import numpy as np

from suite.ctc_task import Alphabet
from suite.databuild import (DataError, chunks, item_rng, parallel_map, read_npz, read_report, write_npz,
                             write_report)

FORMAT_VERSION = 1
SPLIT_IDS = {"train": 0, "valid": 1, "test": 2}  # the item seeds' split field: fixed once, never renumbered
CHARS = ("<blank>", " ") + tuple(string.digits + string.ascii_letters + ".,;:!?'\"()-/&%$#+*=@[]_")
ALPHABET = Alphabet.from_chars(CHARS, normalize=lambda t: clean(t))
DIGIT_SCANS = {"train": (0, 1260), "valid": (1260, 1400), "test": (1400, 1797)}
FONT_ROOT = Path("/usr/share/fonts")
# TeX Live's font collection (Debian's texlive-fonts-extra, 1.4 GB installed; only `make models` installs it): the
# training hands HANDS lists as from texlive-fonts-extra are there, as Type 1 (.pfb, .pfa) or OpenType files
TEX_FONT_ROOT = Path("/usr/share/texlive/texmf-dist/fonts")
FONT_SUFFIXES = (".ttf", ".otf", ".pfb", ".pfa")

# hand, font files, split, case ("upper": the font has capitals only, so its text is upper-cased)
HANDS = (
    ("comic-neue", ("ComicNeue-Regular.otf", "ComicNeue-Bold.otf", "ComicNeue-Italic.otf", "ComicNeue-Light.otf",
                    "ComicNeue-BoldItalic.otf", "ComicNeue-LightItalic.otf"), "train", None),
    ("dancing-script", ("DancingScript-Regular.otf", "DancingScript-Bold.otf"), "train", None),
    ("breip", ("Breip.ttf",), "train", None),
    ("dkg", ("dkg.ttf", "dkgBd.ttf", "dkgIt.ttf", "dkgBI.ttf"), "train", None),
    ("steve-hand", ("SteveHand.ttf",), "train", None),
    ("ecolier", ("Ecolier-court.ttf",), "train", None),
    ("junkyard", ("Junkyard.ttf",), "train", None),
    ("el-abogado-loco", ("El_Abogado_Loco.ttf",), "train", None),
    ("dustismo", ("Dustismo.ttf", "dustismo_italic.ttf", "dustismo_bold.ttf", "Dustismo_Roman.ttf",
                  "Dustismo_Roman_Italic.ttf"), "train", None),
    ("bwht", ("BecauseWeBuild-Regular.otf", "BecauseWeConnect-Regular.otf", "BecauseWeCreate-Regular.otf",
              "BecauseWeMentor-Regular.otf", "BecauseWeOrganize-Regular.otf"), "train", "upper"),
    ("humor-sans", ("Humor-Sans.ttf",), "train", "upper"),
    ("kaushan-script", ("KaushanScript-Regular.otf",), "train", None),
    ("klee", ("KleeOne-Regular.ttf", "KleeOne-SemiBold.ttf"), "train", None),
    ("rufscript", ("Rufscript010.ttf",), "train", None),
    ("leckerli", ("LeckerliOne-Regular.ttf",), "train", None),
    ("lobster", ("lobster.otf", "LobsterTwo-Regular.otf", "LobsterTwo-Italic.otf", "LobsterTwo-Bold.otf",
                 "LobsterTwo-BoldItalic.otf"), "train", None),
    ("tomson-talks", ("TomsonTalks.ttf",), "train", "upper"),
    ("havana", ("Havana-Regular.otf",), "train", None),
    ("yusei-magic", ("YuseiMagic-Regular.ttf",), "train", None),
    ("seto", ("setofont.ttf",), "train", None),
    ("purisa", ("Purisa.ttf", "Purisa-Bold.ttf", "Purisa-Oblique.ttf", "Purisa-BoldOblique.ttf"), "train", None),
    ("fantasque", ("FantasqueSansMono-Regular.ttf", "FantasqueSansMono-Italic.ttf", "FantasqueSansMono-Bold.ttf",
                   "FantasqueSansMono-BoldItalic.ttf"), "train", None),
    ("cabin-sketch", ("CabinSketch-Regular.ttf", "CabinSketch-Bold.ttf"), "train", None),
    ("staypuft", ("StayPuft.ttf",), "train", None),
    ("typoscript", ("TypoScript.otf",), "train", None),
    ("okolaks", ("okolaksRegular.ttf", "okolaksRegularItalic.ttf", "okolaksBold.ttf", "okolaksBoldItalic.ttf"),
     "train", None),
    ("z003", ("Z003-MediumItalic.otf",), "train", None),
    ("ecolier-lignes", ("Ecolier-lignes-court.ttf",), "train", None),
    ("nanum-brush", ("NanumBrush.ttf",), "train", None),
    ("nanum-pen", ("NanumPen.ttf",), "train", None),
    ("kiloji", ("kiloji.ttf", "kiloji_b.ttf"), "train", None),
    ("kouzan", ("AoyagiKouzanT.ttf",), "train", None),
    # from texlive-fonts-extra (stage 7): connected and slanted scripts, the kind of hand the test's kristi is
    ("miama", ("miama.otf",), "train", None),
    ("brush-script", ("BrushScriptX-Italic.pfa",), "train", None),
    ("calligra", ("callig15.pfb",), "train", None),
    ("frcursive", ("frcr10.pfb", "frcsl10.pfb"), "train", None),
    ("augie", ("augie___.pfb",), "train", None),
    ("aurical", ("JanaSkrivana.pfb",), "train", None),  # not LukasSvatba: its "@" and "$" are other glyphs
    ("delphine", ("Delphine.ttf",), "valid", None),
    ("domestic-manners", ("Domestic_Manners.ttf",), "valid", None),
    ("femkeklaver", ("femkeklaver.ttf",), "test", None),
    ("kristi", ("Kristi.ttf",), "test", None),
    ("it-wasnt-me", ("It_wasn_t_me.ttf",), "test", None),
    ("bwht-learn", ("BecauseWeLearn-Regular.otf",), "test", "upper"),
)
DEBIAN_FONTS = ("fonts-comic-neue fonts-dancingscript fonts-breip fonts-dkg-handwriting fonts-sjfonts "
                "fonts-ecolier-court fonts-dustin fonts-bwht fonts-humor-sans fonts-femkeklaver fonts-kristi "
                "fonts-kaushanscript fonts-klee fonts-rufscript fonts-leckerli-one fonts-lobster fonts-lobstertwo "
                "fonts-tomsontalks fonts-havana fonts-yusei-magic fonts-seto fonts-tlwg-purisa-ttf "
                "fonts-fantasque-sans fonts-cabinsketch fonts-staypuft fonts-levien-typoscript fonts-okolaks "
                "fonts-urw-base35 fonts-ecolier-lignes-court fonts-aenigma fonts-nanum-extra fonts-kiloji "
                "fonts-aoyagi-kouzan-t")
# Display faces (training only): Brian Kent's 465 fonts in fonts-aenigma, those a standard OCR reads when drawn
# plainly (``legible_display_fonts``). Hand fonts alone are ~30 families; these add the variety of letter shapes
# (square, slanted, stencilled, outlined) that a hand never seen needs. DISPLAY_SHARE of the font lines use one.
DISPLAY_DIR = FONT_ROOT / "truetype" / "aenigma"
DISPLAY_SHARE = 0.35
LEGIBILITY_TEXTS = ("The quick brown fox jumps over 13 lazy dogs", "PACK MY BOX WITH 25 LIQUOR JUGS, 4.5 kg")
LEGIBILITY_MAX_CER = 0.15
_REPLACE = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
            "\u2026": "...", "\t": " ", "`": "'", "|": "/", "{": "(", "}": ")", "~": "-", "^": "", "<": "(",
            ">": ")", "\\": "/"}


def clean(text):
    """Text made comparable: NFKC, typographic quotes and dashes made plain, control characters dropped,
    runs of spaces collapsed. Characters outside CHARS stay (a user's data may teach new ones)."""
    text = unicodedata.normalize("NFKC", str(text))
    text = "".join(_REPLACE.get(c, c) for c in text)
    return " ".join("".join(c for c in text if c.isprintable() or c == " ").split())


def normalize(text):
    """Text as the shipped alphabet writes it: ``clean``, then characters outside CHARS dropped."""
    known = set(CHARS[1:])
    return " ".join("".join(c for c in clean(text) if c in known).split())


# -- text --------------------------------------------------------------------------------------------
def _prose():
    """The English running text of the Python reference manual and the licence texts, as one word list."""
    from pydoc_data.topics import topics

    docs = list(topics.values())
    licenses = Path("/usr/share/common-licenses")
    if licenses.is_dir():
        docs += [p.read_text(encoding="utf-8", errors="replace") for p in sorted(licenses.iterdir()) if p.is_file()]
    words = []
    for doc in docs:
        for line in doc.splitlines():
            if line.startswith("     ") or line.count("=") > 2 or sum(c.isalpha() for c in line) < 0.6 * len(line):
                continue  # code examples, tables, rules: not prose
            words += normalize(line).split()
    return words


def text_pieces(seed=0):
    """{split: [line-long pieces of English]}: the prose cut into 12-45 character pieces, split by a hash
    of each piece (5 % test, 5 % valid), so no piece is in two splits."""
    rng = np.random.default_rng([seed, 99])
    words = _prose()
    pieces = {"train": [], "valid": [], "test": []}
    i = 0
    while i < len(words):
        limit = int(rng.integers(12, 46))
        piece, i0 = words[i], i + 1
        while i0 < len(words) and len(piece) + 1 + len(words[i0]) <= limit:
            piece += " " + words[i0]
            i0 += 1
        i = i0
        h = zlib.crc32(piece.encode()) % 20
        pieces["test" if h == 0 else "valid" if h == 1 else "train"].append(piece[:60])
    return pieces


def number_text(rng, plain=False):
    """A string of digits as people write them: a number, a date, an amount, a phone number, a code.

    plain: digits and spaces only (what the load_digits scans can spell).
    """
    d = lambda n: "".join(str(int(x)) for x in rng.integers(0, 10, n))  # noqa: E731
    kind = int(rng.integers(6))
    if kind == 0:
        return d(int(rng.integers(1, 9)))
    if kind == 1:
        day, month, year = int(rng.integers(1, 32)), int(rng.integers(1, 13)), int(rng.integers(1900, 2040))
        sep = " " if plain else "/.- "[int(rng.integers(4))]
        return f"{day:02d}{sep}{month:02d}{sep}{year}"
    if kind == 2:
        groups = [d(int(rng.integers(1, 4)))] + [d(3) for _ in range(int(rng.integers(0, 3)))]
        amount = (" " if plain else ",").join(groups)
        return amount if plain else ("$" if rng.random() < 0.5 else "") + amount + f".{d(2)}"
    if kind == 3:
        return " ".join(d(int(rng.integers(2, 5))) for _ in range(int(rng.integers(2, 4))))
    if kind == 4:
        return f"{d(3)} {d(4)}" if plain else f"({d(3)}) {d(3)}-{d(4)}"
    return " ".join(d(int(rng.integers(1, 6))) for _ in range(int(rng.integers(2, 5))))


# -- fonts ---------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def installed_fonts():
    """{file name: path} of the font files under FONT_ROOT and TEX_FONT_ROOT (its outline-font folders), FONT_ROOT's
    winning where both have a name (TeX Live also ships Comic Neue, say); scanned once per process (every
    data-build chunk asks). Callers only read it."""
    roots = [TEX_FONT_ROOT / kind for kind in ("type1", "opentype", "truetype")] + [FONT_ROOT]
    return {p.name: p for root in roots if root.is_dir() for p in sorted(root.rglob("*"))
            if p.suffix.lower() in FONT_SUFFIXES}


def find_hands(split=None):
    """[(hand, font path, case)] of the HANDS installed here (for ``split`` only, if given), and the missing files."""
    found = installed_fonts()
    hands, missing = [], []
    for hand, files, where, case in HANDS:
        if split is not None and where != split:
            continue
        for name in files:
            if name in found:
                hands.append((hand, str(found[name]), case))
            else:
                missing.append(name)
    return hands, missing


def _legibility(path):
    """Worker: (path, Tesseract's CER on LEGIBILITY_TEXTS drawn plainly in the font), 1.0 when it lacks a letter
    or digit or cannot be drawn."""
    import subprocess
    import tempfile

    import jiwer
    from PIL import Image

    from suite.apps.handwriting.render import missing_glyphs, render_font_line

    try:
        if missing_glyphs(path, set(string.ascii_letters + string.digits)):
            return path, 1.0
        hyps = []
        for text in LEGIBILITY_TEXTS:
            gray = render_font_line(text, path, np.random.default_rng(0), distort=False)
            with tempfile.NamedTemporaryFile(suffix=".png") as f:
                Image.fromarray(gray).save(f.name)
                run = subprocess.run(["tesseract", f.name, "stdout", "--psm", "7", "-l", "eng"], capture_output=True,
                                     text=True, env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin"})
            hyps.append(" ".join(run.stdout.split()))
        return path, float(jiwer.cer(list(LEGIBILITY_TEXTS), hyps))
    except (OSError, ValueError):
        return path, 1.0


def legible_display_fonts(workers=2):
    """Sorted [font path] of the display faces under DISPLAY_DIR that Tesseract 5 reads at CER <= LEGIBILITY_MAX_CER
    when drawn without distortion (ornamental, 3-D, symbol and binary faces fail); [] when the folder or the
    tesseract command is missing. About a minute on 2 cores."""
    import shutil

    if not DISPLAY_DIR.is_dir() or shutil.which("tesseract") is None:
        return []
    paths = sorted(str(p) for p in DISPLAY_DIR.iterdir() if p.suffix.lower() in (".ttf", ".otf"))
    scored = parallel_map(_legibility, paths, workers, count=lambda _: 1)
    return [p for p, cer in scored if cer <= LEGIBILITY_MAX_CER]


def _font_text(pieces, rng, case, path):
    from suite.apps.handwriting.render import missing_glyphs

    text = number_text(rng) if rng.random() < 0.15 else pieces[int(rng.integers(len(pieces)))]
    if rng.random() < 0.1:  # mix words and numbers on one line
        text = f"{text} {number_text(rng)}"
    text = text.upper() if case == "upper" else text
    lacking = missing_glyphs(path, set(text))
    return normalize("".join(c for c in text if c not in lacking))


# -- items ---------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def digit_pool(split):
    """{digit: scan indices} of the load_digits scans a split may use (DIGIT_SCANS); computed once per process
    (every digit line draws from it). Callers only read it."""
    from suite.apps.handwriting.render import digit_images

    _, labels = digit_images()
    lo, hi = DIGIT_SCANS[split]
    return {d: [i for i in range(lo, hi) if labels[i] == d] for d in range(10)}


def make_item(seed, split, index, hands, pieces, digit_fraction, display=(), glyph_jitter=0.0, pen=0.0):
    """(grey image (h, w) uint8, text, hand) of one item, drawn from its own generator; ``display``: font paths of
    display faces, DISPLAY_SHARE of the font lines (training only; without them the draws are as before);
    ``glyph_jitter``: the share of font lines drawn a character at a time (render._glyph_ink); ``pen``: the share
    redrawn with a round pen of one width (render._pen_ink); both training only, 0 draws as before."""
    from suite.apps.handwriting.render import render_digit_line, render_font_line

    rng = item_rng(seed, SPLIT_IDS[split], index)
    if rng.random() < digit_fraction or not hands:
        text = number_text(rng, plain=True)
        return render_digit_line(text, digit_pool(split), rng), text, "digits"
    if display and rng.random() < DISPLAY_SHARE:
        path = display[int(rng.integers(len(display)))]
        hand, case = "display-" + Path(path).stem, None
    else:
        hand, path, case = hands[int(rng.integers(len(hands)))]
    text = _font_text(pieces, rng, case, path) or "0"
    return render_font_line(text, path, rng, glyph_jitter=glyph_jitter, pen=pen), text, hand


def fits(columns, text):
    """Whether a prepared line has model steps enough for CTC to spell its text (a step per label, one more
    between doubled letters)."""
    from suite.apps.handwriting.model import HandwritingModel

    labels = ALPHABET.encode(text)
    need = len(labels) + int(np.sum(labels[1:] == labels[:-1])) if len(labels) else 0
    return int(HandwritingModel.steps([len(columns)])[0]) >= max(need, 1)


def _prepared_chunk(task):
    """Worker: prepared (columns, text, hand) of items start..stop of a split; lines CTC cannot fit are None."""
    from suite.apps.handwriting.lines import prepare_line

    seed, split, start, stop, digit_fraction, pieces, display, style = task
    hands, _ = find_hands(split)
    out = []
    for i in range(start, stop):
        gray, text, hand = make_item(seed, split, i, hands, pieces, digit_fraction, display, **style)
        line = prepare_line(gray)
        out.append((line.columns, text, hand) if line is not None and fits(line.columns, text) else None)
    return out


def _write_prepared(path, items):
    widths = np.array([len(c) for c, _, _ in items], dtype=np.int64)
    write_npz(path, {"pixels": np.concatenate([c for c, _, _ in items]), "widths": widths,
                     "texts": np.array([t for _, t, _ in items]), "hands": np.array([h for _, _, h in items])})


def _test_chunk(task):
    """Worker: grey images and texts of test items start..stop of one test set."""
    from suite.apps.handwriting.render import HERSHEY_FONTS, render_hershey_line

    seed, name, start, stop, pieces = task
    hands, _ = find_hands("test")
    out = []
    for i in range(start, stop):
        if name == "digits":
            out.append(make_item(seed, "test", i, [], pieces, 1.0))
        elif name == "fonts":
            out.append(make_item(seed, "test", 100_000 + i, hands, pieces, 0.0))
        else:  # hershey: pen strokes, never seen in training or validation
            rng = item_rng(seed, SPLIT_IDS["test"], 200_000 + i)
            font = HERSHEY_FONTS[i % len(HERSHEY_FONTS)]
            text = number_text(rng) if rng.random() < 0.15 else pieces[int(rng.integers(len(pieces)))]
            text = normalize(text)
            out.append((render_hershey_line(text, font, rng), text, f"hershey-{font}"))
    return out


def _write_test_set(folder, items):
    from PIL import Image

    folder.mkdir(parents=True)
    rows = ["file\ttext\thand"]
    for i, (gray, text, hand) in enumerate(items):
        name = f"{i:05d}"
        Image.fromarray(gray).save(folder / f"{name}.png", optimize=False)
        (folder / f"{name}.gt.txt").write_text(text + "\n", encoding="utf-8")
        rows.append(f"{name}.png\t{text}\t{hand}")
    (folder / "lines.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def build_dataset(out, n_train=30000, n_valid=1000, n_test=500, digit_fraction=0.3, seed=0, workers=2,
                  progress=None, command=None, display=True, glyph_jitter=0.0, pen=0.0):
    """Write out/train.npz, valid.npz, test/{digits,fonts,hershey}/ and report.json (into a staged folder:
    nothing is left on failure or Ctrl-C); returns the report. display: train on the legible display faces too;
    glyph_jitter: the share of training font lines drawn a character at a time; pen: the share redrawn with a
    round pen of one width (validation and test are drawn the same whatever they are)."""
    from suite.fileio import staged_dir

    hands, missing = find_hands()
    for split in ("train", "valid", "test"):
        if not any(h for h in hands if _split_of(h[0]) == split):
            raise DataError(f"no {split} handwriting fonts under {FONT_ROOT}; install the Debian packages "
                            f"({DEBIAN_FONTS}), e.g. with `make apt`")
    pieces = text_pieces(seed)
    counts, dropped = {}, {}
    total = n_train + n_valid + 3 * n_test
    done = [0]

    def step(k, _total):
        if progress is not None:
            progress(done[0] + k, total)

    with staged_dir(out) as tmp:
        faces = legible_display_fonts(workers) if display else []  # about a minute: inside, so Ctrl-C leaves nothing
        for split, n in (("train", n_train), ("valid", n_valid)):
            train = split == "train"
            style = {"glyph_jitter": glyph_jitter, "pen": pen} if train else {}
            tasks = [(seed, split, a, b, digit_fraction, pieces[split], faces if train else [], style)
                     for a, b in chunks(n, 250)]
            items = [x for part in parallel_map(_prepared_chunk, tasks, workers, step, total=total) for x in part]
            done[0] += n
            kept = [x for x in items if x is not None]
            counts[split], dropped[split] = len(kept), n - len(kept)
            _write_prepared(tmp / f"{split}.npz", kept)
        for name in ("digits", "fonts", "hershey"):
            tasks = [(seed, name, a, b, pieces["test"]) for a, b in chunks(n_test, 100)]
            items = [x for part in parallel_map(_test_chunk, tasks, workers, step, total=total) for x in part]
            done[0] += n_test
            _write_test_set(tmp / "test" / name, items)
            counts[f"test/{name}"] = len(items)
        report = {"seed": seed, "counts": counts, "dropped_too_narrow_for_ctc": dropped,
                  "digit_fraction": digit_fraction, "digit_scans": DIGIT_SCANS,
                  "hands": {s: sorted({h for h, _, w, _ in HANDS if w == s}) for s in ("train", "valid", "test")},
                  "fonts_missing": missing,
                  "display_faces": {"train": sorted(Path(p).name for p in faces),
                                    "share": DISPLAY_SHARE if faces else 0,
                                    "chosen_by": f"Tesseract CER <= {LEGIBILITY_MAX_CER} on LEGIBILITY_TEXTS"},
                  "glyph_jitter": glyph_jitter, "pen": pen,
                  "text": {s: len(p) for s, p in pieces.items()},
                  "text_source": "pydoc_data.topics (Python reference manual) + /usr/share/common-licenses",
                  "hershey_fonts_test_only": True, "command": command}
        write_report(tmp, report, FORMAT_VERSION)
    return report


def _split_of(hand):
    return next(w for h, _, w, _ in HANDS if h == hand)


def load_split(data_dir, split):
    """{"features": [(W, 32) uint8], "texts": [str], "hands": [str]} of a built split; DataError if absent."""
    read_report(data_dir, FORMAT_VERSION, app="handwriting")
    arrays = read_npz(Path(data_dir) / f"{split}.npz", what="handwriting dataset")
    if not {"pixels", "widths", "texts", "hands"} <= set(arrays):
        raise DataError(f"{data_dir}/{split}.npz: not a handwriting split; rebuild with --force")
    ends = np.cumsum(arrays["widths"])
    pixels = arrays["pixels"]
    feats = [pixels[e - w:e] for e, w in zip(ends, arrays["widths"])]
    return {"features": feats, "texts": [str(t) for t in arrays["texts"]], "hands": [str(h) for h in arrays["hands"]]}


def read_lines_tsv(tsv):
    """[(image path, text, hand)] of a lines.tsv (file<TAB>text[<TAB>hand], an optional header line); paths
    relative to its folder."""
    from suite.databuild import read_file_tsv

    return read_file_tsv(tsv, ("hand",), header="file\t")


def read_user_lines(folder):
    """[(image path, text, "-")] of a user's folder: images with NAME.gt.txt beside each, or a *.tsv of
    image<TAB>text. DataError when neither is there."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; give a folder of line images with NAME.gt.txt files")
    tsvs = sorted(folder.glob("*.tsv"))
    if tsvs:
        return [r for t in tsvs for r in read_lines_tsv(t)]
    from suite.images import SUFFIXES

    rows = []
    for gt in sorted(folder.rglob("*.gt.txt")):
        stem = gt.name[:-len(".gt.txt")]
        image = next((gt.with_name(stem + s) for s in SUFFIXES if gt.with_name(stem + s).exists()), None)
        if image is not None:
            rows.append((image, gt.read_text(encoding="utf-8", errors="replace").strip(), "-"))
    if not rows:
        raise DataError(f"{folder}: no line images with NAME.gt.txt beside them, and no TSV of image<TAB>text")
    return rows
