"""The fine-tuning benchmark on tiny data: every variant runs, counts real tokens, and ratios add up."""

import json

import pytest

from datamodules.corpus import load_corpus
from datamodules.tokens import load_tokenizer
from reports.finetune_benchmark import finetune_benchmark, random_encoder_folder, run_hf_trainer, trainer_rows


@pytest.mark.slow
def test_every_variant_runs_and_the_ratios_come_from_documents_per_second(tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    result = finetune_benchmark(
        str(tiny_corpus_dir),
        encoder=str(tiny_encoder_dir),
        max_length=64,
        partition_lengths=[64, 32],
        documents=40,
        batch_size=8,
        warmup_passes=1,
        repeats=2,
        out=str(tmp_path / "out"),
    )
    assert set(result["runs"]) == {"a", "b", "c64", "c32", "d"}
    for variant, runs in result["runs"].items():
        steps = [r["timed_steps"] for r in runs]
        if variant == "c32":  # two partitions per longer document: more steps for the same documents
            assert len(runs) == 2 and min(steps) > 5
        else:
            assert steps == [5, 5]  # 40 documents / batch 8: the timed pass, not the warm-up pass
        # each partition counts 1/p of a document: the timed pass holds exactly the sampled documents
        assert [r["timed_documents"] for r in runs] == pytest.approx([40, 40])
        assert all(r["tokens_per_s"] > 0 and r["docs_per_s"] > 0 and r["peak_memory_mb"] >= 0 for r in runs)
        # model FLOP/s of real tokens: positive, and below the measured fp32 matmul peak of this CPU
        assert all(0 < r["mfu"] < 1 and r["model_tflops_per_s"] > 0 for r in runs)
    a, b = result["runs"]["a"], result["runs"]["b"]
    ratios = sorted(rb["docs_per_s"] / ra["docs_per_s"] for ra, rb in zip(a, b, strict=True))
    assert result["ratios"]["b_over_a"]["min"] == pytest.approx(ratios[0])
    assert result["b_over_a"] == pytest.approx(sum(ratios) / 2)  # the median of two
    assert set(result["c_over_a"]) == {"64", "32"} and result["b_over_d"] > 0
    saved = json.loads((tmp_path / "out/finetune.json").read_text())
    assert saved["b_over_a"] == pytest.approx(result["b_over_a"])
    assert "| b / a |" in (tmp_path / "out/finetune.md").read_text()


def test_random_encoder_has_the_architecture_but_not_the_weights(tiny_encoder_dir, tmp_path):
    from transformers import AutoModel, BertConfig

    folder = random_encoder_folder(str(tiny_encoder_dir), str(tiny_encoder_dir), tmp_path / "random")
    source, random = AutoModel.from_pretrained(tiny_encoder_dir), AutoModel.from_pretrained(folder)
    assert random.config.to_diff_dict() == source.config.to_diff_dict()
    weight = "encoder.layer.0.attention.self.query.weight"
    assert not random.state_dict()[weight].equal(source.state_dict()[weight])
    assert (tmp_path / "random/tokenizer_config.json").is_file()
    small = tmp_path / "small"
    BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2).save_pretrained(small)
    with pytest.raises(ValueError, match="embeddings"):
        random_encoder_folder(str(small), str(tiny_encoder_dir), tmp_path / "bad")


@pytest.mark.slow
def test_the_trainer_reference_trains_multi_label_data_on_multi_hot_targets(tiny_multilabel_dir, tiny_encoder_dir):
    corpus = load_corpus(str(tiny_multilabel_dir), dev_size=0.1)
    rows = trainer_rows(corpus, load_tokenizer(str(tiny_encoder_dir)), max_length=32)
    train = corpus["train"]
    assert len(rows) == len(train.texts) and max(len(r["input_ids"]) for r in rows) == 32
    for row, labels in zip(rows, train.labels, strict=True):
        assert len(row["labels"]) == len(corpus.label_names) and sum(row["labels"]) == len(labels)
        assert {corpus.label_names[i] for i, on in enumerate(row["labels"]) if on} == set(labels)
    clock = run_hf_trainer(tiny_multilabel_dir, str(tiny_encoder_dir), 32, 16, warmup_passes=0, accelerator="cpu")
    assert clock.documents == len(train.texts) and clock.seconds > 0
