"""The alignment picture: which source subwords each output subword attended to."""
import numpy as np


def alignment_figure(result, sub, lang, out, force=False):
    """Write a PNG heat map (output subwords x source subwords) of one translated message."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from suite.apps.translate.placeholders import mask
    from suite.fileio import atomic_path

    src = [sub.sp.id_to_piece(i) for i in sub.encode_source(mask(result["source"]).text, lang)]
    out_pieces = list(result["pieces"]) + ["</s>"]
    att = np.asarray(result["attention"], dtype=np.float32)[:len(out_pieces), :len(src)]
    show = lambda p: p.replace("\u2581", "_") if not (0xE000 <= ord(p[-1]) < 0xE100) else f"<ph{ord(p[-1]) - 0xE000}>"  # noqa: E731
    fig, ax = plt.subplots(figsize=(0.45 * len(src) + 2, 0.4 * len(out_pieces) + 1.5))
    ax.imshow(att, cmap="magma", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(src)), [show(p) for p in src], rotation=90, fontsize=8)
    ax.set_yticks(range(len(out_pieces)), [show(p) for p in out_pieces], fontsize=8)
    ax.set_title(f"{result['source'][:60]} -> {result['text'][:60]}", fontsize=9)
    fig.tight_layout()
    with atomic_path(out, force=force, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return out
