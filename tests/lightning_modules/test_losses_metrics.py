import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score

from lightning_modules.losses import class_probabilities, classification_loss, joint_loss
from lightning_modules.metrics import (
    DocumentAggregator,
    aggregate_by_document,
    classification_metrics,
    metric_inputs,
)


def test_joint_loss_weights_classification_by_alpha():
    ce, topic = torch.tensor(2.0), torch.tensor(7.0)
    assert joint_loss(ce, topic, 0.9).item() == pytest.approx(0.9 * 2.0 + 0.1 * 7.0)
    assert joint_loss(ce, topic, 1.0).item() == pytest.approx(2.0)
    assert joint_loss(ce, topic, 0.0).item() == pytest.approx(7.0)
    assert joint_loss(ce, None, 0.9).item() == pytest.approx(2.0)  # BERT baseline: CE alone


def test_classification_loss_single_and_multi_label():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    one_hot = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert classification_loss(logits, one_hot, False).item() == pytest.approx(
        F.cross_entropy(logits, torch.tensor([0, 2])).item()
    )
    multi = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert classification_loss(logits, multi, True).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, multi).item()
    )
    torch.testing.assert_close(class_probabilities(logits, False).sum(-1), torch.ones(2))
    torch.testing.assert_close(class_probabilities(logits, True), logits.sigmoid())


def test_aggregate_by_document_averages_partitions():
    doc_index = torch.tensor([4, 1, 4, 4, 1])
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.4, 0.6]])
    docs, mean = aggregate_by_document(doc_index, probs)
    assert docs.tolist() == [1, 4]
    torch.testing.assert_close(mean, torch.tensor([[0.3, 0.7], [0.6, 0.4]]))
    perm = torch.randperm(5, generator=torch.Generator().manual_seed(0))
    docs2, mean2 = aggregate_by_document(doc_index[perm], probs[perm])
    assert docs2.tolist() == docs.tolist()
    torch.testing.assert_close(mean2, mean)


def test_document_aggregator_joins_partitions_from_different_batches():
    agg = DocumentAggregator()
    agg.update(torch.tensor([0]), torch.tensor([0]), torch.tensor([[0.8, 0.2]]), torch.tensor([[1.0, 0.0]]))
    agg.update(
        torch.tensor([1, 0]),
        torch.tensor([1, 2]),
        torch.tensor([[0.1, 0.9], [0.0, 1.0]]),
        torch.tensor([[0.0, 1.0], [1.0, 0.0]]),
    )
    # DDP padding repeats example 2; counted twice it would pull document 0 to (0.27, 0.73)
    agg.update(torch.tensor([0]), torch.tensor([2]), torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]]))
    docs, probs, targets = agg.compute()
    assert docs.tolist() == [0, 1]
    torch.testing.assert_close(probs, torch.tensor([[0.4, 0.6], [0.1, 0.9]]))
    torch.testing.assert_close(targets, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    # document 0 is predicted as class 1 only after averaging: its first partition alone says class 0


def test_single_label_metrics_match_sklearn():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(50, 4, generator=g).softmax(-1)
    labels = torch.randint(0, 4, (50,), generator=g)
    targets = F.one_hot(labels, 4).float()
    scores = classification_metrics(4, False, "val_")(*metric_inputs(probs, targets, False))
    pred = probs.argmax(-1).numpy()
    assert set(scores) == {"val_macro_f1", "val_micro_f1", "val_accuracy"}
    assert scores["val_macro_f1"].item() == pytest.approx(f1_score(labels, pred, average="macro"), abs=1e-6)
    assert scores["val_micro_f1"].item() == pytest.approx(f1_score(labels, pred, average="micro"), abs=1e-6)
    assert scores["val_accuracy"].item() == pytest.approx(accuracy_score(labels, pred), abs=1e-6)


def test_multi_label_metrics_match_sklearn():
    g = torch.Generator().manual_seed(1)
    probs = torch.rand(40, 5, generator=g)
    targets = (torch.rand(40, 5, generator=g) > 0.6).float()
    scores = classification_metrics(5, True, "test_")(*metric_inputs(probs, targets, True))
    pred = (probs >= 0.5).int().numpy()
    assert scores["test_macro_f1"].item() == pytest.approx(
        f1_score(targets.int().numpy(), pred, average="macro", zero_division=0), abs=1e-6
    )
    assert scores["test_micro_f1"].item() == pytest.approx(
        f1_score(targets.int().numpy(), pred, average="micro"), abs=1e-6
    )
    assert scores["test_accuracy"].item() == pytest.approx(accuracy_score(targets.int().numpy(), pred), abs=1e-6)
