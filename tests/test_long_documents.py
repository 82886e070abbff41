"""Documents longer than the encoder's position limit: N above it with partitions within it train,
evaluate and predict; a partition beyond it is refused before anything runs."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from cli import main
from datamodules.formats import DataError
from tests.conftest import tiny_args


@pytest.fixture(scope="module")
def short_encoder(tiny_encoder_dir, tmp_path_factory):
    """The tiny BERT with only 32 positions."""
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("short_bert")
    for name in os.listdir(tiny_encoder_dir):
        if name.endswith((".json", ".txt")) and name != "config.json":
            shutil.copy(tiny_encoder_dir / name, folder / name)
    config = BertConfig.from_pretrained(tiny_encoder_dir)
    config.max_position_embeddings = 32
    BertModel(config).save_pretrained(folder)
    return folder


def test_n_beyond_the_positions_with_partitions_within_them(short_encoder, tiny_corpus_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [*tiny_args(tiny_corpus_dir, short_encoder), "--data.max_length", "128", "--data.num_partitions", "4"]
    fitted = main(["fit", *args, "--trainer.max_epochs", "1", "--wandb", "false"])
    dm = fitted.datamodule
    lengths = dm.views.split("test").tokens.lengths()
    partitions = dm.datasets["test"].doc_index
    longest = int(lengths.argmax())
    assert lengths.max() > 32 and list(partitions).count(longest) == min(4, -(-int(lengths.max()) // 30))
    assert 0 <= fitted.trainer.callback_metrics["test_macro_f1"] <= 1
    results = json.loads((tmp_path / fitted.trainer.log_dir / "results.json").read_text())
    assert results["partition_length"] == 32 and results["data_report"]["test"]["cut_to_max_length"] == int(
        (lengths > 4 * 30).sum()
    )
    best = os.path.abspath(fitted.trainer.checkpoint_callback.best_model_path)
    out = tmp_path / "p.jsonl"
    main(
        ["predict", "--ckpt_path", best, "--data.dataset", str(tiny_corpus_dir), "--predictions.output_path", str(out)]
    )
    assert len(out.read_text().splitlines()) == 30


def test_a_partition_beyond_the_positions_is_refused(short_encoder, tiny_corpus_dir):
    args = [*tiny_args(tiny_corpus_dir, short_encoder), "--data.max_length", "128", "--data.num_partitions", "2"]
    with pytest.raises(DataError, match=r"Partitions of 64 tokens .* exceed the 32 positions"):
        main(["fit", *args])
