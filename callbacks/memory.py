"""Peak memory per training epoch: GPU memory on CUDA, the process's resident set on CPU."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import resource
import sys
from pathlib import Path

import torch

from callbacks.telemetry import TelemetryCallback, gather_over_ranks

MB = 2**20


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's RSS (Linux); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _proc_field_kb(path: str, field: str) -> int | None:
    """A ``Field:  N kB`` line of a Linux /proc file (``status``, ``meminfo``); None elsewhere."""
    proc = Path(path)
    if proc.is_file():
        for line in proc.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return None


def _proc_status_mb(field: str) -> float | None:
    kb = _proc_field_kb("/proc/self/status", field)
    return kb / 1024 if kb is not None else None


def peak_rss_mb() -> float:
    """Peak resident memory of this process since the last reset (else since it started), in MiB."""
    peak = _proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


def rss_mb() -> float:
    """Resident memory of this process now, in MiB (Linux; else the peak so far)."""
    return _proc_status_mb("VmRSS") or peak_rss_mb()


def trim_heap() -> None:
    """Return the free pages of glibc's heap to the OS (``malloc_trim``); a no-op elsewhere.

    Why: the commands' malloc settings (``process_setup``) keep large blocks in the heap for speed,
    and glibc raises its mmap threshold by itself as large blocks are freed; the heap then fragments.
    On CPU the resident set grows batch after batch (eager attention over 64 x 512 tokens passed
    24 GB on R8's test split) although nothing is live."""
    with contextlib.suppress(OSError, AttributeError):
        _libc().malloc_trim(0)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL("libc.so.6")


def release_freed_memory() -> None:
    """Hand memory that Python and torch freed back to the OS, so that a later peak measures what
    the next piece of work needs rather than what earlier work left."""
    gc.collect()
    trim_heap()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reset_peak_memory(device: torch.device) -> float:
    """Start a new peak window: the GPU allocator's peak on CUDA, the RSS high-water mark otherwise.
    Returns the memory in use now (MiB), so callers can report what a piece of work added."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / MB
    reset_peak_rss()
    return rss_mb()


def peak_memory_mb(device: torch.device) -> float:
    """The peak since ``reset_peak_memory``: GPU memory allocated on CUDA, resident memory otherwise."""
    return torch.cuda.max_memory_allocated(device) / MB if device.type == "cuda" else peak_rss_mb()


def available_memory_share() -> float | None:
    """The share of memory still available to this process: under a cgroup v2 limit, what the limit
    leaves; else the system's MemAvailable / MemTotal (Linux). None where neither can be read."""
    cgroup = Path("/sys/fs/cgroup")
    with contextlib.suppress(OSError, ValueError):
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            return 1.0 - int((cgroup / "memory.current").read_text()) / int(limit)
    total, available = _proc_field_kb("/proc/meminfo", "MemTotal"), _proc_field_kb("/proc/meminfo", "MemAvailable")
    return available / total if total and available is not None else None


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
