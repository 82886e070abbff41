import pytest
import torch
from torch import nn

from lightning_modules.optim import linear_warmup_decay, param_groups


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        self.classifier = nn.Linear(4, 2)


def test_param_groups_split_learning_rates_and_weight_decay():
    model = Tiny()
    groups = param_groups(model, model.encoder, encoder_lr=2e-5, head_lr=1e-3, weight_decay=0.01)
    by_param = {id(p): g for g in groups for p in g["params"]}
    assert by_param[id(model.encoder[0].weight)]["lr"] == 2e-5
    assert by_param[id(model.encoder[0].weight)]["weight_decay"] == 0.01
    assert by_param[id(model.encoder[0].bias)]["weight_decay"] == 0.0
    assert by_param[id(model.classifier.weight)]["lr"] == 1e-3
    assert by_param[id(model.classifier.bias)]["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert sorted(g["name"] for g in groups) == ["encoder", "encoder_no_decay", "head", "head_no_decay"]


def test_linear_warmup_then_decay_to_zero():
    optimizer = torch.optim.AdamW(nn.Linear(2, 2).parameters(), lr=1.0)
    scheduler = linear_warmup_decay(optimizer, warmup_steps=4, total_steps=10)
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert rates[5:] == pytest.approx([5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6])


def test_small_models_adam_is_fused_on_cuda_only():
    from lightning_modules.optim import adam

    params = list(torch.nn.Linear(3, 2).parameters())
    on_cuda = adam(params, 1e-3, 0.0, torch.device("cuda"))
    assert on_cuda.defaults["fused"] and on_cuda._step_supports_amp_scaling  # the NaN guard can skip on the device
    assert not adam(params, 1e-3, 0.0, torch.device("cpu")).defaults["fused"]  # CPU runs keep PyTorch's default
