"""The paper's Table 3 from many runs' ``results.json``: F1 over seeds, retention, time and CO2.

Macro-F1 (mean ± std over seeds) is the paper's metric; micro-F1 (mean) sits beside it, the usual
figure for multi-label datasets such as Reuters-21578."""

from __future__ import annotations

import csv
import json
import logging
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from utils.files import atomic_write

log = logging.getLogger(__name__)


@dataclass
class ModelRow:
    """One model on one dataset, averaged over its seeds."""

    dataset: str
    model: str
    seeds: int
    f1_mean: float
    f1_std: float
    retention: float | None
    time_epoch_s: float
    time_total_s: float
    co2_measured_g: float
    co2_paper_eq_g: float
    energy_kwh: float
    micro_f1_mean: float


def load_results(paths: Sequence[str | Path], complete_only: bool = True) -> list[dict]:
    """Every ``results.json`` under the given files or folders (finished runs only by default)."""
    found = []
    for path in map(Path, paths):
        files = [path] if path.is_file() else sorted(path.rglob("results.json"))
        for file in files:
            try:
                result = json.loads(file.read_text())
            except (OSError, json.JSONDecodeError) as err:
                log.warning("Skipping unreadable %s (%s).", file, err)
                continue
            if not complete_only or result.get("status") == "complete":
                found.append(result | {"results_file": str(file)})
    return found


def model_order(name: str) -> tuple:
    """BERT before TopicBERT, then by partition length, longest first (the paper's row order)."""
    match = re.fullmatch(r"(.*?)-(\d+)", name)
    family, x = (match.group(1), int(match.group(2))) if match else (name, 0)
    return (family != "BERT", family, -x)


def _mean(values: list) -> float:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else float("nan")


def summarize(results: list[dict], baseline: str = "BERT-512") -> list[ModelRow]:
    """Rows of Table 3 per (dataset, model); retention is F1 relative to ``baseline`` on that dataset."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for result in results:
        groups.setdefault((result["dataset"], result["model"]), []).append(result)
    rows = []
    for (dataset, model), runs in sorted(groups.items(), key=lambda kv: (kv[0][0], model_order(kv[0][1]))):
        f1 = [r["test_macro_f1"] for r in runs]
        rows.append(
            ModelRow(
                dataset,
                model,
                len(runs),
                statistics.fmean(f1),
                statistics.stdev(f1) if len(f1) > 1 else 0.0,
                None,
                _mean([r.get("time_epoch_mean_s") for r in runs]),
                _mean([r.get("time_total_s") for r in runs]),
                _mean([r.get("co2_measured_g") for r in runs]),
                _mean([r.get("co2_paper_eq_g") for r in runs]),
                _mean([r.get("energy_kwh") for r in runs]),
                _mean([r.get("test_micro_f1") for r in runs]),
            )
        )
    base = {row.dataset: row.f1_mean for row in rows if row.model == baseline}
    for row in rows:
        if row.dataset in base and base[row.dataset] > 0:
            row.retention = row.f1_mean / base[row.dataset]
    return rows


def pareto_front(costs: list[float], scores: list[float]) -> list[int]:
    """Indices of the points no other point beats: nothing cheaper-or-equal scores higher-or-equal
    with one of the two strictly better. Returned from cheapest to most expensive."""
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -scores[i]))
    front, best = [], float("-inf")
    for i in order:
        if scores[i] > best:
            front.append(i)
            best = scores[i]
    return front


def _cell(value: float, spec: str) -> str:
    """A figure, or "-" where the run did not measure it."""
    return "-" if math.isnan(value) else format(value, spec)


def to_markdown(rows: list[ModelRow]) -> str:
    head = (
        "| dataset | model | seeds | macro-F1 | micro-F1 | Rtn | T_epoch (s) | T (s) | CO2 measured (g) | "
        "CO2 paper eq. (g) | energy (kWh) |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        retention = f"{100 * r.retention:.2f}%" if r.retention is not None else "-"
        lines.append(
            f"| {r.dataset} | {r.model} | {r.seeds} | {r.f1_mean:.3f} ± {r.f1_std:.3f} | "
            f"{_cell(r.micro_f1_mean, '.3f')} | {retention} | "
            f"{_cell(r.time_epoch_s, '.4g')} | {_cell(r.time_total_s, '.4g')} | {_cell(r.co2_measured_g, '.3g')} | "
            f"{_cell(r.co2_paper_eq_g, '.3g')} | {_cell(r.energy_kwh, '.3g')} |"
        )
    return "\n".join(lines) + "\n"


def write_table(rows: list[ModelRow], folder: Path) -> tuple[Path, Path]:
    """``table3.md`` and ``table3.csv`` in ``folder``, written atomically."""
    markdown, table = folder / "table3.md", folder / "table3.csv"
    with atomic_write(markdown) as f:
        f.write(to_markdown(rows))
    with atomic_write(table) as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    return markdown, table
