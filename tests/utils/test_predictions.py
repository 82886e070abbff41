"""Per-document predictions: the file round-trips, and the NumPy F1 is torchmetrics' F1 exactly."""

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassF1Score, MultilabelF1Score

from utils.predictions import FILENAME, DocumentPredictions, macro_f1, micro_f1


def one_hot(classes: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=bool)[classes]


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    gold, predicted = rng.random((5, 3)) < 0.4, rng.random((5, 3)) < 0.4
    original = DocumentPredictions([f"d{i}" for i in range(5)], gold, predicted, ["a", "b", "c"], multi_label=True)
    original.save(tmp_path / FILENAME)
    loaded = DocumentPredictions.load(tmp_path / FILENAME)
    assert loaded.ids == original.ids and loaded.label_names == original.label_names and loaded.multi_label
    assert np.array_equal(loaded.gold, gold) and np.array_equal(loaded.predicted, predicted)
    assert loaded.gold.dtype == np.bool_ and [p.name for p in tmp_path.iterdir()] == [FILENAME]


def test_a_missing_or_unreadable_file_is_named_in_the_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.npz"):
        DocumentPredictions.load(tmp_path / "nowhere.npz")
    (tmp_path / "broken.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"broken\.npz"):
        DocumentPredictions.load(tmp_path / "broken.npz")


def test_single_label_rows_must_be_one_hot():
    gold = one_hot(np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="one-hot"):
        DocumentPredictions(["a", "b"], gold, np.zeros((2, 2), dtype=bool), ["x", "y"], multi_label=False)


@pytest.mark.parametrize("trial", range(20))
def test_single_label_f1_equals_torchmetrics_with_absent_classes(trial):
    rng = np.random.default_rng(trial)
    classes, used, docs = 8, int(rng.integers(1, 8)), int(rng.integers(1, 60))
    gold = rng.integers(0, used, docs)
    predicted = np.where(rng.random(docs) < 0.6, gold, rng.integers(0, classes - 1, docs))
    expected_macro = MulticlassF1Score(classes, average="macro")(torch.tensor(predicted), torch.tensor(gold))
    expected_micro = MulticlassF1Score(classes, average="micro")(torch.tensor(predicted), torch.tensor(gold))
    gold_matrix, predicted_matrix = one_hot(gold, classes), one_hot(predicted, classes)
    assert macro_f1(gold_matrix, predicted_matrix, multi_label=False) == pytest.approx(float(expected_macro), abs=1e-6)
    assert micro_f1(gold_matrix, predicted_matrix) == pytest.approx(float(expected_micro), abs=1e-6)


@pytest.mark.parametrize("trial", range(20))
def test_multi_label_f1_equals_torchmetrics_with_absent_labels(trial):
    rng = np.random.default_rng(100 + trial)
    labels, docs = 8, int(rng.integers(1, 60))
    density = rng.random(labels) * (rng.random(labels) < 0.7)  # about a third of the labels never occur
    gold = rng.random((docs, labels)) < density
    predicted = np.where(rng.random((docs, labels)) < 0.7, gold, rng.random((docs, labels)) < density)
    target, preds = torch.tensor(gold.astype(np.int64)), torch.tensor(predicted.astype(np.int64))
    expected_macro = MultilabelF1Score(labels, average="macro")(preds, target)
    expected_micro = MultilabelF1Score(labels, average="micro")(preds, target)
    assert macro_f1(gold, predicted, multi_label=True) == pytest.approx(float(expected_macro), abs=1e-6)
    assert micro_f1(gold, predicted) == pytest.approx(float(expected_micro), abs=1e-6)


def test_absent_classes_leave_the_multiclass_mean_but_count_as_zero_in_the_multilabel_one():
    gold = one_hot(np.array([0, 1]), 4)  # classes 2 and 3: no gold, no prediction
    assert macro_f1(gold, gold, multi_label=False) == 1.0
    assert macro_f1(gold, gold, multi_label=True) == 0.5
    nothing = np.zeros((2, 4), dtype=bool)
    assert macro_f1(nothing, nothing, multi_label=True) == 0.0 and micro_f1(nothing, nothing) == 0.0
