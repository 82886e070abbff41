"""What a checkpoint carries so that inference needs neither the training data nor the hub.

A model's predictions depend on more than its weights: the label names (and whether the task is
multi-label), the topic model's vocabulary, the tf-idf vectorizer and the encoder's tokenizer and
configuration. The data module saves them with every checkpoint (:meth:`InferenceAssets.to_state`);
restoring one (``--data.restore_from``, set by the CLI for ``validate``/``test``/``predict``) reads
them back instead of rebuilding them from the training split, and the encoder is rebuilt from its
configuration (the weights come from the checkpoint), never downloaded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.formats import DataError
from utils.pretrained import WEIGHTS_IN_CHECKPOINT, load_pretrained

STATE_KEY = "inference_assets"
# the tf-idf settings that decide what a vector holds (datamodules.views builds the vectorizer)
TFIDF_SETTINGS = ("sublinear_tf", "ngram_range", "min_df", "max_features", "lowercase", "norm", "use_idf")


@dataclass
class InferenceAssets:
    """Everything but the weights that turns texts into a model's inputs and its outputs into labels.

    ``encoder_files`` maps file names of the tokenizer and encoder configuration to their content
    (text, or ``base64:`` for binary files such as a SentencePiece model); ``tfidf`` holds the
    vectorizer's terms in column order, their idf and its settings; ``settings`` the data settings
    that fix the inputs (N, p, bag-of-words and tf-idf options)."""

    label_names: list[str]
    multi_label: bool
    settings: dict[str, Any]
    vocabulary: list[str] | None = None
    tfidf: dict[str, Any] | None = None
    encoder_files: dict[str, str] | None = None
    dataset: str | None = None  # the training data's name (runs that read no data are filed under it)
    stopwords: list[str] | None = None  # the topic model's, so words are counted as in training

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, checkpoint_path: str) -> InferenceAssets:
        import torch

        found = cls.from_checkpoint(torch.load(checkpoint_path, map_location="cpu", weights_only=True, mmap=True))
        if found is None:
            raise DataError(
                f"{checkpoint_path} predates self-contained checkpoints (it holds no inference assets); leave "
                "--data.restore_from unset to rebuild them from the training data."
            )
        return found

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> InferenceAssets | None:
        """The assets a checkpoint's data module saved; None for checkpoints from before they were."""
        for value in checkpoint.values():
            if isinstance(value, dict) and STATE_KEY in value:
                return cls(**value[STATE_KEY])
        return None


def encoder_files(name: str) -> dict[str, str]:
    """The tokenizer's files and the encoder's configuration, as ``save_pretrained`` writes them."""
    from transformers import AutoConfig, AutoTokenizer

    with tempfile.TemporaryDirectory() as folder:
        load_pretrained(AutoTokenizer, name).save_pretrained(folder)
        load_pretrained(AutoConfig, name).save_pretrained(folder)
        files = {}
        for path in sorted(Path(folder).iterdir()):
            raw = path.read_bytes()
            try:
                files[path.name] = raw.decode("utf-8")
            except UnicodeDecodeError:
                files[path.name] = "base64:" + base64.b64encode(raw).decode("ascii")
    return files


def materialise(files: dict[str, str], cache_root: Path, trained_with: str) -> Path:
    """A folder holding ``files`` (and the marker that the weights live in the checkpoint), under
    the cache at ``encoders/<content digest>/<the encoder's name>`` (so that checkpoints, which name
    encoders by their last path part, still match), written once and atomically (a rename of a
    complete folder)."""
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_root / "encoders" / digest / Path(trained_with).name
    if (folder / WEIGHTS_IN_CHECKPOINT).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".staging."))
    write_files(staging, files)
    (staging / WEIGHTS_IN_CHECKPOINT).write_text("The encoder's weights are in the checkpoint these files came from.\n")
    try:
        os.rename(staging, folder)
    except OSError:  # another process wrote the same folder first
        for path in staging.iterdir():
            path.unlink()
        staging.rmdir()
    return folder


def write_files(folder: Path, files: dict[str, str]) -> None:
    """``encoder_files`` back as files (binary ones from their base64 text)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        raw = base64.b64decode(content[7:]) if content.startswith("base64:") else content.encode("utf-8")
        (folder / name).write_bytes(raw)


def tfidf_state(vectorizer) -> dict[str, Any]:
    terms = [""] * len(vectorizer.vocabulary_)
    for term, column in vectorizer.vocabulary_.items():
        terms[column] = term
    params = vectorizer.get_params()
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items() if k in TFIDF_SETTINGS}
    return {"terms": terms, "idf": vectorizer.idf_.astype(np.float64).tolist(), "settings": settings}


def tfidf_from_state(state: dict[str, Any]):
    """The fitted vectorizer back: the same terms in the same columns with the same idf."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    settings = dict(state["settings"])
    settings["ngram_range"] = tuple(settings["ngram_range"])
    settings.pop("max_features", None)
    settings.pop("min_df", None)  # both only shape the fit; the vocabulary below is the result
    vectorizer = TfidfVectorizer(vocabulary=state["terms"], dtype=np.float32, **settings)
    vectorizer.idf_ = np.asarray(state["idf"], dtype=np.float64)
    return vectorizer
