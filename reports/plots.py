"""Pareto-front figures: macro-F1 against fine-tuning time and against CO2."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from reports.table import ModelRow, pareto_front

LOG_SPREAD = 50  # costs spanning more than this factor are drawn on a log axis


def x_scale(costs: list[float]) -> str:
    """``log`` when the costs span more than ``LOG_SPREAD`` (a tf-idf SVM's seconds beside a BiLSTM's
    hour would crowd every cheap model into one corner), else ``linear``."""
    return "log" if min(costs) > 0 and max(costs) > LOG_SPREAD * min(costs) else "linear"


def pareto_plot(rows: list[ModelRow], runs: list[dict], cost: str, label: str, path: Path) -> Path | None:
    """Scatter of every run (small) and every model's mean (large, labelled) of one dataset, with the
    frontier of the model means drawn as a step line. ``cost`` names the x-axis field of both.

    Models without that cost (e.g. scikit-learn baselines have no CO2 reading) are left out; with
    none left there is no plot (None)."""
    rows = [r for r in rows if math.isfinite(getattr(r, cost))]
    runs = [r for r in runs if r.get(cost) is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=150)
    ax.scatter(
        [r[cost] for r in runs],
        [r["test_macro_f1"] for r in runs],
        s=12,
        alpha=0.35,
        color="tab:gray",
        label="runs",
    )
    xs = [getattr(r, cost) for r in rows]
    ys = [r.f1_mean for r in rows]
    front = pareto_front(xs, ys)
    ax.scatter(xs, ys, s=50, color="tab:blue", zorder=3, label="model mean")
    ax.errorbar(xs, ys, yerr=[r.f1_std for r in rows], fmt="none", ecolor="tab:blue", alpha=0.5)
    for n, (row, x, y) in enumerate(zip(rows, xs, ys, strict=True)):
        ax.annotate(row.model, (x, y), textcoords="offset points", xytext=(6, 6 if n % 2 else -12), fontsize=8)
    # The frontier as a staircase through its points, continued to the right edge: everything below
    # and to the right of it is beaten by a cheaper or better model.
    right = max([*xs, *(r.get(cost) or 0.0 for r in runs)])
    ax.step(
        [xs[i] for i in front] + [right],
        [ys[i] for i in front] + [ys[front[-1]]],
        where="post",
        color="tab:red",
        linewidth=1.5,
        label="Pareto front",
        zorder=2,
    )
    ax.scatter(
        [xs[i] for i in front],
        [ys[i] for i in front],
        s=140,
        facecolors="none",
        edgecolors="tab:red",
        linewidths=1.5,
        zorder=4,
    )
    ax.set_xscale(x_scale([*xs, *(r[cost] for r in runs)]))
    ax.set_xlabel(label)
    ax.set_ylabel("test macro-F1")
    ax.set_title(f"{rows[0].dataset}: macro-F1 vs {label}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
