import pytest
import torch

from models.flops import count_encoder_flops, dense_flops
from models.nvdm import NVDM
from models.topicbert import TopicBert, load_encoder


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    ids = torch.randint(5, 40, (3, 7))
    mask = torch.ones_like(ids)
    mask[2, 4:] = 0
    return ids, mask, torch.randint(0, 3, (3, 30)).float()


def test_topicbert_joins_cls_and_topic_vector(tiny_encoder_dir, batch):
    ids, mask, bow = batch
    model = TopicBert(load_encoder(str(tiny_encoder_dir)), num_labels=4, nvdm=NVDM(30, num_topics=6, hidden_size=8))
    assert model.projection.in_features == 32 + 6 and model.projection.out_features == 32
    out = model(ids, mask, bow)
    assert out.logits.shape == (3, 4)
    assert out.topics.topic_vector.shape == (3, 6)
    out.logits.sum().backward()
    assert model.nvdm.encoder[0].weight.grad is not None  # the classifier trains the topic model too


def test_without_topic_model_it_is_the_bert_baseline(tiny_encoder_dir, batch):
    ids, mask, bow = batch
    model = TopicBert(load_encoder(str(tiny_encoder_dir)), num_labels=4).eval()
    assert model.projection is None
    out = model(ids, mask, bow)
    assert out.topics is None
    hidden = model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
    torch.testing.assert_close(out.logits, model.classifier(hidden))


def test_encoder_loads_in_train_mode_without_pooler(tiny_encoder_dir):
    encoder = load_encoder(str(tiny_encoder_dir))
    assert encoder.training and encoder.pooler is None
    assert encoder.config._attn_implementation == "sdpa"
    assert load_encoder(str(tiny_encoder_dir), "eager").config._attn_implementation == "eager"


def test_mean_pooling_ignores_padding(tiny_encoder_dir):
    model = TopicBert(load_encoder(str(tiny_encoder_dir)), num_labels=2, pooling="mean")
    hidden = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    pooled = model.pool(hidden, torch.tensor([[1, 1, 0]]))
    torch.testing.assert_close(pooled, torch.tensor([[2.0, 2.0]]))


def test_topicbert_needs_bow(tiny_encoder_dir, batch):
    ids, mask, _ = batch
    model = TopicBert(load_encoder(str(tiny_encoder_dir)), 2, NVDM(30, 4, 8))
    with pytest.raises(ValueError, match="bag of words"):
        model(ids, mask)


def test_distilbert_encoder_works_through_the_same_path(tmp_path, tiny_encoder_dir, batch):
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    config = DistilBertConfig(vocab_size=64, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64)
    DistilBertModel(config).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_encoder_dir).save_pretrained(tmp_path)
    ids, mask, bow = batch
    model = TopicBert(load_encoder(str(tmp_path)), num_labels=3, nvdm=NVDM(30, num_topics=4, hidden_size=8))
    assert model.projection.in_features == 32 + 4
    assert model(ids, mask, bow).logits.shape == (3, 3)


def test_forward_flops_match_the_counter_for_a_batch_of_partitions(tiny_encoder_dir):
    from torch.utils.flop_counter import FlopCounterMode

    model = TopicBert(load_encoder(str(tiny_encoder_dir)), 4, NVDM(30, 6, 8)).eval()
    ids = torch.randint(5, 40, (2, 24))
    model.encoder.set_attn_implementation("eager")  # the counter's reference
    with FlopCounterMode(display=False) as counter:
        model(ids, torch.ones_like(ids), torch.rand(2, 30))
    assert float(model.forward_flops(torch.tensor([24, 24]))) == pytest.approx(counter.get_total_flops(), rel=1e-6)


def test_flops_count_a_pooler_and_head_once_per_sequence(tiny_encoder_dir):
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_encoder_dir, num_labels=5, attn_implementation="eager"
    ).eval()
    ids = torch.randint(5, 40, (1, 17))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    flops = count_encoder_flops(model.base_model).with_per_sequence(dense_flops(model.classifier))
    assert flops.of(17) == pytest.approx(counter.get_total_flops(), rel=1e-6)
