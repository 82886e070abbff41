"""One training budget for every arm of a comparison.

    --budget.steps 1560 --budget.evaluations 10     optimiser steps, 10 candidate checkpoints
    --budget.epochs 2                               passes over the training documents
    --budget.epochs 0.3                             one pass over a seeded 30% of the documents
    --budget.documents 3000                         documents seen

A fraction of an epoch is a fraction of *documents* (``data.train_fraction``), never of batches:
``limit_train_batches`` counts partitions, so variants with more partitions per document would see
more documents for the same setting. Steps are the fair unit when arms' epochs differ in size (a
distillation transfer set is the training split and its augmented copies); evaluations then fix the
number of candidate checkpoints both arms offer the dev-based choice.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


class BudgetError(ValueError):
    """A budget that cannot be carried out as given; the message names the fix."""


@dataclass
class Budget:
    """What a run may consume; exactly one of ``epochs``, ``steps`` or ``documents``.

    Args:
        epochs: passes over the training documents; below 1, one pass over that share of them.
        steps: optimiser steps, however many an epoch holds.
        documents: training documents seen: a whole number of epochs, or one pass over a share.
        evaluations: dev evaluations, each a candidate checkpoint. With ``steps``: one every
            steps / evaluations steps (default 10). With epochs or documents: one per epoch.
    """

    epochs: float | None = None
    steps: int | None = None
    documents: int | None = None
    evaluations: int | None = None

    def __post_init__(self) -> None:
        given = [name for name in ("epochs", "steps", "documents") if getattr(self, name) is not None]
        if len(given) != 1:
            raise BudgetError(
                f"A budget is one of --budget.epochs, --budget.steps or --budget.documents; got {given or 'none'}."
            )
        if any(v is not None and v <= 0 for v in (self.epochs, self.steps, self.documents, self.evaluations)):
            raise BudgetError(f"Budget values must be positive: {self.describe()}.")
        if self.epochs is not None and self.epochs > 1 and not float(self.epochs).is_integer():
            raise BudgetError(f"--budget.epochs {self.epochs}: use a whole number of epochs, or a share below 1.")
        if self.steps is not None and self.steps % self.evaluations_for_steps:
            raise BudgetError(
                f"--budget.steps {self.steps} is not a multiple of --budget.evaluations "
                f"{self.evaluations_for_steps}; choose them so every evaluation is equally spaced."
            )

    @property
    def evaluations_for_steps(self) -> int:
        return self.evaluations or 10

    def describe(self) -> str:
        """The budget as results.json and the report show it: ``steps=1560,evaluations=10``."""
        if self.steps is not None:
            return f"steps={self.steps},evaluations={self.evaluations_for_steps}"
        if self.epochs is not None:
            return f"epochs={self.epochs:g}"
        return f"documents={self.documents}"

    def arguments(self) -> list[str]:
        """The ``cli.py fit`` arguments that give a run this budget."""
        values = {"epochs": self.epochs, "steps": self.steps, "documents": self.documents}
        values["evaluations"] = self.evaluations
        return [arg for key, v in values.items() if v is not None for arg in (f"--budget.{key}", f"{v:g}")]

    def epochs_and_fraction(self, train_documents: int) -> tuple[int, float]:
        """(max_epochs, train_fraction) of an epochs or documents budget."""
        epochs = self.epochs if self.epochs is not None else (self.documents or 0) / train_documents
        if epochs < 1:
            return 1, epochs
        if not math.isclose(epochs, round(epochs)):
            raise BudgetError(
                f"--budget.documents {self.documents} is {epochs:.3f} epochs of the {train_documents} training "
                "documents; give a multiple of them, fewer than them, or use --budget.steps."
            )
        return round(epochs), 1.0

    def apply(self, trainer_config: dict[str, Any], train_documents: int) -> float:
        """Set the trainer's limits in ``trainer_config``; returns the share of documents to train on."""
        replaced = {k: trainer_config.get(k) for k in ("max_epochs", "max_steps") if trainer_config.get(k)}
        fraction = 1.0
        if self.steps is not None:
            trainer_config.update(
                max_steps=self.steps,
                max_epochs=-1,
                check_val_every_n_epoch=None,
                val_check_interval=self.steps // self.evaluations_for_steps,
            )
        else:
            epochs, fraction = self.epochs_and_fraction(train_documents)
            if self.evaluations is not None and self.evaluations != epochs:
                raise BudgetError(
                    f"--budget.evaluations {self.evaluations} with {epochs} epochs: an epochs budget evaluates once "
                    "per epoch; use --budget.steps for more evaluations."
                )
            trainer_config.update(max_epochs=epochs, max_steps=-1, check_val_every_n_epoch=1, val_check_interval=None)
        trainer_config["limit_train_batches"] = None
        log.info("Budget %s replaces the trainer's %s.", self.describe(), replaced or "defaults")
        return fraction
