"""Sweep command: the paper's grid on one dataset, one run after another, then the report.

    python -m reports.sweep --dataset r8 --seeds [1,2,3] --out runs/sweep

Runs that already finished (``results.json`` with status ``complete``) are skipped, so an
interrupted sweep picks up where it stopped.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from jsonargparse import CLI
from tqdm.auto import tqdm

from reports.report import report
from reports.runs import is_finished, run_fit
from scaffold.budget import Budget

PAPER_GRID = ["BERT-512", "TopicBERT-512", "TopicBERT-256", "TopicBERT-128", "TopicBERT-64"]


@dataclass(frozen=True)
class Run:
    dataset: str
    model: str
    seed: int
    max_length: int

    @property
    def num_partitions(self) -> int:
        x = int(self.model.rsplit("-", 1)[1])
        if self.max_length % x:
            raise ValueError(f"{self.model}: {x} does not divide max_length {self.max_length}.")
        return self.max_length // x

    @property
    def topic_model(self) -> bool:
        return not self.model.startswith("BERT-")

    @property
    def dataset_key(self) -> str:
        """A folder name for the dataset: its name, or the last part of its path."""
        return Path(self.dataset).name

    def folder(self, out: Path) -> Path:
        return out / self.dataset_key / self.model / f"seed{self.seed}"

    def arguments(self) -> list[str]:
        """``cli.py fit`` arguments of this run (its folder aside)."""
        return [
            "--data.dataset",
            self.dataset,
            "--data.max_length",
            str(self.max_length),
            "--data.num_partitions",
            str(self.num_partitions),
            "--model.init_args.use_topic_model",
            str(self.topic_model).lower(),
            "--seed_everything",
            str(self.seed),
            "--wandb.group",
            f"sweep-{self.dataset_key}",
        ]


def sweep(
    dataset: str = "r8",
    models: list[str] = PAPER_GRID,
    seeds: list[int] = [1, 2, 3],  # noqa: B006
    config: str = "configs/topicbert.yaml",
    max_length: int = 512,
    overrides: list[str] = [],  # noqa: B006
    out: str = "runs/sweep",
    baseline: str | None = None,
    budget: Budget | None = None,
) -> int:
    """Run every (model, seed) of the grid with ``cli.py fit``, skipping finished runs, then report.

    Args:
        dataset: dataset name or folder, as for ``--data.dataset``.
        models: ``BERT-<x>`` (topic model off) or ``TopicBERT-<x>`` with x = max_length / p.
        seeds: values of ``seed_everything``, one run per model and seed.
        config: the base config every run starts from.
        max_length: N.
        overrides: extra ``cli.py fit`` arguments for every run (e.g. ``--trainer.max_epochs=1``).
        out: sweep folder; runs land in ``<out>/<dataset>/<model>/seed<k>/``.
        baseline: the model retention is measured against in the report (default ``BERT-<max_length>``).
        budget: one training budget for every run (``--budget.epochs 0.3`` is one pass over 30% of the
            documents; see ``scaffold.budget``); default: the config's epochs.

    Returns the number of failed runs (the process exit status).
    """
    for model in models:
        if not re.fullmatch(r"(Topic)?BERT-\d+", model):
            raise SystemExit(f"error: unknown model {model!r}; use BERT-<x> or TopicBERT-<x>.")
    out_dir = Path(out)
    budget_args = budget.arguments() if budget else []
    grid = [Run(dataset, model, seed, max_length) for model in models for seed in seeds]
    failed = []
    progress = tqdm(grid, desc="sweep", unit="run")
    for run in progress:
        folder = run.folder(out_dir)
        progress.set_postfix_str(f"{run.model} seed {run.seed}")
        if is_finished(folder):
            progress.write(f"skip  {run.model} seed {run.seed}: already finished")
            continue
        code, minutes = run_fit(folder, [config], [*run.arguments(), *budget_args, *overrides])
        if code == 0 and is_finished(folder):
            f1 = json.loads((folder / "results.json").read_text())["test_macro_f1"]
            progress.write(f"done  {run.model} seed {run.seed}: test macro-F1 {f1:.4f} in {minutes:.1f} min")
        else:
            failed.append(run)
            progress.write(f"FAIL  {run.model} seed {run.seed} (exit {code}); see {folder}.log")
    if any(is_finished(run.folder(out_dir)) for run in grid):
        folder = out_dir / grid[0].dataset_key
        report([str(folder)], baseline=baseline or f"BERT-{max_length}", out=str(folder / "report"))
    return len(failed)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(CLI(sweep))
