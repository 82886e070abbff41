"""Decision thresholds for multi-label classification, optionally tuned on the dev split.

A label is predicted when its probability reaches its threshold. Tuning picks, from a coarse grid,
the threshold that maximises macro-F1 on the dev documents: one for all labels (``global``) or one
per label (``per_class``; a label's own F1, which maximises macro-F1 label by label). A coarse grid
and ties broken towards the default keep rare labels from being fitted to one or two dev documents.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

ThresholdTuning = Literal["none", "global", "per_class"]
GRID = torch.arange(0.05, 0.951, 0.05)


def per_label_f1(probs: Tensor, targets: Tensor, thresholds: Tensor) -> Tensor:
    """F1 of every label at every candidate threshold: shape (len(thresholds), labels).

    A label with neither gold nor predicted documents scores 0, as torchmetrics and scikit-learn's
    ``zero_division=0`` do.
    """
    preds = probs.unsqueeze(0) >= thresholds.view(-1, 1, 1)
    gold = targets.bool().unsqueeze(0)
    tp = (preds & gold).sum(1).double()
    fp = (preds & ~gold).sum(1).double()
    fn = (~preds & gold).sum(1).double()
    denom = 2 * tp + fp + fn
    return torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(denom))


def _best(scores: Tensor, grid: Tensor, default: float) -> Tensor:
    """Grid value with the highest score along dim 0; ties go to the value nearest ``default``."""
    nearest_first = torch.argsort((grid - default).abs(), stable=True)
    best = scores[nearest_first].argmax(0)  # argmax returns the first maximum
    return grid[nearest_first][best]


def tune_thresholds(
    probs: Tensor, targets: Tensor, mode: ThresholdTuning, default: float = 0.5, grid: Tensor = GRID
) -> Tensor:
    """Thresholds (one per label) that maximise dev macro-F1; ``default`` everywhere for ``none``.

    Labels without a positive dev document keep ``default`` under ``per_class``: nothing there says
    where their threshold should be.
    """
    labels = probs.shape[-1]
    if mode == "none":
        return torch.full((labels,), default)
    probs, targets, grid = probs.float().cpu(), targets.cpu(), grid.float()
    f1 = per_label_f1(probs, targets, grid)
    if mode == "global":
        return _best(f1.mean(1), grid, default).expand(labels).clone()
    if mode == "per_class":
        tuned = _best(f1, grid, default)
        has_positive = targets.bool().any(0)
        return torch.where(has_positive, tuned, torch.full_like(tuned, default))
    raise ValueError(f"threshold_tuning must be one of none, global, per_class; got {mode!r}.")
