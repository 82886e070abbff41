"""Peak memory per training epoch: GPU memory on CUDA, the process's resident set on CPU."""

from __future__ import annotations

import torch

from callbacks.telemetry import TelemetryCallback, gather_over_ranks
from utils.memory import MB, available_memory_share, peak_memory_mb, reset_peak_memory, trim_heap


class PeakMemory(TelemetryCallback):
    """Logs per training epoch ``peak_gpu_allocated_mb`` and ``peak_gpu_reserved_mb`` on CUDA, or
    ``peak_rss_mb`` on CPU; the maximum over processes under DDP.

    On CPU it also keeps a fragmented heap (see ``trim_heap``) from running the machine out of
    memory: after a batch that leaves less than ``trim_below_available`` of the memory available,
    the heap is trimmed. Trimming costs about 5% of a step (freed pages are faulted back in), so it
    is not done while memory is plentiful."""

    def __init__(self, trim_cpu_heap: bool = True, trim_below_available: float = 0.25):
        self.trim_cpu_heap = trim_cpu_heap
        self.trim_below_available = trim_below_available
        self.per_rank: dict[str, list[float]] = {}

    def _bound_heap(self, trainer) -> None:
        if self.trim_cpu_heap and trainer.strategy.root_device.type == "cpu":
            share = available_memory_share()
            if share is not None and share < self.trim_below_available:
                trim_heap()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._bound_heap(trainer)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._bound_heap(trainer)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._bound_heap(trainer)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._bound_heap(trainer)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        reset_peak_memory(trainer.strategy.root_device)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        device = trainer.strategy.root_device
        if device.type == "cuda":
            local = {
                "peak_gpu_allocated_mb": peak_memory_mb(device),
                "peak_gpu_reserved_mb": torch.cuda.max_memory_reserved(device) / MB,
            }
        else:
            local = {"peak_rss_mb": peak_memory_mb(device)}
        for name, value in local.items():
            per_rank = gather_over_ranks(trainer, value)
            previous = self.per_rank.get(name, [0.0] * len(per_rank))
            self.per_rank[name] = [max(a, b) for a, b in zip(per_rank, previous, strict=True)]
            pl_module.log(name, max(per_rank), rank_zero_only=True)

    def summary(self) -> dict:
        peaks = {name: max(values) for name, values in self.per_rank.items()}
        return peaks | {f"{name}_per_rank": values for name, values in self.per_rank.items()}
