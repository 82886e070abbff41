"""What a distilled student costs all in: its own fit, plus its teacher's fit and the labelling of the
transfer set, which a student trained without a teacher never pays.

A report given the teacher's logits file adds ``time_all_in_s`` and ``co2_all_in_g`` to every run
of the teacher's dataset, so the fronts can be drawn at the cost of obtaining each model from
scratch: a Pareto front of students at their own cost alone flatters every distilled one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from datamodules.teacher import TeacherLogits

MATCH_TOLERANCE = 1e-4  # dev macro-F1 as a checkpoint name and results.json round it


@dataclass(frozen=True)
class TeacherCost:
    """The teacher's share of a distilled student's cost.

    Labelling is timed but not metered (``python cli.py predict`` runs no energy tracker), so its CO2
    is estimated at the teacher fit's mean rate (g/s): the same model on the same kind of host.
    """

    dataset: str
    model: str
    fit_time_s: float
    fit_co2_g: float
    labelling_time_s: float | None  # None: logits written before the labelling was timed

    @property
    def time_s(self) -> float:
        return self.fit_time_s + (self.labelling_time_s or 0.0)

    @property
    def co2_g(self) -> float:
        rate = self.fit_co2_g / self.fit_time_s if self.fit_time_s > 0 else 0.0
        return self.fit_co2_g + rate * (self.labelling_time_s or 0.0)

    def note(self) -> str:
        """One line for the table: what the all-in columns add, and what they leave out."""
        labelling = (
            f"its labelling of the transfer set ({self.labelling_time_s:.0f} s, CO2 estimated at the fit's rate)"
            if self.labelling_time_s is not None
            else "not its labelling of the transfer set, which these logits did not time (an underestimate)"
        )
        return (
            f"T / CO2 all-in: a distilled student's own cost plus its teacher's ({self.model}) fit "
            f"({self.fit_time_s:.0f} s, {self.fit_co2_g:.3g} g) and {labelling}; other rows: their own cost."
        )


def is_distilled(result: dict) -> bool:
    """A run trained on the teacher-labelled transfer set (its data report counts that split)."""
    return "transfer" in (result.get("data_report") or {})


def teacher_cost(logits_path: str | Path, results: list[dict]) -> TeacherCost:
    """The cost of the teacher that wrote ``logits_path``, read from its run among ``results``: the
    run of that model whose best checkpoint is the one the logits name, at the dev score they record."""
    teacher = TeacherLogits.load(logits_path).teacher
    wanted_dev = teacher.get("dev_macro_f1")
    for result in results:
        same_checkpoint = Path(result.get("best_checkpoint") or "").name == teacher.get("checkpoint")
        dev = result.get("best_val_macro_f1")
        same_dev = wanted_dev is not None and dev is not None and abs(dev - wanted_dev) <= MATCH_TOLERANCE
        if result.get("model") == teacher.get("model") and same_checkpoint and same_dev:
            return TeacherCost(
                dataset=result["dataset"],
                model=result["model"],
                fit_time_s=float(result["time_total_s"]),
                fit_co2_g=float(result["co2_measured_g"]),
                labelling_time_s=teacher.get("labelling_time_s"),
            )
    raise SystemExit(
        f"error: the teacher of {logits_path} ({teacher.get('model')}, checkpoint {teacher.get('checkpoint')}, "
        f"dev macro-F1 {wanted_dev}) is not among the runs given; add the teacher's run folder to the runs."
    )


def with_all_in_cost(results: list[dict], cost: TeacherCost) -> list[dict]:
    """The runs, those of the teacher's dataset with ``time_all_in_s`` and ``co2_all_in_g`` added."""
    out = []
    for result in results:
        if result["dataset"] == cost.dataset:
            share = is_distilled(result)
            time_s, co2_g = result.get("time_total_s"), result.get("co2_measured_g")
            result = result | {
                "time_all_in_s": _plus(time_s, cost.time_s if share else 0.0),
                "co2_all_in_g": _plus(co2_g, cost.co2_g if share else 0.0),
            }
        out.append(result)
    return out


def _plus(own: float | None, teacher: float) -> float | None:
    """A run's own figure plus the teacher's share; None where the run did not measure its own."""
    return None if own is None or not math.isfinite(own) else own + teacher
