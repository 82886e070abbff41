"""Fine-tuning time: per training epoch (T_epoch), in total (T), and per batch."""

from __future__ import annotations

import statistics
import time

from callbacks.telemetry import ClockedCallback
from utils.hardware import machine_id, machine_speed


class EpochTimer(ClockedCallback):
    """Logs ``time_epoch_s`` (training part of each epoch, validation excluded), ``time_batch_s``
    (mean training step, the first ``warmup_batches`` of the run excluded because they include
    allocator and kernel warm-up) and, at the end, ``time_total_s`` (wall time of the training loop
    with its validation passes; model loading and the sanity check are not fine-tuning).

    The step time is the epoch's training time after warm-up divided by its steps (data loading
    included): the clock is read with a device synchronisation at epoch boundaries and once at the
    end of warm-up, never per step. Times are rank 0's; with DDP every rank runs in lock-step, so one
    clock is the run's clock.

    Args:
        warmup_batches: leading training batches left out of the per-batch mean.
    """

    def __init__(self, warmup_batches: int = 5):
        super().__init__()
        self.warmup_batches = warmup_batches
        self.epoch_times: list[float] = []
        self.batches_seen = 0
        self.timed_batches = 0  # batches after warm-up, over the run
        self.timed_s = 0.0  # their training time
        self._timed_since: float | None = None  # epoch-clock reading where this epoch's timed batches start
        self.fit_start: float | None = None
        self.total_s: float | None = None
        self.earlier_s = 0.0  # training time of the runs this one resumed
        self.machine_tflops: float | None = None
        self.speeds: list[float] = []  # the machine reading of each part of a resumed run, this one last
        self.machines: list[str] = []  # the machine (utils.hardware.machine_id) of each part

    def on_train_start(self, trainer, pl_module) -> None:
        self.machine_tflops = machine_speed(pl_module.device)
        self.speeds.append(self.machine_tflops)
        self.machines.append(machine_id())
        super().on_train_start(trainer, pl_module)
        self.fit_start = time.perf_counter()
        self.total_s = None
        # a resumed epoch's clock starts at the part trained before the stop, already in timed_s
        self._timed_since = self.clock.elapsed() if self.batches_seen >= self.warmup_batches else None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self._timed_since = 0.0 if self.batches_seen >= self.warmup_batches else None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches_seen += 1
        if self.batches_seen > self.warmup_batches:
            self.timed_batches += 1
        elif self.batches_seen == self.warmup_batches:
            self._timed_since = self.epoch_seconds(trainer)  # the one synchronisation inside an epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        seconds = self.epoch_seconds(trainer)
        self.epoch_times.append(seconds)
        pl_module.log("time_epoch_s", seconds, rank_zero_only=True)
        if self._timed_since is not None:
            self.timed_s += seconds - self._timed_since
            self._timed_since = None
        if self.timed_batches:
            pl_module.log("time_batch_s", self.timed_s / self.timed_batches, rank_zero_only=True)

    def on_train_end(self, trainer, pl_module) -> None:
        assert self.fit_start is not None  # set in on_train_start
        self.total_s = self.earlier_s + time.perf_counter() - self.fit_start
        for logger in trainer.loggers:
            logger.log_metrics({"time_total_s": self.total_s}, step=trainer.global_step)

    def elapsed_s(self) -> float | None:
        """Wall time of the training loop so far, validation and resumed runs included."""
        if self.total_s is not None:
            return self.total_s
        if self.fit_start is None:  # not started, or resumed with no steps left (Lightning skips the loop)
            return self.earlier_s or None
        return self.earlier_s + time.perf_counter() - self.fit_start

    def progress(self) -> dict[str, float]:
        elapsed = self.elapsed_s()
        return {} if elapsed is None else {"time_s": elapsed}

    def summary(self) -> dict:
        total = self.elapsed_s()
        return {
            "epochs": len(self.epoch_times),
            "time_epoch_s": list(self.epoch_times),
            "time_epoch_mean_s": statistics.fmean(self.epoch_times) if self.epoch_times else None,
            "time_total_s": total,
            "time_batch_mean_s": self.timed_s / self.timed_batches if self.timed_batches else None,
            "machine_fp32_tflops": self.machine_tflops,
            "machine_fp32_tflops_segments": list(self.speeds),
            "machine_ids": list(self.machines),
        }

    def state_dict(self) -> dict:
        elapsed = self.earlier_s + (time.perf_counter() - self.fit_start if self.fit_start is not None else 0.0)
        in_epoch = self.clock.elapsed() - self._timed_since if self._timed_since is not None else 0.0
        return {
            "epoch_times": self.epoch_times,
            "batches_seen": self.batches_seen,
            "timed_batches": self.timed_batches,
            "timed_s": self.timed_s + in_epoch,  # a run resumed mid-epoch keeps the part before the stop
            "elapsed_s": elapsed,
            "speeds": self.speeds,
            "machines": self.machines,
        } | self.clock_state()

    def load_state_dict(self, state_dict: dict) -> None:
        self.epoch_times = list(state_dict.get("epoch_times", []))
        self.batches_seen = state_dict.get("batches_seen", 0)
        older = state_dict.get("batch_times", [])  # checkpoints from before the per-epoch step clock
        self.timed_batches = state_dict.get("timed_batches", len(older))
        self.timed_s = state_dict.get("timed_s", sum(older))
        self.earlier_s = state_dict.get("elapsed_s", 0.0)
        self.speeds = list(state_dict.get("speeds", []))
        self.machine_tflops = self.speeds[-1] if self.speeds else None  # the last part that trained
        self.machines = list(state_dict.get("machines", []))
        self.load_clock_state(state_dict)
