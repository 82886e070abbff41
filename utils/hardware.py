"""The machine a run measures: its description, the precision it trains in, and its peak FLOP rates."""

from __future__ import annotations

import hashlib
import os
import platform
import time
import uuid
from pathlib import Path
from typing import Literal

import torch

MatmulKind = Literal["fp32", "tf32", "bf16", "fp16"]
HardwarePrecision = Literal["bf16-mixed", "16-mixed", "32-true"]

PROBE_SIZE = 1024  # a 2-GFLOP fp32 product: well under a second on two CPU cores

# Dense peaks (TFLOP/s, no sparsity) from the vendors' data sheets, by device-name fragment; more
# specific fragments first ("A100" before "A10", "L40S" before "L4"). A kind a card lacks is absent.
PEAK_TFLOPS: dict[str, dict[MatmulKind, float]] = {
    "H200": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0},
    "H100": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0},
    "L40S": {"fp32": 91.6, "tf32": 183.0, "bf16": 362.0, "fp16": 362.0},
    "L4": {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0},
    "A10": {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0, "fp16": 125.0},
    "V100": {"fp32": 15.7, "fp16": 125.0},
    "T4": {"fp32": 8.1, "fp16": 65.0},
}


def hardware() -> str:
    """The accelerator, or the CPU model and core count."""
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = (
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        )
        cpu = next(names, cpu)
    return f"{os.cpu_count()} CPU cores ({cpu})"


def hardware_precision(accelerator: str | None) -> HardwarePrecision:
    """bf16-mixed on CUDA with bf16, 16-mixed on older CUDA, 32-true otherwise."""
    on_cuda = torch.cuda.is_available() and str(accelerator or "auto") in ("auto", "cuda", "gpu")
    if not on_cuda:
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def matmul_kind(precision: str) -> MatmulKind | None:
    """The arithmetic a run's matrix products use: bf16 or fp16 under (mixed) half precision; in
    32-bit, tf32 when PyTorch lets fp32 products use it (``torch.set_float32_matmul_precision``),
    else fp32. None for precisions without a data-sheet peak (64-bit, fp8)."""
    precision = str(precision)
    if precision.startswith("bf16"):
        return "bf16"
    if precision.startswith("16"):
        return "fp16"
    if precision.startswith("32"):
        tf32 = torch.backends.cuda.matmul.allow_tf32 or torch.get_float32_matmul_precision() != "highest"
        return "tf32" if tf32 else "fp32"
    return None


def peak_tflops(device: torch.device, precision: str) -> float | None:
    """The data-sheet peak of a CUDA device for a run's precision; None where it is not known.

    A card without tf32 runs tf32-enabled products in fp32, so its fp32 peak is used then."""
    kind = matmul_kind(precision)
    if device.type != "cuda" or kind is None:
        return None
    name = torch.cuda.get_device_name(device)
    peaks = next((p for key, p in PEAK_TFLOPS.items() if key in name), None)
    if peaks is None:
        return None
    return peaks.get(kind) or (peaks.get("fp32") if kind == "tf32" else None)


def measured_matmul_tflops(device: torch.device, dtype: torch.dtype, size: int = 8192, repeats: int = 20) -> float:
    """The dense matmul rate this device reaches in ``dtype`` (TFLOP/s): the practical peak that MFU
    is best read against, since data-sheet peaks are rarely reachable (an H200 gives about 790 of 989)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e12


def machine_speed(device: torch.device) -> float:
    """The short fp32 matmul reading every run records (``machine_fp32_tflops``), in TFLOP/s: hosts
    sold under one name can differ several-fold, and times are only compared between like hosts."""
    return measured_matmul_tflops(device, torch.float32, size=PROBE_SIZE)


def machine_id() -> str:
    """Twelve hex digits naming this machine since it booted (host name and the kernel's boot id):
    runs that share it were timed on one machine. Virtual hosts of one CPU name and one probe
    reading have run the same job 1.55x apart, so neither the name nor the probe can tell."""
    boot = Path("/proc/sys/kernel/random/boot_id")
    since = boot.read_text().strip() if boot.is_file() else str(uuid.getnode())
    return hashlib.sha256(f"{platform.node()}/{since}".encode()).hexdigest()[:12]


if __name__ == "__main__":  # python -m utils.hardware: this host's speed before a study's timed runs
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"{hardware()}: fp32 matmul {machine_speed(device):.3f} TFLOP/s (machine_fp32_tflops)")
