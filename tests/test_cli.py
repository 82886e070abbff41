"""The CLI is the integration test: fit, then test and predict from the checkpoint, on tiny data."""

import json
import os
import re
import subprocess
import sys
from argparse import ArgumentError
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from callbacks.prediction_writer import PredictionWriter
from cli import main
from datamodules.corpus import DataError
from lightning_modules.base import CheckpointMismatchError
from lightning_modules.topicbert_task import TopicBertTask
from tests.conftest import ROOT, nvdm_args, tiny_args, write_jsonl
from utils.pretrained import EncoderNotFoundError

CONFIGS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs").rglob("*.yaml"))


@dataclass
class Fitted:
    cli: object
    folder: Path  # the run folder, absolute
    best: str  # the best checkpoint, absolute
    args: list[str]


@pytest.fixture(scope="module")
def fitted(tiny_corpus_dir, tiny_encoder_dir, tmp_path_factory) -> Fitted:
    """One tiny TopicBERT fit shared by the round-trip tests."""
    home = tmp_path_factory.mktemp("fitted")
    args = [*tiny_args(tiny_corpus_dir, tiny_encoder_dir), "--model.init_args.num_topics", "8"]
    previous = os.getcwd()
    os.chdir(home)
    try:
        cli = main(["fit", *args, "--model.init_args.head_lr", "3e-3"])
    finally:
        os.chdir(previous)
    best = str(home / cli.trainer.checkpoint_callback.best_model_path)
    return Fitted(cli, home / cli.trainer.log_dir, best, args)


def test_fit_writes_checkpoints_and_tests_the_best(fitted):
    assert (fitted.folder / "checkpoints" / "last.ckpt").is_file()
    assert Path(fitted.best).is_file()
    assert (fitted.folder / "config.yaml").is_file()
    metrics = fitted.cli.trainer.callback_metrics
    assert 0.0 <= metrics["test_macro_f1"] <= 1.0 and "test_micro_f1" in metrics and "test_accuracy" in metrics
    assert metrics["test_macro_f1"] > 0.6  # three well separated topics
    checkpoint = torch.load(fitted.best, weights_only=True)
    assert checkpoint["hyper_parameters"]["num_labels"] == 3
    assert checkpoint["hyper_parameters"]["vocab_size"] == fitted.cli.datamodule.vocab_size


def test_links_from_data_to_model(fitted):
    model, dm = fitted.cli.model, fitted.cli.datamodule
    assert model.hparams.num_labels == dm.num_labels == 3
    assert model.hparams.vocab_size == dm.vocab_size
    assert model.hparams.encoder == dm.tokenizer_name
    assert model.model.classifier.out_features == 3


def test_test_from_checkpoint_reproduces_the_score(fitted):
    again = main(["test", *fitted.args, "--ckpt_path", fitted.best])
    assert again.trainer.callback_metrics["test_macro_f1"] == pytest.approx(
        fitted.cli.trainer.callback_metrics["test_macro_f1"].item(), abs=1e-6
    )


def test_validate_from_checkpoint_scores_the_dev_split(fitted):
    validated = main(["validate", *fitted.args, "--ckpt_path", fitted.best])
    assert validated.trainer.callback_metrics["val_macro_f1"] == pytest.approx(
        fitted.cli.trainer.checkpoint_callback.best_model_score.item(), abs=1e-6
    )


def test_predict_writes_one_json_line_per_document(fitted, tiny_corpus_dir):
    predicted = main(["predict", *fitted.args, "--ckpt_path", fitted.best])
    writer = next(c for c in predicted.trainer.callbacks if isinstance(c, PredictionWriter))
    out = writer.written
    assert out.parent == Path(predicted.trainer.log_dir)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    test_ids = [json.loads(line)["id"] for line in (tiny_corpus_dir / "test.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(test_ids)
    row = rows[0]
    assert row["label"] in {"finance", "science", "sport"}
    assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert row["label"] == max(row["probabilities"], key=row["probabilities"].get)
    assert len(row["topic_words"]) == 10 and 0 <= row["topic"] < 8
    assert row["true_labels"] in (["finance"], ["science"], ["sport"])
    assert [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_bert_baseline_config_runs_the_same_code_path(tiny_corpus_dir, tiny_encoder_dir):
    cli = main(["fit", *tiny_args(tiny_corpus_dir, tiny_encoder_dir, "configs/bert.yaml"), "--trainer.max_epochs", "1"])
    assert isinstance(cli.model, TopicBertTask) and cli.model.model.nvdm is None
    assert "test_macro_f1" in cli.trainer.callback_metrics and "train_nvdm_loss" not in cli.trainer.callback_metrics


def test_nvdm_pretraining_then_topicbert_starts_from_it(tiny_corpus_dir, tiny_encoder_dir):
    nvdm = main(
        [
            "fit",
            *nvdm_args(tiny_corpus_dir),
            "--model.init_args.num_topics",
            "8",
            "--trainer.max_epochs",
            "3",
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    topics = (Path(nvdm.trainer.log_dir) / "topics.txt").read_text().splitlines()
    assert len(topics) == 8 and topics[0].startswith("topic 0: ") and len(topics[0].split()) == 12
    assert 1 < nvdm.trainer.callback_metrics["test_perplexity"] < nvdm.datamodule.vocab_size * 2
    best = nvdm.trainer.checkpoint_callback.best_model_path
    assert Path(best).name == "best.ckpt"
    pretrained = torch.load(best, weights_only=True)["state_dict"]

    args = tiny_args(tiny_corpus_dir, tiny_encoder_dir)
    cli = main(
        [
            "fit",
            *args,
            "--model.init_args.num_topics",
            "8",
            "--model.init_args.nvdm_checkpoint",
            best,
            "--trainer.max_steps",
            "1",
            "--model.init_args.head_lr",
            "0",
            "--test_after_fit",
            "false",
        ]
    )
    torch.testing.assert_close(cli.model.model.nvdm.decoder.weight, pretrained["model.decoder.weight"])

    with pytest.raises(CheckpointMismatchError, match="num_topics: checkpoint 8 vs model 100"):
        main(["fit", *args, "--model.init_args.nvdm_checkpoint", best, "--trainer.max_steps", "1"])


@pytest.mark.parametrize("config", CONFIGS)
def test_every_shipped_config_prints(config, capsys):
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(ROOT / config), "--print_config"])
    assert done.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert "model" in printed and "data" in printed and "trainer" in printed


def test_missing_data_files_error_and_no_run_folder(tmp_path, tiny_encoder_dir):
    with pytest.raises(DataError, match=r"r8-train-all-terms\.txt"):
        main(
            [
                "fit",
                "--config",
                str(ROOT / "configs/topicbert.yaml"),
                "--data.data_dir",
                str(tmp_path / "nothing"),
                "--data.tokenizer",
                str(tiny_encoder_dir),
                "--data.download",
                "false",
            ]
        )
    assert not (tmp_path / "runs").exists() and not (tmp_path / "nothing").exists()


def test_missing_encoder_offline_is_a_clear_error(tiny_corpus_dir, tmp_path):
    with pytest.raises(EncoderNotFoundError, match="no such folder"):
        main(["fit", *tiny_args(tiny_corpus_dir, tmp_path / "no-encoder")])
    assert not (tmp_path / "runs").exists()


def test_unknown_config_key_is_rejected(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  datset: r8\n")
    with pytest.raises(ArgumentError, match=r"does not accept option 'data\.datset'"):
        main(["fit", "--config", str(ROOT / "configs/topicbert.yaml"), "--config", str(bad)])


def run_as_a_user(args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """``python cli.py <args>`` in this process: (exit status, what went to stderr)."""
    monkeypatch.setattr(sys, "argv", [str(ROOT / "cli.py"), *args])
    with pytest.raises(SystemExit) as done:
        main()
    return done.value.code, capsys.readouterr().err


def test_user_errors_print_one_line_without_traceback(tmp_path, monkeypatch, capsys):
    args = ["fit", "--config", str(ROOT / "configs/nvdm.yaml"), "--data.dataset", str(tmp_path / "missing")]
    code, err = run_as_a_user(args, monkeypatch, capsys)
    assert code == 2
    assert err.startswith("error: Unknown dataset") and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_user_error_in_a_real_process_exits_2_without_traceback(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "cli.py"),
        "fit",
        "--config",
        str(ROOT / "configs/nvdm.yaml"),
        "--data.dataset",
        str(tmp_path / "missing"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2
    assert "error: Unknown dataset" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_compiled_encoder_trains_and_saves_eager_parameter_names(tiny_corpus_dir, tiny_encoder_dir):
    args = tiny_args(tiny_corpus_dir, tiny_encoder_dir)
    cli = main(
        [
            "fit",
            *args,
            "--model.init_args.compile_encoder",
            "true",
            "--model.init_args.num_topics",
            "8",
            "--trainer.max_steps",
            "2",
            "--test_after_fit",
            "false",
        ]
    )
    assert cli.model.encoder_compiled
    saved = torch.load(cli.trainer.checkpoint_callback.last_model_path, weights_only=True)["state_dict"]
    assert not any("_orig_mod" in k for k in saved)
    assert (
        saved.keys()
        == TopicBertTask(
            encoder=str(tiny_encoder_dir), num_labels=3, vocab_size=cli.datamodule.vocab_size, num_topics=8
        )
        .state_dict()
        .keys()
    )


def relabelled_corpus(folder: Path, source: Path, rename: dict[str, str]) -> Path:
    """The tiny corpus with its labels renamed (or merged, when two map to one name)."""
    folder.mkdir()
    for split in ("train", "test"):
        rows = [json.loads(line) for line in (source / f"{split}.jsonl").read_text().splitlines()]
        write_jsonl(folder / f"{split}.jsonl", [r | {"label": rename.get(r["label"], r["label"])} for r in rows])
    return folder


def test_a_checkpoint_is_tested_with_its_own_labels_on_any_test_file(fitted, tiny_corpus_dir, tmp_path):
    labels = sorted({json.loads(line)["label"] for line in (tiny_corpus_dir / "train.jsonl").read_text().splitlines()})
    merged = relabelled_corpus(tmp_path / "merged", tiny_corpus_dir, {labels[1]: labels[0]})
    (merged / "train.jsonl").unlink()  # a restored model reads only the test file
    tested = main(["test", *fitted.args, "--data.dataset", str(merged), "--ckpt_path", fitted.best])
    assert tested.datamodule.label_names == labels and tested.model.hparams.num_labels == 3
    renamed = relabelled_corpus(tmp_path / "renamed", tiny_corpus_dir, {labels[0]: "zzz"})
    with pytest.raises(DataError, match=r"test\.jsonl has labels the model was not trained on: zzz"):
        main(["test", *fitted.args, "--data.dataset", str(renamed), "--ckpt_path", fitted.best])


def test_checkpoint_of_another_task_is_refused(fitted, tiny_corpus_dir):
    args = [
        "test",
        *nvdm_args(tiny_corpus_dir),
        "--ckpt_path",
        fitted.best,
    ]
    with pytest.raises(
        CheckpointMismatchError, match=r"holds a lightning_modules\.TopicBertTask, but the config builds"
    ):
        main(args)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trainer:\n  max_epochs: [1\n", r"bad\.yaml is not valid YAML at line 3, column 1 \(in what starts at line 2"),
        (
            "model:\n  class_path: lightning_modules.TopicBertTsk\n",
            "'lightning_modules.TopicBertTsk' cannot be imported",
        ),
    ],
)
def test_broken_config_file_names_the_file_and_the_fix(tmp_path, text, message, monkeypatch, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    code, err = run_as_a_user(["fit", "--config", str(ROOT / "configs/nvdm.yaml"), "-c", str(bad)], monkeypatch, capsys)
    assert code == 2
    assert re.search(message, err) and "usage:" not in err and len(err.strip().splitlines()) == 1


def test_out_of_memory_names_the_batch_size_and_the_fix(tiny_corpus_dir, tiny_encoder_dir, monkeypatch):
    from scaffold.errors import BatchTooLargeError

    def out_of_memory(self, batch, batch_idx):  # what a GPU raises; no GPU here to fill
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(TopicBertTask, "training_step", out_of_memory)
    with pytest.raises(BatchTooLargeError, match=r"fit with batches of 8 sequences of up to 16 tokens.*batch_size 4"):
        main(["fit", *tiny_args(tiny_corpus_dir, tiny_encoder_dir), "--model.init_args.num_topics", "8"])
