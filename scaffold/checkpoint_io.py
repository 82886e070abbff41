"""Checkpoints written atomically beside their target.

Lightning's own writer stages a checkpoint in the system temporary folder and moves it into place;
when the run folder is on another filesystem that move is a copy, so a run killed during it leaves
a truncated checkpoint (and an orphan in the temporary folder). Here the bytes go to a temporary
file in the checkpoint's own folder, are flushed to disk, and replace the target in one rename.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from utils.files import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local writes are atomic (see the module docstring); remote paths
    (``s3://``, ...) keep Lightning's fsspec writer."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        with atomic_write(Path(path), "wb") as f:
            torch.save(checkpoint, f)
