"""Loss functions shared by the Lightning tasks."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def classification_loss(logits: Tensor, labels: Tensor, multi_label: bool) -> Tensor:
    """Cross-entropy against multi-hot ``labels``: softmax CE (single-label) or per-label BCE."""
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    return F.cross_entropy(logits, labels.argmax(-1))


def class_probabilities(logits: Tensor, multi_label: bool) -> Tensor:
    return logits.float().sigmoid() if multi_label else logits.float().softmax(-1)


def joint_loss(classification: Tensor, topic: Tensor | None, alpha: float) -> Tensor:
    """TopicBERT's objective: ``alpha * CE + (1 - alpha) * normalised NVDM loss``.

    Without a topic model (the BERT baseline) the loss is the cross-entropy alone.
    """
    if topic is None:
        return classification
    return alpha * classification + (1.0 - alpha) * topic
