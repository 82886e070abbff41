"""The run's summary: best and test macro-F1 next to every cost figure, as ``results.json`` and in W&B."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger

from callbacks.telemetry import TelemetryCallback
from utils.files import atomic_write
from utils.hardware import hardware

if TYPE_CHECKING:
    from lightning_modules.base import BaseTask

RESULTS_FILE = "results.json"


def run_folder(trainer: pl.Trainer) -> Path:
    """Where this run's files live: the first logger's folder, else the trainer's root folder.

    Under DDP ``trainer.log_dir`` is a broadcast from rank 0, so every rank must call this.
    """
    return Path(trainer.log_dir or trainer.default_root_dir)


def _float(value) -> float | None:
    return float(value) if value is not None else None


class RunSummary(Callback):
    """Collects the figures of every :class:`TelemetryCallback` with the run's macro-F1 and settings.

    Records ``val_macro_f1`` after every epoch, writes ``results.json`` atomically into the run folder
    after fit (``status: "fit"``) and again after test (``status: "complete"``), and puts the same
    summary into the W&B run summary.
    """

    def __init__(self) -> None:
        self.val_history: list[float] = []
        self.results: dict = {}

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get("val_macro_f1")
        if value is not None:
            self.val_history.append(float(value))

    def collect(self, trainer: pl.Trainer, pl_module: BaseTask) -> dict:
        dm = trainer.datamodule  # type: ignore[attr-defined]  # set by Lightning, not declared on Trainer
        checkpoint = cast("ModelCheckpoint | None", trainer.checkpoint_callback)  # the runs save with ModelCheckpoint
        results = {
            "model": pl_module.run_label(dm),
            "dataset": dm.corpus.name,
            "encoder": pl_module.hparams.get("encoder"),
            "max_length": dm.max_length,
            "num_partitions": dm.num_partitions,
            "partition_length": dm.max_length // dm.num_partitions,
            "seed": int(os.environ.get("PL_GLOBAL_SEED", dm.seed)),
            "precision": str(trainer.precision),
            "devices": trainer.world_size,
            "hardware": hardware(),
            "val_macro_f1_per_epoch": list(self.val_history),
            "best_val_macro_f1": max(self.val_history) if self.val_history else None,
            "best_checkpoint": checkpoint.best_model_path if checkpoint is not None else None,
        }
        for callback in trainer.callbacks:  # type: ignore[attr-defined]  # set by Lightning, not declared on Trainer
            if isinstance(callback, TelemetryCallback):
                results.update(callback.summary())
        return results

    def on_fit_end(self, trainer, pl_module) -> None:
        self.results = self.collect(trainer, pl_module) | {"status": "fit"}
        self.write(trainer)

    def on_test_end(self, trainer, pl_module) -> None:
        if not self.results:  # a test-only run: nothing was fitted by this process
            return
        metrics = trainer.callback_metrics
        for name in ("test_macro_f1", "test_micro_f1", "test_accuracy"):
            self.results[name] = _float(metrics.get(name))
        self.results["status"] = "complete"
        self.write(trainer)

    def write(self, trainer: pl.Trainer) -> None:
        folder = run_folder(trainer)
        if not trainer.is_global_zero:
            return
        self.results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        with atomic_write(folder / RESULTS_FILE) as f:
            json.dump(self.results, f, indent=2)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                run = logger.experiment
                run.summary.update({k: v for k, v in self.results.items() if isinstance(v, int | float | str)})
                run.save(str(folder / RESULTS_FILE), base_path=str(folder), policy="now")
