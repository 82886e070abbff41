"""The run's summary: best and test macro-F1 next to every cost figure, as ``results.json`` and in W&B."""

from __future__ import annotations

import json
import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger

from callbacks.telemetry import TelemetryCallback
from utils.files import atomic_write
from utils.hardware import hardware
from utils.predictions import FILENAME as PREDICTIONS_FILENAME
from utils.predictions import DocumentPredictions

if TYPE_CHECKING:
    from lightning_modules.base import BaseTask

log = logging.getLogger(__name__)
RESULTS_FILE = "results.json"


def run_folder(trainer: pl.Trainer) -> Path:
    """Where this run's files live: the first logger's folder, else the trainer's root folder.

    Under DDP ``trainer.log_dir`` is a broadcast from rank 0, so every rank must call this.
    """
    return Path(trainer.log_dir or trainer.default_root_dir)


def _float(value) -> float | None:
    return float(value) if value is not None else None


def telemetry(trainer: pl.Trainer) -> list[TelemetryCallback]:
    # set by Lightning, not declared on Trainer
    return [cb for cb in trainer.callbacks if isinstance(cb, TelemetryCallback)]  # type: ignore[attr-defined]


def planned_budget(trainer: pl.Trainer, train_fraction: float) -> str:
    """The budget the trainer was given, as ``scaffold.budget.Budget.describe`` writes it; old-style
    batch limits are appended, so runs limited that way never look equal to a documents budget."""
    if trainer.max_steps > 0:
        interval = trainer.val_check_interval
        per_steps = trainer.check_val_every_n_epoch is None and isinstance(interval, int)
        evaluations = trainer.max_steps // interval if per_steps else "per-epoch"
        text = f"steps={trainer.max_steps},evaluations={evaluations}"
    else:
        text = f"epochs={(trainer.max_epochs or 0) * train_fraction:g}"
    limit = trainer.limit_train_batches
    return text if limit in (None, 1.0) else f"{text},limit_train_batches={limit:g}"


def consumed_budget(trainer: pl.Trainer, dm, evaluations: list[dict]) -> dict:
    """What the run was allowed and what it used, and the dev split its choice was made on."""
    fraction = getattr(dm, "train_fraction", 1.0)
    return {
        "budget": planned_budget(trainer, fraction),
        "train_fraction": fraction,
        "optimizer_steps": trainer.global_step,
        "candidate_checkpoints": len(evaluations),
        "dev_fingerprint": dm.fingerprint("dev"),
    }


def scalar_hparams(pl_module) -> dict:
    """The task's settings that fit in a table cell (the learning rate among them)."""
    return {k: v for k, v in pl_module.hparams.items() if isinstance(v, bool | int | float | str) and k[0] != "_"}


def best_score(evaluations: list[dict], val_history: list[float]) -> float | None:
    """The best dev macro-F1 of any evaluation (several per epoch under a steps budget)."""
    scores = [e["val_macro_f1"] for e in evaluations if "val_macro_f1" in e] or val_history
    return max(scores) if scores else None


def time_to_quality(evaluations: list[dict], monitor: str, share: float = 0.99) -> dict:
    """MLPerf-style time-to-quality: the cost until the dev score first reached ``share`` of the
    run's own best (only for scores where higher is better)."""
    scores = [e[monitor] for e in evaluations if monitor in e]
    if not scores or not monitor.endswith("f1"):
        return {}
    target = share * max(scores)
    first = next(e for e in evaluations if e.get(monitor, float("-inf")) >= target)
    names = {
        "time_s": "time_to_quality_s",
        "energy_kwh": "energy_to_quality_kwh",
        "co2_measured_g": "co2_to_quality_g",
        "documents_seen": "documents_to_quality",
        "step": "steps_to_quality",
    }
    return {"quality_target": share} | {new: first[old] for old, new in names.items() if old in first}


def headline(results: dict) -> str:
    """The figures that matter, in one line: the quality and what it cost."""
    said = [f"{results.get('model')} on {results.get('dataset')}"]
    for key, text in (("test_macro_f1", "test macro-F1 {:.4f}"), ("best_val_macro_f1", "best dev {:.4f}")):
        if results.get(key) is not None:
            said.append(text.format(results[key]))
    for key, text in (
        ("time_total_s", "{:.0f} s training"),
        ("energy_kwh", "{:.3g} kWh"),
        ("co2_measured_g", "{:.3g} g CO2"),
    ):
        if results.get(key) is not None:
            said.append(text.format(results[key]))
    return ", ".join(said)


class RunSummary(Callback):
    """Collects the figures of every :class:`TelemetryCallback` with the run's macro-F1 and settings.

    Records each epoch's last ``val_macro_f1`` (at its dev evaluation, so an epoch whose end a
    resumed run replays keeps the score the stopped run saw) and, at every dev evaluation of fit,
    the score with the telemetry's cumulative figures (``evaluations``: what reaching that score cost). Writes
    ``results.json`` atomically into the run folder after fit (``status: "fit"``) and again after
    test (``status: "complete"``, with ``test_predictions.npz`` beside it), and puts the same summary
    into the W&B run summary.
    """

    def __init__(self) -> None:
        self.val_by_epoch: dict[int, float] = {}
        self.evaluations: list[dict[str, float]] = []
        self.results: dict = {}
        self.config_fingerprint: str | None = None  # set by the CLI: what makes a run this job

    def on_validation_end(self, trainer, pl_module) -> None:
        """Each dev evaluation of fit (a candidate checkpoint) with what training had cost by then."""
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        macro = trainer.callback_metrics.get("val_macro_f1")
        if macro is not None:
            self.val_by_epoch[trainer.current_epoch] = float(macro)
        monitor = getattr(pl_module, "monitor", "val_macro_f1")
        value = trainer.callback_metrics.get(monitor)
        if value is None:
            return
        entry = {"step": trainer.global_step, "epoch": trainer.current_epoch, monitor: float(value)}
        for callback in telemetry(trainer):
            entry |= callback.progress()
        self.evaluations.append(entry)

    def state_dict(self) -> dict:
        return {
            "val_by_epoch": dict(self.val_by_epoch),
            "evaluations": list(self.evaluations),
            "config_fingerprint": self.config_fingerprint,  # read by --ckpt_path last (scaffold.resume)
        }

    def load_state_dict(self, state_dict: dict) -> None:
        older = dict(enumerate(state_dict.get("val_history", [])))  # checkpoints from before the per-epoch keys
        self.val_by_epoch = dict(state_dict.get("val_by_epoch", older))
        self.evaluations = list(state_dict.get("evaluations", []))

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
            "hparams": scalar_hparams(pl_module),
            "config_fingerprint": self.config_fingerprint,
            "val_macro_f1_per_epoch": [self.val_by_epoch[epoch] for epoch in sorted(self.val_by_epoch)],
            "best_val_macro_f1": best_score(self.evaluations, list(self.val_by_epoch.values())),
            "evaluations": list(self.evaluations),
            "best_checkpoint": checkpoint.best_model_path if checkpoint is not None else None,
            # documents dropped, repaired or cut to N while reading, per split (nothing silently lost)
            "data_report": {split: dm.reading_report(split) for split in (dm.train_split, "dev", "test")},
        }
        for callback in telemetry(trainer):
            results.update(callback.summary())
        results |= consumed_budget(trainer, dm, self.evaluations)
        results |= time_to_quality(self.evaluations, getattr(pl_module, "monitor", "val_macro_f1"))
        return results

    def on_fit_end(self, trainer, pl_module) -> None:
        self.results = self.collect(trainer, pl_module) | {"status": "fit"}
        self.write(trainer)

    def on_exception(self, trainer, pl_module, exception) -> None:
        """A run that stopped on an error says so in its folder, with the error's first line."""
        if trainer.state.fn != "fit":
            return
        try:
            results = self.collect(trainer, pl_module)
        except Exception:  # the run broke before there was anything to collect
            results = {"config_fingerprint": self.config_fingerprint}
        message = str(exception).strip().splitlines()
        self.results = results | {
            "status": "failed",
            "error": f"{type(exception).__name__}: {message[0] if message else ''}",
        }
        self.write(trainer)
        self.results = {}

    def on_test_end(self, trainer, pl_module) -> None:
        if not self.results:  # a test-only run: nothing was fitted by this process
            return
        metrics = trainer.callback_metrics
        for name in ("test_macro_f1", "test_micro_f1", "test_accuracy"):
            self.results[name] = _float(metrics.get(name))
        self.results["status"] = "complete"
        self.write_test_predictions(trainer, pl_module)
        self.write(trainer)
        folder = run_folder(trainer)  # a broadcast under DDP: every rank must ask
        if trainer.is_global_zero:
            log.info("%s; every figure in %s", headline(self.results), folder / RESULTS_FILE)

    def write_test_predictions(self, trainer: pl.Trainer, pl_module) -> None:
        """``test_predictions.npz``: every test document's decisions and gold labels, which the
        report's paired intervals resample."""
        folder = run_folder(trainer)  # every rank must ask
        decisions = getattr(pl_module, "test_decisions", None)
        if decisions is None or not trainer.is_global_zero:
            return
        dm = trainer.datamodule  # type: ignore[attr-defined]  # set by Lightning, not declared on Trainer
        ids = dm.documents("test").ids
        DocumentPredictions(
            ids=[ids[i] for i in decisions.doc_index.tolist()],
            gold=decisions.gold.numpy(),
            predicted=decisions.predicted.numpy(),
            label_names=list(dm.label_names),
            multi_label=bool(dm.multi_label),
        ).save(folder / PREDICTIONS_FILENAME)
        self.results["test_predictions"] = PREDICTIONS_FILENAME
        self.results["test_fingerprint"] = dm.fingerprint("test")

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
                run_dir = getattr(run, "dir", None)
                if run_dir and Path(run_dir).is_dir():  # its files are uploaded with it (none when disabled)
                    shutil.copyfile(folder / RESULTS_FILE, Path(run_dir) / RESULTS_FILE)
