"""Shapes world: scenes, captions, parser, metrics, rendering, image loading, dataset, user data."""
import io
import json
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from suite.apps.caption.data import (
    HELD_OUT_COMBOS, INPUT_SIZE, LAYOUT_RADIUS, VOCAB, CaptionsFileError, ImageError, Obj, Scene,
    SceneError, aggregate, bleu4, build_dataset, canonical_caption, captions, check_scene, clear_relation,
    image_to_array, load_image, load_names, load_split, load_user_split, parse_caption, random_scene,
    read_captions_file, relation_holds, render, score_caption, tokenize,
)
from suite.apps.caption.scenes import groups, score_against_references
from suite.databuild import DataError

REPO = Path(__file__).resolve().parents[3]


def scenes(n, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return [random_scene(rng, **kw) for _ in range(n)]


def obj(size, colour, shape, x, y):
    return Obj(size, colour, shape, x, y)


# two objects, the red circle clearly left of the blue square
PAIR = Scene((obj("small", "red", "circle", 0.2, 0.5), obj("large", "blue", "square", 0.7, 0.55)))
# three objects in an L: circle left of square, triangle below square
TRIO = Scene((obj("small", "red", "circle", 0.15, 0.25), obj("large", "blue", "square", 0.7, 0.25),
              obj("small", "green", "triangle", 0.72, 0.8)))


# ----------------------------------------------------------------------------- scenes

def test_random_scenes_follow_the_rules_and_respect_exclude():
    counts = Counter()
    for s in scenes(2000, exclude=HELD_OUT_COMBOS):
        check_scene(s)  # inside the frame, distinct triples, clearly linked
        counts[len(s)] += 1
        for i, a in enumerate(s.objects):
            assert (a.colour, a.shape) not in HELD_OUT_COMBOS
            for b in s.objects[i + 1:]:
                gap = np.hypot(a.x - b.x, a.y - b.y) - LAYOUT_RADIUS[a.size] - LAYOUT_RADIUS[b.size]
                assert gap > 0.02, "objects overlap"
    assert set(counts) == {1, 2, 3} and min(counts.values()) > 200


def test_require_puts_a_held_out_combo_in_every_scene():
    got = Counter()
    for s in scenes(600, seed=1, require=HELD_OUT_COMBOS):
        pairs = {(o.colour, o.shape) for o in s.objects}
        assert pairs & set(HELD_OUT_COMBOS)
        got.update(pairs & set(HELD_OUT_COMBOS))
    assert set(got) == set(HELD_OUT_COMBOS)
    with pytest.raises(SceneError):
        random_scene(np.random.default_rng(0), exclude=HELD_OUT_COMBOS, require=HELD_OUT_COMBOS)


def test_check_scene_rejects_broken_scenes():
    with pytest.raises(SceneError, match="overlap"):
        check_scene(Scene((obj("large", "red", "circle", 0.4, 0.5), obj("large", "blue", "square", 0.55, 0.5))))
    twins = (obj("small", "red", "circle", 0.2, 0.5), obj("small", "red", "circle", 0.8, 0.5))
    check_scene(Scene(twins))  # two of one description: counting
    with pytest.raises(SceneError, match="share"):
        check_scene(Scene(twins + (obj("small", "red", "circle", 0.5, 0.2),)))
    with pytest.raises(SceneError, match="same direction"):  # one twin left of the square, the other right of it
        check_scene(Scene(twins + (obj("small", "blue", "square", 0.5, 0.5),)))
    with pytest.raises(SceneError, match="border"):
        check_scene(Scene((obj("large", "red", "circle", 0.05, 0.5),)))
    with pytest.raises(SceneError, match="link"):  # a diagonal pair has no clear relation
        check_scene(Scene((obj("small", "red", "circle", 0.2, 0.2), obj("small", "blue", "square", 0.7, 0.7))))
    assert Scene.from_json(json.loads(json.dumps(TRIO.to_json()))) == TRIO


def test_clear_relations_hold_and_their_perpendiculars_do_not():
    rng = np.random.default_rng(3)
    perpendicular = {"left": ("above", "below"), "right": ("above", "below"),
                     "above": ("left", "right"), "below": ("left", "right")}
    opposite = {"left": "right", "right": "left", "above": "below", "below": "above"}
    n_clear = 0
    for _ in range(3000):
        a = obj("small", "red", "circle", *rng.uniform(0, 1, 2))
        b = obj("small", "blue", "circle", *rng.uniform(0, 1, 2))
        rel = clear_relation(a, b)
        if rel is None:
            continue
        n_clear += 1
        assert relation_holds(a, rel, b) and relation_holds(b, opposite[rel], a)
        assert not relation_holds(a, opposite[rel], b)
        assert not any(relation_holds(a, p, b) for p in perpendicular[rel])
    assert n_clear > 500
    assert clear_relation(PAIR.objects[0], PAIR.objects[1]) == "left"  # y grows down:
    assert relation_holds(TRIO.objects[2], "below", TRIO.objects[1])   # 0.8 is below 0.25


# ----------------------------------------------------------------------------- captions and parser

def test_every_reference_caption_is_true_parsable_and_in_vocab():
    vocab = set(VOCAB)
    n_words = Counter()
    for s in scenes(400, seed=2):
        refs = captions(s)
        assert refs[0] == canonical_caption(s) and len(set(refs)) == len(refs)
        for ref in refs:
            words = tokenize(ref)
            assert set(words) <= vocab, ref
            n_words[len(s)] = max(n_words[len(s)], len(words))
            score = score_caption(ref, s)
            assert score["object_set_exact"], ref
            assert score["objects_correct"] == score["objects_total"] == len(s)
            assert score["sizes_correct"] == score["sizes_total"] == len(s)
            assert score["relations_correct"] == score["relations_total"] == len(s) - 1, ref
            parsed = parse_caption(ref)
            assert Counter(parsed.objects) == Counter(o.attrs for o in s.objects)
            # the relations link every object (a spanning tree)
            linked = {0}
            for _ in range(2):
                for i, _r, j in parsed.relations:
                    if i in linked or j in linked:
                        linked |= {i, j}
            assert linked == set(range(len(s))), ref
    assert n_words[1] <= 6 and n_words[3] <= 30


def test_captions_sampling_is_seeded_and_starts_canonical():
    s = TRIO
    every = captions(s)
    assert len(every) > 10
    a = captions(s, np.random.default_rng(5), n=5)
    assert a == captions(s, np.random.default_rng(5), n=5)
    assert len(a) == 5 and a[0] == canonical_caption(s) and set(a) <= set(every)
    assert captions(s, None, n=3) == every[:3]
    assert len(captions(Scene(PAIR.objects[:1]), np.random.default_rng(0), n=5)) == 2  # only 2 wordings exist
    assert canonical_caption(PAIR) == "a small red circle left of a large blue square"
    # order of objects in the scene does not change the canonical caption
    assert canonical_caption(Scene(PAIR.objects[::-1])) == canonical_caption(PAIR)
    assert canonical_caption(TRIO) == canonical_caption(Scene(TRIO.objects[::-1]))


@pytest.mark.parametrize("text, objects, relations", [
    ("a small red circle", [("small", "red", "circle")], []),
    ("There is a small red circle.", [("small", "red", "circle")], []),
    ("a small red circle to the left of a large blue square",
     [("small", "red", "circle"), ("large", "blue", "square")], [(0, "left", 1)]),
    ("A large blue square is to the right of a small red circle",
     [("large", "blue", "square"), ("small", "red", "circle")], [(0, "right", 1)]),
    ("a small green triangle under a large blue square",
     [("small", "green", "triangle"), ("large", "blue", "square")], [(0, "below", 1)]),
    ("a large blue square right of a small red circle and above a small green triangle",
     [("large", "blue", "square"), ("small", "red", "circle"), ("small", "green", "triangle")],
     [(0, "right", 1), (0, "above", 2)]),
    ("a small red circle left of a large blue square and the large blue square is above a small green triangle",
     [("small", "red", "circle"), ("large", "blue", "square"), ("small", "green", "triangle")],
     [(0, "left", 1), (1, "above", 2)]),
    ("a small red circle is left of a large blue square which is above a small green triangle",
     [("small", "red", "circle"), ("large", "blue", "square"), ("small", "green", "triangle")],
     [(0, "left", 1), (1, "above", 2)]),
])
def test_parse_caption_wordings(text, objects, relations):
    parsed = parse_caption(text)
    assert list(parsed.objects) == objects
    assert list(parsed.relations) == relations


@pytest.mark.parametrize("garbage", [
    "", "   ", "hello world", "a small red", "red circle", "left of a small red circle",
    "a small red circle left a large blue square", "a small red circle left of", "a small red circle and",
    "a huge red circle", "a small red circle a large blue square", "a small red circle which left of a blue square",
    "there a small red circle", "a small red circle to left of a large blue square", None, 42,
])
def test_parse_caption_returns_none_on_garbage(garbage):
    assert parse_caption(garbage) is None


def test_tokenize():
    assert tokenize("A small, RED circle; left-of it!") == ["a", "small", "red", "circle", "left", "of", "it"]


# ----------------------------------------------------------------------------- metrics

def test_score_caption_catches_errors():
    good = score_caption("a small red circle left of a large blue square", PAIR)
    assert good["object_set_exact"] and good["relations_correct"] == good["relations_total"] == 1

    colour = score_caption("a small green circle left of a large blue square", PAIR)
    assert not colour["object_set_exact"] and colour["objects_correct"] == 1
    assert colour["relations_correct"] == 0  # names an object that is not there
    assert colour["sizes_total"] == 1 and colour["sizes_correct"] == 1  # the square's colour+shape match

    size = score_caption("a large red circle left of a large blue square", PAIR)
    assert size["sizes_total"] == 2 and size["sizes_correct"] == 1 and size["objects_correct"] == 1

    relation = score_caption("a small red circle right of a large blue square", PAIR)
    assert relation["object_set_exact"] and relation["relations_correct"] == 0 and relation["relations_total"] == 1
    above = score_caption("a small red circle above a large blue square", PAIR)
    assert above["relations_correct"] == 0

    missing = score_caption("a small red circle", PAIR)
    assert not missing["object_set_exact"] and missing["objects_correct"] == 1
    assert missing["relations_correct"] == 0 and missing["relations_total"] == 1  # unlinked is not free

    extra = score_caption("a small red circle left of a large blue square and above a small green triangle", PAIR)
    assert not extra["object_set_exact"] and extra["objects_predicted"] == 3
    assert extra["relations_correct"] == 1 and extra["relations_total"] == 2

    trio_wrong = score_caption(
        "a small red circle left of a large blue square which is below a small green triangle", TRIO)
    assert trio_wrong["object_set_exact"] and trio_wrong["relations_correct"] == 1

    junk = score_caption("circle circle circle", TRIO)
    assert not junk["parsed"] and junk["objects_correct"] == 0 and junk["relations_total"] == 2


def test_aggregate_rates():
    scores = [score_caption("a small red circle left of a large blue square", PAIR),
              score_caption("a small red circle right of a large blue square", PAIR),
              score_caption("nonsense", PAIR)]
    agg = aggregate(scores)
    assert agg["n"] == 3
    assert agg["parse_rate"] == pytest.approx(2 / 3)
    assert agg["object_set_accuracy"] == pytest.approx(2 / 3)
    assert agg["object_recall"] == pytest.approx(4 / 6)
    assert agg["relation_accuracy"] == pytest.approx(1 / 3)
    assert aggregate([])["relation_accuracy"] is None


def test_bleu4():
    refs = [["a small red circle left of a large blue square", "a large blue square right of a small red circle"],
            ["a small red circle"]]
    perfect = bleu4(["a large blue square right of a small red circle", "a small red circle"], refs)
    assert perfect["score"] == pytest.approx(100.0)
    assert "nrefs:var" in perfect["signature"] and "tok:13a" in perfect["signature"]
    worse = bleu4(["a small green triangle above a large red square", "a small red circle"], refs)
    assert worse["score"] < 60
    with pytest.raises(ValueError, match="reference lists"):
        bleu4(["a"], refs)


# ----------------------------------------------------------------------------- rendering

def test_render_is_seeded_and_varies():
    s = TRIO
    a = render(s, np.random.default_rng(7))
    b = render(s, np.random.default_rng(7))
    assert a.mode == "RGB" and np.array_equal(np.asarray(a), np.asarray(b))
    sizes = {render(s, np.random.default_rng(k)).size for k in range(40)}
    assert len(sizes) > 20 and any(w != h for w, h in sizes)
    assert all(32 <= w <= 512 and 32 <= h <= 512 and max(w, h) / min(w, h) <= 1.41 for w, h in sizes)
    assert min(map(min, sizes)) < 64 and max(map(max, sizes)) > 256  # the whole range, small and large images
    assert render(s, np.random.default_rng(0), size=(80, 64)).size == (80, 64)
    for style in ("alt", "sketch", "dark"):
        other = render(s, np.random.default_rng(7), size=a.size, style=style)
        assert other.size == a.size and not np.array_equal(np.asarray(other), np.asarray(a))
        held_out_sizes = {render(s, np.random.default_rng(k), style=style).size for k in range(10)}
        assert all(48 <= w <= 160 and 48 <= h <= 160 for w, h in held_out_sizes)
    with pytest.raises(ValueError, match="style"):
        render(s, np.random.default_rng(0), style="fancy")


def _shape_pixels(scene, seed, size, style="train"):
    """Pixels that differ clearly from the background (the image's median colour)."""
    img = np.asarray(render(scene, np.random.default_rng(seed), size=size, style=style), dtype=np.int16)
    bg = np.median(img.reshape(-1, 3), axis=0)
    return int((np.abs(img - bg).sum(axis=2) > 90).sum())


@pytest.mark.parametrize("shape", ["circle", "square", "triangle"])
@pytest.mark.parametrize("size", [48, 160])
def test_small_and_large_stay_distinguishable(shape, size):
    small = [_shape_pixels(Scene((obj("small", "blue", shape, 0.5, 0.5),)), k, size, "alt") for k in range(6)]
    large = [_shape_pixels(Scene((obj("large", "blue", shape, 0.5, 0.5),)), k, size, "alt") for k in range(6)]
    assert min(large) > 2.2 * max(small), (small, large)


@pytest.mark.parametrize("style", ["train", "alt", "sketch", "dark"])
def test_sizes_are_relative_to_the_image_and_never_overlap(style):
    """The widened renderer draws each size across its range, at every image size: the largest small shape
    stays clearly smaller than the smallest large one of the same shape (radius / shorter side)."""
    from suite.apps.caption.data import draw_radius

    rng = np.random.default_rng(0)
    for shape in ("circle", "square", "triangle"):
        small = [draw_radius(obj("small", "red", shape, 0.5, 0.5), side, rng, style) / side
                 for side in (32, 64, 512) for _ in range(200)]
        large = [draw_radius(obj("large", "red", shape, 0.5, 0.5), side, rng, style) / side
                 for side in (32, 64, 512) for _ in range(200)]
        assert min(large) > 1.45 * max(small)


def test_fill_colour_survives_on_small_images_in_filled_styles():
    for style in ("train", "alt", "dark"):
        for k in range(10):
            s = Scene((obj("small", "yellow", "triangle", 0.5, 0.5),))
            img = np.asarray(render(s, np.random.default_rng(k), size=48, style=style), dtype=np.int16)
            r, g, b = img[23:26, 23:26].reshape(-1, 3).mean(axis=0)  # the triangle's centre
            # yellow, not orange, olive or grey (train draws shades: brightness and each channel vary a little)
            assert r > 150 and g > 0.78 * r and b < 130, (style, k, (r, g, b))


def test_hollow_shapes_are_outlines_in_their_colour_and_off_by_default():
    """--outlines draws shapes hollow in the training style only; outlines=0 draws as before, rng for rng."""
    s = Scene((obj("large", "blue", "square", 0.5, 0.5),))
    for k in range(8):
        plain = np.asarray(render(s, np.random.default_rng(k), size=128))
        assert np.array_equal(plain, np.asarray(render(s, np.random.default_rng(k), size=128, outlines=0.0)))
        hollow = np.asarray(render(s, np.random.default_rng(k), size=128, outlines=1.0), dtype=np.int16)
        centre = hollow[60:68, 60:68].reshape(-1, 3).mean(axis=0)
        corner = hollow[2:10, 2:10].reshape(-1, 3).mean(axis=0)  # background
        assert np.abs(centre - corner).sum() < 60, (k, centre, corner)  # no fill: the centre is background
        diff = hollow - np.median(hollow.reshape(-1, 3), axis=0)
        ink = np.abs(diff).sum(axis=2) > 40  # the outline: pixels clearly off the background
        assert ink.sum() > 100, k
        red, _, blue = diff[ink].mean(axis=0)
        assert blue > red + 20, (k, red, blue)  # drawn in the shape's colour
        assert not np.array_equal(plain, hollow)
        for style in ("alt", "sketch", "dark"):  # held-out styles never draw hollow shapes
            a = render(s, np.random.default_rng(k), size=96, style=style)
            assert np.array_equal(np.asarray(a), np.asarray(render(s, np.random.default_rng(k), size=96,
                                                                   style=style, outlines=1.0)))


# ----------------------------------------------------------------------------- images in

from tests.suite.test_images import _save, picture  # noqa: E402,F401  (the same picture as the loader's tests)


def test_load_image_rgb_png_pads_with_border_colour(tmp_path, picture):
    x = load_image(_save(picture, tmp_path / "a.png"))
    assert x.shape == (3, INPUT_SIZE, INPUT_SIZE) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert np.allclose(x[:, 0, 0], 230 / 255, atol=1e-6)  # padded corner = border colour, not black
    assert x[0, 32, 32] > 0.7 and x[1, 32, 32] < 0.2     # the red block, centred
    assert np.array_equal(x, image_to_array(picture))


def test_load_image_modes(tmp_path):
    rgba = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).rectangle([10, 10, 40, 40], fill=(0, 0, 255, 255))
    x = load_image(_save(rgba, tmp_path / "rgba.png"))
    assert np.allclose(x[:, 1, 1], 1.0)  # transparent -> white, not black
    assert np.allclose(x[:, 32, 32], [0, 0, 1])

    grey_alpha = Image.new("LA", (40, 40), (100, 255))
    assert np.allclose(load_image(_save(grey_alpha, tmp_path / "la.png")), 100 / 255)

    grey = Image.new("L", (40, 60), 128)
    x = load_image(_save(grey, tmp_path / "l.png"))
    assert np.allclose(x, 128 / 255)

    pal = Image.new("P", (30, 30), 0)
    pal.putpalette([0, 255, 0] + [0, 0, 0] * 255)
    x = load_image(_save(pal, tmp_path / "p.png"))
    assert np.allclose(x[:, 10, 10], [0, 1, 0])
    pal_t = pal.copy()
    pal_t.info["transparency"] = 0
    x = load_image(_save(pal_t, tmp_path / "pt.png", transparency=0))
    assert np.allclose(x, 1.0)  # the only colour is transparent

    deep = Image.fromarray(np.full((40, 40), 65535, dtype=np.uint16))
    deep_path = _save(deep, tmp_path / "16.png")
    with Image.open(deep_path) as opened:
        assert opened.mode.startswith("I")
    assert np.allclose(load_image(deep_path), 1.0)
    half = Image.fromarray(np.full((40, 40), 32896, dtype=np.uint16))  # 128 * 257
    assert np.allclose(load_image(_save(half, tmp_path / "16h.png")), 128 / 255)

    cmyk = Image.new("CMYK", (40, 40), (0, 255, 255, 0))  # red
    x = load_image(_save(cmyk, tmp_path / "cmyk.jpg", quality=95))
    assert x[0].mean() > 0.9 and x[1].mean() < 0.15

    bilevel = Image.new("1", (40, 40), 1)
    assert np.allclose(load_image(_save(bilevel, tmp_path / "b.png")), 1.0)

    gif = Image.new("P", (40, 30), 0)
    gif.putpalette([255, 128, 0] * 256)
    x = load_image(_save(gif, tmp_path / "g.gif"))
    assert np.allclose(x[:, 32, 32], [1, 128 / 255, 0], atol=0.01)


def test_load_image_jpeg_and_exif_orientation(tmp_path, picture):
    x = load_image(_save(picture, tmp_path / "a.jpg", quality=95))
    assert np.abs(x - image_to_array(picture)).mean() < 0.02
    tall = Image.new("RGB", (60, 120), (230, 230, 230))
    ImageDraw.Draw(tall).rectangle([0, 0, 59, 30], fill=(0, 0, 200))  # blue at the top
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: a viewer rotates it 90 degrees clockwise
    turned = tall.transpose(Image.Transpose.ROTATE_90)  # what a camera would store
    y = load_image(_save(turned, tmp_path / "turned.jpg", exif=exif, quality=95))
    assert y[2, 2:8, 20:44].mean() > 0.6 and y[2, 56:62, 20:44].mean() < 0.95  # blue is back on top
    assert y[0, 2:8, 20:44].mean() < 0.3


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 6000x4000 JPEG, as a camera would make."""
    img = Image.new("RGB", (6000, 4000), (200, 220, 240))
    ImageDraw.Draw(img).ellipse([2000, 1000, 4000, 3000], fill=(250, 120, 20))
    path = tmp_path_factory.mktemp("photo") / "photo.jpg"
    img.save(path, quality=85)
    return path


def test_load_image_big_photo_is_fast_and_small_in_memory(photo):
    tracemalloc.start()
    t0 = time.perf_counter()
    x = load_image(photo)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert x.shape == (3, 64, 64)
    assert x[0, 32, 32] > 0.9 and x[2, 32, 32] < 0.2  # the orange disc
    assert peak < 8 * 2 ** 20, f"numpy peak {peak / 2 ** 20:.1f} MiB"
    assert seconds < 2.0


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_load_image_big_photo_process_memory(photo):
    """Pillow's own buffers are invisible to tracemalloc: measure the process's peak RSS (VmHWM).

    Not ru_maxrss: Linux carries it across fork and exec from the (big) pytest process.
    """
    script = (
        "import json, re, sys\n"
        "from suite.apps.caption.data import load_image\n"
        "def hwm():\n"
        "    return int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
        "before = hwm()\n"
        "load_image(sys.argv[1])\n"
        "print(json.dumps({'before_kib': before, 'grew_kib': hwm() - before}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(photo)], cwd=REPO, capture_output=True, text=True,
                         check=True, timeout=120)
    grew = json.loads(out.stdout.strip().splitlines()[-1])["grew_kib"]
    assert grew < 30 * 1024, f"peak RSS grew {grew / 1024:.0f} MiB (a full decode needs 72 MiB)"


def _assert_one_line_naming(exc_info, path):
    msg = str(exc_info.value)
    assert str(path) in msg and "\n" not in msg


def test_load_image_errors(tmp_path, picture):
    cases = {}
    cases["missing"] = tmp_path / "nope.png"
    cases["empty"] = tmp_path / "empty.png"
    cases["empty"].write_bytes(b"")
    cases["text"] = tmp_path / "notes.png"
    cases["text"].write_text("this is not an image\n")
    buf = io.BytesIO()
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8))
    noisy.save(buf, "PNG")
    cases["truncated_png"] = tmp_path / "cut.png"
    cases["truncated_png"].write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    buf = io.BytesIO()
    noisy.save(buf, "JPEG", quality=90)
    cases["truncated_jpeg"] = tmp_path / "cut.jpg"
    cases["truncated_jpeg"].write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    cases["folder"] = tmp_path
    words = {"missing": "no such file", "empty": "empty", "text": "not an image", "truncated_png": "truncated",
             "truncated_jpeg": "truncated", "folder": "folder"}
    for name, path in cases.items():
        with pytest.raises(ImageError, match=words[name]) as exc_info:
            load_image(path)
        _assert_one_line_naming(exc_info, path)


# ----------------------------------------------------------------------------- dataset

TINY = dict(n_train=20, n_valid=5, n_test=5, n_combo=5, seed=3)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("caption")
    seen = []
    serial = build_dataset(root / "w0", workers=0, progress=lambda *a: seen.append(a), **TINY)
    parallel = build_dataset(root / "w2", workers=2, **TINY)
    return root, serial, parallel, seen


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "report.json"}


def test_build_dataset_is_deterministic_and_independent_of_workers(built, tmp_path):
    root, serial, parallel, _ = built
    a, b = _files(root / "w0"), _files(root / "w2")
    assert set(a) == set(b) and a == b  # byte-identical npz, PNG and tsv files
    for split in ("train", "combo", "alt"):
        assert serial["splits"][split]["sha256"] == parallel["splits"][split]["sha256"]
    other = build_dataset(tmp_path / "seed4", workers=0, **{**TINY, "seed": 4})
    assert other["splits"]["train"]["sha256"] != serial["splits"]["train"]["sha256"]


def test_rebuilding_into_the_same_folder_replaces_its_image_folders(built, tmp_path):
    """--force rebuilds a dataset in place: its own images/<split> folders are replaced, not refused."""
    root, serial, _, _ = built
    import shutil

    shutil.copytree(root / "w0", tmp_path / "again")
    build_dataset(tmp_path / "again", workers=0, **TINY)
    assert _files(tmp_path / "again") == _files(root / "w0")


def test_build_dataset_layout_and_report(built):
    root, report, _, seen = built
    out = root / "w0"
    assert {"train.npz", "valid.npz", "test.npz", "combo.npz", "alt.npz", "sketch.npz", "dark.npz",
            "report.json"} <= {p.name for p in out.iterdir()}
    for split in ("test", "combo", "alt", "sketch", "dark"):
        pngs = sorted((out / "images" / split).glob("*.png"))
        assert len(pngs) == 5
        table = read_captions_file(out / "images" / split / "captions.tsv")
        assert sorted(table) == [p.name for p in pngs]
    assert not (out / "images" / "train").exists()
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["seed"] == 3 and on_disk["held_out_combos"] == [list(p) for p in HELD_OUT_COMBOS]
    assert on_disk["splits"]["train"]["images"] == 20 and on_disk["splits"]["alt"]["style"] == "alt"
    assert on_disk["throughput"]["images_per_second"] > 0 and "suite caption data build" in on_disk["command"]
    assert on_disk["splits"]["sketch"]["style"] == "sketch" and on_disk["splits"]["dark"]["style"] == "dark"
    assert seen[-1] == (50, 50) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert on_disk["counts"] == {"train": 20, "valid": 5, "test": 5, "combo": 5, "alt": 5, "sketch": 5, "dark": 5}


def test_load_split_matches_scenes_and_splits(built):
    root = built[0] / "w0"
    for split in ("train", "valid", "test", "combo", "alt", "sketch", "dark"):
        images, refs, split_scenes = load_split(root, split)
        n = TINY["n_train"] if split == "train" else 5
        assert images.shape == (n, 3, 64, 64) and images.dtype == np.uint8
        assert len(refs) == len(split_scenes) == n
        for rs, s in zip(refs, split_scenes):
            check_scene(s)
            assert 1 <= len(rs) <= 5 and rs[0] == canonical_caption(s)
            assert all(score_caption(r, s)["relations_correct"] == len(s) - 1 for r in rs)
            held = {(o.colour, o.shape) for o in s.objects} & set(HELD_OUT_COMBOS)
            assert bool(held) == (split == "combo")
    test_images, _, test_scenes = load_split(root, "test")
    alt_images, _, alt_scenes = load_split(root, "alt")
    assert test_scenes == alt_scenes and not np.array_equal(test_images, alt_images)
    # the stored pixels are what load_image makes of the PNG a user would have
    names = load_names(root, "test")
    assert np.array_equal(load_image(root / "images" / "test" / names[0]), test_images[0] / np.float32(255))


def test_load_split_user_data_and_missing(built, tmp_path):
    root = built[0] / "w0"
    images, refs, split_scenes = load_split(root, "images/combo/captions.tsv")
    combo_images, combo_refs, _ = load_split(root, "combo")
    assert split_scenes is None
    assert np.array_equal(images, combo_images) and refs == combo_refs
    images2, refs2, names = load_user_split(root / "images" / "combo" / "captions.tsv")
    assert np.array_equal(images2, images) and names == load_names(root, "combo")
    with pytest.raises(DataError, match="build the dataset"):
        load_split(tmp_path, "train")
    with pytest.raises(DataError, match="no split"):
        load_split(root, "nonsense")
    (tmp_path / "caps.tsv").write_text("ghost.png\ta small red circle\n")
    with pytest.raises(ImageError, match="ghost.png"):
        load_split(tmp_path, "caps.tsv")


def test_build_dataset_rejects_bad_counts(tmp_path):
    with pytest.raises(ValueError, match="n_test"):
        build_dataset(tmp_path, n_test=0)


# ----------------------------------------------------------------------------- captions files

def test_read_captions_file_formats(tmp_path):
    tsv = tmp_path / "captions.tsv"
    tsv.write_text("a.png\ta small red circle\n\nb.png\ta large blue square\na.png\tthere is a small red circle\n")
    assert read_captions_file(tsv) == {"a.png": ["a small red circle", "there is a small red circle"],
                                       "b.png": ["a large blue square"]}
    token = tmp_path / "Flickr8k.token.txt"
    token.write_text("1000268201_693b08cb0e.jpg#0\tA child in a pink dress .\n"
                     "1000268201_693b08cb0e.jpg#1\tA girl going into a wooden building .\n")
    assert read_captions_file(token) == {"1000268201_693b08cb0e.jpg": [
        "A child in a pink dress .", "A girl going into a wooden building ."]}
    kaggle = tmp_path / "captions.txt"
    kaggle.write_text('image,caption\nx.jpg,"A dog, running ."\nx.jpg,A dog .\n')
    assert read_captions_file(kaggle) == {"x.jpg": ["A dog, running .", "A dog ."]}


@pytest.mark.parametrize("body, line, why", [
    ("a.png\tok\nb.png a caption without a tab\n", 2, "no tab"),
    ("a.png\tok\n\n\t caption with no name\n", 3, "empty image name"),
    ("a.png\t   \n", 1, "empty caption"),
])
def test_read_captions_file_malformed(tmp_path, body, line, why):
    path = tmp_path / "bad.tsv"
    path.write_text(body)
    with pytest.raises(CaptionsFileError, match=why) as exc_info:
        read_captions_file(path)
    assert f"{path}, line {line}:" in str(exc_info.value)


def test_read_captions_file_missing_and_binary(tmp_path):
    with pytest.raises(CaptionsFileError, match="no such"):
        read_captions_file(tmp_path / "none.tsv")
    (tmp_path / "bin.tsv").write_bytes(b"\xff\xfe\x00a\tb")
    with pytest.raises(CaptionsFileError, match="UTF-8"):
        read_captions_file(tmp_path / "bin.tsv")
    (tmp_path / "empty.tsv").write_text("\n\n")
    with pytest.raises(CaptionsFileError, match="no captions"):
        read_captions_file(tmp_path / "empty.tsv")


def test_scoring_against_references_agrees_with_scoring_against_the_scene():
    """A user's images have no scenes: the references stand in. On our own scenes the two scorers must agree on
    objects and sizes exactly, and on relations up to the pairs the references leave unstated."""
    from suite.apps.caption.scenes import score_against_references

    rng = np.random.default_rng(5)
    by_scene, by_refs = [], []
    for _ in range(300):
        scene = random_scene(rng)
        other = random_scene(rng)  # a wrong caption half the time
        hyp = canonical_caption(scene if rng.random() < 0.5 else other)
        refs = captions(scene, rng, n=5)
        by_scene.append(score_caption(hyp, scene))
        by_refs.append(score_against_references(hyp, refs))
    a, b = aggregate(by_scene), aggregate(by_refs)
    for key in ("object_set_accuracy", "size_accuracy", "object_recall", "object_precision"):
        assert a[key] == pytest.approx(b[key]), key
    assert b["relation_accuracy"] <= a["relation_accuracy"] and b["relation_accuracy"] > 0.8 * a["relation_accuracy"]
    assert score_against_references("a red blob", ["not in the grammar"]) is None


def test_all_combos_puts_every_pair_in_training_and_keeps_the_combo_split(tmp_path):
    from suite.apps.caption.data import build_dataset, load_split

    report = build_dataset(tmp_path / "all", n_train=60, n_valid=4, n_test=4, n_combo=4, workers=0, hold_out=False)
    assert report["held_out_combos"] == [] and report["combo_pairs"]
    _, _, scenes = load_split(tmp_path / "all", "train")
    pairs = {(o.colour, o.shape) for s in scenes for o in s.objects}
    assert pairs & set(HELD_OUT_COMBOS)
    _, _, combo = load_split(tmp_path / "all", "combo")
    assert all(any((o.colour, o.shape) in HELD_OUT_COMBOS for o in s.objects) for s in combo)


# ----------------------------------------------------------------------------- counting (twins)

def test_twin_scenes_are_captioned_as_groups_and_every_wording_scores_perfectly():
    rng = np.random.default_rng(5)
    seen = {1: 0, 2: 0}
    for _ in range(400):
        s = random_scene(rng, twins=0.5)
        found = groups(s.objects)
        if len(found) == len(s):
            continue
        seen[len(found)] += 1
        check_scene(s)
        refs = captions(s)
        assert refs[0] == canonical_caption(s) and all("two " in r for r in refs)
        for ref in refs:
            score = score_caption(ref, s)
            assert score["object_set_exact"] and score["relations_correct"] == score["relations_total"], ref
            assert score["objects_predicted"] == len(s)
    assert seen[1] > 10 and seen[2] > 10


def test_counting_is_scored():
    twins = Scene((obj("large", "red", "circle", 0.2, 0.3), obj("large", "red", "circle", 0.2, 0.7),
                   obj("small", "blue", "square", 0.75, 0.5)))
    check_scene(twins)
    good = score_caption("two large red circles left of a small blue square", twins)
    assert good["object_set_exact"] and good["relations_correct"] == 1 and good["objects_predicted"] == 3
    one = score_caption("a large red circle left of a small blue square", twins)  # misses the count
    assert not one["object_set_exact"] and one["objects_correct"] == 2
    said_two = score_caption("two large red circles", Scene(twins.objects[:1]))  # says two, there is one
    assert not said_two["object_set_exact"] and said_two["objects_predicted"] == 2
    wrong = score_caption("the two large red circles are above a small blue square", twins)
    assert wrong["relations_correct"] == 0
    assert parse_caption("a two large red circles") is None and parse_caption("two large red circle") is None
    assert parse_caption("there are two small green triangles").counts == (2,)
    refs = ["two large red circles left of a small blue square"]
    assert score_against_references(refs[0], refs)["object_set_exact"]
    assert not score_against_references("a large red circle left of a small blue square", refs)["object_set_exact"]


def test_random_scene_without_twins_is_unchanged_by_counting():
    """twins=0 draws no extra random number: builds without counting keep their scenes."""
    a = [random_scene(np.random.default_rng(k)) for k in range(30)]
    b = [random_scene(np.random.default_rng(k), twins=0.0) for k in range(30)]
    assert a == b and all(len(groups(s.objects)) == len(s) for s in a)


def test_input_size_stores_the_same_renderings_at_another_size_and_load_split_resizes(built, tmp_path):
    """--input-size changes only the letterboxed copy: the PNGs (the renderings) are byte-identical to the
    64-px build's, the arrays are what load_image makes of them at that size; load_split(size=) resizes."""
    from suite.apps.caption.data import at_size

    root = built[0] / "w0"
    report = build_dataset(tmp_path / "s32", workers=0, input_size=32, **TINY)
    assert report["input_size"] == 32
    for split in ("test", "alt"):
        assert (_files(tmp_path / "s32" / "images" / split) == _files(root / "images" / split))
    images, refs, scenes = load_split(tmp_path / "s32", "test")
    assert images.shape == (5, 3, 32, 32)
    name = load_names(tmp_path / "s32", "test")[0]
    assert np.array_equal(load_image(root / "images" / "test" / name, size=32), images[0] / np.float32(255))
    big, _, _ = load_split(tmp_path / "s32", "test", size=64)
    assert big.shape == (5, 3, 64, 64) and big.dtype == np.uint8
    assert load_split(root, "test", size=64)[0] is not None and at_size(images, 32) is images
    small = at_size(load_split(root, "test")[0], 32)  # box-filtered down from 64: close to the 32-px letterbox
    assert np.abs(small.astype(int) - images.astype(int)).mean() < 8
    with pytest.raises(ValueError, match="input_size must be a multiple of 16"):
        build_dataset(tmp_path / "bad", input_size=40, **TINY)
    assert not (tmp_path / "bad").exists()
