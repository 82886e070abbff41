import math

import pytest
import torch

from models.nvdm import NVDM, perplexity


def hand_set_nvdm() -> NVDM:
    """vocab 3, 2 topics: posterior mean (1, -1), unit variance, decoder logits (1, -1, 0) at the mean."""
    nvdm = NVDM(vocab_size=3, num_topics=2, hidden_size=2)
    with torch.no_grad():
        for layer in (nvdm.encoder[0], nvdm.to_mean, nvdm.to_logvar, nvdm.decoder):
            layer.weight.zero_()
            layer.bias.zero_()
        nvdm.to_mean.bias.copy_(torch.tensor([1.0, -1.0]))
        nvdm.decoder.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    return nvdm


def test_negative_elbo_on_a_hand_checked_case():
    nvdm = hand_set_nvdm().eval()
    out = nvdm(torch.tensor([[2.0, 0.0, 1.0]]))
    # KL(N((1,-1), I) || N(0, I)) = 0.5 * sum(mu^2 + var - 1 - log var) = 0.5 * (1 + 1) = 1
    assert out.kl.item() == pytest.approx(1.0)
    # logits at the mean: (1, -1, 0); log p_i = logit_i - log(e + 1/e + 1)
    lse = math.log(math.e + math.exp(-1) + 1)
    expected_nll = -(2 * (1 - lse) + 1 * (0 - lse))
    assert out.nll.item() == pytest.approx(expected_nll, rel=1e-6)
    assert out.loss.item() == pytest.approx(expected_nll + 1.0, rel=1e-6)
    assert out.loss_per_word.item() == pytest.approx((expected_nll + 1.0) / 3, rel=1e-6)
    torch.testing.assert_close(out.topic_vector, torch.tensor([[1.0, -1.0]]))


def test_training_samples_and_evaluation_uses_the_mean():
    torch.manual_seed(0)
    nvdm = NVDM(vocab_size=50, num_topics=8, hidden_size=16, num_samples=5)
    bow = torch.randint(0, 3, (4, 50)).float()
    nvdm.eval()
    a, b = nvdm(bow), nvdm(bow)
    torch.testing.assert_close(a.topic_vector, a.mean)
    torch.testing.assert_close(a.loss, b.loss)
    nvdm.train()
    c, d = nvdm(bow), nvdm(bow)
    assert c.topic_vector.shape == (4, 8)
    assert not torch.equal(c.topic_vector, d.topic_vector)
    assert c.nll.shape == c.kl.shape == c.word_count.shape == (4,)
    torch.testing.assert_close(c.word_count, bow.sum(1))


def test_loss_per_word_counts_empty_documents_as_one_word():
    nvdm = hand_set_nvdm().eval()
    out = nvdm(torch.zeros(1, 3))
    assert out.nll.item() == 0.0 and out.loss_per_word.item() == pytest.approx(1.0)


def test_perplexity_is_exp_of_mean_per_word_bound_over_documents_with_words():
    loss = torch.tensor([6.0, 2.0, 5.0])
    words = torch.tensor([3.0, 1.0, 0.0])
    assert perplexity(loss, words).item() == pytest.approx(math.exp(2.0))


def test_training_lowers_the_bound_and_topic_words_have_the_right_shape():
    torch.manual_seed(0)
    bow = torch.zeros(64, 20)
    bow[:32, :10] = torch.randint(0, 4, (32, 10)).float()
    bow[32:, 10:] = torch.randint(0, 4, (32, 10)).float()
    nvdm = NVDM(vocab_size=20, num_topics=4, hidden_size=16)
    optimizer = torch.optim.Adam(nvdm.parameters(), lr=1e-2)
    nvdm.eval()
    before = nvdm(bow).loss_per_word.mean().item()
    nvdm.train()
    for _ in range(200):
        optimizer.zero_grad()
        nvdm(bow).loss.mean().backward()
        optimizer.step()
    nvdm.eval()
    assert nvdm(bow).loss_per_word.mean().item() < before - 0.3
    words = nvdm.topic_word_indices(top_n=5)
    assert words.shape == (4, 5) and words.max() < 20
