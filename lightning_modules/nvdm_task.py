"""Pretraining the NVDM topic model on its own, before TopicBERT fine-tuning (as the paper does)."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import torch
from torchmetrics import MeanMetric

from callbacks.files import atomic_write
from lightning_modules.checkpoints import check_checkpoint, record_task
from models.nvdm import NVDM, Activation

log = logging.getLogger(__name__)


def format_topics(word_indices: torch.Tensor, words: list[str]) -> list[str]:
    """One line per topic: ``topic <k>: w1 w2 ...``."""
    return [f"topic {k}: " + " ".join(words[i] for i in row) for k, row in enumerate(word_indices.tolist())]


class NVDMTask(pl.LightningModule):
    """Trains the NVDM on bag-of-words batches by minimising the negative ELBO.

    Logs ``val_perplexity`` (exp of the mean per-word bound over documents, as in Miao et al.) for
    early stopping and checkpoint selection, and writes the top words of every topic to
    ``topics.txt`` in the run folder whenever validation perplexity improves.

    Args:
        vocab_size: topic-model vocabulary size (linked from the data).
        num_topics: K.
        hidden_size: width of the encoder MLP.
        activation: non-linearity of the encoder MLP.
        num_samples: S, posterior samples per training step.
        lr: Adam learning rate.
        top_words: words per topic written to ``topics.txt``.
    """

    def __init__(
        self,
        vocab_size: int = 2000,
        num_topics: int = 100,
        hidden_size: int = 256,
        activation: Activation = "sigmoid",
        num_samples: int = 1,
        lr: float = 1e-3,
        top_words: int = 10,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = NVDM(vocab_size, num_topics, hidden_size, activation, num_samples)
        self.val_log_perplexity = MeanMetric()
        self.test_log_perplexity = MeanMetric()
        self.best_val_perplexity = float("inf")

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self.model(batch["bow"])
        loss = out.loss.mean()
        size = len(batch["doc_index"])
        self.log("train_loss", loss, prog_bar=True, batch_size=size)
        self.log_dict({"train_nll": out.nll.mean(), "train_kl": out.kl.mean()}, batch_size=size)
        return loss

    def _accumulate(self, batch: dict, metric: MeanMetric) -> None:
        out = self.model(batch["bow"])
        has_words = out.word_count > 0
        metric.update(out.loss_per_word[has_words], weight=torch.ones_like(out.loss_per_word[has_words]))

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._accumulate(batch, self.val_log_perplexity)

    def on_validation_epoch_end(self) -> None:
        perplexity = self.val_log_perplexity.compute().exp()
        self.val_log_perplexity.reset()
        self.log("val_perplexity", perplexity, prog_bar=True)
        if not self.trainer.sanity_checking and perplexity.item() < self.best_val_perplexity:
            self.best_val_perplexity = perplexity.item()
            self.write_topics()

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._accumulate(batch, self.test_log_perplexity)

    def on_test_epoch_end(self) -> None:
        self.log("test_perplexity", self.test_log_perplexity.compute().exp())
        self.test_log_perplexity.reset()

    def write_topics(self) -> Path | None:
        """Write ``topics.txt`` (top words per topic) atomically into the run folder (rank 0 only)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        folder = Path(self.trainer.log_dir or self.trainer.default_root_dir)  # a collective under DDP
        if datamodule is None or not self.trainer.is_global_zero:
            return None
        lines = format_topics(self.model.topic_word_indices(self.hparams.top_words), datamodule.vocabulary.words)
        path = folder / "topics.txt"
        with atomic_write(path) as f:
            f.write("\n".join(lines) + "\n")
        return path

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        record_task(self, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_checkpoint(self, checkpoint)
