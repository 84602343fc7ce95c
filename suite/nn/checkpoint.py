"""Checkpoints that describe themselves: weights beside the config that rebuilds the model.

A checkpoint is a directory:
  model.safetensors   the arrays (safetensors: a JSON header and raw bytes, no pickle)
  config.json         {"format_version", "config", "meta", "tensors", "weights_sha256"}
where "tensors" lists every array's shape and dtype and "weights_sha256" is
the hash of model.safetensors. Both are written by save_checkpoint, so on load
a weights file that does not belong to its config (a half-finished copy, a
file edited by hand, flipped bytes) is an error and not a silently wrong model.

Each file is written to a temporary file in the same directory and moved into
place with os.replace, so a crash never leaves a half-written file under the
real name; a crash between the two moves leaves a weights file whose hash does
not match the config, which load_checkpoint reports.

Every problem on load raises CheckpointError (a ValueError) with one line that
names the file, e.g.
  data/models/x/model.safetensors: layers.0.W_hh has shape (64, 256), config expects (128, 512)
"""
import hashlib
import json
import os

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from suite.fileio import write_bytes

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not match its config (one-line message)."""


def save_checkpoint(path, model_state, config, meta=None):
    """Write <path>/model.safetensors and <path>/config.json atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Directory, created if needed.
    model_state : dict[str, np.ndarray]
        e.g. model.state_dict().
    config : dict
        Everything needed to rebuild the model (JSON-serialisable).
    meta : dict or None
        Provenance: data, command, seed, metrics, date (JSON-serialisable).
    """
    path = os.fspath(path)
    state = {}
    for name, value in model_state.items():
        if not isinstance(name, str):
            raise TypeError(f"save_checkpoint: tensor names must be str, got {name!r}")
        state[name] = np.ascontiguousarray(value)
    blob = st_save(state)  # bytes; raises on unsupported dtypes before anything is written
    card = {
        "format_version": FORMAT_VERSION,
        "config": config,
        "meta": meta or {},
        "tensors": {k: {"shape": list(v.shape), "dtype": v.dtype.name} for k, v in state.items()},
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
    }
    text = dumps_card(card)  # raises TypeError if not JSON
    os.makedirs(path, exist_ok=True)
    write_bytes(os.path.join(path, WEIGHTS), blob)
    write_bytes(os.path.join(path, CONFIG), text.encode("utf-8"))


COMPACT_OVER = 1 << 16  # a meta value whose JSON is longer than this is written on one line


def dumps_card(card):
    """config.json's text: indented for reading, except meta values over COMPACT_OVER characters (a character
    LM's counts), written compactly in place (indenting an LM made a handwriting config.json 6x larger)."""
    meta, compact = card.get("meta"), {}
    if isinstance(meta, dict):
        meta = dict(meta)
        for key, value in meta.items():
            text = json.dumps(value, separators=(",", ":"))
            if len(text) > COMPACT_OVER:
                token = f"@@suite-compact-{key}@@"
                compact[json.dumps(token)] = text
                meta[key] = token
        card = dict(card, meta=meta)
    out = json.dumps(card, indent=2, sort_keys=False)
    for token, text in compact.items():
        out = out.replace(token, text, 1)
    return out + "\n"


def read_card(path):
    """The parsed config.json of a checkpoint (config, meta, tensor list); checked."""
    filename = os.path.join(os.fspath(path), CONFIG)
    try:
        with open(filename, "rb") as f:
            card = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{filename}: no such file") from None
    except OSError as e:
        raise CheckpointError(f"{filename}: cannot read ({e.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{filename}: not valid JSON ({_one_line(e)})") from None
    if not isinstance(card, dict):
        raise CheckpointError(f"{filename}: expected a JSON object, got {type(card).__name__}")
    version = card.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{filename}: format_version is {version!r}, this suite "
                              f"reads {FORMAT_VERSION}")
    for key, kind in (("config", dict), ("meta", dict), ("tensors", dict),
                      ("weights_sha256", str)):
        if not isinstance(card.get(key), kind):
            raise CheckpointError(f"{filename}: '{key}' is missing or not a {kind.__name__}")
    return card


def load_checkpoint(path, expect=None, card=None):
    """Read a checkpoint written by save_checkpoint.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint directory.
    expect : dict[str, np.ndarray] or None
        Optionally the state the caller's model has (e.g. model.state_dict() of
        a model built from the config): names and shapes must then match too.
    card : dict or None
        read_card(path), when the caller has read it already: config.json is then
        parsed once (a model with a stored LM has a config of several MB).

    Returns
    -------
    state : dict[str, np.ndarray]
    config : dict
        The config given to save_checkpoint (meta is in read_card(path)["meta"]).
    """
    card = read_card(path) if card is None else card
    filename = os.path.join(os.fspath(path), WEIGHTS)
    try:
        with open(filename, "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        raise CheckpointError(f"{filename}: no such file") from None
    except OSError as e:
        raise CheckpointError(f"{filename}: cannot read ({e.strerror})") from None
    if hashlib.sha256(blob).hexdigest() != card["weights_sha256"]:
        raise CheckpointError(f"{filename}: contents do not match the sha256 recorded in "
                              f"{CONFIG} (corrupt, truncated, or from another save)")
    try:
        state = st_load(blob)
    except (SafetensorError, ValueError, TypeError) as e:
        raise CheckpointError(f"{filename}: not a readable safetensors file "
                              f"({_one_line(e)})") from None
    expected = {k: (tuple(v.get("shape", ())), v.get("dtype")) for k, v in card["tensors"].items()}
    _check_state(filename, state, expected, "config")
    if expect is not None:
        _check_state(filename, state,
                     {k: (np.shape(v), np.asarray(v).dtype.name) for k, v in expect.items()},
                     "model", check_dtype=False)
    return {k: state[k] for k in expected}, card["config"]  # in the order they were saved


def _check_state(filename, state, expected, who, check_dtype=True):
    """Raise CheckpointError for the first missing/unexpected/misshapen/mistyped tensor."""
    for name, (shape, dtype) in expected.items():
        if name not in state:
            raise CheckpointError(f"{filename}: missing tensor {name} ({who} expects "
                                  f"shape {shape})")
        value = state[name]
        if value.shape != shape:
            raise CheckpointError(f"{filename}: {name} has shape {value.shape}, {who} "
                                  f"expects {shape}")
        if check_dtype and value.dtype.name != dtype:
            raise CheckpointError(f"{filename}: {name} has dtype {value.dtype.name}, {who} "
                                  f"expects {dtype}")
    extra = sorted(set(state) - set(expected))
    if extra:
        raise CheckpointError(f"{filename}: unexpected tensor {extra[0]}"
                              + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
                              + f", not in the {who}")


def _one_line(e):
    return " ".join(str(e).split()) or type(e).__name__
