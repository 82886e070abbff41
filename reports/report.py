"""Report command: Table 3 and the Pareto fronts from finished runs.

python -m reports.report runs/sweep --baseline BERT-512 --out runs/sweep/report
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, cast

from jsonargparse import CLI

from reports.plots import pareto_plot
from reports.table import (
    ModelRow,
    comparability_warnings,
    load_results,
    multi_label_datasets,
    summarize,
    to_markdown,
    write_table,
)
from reports.teacher_cost import teacher_cost, with_all_in_cost
from utils.wandb_mode import Mode, resolve_wandb_mode

log = logging.getLogger(__name__)
FIGURES = {
    "time": ("time_total_s", "fine-tuning time T (s)"),
    "co2": ("co2_measured_g", "CO2, measured (g)"),
    "ttq_time": ("time_to_quality_s", "time to 99% of best dev macro-F1 (s)"),
    "ttq_co2": ("co2_to_quality_g", "CO2 to 99% of best dev macro-F1 (g)"),
    # drawn only with --teacher_logits: a distilled student at its own cost plus its teacher's
    "all_in_time": ("time_all_in_s", "T all-in, teacher included for KD (s)"),
    "all_in_co2": ("co2_all_in_g", "CO2 all-in, teacher included for KD (g)"),
}


def log_to_wandb(
    rows: list[ModelRow], figures: list[Path], folder: Path, project: str, mode: Mode, micro: bool = False
) -> str:
    """The table, a scatter per cost (and per cost against micro-F1 when ``micro``) and the PNG
    figures as one W&B run (job type ``report``)."""
    import wandb

    resolved, reason = resolve_wandb_mode(mode)
    # one of these, or $WANDB_MODE's own value, which wandb checks itself
    wandb_mode = cast(Literal["online", "offline", "disabled"], resolved)
    run = wandb.init(
        project=project, job_type="report", mode=wandb_mode, dir=str(folder.resolve())
    )  # absolute: see AutoWandbLogger
    columns = [
        "dataset",
        "model",
        "seeds",
        "f1_mean",
        "f1_std",
        "retention",
        "time_epoch_s",
        "time_total_s",
        "co2_measured_g",
        "co2_paper_eq_g",
        "energy_kwh",
        "budget",
        "optimizer_steps",
        "documents_seen",
        "candidate_checkpoints",
        "time_to_quality_s",
        "co2_to_quality_g",
        "time_all_in_s",
        "co2_all_in_g",
        "difference",
        "difference_low",
        "difference_high",
        "micro_f1_mean",
        "micro_f1_std",
        "micro_difference",
        "micro_difference_low",
        "micro_difference_high",
    ]
    # wandb types the names as list[str | int]; a list of str is one (it only reads them)
    table = wandb.Table(columns=cast("list[str | int]", columns), data=[[getattr(r, c) for c in columns] for r in rows])
    logged: dict[str, object] = {"table3": table}
    for key, (cost, label) in FIGURES.items():
        logged[f"pareto_{key}"] = wandb.plot.scatter(table, cost, "f1_mean", title=f"macro-F1 vs {label}")
        if micro:
            logged[f"pareto_micro_{key}"] = wandb.plot.scatter(
                table, cost, "micro_f1_mean", title=f"micro-F1 vs {label}"
            )
    logged |= {f"figure_{p.stem}": wandb.Image(str(p)) for p in figures}
    run.log(logged)
    run.finish()
    return f"{resolved} ({reason})"


def report(
    runs: str | list[str],
    baseline: str = "BERT-512",
    out: str | None = None,
    teacher_logits: str | None = None,
    note: list[str] | None = None,
    wandb_project: str = "topicbert",
    wandb_mode: Mode = "auto",
) -> list[ModelRow]:
    """Table 3 (markdown and CSV) and Pareto plots (F1 vs time, vs CO2, and vs the time and CO2 to
    99% of the best dev score; macro-F1, and micro-F1 too for a multi-label dataset) from runs'
    ``results.json``; warns where the rows compared differ in budget, dev split or cost set-up.

    Args:
        runs: a run folder or ``results.json`` file, or a list of them; folders are searched recursively.
        baseline: the model that retention (Rtn) is measured against.
        out: output folder; defaults to ``<first runs folder>/report``.
        teacher_logits: the logits file the distilled runs learned from; its teacher's run must be
            among ``runs``. Adds the all-in costs (a distilled student's plus its teacher's fit and
            labelling) as columns and fronts.
        note: lines to print under the table, for what its runs cannot say of themselves (e.g. that
            runs from before machine ids were recorded ran on hosts of different speed).
        wandb_project: W&B project for the table and plots.
        wandb_mode: ``auto`` (online when possible, else offline), ``online``, ``offline`` or ``disabled``.
    """
    runs = [runs] if isinstance(runs, str) else runs
    results = load_results(runs)
    if not results:
        raise SystemExit(f"error: no finished runs (results.json with status 'complete') under {', '.join(runs)}.")
    folder = Path(out or Path(runs[0]) / "report")
    notes = list(note or [])
    if teacher_logits:
        teacher = teacher_cost(teacher_logits, results)
        results = with_all_in_cost(results, teacher)
        notes.append(teacher.note())
    rows = summarize(results, baseline)
    warnings = comparability_warnings(results)
    for warning in warnings:
        log.warning(warning)
    markdown, table = write_table(rows, folder, warnings, notes)
    figures = []
    multi_label = multi_label_datasets(results)
    for dataset in sorted({r.dataset for r in rows}):
        subset = [r for r in rows if r.dataset == dataset]
        dataset_runs = [r for r in results if r["dataset"] == dataset]
        # micro-F1 too where labels are many and uneven: it weighs the frequent ones, macro the rare
        prefixes = {"macro": ""} | ({"micro": "micro_"} if dataset in multi_label else {})
        for score, prefix in prefixes.items():
            for key, (cost, label) in FIGURES.items():
                path = folder / f"pareto_{prefix}{key}_{dataset}.png"
                figure = pareto_plot(subset, dataset_runs, cost, label, path, score)
                figures += [figure] if figure else []
    where = log_to_wandb(rows, figures, folder, wandb_project, wandb_mode, micro=bool(multi_label))
    print(to_markdown(rows, warnings, notes))
    print(f"Table: {markdown}, {table}")
    print("Figures: " + ", ".join(str(p) for p in figures))
    print(f"W&B: {where}")
    return rows


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    CLI(report)
