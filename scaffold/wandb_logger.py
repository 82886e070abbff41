"""Weights & Biases logging that never fails or hangs a run for lack of W&B."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from lightning.pytorch.loggers import WandbLogger

from utils.wandb_mode import Mode, resolve_wandb_mode

log = logging.getLogger(__name__)


class AutoWandbLogger(WandbLogger):
    """Lightning's WandbLogger that picks online, offline or disabled by itself.

    Offline runs are written under ``<save_dir>/wandb/`` and can be uploaded later with
    ``wandb sync``.

    Args:
        project: W&B project.
        save_dir: folder for W&B's local files.
        mode: ``auto`` (online when credentials and network allow, else offline; ``$WANDB_MODE``
            wins), or ``online`` / ``offline`` / ``disabled``.
        probe_timeout_s: how long the network probe may take.
        **kwargs: passed to :class:`lightning.pytorch.loggers.WandbLogger` (name, group, tags, ...).
    """

    def __init__(
        self,
        project: str = "topicbert",
        save_dir: str = "runs",
        mode: Mode = "auto",
        probe_timeout_s: float = 2.0,
        **kwargs,
    ):
        resolved, reason = resolve_wandb_mode(mode, probe_timeout_s)
        if resolved != "online":
            kwargs["log_model"] = False
        if not any(os.environ.get(k) for k in ("WANDB_SILENT", "WANDB_QUIET")) and "settings" not in kwargs:
            import wandb  # W&B's dozens of console lines give way to the one line of ``experiment``

            kwargs["settings"] = wandb.Settings(silent=True)
        # absolute: W&B's service process writes the run files and resolves a relative folder against
        # its own working directory, which is where the process was when the service started
        folder = str(Path(save_dir).resolve())
        super().__init__(project=project, save_dir=folder, offline=resolved == "offline", mode=resolved, **kwargs)
        self.mode = resolved
        self.reason = reason
        self._wandb_init.pop("anonymous", None)  # W&B warns on every run that the setting is obsolete

    @property
    def experiment(self):
        """The W&B run, started on first use with one line saying where it is."""
        starting = self._experiment is None
        run = super().experiment
        if starting and self.mode != "disabled" and getattr(run, "dir", None):
            if self.mode == "online":
                log.info("W&B run %s: %s", run.name, run.url)
            else:
                folder = Path(run.dir).parent
                log.info(
                    "W&B run %s logged offline (%s) to %s; upload it with: wandb sync %s",
                    run.name,
                    self.reason,
                    folder,
                    folder,
                )
        return run

    def finish(self) -> None:
        """Close the W&B run (its files are complete once this returns)."""
        if self._experiment is not None:
            self._experiment.finish()
            self._experiment = None
