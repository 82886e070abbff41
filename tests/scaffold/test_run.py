"""The run scaffold: what every run gets without asking, each piece switchable off, folders named by model and data."""

import json
import shutil

import pytest
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

from callbacks.energy import EnergyTracker
from callbacks.summary import RunSummary
from callbacks.timing import EpochTimer
from cli import main
from tests.conftest import job_folder, nvdm_args, tiny_args

ONE_EPOCH = ["--trainer.max_epochs", "1"]


def bare_config(tmp_path, corpus_dir, encoder_dir, model="lightning_modules.TopicBertTask"):
    """A user's own config: a model and data, no trainer callbacks, no loggers."""
    config = tmp_path / "mine.yaml"
    config.write_text(
        f"model:\n  class_path: {model}\n  init_args:\n    num_topics: 8\n"
        f"data:\n  dataset: {corpus_dir}\n  tokenizer: {encoder_dir}\n"
    )
    return str(config)


def own_config(tmp_path, corpus_dir, encoder_dir) -> list[str]:
    """CLI arguments: the user's own config on the tiny data, one epoch."""
    return [*tiny_args(corpus_dir, encoder_dir, bare_config(tmp_path, corpus_dir, encoder_dir)), *ONE_EPOCH]


def test_a_config_without_callbacks_gets_the_whole_scaffold(tmp_path, tiny_corpus_dir, tiny_encoder_dir):
    cli = main(["fit", *own_config(tmp_path, tiny_corpus_dir, tiny_encoder_dir)])
    folder = job_folder(tmp_path) / "version_0"
    assert folder.parent.name == f"topicbert-16-{tiny_corpus_dir.name}"
    results = json.loads((folder / "results.json").read_text())
    assert results["status"] == "complete" and results["model"] == "TopicBERT-16"
    assert results["energy_kwh"] > 0 and results["time_epoch_mean_s"] > 0 and results["docs_per_s"] > 0
    assert (folder / "metrics.csv").is_file() and (folder / "topics.txt").is_file()
    assert len(list((folder / "checkpoints").glob("epoch*.ckpt"))) == 1 and (folder / "checkpoints/last.ckpt").is_file()
    assert cli.trainer.checkpoint_callback.monitor == "val_macro_f1" and cli.trainer.checkpoint_callback.mode == "max"
    kinds = [type(cb).__name__ for cb in cli.trainer.callbacks]
    for name in (
        "EpochTimer",
        "PeakMemory",
        "EnergyTracker",
        "TrainingThroughput",
        "RunSummary",
        "ResumeCheckpoint",
        "NonFiniteLossGuard",
        "LearningRateMonitor",
        "PredictionWriter",
        "TopicWordsWriter",
    ):
        assert kinds.count(name) == 1, name


def test_each_piece_switches_off_with_one_flag(tmp_path, tiny_corpus_dir, tiny_encoder_dir):
    off = [
        "--energy",
        "false",
        "--timing",
        "false",
        "--throughput",
        "false",
        "--checkpoint",
        "false",
        "--resume",
        "false",
        "--topics",
        "false",
        "--csv",
        "false",
        "--wandb",
        "false",
    ]
    cli = main(["fit", *own_config(tmp_path, tiny_corpus_dir, tiny_encoder_dir), *off])
    kinds = {type(cb).__name__ for cb in cli.trainer.callbacks}
    assert not kinds & {"EpochTimer", "EnergyTracker", "TrainingThroughput", "ResumeCheckpoint", "TopicWordsWriter"}
    assert not any(isinstance(cb, ModelCheckpoint) for cb in cli.trainer.callbacks)
    assert not any(isinstance(cb, LearningRateMonitor) for cb in cli.trainer.callbacks)  # nothing to log it to
    assert cli.trainer.loggers == []
    (results,) = tmp_path.rglob("results.json")  # the summary stays on: into the trainer's folder
    saved = json.loads(results.read_text())
    assert "energy_kwh" not in saved and "time_epoch_s" not in saved and saved["peak_rss_mb"] > 0
    assert not list(tmp_path.rglob("*.ckpt"))


def test_piece_settings_and_a_users_own_callback(tmp_path, tiny_corpus_dir, tiny_encoder_dir):
    args = [
        "fit",
        *own_config(tmp_path, tiny_corpus_dir, tiny_encoder_dir),
        "--energy.country_iso_code",
        "FRA",
        "--trainer.callbacks+=callbacks.timing.EpochTimer",
        "--trainer.callbacks.warmup_batches=1",
        "--checkpoint.monitor",
        "val_micro_f1",
        "--checkpoint.mode",
        "max",
        "--test_after_fit",
        "false",
    ]
    cli = main(args)
    (energy,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, EnergyTracker)]
    assert energy.country_iso_code == "FRA"
    (timer,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, EpochTimer)]  # the user's, not a second one
    assert timer.warmup_batches == 1
    assert cli.trainer.checkpoint_callback.monitor == "val_micro_f1"
    assert sum(isinstance(cb, RunSummary) for cb in cli.trainer.callbacks) == 1


def test_run_folders_follow_the_model_label_and_the_dataset(tmp_path, tiny_corpus_dir, tiny_encoder_dir):
    ohsumed = tmp_path / "ohsumed_like"
    shutil.copytree(tiny_corpus_dir, ohsumed)
    bert = main(
        [
            "fit",
            *tiny_args(ohsumed, tiny_encoder_dir, "configs/bert.yaml"),
            *ONE_EPOCH,
            "--test_after_fit",
            "false",
        ]
    )
    assert bert.trainer.log_dir == "runs/bert-16-ohsumed_like/version_0"
    assert bert.datamodule.datasets["train"].collator.bow is None and bert.datamodule.vocab_size == 0  # not read
    nvdm = main(
        [
            "fit",
            *nvdm_args(ohsumed),
            "--trainer.max_epochs",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            "--run.root",
            "elsewhere",
            "--run.version",
            "first",
        ]
    )
    assert nvdm.trainer.log_dir == "elsewhere/nvdm-ohsumed_like/first"
    assert torch.load(nvdm.trainer.checkpoint_callback.best_model_path, weights_only=True)["task"] == "NVDMTask"
    assert nvdm.trainer.checkpoint_callback.monitor == "val_perplexity"
    wandb = next(logger for logger in nvdm.trainer.loggers if type(logger).__name__ == "AutoWandbLogger")
    assert wandb._wandb_init["name"] == "nvdm-ohsumed_like/first" and wandb._wandb_init["group"] == "nvdm-ohsumed_like"


@pytest.mark.parametrize("piece", ["energy", "wandb", "checkpoint"])
def test_true_switches_a_piece_back_on_with_its_defaults(piece, tmp_path, tiny_corpus_dir, tiny_encoder_dir):
    from lightning.pytorch import LightningModule

    from cli import TopicBertCLI
    from datamodules import DocumentDataModule

    args = [*own_config(tmp_path, tiny_corpus_dir, tiny_encoder_dir), f"--{piece}", "true"]
    cli = TopicBertCLI(LightningModule, DocumentDataModule, subclass_mode_model=True, run=False, args=args)
    if piece == "energy":
        assert sum(isinstance(cb, EnergyTracker) for cb in cli.trainer.callbacks) == 1
    elif piece == "checkpoint":
        assert cli.trainer.checkpoint_callback.monitor == "val_macro_f1"
    else:
        assert any(type(logger).__name__ == "AutoWandbLogger" for logger in cli.trainer.loggers)
