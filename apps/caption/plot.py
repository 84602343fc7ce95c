"""The attention picture: for every generated word, where on the image the decoder looked."""
import numpy as np


def attention_figure(image_path, caption, attention, out, grid, display=160):
    """Write a PNG: the image, then one panel per word (and </s>) with its attention over the image.

    attention : np.ndarray [shape=(words + 1, grid * grid)], rows summing to 1.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from suite.apps.caption.data import load_image
    from suite.fileio import atomic_path

    img = np.transpose(load_image(image_path, size=display), (1, 2, 0))  # (S, S, 3) in [0, 1]
    words = caption.split() + ["</s>"]
    rows = min(len(words), len(attention))
    n = rows + 1
    cols = min(n, 6)
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.0 * cols, 2.2 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(img)
    axes[0, 0].set_title("image", fontsize=9)
    for k in range(rows):
        a = np.asarray(attention[k], dtype=np.float32).reshape(grid, grid)
        heat = np.asarray(Image.fromarray(a / max(a.max(), 1e-9)).resize((display, display), Image.BILINEAR))
        ax = axes[(k + 1) // cols, (k + 1) % cols]
        ax.imshow(img)
        ax.imshow(heat, cmap="magma", alpha=0.6, vmin=0.0, vmax=1.0)
        ax.set_title(words[k], fontsize=9)
    fig.suptitle(caption, fontsize=10)
    fig.tight_layout()
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return out
