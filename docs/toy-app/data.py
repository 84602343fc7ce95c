"""The toy dataset: sequences of numbers in [-1, 1] and their sum, built per item from its own seed."""
import numpy as np

from suite.databuild import DataError, check_data_dir, item_rng, read_npz, read_report, write_npz, write_report

FORMAT_VERSION = 1
SPLIT_IDS = {"train": 0, "valid": 1, "test": 2}  # the item seeds' split field: fixed once, never renumbered
T = 12  # numbers per sequence


def make_item(seed, split, index):
    values = item_rng(seed, SPLIT_IDS[split], index).uniform(-1, 1, T).astype(np.float32)  # (T,)
    return values, np.float32(values.sum())


def build_dataset(out, n_train=2000, n_valid=200, n_test=200, seed=0, force=False, command=None):
    """Write out/{train,valid,test}.npz and out/report.json; returns the report."""
    out = check_data_dir(out, force, "toy")
    out.mkdir(parents=True, exist_ok=True)
    counts = {"train": n_train, "valid": n_valid, "test": n_test}
    for split, n in counts.items():
        items = [make_item(seed, split, i) for i in range(n)]
        write_npz(out / f"{split}.npz", {"x": np.stack([x for x, _ in items]), "y": np.array([y for _, y in items])})
    return write_report(out, {"seed": seed, "counts": counts, "T": T, "command": command}, FORMAT_VERSION)


def load_split(data_dir, split):
    """(x (N, T) float32, y (N,) float32) of a built split; DataError if it is not there."""
    read_report(data_dir, FORMAT_VERSION, app="toy")
    arrays = read_npz(f"{data_dir}/{split}.npz", what="toy dataset")
    if set(arrays) != {"x", "y"}:
        raise DataError(f"{data_dir}/{split}.npz: not a toy split; rebuild with --force")
    return arrays["x"], arrays["y"]
