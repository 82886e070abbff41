"""What every document classifier task shares: per-document evaluation, metrics and prediction."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lightning_modules.base import BaseTask
from lightning_modules.losses import class_probabilities
from lightning_modules.metrics import DocumentAggregator, classification_metrics, metric_inputs
from lightning_modules.thresholds import ThresholdTuning, tune_thresholds


@dataclass
class ClassifierOutput:
    logits: Tensor


@dataclass
class DocumentDecisions:
    """What a test pass decided per document, for paired comparisons of runs on the same documents."""

    doc_index: Tensor
    predicted: Tensor
    gold: Tensor


class DocumentClassifierTask(BaseTask):
    """Base of the classifiers: subclasses define ``forward(batch)`` (an output with ``logits``) and
    ``compute_losses(batch, output)`` (a dict with ``loss``); training logs those losses, and
    validation and test average each document's partition probabilities before scoring macro-F1,
    micro-F1 and accuracy.

    Multi-label tasks predict a label when its probability reaches its decision threshold
    (``threshold``, or tuned on the dev documents at every validation during fit, see
    ``lightning_modules.thresholds``). The thresholds travel in the checkpoint, so test and predict
    use those tuned with the saved weights.

    Args:
        num_labels: number of classes (linked from the data).
        multi_label: sigmoid/BCE instead of softmax/CE (linked from the data).
        threshold: multi-label decision threshold.
        threshold_tuning: tune the multi-label thresholds on dev (``global`` or ``per_class``).
    """

    decision_thresholds: Tensor
    test_decisions: DocumentDecisions | None = None

    def __init__(
        self,
        num_labels: int = 2,
        multi_label: bool = False,
        threshold: float = 0.5,
        threshold_tuning: ThresholdTuning = "none",
    ):
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie strictly between 0 and 1, got {threshold}.")
        super().__init__()
        self.multi_label = multi_label
        self.register_buffer("decision_thresholds", torch.full((num_labels,), threshold), persistent=False)
        self.val_documents = DocumentAggregator()
        self.test_documents = DocumentAggregator()
        self.val_metrics = classification_metrics(num_labels, multi_label, prefix="val_")
        self.test_metrics = classification_metrics(num_labels, multi_label, prefix="test_")

    def identity(self) -> dict[str, Any]:
        return {"num_labels": self.hparams.num_labels, "multi_label": self.hparams.multi_label}

    @abstractmethod
    def forward(self, batch: dict) -> Any:
        """An output with per-example ``logits``."""

    @abstractmethod
    def compute_losses(self, batch: dict, output: Any) -> dict[str, Tensor]:
        """Training objective (``loss``) and its parts, for one batch."""

    def predict_extras(self, output: Any) -> dict[str, Tensor]:
        """Extra per-example outputs of ``predict_step`` (e.g. the dominant topic)."""
        return {}

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        losses = self.compute_losses(batch, self(batch))
        size = len(batch["doc_index"])
        self.log("train_loss", losses["loss"], prog_bar=True, batch_size=size)
        self.log_dict({f"train_{k}": v for k, v in losses.items() if k != "loss"}, batch_size=size)
        return losses["loss"]

    def _evaluate(self, batch: dict, documents: DocumentAggregator, prefix: str) -> None:
        output = self(batch)
        losses = self.compute_losses(batch, output)
        self.log_dict({f"{prefix}_{k}": v for k, v in losses.items()}, batch_size=len(batch["doc_index"]))
        probs = class_probabilities(output.logits, self.multi_label)
        documents.update(batch["doc_index"], batch["example_index"], probs, batch["labels"])

    def _score_documents(self, documents: DocumentAggregator, metrics, tune: bool = False) -> DocumentDecisions:
        docs, probs, targets = documents.compute()
        documents.reset()
        if tune and self.multi_label and self.hparams.threshold_tuning != "none":
            tuned = tune_thresholds(probs, targets, self.hparams.threshold_tuning, self.hparams.threshold)
            self.decision_thresholds.copy_(tuned)
        scores = metrics(*metric_inputs(probs, targets, self.multi_label, self.decision_thresholds))
        metrics.reset()
        self.log_dict(scores, prog_bar=True)
        return DocumentDecisions(docs.cpu(), self.decide(probs).cpu(), (targets > 0.5).cpu())

    def decide(self, probs: Tensor) -> Tensor:
        """Hard per-document decisions (documents x labels, bool): the labels at or above their
        thresholds, or the most probable class."""
        if self.multi_label:
            return probs >= self.decision_thresholds
        return torch.nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).bool()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, self.val_documents, "val")

    def on_validation_epoch_end(self) -> None:
        tune = self.trainer.state.fn == "fit" and not self.trainer.sanity_checking
        self._score_documents(self.val_documents, self.val_metrics, tune)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, self.test_documents, "test")

    def on_test_epoch_end(self) -> None:
        self.test_decisions = self._score_documents(self.test_documents, self.test_metrics)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["decision_thresholds"] = self.decision_thresholds.tolist()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        if "decision_thresholds" in checkpoint:
            self.decision_thresholds.copy_(torch.tensor(checkpoint["decision_thresholds"]))

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        """Partition-level outputs; the prediction writers aggregate them per document."""
        output = self(batch)
        probs = class_probabilities(output.logits, self.multi_label)
        extras = self.predict_extras(output)
        return {"doc_index": batch["doc_index"], "example_index": batch["example_index"], "probs": probs, **extras}
