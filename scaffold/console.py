"""A calm console: the progress bar and the figures that matter, not library chatter.

Left out: a Lightning deprecation warning about a torch internal that its users cannot act on
(repeated at every loop start), Lightning's advertising tip, and the Hugging Face weight-loading
bar. W&B's own lines are silenced in ``scaffold.wandb_logger``, which prints one line instead.
Warnings that ask something of the user stay.
"""

from __future__ import annotations

import logging
import warnings

UNACTIONABLE_WARNINGS = (r".*isinstance\(treespec, LeafSpec\)` is deprecated",)
ADVERTS = ("💡 Tip:",)


class DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(ADVERTS)


def calm_console() -> None:
    """Set the filters (once per process; idempotent)."""
    for message in UNACTIONABLE_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, DropAdverts) for f in rank_zero.filters):
        rank_zero.addFilter(DropAdverts())
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
