"""Cheap student models for distillation: a regularised BiLSTM, KimCNN and logistic regression.

The token students' evaluation path compiles with TorchScript (``serving.students`` exports them),
so this module keeps real annotations (no ``from __future__ import annotations``) and marks the
training-only regularisers ``torch.jit.unused``.
"""

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from utils.pretrained import load_pretrained


def teacher_embeddings(encoder: str) -> Tensor:
    """The input word embeddings of a pretrained encoder (students then share its tokenizer's ids)."""
    from transformers import AutoModel

    return load_pretrained(AutoModel, encoder).get_input_embeddings().weight.detach().clone()


def make_embedding(weights: Tensor | None, vocab_size: int, dim: int, freeze: bool) -> nn.Embedding:
    if weights is not None:
        return nn.Embedding.from_pretrained(weights, freeze=freeze, padding_idx=None)
    embedding = nn.Embedding(vocab_size, dim)
    embedding.weight.requires_grad_(not freeze)
    return embedding


def drop_words(embedded: Tensor, input_ids: Tensor, p: float) -> Tensor:
    """Embedding dropout that drops whole words: every occurrence of a dropped token id in the batch
    is zeroed, the rest are scaled by 1 / (1 - p) (Gal & Ghahramani; hedwig's embed_droprate)."""
    unique, inverse = input_ids.unique(return_inverse=True)
    keep = torch.empty(len(unique), device=embedded.device, dtype=embedded.dtype).bernoulli_(1 - p) / (1 - p)
    return embedded * keep[inverse].unsqueeze(-1)


class BiLSTM(nn.Module):
    """hedwig's LSTM_reg: word dropout on the embeddings, DropConnect on the hidden-to-hidden weights,
    a (bi)directional LSTM, max-pooling over time, dropout and a linear classifier.

    Args:
        embedding: word embeddings (from the teacher or random).
        num_labels: number of classes.
        hidden_size: LSTM units per direction.
        bidirectional: read the document both ways.
        embed_dropout: probability of dropping a word type in a batch.
        weight_drop: DropConnect probability on the recurrent weights.
        dropout: dropout before the classifier.
    """

    def __init__(
        self,
        embedding: nn.Embedding,
        num_labels: int,
        hidden_size: int = 256,
        bidirectional: bool = True,
        embed_dropout: float = 0.1,
        weight_drop: float = 0.2,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.embedding = embedding
        self.lstm = nn.LSTM(embedding.embedding_dim, hidden_size, batch_first=True, bidirectional=bidirectional)
        self.embed_dropout = embed_dropout
        self.weight_drop = weight_drop
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size * (2 if bidirectional else 1), num_labels)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        embedded = self.embedding(input_ids)
        if self.training and self.embed_dropout > 0:
            embedded = self.dropped_words(embedded, input_ids)
        lengths = attention_mask.sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        if self.training and self.weight_drop > 0:
            output = self.lstm_with_dropconnect(packed)
        else:
            output, _ = self.lstm(packed)
        hidden, _ = pad_packed_sequence(output, batch_first=True, padding_value=float("-inf"))
        return self.classifier(self.dropout(hidden.max(dim=1).values))

    @torch.jit.unused  # training only, like the next: the exported (TorchScript) student is the evaluation path
    def dropped_words(self, embedded: Tensor, input_ids: Tensor) -> Tensor:
        return drop_words(embedded, input_ids, self.embed_dropout)

    @torch.jit.unused
    def lstm_with_dropconnect(self, packed: PackedSequence) -> PackedSequence:
        weights = {
            name: F.dropout(w, self.weight_drop) if name.startswith("weight_hh") else w
            for name, w in self.lstm.named_parameters()
        }
        output, _ = torch.func.functional_call(self.lstm, weights, (packed,))
        return output

    def forward_flops(self, lengths: Tensor) -> Tensor:
        """FLOPs of one forward pass over documents of ``lengths`` word pieces: per direction and token,
        4 gates x (E x H + H x H) multiply-adds, then the classifier (lookups and pooling free)."""
        lstm, directions = self.lstm, 2 if self.lstm.bidirectional else 1
        per_token = 2 * 4 * lstm.hidden_size * (lstm.input_size + lstm.hidden_size) * directions
        classifier = 2 * self.classifier.in_features * self.classifier.out_features
        return per_token * lengths.to(torch.float64).sum() + classifier * lengths.numel()


class KimCNN(nn.Module):
    """Kim (2014): convolutions of several widths over word embeddings, max-over-time pooling, dropout.

    Args:
        embedding: word embeddings (from the teacher or random).
        num_labels: number of classes.
        widths: filter widths.
        maps: feature maps per width.
        dropout: dropout before the classifier.
    """

    def __init__(
        self,
        embedding: nn.Embedding,
        num_labels: int,
        widths: tuple[int, ...] = (3, 4, 5),
        maps: int = 100,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.embedding = embedding
        self.widths = tuple(widths)
        self.convs = nn.ModuleList(nn.Conv1d(embedding.embedding_dim, maps, w) for w in self.widths)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(maps * len(self.widths), num_labels)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        shortfall = max(self.widths) - input_ids.shape[1]
        if shortfall > 0:  # every filter needs at least one window
            input_ids = F.pad(input_ids, (0, shortfall))
            attention_mask = F.pad(attention_mask, (0, shortfall))
        embedded = self.embedding(input_ids).transpose(1, 2)
        lengths = attention_mask.sum(1, keepdim=True)
        pooled = []
        for width, conv in zip(self.widths, self.convs, strict=True):
            features = F.relu(conv(embedded))
            positions = torch.arange(features.shape[-1], device=features.device).unsqueeze(0)
            valid = (positions + width <= lengths) | (positions == 0)  # a window that stays inside the document
            pooled.append(features.masked_fill(~valid.unsqueeze(1), float("-inf")).max(dim=-1).values)
        return self.classifier(self.dropout(torch.cat(pooled, dim=-1)))

    def forward_flops(self, lengths: Tensor) -> Tensor:
        """FLOPs of one forward pass over documents of ``lengths`` word pieces: every window of every
        filter, then the classifier."""
        conv = cast(nn.Conv1d, self.convs[0])  # ModuleList items are typed as plain Modules
        dim, maps, t = self.embedding.embedding_dim, conv.out_channels, lengths.to(torch.float64)
        # a Tensor, not sum()'s start value 0: there is always at least one width
        windows = cast(Tensor, sum(2 * w * dim * maps * (t - w + 1).clamp(min=1).sum() for w in self.widths))
        return windows + 2 * self.classifier.in_features * self.classifier.out_features * lengths.numel()


class SparseLogisticRegression(nn.Module):
    """A linear classifier over sparse tf-idf vectors (softmax or per-label sigmoid on top)."""

    def __init__(self, num_features: int, num_labels: int):
        super().__init__()
        self.linear = nn.Linear(num_features, num_labels)

    def forward(self, features: Tensor) -> Tensor:
        return torch.sparse.mm(features, self.linear.weight.t()) + self.linear.bias

    def forward_flops(self, features: Tensor) -> Tensor:
        """FLOPs of one forward pass over a batch of sparse tf-idf vectors: 2 per non-zero and label."""
        return torch.tensor(2.0 * features._nnz() * self.linear.out_features, dtype=torch.float64)
