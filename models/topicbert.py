"""TopicBERT: a pretrained encoder's [CLS] vector joined with the NVDM document-topic vector.

Without a topic model the same module is the plain fine-tuned BERT baseline ([CLS] -> dropout ->
linear), so TopicBERT and BERT are always compared through one code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from models.nvdm import NVDM, NVDMOutput
from models.pretrained import load_pretrained

Pooling = Literal["cls", "mean"]


@dataclass
class TopicBertOutput:
    """Class logits per example and, for TopicBERT, the topic model's output."""

    logits: Tensor
    topics: NVDMOutput | None = None


def load_encoder(name: str, attn_implementation: str = "sdpa") -> nn.Module:
    """Any ``transformers.AutoModel`` encoder by hub name or folder, without its unused pooler head."""
    from transformers import AutoModel

    encoder = load_pretrained(AutoModel, name, attn_implementation=attn_implementation)
    encoder.train()  # from_pretrained returns eval mode; Lightning keeps submodule modes as they are.
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # TopicBERT reads the [CLS] hidden state itself; the pooler would get no gradient.
    return encoder


def encoder_forward_flops(encoder: nn.Module, lengths: list[int], head_params: int = 0) -> float:
    """FLOPs of one forward pass of a BERT-style encoder over sequences of ``lengths`` real tokens.

    Per sequence of T tokens: 2 FLOPs per weight-matrix entry and token (embeddings are lookups;
    biases and norms are left out, as in the usual 2 x parameters x tokens count), 4 x layers x
    width x T^2 for attention scores and values, and 2 per entry of the pooler and of the
    ``head_params`` matrices once. A training step costs three times this (backward = 2 x forward).
    """
    per_token = per_sequence = 0
    for name, p in encoder.named_parameters():
        if p.dim() == 2 and "embeddings" not in name:
            if "pooler" in name:
                per_sequence += p.numel()
            else:
                per_token += p.numel()
    per_sequence += head_params
    width_layers = encoder.config.num_hidden_layers * encoder.config.hidden_size
    return float(sum(2 * per_token * t + 4 * width_layers * t * t + 2 * per_sequence for t in lengths))


class TopicBert(nn.Module):
    """Encoder + optional NVDM + classifier.

    With a topic model: ``h_p = [dropout(o_CLS); h_TM] P`` (projection back to the encoder width),
    then ``logits = h_p Q + b``. Without: ``logits = dropout(o_CLS) Q + b``.

    Args:
        encoder: a Hugging Face encoder returning ``last_hidden_state``.
        num_labels: L, the number of classes.
        nvdm: the topic model, or None for the BERT baseline.
        dropout: dropout on the pooled encoder vector.
        pooling: ``cls`` (the paper) or ``mean`` of the non-padding token vectors.
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_labels: int,
        nvdm: NVDM | None = None,
        dropout: float = 0.1,
        pooling: Pooling = "cls",
    ):
        super().__init__()
        self.encoder = encoder
        self.nvdm = nvdm
        self.pooling = pooling
        width = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(width + nvdm.num_topics, width) if nvdm is not None else None
        self.classifier = nn.Linear(width, num_labels)

    def pool(self, hidden: Tensor, attention_mask: Tensor) -> Tensor:
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)

    def forward_flops(self, partition_lengths: list[int]) -> float:
        """FLOPs of one forward pass over a document's partitions (their lengths in tokens); the
        topic model, projection and classifier run once per partition."""
        head = sum(p.numel() for n, p in self.named_parameters() if p.dim() == 2 and not n.startswith("encoder."))
        return encoder_forward_flops(self.encoder, partition_lengths, head)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, bow: Tensor | None = None) -> TopicBertOutput:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = self.dropout(self.pool(hidden, attention_mask))
        if self.nvdm is None:
            return TopicBertOutput(self.classifier(pooled))
        if bow is None:
            raise ValueError("TopicBERT needs the document's bag of words ('bow') next to its tokens.")
        topics = self.nvdm(bow)
        joined = torch.cat([pooled, topics.topic_vector.to(pooled.dtype)], dim=-1)
        return TopicBertOutput(self.classifier(self.projection(joined)), topics)
