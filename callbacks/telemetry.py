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
        self.epoch_start = 0.0
        self.validation_s = 0.0
        self._validation_start: float | None = None

    def start_epoch(self) -> None:
        self.epoch_start = time.perf_counter()
        self.validation_s = 0.0

    def start_validation(self) -> None:
        self._validation_start = time.perf_counter()

    def end_validation(self) -> None:
        if self._validation_start is not None:
            self.validation_s += time.perf_counter() - self._validation_start
            self._validation_start = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.epoch_start - self.validation_s


class ClockedCallback(TelemetryCallback):
    """A telemetry callback that keeps a :class:`TrainClock` in step with the training loop."""

    def __init__(self):
        self.clock = TrainClock()

    def on_train_start(self, trainer, pl_module) -> None:
        # a run resumed mid-epoch gets no on_train_epoch_start: its epoch clock starts here
        synchronize(trainer)
        self.clock.start_epoch()

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
