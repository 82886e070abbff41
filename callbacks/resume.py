"""Checkpoints to resume from: ``last.ckpt`` also mid-epoch, with the random number generators.

Lightning restores weights, optimiser, scheduler, loops, callback states and the train loader's
position (``datamodules.batching.ResumableLoader``). This callback adds the rest an exact resume
needs: it saves ``last.ckpt`` every few minutes (or steps) of training, and the states of the torch,
CUDA, NumPy and Python generators, put back just before the first batch after a resume, so dropout
and topic-model sampling continue as if the run had never stopped.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import cast

import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint


def random_states() -> dict:
    """Plain tensors, lists and numbers only, so checkpoints load with ``weights_only=True``."""
    # numpy's stubs give the no-argument call a dict; the global MT19937 gives its legacy tuple
    state = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state())
    kind, keys, position, has_gauss, gauss = state
    states = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, keys.tolist(), position, has_gauss, gauss],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, gauss))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class ResumeCheckpoint(ModelCheckpoint):
    """Writes ``last.ckpt`` every ``every_minutes`` of training (or ``every_n_train_steps`` steps),
    mid-epoch included, and carries the random states through every checkpoint.

    Args:
        every_minutes: wall-clock minutes between saves; ignored when ``every_n_train_steps`` is set.
        every_n_train_steps: save every this many optimiser steps instead.
    """

    def __init__(self, every_minutes: float = 10.0, every_n_train_steps: int | None = None, dirpath: str | None = None):
        by_time = None if every_n_train_steps else timedelta(minutes=every_minutes)
        # no version counter: this callback and a best-model checkpoint that also keeps the last
        # weights write the same last.ckpt, whichever is newer
        super().__init__(
            dirpath=dirpath,
            save_top_k=0,
            save_last=True,
            every_n_train_steps=every_n_train_steps,
            train_time_interval=by_time,
            enable_version_counter=False,
        )
        self._pending_states: dict | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(kind="resume")

    def state_dict(self) -> dict:
        return {**super().state_dict(), "random_states": random_states()}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        self._pending_states = state_dict.pop("random_states", None)
        super().load_state_dict(state_dict)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._pending_states is not None:
            set_random_states(self._pending_states)
            self._pending_states = None
