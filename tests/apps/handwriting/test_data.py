"""The handwriting corpus: texts and digit scans never shared between splits, a deterministic build."""
import shutil

import numpy as np
import pytest

from suite.apps.handwriting import data
from suite.apps.handwriting.render import digit_images, render_hershey_line


def test_normalize_keeps_the_alphabet_only():
    assert data.normalize("\u201cHello\u201d \u2014  world\u2026\u00e9") == '"Hello" - world...'
    assert data.normalize("  a\tb  ") == "a b"
    assert set(data.normalize("".join(map(chr, range(32, 127))))) <= set(data.CHARS[1:])


def test_text_pieces_are_in_one_split_only():
    pieces = data.text_pieces(0)
    train, valid, test = (set(pieces[s]) for s in ("train", "valid", "test"))
    assert len(train) > 10000 and len(valid) > 300 and len(test) > 300
    assert not train & test and not train & valid and not valid & test
    assert all(len(p) <= 60 for p in train)


def test_test_digits_come_only_from_scans_training_never_sees():
    _, labels = digit_images()
    train, valid, test = (data.digit_pool(s) for s in ("train", "valid", "test"))
    for d in range(10):
        assert max(train[d]) < 1260 and 1260 <= min(valid[d]) and max(valid[d]) < 1400 and min(test[d]) >= 1400
        assert all(labels[i] == d for i in test[d])


def test_number_text_plain_is_digits_and_spaces():
    rng = np.random.default_rng(0)
    for _ in range(200):
        t = data.number_text(rng, plain=True)
        assert t and set(t) <= set("0123456789 ") and t == " ".join(t.split())


def test_fits_needs_a_step_per_label_and_one_between_doubles():
    assert data.fits(np.zeros((4 * 3, 32), np.uint8), "abc")
    assert not data.fits(np.zeros((4 * 3, 32), np.uint8), "abb")


def test_hershey_strokes_render():
    img = render_hershey_line("Hello 42", "scripts", np.random.default_rng(0), height=30)
    assert img.dtype == np.uint8 and img.shape[0] > 20 and img.min() < 150


@pytest.mark.skipif(not data.find_hands("test")[0], reason="handwriting fonts not installed (make apt)")
def test_build_is_deterministic_and_writes_kraken_style_test_sets(tmp_path):
    a = data.build_dataset(tmp_path / "a", n_train=24, n_valid=6, n_test=4, workers=1, display=False)
    data.build_dataset(tmp_path / "b", n_train=24, n_valid=6, n_test=4, workers=2, display=False)
    assert (tmp_path / "a" / "train.npz").read_bytes() == (tmp_path / "b" / "train.npz").read_bytes()
    assert a["counts"]["test/digits"] == 4
    split = data.load_split(tmp_path / "a", "train")
    assert len(split["features"]) == a["counts"]["train"] and all(f.shape[1] == 32 for f in split["features"])
    assert set(split["hands"]) <= {h for h, _, s, _ in data.HANDS if s == "train"} | {"digits"}
    for name in ("digits", "fonts", "hershey"):
        rows = data.read_lines_tsv(tmp_path / "a" / "test" / name / "lines.tsv")
        assert len(rows) == 4
        for path, text, hand in rows:
            assert path.exists() and path.with_name(path.stem + ".gt.txt").read_text().strip() == text
            if name == "fonts":
                assert hand in {h for h, _, s, _ in data.HANDS if s == "test"}
    assert data.read_user_lines(tmp_path / "a" / "test" / "fonts")  # a user's folder reads the same way


@pytest.mark.skipif(not data.find_hands("test")[0], reason="handwriting fonts not installed (make apt)")
@pytest.mark.parametrize("option", ["glyph_jitter", "pen"])
def test_training_styles_change_training_lines_only(tmp_path, option):
    plain = data.build_dataset(tmp_path / "a", n_train=24, n_valid=6, n_test=3, workers=1, display=False,
                               digit_fraction=0.0)
    data.build_dataset(tmp_path / "b", n_train=24, n_valid=6, n_test=3, workers=1, display=False,
                       digit_fraction=0.0, **{option: 1.0})
    a, b = tmp_path / "a", tmp_path / "b"
    assert (a / "valid.npz").read_bytes() == (b / "valid.npz").read_bytes()
    for name in ("digits", "fonts", "hershey"):
        for png in (a / "test" / name).glob("*.png"):
            assert png.read_bytes() == (b / "test" / name / png.name).read_bytes()
    ta, tb = data.load_split(a, "train"), data.load_split(b, "train")
    assert plain["glyph_jitter"] == plain["pen"] == 0.0
    same_text = [(x, y) for x, y, s, t in zip(ta["features"], tb["features"], ta["texts"], tb["texts"]) if s == t]
    assert len(same_text) >= 20 and all(x.shape != y.shape or (x != y).any() for x, y in same_text)
    assert all(f.shape[1] == 32 and f.max() > 100 for f in tb["features"])  # ink at the model's height


def test_glyph_ink_draws_each_letter_once_in_order():
    from suite.apps.handwriting.render import _glyph_ink

    hands, _ = data.find_hands("train")
    if not hands:
        pytest.skip("handwriting fonts not installed (make apt)")
    path = hands[0][1]
    rng = np.random.default_rng(0)
    ink = _glyph_ink("ab  c", path, 48, rng)
    cols = ink.max(axis=0) > 0.5
    runs = np.count_nonzero(cols[1:] & ~cols[:-1]) + int(cols[0])  # separate blobs of ink along the line
    assert 3 <= runs <= 5 and ink.shape[0] < 3 * 48
    assert _glyph_ink(" ", path, 48, rng).max() == 0  # nothing to draw: blank, not an error


@pytest.mark.skipif(not shutil.which("tesseract") or not data.find_hands("test")[0],
                    reason="tesseract or the handwriting fonts not installed (make apt)")
def test_display_faces_are_those_tesseract_reads_and_train_only(tmp_path, monkeypatch):
    legible = next(p for h, p, _ in data.find_hands("train")[0] if h == "comic-neue")
    faces = tmp_path / "faces"
    faces.mkdir()
    shutil.copy(legible, faces / "plain.otf")
    (faces / "broken.ttf").write_bytes(b"not a font")  # unreadable: never chosen
    (faces / "readme.txt").write_text("not a font either")
    monkeypatch.setattr(data, "DISPLAY_DIR", faces)
    assert data.legible_display_fonts(workers=1) == [str(faces / "plain.otf")]
    report = data.build_dataset(tmp_path / "d", n_train=40, n_valid=6, n_test=2, workers=1, digit_fraction=0.0)
    assert report["display_faces"]["train"] == ["plain.otf"]
    train, valid = (set(data.load_split(tmp_path / "d", s)["hands"]) for s in ("train", "valid"))
    assert "display-plain" in train and not any(h.startswith("display-") for h in valid)
    fonts = data.read_lines_tsv(tmp_path / "d" / "test" / "fonts" / "lines.tsv")
    assert not any(h.startswith("display-") for _, _, h in fonts)


def test_user_folder_with_gt_txt_files(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.new("L", (40, 20), 255).save(tmp_path / f"l{i}.png")
        (tmp_path / f"l{i}.gt.txt").write_text(f"line {i}\n")
    rows = data.read_user_lines(tmp_path)
    assert [r[1] for r in rows] == ["line 0", "line 1", "line 2"]
    with pytest.raises(data.DataError, match="gt.txt"):
        data.read_user_lines(tmp_path / "l0.png")


def test_skeleton_thins_strokes_to_their_centre_lines():
    from scipy.ndimage import label

    from suite.apps.handwriting.render import _skeleton

    mask = np.zeros((40, 80), bool)
    mask[12:21, 10:70] = True  # a bar 9 px thick
    mask[5:35, 40:47] = True  # crossed by one 7 px wide
    centre = _skeleton(mask)
    assert not (centre & ~mask).any()  # inside the strokes
    assert centre[:, 20].sum() == 1 and abs(int(np.flatnonzero(centre[:, 20])[0]) - 16) <= 1  # one px, mid-bar
    assert centre[30, :].sum() == 1 and abs(int(np.flatnonzero(centre[30, :])[0]) - 43) <= 1
    parts, n = label(centre, structure=np.ones((3, 3)))
    assert n == 1  # the cross stays one unbroken figure
    xs = np.flatnonzero(centre.any(axis=0))
    assert xs.min() <= 16 and xs.max() >= 63  # from near one end of the bar to the other
    assert not _skeleton(np.zeros((5, 5), bool)).any()


def test_pen_ink_traces_centre_lines_with_one_width():
    from suite.apps.handwriting.render import _pen_ink

    ink = np.zeros((80, 160), np.float32)
    ink[30:42, 10:150] = 1.0  # a stroke 12 px thick
    rng = np.random.default_rng(0)
    pen = _pen_ink(ink, rng, 200)  # nib radius 4-14 px
    assert pen.shape == ink.shape and pen.dtype == np.float32
    thick = (pen[:, 40:120] > 0.25).sum(axis=0)
    assert thick.min() == thick.max() and thick.min() != 12 and 8 <= thick.min() <= 30  # the nib's one width
    assert pen[36, 40:120].min() >= 0.6  # ink along the whole centre line (pressure 0.65-1)
    assert _pen_ink(np.zeros((8, 8), np.float32), rng, 200).max() == 0  # nothing to trace: nothing drawn
    assert _pen_ink(ink, rng, 100) is ink  # a stroke 12 px thick in a 100 px font is too bold to trace


def test_installed_fonts_reads_both_roots_and_debian_wins_a_shared_name(tmp_path, monkeypatch):
    debian, tex = tmp_path / "fonts", tmp_path / "texmf"
    for path in (debian / "truetype" / "x" / "Same.otf", tex / "type1" / "public" / "a" / "Same.otf",
                 tex / "type1" / "public" / "b" / "only.pfb", tex / "opentype" / "c" / "o.otf",
                 tex / "afm" / "d" / "metrics.pfb", debian / "notes.txt"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    monkeypatch.setattr(data, "FONT_ROOT", debian)
    monkeypatch.setattr(data, "TEX_FONT_ROOT", tex)
    data.installed_fonts.cache_clear()
    try:
        found = data.installed_fonts()
    finally:
        data.installed_fonts.cache_clear()
    assert found == {"Same.otf": debian / "truetype" / "x" / "Same.otf",
                     "only.pfb": tex / "type1" / "public" / "b" / "only.pfb", "o.otf": tex / "opentype" / "c" / "o.otf"}
