"""Comparison command: arms at one budget, each arm's learning rate chosen on dev, then seeds, then the report.

    python -m reports.compare '[{name: LogReg, configs: [configs/students/logreg.yaml]},
        {name: KD-LogReg, configs: [configs/students/logreg.yaml, configs/distill/student.yaml]}]' \\
        --budget.steps 1560 --budget.evaluations 10 --lr_grid '[0.01,0.02,0.05,0.1,0.2]' \\
        --seeds '[1,2,3]' --baseline LogReg --out runs/compare/r8-logreg-kd

1. Search: every arm fits once per learning rate of the grid with ``search_seed``, without a test
   pass (``--test_after_fit false``); the rate with the best dev macro-F1 is the arm's choice
   (``<out>/search/<arm>/choice.json``).
2. Runs: every arm fits once per seed at its chosen rate (``<out>/runs/<arm>/lr<rate>/seed<k>``),
   then tests its best-by-dev checkpoint once. A wider grid that moves the choice adds runs at the
   new rate; the earlier ones are kept but no longer reported.
3. Report: ``<out>/report`` with mean ± std, paired differences to the baseline arm and their
   intervals, the budget columns, and warnings where rows differ in budget, dev split or cost set-up.

Every run has the same budget (``--budget``), so arms whose epochs differ in size (a distillation
transfer set is the training split and its augmented copies) still take the same optimiser steps
and offer the same number of candidate checkpoints. Finished runs are skipped, so an interrupted
comparison resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from jsonargparse import CLI
from tqdm.auto import tqdm

from reports.report import report
from reports.runs import is_finished, read_results, run_fit
from scaffold.budget import Budget
from utils.files import atomic_write

log = logging.getLogger(__name__)


@dataclass
class Arm:
    """One arm of a comparison.

    Args:
        name: the arm's folder name (the table shows the run label, e.g. ``KD-LogReg``).
        configs: ``cli.py fit --config`` files, in order.
        overrides: extra ``cli.py fit`` arguments of this arm.
        lr: a fixed learning rate instead of a dev search (say in your report which dev runs chose it).
    """

    name: str
    configs: list[str]
    overrides: list[str] = field(default_factory=list)
    lr: float | None = None


def lr_folder(out: Path, arm: Arm, lr: float) -> Path:
    return out / "search" / arm.name / f"lr{lr:g}"


def choose_lr(out: Path, arm: Arm, grid: list[float], common: list[str], search_seed: int) -> float | None:
    """Fit the arm once per rate without testing; the rate with the best dev macro-F1 (None: a run failed)."""
    dev = {}
    for lr in tqdm(grid, desc=f"dev search {arm.name}", unit="run", leave=False):
        folder = lr_folder(out, arm, lr)
        if not is_finished(folder, ("fit", "complete")):
            arguments = [*common, "--model.init_args.lr", f"{lr:g}", "--seed_everything", str(search_seed)]
            code, _ = run_fit(folder, arm.configs, [*arguments, "--test_after_fit", "false", *arm.overrides])
            if code != 0:
                tqdm.write(f"FAIL  {arm.name} lr {lr:g} (exit {code}); see {folder}.log")
                return None
        results = read_results(folder) or {}
        dev[lr] = results.get("best_val_macro_f1")
        tqdm.write(f"dev   {arm.name} lr {lr:g}: best dev macro-F1 {dev[lr]}")
    scored = {lr: f1 for lr, f1 in dev.items() if f1 is not None}
    if not scored:
        return None
    chosen = max(scored, key=lambda lr: (scored[lr], -lr))  # ties: the smaller rate
    if len(grid) > 1 and chosen in (min(grid), max(grid)):
        log.warning("%s: the dev choice lr %g is at the edge of the grid; extend --lr_grid past it.", arm.name, chosen)
    with atomic_write(out / "search" / arm.name / "choice.json") as f:
        json.dump({"arm": arm.name, "search_seed": search_seed, "dev_macro_f1": dev, "chosen_lr": chosen}, f, indent=2)
    return chosen


def compare(
    arms: list[Arm],
    budget: Budget,
    seeds: list[int] = [1, 2, 3],  # noqa: B006 (a literal default shows in --help)
    lr_grid: list[float] = [],  # noqa: B006
    search_seed: int = 0,
    overrides: list[str] = [],  # noqa: B006
    baseline: str | None = None,
    out: str = "runs/compare",
) -> int:
    """Search each arm's learning rate on dev, run every arm per seed at one budget, then report.

    Args:
        arms: the arms (see ``Arm``).
        budget: the training budget of every run, search included (see ``scaffold.budget``).
        seeds: ``seed_everything`` of the runs that are scored (at least 3 for a claim).
        lr_grid: learning rates searched on dev per arm; empty: each arm's ``lr`` or its config's rate.
        search_seed: the seed of the dev search runs.
        overrides: extra ``cli.py fit`` arguments for every run.
        baseline: the run label (table row) that differences and retention are measured against;
            default the first arm's.
        out: comparison folder.

    Returns the number of failed runs (the process exit status).
    """
    if len(seeds) < 3:
        log.warning("%d seed(s) per arm: a smoke test, not a result (use at least 3 for a claim).", len(seeds))
    out_dir = Path(out)
    common = [*budget.arguments(), *overrides]
    failed = 0
    reported: list[Path] = []  # each arm's runs at its chosen rate (runs at a rate chosen before are kept)
    for arm in arms:
        lr = arm.lr
        if lr is None and lr_grid:
            lr = choose_lr(out_dir, arm, lr_grid, common, search_seed)
            if lr is None:
                failed += 1
                continue
        rate = ["--model.init_args.lr", f"{lr:g}"] if lr is not None else []
        arm_folder = out_dir / "runs" / arm.name / (f"lr{lr:g}" if lr is not None else "config-lr")
        reported.append(arm_folder)
        for seed in tqdm(seeds, desc=f"runs {arm.name}", unit="run", leave=False):
            folder = arm_folder / f"seed{seed}"
            if is_finished(folder):
                tqdm.write(f"skip  {arm.name} seed {seed}: already finished")
                continue
            arguments = [*common, *rate, "--seed_everything", str(seed), *arm.overrides]
            code, minutes = run_fit(folder, arm.configs, arguments)
            results = read_results(folder) if code == 0 else None
            if results is None or results.get("status") != "complete":
                failed += 1
                tqdm.write(f"FAIL  {arm.name} seed {seed} (exit {code}); see {folder}.log")
                continue
            tqdm.write(
                f"done  {arm.name} seed {seed} (lr {lr}): best dev macro-F1 {results['best_val_macro_f1']:.4f} "
                f"in {minutes:.1f} min"
            )
    finished = [read_results(p.parent) or {} for folder in reported for p in sorted(folder.glob("*/results.json"))]
    if any(r.get("status") == "complete" for r in finished):
        label = baseline or next((r["model"] for r in finished if "model" in r), "")
        report([str(f) for f in reported if f.is_dir()], baseline=label, out=str(out_dir / "report"))
    return failed


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(CLI(compare))
