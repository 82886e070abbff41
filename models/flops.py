"""Model FLOPs of a forward pass over token sequences, for throughput and MFU figures.

An encoder's cost is counted, not assumed: ``torch.utils.flop_counter.FlopCounterMode`` counts one
forward pass (eager attention) at three sequence lengths, the three coefficients of
``flops(T) = per_token * T + per_token_pair * T^2 + per_sequence`` are solved from them, and a fourth
length checks the fit. For BERT-style encoders this reproduces the usual analytic count (2 FLOPs per
weight-matrix entry and token, plus 4 x layers x width x T^2 for attention scores and values) and it
stays right where that formula is wrong, such as ALBERT, whose shared layer weights run once per layer.
An encoder whose cost is not quadratic in T is refused instead of given a wrong figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from transformers import PreTrainedModel

PROBE_LENGTHS = (8, 16, 32)
CHECK_LENGTH = 48


class FlopsNotModelledError(ValueError):
    """The model's FLOPs do not follow the per-sequence model; no figure is better than a wrong one."""


@dataclass(frozen=True)
class SequenceFlops:
    """FLOPs of one forward pass over a sequence of T tokens: ``per_token * T + per_token_pair * T^2
    + per_sequence``. A training step costs three times this (backward = 2 x forward)."""

    per_token: float
    per_token_pair: float
    per_sequence: float

    def total(self, lengths: Tensor) -> Tensor:
        """Summed over sequences of ``lengths`` tokens; stays on the lengths' device (no host sync)."""
        t = lengths.to(torch.float64)
        return self.per_token * t.sum() + self.per_token_pair * t.square().sum() + self.per_sequence * t.numel()

    def of(self, length: int) -> float:
        return self.per_token * length + self.per_token_pair * length**2 + self.per_sequence

    def with_per_sequence(self, flops: float) -> SequenceFlops:
        """The same model plus ``flops`` once per sequence (a classification head, say)."""
        return SequenceFlops(self.per_token, self.per_token_pair, self.per_sequence + flops)


def dense_flops(module: nn.Module) -> float:
    """FLOPs of applying every weight matrix of ``module`` once: 2 per entry (multiply and add)."""
    return float(sum(2 * p.numel() for p in module.parameters() if p.dim() == 2))


def probe_lengths(positions: int | None) -> tuple[tuple[int, int, int], int]:
    """Three lengths to fit and one to check, all within the encoder's positions."""
    if positions is None or positions >= CHECK_LENGTH:
        return PROBE_LENGTHS, CHECK_LENGTH
    return (positions // 6, positions // 3, 2 * positions // 3), positions


def _count(encoder: nn.Module, length: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    device = next(encoder.parameters()).device
    ids = torch.zeros((1, length), dtype=torch.long, device=device)
    with FlopCounterMode(display=False) as counter:
        encoder(input_ids=ids, attention_mask=torch.ones_like(ids))
    return counter.get_total_flops()


@torch.no_grad()
def count_encoder_flops(encoder: nn.Module) -> SequenceFlops:
    """Count a Hugging Face encoder's forward FLOPs (see the module docstring); raises
    :class:`FlopsNotModelledError` when the counts do not fit ``flops(T)``."""
    previous_mode = encoder.training
    attention = getattr(encoder.config, "_attn_implementation", None)
    hf_encoder = cast("PreTrainedModel", encoder)  # used only when it has an attention implementation
    if attention not in (None, "eager") and not hasattr(encoder, "set_attn_implementation"):
        raise FlopsNotModelledError(
            f"{type(encoder).__name__} runs {attention} attention and this transformers version cannot switch it "
            "to eager attention for counting (set_attn_implementation); upgrade transformers for model TFLOP/s and "
            "MFU."
        )
    encoder.eval()
    if attention not in (None, "eager"):
        hf_encoder.set_attn_implementation("eager")  # fused kernels are not all known to the counter
    probes, check = probe_lengths(getattr(encoder.config, "max_position_embeddings", None))
    try:
        counts = [_count(encoder, t) for t in (*probes, check)]
    finally:
        if attention not in (None, "eager"):
            hf_encoder.set_attn_implementation(attention)
        encoder.train(previous_mode)
    powers = torch.tensor([[t, t * t, 1.0] for t in probes], dtype=torch.float64)
    per_token, per_pair, per_sequence = torch.linalg.solve(powers, torch.tensor(counts[:3], dtype=torch.float64))
    model = SequenceFlops(per_token.item(), per_pair.item(), per_sequence.item())
    if abs(model.of(check) - counts[3]) > 1e-6 * counts[3]:
        name = type(encoder).__name__
        raise FlopsNotModelledError(
            f"{name}'s FLOPs are not a quadratic function of the sequence length (counted {counts[3]:.4g} at "
            f"{check} tokens, fitted {model.of(check):.4g}); model TFLOP/s and MFU are not reported "
            "for it."
        )
    return model
