"""A loss that turns NaN or infinite stops the run with what to do, before it spoils the weights."""

from __future__ import annotations

import logging

import torch
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the message names the step and the fixes."""


class NonFiniteLossGuard(Callback):
    """Checks every training loss before its backward pass. A non-finite loss stops the run (the
    weights and ``last.ckpt`` are still those of the last good step), or, while fewer than
    ``skip_batches`` batches were skipped, its batch is dropped: its gradients are discarded, so no
    weight moves. Skips are counted (``nonfinite_batches_skipped``) and survive a resume.

    Args:
        skip_batches: bad batches to skip before stopping (0: stop at the first).
    """

    def __init__(self, skip_batches: int = 0):
        self.skip_batches = skip_batches
        self.skipped = 0
        self._discard = False

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        if bool(torch.isfinite(loss.detach()).all()):
            return
        where = (
            f"step {trainer.global_step} (epoch {trainer.current_epoch}, batch {trainer.fit_loop.epoch_loop.batch_idx})"
        )
        if self.skipped < self.skip_batches:
            self.skipped += 1
            self._discard = True
            log.warning("Loss is %s at %s: batch skipped (%d of %d allowed).", loss.item(), where, self.skipped,
                        self.skip_batches)  # fmt: skip
            return
        last = next((cb.last_model_path for cb in trainer.checkpoint_callbacks if getattr(cb, "last_model_path", "")),
                    None)  # fmt: skip
        kept = f"The last good checkpoint is {last}; resume" if last else "Resume from the last checkpoint"
        raise NonFiniteLossError(
            f"Loss is {loss.item()} at {where}. Likely causes: a learning rate too high for this model "
            "(lower encoder_lr / lr), fp16 overflow (train in bf16-mixed or 32-true precision), or an extreme "
            f"batch. {kept} with --ckpt_path last after the fix, or let the run skip such batches with "
            "--nonfinite.skip_batches N."
        )

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self._discard:
            optimizer.zero_grad(set_to_none=True)  # parameters without gradients are left alone
            self._discard = False

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        pl_module.log("nonfinite_batches_skipped", float(self.skipped), rank_zero_only=True)

    def state_dict(self) -> dict:
        return {"skipped": self.skipped}

    def load_state_dict(self, state_dict: dict) -> None:
        self.skipped = state_dict.get("skipped", 0)
