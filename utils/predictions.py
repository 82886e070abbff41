"""Per-document test predictions (``test_predictions.npz`` beside a run's results.json) and their F1.

Keeping every run's hard decisions lets reports compare runs document by document (paired
bootstrap) instead of only by their summary scores. The F1 functions reproduce torchmetrics' numbers
in NumPy, from per-label counts, so resampled test sets can be scored without it:

- single-label (``MulticlassF1Score(average="macro")``): a class with no gold and no predicted
  document (tp + fp + fn = 0) is left out of the mean;
- multi-label (``MultilabelF1Score(average="macro")``): every label is in the mean, and one with
  tp + fp + fn = 0 scores 0.

torchmetrics does this in ``_adjust_weights_safe_divide`` (torchmetrics/utilities/compute.py), which
zeroes the weight of such classes only when ``multilabel`` is false; 0/0 is 0 (``zero_division=0``).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.files import atomic_write

FILENAME = "test_predictions.npz"


@dataclass(frozen=True, eq=False)
class DocumentPredictions:
    """One run's test decisions: ``gold`` and ``predicted`` are bool (documents x labels) multi-hot
    matrices, one-hot when ``multi_label`` is false. The flag is stored, not guessed from the rows,
    because the two macro averages differ on absent classes."""

    ids: list[str]
    gold: np.ndarray
    predicted: np.ndarray
    label_names: list[str]
    multi_label: bool

    def __post_init__(self) -> None:
        _check_shapes(self)
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("document ids repeat; each test document must appear once")
        if not self.multi_label:
            _check_one_hot(self.gold, "gold")
            _check_one_hot(self.predicted, "predicted")

    def macro_f1(self) -> float:
        """The run's test macro-F1, as torchmetrics reported it."""
        return macro_f1(self.gold, self.predicted, multi_label=self.multi_label)

    def micro_f1(self) -> float:
        """The run's test micro-F1 (accuracy on single-label data), as torchmetrics reported it."""
        return micro_f1(self.gold, self.predicted)

    def save(self, path: str | Path) -> None:
        """Write the file atomically, so a killed run never leaves half of one."""
        with atomic_write(path, mode="wb") as f:
            np.savez_compressed(
                f,
                ids=np.array(self.ids, dtype=str),
                gold=self.gold,
                predicted=self.predicted,
                label_names=np.array(self.label_names, dtype=str),
                multi_label=np.array(self.multi_label),
            )

    @classmethod
    def load(cls, path: str | Path) -> DocumentPredictions:
        """Read a file written by ``save``; the error names the file when it is missing or unreadable."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no test predictions file at {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(
                    ids=data["ids"].tolist(),
                    gold=data["gold"],
                    predicted=data["predicted"],
                    label_names=data["label_names"].tolist(),
                    multi_label=bool(data["multi_label"]),
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
            raise ValueError(f"cannot read test predictions from {path}: {err}") from err


def _check_shapes(p: DocumentPredictions) -> None:
    """Catch a mis-built file when it is written, not when a report reads it."""
    for name, matrix in (("gold", p.gold), ("predicted", p.predicted)):
        if matrix.dtype != np.bool_ or matrix.ndim != 2:
            raise ValueError(f"{name} must be a 2-D bool matrix, got {matrix.dtype} with shape {matrix.shape}")
        if matrix.shape != (len(p.ids), len(p.label_names)):
            raise ValueError(
                f"{name} has shape {matrix.shape}, expected {len(p.ids)} documents x {len(p.label_names)} labels"
            )


def _check_one_hot(matrix: np.ndarray, name: str) -> None:
    """A single-label row with zero or two labels would be scored as something torchmetrics never saw."""
    counts = matrix.sum(axis=1)
    if np.any(counts != 1):
        row = int(np.flatnonzero(counts != 1)[0])
        raise ValueError(f"single-label {name} must be one-hot; document {row} has {counts[row]} labels")


def label_counts(gold: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-label true positives, false positives and false negatives."""
    tp = (gold & predicted).sum(axis=0)
    fp = (predicted & ~gold).sum(axis=0)
    fn = (gold & ~predicted).sum(axis=0)
    return tp, fp, fn


def label_f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-label F1 (0 for a label with no gold and no prediction) and which labels are present."""
    tp, fp, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn))
    denominator = 2 * tp + fp + fn
    present = denominator > 0
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=present), present


def macro_f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, *, multi_label: bool) -> np.ndarray:
    """Macro-F1 over the last axis (labels), with torchmetrics' rule for absent classes; leading
    axes (e.g. bootstrap iterations) are kept, so many resamples are scored in one call."""
    scores, present = label_f1_from_counts(tp, fp, fn)
    if multi_label:
        return scores.mean(axis=-1)
    weights = present.sum(axis=-1)
    return np.divide(scores.sum(axis=-1), weights, out=np.zeros(weights.shape), where=weights > 0)


def macro_f1(gold: np.ndarray, predicted: np.ndarray, *, multi_label: bool) -> float:
    """torchmetrics' macro-F1 (Multilabel- or MulticlassF1Score) of bool documents x labels matrices."""
    return float(macro_f1_from_counts(*label_counts(gold, predicted), multi_label=multi_label))


def micro_f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Micro-F1 from per-label counts summed over the last axis (labels); leading axes are kept."""
    tp, fp, fn = (np.asarray(x, dtype=np.float64).sum(axis=-1) for x in (tp, fp, fn))
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def micro_f1(gold: np.ndarray, predicted: np.ndarray) -> float:
    """torchmetrics' micro-F1; on one-hot rows this is accuracy, as MulticlassF1Score's micro is."""
    return float(micro_f1_from_counts(*label_counts(gold, predicted)))
