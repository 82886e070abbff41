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


def default_kd_weight(multi_label: bool) -> float:
    """The DocBERT paper's lambda: 4 for single-label, 1 for multi-label data."""
    return 1.0 if multi_label else 4.0


def distillation_loss(
    student_logits: Tensor,
    labels: Tensor,
    teacher_logits: Tensor,
    multi_label: bool,
    kd_weight: float,
    temperature: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """``L = CE(student, labels) + kd_weight * L_distill``; returns (L, CE, L_distill).

    Single-label: ``L_distill = T^2 * KL(teacher || student)`` over class probabilities softened by
    the temperature T (Hinton et al.; the T^2 keeps gradients comparable across T, and T = 1 is the
    paper's setting). Multi-label: ``L_distill = T^2 * BCE(student sigmoids, teacher sigmoids)``.
    """
    ce = classification_loss(student_logits, labels, multi_label)
    student = student_logits.float() / temperature
    teacher = teacher_logits.float() / temperature
    if multi_label:
        kd = F.binary_cross_entropy_with_logits(student, teacher.sigmoid())
    else:
        kd = F.kl_div(student.log_softmax(-1), teacher.log_softmax(-1), log_target=True, reduction="batchmean")
    kd = kd * temperature**2
    return ce + kd_weight * kd, ce, kd
