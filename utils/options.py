"""The ranges numeric options must lie in, checked once right after parsing, before any work.

A batch size of 0 or a negative learning rate would otherwise fail deep inside batching or the
optimiser, minutes into a run. One table serves every section (``data``, the model's ``init_args``,
``budget``) because an option's range depends on what it is, not on where it sits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class OptionError(ValueError):
    """A numeric option outside its range; the message names the option and what it must be."""


Rule = tuple[Callable[[float], bool], str]
AT_LEAST_1: Rule = (lambda v: v >= 1, "at least 1")
POSITIVE: Rule = (lambda v: v > 0, "above 0")
NON_NEGATIVE: Rule = (lambda v: v >= 0, "0 or more")
SHARE: Rule = (lambda v: 0 < v <= 1, "in (0, 1]")
PROBABILITY: Rule = (lambda v: 0 <= v <= 1, "in [0, 1]")
DROP_RATE: Rule = (lambda v: 0 <= v < 1, "in [0, 1)")

RANGES: dict[str, Rule] = {
    **dict.fromkeys(
        (
            "max_length",
            "num_partitions",
            "batch_size",
            "eval_batch_size",
            "min_freq",
            "max_vocab_size",
            "tfidf_max_features",
            "num_topics",
            "hidden_size",
            "nvdm_hidden_size",
            "num_samples",
            "nvdm_samples",
            "embed_dim",
            "maps",
            "steps",
            "documents",
            "evaluations",
        ),
        AT_LEAST_1,
    ),
    **dict.fromkeys(("temperature", "epochs", "dev_size"), POSITIVE),
    # a learning rate of 0 freezes its parameters
    **dict.fromkeys(
        ("lr", "encoder_lr", "head_lr", "weight_decay", "kd_weight", "num_workers", "copies"), NON_NEGATIVE
    ),
    "bucket_batches": (AT_LEAST_1[0], "at least 1 (--data.length_bucketing false turns bucketing off)"),
    "train_fraction": SHARE,
    **dict.fromkeys(("alpha", "warmup_ratio", "threshold", "ema_decay", "mask_prob", "swap_prob"), PROBABILITY),
    **dict.fromkeys(("dropout", "embed_dropout", "weight_drop"), DROP_RATE),
}


def check_ranges(section: str, values: Mapping[str, Any] | None) -> None:
    """Refuse the first option of ``section`` (``data``, ``model``, ``budget``; nested settings such
    as ``data.augmentation`` included) outside its range; unset (None) and non-numeric values are
    left to their own checks."""
    for name, value in (values or {}).items():
        if isinstance(value, Mapping):
            check_ranges(f"{section}.{name}", value)
            continue
        rule = RANGES.get(name)
        if rule is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        accepts, wanted = rule
        if not accepts(value):
            raise OptionError(f"--{section}.{name} must be {wanted}, got {value}.")
