"""Per-document evaluation: partition probabilities are averaged per document, then scored."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MultilabelExactMatch,
    MultilabelF1Score,
)


def aggregate_by_document(doc_index: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of ``values`` rows per document: (sorted unique doc indices, their mean rows).

    The result does not depend on the order of partitions or on how they were batched.
    """
    docs, inverse = torch.unique(doc_index, sorted=True, return_inverse=True)
    sums = torch.zeros((len(docs), values.shape[-1]), dtype=torch.float64, device=values.device)
    sums.index_add_(0, inverse, values.to(torch.float64))
    counts = torch.bincount(inverse, minlength=len(docs)).unsqueeze(-1)
    return docs, (sums / counts).to(values.dtype)


def drop_repeats(example_index: Tensor) -> Tensor:
    """Positions of the first occurrence of each example (DDP pads the last batches with repeats)."""
    order = torch.argsort(example_index, stable=True)
    ordered = example_index[order]
    first = torch.ones_like(ordered, dtype=torch.bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return order[first]


class DocumentAggregator(Metric):
    """Collects partition probabilities (synchronised across processes) and averages them per document.

    Repeated examples (DDP padding) count once. ``compute()`` returns
    ``(doc_index, probabilities, targets)`` with one row per document.
    """

    full_state_update = False
    doc_index: list[Tensor]
    example_index: list[Tensor]
    probs: list[Tensor]
    targets: list[Tensor]

    def __init__(self):
        super().__init__()
        self.add_state("doc_index", default=[], dist_reduce_fx="cat")
        self.add_state("example_index", default=[], dist_reduce_fx="cat")
        self.add_state("probs", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, doc_index: Tensor, example_index: Tensor, probs: Tensor, targets: Tensor) -> None:
        self.doc_index.append(doc_index)
        self.example_index.append(example_index)
        self.probs.append(probs.float())
        self.targets.append(targets.float())

    def compute(self) -> tuple[Tensor, Tensor, Tensor]:
        keep = drop_repeats(_cat(self.example_index))
        doc_index = _cat(self.doc_index)[keep]
        docs, probs = aggregate_by_document(doc_index, _cat(self.probs)[keep])
        _, targets = aggregate_by_document(doc_index, _cat(self.targets)[keep])
        return docs, probs, targets


def _cat(state) -> Tensor:
    return torch.cat(state) if isinstance(state, list) else state


def classification_metrics(num_labels: int, multi_label: bool, prefix: str) -> MetricCollection:
    """macro-F1 (the paper's metric), micro-F1 and accuracy (subset accuracy when multi-label).

    Inputs are per-document probabilities and multi-hot targets. The inputs are already gathered
    from every process, so the metrics themselves do not synchronise again.
    """
    kwargs: dict[str, Any] = {"sync_on_compute": False}
    metrics: dict[str, Metric | MetricCollection]
    if multi_label:
        metrics = {
            "macro_f1": MultilabelF1Score(num_labels, average="macro", **kwargs),
            "micro_f1": MultilabelF1Score(num_labels, average="micro", **kwargs),
            "accuracy": MultilabelExactMatch(num_labels, **kwargs),
        }
    else:
        metrics = {
            "macro_f1": MulticlassF1Score(num_labels, average="macro", **kwargs),
            "micro_f1": MulticlassF1Score(num_labels, average="micro", **kwargs),
            "accuracy": MulticlassAccuracy(num_labels, average="micro", **kwargs),
        }
    return MetricCollection(metrics, prefix=prefix)


def metric_inputs(
    probs: Tensor, targets: Tensor, multi_label: bool, thresholds: Tensor | float = 0.5
) -> tuple[Tensor, Tensor]:
    """Inputs for torchmetrics: probabilities and class indices (single-label), or multi-hot
    predictions at the decision ``thresholds`` (one per label, or one for all) and targets."""
    if multi_label:
        return (probs >= thresholds).long(), (targets > 0.5).long()
    return probs, targets.argmax(-1)
