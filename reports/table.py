"""The paper's Table 3 from many runs' ``results.json``: F1 over seeds, retention, time and CO2.

Macro-F1 (mean ± std over seeds) is the paper's metric; micro-F1 (mean) sits beside it, the usual
figure for multi-label datasets such as Reuters-21578. Every row is compared with the baseline row
by a paired bootstrap over seeds and test documents (``reports.paired``), in macro- and in micro-F1
(the figure multi-label targets are stated in), and shows what its runs
consumed (budget, optimiser steps, documents seen, candidate checkpoints) and what reaching 99% of
their own best dev score cost (time-to-quality). Rows whose budget, dev split or cost set-up differ
are named in warnings under the table, grouped by what they share: only rows of one group are
one comparison."""

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

from reports.paired import paired_differences
from reports.runs import results_files
from utils.files import atomic_write
from utils.predictions import DocumentPredictions

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
    budget: str = "-"
    epochs: float = math.nan
    optimizer_steps: float = math.nan
    documents_seen: float = math.nan
    tokens_seen: float = math.nan
    candidate_checkpoints: float = math.nan
    time_to_quality_s: float = math.nan
    co2_to_quality_g: float = math.nan
    micro_f1_std: float = math.nan
    time_all_in_s: float = math.nan  # with a distilled student's teacher (reports.teacher_cost)
    co2_all_in_g: float = math.nan
    lr: str = "-"
    difference: float | None = None
    difference_low: float | None = None
    difference_high: float | None = None
    significant: bool | None = None
    retention_low: float | None = None
    retention_high: float | None = None
    micro_difference: float | None = None
    micro_difference_low: float | None = None
    micro_difference_high: float | None = None
    micro_significant: bool | None = None


def load_results(paths: Sequence[str | Path], complete_only: bool = True) -> list[dict]:
    """Every ``results.json`` under the given files or folders (finished runs only by default)."""
    found = []
    for path in map(Path, paths):
        files = [path] if path.is_file() else results_files(path)
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


def _std(values: list) -> float:
    """The spread over seeds as ``f1_std`` gives it (0 for one run), NaN where a run lacks the figure."""
    if not values or any(v is None for v in values):
        return float("nan")
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _shared(values: list) -> str:
    """The one value every run of a row has, ``mixed`` when they differ, ``-`` when none has it."""
    present = {json.dumps(v, sort_keys=True) if not isinstance(v, str) else v for v in values if v is not None}
    if not present:
        return "-"
    return present.pop() if len(present) == 1 else "mixed"


def multi_label_datasets(results: list[dict]) -> set[str]:
    """Datasets any of whose runs trained multi-label: their micro-F1 gets fronts of its own."""
    return {r["dataset"] for r in results if (r.get("hparams") or {}).get("multi_label")}


def group_runs(results: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Runs by (dataset, model), in the table's row order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for result in results:
        groups.setdefault((result["dataset"], result["model"]), []).append(result)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][0], model_order(kv[0][1]))))


def baseline_first(rows: list[ModelRow], baseline: str) -> list[ModelRow]:
    """The baseline row leads its dataset's rows, the others keep their order."""
    return sorted(rows, key=lambda r: (r.dataset, r.model != baseline))


def test_predictions(runs: list[dict]) -> list[tuple[int, DocumentPredictions]] | None:
    """Every run's per-document test decisions, or None when one of them has none (a run from before
    they were written, or a study kept without them)."""
    found = []
    for run in runs:
        name = run.get("test_predictions")
        path = Path(run["results_file"]).parent / name if name else None
        if path is None or not path.is_file():
            model, seed = run.get("model"), run.get("seed")
            log.warning("%s seed %s: no test predictions (%s), so no paired interval.", model, seed, path)
            return None
        found.append((int(run.get("seed", 0)), DocumentPredictions.load(path)))
    return found


def compare_to_baseline(row: ModelRow, runs: list[dict], baseline_runs: list[dict]) -> None:
    """Fill the row's paired macro- and micro-F1 differences and the retention interval (left empty
    without predictions)."""
    arm, base = test_predictions(runs), test_predictions(baseline_runs)
    if arm is None or base is None:
        return
    try:
        both = paired_differences(arm, base)
    except ValueError as err:
        log.warning("%s / %s: no paired interval (%s).", row.dataset, row.model, err)
        return
    comparison, micro = both["macro_f1"], both["micro_f1"]
    row.difference, row.retention = comparison.difference, comparison.retention  # both on the paired seeds
    row.difference_low, row.difference_high = comparison.interval
    row.significant = comparison.significant
    row.retention_low, row.retention_high = comparison.retention_interval
    row.micro_difference = micro.difference
    row.micro_difference_low, row.micro_difference_high = micro.interval
    row.micro_significant = micro.significant


def summarize(results: list[dict], baseline: str = "BERT-512") -> list[ModelRow]:
    """Rows of Table 3 per (dataset, model); retention is F1 relative to ``baseline`` on that dataset,
    and the paired difference to it comes with a 95% interval where the runs saved their decisions."""
    groups = group_runs(results)
    rows = []
    for (dataset, model), runs in groups.items():
        f1 = [r["test_macro_f1"] for r in runs]
        rows.append(
            ModelRow(
                dataset,
                model,
                len(runs),
                statistics.fmean(f1),
                _std(f1),
                None,
                _mean([r.get("time_epoch_mean_s") for r in runs]),
                _mean([r.get("time_total_s") for r in runs]),
                _mean([r.get("co2_measured_g") for r in runs]),
                _mean([r.get("co2_paper_eq_g") for r in runs]),
                _mean([r.get("energy_kwh") for r in runs]),
                _mean([r.get("test_micro_f1") for r in runs]),
                budget=_shared([r.get("budget") for r in runs]),
                micro_f1_std=_std([r.get("test_micro_f1") for r in runs]),
                epochs=_mean([r.get("epochs") for r in runs]),
                optimizer_steps=_mean([r.get("optimizer_steps") for r in runs]),
                documents_seen=_mean([r.get("documents_seen") for r in runs]),
                tokens_seen=_mean([r.get("tokens_seen") or None for r in runs]),  # 0: a model without tokens
                candidate_checkpoints=_mean([r.get("candidate_checkpoints") for r in runs]),
                time_to_quality_s=_mean([r.get("time_to_quality_s") for r in runs]),
                co2_to_quality_g=_mean([r.get("co2_to_quality_g") for r in runs]),
                time_all_in_s=_mean([r.get("time_all_in_s") for r in runs]),
                co2_all_in_g=_mean([r.get("co2_all_in_g") for r in runs]),
                lr=_shared([(r.get("hparams") or {}).get("lr", r.get("C")) for r in runs]),
            )
        )
    base = {row.dataset: row.f1_mean for row in rows if row.model == baseline}
    for row in rows:
        if row.dataset in base and base[row.dataset] > 0:
            row.retention = row.f1_mean / base[row.dataset]
            if row.model != baseline:
                compare_to_baseline(row, groups[(row.dataset, row.model)], groups[(row.dataset, baseline)])
    return baseline_first(rows, baseline)


COMPARED = {
    "budget": "training budget",
    "dev_fingerprint": "dev split",
    "cost_setup": "cost set-up (energy source, grid, PUE, hardware)",
}


def comparability_warnings(results: list[dict]) -> list[str]:
    """One line per dataset and property in which the compared rows (or seeds of one row) differ.

    Rows that do not record a property (a closed-form baseline has no training budget) are left
    out of that property's check."""
    warnings = []
    for dataset in sorted({r["dataset"] for r in results}):
        groups = {model: runs for (d, model), runs in group_runs(results).items() if d == dataset}
        for key, what in COMPARED.items():
            values = {model: _shared([_rounded(r.get(key)) for r in runs]) for model, runs in groups.items()}
            values = {model: v for model, v in values.items() if v != "-"}
            if len(set(values.values())) > 1:
                by_value = {v: [m for m, mv in values.items() if mv == v] for v in sorted(set(values.values()))}
                listed = "; ".join(f"{_short(v)}: {', '.join(models)}" for v, models in by_value.items())
                warnings.append(
                    f"{dataset}: rows differ in {what}; only rows of one {what} are one comparison ({listed})."
                )
        warnings += machine_speed_warning(dataset, groups) + hardware_warning(dataset, groups)
        warnings += machine_warning(dataset, groups)
    return warnings


def _rounded(value):
    """A recorded setting with its floats at 3 significant digits: two hosts of one kind report their
    memory as 23.5402 and 23.5401 GB, which is one cost set-up, not two."""
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return float(f"{value:.3g}") if isinstance(value, float) else value


# fastest over slowest measured machine beyond which times are not one comparison: one host read
# 0.149 to 0.195 TFLOP/s (1.31x) over one session while its runs' times varied 1.15x; hosts that
# really differed read 1.5x to 6x apart
MACHINE_SPREAD = 1.5


def machine_readings(result: dict) -> list[float]:
    """The machine speeds a run was timed at: one per part of a resumed run (older runs: the one)."""
    single = [result["machine_fp32_tflops"]] if result.get("machine_fp32_tflops") else []
    return [v for v in result.get("machine_fp32_tflops_segments") or single if v]


def machine_speed_warning(dataset: str, groups: dict[str, list[dict]]) -> list[str]:
    """A line when the runs (any row, any seed) were timed on machines whose measured fp32 matmul
    rates differ by more than ``MACHINE_SPREAD``: one hardware name can hide hosts of different speed.
    A run resumed on another host counts each part's reading."""
    speeds = {m: [v for r in runs for v in machine_readings(r)] for m, runs in groups.items()}
    speeds = {m: v for m, v in speeds.items() if v}
    every = [v for values in speeds.values() for v in values]
    if not every or max(every) <= MACHINE_SPREAD * min(every):
        return []
    listed = "; ".join(f"{m}: {1000 * min(v):.0f}-{1000 * max(v):.0f} GFLOP/s" for m, v in speeds.items())
    return [
        f"{dataset}: runs were timed on machines {max(every) / min(every):.2f}x apart in measured fp32 matmul "
        f"speed, so their times, energy and CO2 are not one comparison ({listed})."
    ]


def hardware_warning(dataset: str, groups: dict[str, list[dict]]) -> list[str]:
    """A line when the runs (any row, any seed) name more than one processor: the fp32 probe reads
    only large matrix products, and hosts it rates alike can differ several-fold on other work (an
    LSTM's small sequential steps ran 3x slower on one 2-core host than on another of equal reading)."""
    names = {m: sorted({r["hardware"] for r in runs if r.get("hardware")}) for m, runs in groups.items()}
    names = {m: v for m, v in names.items() if v}
    if len({name for values in names.values() for name in values}) <= 1:
        return []
    listed = "; ".join(f"{m}: {' + '.join(v)}" for m, v in names.items())
    return [
        f"{dataset}: runs were timed on different processors, so their times, energy and CO2 are not one "
        f"comparison ({listed})."
    ]


def machine_warning(dataset: str, groups: dict[str, list[dict]]) -> list[str]:
    """A line when the runs were timed on more than one machine (``machine_ids``, one per part of a
    resumed run): the only check that holds, since hosts of one processor and one probe reading have
    timed the same job 1.55x apart. Runs from before the ids were recorded are left out."""
    ids = {m: sorted({i for r in runs for i in r.get("machine_ids") or []}) for m, runs in groups.items()}
    ids = {m: v for m, v in ids.items() if v}
    every = {i for values in ids.values() for i in values}
    if len(every) <= 1:
        return []
    listed = "; ".join(f"{m}: {', '.join(v)}" for m, v in ids.items())
    return [
        f"{dataset}: runs were timed on {len(every)} machines, so their times, energy and CO2 compare only "
        f"between runs of one machine ({listed})."
    ]


def _short(value: str) -> str:
    return value if len(value) <= 60 else value[:57] + "..."


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


def _with_std(mean: float, std: float) -> str:
    """``0.974 ± 0.003``, the mean alone where the spread is unknown, "-" where neither is."""
    return _cell(mean, ".3f") + ("" if math.isnan(std) or math.isnan(mean) else f" ± {std:.3f}")


def _difference(difference: float | None, low: float | None, high: float | None, significant: bool | None) -> str:
    """``+0.012 [-0.003, +0.027]``, starred where the interval excludes 0."""
    if difference is None or low is None or high is None:
        return "-"
    star = " *" if significant else ""
    return f"{difference:+.3f} [{low:+.3f}, {high:+.3f}]{star}"


def _retention(r: ModelRow) -> str:
    if r.retention is None:
        return "-"
    interval = (
        f" [{100 * r.retention_low:.1f}, {100 * r.retention_high:.1f}]"
        if r.retention_low is not None and r.retention_high is not None
        else ""
    )
    return f"{100 * r.retention:.2f}%{interval}"


def to_markdown(rows: list[ModelRow], warnings: Sequence[str] = (), notes: Sequence[str] = ()) -> str:
    """The table, its legend and ``notes`` (what its columns count), then ``warnings``."""
    head = (
        "| dataset | model | seeds | lr / C | budget | epochs | steps | docs seen | real tokens seen | candidates | "
        "macro-F1 | micro-F1 | "
        "Δ macro-F1 [95% CI] | Δ micro-F1 [95% CI] | Rtn [95% CI] | "
        "T_epoch (s) | T (s) | T to 99% (s) | CO2 (g) | CO2 to 99% (g) | "
        "CO2 paper eq. (g) | energy (kWh) | T all-in (s) | CO2 all-in (g) |"
    )
    lines = [head, "|" + "---|" * 24]
    for r in rows:
        macro = _difference(r.difference, r.difference_low, r.difference_high, r.significant)
        micro = _difference(r.micro_difference, r.micro_difference_low, r.micro_difference_high, r.micro_significant)
        lines.append(
            f"| {r.dataset} | {r.model} | {r.seeds} | {r.lr} | {r.budget} | {_cell(r.epochs, '.3g')} | "
            f"{_cell(r.optimizer_steps, '.0f')} | {_cell(r.documents_seen, '.0f')} | {_cell(r.tokens_seen, '.4g')} | "
            f"{_cell(r.candidate_checkpoints, '.0f')} | "
            f"{r.f1_mean:.3f} ± {r.f1_std:.3f} | {_with_std(r.micro_f1_mean, r.micro_f1_std)} | "
            f"{macro} | {micro} | {_retention(r)} | {_cell(r.time_epoch_s, '.4g')} | {_cell(r.time_total_s, '.4g')} | "
            f"{_cell(r.time_to_quality_s, '.4g')} | {_cell(r.co2_measured_g, '.3g')} | "
            f"{_cell(r.co2_to_quality_g, '.3g')} | {_cell(r.co2_paper_eq_g, '.3g')} | {_cell(r.energy_kwh, '.3g')} | "
            f"{_cell(r.time_all_in_s, '.4g')} | {_cell(r.co2_all_in_g, '.3g')} |"
        )
    legend = [
        "",
        "Δ: paired difference to the baseline row (bootstrap over seeds and test documents, 95%); "
        "* marks an interval that excludes 0. T / CO2 to 99%: until dev macro-F1 first reached 99% of "
        "the run's own best.",
        *notes,
    ]
    legend += [f"> **Warning:** {w}" for w in warnings]
    return "\n".join(lines + legend) + "\n"


def write_table(
    rows: list[ModelRow], folder: Path, warnings: Sequence[str] = (), notes: Sequence[str] = ()
) -> tuple[Path, Path]:
    """``table3.md`` and ``table3.csv`` in ``folder``, written atomically."""
    markdown, table = folder / "table3.md", folder / "table3.csv"
    with atomic_write(markdown) as f:
        f.write(to_markdown(rows, warnings, notes))
    with atomic_write(table) as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    return markdown, table
