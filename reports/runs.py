"""Running ``cli.py fit`` one run after another for the comparison commands, resumably.

A run is one folder (``--run.root/--run.name/--run.version``); one whose ``results.json`` already has
the wanted status is skipped, so an interrupted study picks up where it stopped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def results_files(root: Path) -> list[Path]:
    """Every run's ``results.json`` under ``root``, but not the copy W&B keeps in its own run folder
    (``wandb/<run>/files/``), which is the same run again."""
    return sorted(f for f in root.rglob("results.json") if "wandb" not in f.relative_to(root).parts)


def read_results(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "results.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def is_finished(folder: Path, statuses: tuple[str, ...] = ("complete",)) -> bool:
    results = read_results(folder)
    return results is not None and results.get("status") in statuses


def location_arguments(folder: Path) -> list[str]:
    """``cli.py`` arguments that put a run's files exactly in ``folder``."""
    return ["--run.root", str(folder.parent.parent), "--run.name", folder.parent.name, "--run.version", folder.name]


def config_path(config: str) -> Path:
    """A config given relative to the working folder, else to the project."""
    return Path(config) if Path(config).exists() else ROOT / config


def set_aside(folder: Path) -> bool:
    """Make way for a fit into ``folder``; True when a stopped attempt there can be resumed.

    An attempt that saved a ``last.ckpt`` is kept aside as ``<folder>.stopped-<n>`` (its log-like
    files: metrics, CodeCarbon's appended emissions), and its checkpoints go back into
    ``folder/checkpoints``: the restored checkpoint callback names its best and last files by their
    path there, and the run's best may be one of them. ``cli.py fit --ckpt_path last`` resumes them
    only if it is the same job (its configuration fingerprint); every other file in ``folder`` is the
    resumed fit's own. An attempt without a ``last.ckpt`` is cleared."""
    checkpoints = folder / "checkpoints"
    if not (checkpoints / "last.ckpt").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        return False
    n = 1
    while folder.with_name(f"{folder.name}.stopped-{n}").exists():
        n += 1
    kept = folder.rename(folder.with_name(f"{folder.name}.stopped-{n}"))
    checkpoints.mkdir(parents=True)
    for saved in (kept / "checkpoints").glob("*.ckpt"):
        saved.rename(checkpoints / saved.name)
    return True


def run_fit(folder: Path, configs: list[str], arguments: list[str]) -> tuple[int, float]:
    """``cli.py fit`` into ``folder`` with its output in ``<folder>.log``: (exit status, minutes).

    A stopped attempt is resumed from its ``last.ckpt`` (``set_aside``), its log appended to, so a
    long run can span sessions; its time and energy totals carry over, and ``results.json`` lists
    each part's measured machine speed (``machine_fp32_tflops_segments``)."""
    resume = set_aside(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(ROOT / "cli.py"), "fit"]
    for config in configs:
        command += ["--config", str(config_path(config))]
    command += [*location_arguments(folder), "--trainer.enable_progress_bar", "false", *arguments]
    command += ["--ckpt_path", "last"] if resume else []
    start = time.perf_counter()
    with folder.with_name(f"{folder.name}.log").open("a" if resume else "w") as log_file:
        code = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT).returncode
    return code, (time.perf_counter() - start) / 60
