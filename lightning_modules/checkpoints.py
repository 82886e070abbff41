"""Checkpoints that do not fit the configured model fail with a message, not a shape error."""

from __future__ import annotations

from pathlib import Path

# Hyperparameters that fix the shapes or meaning of the weights; a checkpoint must agree on each it has.
IDENTITY_KEYS = ("num_labels", "multi_label", "vocab_size", "num_features", "encoder", "use_topic_model",
                 "num_topics", "nvdm_hidden_size", "hidden_size", "embed_dim")  # fmt: skip


class CheckpointMismatchError(ValueError):
    """A checkpoint that does not fit the configured model; the message says what differs."""


def record_task(module, checkpoint: dict) -> None:
    checkpoint["task"] = type(module).__name__


def check_checkpoint(module, checkpoint: dict) -> None:
    """Raise when ``checkpoint`` was written by another kind of task or for other data or sizes."""
    fix = ("Load it with the config and dataset it was trained with (its run folder holds config.yaml), "
           "or fit a new model for this data.")  # fmt: skip
    task = checkpoint.get("task")
    if task is not None and task != type(module).__name__:
        raise CheckpointMismatchError(f"The checkpoint holds a {task}, but the config builds a "
                                      f"{type(module).__name__}. {fix}")  # fmt: skip
    found, now = checkpoint.get("hyper_parameters", {}), module.hparams
    differ = [f"{k}: checkpoint {found[k]!r} vs now {now[k]!r}" for k in IDENTITY_KEYS
              if k in found and k in now and _normalised(found[k]) != _normalised(now[k])]  # fmt: skip
    if differ:
        raise CheckpointMismatchError(f"The checkpoint does not fit this model and data ({'; '.join(differ)}). {fix}")


def check_checkpoint_class(path: str, configured: str | None) -> None:
    """Before LightningCLI swaps the configured model class for the one a checkpoint names: refuse
    a checkpoint of another task (say a topic model's given to a classifier config)."""
    import torch

    hparams = torch.load(path, weights_only=True, map_location="cpu", mmap=True).get("hyper_parameters", {})
    found = hparams.get("_class_path")
    if found and configured and found.rsplit(".", 1)[-1] != configured.rsplit(".", 1)[-1]:
        raise CheckpointMismatchError(f"The checkpoint {path} holds a {found}, but the config builds a {configured}. "
                                      "Use the config the checkpoint was trained with (its run folder holds "
                                      "config.yaml).")  # fmt: skip


def _normalised(value):
    """Encoder paths compare by folder name, so a run moved to another machine still loads."""
    return Path(value).name if isinstance(value, str) and ("/" in value or "\\" in value) else value
