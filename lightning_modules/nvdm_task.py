"""Pretraining the NVDM topic model on its own, before TopicBERT fine-tuning (as the paper does)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torchmetrics import MeanMetric

from lightning_modules.base import BaseTask
from lightning_modules.optim import adam
from models.nvdm import NVDM, Activation


class NVDMTask(BaseTask):
    """Trains the NVDM on bag-of-words batches by minimising the negative ELBO.

    Logs ``val_perplexity`` (exp of the mean per-word bound over documents, as in Miao et al.), by
    which checkpoints (and the topic words of ``callbacks.topics.TopicWordsWriter``) are chosen.

    Args:
        vocab_size: topic-model vocabulary size (linked from the data).
        num_topics: K.
        hidden_size: width of the encoder MLP.
        activation: non-linearity of the encoder MLP.
        num_samples: S, posterior samples per training step.
        lr: Adam learning rate.
    """

    monitor = "val_perplexity"
    monitor_mode = "min"
    checkpoint_filename = "best"
    model: NVDM

    def __init__(
        self,
        vocab_size: int = 2000,
        num_topics: int = 100,
        hidden_size: int = 256,
        activation: Activation = "sigmoid",
        num_samples: int = 1,
        lr: float = 1e-3,
    ):
        super().__init__()
        self.val_log_perplexity = MeanMetric()
        self.test_log_perplexity = MeanMetric()

    def build_model(self) -> NVDM:
        hp = self.hparams
        return NVDM(hp.vocab_size, hp.num_topics, hp.hidden_size, hp.activation, hp.num_samples)

    def run_label(self, datamodule: Any) -> str:
        return "NVDM"

    def identity(self) -> dict[str, Any]:
        return {k: self.hparams[k] for k in ("vocab_size", "num_topics", "hidden_size")}

    @classmethod
    def reads_bow(cls, init_args: Mapping[str, Any]) -> bool:
        return True

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
        self.log("val_perplexity", self.val_log_perplexity.compute().exp(), prog_bar=True)
        self.val_log_perplexity.reset()

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._accumulate(batch, self.test_log_perplexity)

    def on_test_epoch_end(self) -> None:
        self.log("test_perplexity", self.test_log_perplexity.compute().exp())
        self.test_log_perplexity.reset()

    def topic_word_indices(self, top_n: int) -> torch.Tensor:
        return self.model.topic_word_indices(top_n)

    def configure_optimizers(self):
        return adam(self.parameters(), self.hparams.lr, 0.0, self.device)
