"""Weights & Biases logging that never fails or hangs a run for lack of W&B."""

from __future__ import annotations

import logging
import netrc
import os
import socket
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger

log = logging.getLogger(__name__)
Mode = Literal["auto", "online", "offline", "disabled"]


def has_wandb_credentials(host: str) -> bool:
    """An API key in ``WANDB_API_KEY`` or in ``~/.netrc`` for the W&B host (where ``wandb login`` puts it)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def can_reach(host: str, port: int = 443, timeout_s: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def resolve_wandb_mode(mode: Mode = "auto", timeout_s: float = 2.0) -> tuple[str, str]:
    """(mode, reason). ``auto``: ``$WANDB_MODE`` if set, else online only with credentials and network."""
    if mode != "auto":
        return mode, "requested"
    env = os.environ.get("WANDB_MODE")
    if env:
        return ("offline" if env == "dryrun" else env), "WANDB_MODE"
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    if not has_wandb_credentials(host):
        return "offline", "no W&B credentials (run `wandb login` to log online)"
    if not can_reach(host, timeout_s=timeout_s):
        return "offline", f"{host} is not reachable"
    return "online", "credentials and network"


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
        super().__init__(project=project, save_dir=save_dir, offline=resolved == "offline", mode=resolved, **kwargs)
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
