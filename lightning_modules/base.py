"""The base of every task: hyperparameters saved once, the network built in one hook, checkpoint
identity checked in one place, and the label a run is filed and reported under."""

from __future__ import annotations

import importlib
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from lightning.fabric.utilities.data import AttributeDict

log = logging.getLogger(__name__)


class CheckpointMismatchError(ValueError):
    """A checkpoint that does not fit the configured model; the message says what differs."""


FIX = (
    "Load it with the config and dataset it was trained with (its run folder holds config.yaml), or fit a new "
    "model for this data."
)


class BaseTask(pl.LightningModule, ABC):
    """What the five tasks share.

    A subclass declares only its own ``__init__`` arguments and hands the rest on with
    ``super().__init__(**kwargs)``; this base saves every argument of the chain as hyperparameters
    and calls :meth:`build_model` once, so ``self.model`` is the network and ``self.hparams`` its
    settings. :meth:`identity` names the settings that fix the shapes or the meaning of the weights;
    a checkpoint that disagrees on any of them is refused with what differs.

    The class attributes say how checkpoints are chosen: ``monitor`` (a logged metric) in
    ``monitor_mode``, saved as ``checkpoint_filename``.
    """

    monitor: ClassVar[str] = "val_macro_f1"
    monitor_mode: ClassVar[Literal["min", "max"]] = "max"
    checkpoint_filename: ClassVar[str] = "epoch{epoch}-val_macro_f1{val_macro_f1:.4f}"

    if TYPE_CHECKING:

        @property
        def hparams(self) -> AttributeDict: ...  # Lightning types it as a MutableMapping; it is an AttributeDict

    def __init__(self) -> None:
        super().__init__()
        self.save_hyperparameters()  # collects the arguments of every __init__ in the subclass chain
        self.model = self.build_model()

    @abstractmethod
    def build_model(self) -> nn.Module:
        """The network, from ``self.hparams`` (called once, by ``__init__``)."""

    @abstractmethod
    def run_label(self, datamodule: Any) -> str:
        """The model's name in run folders, W&B and reports (``TopicBERT-256``, ``KD-BiLSTM``, ...)."""

    def identity(self) -> dict[str, Any]:
        """Hyperparameters that fix the shapes or meaning of the weights."""
        return {}

    @classmethod
    def reads_bow(cls, init_args: Mapping[str, Any]) -> bool:
        """Whether a task built with ``init_args`` reads the topic model's bag of words (the data
        module builds that view only then)."""
        return False

    @classmethod
    def init_parameters(cls) -> set[str]:
        """Every ``__init__`` argument of the class chain (those passed on through ``**kwargs`` too)."""
        names: set[str] = set()
        for klass in cls.__mro__:
            if issubclass(klass, BaseTask):
                parameters = inspect.signature(klass.__init__).parameters.values()
                names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        return names - {"self"}

    def forward_flops(self, batch: dict) -> Tensor | None:
        """Model FLOPs of one forward pass over a collated batch (real tokens only), on the batch's
        device so reading it needs no host sync; None where the task does not model its cost."""
        return None

    def topic_word_indices(self, top_n: int) -> Tensor | None:
        """Top vocabulary indices per topic, for tasks with a topic model."""
        return None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["task"] = type(self).__name__

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.check_checkpoint(checkpoint)

    def check_checkpoint(self, checkpoint: dict) -> None:
        """Refuse a checkpoint of another task, or of other shapes or meaning (``identity``)."""
        task = checkpoint.get("task")
        if task is not None and task != type(self).__name__:
            raise CheckpointMismatchError(
                f"The checkpoint holds a {task}, but the config builds a {type(self).__name__}. {FIX}"
            )
        found = checkpoint.get("hyper_parameters", {})
        differ = [
            f"{key}: checkpoint {found[key]!r} vs now {value!r}"
            for key, value in self.identity().items()
            if key in found and _normalised(found[key]) != _normalised(value)
        ]
        if differ:
            raise CheckpointMismatchError(
                f"The checkpoint does not fit this model and data ({'; '.join(differ)}). {FIX}"
            )

    def on_train_start(self) -> None:
        restore_loader_states(self.trainer)


def restore_loader_states(trainer: pl.Trainer) -> None:
    """Hand a resumed run's train-loader state to the loader when Lightning did not.

    Lightning restores stateful loaders when it first sets up the training data after loading a
    checkpoint. A task that reads ``trainer.estimated_stepping_batches`` in ``configure_optimizers``
    (for its schedule) sets the data up before the checkpoint is loaded, and the state is then never
    applied (Lightning-AI/pytorch-lightning#20550). The loader's iterator is rebuilt after loading,
    as Lightning's own restore does.
    """
    loop = trainer.fit_loop
    if getattr(loop, "_combined_loader_states_to_load", None) and loop.restarting:
        loop._load_combined_loader_states()
        assert loop._data_fetcher is not None  # set up with the train data, before on_train_start
        iter(loop._data_fetcher)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint's contents (tensors memory-mapped, not read); a truncated, corrupt or
    foreign file is refused with what to use instead."""
    fix = "Use another checkpoint of the run (its checkpoints/ folder holds the best one and last.ckpt) or fit again."
    try:
        checkpoint = torch.load(path, weights_only=True, map_location="cpu", mmap=True)
    except Exception as err:  # whatever torch.load raises on a file it cannot read
        raise CheckpointMismatchError(
            f"{path} cannot be read as a checkpoint ({type(err).__name__}: truncated, corrupt or not a PyTorch "
            f"file). {fix}"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointMismatchError(
            f"{path} is a PyTorch file but not a Lightning checkpoint of this tool (no state_dict). {fix}"
        )
    return checkpoint


def check_checkpoint_class(path: str, configured: str | None) -> None:
    """Before LightningCLI swaps the configured model class for the one a checkpoint names: refuse
    a checkpoint of another task (say a topic model's given to a classifier config)."""
    hparams = read_checkpoint(path).get("hyper_parameters", {})
    found = hparams.get("_class_path")
    if found and configured and found.rsplit(".", 1)[-1] != configured.rsplit(".", 1)[-1]:
        raise CheckpointMismatchError(
            f"The checkpoint {path} holds a {found}, but the config builds a {configured}. Use the config the "
            "checkpoint was trained with (its run folder holds config.yaml)."
        )


def task_class(class_path: str) -> type:
    """The class a config's ``class_path`` names (a task, or any LightningModule)."""
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def task_classes() -> list[type[BaseTask]]:
    """The shipped tasks a config can name: every concrete subclass of :class:`BaseTask` in this package."""
    found, pending = [], list(BaseTask.__subclasses__())
    while pending:
        cls = pending.pop(0)
        pending += cls.__subclasses__()
        if not inspect.isabstract(cls) and cls.__module__.startswith("lightning_modules."):
            found.append(cls)
    return found


def _normalised(value: Any) -> Any:
    """Encoder paths compare by folder name, so a run moved to another machine still loads."""
    return Path(value).name if isinstance(value, str) and ("/" in value or "\\" in value) else value
