"""Training throughput: documents, partitions and real (non-padding) tokens per second, and on GPU
the model FLOP utilisation (MFU)."""

from __future__ import annotations

import torch

from callbacks.telemetry import ClockedCallback, reduce_over_ranks
from utils.hardware import peak_tflops


class TrainingThroughput(ClockedCallback):
    """Logs per training epoch ``docs_per_s``, ``partitions_per_s``, ``tokens_per_s`` (real tokens,
    padding excluded), ``padding_share``, ``model_tflops_per_s`` and, on GPU, ``mfu`` against the
    device's peak for the run's precision. Counts are summed over processes under DDP; time is the
    training part of the epoch.

    Counters stay on the batch's device and are read once per epoch, so measuring adds no host
    synchronisation to a training step.

    Args:
        peak_tflops: the accelerator's peak per device; by default the data-sheet peak of the CUDA
            device for the run's precision (fp32, tf32, bf16 or fp16), and MFU is skipped where unknown.
    """

    def __init__(self, peak_tflops: float | None = None):
        super().__init__()
        self.peak_tflops = peak_tflops
        self.history: list[dict[str, float]] = []
        self.seen_before = {"documents_seen": 0.0, "tokens_seen": 0.0}  # in the epochs already ended
        self._resumed_epoch: dict | None = None  # the counts of the epoch a checkpoint stopped in

    def _reset(self, device: torch.device, documents: int) -> None:
        self.seen = torch.zeros(documents, dtype=torch.bool, device=device)
        self.partitions = 0
        self.tokens = torch.zeros((), dtype=torch.float64, device=device)
        self.padded_tokens = 0
        self.flops = torch.zeros((), dtype=torch.float64, device=device)

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)  # a run resumed mid-epoch gets no epoch start
        self._reset(pl_module.device, trainer.train_dataloader.dataset.num_documents)
        if self._resumed_epoch is not None:  # carry on counting the epoch the stopped run was in
            part, self._resumed_epoch = self._resumed_epoch, None
            self.seen[torch.as_tensor(part["seen"], dtype=torch.long, device=self.seen.device)] = True
            self.partitions, self.padded_tokens = part["partitions"], part["padded"]
            self.tokens += part["tokens"]
            self.flops += part["flops"]

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self._reset(pl_module.device, trainer.train_dataloader.dataset.num_documents)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        mask = batch.get("attention_mask")
        self.seen[batch["doc_index"]] = True
        self.partitions += len(batch["doc_index"])
        if mask is not None:
            self.tokens += mask.sum()
            self.padded_tokens += mask.numel()
        flops = pl_module.forward_flops(batch) if hasattr(pl_module, "forward_flops") else None
        if flops is not None:
            self.flops += 3.0 * flops  # backward costs twice the forward

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        seconds = reduce_over_ranks(trainer, self.epoch_seconds(trainer), "max")
        counts: dict[str, torch.Tensor | int] = {
            "docs": self.seen.sum(),
            "partitions": self.partitions,
            "tokens": self.tokens,
            "padded": self.padded_tokens,
            "flops": self.flops,
        }
        totals = {k: reduce_over_ranks(trainer, float(v), "sum") for k, v in counts.items()}
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
            peak = self.peak_tflops or peak_tflops(trainer.strategy.root_device, str(trainer.precision))
            if peak:
                figures["mfu"] = totals["flops"] / seconds / (peak * 1e12 * trainer.world_size)
        self.history.append(figures)
        self.seen_before["documents_seen"] += totals["docs"]
        self.seen_before["tokens_seen"] += totals["tokens"]
        for name, value in figures.items():
            pl_module.log(name, value, rank_zero_only=True)

    def progress(self) -> dict[str, float]:
        """Documents and real tokens trained on so far (this process's part of the running epoch)."""
        if not hasattr(self, "seen"):
            return dict(self.seen_before)
        return {
            "documents_seen": self.seen_before["documents_seen"] + float(self.seen.sum()),
            "tokens_seen": self.seen_before["tokens_seen"] + float(self.tokens),
        }

    def state_dict(self) -> dict:
        """The epochs already ended and the counts of the running one, so a resumed run's figures
        are those of a run that never stopped."""
        state: dict = {"history": list(self.history), "seen_before": dict(self.seen_before)} | self.clock_state()
        if hasattr(self, "seen"):
            state["epoch"] = {
                "seen": self.seen.nonzero().flatten().tolist(),
                "partitions": self.partitions,
                "tokens": float(self.tokens),
                "padded": self.padded_tokens,
                "flops": float(self.flops),
            }
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict.get("history", []))
        self.seen_before = dict(state_dict.get("seen_before", self.seen_before))
        self._resumed_epoch = state_dict.get("epoch")
        self.load_clock_state(state_dict)

    def summary(self) -> dict:
        if not self.history:
            return {}
        means = {k: sum(h[k] for h in self.history) / len(self.history) for k in self.history[-1]}
        return means | self.seen_before
