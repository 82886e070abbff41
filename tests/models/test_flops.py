"""Counted encoder FLOPs against torch's FlopCounterMode, where the usual formula holds and where it does not."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from transformers import AlbertConfig, AutoModel, BertConfig, DistilBertConfig

from models.flops import FlopsNotModelledError, count_encoder_flops

CONFIGS = {
    "bert": BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "distilbert": DistilBertConfig(vocab_size=64, dim=32, n_layers=3, n_heads=2, hidden_dim=48),
    # ALBERT shares one layer's weights across its 4 layers: a per-parameter count is 4x too low
    "albert": AlbertConfig(
        vocab_size=64,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
    ),
}


def counted(encoder, lengths: list[int]) -> int:
    """FlopCounterMode's count of one forward pass per sequence, summed over the sequences."""
    total = 0
    for length in lengths:
        ids = torch.zeros((1, length), dtype=torch.long)
        with FlopCounterMode(display=False) as counter:
            encoder(input_ids=ids, attention_mask=torch.ones_like(ids))
        total += counter.get_total_flops()
    return total


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_counted_model_matches_the_counter_at_unseen_lengths(name):
    torch.manual_seed(0)
    encoder = AutoModel.from_config(CONFIGS[name], attn_implementation="sdpa").eval()
    flops = count_encoder_flops(encoder)
    assert encoder.config._attn_implementation == "sdpa"  # put back after counting with eager attention
    encoder.set_attn_implementation("eager")
    lengths = [5, 41, 64]
    assert float(flops.total(torch.tensor(lengths))) == pytest.approx(counted(encoder, lengths), rel=1e-9)


def test_bert_count_is_the_analytic_formula():
    """2 FLOPs per weight-matrix entry and token, 4 x layers x width x T^2 for attention, the pooler once."""
    config = CONFIGS["bert"]
    encoder = AutoModel.from_config(config)
    flops = count_encoder_flops(encoder)
    matrices = sum(p.numel() for n, p in encoder.named_parameters() if p.dim() == 2 and "embeddings" not in n)
    pooler = encoder.pooler.dense.weight.numel()
    assert flops.per_token == 2 * (matrices - pooler)
    assert flops.per_token_pair == 4 * config.num_hidden_layers * config.hidden_size
    assert flops.per_sequence == 2 * pooler


def test_an_encoder_with_few_positions_is_probed_within_them_to_the_same_count():
    short = BertConfig(**{**CONFIGS["bert"].to_dict(), "max_position_embeddings": 32})
    full, within = (count_encoder_flops(AutoModel.from_config(c)) for c in (CONFIGS["bert"], short))
    assert (within.per_token, within.per_token_pair, within.per_sequence) == pytest.approx(
        (full.per_token, full.per_token_pair, full.per_sequence), rel=1e-9
    )


def test_albert_costs_every_layer_although_it_stores_one():
    config = CONFIGS["albert"]
    albert = count_encoder_flops(AutoModel.from_config(config))
    layer = 4 * 32 * 32 + 2 * 32 * 64  # attention projections and feed-forward of the one stored layer
    assert albert.per_token == 2 * (16 * 32 + config.num_hidden_layers * layer)  # the embedding projection once


class CubicEncoder(nn.Module):
    """An encoder whose cost grows with T^3 (it multiplies T x T matrices), which no quadratic fits."""

    config = None

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1))

    def forward(self, input_ids, attention_mask):
        scores = torch.ones(input_ids.shape[1], input_ids.shape[1]) * self.weight
        return scores @ scores


def test_a_cost_that_is_not_quadratic_is_refused():
    with pytest.raises(FlopsNotModelledError, match="not a quadratic function of the sequence length"):
        count_encoder_flops(CubicEncoder())


def test_an_encoder_that_cannot_switch_to_eager_attention_is_refused():
    class OldStyle(CubicEncoder):
        config = type("Config", (), {"_attn_implementation": "sdpa"})()

    with pytest.raises(FlopsNotModelledError, match="set_attn_implementation"):
        count_encoder_flops(OldStyle())
