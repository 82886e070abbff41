"""The pieces every run gets from the CLI, each one switchable off with one flag.

Each piece is a CLI argument holding its settings, or ``false`` to leave it out:

    --energy.country_iso_code FRA     configure a piece (any of its ``__init__`` arguments)
    --energy false                    leave it out
    --wandb.project my-project        W&B settings; --wandb false logs to CSV only

Run folders are ``<run.root>/<run.name>/<version>/``; the name defaults to the model's label and the
dataset (``topicbert-512-r8``, ``kd-bilstm-ohsumed``), and W&B runs are named and grouped the same
way. A piece also listed in ``trainer.callbacks`` (or a logger list in ``trainer.logger``) is the
user's: the CLI then leaves its own out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonargparse import Namespace, lazy_instance
from lightning.pytorch.callbacks import Callback, EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger

from callbacks.checkpoint import BestCheckpoint
from callbacks.energy import EnergyTracker
from callbacks.lineage import ArtifactLineage
from callbacks.memory import PeakMemory
from callbacks.nonfinite import NonFiniteLossGuard
from callbacks.prediction_writer import PredictionWriter
from callbacks.resume import ResumeCheckpoint
from callbacks.summary import RunSummary
from callbacks.throughput import TrainingThroughput
from callbacks.timing import EpochTimer
from callbacks.topics import TopicWordsWriter
from scaffold.budget import Budget
from scaffold.resume import allocate_version
from scaffold.wandb_logger import AutoWandbLogger
from utils.wandb_mode import Mode

log = logging.getLogger(__name__)


@dataclass
class RunLocation:
    """Where a run's files go: ``<root>/<name>/<version>/``.

    Args:
        root: the folder of all runs.
        name: the job's folder; by default the model's label and the dataset, lower-cased.
        version: the run's folder; by default the next free ``version_<n>``.
    """

    root: str = "runs"
    name: str | None = None
    version: str | None = None


@dataclass
class WandbSettings:
    """Weights & Biases logging (``scaffold.wandb_logger.AutoWandbLogger``).

    Args:
        project: W&B project.
        mode: ``auto`` (online with credentials and network, else offline; ``$WANDB_MODE`` wins),
            ``online``, ``offline`` or ``disabled``.
        group: W&B group; by default the job's name.
        tags: W&B tags.
        entity: W&B team or user.
        probe_timeout_s: how long the network probe may take.
    """

    project: str = "topicbert"
    mode: Mode = "auto"
    group: str | None = None
    tags: list[str] | None = None
    entity: str | None = None
    probe_timeout_s: float = 2.0


# the best checkpoint by the task's metric (set_checkpoint_defaults), and last.ckpt shared with --resume
CHECKPOINT_DEFAULTS = {"save_last": True, "enable_version_counter": False, "auto_insert_metric_name": False}


# CLI key -> (type, default). Order is the order callbacks run in; the checkpoint comes before
# ``resume`` so that ``trainer.checkpoint_callback`` is the best-model one.
PIECES: dict[str, tuple[type[Callback], Callback | bool]] = {
    "timing": (EpochTimer, lazy_instance(EpochTimer)),
    "memory": (PeakMemory, lazy_instance(PeakMemory)),
    "energy": (EnergyTracker, lazy_instance(EnergyTracker)),
    "throughput": (TrainingThroughput, lazy_instance(TrainingThroughput)),
    "summary": (RunSummary, lazy_instance(RunSummary)),
    "lineage": (ArtifactLineage, lazy_instance(ArtifactLineage)),  # after summary: it reads its results
    "checkpoint": (ModelCheckpoint, lazy_instance(BestCheckpoint, **CHECKPOINT_DEFAULTS)),
    "resume": (ResumeCheckpoint, lazy_instance(ResumeCheckpoint)),
    "early_stopping": (EarlyStopping, False),  # off by default; true follows the task's metric
    "nonfinite": (NonFiniteLossGuard, lazy_instance(NonFiniteLossGuard)),
    "lr_monitor": (LearningRateMonitor, lazy_instance(LearningRateMonitor, logging_interval="step")),
    "predictions": (PredictionWriter, lazy_instance(PredictionWriter)),
    "topics": (TopicWordsWriter, lazy_instance(TopicWordsWriter)),
}
CHECKPOINTING = ("checkpoint", "resume")  # left out when the trainer has checkpointing off
LOGGING = ("lr_monitor", "lineage")  # left out without a logger


def add_scaffold_arguments(parser) -> None:
    """The ``--run``, ``--csv``, ``--wandb`` and callback arguments (see the module docstring)."""
    parser.add_argument("--run", type=RunLocation, default=RunLocation(), help="Where the run's files go.")
    parser.add_argument(
        "--budget", type=Budget | None, default=None, help="One training budget (epochs, steps or documents)."
    )
    parser.add_argument("--csv", type=bool, default=True, help="Log metrics to metrics.csv in the run folder.")
    parser.add_argument("--wandb", type=WandbSettings | bool, default=WandbSettings(), help="W&B logging, or false.")
    for key, (cls, default) in PIECES.items():
        first_line = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
        parser.add_argument(f"--{key}", type=cls | bool, default=default, help=f"{first_line} (false: leave out)")


EARLY_STOPPING_DEFAULTS = {"patience": 3}


def set_checkpoint_defaults(config, task_class: type[Any]) -> None:
    """A checkpoint or early stopping without a ``monitor`` follows the task: its metric and
    direction (and the checkpoint its file name)."""
    for key, cls, defaults in (
        ("checkpoint", BestCheckpoint, CHECKPOINT_DEFAULTS),
        ("early_stopping", EarlyStopping, EARLY_STOPPING_DEFAULTS),
    ):
        if config.get(key) is True:
            config[key] = Namespace(class_path=f"{cls.__module__}.{cls.__name__}", init_args=Namespace(**defaults))
        init_args = getattr(config.get(key), "init_args", None)
        if init_args is not None and init_args.get("monitor") is None and hasattr(task_class, "monitor"):
            init_args.monitor = task_class.monitor
            init_args.mode = task_class.monitor_mode
            if key == "checkpoint":
                init_args.filename = task_class.checkpoint_filename


def job_name(location: RunLocation, model, datamodule) -> str:
    """The job's folder: ``run.name``, else ``<model label>-<dataset>`` in lower case."""
    return location.name or f"{model.run_label(datamodule)}-{datamodule.dataset_name}".lower()


def scaffold_loggers(config: dict[str, Any], job: str) -> list[Logger]:
    """The CSV logger (its folder is the run folder) and the W&B logger, as switched on."""
    location: RunLocation = config["run"]
    loggers: list[Logger] = []
    name = job
    if config["csv"]:  # its folder is the run folder, allocated here so no other run can take it
        version = location.version or allocate_version(Path(location.root) / job)
        loggers.append(CSVLogger(save_dir=location.root, name=job, version=version))
        name = f"{job}/{version}"
    wandb = config["wandb"]
    if wandb:
        settings = wandb if isinstance(wandb, WandbSettings) else WandbSettings()
        loggers.append(
            AutoWandbLogger(
                project=settings.project,
                save_dir=location.root,
                mode=settings.mode,
                probe_timeout_s=settings.probe_timeout_s,
                name=name,
                group=settings.group or job,
                tags=settings.tags,
                entity=settings.entity,
            )
        )
    return loggers


def scaffold_callbacks(
    config: dict[str, Any], user_callbacks: list[Callback], checkpointing: bool, logging_on: bool
) -> list[Callback]:
    """The switched-on pieces, except those the user already lists (by type) or the trainer rules out."""
    chosen = []
    for key, (cls, _) in PIECES.items():
        value = config.get(key)
        if value is False or value is None:
            continue
        if (key in CHECKPOINTING and not checkpointing) or (key in LOGGING and not logging_on):
            continue
        if any(isinstance(cb, cls) for cb in user_callbacks):
            log.info("trainer.callbacks has a %s: --%s is left out.", cls.__name__, key)
            continue
        chosen.append(cls() if value is True else value)
    return chosen
