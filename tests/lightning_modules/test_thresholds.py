"""Multi-label decision thresholds: tuning on dev, ties, and scoring with per-label thresholds."""

import pytest
import torch
from sklearn.metrics import f1_score

from lightning_modules.metrics import DocumentAggregator, classification_metrics, metric_inputs
from lightning_modules.thresholds import GRID, per_label_f1, tune_thresholds


def test_per_label_f1_matches_sklearn_at_every_threshold():
    g = torch.Generator().manual_seed(3)
    probs = torch.rand(60, 4, generator=g)
    targets = (torch.rand(60, 4, generator=g) > 0.7).long()
    f1 = per_label_f1(probs, targets, GRID)
    for i, t in enumerate(GRID.tolist()):
        expected = f1_score(targets.numpy(), (probs >= t).long().numpy(), average=None, zero_division=0)
        torch.testing.assert_close(f1[i], torch.tensor(expected, dtype=torch.float64))


def test_per_class_tuning_finds_each_label_its_own_threshold():
    # label 0: positives score 0.3-0.4, negatives 0.1; label 1: positives 0.9, negatives 0.6-0.7
    probs = torch.tensor([[0.35, 0.9], [0.3, 0.65], [0.1, 0.9], [0.4, 0.6], [0.1, 0.7], [0.1, 0.95]])
    targets = torch.tensor([[1, 1], [1, 0], [0, 1], [1, 0], [0, 0], [0, 1]])
    tuned = tune_thresholds(probs, targets, "per_class")
    assert 0.1 < tuned[0] <= 0.3 and 0.7 < tuned[1] <= 0.9
    at_half = f1_score(targets, (probs >= 0.5).long(), average="macro", zero_division=0)
    at_tuned = f1_score(targets, (probs >= tuned).long(), average="macro", zero_division=0)
    assert at_tuned == 1.0 > at_half


def test_global_tuning_is_the_best_single_grid_threshold():
    g = torch.Generator().manual_seed(5)
    targets = (torch.rand(80, 5, generator=g) > 0.6).long()
    probs = (0.35 * targets + 0.5 * torch.rand(80, 5, generator=g)).clamp(0, 1)
    tuned = tune_thresholds(probs, targets, "global")
    assert torch.all(tuned == tuned[0])
    scores = {t: f1_score(targets, (probs >= t).long(), average="macro", zero_division=0) for t in GRID.tolist()}
    assert scores[tuned[0].item()] == pytest.approx(max(scores.values()))


def test_ties_go_to_the_default_and_labels_without_positives_keep_it():
    probs = torch.tensor([[0.9, 0.2], [0.1, 0.3], [0.95, 0.1]])
    targets = torch.tensor([[1, 0], [0, 0], [1, 0]])
    tuned = tune_thresholds(probs, targets, "per_class", default=0.5)
    assert tuned.tolist() == pytest.approx([0.5, 0.5])  # label 0 is perfect from 0.15 to 0.9; label 1 has no positive
    assert tune_thresholds(probs, targets, "none", default=0.4).tolist() == pytest.approx([0.4, 0.4])


def test_metrics_use_per_label_thresholds():
    g = torch.Generator().manual_seed(7)
    probs = torch.rand(50, 3, generator=g)
    targets = (torch.rand(50, 3, generator=g) > 0.5).float()
    thresholds = torch.tensor([0.2, 0.5, 0.8])
    scores = classification_metrics(3, True, "val_")(*metric_inputs(probs, targets, True, thresholds))
    pred = (probs >= thresholds).long().numpy()
    gold = targets.long().numpy()
    assert scores["val_micro_f1"].item() == pytest.approx(f1_score(gold, pred, average="micro"), abs=1e-6)
    assert scores["val_macro_f1"].item() == pytest.approx(
        f1_score(gold, pred, average="macro", zero_division=0), abs=1e-6
    )
    assert scores["val_accuracy"].item() == pytest.approx((pred == gold).all(1).mean(), abs=1e-6)


def test_multi_label_documents_average_their_partition_sigmoids_before_the_threshold():
    agg = DocumentAggregator()
    # document 7: partition A is sure of label 0, partition B of label 1; document 3 has one partition
    agg.update(
        torch.tensor([7, 3]),
        torch.tensor([0, 1]),
        torch.tensor([[0.9, 0.2], [0.1, 0.8]]),
        torch.tensor([[1.0, 1.0], [0.0, 1.0]]),
    )
    agg.update(torch.tensor([7]), torch.tensor([2]), torch.tensor([[0.3, 0.9]]), torch.tensor([[1.0, 1.0]]))
    docs, probs, targets = agg.compute()
    assert docs.tolist() == [3, 7]
    torch.testing.assert_close(probs, torch.tensor([[0.1, 0.8], [0.6, 0.55]]))
    torch.testing.assert_close(targets, torch.tensor([[0.0, 1.0], [1.0, 1.0]]))
    preds, _ = metric_inputs(probs, targets, True, 0.5)
    assert preds.tolist() == [[0, 1], [1, 1]]  # neither partition of document 7 alone predicts both labels
