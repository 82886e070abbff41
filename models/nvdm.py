"""Neural Variational Document Model (Miao et al., 2016), the topic model inside TopicBERT."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

Activation = Literal["sigmoid", "tanh", "relu", "softplus"]
_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus}


@dataclass
class NVDMOutput:
    """Per-document results of one NVDM pass.

    ``topic_vector`` is a posterior sample while training and the posterior mean otherwise.
    ``nll`` (reconstruction, averaged over samples) and ``kl`` are in nats per document.
    """

    mean: Tensor
    logvar: Tensor
    topic_vector: Tensor
    nll: Tensor
    kl: Tensor
    word_count: Tensor

    @property
    def loss(self) -> Tensor:
        """Negative ELBO per document: reconstruction + KL (an upper bound on -log p(doc))."""
        return self.nll + self.kl

    @property
    def loss_per_word(self) -> Tensor:
        """Negative ELBO divided by the document's word count: the log-perplexity bound.

        This is the normalised NVDM loss of TopicBERT's joint objective. The raw bound grows with
        document length (hundreds of nats for a news article) and would swamp the cross-entropy;
        per word it is about log(vocabulary size) at the start and falls as topics form, whatever the
        document's length. Documents with no vocabulary word count as one word.
        """
        return self.loss / self.word_count.clamp(min=1)


class NVDM(nn.Module):
    """Bag of words -> MLP -> Gaussian posterior over K topics -> softmax decoder over the vocabulary.

    Args:
        vocab_size: Z, the number of topic-model words.
        num_topics: K, the size of the document-topic representation.
        hidden_size: width of the MLP encoder.
        activation: non-linearity of the MLP encoder (sigmoid in the paper).
        num_samples: S, posterior samples averaged in the reconstruction term while training.
    """

    def __init__(
        self,
        vocab_size: int,
        num_topics: int = 100,
        hidden_size: int = 256,
        activation: Activation = "sigmoid",
        num_samples: int = 1,
    ):
        super().__init__()
        if num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}.")
        self.num_topics = num_topics
        self.num_samples = num_samples
        self.encoder = nn.Sequential(nn.Linear(vocab_size, hidden_size), _ACTIVATIONS[activation]())
        self.to_mean = nn.Linear(hidden_size, num_topics)
        self.to_logvar = nn.Linear(hidden_size, num_topics)
        self.decoder = nn.Linear(num_topics, vocab_size)
        # A zero log-variance head starts every posterior at unit variance, as in Miao et al.'s code;
        # random starts can give huge variances and an exploding KL in the first steps.
        nn.init.zeros_(self.to_logvar.weight)
        nn.init.zeros_(self.to_logvar.bias)

    def forward(self, bow: Tensor) -> NVDMOutput:
        bow = bow.float()
        hidden = self.encoder(bow)
        mean, logvar = self.to_mean(hidden), self.to_logvar(hidden)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
        if self.training:
            std = (0.5 * logvar).exp()
            samples = mean + std * torch.randn((self.num_samples, *mean.shape), device=mean.device, dtype=mean.dtype)
        else:
            samples = mean.unsqueeze(0)
        log_probs = torch.log_softmax(self.decoder(samples), dim=-1)
        nll = -(log_probs * bow).sum(-1).mean(0)
        return NVDMOutput(mean, logvar, samples[0], nll, kl, bow.sum(-1))

    def topic_word_indices(self, top_n: int = 10) -> Tensor:
        """(K, top_n) vocabulary indices of each topic's highest-weighted words in the decoder."""
        return self.decoder.weight.detach().t().topk(top_n, dim=-1).indices


def perplexity(loss: Tensor, word_count: Tensor) -> Tensor:
    """exp of the mean per-word negative ELBO over documents that have words (Miao et al.'s measure)."""
    has_words = word_count > 0
    return (loss[has_words] / word_count[has_words]).mean().exp()
