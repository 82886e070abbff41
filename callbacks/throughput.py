"""Training throughput: documents, partitions and real (non-padding) tokens per second, and on GPU
the model FLOP utilisation (MFU)."""

from __future__ import annotations

import time

import torch

from callbacks.telemetry import ClockedCallback, reduce_over_ranks

# Dense bf16/fp16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, by device-name fragment.
PEAK_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    "V100": 125.0,
    "T4": 65.0,
}


def peak_tflops_of(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


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


class TrainingThroughput(ClockedCallback):
    """Logs per training epoch ``docs_per_s``, ``partitions_per_s``, ``tokens_per_s`` (real tokens,
    padding excluded), ``padding_share`` and, on GPU, ``mfu`` against ``peak_tflops`` per device.
    Counts are summed over processes under DDP; time is the training part of the epoch.

    Args:
        peak_tflops: the accelerator's peak for the training precision; by default looked up from
            the CUDA device name (bf16/fp16 dense), and MFU is skipped where unknown.
    """

    def __init__(self, peak_tflops: float | None = None):
        super().__init__()
        self.peak_tflops = peak_tflops
        self.history: list[dict[str, float]] = []
        self._reset()

    def _reset(self) -> None:
        self.docs: set[int] = set()
        self.partitions = 0
        self.tokens = 0
        self.padded_tokens = 0
        self.flops = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self._reset()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        mask = batch.get("attention_mask")
        size = len(batch["doc_index"])
        self.docs.update(batch["doc_index"].tolist())
        self.partitions += size
        if mask is not None:
            self.tokens += int(mask.sum())
            self.padded_tokens += mask.numel()
        if hasattr(pl_module, "forward_flops"):
            self.flops += 3.0 * pl_module.forward_flops(batch)  # backward costs twice the forward

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        seconds = reduce_over_ranks(trainer, self.epoch_seconds(trainer), "max")
        totals = {
            k: reduce_over_ranks(trainer, v, "sum")
            for k, v in (
                ("docs", len(self.docs)),
                ("partitions", self.partitions),
                ("tokens", self.tokens),
                ("padded", self.padded_tokens),
                ("flops", self.flops),
            )
        }
        figures = {
            "docs_per_epoch": totals["docs"],
            "docs_per_s": totals["docs"] / seconds,
            "partitions_per_s": totals["partitions"] / seconds,
        }
        if totals["padded"]:
            figures["tokens_per_s"] = totals["tokens"] / seconds
            figures["padding_share"] = 1.0 - totals["tokens"] / totals["padded"]
        if totals["flops"]:
            figures["model_tflops_per_s"] = totals["flops"] / seconds / 1e12
            peak = self.peak_tflops or peak_tflops_of(trainer.strategy.root_device)
            if peak:
                figures["mfu"] = totals["flops"] / seconds / (peak * 1e12 * trainer.world_size)
        self.history.append(figures)
        for name, value in figures.items():
            pl_module.log(name, value, rank_zero_only=True)

    def summary(self) -> dict:
        if not self.history:
            return {}
        return {k: sum(h[k] for h in self.history) / len(self.history) for k in self.history[-1]}
