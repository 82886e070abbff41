"""Where a distilled student gains or loses: test F1 on the labels its teacher misses, and on the rest.

    python -m reports.blind_spots benchmarks/reuters21578-kd/teacher_diagnostics.json \\
        '[benchmarks/reuters21578-kd/logreg/runs, benchmarks/reuters21578-kd/kimcnn/runs]'

A teacher misses a label when it predicts it on none of that label's original training documents
(agreement 0 in the ``original`` split of ``teacher_diagnostics.json``): its soft targets never
teach that label. For each model among the runs, averaged over its seeds: the mean per-label test
F1 over the missed labels and over the others, and each group's share of macro-F1 (its labels'
F1 summed, over all labels), so a KD arm's change in macro-F1 splits into the two (exactly for
multi-label runs; single-label macro-F1 skips classes absent from test and predictions). Prints the
table and writes ``blind_spots.md`` in ``--out`` (default: beside the diagnostics file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jsonargparse import CLI

from reports.table import group_runs, load_results, test_predictions
from utils.files import atomic_write
from utils.predictions import DocumentPredictions, label_counts, label_f1_from_counts


@dataclass(frozen=True)
class BlindSpotRow:
    model: str
    seeds: int
    missed_f1: float
    other_f1: float
    missed_share: float
    other_share: float


def missed_labels(diagnostics: dict) -> list[str]:
    """Labels the teacher predicts on none of their original training documents."""
    try:
        classes = diagnostics["splits"]["original"]["classes"]
    except (KeyError, TypeError):
        raise ValueError(
            "the diagnostics have no per-class figures for the original training documents; "
            "write them with `python -m reports.teacher_diagnostics`"
        ) from None
    return sorted(name for name, figures in classes.items() if figures["documents"] and figures["agreement"] == 0)


def label_f1(predictions: DocumentPredictions) -> np.ndarray:
    """Per-label test F1 of one run, in its label order."""
    scores, _ = label_f1_from_counts(*label_counts(predictions.gold, predictions.predicted))
    return scores


def blind_spot_row(model: str, runs: list[tuple[int, DocumentPredictions]], missed: list[str]) -> BlindSpotRow:
    names = runs[0][1].label_names
    unknown = sorted(set(missed) - set(names))
    if unknown:
        raise ValueError(f"{model}: the teacher's missed labels {unknown} are not among its test labels")
    if any(p.label_names != names for _, p in runs):
        raise ValueError(f"{model}: its runs' test predictions list the labels in different orders")
    scores = np.mean([label_f1(p) for _, p in runs], axis=0)
    is_missed = np.isin(names, missed)
    other = scores[~is_missed]
    return BlindSpotRow(
        model=model,
        seeds=len(runs),
        missed_f1=float(scores[is_missed].mean()) if is_missed.any() else float("nan"),
        other_f1=float(other.mean()) if other.size else float("nan"),
        missed_share=float(scores[is_missed].sum() / len(names)),
        other_share=float(other.sum() / len(names)),
    )


def to_markdown(rows: list[BlindSpotRow], missed: list[str], labels: int) -> str:
    lines = [
        f"Test F1 per label, on the {len(missed)} of {labels} labels the teacher misses on its own "
        f"training documents and on the other {labels - len(missed)} (mean over seeds).",
        "Share: the group's per-label F1 summed, over all labels; the two shares add up to macro-F1.",
        "",
        "| model | seeds | F1 on missed labels | F1 on other labels | missed share | other share | macro-F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.seeds} | {r.missed_f1:.3f} | {r.other_f1:.3f} | {r.missed_share:.3f} "
            f"| {r.other_share:.3f} | {r.missed_share + r.other_share:.3f} |"
        )
    lines += ["", f"Missed labels: {', '.join(missed)}."]
    return "\n".join(lines) + "\n"


def blind_spots(diagnostics: str, runs: list[str], out: str | None = None) -> list[BlindSpotRow]:
    """Table of test F1 on the teacher's missed labels and on the rest, for each model among ``runs``.

    Args:
        diagnostics: the ``teacher_diagnostics.json`` of the teacher the distilled runs learned from.
        runs: run folders or ``results.json`` files (searched recursively), each with test predictions.
        out: folder for ``blind_spots.md``; defaults to the diagnostics file's folder.
    """
    missed = missed_labels(json.loads(Path(diagnostics).read_text()))
    results = load_results(runs)
    if not results:
        raise ValueError(f"no finished runs under {runs}")
    rows, labels = [], 0
    for (_, model), group in group_runs(results).items():
        predictions = test_predictions(group)
        if predictions is None:
            raise ValueError(f"{model}: a run has no test predictions, so its per-label F1 is unknown")
        rows.append(blind_spot_row(model, predictions, missed))
        labels = len(predictions[0][1].label_names)
    text = to_markdown(rows, missed, labels)
    folder = Path(out) if out else Path(diagnostics).parent
    with atomic_write(folder / "blind_spots.md") as f:
        f.write(text)
    print(text)
    return rows


def main(args: list[str] | None = None) -> None:
    try:
        CLI(blind_spots, args=args)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
