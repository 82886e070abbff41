"""The checkpoint to carry forward from a study, chosen by dev macro-F1 alone.

A distillation teacher is picked from the grid it came from; picking by a test score would let the
test split leak into every student measured against it, so test figures are neither read nor shown.

    python -m reports.best_run runs/compare/r8-grid/runs --model 'TopicBERT-*' --out benchmarks/r8-grid/teacher.json
"""

from __future__ import annotations

import fnmatch
import json
import logging
import sys
from pathlib import Path

from jsonargparse import CLI

from reports.runs import read_results, results_files
from utils.files import atomic_write

log = logging.getLogger(__name__)


def candidates(root: Path, model: str) -> list[dict]:
    """Every finished run under ``root`` whose model label matches the pattern, best dev first."""
    found = []
    for path in results_files(root):
        results = read_results(path.parent)
        if (
            not results
            or results.get("status") != "complete"
            or not fnmatch.fnmatchcase(results.get("model", ""), model)
        ):
            continue
        found.append(
            {
                "model": results["model"],
                "seed": results.get("seed"),
                "best_val_macro_f1": results["best_val_macro_f1"],
                "best_checkpoint": results["best_checkpoint"],
                "run": str(path.parent),
            }
        )
    return sorted(found, key=lambda c: -c["best_val_macro_f1"])


def best_run(root: str, model: str = "*", out: str | None = None) -> str:
    """Print the best-by-dev checkpoint of the finished runs under ``root``.

    Args:
        root: a study's folder (searched recursively for ``results.json``).
        model: a shell pattern on the run's model label (``TopicBERT-*``).
        out: also write the choice and every candidate's dev score here (JSON).
    """
    found = candidates(Path(root), model)
    if not found:
        raise SystemExit(f"no finished run of a model matching {model!r} under {root}: finish the study first")
    for c in found:
        log.info("%-16s seed %s: best dev macro-F1 %.4f", c["model"], c["seed"], c["best_val_macro_f1"])
    chosen = found[0]
    if out:
        with atomic_write(Path(out)) as f:
            json.dump({"chosen_by": "best_val_macro_f1", "chosen": chosen, "candidates": found}, f, indent=2)
    print(chosen["best_checkpoint"])
    return chosen["best_checkpoint"]


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    CLI(best_run)
