"""Memory probes (GPU allocator, process RSS, what the machine has left) and heap trimming."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import resource
import sys
from pathlib import Path

import torch

MB = 2**20


def proc_field_kb(path: str, field: str) -> int | None:
    """A ``Field:  N kB`` line of a Linux /proc file (``status``, ``meminfo``); None elsewhere."""
    proc = Path(path)
    if proc.is_file():
        for line in proc.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return None


def _status_mb(field: str) -> float | None:
    kb = proc_field_kb("/proc/self/status", field)
    return kb / 1024 if kb is not None else None


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's RSS (Linux); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory of this process since the last reset (else since it started), in MiB."""
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    peak_units = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak_units / MB if sys.platform == "darwin" else peak_units / 1024


def rss_mb() -> float:
    """Resident memory of this process now, in MiB (Linux; else the peak so far)."""
    return _status_mb("VmRSS") or peak_rss_mb()


def trim_heap() -> None:
    """Return the free pages of glibc's heap to the OS (``malloc_trim``); a no-op elsewhere.

    Why: the commands' malloc settings (``utils.process``) keep large blocks in the heap for speed,
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
    total, available = proc_field_kb("/proc/meminfo", "MemTotal"), proc_field_kb("/proc/meminfo", "MemAvailable")
    return available / total if total and available is not None else None
