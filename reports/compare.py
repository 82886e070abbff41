"""Comparison command: arms at one budget, each arm's learning rate chosen on dev, then seeds, then the report.

    python -m reports.compare '[{name: LogReg, configs: [configs/students/logreg.yaml]},
        {name: KD-LogReg, configs: [configs/students/logreg.yaml, configs/distill/student.yaml]}]' \\
        --budget.steps 1560 --budget.evaluations 10 --search '{lr: [0.01, 0.02, 0.05, 0.1, 0.2]}' \\
        --seeds '[1,2,3]' --baseline LogReg --out runs/compare/r8-logreg-kd

1. Search: every arm fits once per setting of the grid (learning rate, lambda, T, hidden size, any
   ``cli.py fit`` key) with ``search_seed``, without a test pass (``--test_after_fit false``); the
   setting with the best dev macro-F1 is the arm's choice (``<out>/search/<arm>/choice.json``).
2. Runs: every arm fits once per seed at its chosen setting (``<out>/runs/<arm>/<setting>/seed<k>``,
   e.g. ``lr0.1``), then tests its best-by-dev checkpoint once; seed 1 of every arm comes first, so
   the arms' scored runs are timed side by side. A wider grid that moves the choice
   adds runs at the new setting; the earlier ones are kept but no longer reported.
3. Report: ``<out>/report`` with mean ± std, paired differences to the baseline arm and their
   intervals, the budget columns, and warnings where rows differ in budget, dev split or cost set-up.

Every run has the same budget (``--budget``), so arms whose epochs differ in size (a distillation
transfer set is the training split and its augmented copies) still take the same optimiser steps
and offer the same number of candidate checkpoints. Finished runs are skipped, so an interrupted
comparison resumes where it stopped.
"""

from __future__ import annotations

import itertools
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


Setting = dict[str, float | int | str]  # CLI key -> value, e.g. {"model.init_args.lr": 0.1}


@dataclass
class Arm:
    """One arm of a comparison.

    Args:
        name: the arm's folder name (the table shows the run label, e.g. ``KD-LogReg``).
        configs: ``cli.py fit --config`` files, in order.
        overrides: extra ``cli.py fit`` arguments of this arm.
        fixed: settings used instead of a dev search, e.g. ``{lr: 0.1}`` (say which dev runs chose them).
    """

    name: str
    configs: list[str]
    overrides: list[str] = field(default_factory=list)
    fixed: Setting = field(default_factory=dict)


def cli_key(key: str) -> str:
    """``lr`` is short for ``model.init_args.lr``; a dotted key is a ``cli.py fit`` argument as it is."""
    return key if "." in key else f"model.init_args.{key}"


def settings_name(setting: Setting) -> str:
    """A folder name for a setting: ``lr0.1``, ``kd_weight4_lr0.1``; ``config`` for none."""
    parts = [
        f"{key.rsplit('.', 1)[-1]}{value:g}" if isinstance(value, float | int) else f"{key}{value}"
        for key, value in sorted(setting.items())
    ]
    return "_".join(parts) or "config"


def arguments_of(setting: Setting) -> list[str]:
    return [arg for key, value in sorted(setting.items()) for arg in (f"--{cli_key(key)}", str(value))]


def grid_settings(search: dict[str, list]) -> list[Setting]:
    """Every combination of the searched values."""
    keys = sorted(search)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(search[k] for k in keys))]


def warn_at_edges(arm: Arm, chosen: Setting, search: dict[str, list]) -> None:
    for key, values in search.items():
        numbers = [v for v in values if isinstance(v, int | float)]
        if len(numbers) > 1 and chosen[key] in (min(numbers), max(numbers)):
            log.warning(
                "%s: the dev choice %s = %s is at the edge of its grid; extend it past that.",
                arm.name,
                key,
                chosen[key],
            )


def choose_on_dev(out: Path, arm: Arm, search: dict[str, list], common: list[str], search_seed: int) -> Setting | None:
    """Fit the arm once per setting without testing; the setting with the best dev macro-F1 (None:
    a run failed). Ties go to the first in grid order (smallest values first)."""
    dev: dict[str, float | None] = {}
    settings = grid_settings(search)
    for setting in tqdm(settings, desc=f"dev search {arm.name}", unit="run", leave=False):
        name = settings_name(setting)
        folder = out / "search" / arm.name / name
        if not is_finished(folder, ("fit", "complete")):
            arguments = [*common, *arguments_of(setting), "--seed_everything", str(search_seed)]
            code, _ = run_fit(folder, arm.configs, [*arguments, "--test_after_fit", "false", *arm.overrides])
            if code != 0:
                tqdm.write(f"FAIL  {arm.name} {name} (exit {code}); see {folder}.log")
                return None
        dev[name] = (read_results(folder) or {}).get("best_val_macro_f1")
        tqdm.write(f"dev   {arm.name} {name}: best dev macro-F1 {dev[name]}")
    scored = [(dev[settings_name(s)], -i, s) for i, s in enumerate(settings) if dev[settings_name(s)] is not None]
    if not scored:
        return None
    chosen = max(scored, key=lambda t: t[:2])[2]
    warn_at_edges(arm, chosen, search)
    with atomic_write(out / "search" / arm.name / "choice.json") as f:
        json.dump(
            {"arm": arm.name, "search_seed": search_seed, "search": search, "dev_macro_f1": dev, "chosen": chosen},
            f,
            indent=2,
        )
    return chosen


def compare(
    arms: list[Arm],
    budget: Budget,
    seeds: list[int] = [1, 2, 3],  # noqa: B006 (a literal default shows in --help)
    search: dict[str, list[float | int | str]] = {},  # noqa: B006
    search_seed: int = 0,
    overrides: list[str] = [],  # noqa: B006
    baseline: str | None = None,
    out: str = "runs/compare",
) -> int:
    """Choose each arm's settings on dev, run every arm per seed at one budget, then report.

    Args:
        arms: the arms (see ``Arm``).
        budget: the training budget of every run, search included (see ``scaffold.budget``).
        seeds: ``seed_everything`` of the runs that are scored (at least 3 for a claim).
        search: values searched on dev per arm, every combination: ``{lr: [0.01, 0.1], kd_weight:
            [1, 4], temperature: [1, 2]}`` (a key without a dot is the model's ``init_args``; any
            ``cli.py fit`` key works, e.g. ``model.init_args.hidden_size``). Empty: each arm's
            ``fixed`` settings, else its config's.
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
    chosen: dict[str, tuple[Arm, Setting]] = {}
    for arm in arms:
        setting: Setting | None = dict(arm.fixed)
        if not arm.fixed and search:
            setting = choose_on_dev(out_dir, arm, search, common, search_seed)
        if setting is None:
            failed += 1
        else:
            chosen[arm.name] = (arm, setting)
    # seed by seed across the arms, so the scored runs of every arm are timed side by side (and an
    # interrupted study has as many seeds of each)
    scored = [(seed, arm, setting) for seed in seeds for arm, setting in chosen.values()]
    for seed, arm, setting in tqdm(scored, desc="runs", unit="run", leave=False):
        folder = out_dir / "runs" / arm.name / settings_name(setting) / f"seed{seed}"
        if is_finished(folder):
            tqdm.write(f"skip  {arm.name} seed {seed}: already finished")
            continue
        arguments = [*common, *arguments_of(setting), "--seed_everything", str(seed), *arm.overrides]
        code, minutes = run_fit(folder, arm.configs, arguments)
        results = read_results(folder) if code == 0 else None
        if results is None or results.get("status") != "complete":
            failed += 1
            tqdm.write(f"FAIL  {arm.name} seed {seed} (exit {code}); see {folder}.log")
            continue
        tqdm.write(
            f"done  {arm.name} seed {seed} ({settings_name(setting)}): best dev macro-F1 "
            f"{results['best_val_macro_f1']:.4f} in {minutes:.1f} min"
        )
    # each arm's runs at its chosen setting (runs at a setting chosen before are kept, not reported)
    reported = [out_dir / "runs" / arm.name / settings_name(setting) for arm, setting in chosen.values()]
    finished = [read_results(p.parent) or {} for folder in reported for p in sorted(folder.glob("*/results.json"))]
    if any(r.get("status") == "complete" for r in finished):
        label = baseline or next((r["model"] for r in finished if "model" in r), "")
        report([str(f) for f in reported if f.is_dir()], baseline=label, out=str(out_dir / "report"))
    return failed


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(CLI(compare))
