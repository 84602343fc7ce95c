"""Caption beam search over many images: 32 images' beams a decoder step (how `suite caption evaluate` and
`export` search) against one image at a time, with the shipped model, one core, after compile.

Reads N images (default 200) of a built dataset's test split (data/caption-hollow, else data/caption; without
one, the example image with noise added). Prints one JSON object: images a second each way, the ratio, and
whether every image got the same beams (tokens) and log-probabilities to 1e-5 both ways.

    .venv/bin/python bench/bench_caption_beam.py [--images 200] [--model DIR]
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]


def test_images(n, size):
    """(uint8 (n, 3, size, size) images, where they came from)."""
    import numpy as np

    from suite.apps.caption.data import load_image, load_split

    for name in ("caption-hollow", "caption"):
        folder = ROOT / "data" / name
        if (folder / "test.npz").is_file():
            return load_split(folder, "test", size=size)[0][:n], f"data/{name} test split"
    image = (load_image(ROOT / "data" / "examples" / "shapes.png", size=size) * 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    noisy = np.clip(image[None].astype(int) + rng.integers(-20, 21, (n,) + image.shape), 0, 255)
    return noisy.astype(np.uint8), "data/examples/shapes.png with noise"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()

    import numpy as np

    from suite.apps.caption.model import caption_beams, load_model
    from suite.info import cpu_model
    from suite.shipped import default_model_dir

    model, vocab, _ = load_model(args.model or default_model_dir("caption"))
    images, source = test_images(args.images, model.config.input_size)
    caption_beams(model, vocab, images[:2], batch=2)  # compile (numba's cache makes this quick)
    result = {"cpu": cpu_model(), "threads": 1, "python": sys.version.split()[0], "images": len(images),
              "source": source, "beam": 5}
    runs = {}
    for name, batch in (("one_at_a_time", 1), ("batched_32", 32)):
        t0 = time.perf_counter()
        runs[name] = caption_beams(model, vocab, images, beam=5, batch=batch)
        result[name] = {"images_per_s": round(len(images) / (time.perf_counter() - t0), 1)}
    result["speedup"] = round(result["batched_32"]["images_per_s"] / result["one_at_a_time"]["images_per_s"], 2)
    result["same_beams"] = all(
        [h["tokens"] for h in a] == [h["tokens"] for h in b]
        and np.allclose([h["log_prob"] for h in a], [h["log_prob"] for h in b], atol=1e-5)
        for a, b in zip(runs["one_at_a_time"], runs["batched_32"]))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
