"""AdamW with separate learning rates for the pretrained encoder and the new layers."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def param_groups(
    model: nn.Module, encoder: nn.Module, encoder_lr: float, head_lr: float, weight_decay: float
) -> list[dict]:
    """Four named groups: encoder / head (everything else), each with and without weight decay.

    Biases and normalisation weights get no weight decay, as in BERT's recipe.
    """
    encoder_ids = {id(p) for p in encoder.parameters()}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {
        (enc, decay): [] for enc in (True, False) for decay in (True, False)
    }
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups[(id(param) in encoder_ids, not name.endswith(_NO_DECAY))].append(param)
    return [
        {
            "name": ("encoder" if enc else "head") + ("" if decay else "_no_decay"),
            "params": params,
            "lr": encoder_lr if enc else head_lr,
            "weight_decay": weight_decay if decay else 0.0,
        }
        for (enc, decay), params in groups.items()
        if params
    ]


def linear_warmup_decay(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int) -> LambdaLR:
    """Learning rate rises linearly for ``warmup_steps``, then falls linearly to zero at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return LambdaLR(optimizer, factor)


def adam(params, lr: float, weight_decay: float, device: torch.device) -> torch.optim.Adam:
    """Adam for the small models (NVDM, students): fused on CUDA, where one kernel updates every
    parameter and a bad step can be skipped on the device (``callbacks.nonfinite``) with no host
    synchronisation; PyTorch's default implementation elsewhere, so CPU runs are unchanged."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=device.type == "cuda")
