"""Shared pieces of the cost-measurement callbacks."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback


class TelemetryCallback(Callback, ABC):
    """A measurement callback whose run totals go into ``results.json``."""

    @abstractmethod
    def summary(self) -> dict[str, float | int | list | None]:
        """The run's figures so far, by name (the names carry their units)."""

    def progress(self) -> dict[str, float]:
        """Cumulative figures at this moment of training (read at every dev evaluation, so each
        evaluation knows what reaching its score cost); none by default."""
        return {}


def gather_over_ranks(trainer: pl.Trainer, value: float) -> list[float]:
    """``value`` from every process, in rank order (``[value]`` on one device); every rank must call it."""
    if trainer.world_size == 1:
        return [float(value)]
    tensor = torch.tensor(float(value), dtype=torch.float64, device=trainer.strategy.root_device)
    return [float(v) for v in trainer.strategy.all_gather(tensor).reshape(-1)]


def reduce_over_ranks(trainer: pl.Trainer, value: float, op: Literal["sum", "max"]) -> float:
    """``value`` summed or maximised over all processes; every rank must call it."""
    values = gather_over_ranks(trainer, value)
    return sum(values) if op == "sum" else max(values)


def synchronize(trainer: pl.Trainer) -> None:
    """Wait for queued GPU work, so wall-clock times cover it."""
    if trainer.strategy.root_device.type == "cuda":
        torch.cuda.synchronize(trainer.strategy.root_device)


class TrainClock:
    """Training time of the current epoch: wall time from epoch start, minus validation inside it.

    Lightning runs validation inside the training epoch; cost figures per training epoch exclude it.
    """

    def __init__(self) -> None:
        self.epoch_start: float | None = None
        self.validation_s = 0.0
        self._validation_start: float | None = None

    def start_epoch(self, trained_s: float = 0.0) -> None:
        """``trained_s``: the training time the epoch had before a stop, when a run resumes inside it."""
        self.epoch_start = time.perf_counter() - trained_s
        self.validation_s = 0.0

    def start_validation(self) -> None:
        self._validation_start = time.perf_counter()

    def end_validation(self) -> None:
        if self._validation_start is not None:
            self.validation_s += time.perf_counter() - self._validation_start
            self._validation_start = None

    def elapsed(self) -> float:
        """Training seconds of the epoch so far (0 before the first epoch), a running validation excluded."""
        if self.epoch_start is None:
            return 0.0
        now = time.perf_counter()
        validating = now - self._validation_start if self._validation_start is not None else 0.0
        return now - self.epoch_start - self.validation_s - validating


class ClockedCallback(TelemetryCallback):
    """A telemetry callback that keeps a :class:`TrainClock` in step with the training loop.

    Its checkpointed state holds the running epoch's training time (``clock_state``), so the epoch a
    run resumes in is timed whole: a checkpoint written mid-epoch, or at the epoch's validation
    before its end, leaves part of that epoch's training in the stopped run."""

    def __init__(self):
        self.clock = TrainClock()
        self._stopped_epoch_s = 0.0  # training time of the epoch the restored checkpoint was written in

    def on_train_start(self, trainer, pl_module) -> None:
        # a run resumed inside an epoch gets no on_train_epoch_start: its epoch clock starts here,
        # from the time the stopped run had trained in it
        synchronize(trainer)
        self.clock.start_epoch(self._stopped_epoch_s)
        self._stopped_epoch_s = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        synchronize(trainer)
        self.clock.start_epoch()

    def on_validation_start(self, trainer, pl_module) -> None:
        self.clock.start_validation()

    def on_validation_end(self, trainer, pl_module) -> None:
        self.clock.end_validation()

    def epoch_seconds(self, trainer) -> float:
        synchronize(trainer)
        return self.clock.elapsed()

    def clock_state(self) -> dict[str, float]:
        """The clock's part of ``state_dict``."""
        return {"epoch_trained_s": self.clock.elapsed()}

    def load_clock_state(self, state_dict: dict) -> None:
        self._stopped_epoch_s = state_dict.get("epoch_trained_s", 0.0)  # older checkpoints: the resumed part only
