"""Reading a built corpus back: a split as a Split (features, texts, voices, conditions)."""
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from suite.apps.speech.audio import load_audio
from suite.apps.speech.data.features import FEATURES, feature_dim, features
from suite.apps.speech.data.user import read_tsv_dataset
from suite.databuild import DataError

class _Frames(Sequence):
    """Per-utterance feature arrays of a Split, made float32 on access (stored float16, concatenated)."""

    def __init__(self, features, offsets):
        self._features, self._offsets = features, offsets

    def __len__(self):
        return len(self._offsets) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(f"utterance {i} out of range for {len(self)}")
        i %= len(self)
        return self._features[self._offsets[i]:self._offsets[i + 1]].astype(np.float32)  # (T_i, F)


@dataclass
class Split:
    """A featurised split: utterance i is features[offsets[i]:offsets[i+1]] (float16, (T_i, F)) and its labels.

    Indexing by position gives one utterance, ``split[i] -> (features float32 (T, F),
    text, voice, condition)``; indexing by name gives a column like a dict of
    lists: ``split["features"]`` (a sequence of float32 (T_i, F) arrays),
    ``split["texts"]``, ``split["voices"]``, ``split["conditions"]``.
    """

    features: np.ndarray   # (sum T, F) float16
    offsets: np.ndarray    # (n + 1,) int64
    text: list
    voice: list
    condition: list

    def __len__(self):
        return len(self.text)

    def keys(self):
        return ("features", "texts", "voices", "conditions")

    def __getitem__(self, i):
        if isinstance(i, str):
            columns = {"features": lambda: _Frames(self.features, self.offsets), "texts": lambda: self.text,
                       "voices": lambda: self.voice, "conditions": lambda: self.condition}
            if i not in columns:
                raise KeyError(f"{i!r}: a Split has columns {', '.join(self.keys())}")
            return columns[i]()
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} out of range for a split of {len(self)}")
        i %= len(self)
        return (self.features[self.offsets[i]:self.offsets[i + 1]].astype(np.float32), self.text[i],
                self.voice[i], self.condition[i])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def lengths(self):
        """Frames per utterance: np.ndarray [shape=(n,), dtype=int64]."""
        return np.diff(self.offsets)


def load_split(out_dir, name):
    """A split of a built corpus as a Split (``split[i]`` an utterance, ``split["texts"]`` a column).

    ``name`` is "train" or "valid" (read from <name>.npz), or a test folder
    ("test" = "test/clean", "test/snr20", "test/unseen-festival", or any folder
    holding a transcripts.tsv): its audio goes through load_audio and features(),
    exactly as a user's files would, and voice/condition come from utterances.tsv.
    """
    out_dir = Path(out_dir)
    if name in ("train", "valid"):
        path = out_dir / f"{name}.npz"
        if not path.exists():
            raise DataError(f"{path} not found: build the corpus first (suite speech data build)")
        with np.load(path) as z:
            saved = json.loads(z["feature_config"].item())  # 0-d (np.savez builds) or (1,) (write_npz)
            if feature_dim(saved) != feature_dim() or saved.get("n_mels") != FEATURES["n_mels"]:
                raise DataError(f"{path} was built with other features ({saved}); rebuild the corpus")
            return Split(z["features"], z["offsets"], z["text"].tolist(), z["voice"].tolist(),
                         z["condition"].tolist())
    folder = out_dir / ("test/clean" if name == "test" else name)
    rows = read_tsv_dataset(folder)
    meta = {}
    for utt in (folder / "utterances.tsv", folder.parent / "utterances.tsv"):
        if utt.exists():
            for line in utt.read_text(encoding="utf-8").splitlines()[1:]:
                cols = line.split("\t")
                meta.setdefault(cols[0], cols[1])
            break
    feats, texts, voices = [], [], []
    for path, text in rows:
        feats.append(features(load_audio(path, FEATURES["sr"])).astype(np.float16))
        texts.append(text)
        voices.append(meta.get(path.name, ""))
    lengths = np.array([len(f) for f in feats], np.int64)
    return Split(np.concatenate(feats) if feats else np.zeros((0, feature_dim()), np.float16),
                 np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), texts, voices,
                 [folder.name] * len(texts))
