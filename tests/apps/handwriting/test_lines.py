"""Line preparation and page segmentation: polarity, blank images, height, deskew, cutting a page into lines."""
import numpy as np
import pytest
from PIL import Image

from suite.apps.handwriting.data import HANDS, find_hands
from suite.apps.handwriting.lines import LINE_HEIGHT, deskew_angle, ink_map, page_lines, prepare_line, segment_page
from suite.apps.handwriting.render import render_font_line

HAND = find_hands("train")[0]
needs_fonts = pytest.mark.skipif(not HAND, reason="handwriting fonts not installed (make apt)")


def _line(text="hello world 42", seed=0, height=40):
    return render_font_line(text, HAND[0][1], np.random.default_rng(seed), height=height, distort=False)


def _page(texts, gap=20, seed=0):
    lines = [_line(t, seed + i) for i, t in enumerate(texts)]
    w = max(l.shape[1] for l in lines) + 40
    page = np.full((sum(l.shape[0] for l in lines) + gap * (len(lines) + 1), w), 240, np.uint8)
    y = gap
    for l in lines:
        page[y:y + l.shape[0], 20:20 + l.shape[1]] = np.minimum(l, 240)
        y += l.shape[0] + gap
    return page


def test_blank_and_flat_images_hold_no_ink():
    assert ink_map(np.full((40, 200), 230, np.uint8)) is None
    noise = np.random.default_rng(0).integers(225, 240, (40, 200)).astype(np.uint8)
    assert ink_map(noise) is None
    assert prepare_line(np.zeros((1, 1), np.uint8)) is None


@needs_fonts
def test_inverted_line_gives_the_same_ink():
    gray = _line()
    a, b = prepare_line(gray), prepare_line(255 - gray)
    assert a.columns.shape == b.columns.shape
    assert np.mean(np.abs(a.columns.astype(int) - b.columns.astype(int))) < 8


@needs_fonts
@pytest.mark.parametrize("height", [20, 40, 120])
def test_any_height_becomes_the_model_height_with_the_aspect_kept(height):
    gray = _line(height=height)
    line = prepare_line(gray)
    assert line.columns.shape[1] == LINE_HEIGHT and line.columns.dtype == np.uint8
    left, top, right, bottom = line.box
    assert abs(len(line.columns) - 8 - (right - left) / line.scale) <= 2  # 4 margin columns each side
    assert line.image_x(4) == pytest.approx(left, abs=1)


@needs_fonts
def test_page_is_cut_into_its_lines_top_to_bottom():
    page = _page(["first line here", "the second one", "and a third"])
    bands = segment_page(ink_map(page))
    assert len(bands) == 3 and all(a < b for a, b in bands) and bands[0][1] < bands[1][0] < bands[2][0]
    lines = page_lines(page)
    assert len(lines) == 3 and [l.box[1] for l in lines] == sorted(l.box[1] for l in lines)


@needs_fonts
def test_one_line_image_is_one_line_even_with_dots_above():
    lines = page_lines(_line("i j i j ij ii jj"))
    assert len(lines) == 1


@needs_fonts
def test_deskew_finds_a_small_rotation():
    page = _page(["a rather long line of text here", "another long line of text too", "and the third long line"])
    rotated = np.asarray(Image.fromarray(page).rotate(-3, resample=Image.Resampling.BILINEAR, fillcolor=240))
    angle = deskew_angle(ink_map(rotated) > 0.3)
    assert angle == pytest.approx(3, abs=0.75)
    assert len(page_lines(rotated)) == 3


def test_every_hand_is_in_exactly_one_split():
    splits = {}
    for hand, _, split, _ in HANDS:
        assert hand not in splits
        splits[hand] = split
    assert set(splits.values()) == {"train", "valid", "test"}
