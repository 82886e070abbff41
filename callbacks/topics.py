"""The topic model's topics as words, written beside the checkpoint they belong to."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from utils.files import atomic_write

if TYPE_CHECKING:
    from lightning_modules.base import BaseTask

TOPICS_FILE = "topics.txt"


def format_topics(word_indices: torch.Tensor, words: list[str]) -> list[str]:
    """One line per topic: ``topic <k>: w1 w2 ...``."""
    return [f"topic {k}: " + " ".join(words[i] for i in row) for k, row in enumerate(word_indices.tolist())]


class TopicWordsWriter(Callback):
    """Writes ``topics.txt`` (the top words of every topic) into the run folder whenever the task's
    checkpoint metric (``monitor`` of the task) improves, so the file describes the best checkpoint's
    topics. Used by the NVDM and TopicBERT alike; tasks without a topic model are left alone.

    Args:
        top_words: words listed per topic.
    """

    def __init__(self, top_words: int = 10):
        self.top_words = top_words
        self.best: float | None = None
        self.written: Path | None = None

    def _improved(self, value: float, mode: str) -> bool:
        return self.best is None or (value < self.best if mode == "min" else value > self.best)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        monitor, mode = getattr(pl_module, "monitor", None), getattr(pl_module, "monitor_mode", "max")
        value = trainer.callback_metrics.get(monitor) if monitor else None
        task = cast("BaseTask", pl_module)  # every task is one; those without a topic model give None
        indices = task.topic_word_indices(self.top_words) if value is not None else None
        folder = Path(trainer.log_dir or trainer.default_root_dir)  # a collective under DDP
        if value is None or indices is None or not self._improved(float(value), mode):
            return
        self.best = float(value)
        if trainer.is_global_zero:
            datamodule = trainer.datamodule  # type: ignore[attr-defined]  # set by Lightning, not declared on Trainer
            lines = format_topics(indices, datamodule.vocabulary.words)
            with atomic_write(folder / TOPICS_FILE) as f:
                f.write("\n".join(lines) + "\n")
            self.written = folder / TOPICS_FILE

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict.get("best")
