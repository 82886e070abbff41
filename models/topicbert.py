"""TopicBERT: a pretrained encoder's [CLS] vector joined with the NVDM document-topic vector.

Without a topic model the same module is the plain fine-tuned BERT baseline ([CLS] -> dropout ->
linear), so TopicBERT and BERT are always compared through one code path.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import Tensor, nn

from models.flops import FlopsNotModelledError, SequenceFlops, count_encoder_flops, dense_flops
from models.nvdm import NVDM, NVDMOutput
from utils.pretrained import load_pretrained

log = logging.getLogger(__name__)
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
        width: int = cast(Any, encoder.config).hidden_size  # a Hugging Face config; nn.Module types it Tensor | Module
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(width + nvdm.num_topics, width) if nvdm is not None else None
        self.classifier = nn.Linear(width, num_labels)

    def pool(self, hidden: Tensor, attention_mask: Tensor) -> Tensor:
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)

    @functools.cached_property
    def flops(self) -> SequenceFlops | None:
        """FLOPs per partition: the encoder's counted cost, then the topic model, projection and
        classifier once (their weight matrices, dense); None (with a warning) for an encoder whose
        cost the counter cannot model."""
        head = sum(dense_flops(m) for name, m in self.named_children() if name != "encoder")
        try:
            return count_encoder_flops(self.encoder).with_per_sequence(head)
        except FlopsNotModelledError as err:
            log.warning("%s", err)
            return None

    def forward_flops(self, lengths: Tensor) -> Tensor | None:
        """FLOPs of one forward pass over partitions of ``lengths`` real tokens."""
        return self.flops.total(lengths) if self.flops is not None else None

    def forward(self, input_ids: Tensor, attention_mask: Tensor, bow: Tensor | None = None) -> TopicBertOutput:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = self.dropout(self.pool(hidden, attention_mask))
        if self.nvdm is None:
            return TopicBertOutput(self.classifier(pooled))
        if bow is None:
            raise ValueError("TopicBERT needs the document's bag of words ('bow') next to its tokens.")
        topics = self.nvdm(bow)
        joined = torch.cat([pooled, topics.topic_vector.to(pooled.dtype)], dim=-1)
        assert self.projection is not None  # built whenever there is a topic model
        return TopicBertOutput(self.classifier(self.projection(joined)), topics)
