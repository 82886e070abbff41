"""W&B lineage of a fit: the teacher-logits artifact a student learns from, and the best checkpoint
as an artifact (``utils.lineage`` says how artifacts are named and linked, online and offline)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger

from callbacks.summary import RunSummary
from datamodules.teacher import TeacherLogits
from utils.files import file_sha256
from utils.lineage import (
    checkpoint_artifact,
    is_logging,
    log_output,
    record_inputs,
    reference,
    result_metadata,
    teacher_logits_artifact,
)


def wandb_runs(trainer: pl.Trainer) -> list:
    """The recording W&B runs of the trainer's loggers, on rank 0 only."""
    if not trainer.is_global_zero:
        return []
    runs = [logger.experiment for logger in trainer.loggers if isinstance(logger, WandbLogger)]
    return [run for run in runs if is_logging(run)]


class ArtifactLineage(Callback):
    """Names the teacher-logits artifact a student run reads (in the W&B config, and online as a used
    artifact), and logs the best checkpoint as a ``model`` artifact with the run's dev figures."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        datamodule = trainer.datamodule  # type: ignore[attr-defined]  # set by Lightning, not declared on Trainer
        path = getattr(datamodule, "teacher_logits", None)
        if not path or not Path(path).is_file():
            return
        runs = wandb_runs(trainer)
        if runs:
            split = TeacherLogits.load(path).split
            ref = reference(teacher_logits_artifact(datamodule.dataset_name, split), path)
            for run in runs:
                record_inputs(run, {"teacher_logits": ref})

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        best = getattr(trainer.checkpoint_callback, "best_model_path", "")
        summary = next((cb for cb in trainer.callbacks if isinstance(cb, RunSummary)), None)  # type: ignore[attr-defined]
        results = summary.results if summary is not None else {}
        name = checkpoint_artifact(results)
        runs = wandb_runs(trainer)
        if not best or not Path(best).is_file() or name is None or not runs:
            return
        digest = file_sha256(best)  # read once: the metadata and the artifact's alias both name it
        metadata = result_metadata(results) | {"file": Path(best).name, "sha256": digest}
        for run in runs:
            log_output(run, best, name, "model", metadata, digest)
