"""A loss that turns NaN or infinite stops the run with what to do, before it spoils the weights."""

from __future__ import annotations

import logging

import torch
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the message names the step and the fixes."""


def skips_on_device(trainer) -> bool:
    """Whether every optimiser can skip a step on the device (PyTorch's fused Adam/AdamW/SGD read a
    ``found_inf`` flag, as under a gradient scaler), with no gradient scaler of its own in the way."""
    if str(trainer.precision) == "16-mixed":
        return False
    return all(getattr(opt, "_step_supports_amp_scaling", False) for opt in trainer.optimizers)


class NonFiniteLossGuard(Callback):
    """Checks every training loss. A non-finite loss stops the run (the weights and ``last.ckpt``
    hold no update from it), or, while fewer than ``skip_batches`` batches were skipped, its batch is
    dropped: no weight moves for it. Skips are counted (``nonfinite_batches_skipped``) and survive a
    resume.

    On CPU the check is made at once (reading a number costs nothing there). On CUDA, with fused
    optimisers, the finite flag stays on the device: a bad step is skipped there by the optimiser
    itself, and the flags are read every ``log_every_n_steps`` steps and at each epoch end, so the
    check forces no host synchronisation per step; a stop then comes at the next read and names the
    first bad step. Every shipped task's optimiser is fused on CUDA; one that is not is checked at once.

    Args:
        skip_batches: bad batches to skip before stopping (0: stop at the first).
        defer: read the flags at logging intervals (see above); ``null`` decides by device and optimiser.
    """

    def __init__(self, skip_batches: int = 0, defer: bool | None = None):
        self.skip_batches = skip_batches
        self.defer = defer
        self.skipped = 0
        self._discard = False
        self._deferring = False
        self._bad: torch.Tensor | None = None  # this step's flag (deferred mode)
        self._bad_count: torch.Tensor | None = None  # bad steps since the last read
        self._first_bad: torch.Tensor | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        on_cuda = trainer.strategy.root_device.type == "cuda"
        self._deferring = (on_cuda if self.defer is None else self.defer) and skips_on_device(trainer)
        device = trainer.strategy.root_device
        self._bad_count = torch.zeros((), dtype=torch.int64, device=device)
        self._first_bad = torch.full((), -1, dtype=torch.int64, device=device)

    def _stop(self, trainer, value: str, where: str) -> None:
        last = next(
            (cb.last_model_path for cb in trainer.checkpoint_callbacks if getattr(cb, "last_model_path", "")), None
        )
        kept = f"The last good checkpoint is {last}; resume" if last else "Resume from the last checkpoint"
        raise NonFiniteLossError(
            f"Loss is {value} at {where}. Likely causes: a learning rate too high for this model "
            "(lower encoder_lr / lr), fp16 overflow (train in bf16-mixed or 32-true precision), or an extreme "
            f"batch. {kept} with --ckpt_path last after the fix, or let the run skip such batches with "
            "--nonfinite.skip_batches N."
        )

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        bad = ~torch.isfinite(loss.detach()).all()
        if self._deferring:
            assert self._bad_count is not None and self._first_bad is not None  # set in on_train_start
            self._bad = bad
            self._bad_count += bad
            self._first_bad = torch.where(bad & (self._first_bad < 0), trainer.global_step, self._first_bad)
            return
        if not bool(bad):
            return
        batch = trainer.fit_loop.epoch_loop.batch_idx
        where = f"step {trainer.global_step} (epoch {trainer.current_epoch}, batch {batch})"
        if self.skipped < self.skip_batches:
            self.skipped += 1
            self._discard = True
            log.warning(
                "Loss is %s at %s: batch skipped (%d of %d allowed).",
                loss.item(),
                where,
                self.skipped,
                self.skip_batches,
            )
            return
        self._stop(trainer, str(loss.item()), where)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self._deferring and self._bad is not None:
            # the fused kernel leaves weights and optimiser state alone when the flag is set
            getattr(optimizer, "_optimizer", optimizer).found_inf = self._bad.float()
        elif self._discard:
            optimizer.zero_grad(set_to_none=True)  # parameters without gradients are left alone
            self._discard = False

    def _read(self, trainer) -> None:
        """Deferred mode: count the bad steps since the last read; stop once more than allowed."""
        if not self._deferring or self._bad_count is None or self._first_bad is None:
            return
        count, first = int(self._bad_count), int(self._first_bad)
        if not count:
            return
        self._bad_count.zero_()
        self._first_bad.fill_(-1)
        self.skipped += count
        if self.skipped > self.skip_batches:
            self._stop(
                trainer, "not finite", f"step {first} (epoch {trainer.current_epoch}; {count} bad steps skipped)"
            )
        log.warning(
            "Loss was not finite at %d steps from step %d: skipped (%d of %d allowed).",
            count,
            first,
            self.skipped,
            self.skip_batches,
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % max(1, trainer.log_every_n_steps) == 0:
            self._read(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._read(trainer)
        pl_module.log("nonfinite_batches_skipped", float(self.skipped), rank_zero_only=True)

    def state_dict(self) -> dict:
        return {"skipped": self.skipped}

    def load_state_dict(self, state_dict: dict) -> None:
        self.skipped = state_dict.get("skipped", 0)
