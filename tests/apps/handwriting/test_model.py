"""The handwriting network: its backward pass against finite differences, shapes, and a loss that falls."""
import tempfile

import numpy as np

from suite.apps.handwriting.model import HandwritingConfig, HandwritingModel, HandwritingTask
from suite.ctc_task import Alphabet
from suite.train import TrainConfig, Trainer
from tests.gradcheck import check_gradients

ALPHA = Alphabet.from_chars(["<blank>", " ", "a", "b", "c"])


def _tiny(dtype=np.float32, height=8):
    config = HandwritingConfig(vocab_size=ALPHA.size, height=height, channels=[2, 3, 2], hidden=3, layers=2,
                               dropout=0.0)
    return HandwritingModel(config).to(dtype)


def test_steps_are_a_quarter_of_the_columns():
    model = _tiny()
    feats = np.random.default_rng(0).integers(0, 256, (13, 2, 8)).astype(np.float32)
    logits, steps = model.forward(feats, np.array([13, 6]))
    assert logits.shape == (4, 2, ALPHA.size)  # 13 columns padded to 16: 4 steps
    assert list(steps) == [3, 1]


def test_reader_scores_only_the_lines_own_steps():
    """A line whose width is not whole pooling windows: `read` must see the same logits as training and validation
    (suite.ctc_task.split_logits), not the padded tail step past the line's length (it read as a stray quote)."""
    from suite.apps.handwriting.model import Reader
    from suite.ctc_task import split_logits

    model = _tiny()
    card = {"config": {"vocab_size": ALPHA.size}, "meta": {"alphabet": list(ALPHA.chars)}}
    reader = Reader(model, card, beam=1, use_lm=False)
    columns = np.random.default_rng(3).integers(0, 256, (4 * 5 + 3, 8)).astype(np.uint8)
    ours = reader.logits(columns)
    assert ours.shape == (5, ALPHA.size)
    np.testing.assert_allclose(ours, split_logits(model, [columns])[0], rtol=1e-5, atol=1e-6)


def test_reader_reads_at_the_models_width_and_maps_words_back_to_the_image():
    """meta.decoding.width_scale stretches the columns before the network; word x-ranges stay in image pixels."""
    from suite.apps.handwriting.lines import prepare_line
    from suite.apps.handwriting.model import Reader, widen
    from suite.ctc_task import split_logits

    model = _tiny(height=32)
    gray = np.full((40, 200), 255, np.uint8)
    gray[10:30, 20:180:6] = 0  # ink across the line
    line = prepare_line(gray)
    card = {"config": {"vocab_size": ALPHA.size}, "meta": {"alphabet": list(ALPHA.chars)}}
    plain = Reader(model, card, beam=1, use_lm=False)
    wide = Reader(model, card | {"meta": card["meta"] | {"decoding": {"width_scale": 1.5}}}, beam=1, use_lm=False)
    assert wide.width_scale == 1.5 and plain.width_scale == 1.0
    n = len(line.columns)
    assert len(widen(line.columns, 1.5)) == round(1.5 * n) and widen(line.columns, 1.0) is line.columns
    np.testing.assert_allclose(wide.logits(line.columns), split_logits(model, [widen(line.columns, 1.5)])[0],
                               rtol=1e-5, atol=1e-6)
    assert len(wide.logits(line.columns)) > len(plain.logits(line.columns))
    wide.decode = lambda logits: ("ab", [], [{"word": "ab", "start": 0, "end": len(logits)}])
    x1 = wide.read_line(line)["words"][0]["x1"]
    plain.decode = lambda logits: ("ab", [], [{"word": "ab", "start": 0, "end": len(logits)}])
    assert abs(x1 - plain.read_line(line)["words"][0]["x1"]) <= 8  # the line's end, either way


def test_tune_decoding_chooses_a_reading_width_on_validation():
    from suite.apps.handwriting.model import WIDTH_SCALES, tune_decoding

    model = _tiny(height=32)
    rng = np.random.default_rng(0)
    split = {"features": [rng.integers(0, 256, (40, 32)).astype(np.float32) for _ in range(4)],
             "texts": ["ab", "ba c", "1", "2"], "hands": ["x", "x", "digits", "digits"]}
    card = {"config": {"vocab_size": ALPHA.size}, "meta": {"alphabet": list(ALPHA.chars)}}
    chosen = tune_decoding(model, card, split, beam=2)
    assert chosen["width_scale"] in WIDTH_SCALES
    assert [w["width_scale"] for w in chosen["width_grid"]] == list(WIDTH_SCALES)
    best = min(w["greedy_cer"] for w in chosen["width_grid"])
    assert chosen["width_grid"][WIDTH_SCALES.index(chosen["width_scale"])]["greedy_cer"] == best


def test_whole_model_gradient_matches_finite_differences():
    model = _tiny(np.float64)
    rng = np.random.default_rng(1)
    for name, p in model.named_parameters():  # zero biases put padded columns exactly on ReLU's kink
        if name.endswith(".b"):
            p.value[:] = rng.normal(0, 0.1, p.value.shape)
    feats = rng.uniform(0, 255, (10, 2, 8))
    lengths = np.array([10, 7])
    model.train()
    logits, _ = model.forward(feats, lengths)
    weight = rng.normal(size=logits.shape)  # loss = sum(weight * logits): exercises every path back
    model.zero_grad()
    model.backward(weight)
    grads = {name: p.grad.copy() for name, p in model.named_parameters()}

    def loss():  # in training mode, as the gradient was taken (no dropout here); reading masks the padding
        return float(np.sum(weight * model.forward(feats, lengths)[0]))

    params = {name: p.value for name, p in model.named_parameters()}
    check_gradients(loss, params, grads, rtol=1e-4, atol=1e-8, sample=3, rng=rng, rule="approx")


def test_ctc_loss_falls_on_a_few_lines():
    rng = np.random.default_rng(0)
    texts = ["ab", "ba", "cab", "a b", "cc a", "bac"]
    feats = []
    for t in texts:  # each character a distinct stripe pattern, 8 columns wide
        cols = []
        for c in t:
            block = np.zeros((8, 8), np.uint8)
            block[:, {"a": slice(0, 3), "b": slice(3, 6), "c": slice(5, 8), " ": slice(0, 0)}[c]] = 255
            cols.append(block)
        feats.append(np.concatenate(cols))
    split = {"features": feats, "texts": texts}
    model = _tiny()
    task = HandwritingTask(split, split, ALPHA, batch_size=6, augment_lines=False)
    first = task.evaluate(model)["loss"]
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model, task, TrainConfig(steps=150, lr=0.03, warmup=5, eval_every=150, seed=0), out,
                          model_config={"model": "x"}, meta={}, quiet=True)
        trainer.fit()
    last = task.evaluate(model)["loss"]
    assert last < 0.5 * first, (first, last)


def test_reshape_line_changes_width_and_glyph_height_but_keeps_ctc_feasible():
    from suite.apps.handwriting.model import ctc_min_steps, reshape_line

    rng = np.random.default_rng(0)
    columns = np.zeros((60, 32), np.uint8)
    columns[10:50, 8:24] = 255  # one block of ink rows 8-23
    labels = [1, 2, 2, 3, 4, 5, 6, 7, 8, 9]  # a repeat: CTC needs 11 steps, the line gives 15
    assert ctc_min_steps(labels) == 11 and ctc_min_steps([]) == 1
    widths, heights = set(), set()
    for _ in range(200):
        out = reshape_line(columns, rng, labels)
        assert out.shape[1] == 32 and out.dtype == np.float32
        assert out.shape[0] // 4 >= ctc_min_steps(labels)  # never too narrow for its text
        widths.add(out.shape[0])
        rows = np.flatnonzero(out.max(axis=0) > 128)
        heights.add(rows[-1] - rows[0] + 1)
    assert min(widths) < 60 < max(widths) and max(widths) >= 80  # both narrower and wider than the original
    assert min(heights) < 12 and max(heights) >= 15             # glyphs shrunk on some lines, kept on others


def test_geometry_reshapes_only_training_batches_and_only_when_asked():
    rng = np.random.default_rng(1)
    feats = [np.full((40 + 4 * i, 32), 200, np.uint8) for i in range(6)]
    split = {"features": feats, "texts": ["ab", "abc", "a b", "cab", "bca", "ab c"]}
    alphabet = Alphabet.from_chars(["_", " ", "a", "b", "c"])
    plain = HandwritingTask(split, split, alphabet, batch_size=6, augment_lines=False)
    wide = HandwritingTask(split, split, alphabet, batch_size=6, augment_lines=False, geometry=1.0)
    got_plain, _ = plain.batch_items(np.arange(6), rng)
    got_wide, _ = wide.batch_items(np.arange(6), rng)
    assert [len(f) for f in got_plain] == [len(f) for f in feats]
    assert [len(f) for f in got_wide] != [len(f) for f in feats]


def test_warp_line_redraws_a_line_slanted_and_distorted_each_time():
    from suite.apps.handwriting.model import warp_line

    columns = np.zeros((60, 32), np.uint8)
    columns[20:24, 4:28] = 255  # one upright stroke, 4 columns wide
    outs = [warp_line(columns, np.random.default_rng(seed)) for seed in range(20)]
    for out in outs:
        assert out.shape == (68, 32) and out.dtype == np.float32  # 4 blank columns added at each end
        assert 0.6 < out.sum() / columns.sum() < 1.4  # moved and stretched a little, not lost
    np.testing.assert_array_equal(outs[0], warp_line(columns, np.random.default_rng(0)))  # seeded
    # the stroke's slant: its top and bottom ink columns move apart, either way, by different amounts
    slants = [float(np.average(np.arange(68), weights=o[:, 6]) - np.average(np.arange(68), weights=o[:, 25]))
              for o in outs]
    assert min(slants) < -2 and max(slants) > 2 and len({round(x, 3) for x in slants}) == 20


def test_warp_only_on_training_batches_and_only_when_asked():
    rng = np.random.default_rng(1)
    feats = [np.full((40 + 4 * i, 32), 200, np.uint8) for i in range(6)]
    split = {"features": feats, "texts": ["ab", "abc", "a b", "cab", "bca", "ab c"]}
    alphabet = Alphabet.from_chars(["_", " ", "a", "b", "c"])
    warped = HandwritingTask(split, split, alphabet, batch_size=6, augment_lines=False, warp=1.0)
    got, _ = warped.batch_items(np.arange(6), rng)
    assert [len(f) for f in got] == [len(f) + 8 for f in feats]
    plain = HandwritingTask(split, split, alphabet, batch_size=6, augment_lines=False)
    assert [len(f) for f in plain.batch_items(np.arange(6), rng)[0]] == [len(f) for f in feats]


def test_reading_many_files_batches_their_lines_and_reads_each_as_alone(tmp_path):
    """read_files: the lines of several files (a page, lines of other widths, a blank image, a broken file) go
    through the network together; each file's result is what reading it alone gives, and a broken file is its
    ImageError in its place."""
    from PIL import Image

    from suite.apps.handwriting.model import Reader
    from suite.images import ImageError

    model = _tiny(height=32)
    card = {"config": {"vocab_size": ALPHA.size}, "meta": {"alphabet": list(ALPHA.chars)}}
    reader = Reader(model, card, beam=1, use_lm=False)
    rng = np.random.default_rng(5)
    paths = []
    for k, (h, w, rows) in enumerate([(40, 300, 1), (40, 90, 1), (200, 260, 3), (50, 50, 0)]):
        gray = np.full((h, w), 255, np.uint8)
        for r in range(rows):
            top = 10 + r * 60
            gray[top:top + 20, 10:w - 10] = np.where(rng.random((20, w - 20)) < 0.4, 0, 255)
        paths.append(tmp_path / f"{k}.png")
        Image.fromarray(gray).save(paths[-1])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    paths.insert(2, tmp_path / "broken.png")
    together = list(reader.read_files(paths, batch=3))  # two chunks
    assert isinstance(together[2], ImageError) and len(together) == len(paths)
    assert [len(r["lines"]) for i, r in enumerate(together) if i != 2] == [1, 1, 3, 0]
    for path, result in zip(paths, together):
        if path.name == "broken.png":
            continue
        alone = reader.read_files([path])
        alone = next(alone)
        assert result["file"] == str(path) and len(result["lines"]) == len(alone["lines"])
        for a, b in zip(result["lines"], alone["lines"]):
            assert a["box"] == b["box"] and a["text"] == b["text"]
            assert abs(a["confidence"] - b["confidence"]) < 1e-4
    single = [reader.read_line(line) for line in reader.read_file(paths[3], with_lines=True)[1]]
    assert [r["text"] for r in single] == [r["text"] for r in together[3]["lines"]]


def test_a_line_gives_the_same_logits_in_any_batch_when_reading():
    """In eval mode the columns past a line's own width are zeroed after each convolution, so batching lines of
    different widths (evaluate) gives each the logits it has alone (read); in training mode they would differ,
    since a convolution of the zero padding is not zero (its bias)."""
    from suite.ctc_task import split_logits

    model = _tiny(height=32)
    for layer in model.conv:
        if hasattr(layer, "b"):
            layer.b.value[:] = 0.5  # a bias that survives the ReLU: what leaks into the padding when unmasked
    rng = np.random.default_rng(7)
    lines = [rng.integers(0, 256, (w, 32)).astype(np.float32) for w in (37, 64, 21, 50)]
    model.eval()
    together = split_logits(model, lines)
    for line, logits in zip(lines, together):
        np.testing.assert_allclose(logits, split_logits(model, [line])[0], rtol=1e-5, atol=1e-6)
    model.train()
    unmasked = split_logits(model, lines)
    assert not np.allclose(unmasked[2], together[2], atol=1e-4)  # the short line, batched with wider ones
