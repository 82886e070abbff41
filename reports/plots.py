"""Pareto-front figures: macro-F1 against fine-tuning time and against CO2."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from reports.table import ModelRow, pareto_front

LOG_SPREAD = 50  # costs spanning more than this factor are drawn on a log axis
# per score: the model row's mean and spread, the run's field, the axis label
SCORES = {
    "macro": ("f1_mean", "f1_std", "test_macro_f1", "test macro-F1"),
    "micro": ("micro_f1_mean", "micro_f1_std", "test_micro_f1", "test micro-F1"),
}
# where a model's name may go beside its point (offset in points, alignment), tried in turn
LABEL_SPOTS = [
    (6, 6, "left"),
    (6, -12, "left"),
    (-6, 6, "right"),
    (-6, -12, "right"),
    (6, 16, "left"),
    (6, -22, "left"),
    (-6, 16, "right"),
    (-6, -22, "right"),
]


def x_scale(costs: list[float]) -> str:
    """``log`` when the costs span more than ``LOG_SPREAD`` (a tf-idf SVM's seconds beside a BiLSTM's
    hour would crowd every cheap model into one corner), else ``linear``."""
    return "log" if min(costs) > 0 and max(costs) > LOG_SPREAD * min(costs) else "linear"


def _label(ax: Axes, name: str, x: float, y: float, spot: tuple[int, int, str]) -> Text:
    dx, dy, align = spot
    return ax.annotate(name, (x, y), textcoords="offset points", xytext=(dx, dy), ha=align, fontsize=8)


def place_labels(ax: Axes, names: list[str], xs: list[float], ys: list[float]) -> list[Text]:
    """Each name beside its point at the first of ``LABEL_SPOTS`` that stays inside the axes and
    covers no other point and no name placed before it (two models of nearly one cost and score
    printed over each other at a fixed offset); where none is free, the spot that covers least."""
    ax.figure.canvas.draw()  # settles the limits autoscaling leaves open until the first draw
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    pad = 8 * ax.figure.dpi / 72  # 8 points around a marker: a name that near reads as its own
    centres = ax.transData.transform(list(zip(xs, ys, strict=True)))
    points = [Bbox.from_extents(cx - pad, cy - pad, cx + pad, cy + pad) for cx, cy in centres]
    placed: list[Text] = []
    for n, (name, x, y) in enumerate(zip(names, xs, ys, strict=True)):
        taken = [box for m, box in enumerate(points) if m != n] + [t.get_window_extent(renderer) for t in placed]
        costs = [_covered(_extent(ax, renderer, name, x, y, spot), frame, taken) for spot in LABEL_SPOTS]
        placed.append(_label(ax, name, x, y, LABEL_SPOTS[costs.index(min(costs))]))  # the earliest of equals
    return placed


def _extent(ax: Axes, renderer: RendererBase, name: str, x: float, y: float, spot: tuple[int, int, str]) -> Bbox:
    """Where the name would be drawn at ``spot``, in pixels."""
    text = _label(ax, name, x, y, spot)
    box = text.get_window_extent(renderer)
    text.remove()
    return box


def _covered(box: Bbox, frame: Bbox, taken: list[Bbox]) -> float:
    """The area a label would cover of others, plus its own area for each side it leaves the axes."""
    outside = sum([box.x0 < frame.x0, box.x1 > frame.x1, box.y0 < frame.y0, box.y1 > frame.y1])
    overlaps = [Bbox.intersection(box, other) for other in taken]
    return sum(o.width * o.height for o in overlaps if o is not None) + outside * box.width * box.height


def pareto_plot(
    rows: list[ModelRow], runs: list[dict], cost: str, label: str, path: Path, score: str = "macro"
) -> Path | None:
    """Scatter of every run (small) and every model's mean (large, labelled) of one dataset, with the
    frontier of the model means drawn as a step line. ``cost`` names the x-axis field of both,
    ``score`` (a key of ``SCORES``) the y-axis.

    Models without that cost or score (e.g. scikit-learn baselines have no CO2 reading) are left
    out; with none left there is no plot (None)."""
    mean, spread, field, axis = SCORES[score]
    rows = [r for r in rows if math.isfinite(getattr(r, cost)) and math.isfinite(getattr(r, mean))]
    runs = [r for r in runs if r.get(cost) is not None and r.get(field) is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7.6, 4.4), dpi=150)
    ax.scatter(
        [r[cost] for r in runs],
        [r[field] for r in runs],
        s=12,
        alpha=0.35,
        color="tab:gray",
        label="runs",
    )
    xs = [getattr(r, cost) for r in rows]
    ys = [getattr(r, mean) for r in rows]
    front = pareto_front(xs, ys)
    ax.scatter(xs, ys, s=50, color="tab:blue", zorder=3, label="model mean")
    ax.errorbar(xs, ys, yerr=[getattr(r, spread) for r in rows], fmt="none", ecolor="tab:blue", alpha=0.5)
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
    ax.set_ylabel(axis)
    ax.set_title(f"{rows[0].dataset}: {axis.removeprefix('test ')} vs {label}")
    ax.grid(alpha=0.3)
    # beside the axes, not in them: inside it covered whichever point sat in its corner
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    place_labels(ax, [r.model for r in rows], xs, ys)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
