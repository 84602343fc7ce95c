"""Pictures shared by apps (matplotlib, Agg backend: no screen needed)."""
import json

from suite.fileio import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curve(metrics_path, out_png):
    """Train and validation loss against step, from a trainer's metrics.jsonl."""
    train, valid = [], []
    with open(metrics_path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            (train if rec.get("split") == "train" else valid).append((rec["step"], rec["loss"]))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if train:
        ax.plot(*zip(*train), label="train", lw=1)
    if valid:
        ax.plot(*zip(*valid), "o-", label="validation", lw=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(out_png, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def gradient_norms(curves, out_png, title=""):
    """Log-scale ||dL/dh_t|| against the lag (T-1-t); curves: {label: norms over t}."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=100)
    for label, norms in curves.items():
        lag = list(range(len(norms) - 1, -1, -1))
        ax.semilogy(lag, norms, "--" if "initial" in label else "-", label=label, lw=1.5)
    ax.set_xlabel("lag T-1-t (steps before the loss)")
    ax.set_ylabel("||d loss / d h_t||")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    with atomic_path(out_png, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
