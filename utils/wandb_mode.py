"""Whether W&B can log online here: credentials and network, decided without starting a run."""

from __future__ import annotations

import netrc
import os
import socket
from typing import Literal
from urllib.parse import urlparse

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
