import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from models.students import BiLSTM, KimCNN, SparseLogisticRegression, drop_words


@pytest.fixture
def embedding():
    torch.manual_seed(0)
    return torch.nn.Embedding(50, 16)


def padded(ids, extra):
    return torch.cat([ids, torch.zeros((ids.shape[0], extra), dtype=torch.long)], 1)


@pytest.mark.parametrize("make", [lambda e: BiLSTM(e, 3, hidden_size=8), lambda e: KimCNN(e, 3, maps=4)])
def test_students_ignore_padding(make, embedding):
    model = make(embedding).eval()
    ids = torch.randint(1, 50, (2, 7))
    mask = torch.ones_like(ids)
    logits = model(ids, mask)
    assert logits.shape == (2, 3)
    longer = model(padded(ids, 5), padded(mask, 5))
    torch.testing.assert_close(longer, logits)


def test_kimcnn_handles_documents_shorter_than_its_widest_filter(embedding):
    model = KimCNN(embedding, 3, widths=(3, 4, 5), maps=4).eval()
    assert torch.isfinite(model(torch.tensor([[5, 6]]), torch.tensor([[1, 1]]))).all()


def test_bilstm_regularisers_act_only_in_training(embedding):
    model = BiLSTM(embedding, 3, hidden_size=8, embed_dropout=0.3, weight_drop=0.5, dropout=0.0)
    ids = torch.randint(1, 50, (4, 9))
    mask = torch.ones_like(ids)
    model.train()
    assert not torch.equal(model(ids, mask), model(ids, mask))
    model(ids, mask).sum().backward()
    assert model.lstm.weight_hh_l0.grad is not None and model.lstm.weight_hh_l0.grad.abs().sum() > 0
    model.eval()
    torch.testing.assert_close(model(ids, mask), model(ids, mask))


def test_word_dropout_drops_every_occurrence_of_a_word():
    torch.manual_seed(1)
    ids = torch.tensor([[3, 4, 3, 5, 3, 4]])
    dropped = drop_words(torch.ones(1, 6, 2), ids, p=0.5)
    for word in (3, 4, 5):
        values = dropped[0, ids[0] == word]
        assert torch.all(values == values[0])  # the same decision for every occurrence
    assert set(dropped.unique().tolist()) <= {0.0, 2.0}


def test_flop_formulas_match_the_counter(embedding):
    ids = torch.randint(1, 50, (1, 20))
    mask = torch.ones_like(ids)
    cnn = KimCNN(embedding, 3, maps=4).eval()
    with FlopCounterMode(display=False) as counter:
        cnn(ids, mask)
    assert float(cnn.forward_flops(torch.tensor([20]))) == pytest.approx(counter.get_total_flops(), rel=1e-6)
    lstm = BiLSTM(embedding, 3, hidden_size=8)
    assert float(lstm.forward_flops(torch.tensor([20, 5]))) == 2 * 4 * 8 * (16 + 8) * 2 * 25 + 2 * 2 * 16 * 3


def test_sparse_logistic_regression_equals_dense_linear():
    torch.manual_seed(0)
    model = SparseLogisticRegression(6, 2)
    dense = torch.tensor([[0.0, 1.5, 0.0, 0.0, 2.0, 0.0], [0.3, 0.0, 0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(model(dense.to_sparse()), model.linear(dense))
    assert float(model.forward_flops(dense.to_sparse())) == 2 * 3 * 2
