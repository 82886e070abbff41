"""Whether data is multi-label comes from its form or the user's switch, never from a missing label; settings
that cannot work are refused before anything runs."""

import logging

import pytest
from transformers import AutoConfig

from cli import main
from datamodules import DocumentDataModule
from datamodules.corpus import DataError, FileFormat, load_corpus
from tests.conftest import ROOT, write_jsonl
from utils.options import OptionError

LABELS = ["a", "b", "c"]


def rows(n: int, labels=None) -> list[dict]:
    """``n`` documents of three classes; ``labels`` overrides some rows' label values."""
    out = [{"id": f"d{i}", "label": LABELS[i % 3], "text": f"words of document {i}"} for i in range(n)]
    for i, value in (labels or {}).items():
        out[i] = {k: v for k, v in out[i].items() if k != "label"} | ({} if value is ... else {"label": value})
    return out


def corpus_folder(tmp_path, train: list[dict], test: list[dict] | None = None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", test or rows(6))
    return str(tmp_path)


@pytest.mark.parametrize("value", [..., None, "", "   "], ids=["absent", "null", "empty", "blank"])
def test_a_training_row_without_a_label_is_an_error_naming_file_line_and_fix(tmp_path, value):
    folder = corpus_folder(tmp_path, rows(30, {7: value}))
    with pytest.raises(DataError, match=r"train\.jsonl, line 8: no label\. .*label_field.*drop_unlabelled"):
        load_corpus(folder, dev_size=0.2)


def test_dropping_unlabelled_rows_is_counted_and_keeps_the_task_single_label(tmp_path, caplog):
    folder = corpus_folder(tmp_path, rows(30, {7: None, 8: ...}), rows(6, {0: ""}))
    with caplog.at_level(logging.WARNING):
        corpus = load_corpus(folder, dev_size=0.2, drop_unlabelled=True)
    assert not corpus.multi_label
    assert len(corpus["train"]) + len(corpus["dev"]) == 28 and len(corpus["test"]) == 5
    assert "train (train.jsonl): dropped 2 documents without a label" in caplog.text
    assert "test (test.jsonl): dropped 1 documents without a label" in caplog.text
    assert (
        corpus.read_counts["train"]["dropped_unlabelled"] == 2 and corpus.read_counts["test"]["dropped_unlabelled"] == 1
    )


def test_a_misspelt_label_field_is_refused_not_read_from_another_field(tmp_path):
    folder = corpus_folder(tmp_path, rows(30))
    with pytest.raises(DataError, match=r"line 1: no label\. Fill in field 'lable'"):
        load_corpus(folder, dev_size=0.2, file_format=FileFormat(label_field="lable"))


def test_an_id_field_no_row_carries_is_refused_in_jsonl_and_csv(tmp_path):
    folder = corpus_folder(tmp_path, rows(30))
    with pytest.raises(DataError, match="no id field 'doc_id'"):
        load_corpus(folder, dev_size=0.2, file_format=FileFormat(id_field="doc_id"))
    csv_folder = tmp_path / "csv"
    csv_folder.mkdir()
    for split in ("train", "test"):
        (csv_folder / f"{split}.csv").write_text(
            "label,text\n" + "".join(f"{LABELS[i % 3]},doc {i}\n" for i in range(12))
        )
    with pytest.raises(DataError, match="no column 'doc_id'"):
        load_corpus(str(csv_folder), dev_size=0.2, file_format=FileFormat(id_field="doc_id"))


def test_an_empty_csv_label_cell_is_an_error_with_its_row(tmp_path):
    for split in ("train", "test"):
        lines = [f"{'' if (split, i) == ('train', 4) else LABELS[i % 3]},doc {i}" for i in range(12)]
        (tmp_path / f"{split}.csv").write_text("label,text\n" + "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"train\.csv, row 5: no label\. Fill in its 'label' cell"):
        load_corpus(str(tmp_path), dev_size=0.2)


def test_label_lists_are_the_multi_label_form_even_with_one_label_each(tmp_path):
    train = [r | {"label": [r["label"]]} for r in rows(30)]
    folder = corpus_folder(tmp_path, train, [r | {"label": [r["label"]]} for r in rows(6)])
    assert load_corpus(folder, dev_size=0.2).multi_label
    assert not load_corpus(folder, dev_size=0.2, multi_label=False).multi_label


def test_the_switch_makes_plain_labels_multi_label_and_refuses_several_labels_when_single(tmp_path):
    folder = corpus_folder(tmp_path, rows(30))
    assert load_corpus(folder, dev_size=0.2, multi_label=True).multi_label
    several = corpus_folder(tmp_path / "several", rows(30, {3: ["a", "b"]}))
    with pytest.raises(DataError, match=r"document 'd3' has 2 labels.*--data\.multi_label true"):
        load_corpus(several, dev_size=0.2, multi_label=False)


def cli_args(folder) -> list[str]:
    return [
        *("--config", str(ROOT / "configs/students/logreg.yaml"), "--data.dataset", folder),
        *("--data.dev_size", "0.2", "--data.min_freq", "2", "--trainer.max_epochs", "1"),
        *("--trainer.enable_progress_bar", "false", "--wandb", "false"),
    ]


def test_fit_stops_on_an_unlabelled_row_and_the_switches_reach_the_model(tmp_path):
    folder = corpus_folder(tmp_path / "data", rows(30, {7: None}))
    with pytest.raises(DataError, match="line 8: no label"):
        main(["fit", *cli_args(folder)])
    cli = main(["fit", *cli_args(folder), "--data.drop_unlabelled", "true", "--data.multi_label", "true"])
    assert cli.model.multi_label and cli.datamodule.hparams["multi_label"] is True
    cli = main(["fit", *cli_args(folder), "--data.drop_unlabelled", "true"])
    assert not cli.model.multi_label and cli.datamodule.num_labels == 3


@pytest.mark.parametrize(
    ("setting", "value"),
    [("batch_size", 0), ("eval_batch_size", -1), ("num_partitions", 0), ("max_length", 0), ("min_freq", 0)],
)
def test_sizes_below_one_are_refused_before_anything_runs(tmp_path, setting, value):
    folder = corpus_folder(tmp_path, rows(30))
    with pytest.raises(OptionError, match=rf"--data\.{setting} must be at least 1, got {value}"):
        DocumentDataModule(dataset=folder, tokenizer=None, dev_size=0.2, **{setting: value})


def test_a_partition_longer_than_the_encoders_positions_is_refused_up_front(tmp_path, tiny_encoder_dir):
    positions = AutoConfig.from_pretrained(tiny_encoder_dir).max_position_embeddings
    folder = corpus_folder(tmp_path, rows(30))
    with pytest.raises(DataError, match=rf"Partitions of {2 * positions} tokens .* {positions} positions"):
        DocumentDataModule(dataset=folder, tokenizer=str(tiny_encoder_dir), max_length=4 * positions, num_partitions=2)
    DocumentDataModule(dataset=folder, tokenizer=str(tiny_encoder_dir), max_length=4 * positions, num_partitions=4)


def test_a_single_class_dataset_is_refused(tmp_path):
    one = [r | {"label": "a"} for r in rows(30)]
    folder = corpus_folder(tmp_path, one, [r | {"label": "a"} for r in rows(6)])
    with pytest.raises(DataError, match="only one label \\('a'\\); a classifier needs at least two"):
        load_corpus(folder, dev_size=0.2)
