"""Is one model's macro-F1 (or micro-F1) really above another's? A paired two-level bootstrap over seeds
and test documents.

Each arm is a list of ``(seed, DocumentPredictions)``, one per training run, all on the same test
documents. See ``paired_differences`` for the method and why.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from utils.predictions import DocumentPredictions, macro_f1_from_counts, micro_f1_from_counts

Run = tuple[int, DocumentPredictions]
Metric = Literal["macro_f1", "micro_f1"]
# Bootstrap iterations scored per matrix product: bounds the weight matrix to CHUNK x documents.
CHUNK = 250


@dataclass(frozen=True)
class Comparison:
    """Arm minus baseline F1 with its bootstrap interval, and arm / baseline (retention) with its own."""

    difference: float
    interval: tuple[float, float]
    significant: bool
    retention: float
    retention_interval: tuple[float, float]
    arm_mean: float
    arm_std: float
    baseline_mean: float
    baseline_std: float
    pairs: int
    iterations: int
    confidence: float
    pairing: str


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds; the deviation of one run is 0, as in the tables."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def pair_runs(arm: Sequence[Run], baseline: Sequence[Run]) -> tuple[list[tuple[int, int]], str]:
    """Index pairs (arm run, baseline run) and how they were made.

    Runs sharing a seed share their data order and initialisation noise, so they pair by seed. A
    single baseline run (a deterministic model) is the partner of every arm run. When one arm's
    seeds are a subset of the other's, the shared seeds pair. Otherwise, when the seeds differ, runs
    pair in sorted seed order, which the returned description says.
    """
    arm_seeds, baseline_seeds = _seeds(arm, "arm"), _seeds(baseline, "baseline")
    if sorted(arm_seeds) == sorted(baseline_seeds):
        return [(i, baseline_seeds.index(seed)) for i, seed in enumerate(arm_seeds)], "by seed"
    if len(baseline) == 1:
        pairing = f"every arm run against the one baseline run (seed {baseline_seeds[0]})"
        return [(i, 0) for i in range(len(arm))], pairing
    shared = set(arm_seeds) & set(baseline_seeds)
    if shared == set(arm_seeds) or shared == set(baseline_seeds):
        pairs = [(i, baseline_seeds.index(seed)) for i, seed in enumerate(arm_seeds) if seed in shared]
        return pairs, f"by seed, on the {len(pairs)} seed(s) both arms ran ({sorted(shared)})"
    if len(arm) != len(baseline):
        raise ValueError(
            f"cannot pair {len(arm)} arm runs (seeds {sorted(arm_seeds)}) with "
            f"{len(baseline)} baseline runs (seeds {sorted(baseline_seeds)})"
        )
    order_a, order_b = np.argsort(arm_seeds, kind="stable"), np.argsort(baseline_seeds, kind="stable")
    pairs = [(int(a), int(b)) for a, b in zip(order_a, order_b, strict=True)]
    pairing = f"in sorted seed order, as the seeds differ (arm {sorted(arm_seeds)}, baseline {sorted(baseline_seeds)})"
    return pairs, pairing


def _seeds(runs: Sequence[Run], name: str) -> list[int]:
    """Seeds of an arm; a repeated seed would make pairing ambiguous."""
    seeds = [seed for seed, _ in runs]
    if not seeds:
        raise ValueError(f"the {name} has no runs")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"the {name} repeats a seed: {seeds}")
    return seeds


def aligned(arm: Sequence[Run], baseline: Sequence[Run]) -> list[DocumentPredictions]:
    """Every run's predictions (arm runs, then baseline runs) with rows in the first baseline run's
    document order; raises ValueError naming any run whose test set or labels differ from it."""
    reference = baseline[0][1]
    position = {doc: row for row, doc in enumerate(reference.ids)}
    named = [(f"arm run seed {s}", p) for s, p in arm] + [(f"baseline run seed {s}", p) for s, p in baseline]
    return [_reorder(name, p, reference, position, f"baseline run seed {baseline[0][0]}") for name, p in named]


def _reorder(
    name: str, run: DocumentPredictions, reference: DocumentPredictions, position: dict[str, int], reference_name: str
) -> DocumentPredictions:
    """Rows of ``run`` in the reference's order, after checking it is the same test set."""
    if set(run.ids) != position.keys():
        missing, extra = len(position.keys() - set(run.ids)), len(set(run.ids) - position.keys())
        raise ValueError(
            f"{name} and {reference_name} have different test documents ({missing} missing, {extra} extra)"
        )
    if run.label_names != reference.label_names or run.multi_label != reference.multi_label:
        raise ValueError(f"{name} and {reference_name} have different labels or label modes")
    order = np.argsort([position[doc] for doc in run.ids])
    gold, predicted = run.gold[order], run.predicted[order]
    if not np.array_equal(gold, reference.gold):
        raise ValueError(f"{name} and {reference_name} disagree on the gold labels of the same documents")
    return DocumentPredictions(reference.ids, gold, predicted, run.label_names, run.multi_label)


def paired_difference(
    arm: Sequence[Run],
    baseline: Sequence[Run],
    iterations: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    metric: Metric = "macro_f1",
) -> Comparison:
    """``metric`` of ``arm`` minus ``baseline``; see ``paired_differences``."""
    return paired_differences(arm, baseline, (metric,), iterations, seed, confidence)[metric]


def paired_differences(
    arm: Sequence[Run],
    baseline: Sequence[Run],
    metrics: Sequence[Metric] = ("macro_f1", "micro_f1"),
    iterations: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[Metric, Comparison]:
    """Each of ``metrics`` of ``arm`` minus ``baseline`` (means over seeds, full test set) with a
    percentile interval.

    Two sources of noise separate two models' scores: which documents happen to be in the test
    set, and which seed a run was trained with. A bootstrap over documents alone would call a
    seed-lucky run significant; one over seeds alone ignores that 2000 test documents are a sample.
    So each iteration draws the seed pairs with replacement and one resample of test documents
    with replacement, scores both members of every drawn pair on that same resample (the pairing
    cancels the documents both models find easy or hard), averages each arm over the drawn pairs,
    and records the difference and the ratio (retention). The interval is the central
    ``confidence`` share of those; the difference is ``significant`` when its interval excludes 0.

    A resample is a vector of document counts, so per-label tp, fp and fn of every run for a whole
    chunk of iterations come from one matrix product, which every metric reads. Deterministic given
    ``seed``: each metric sees the same resamples, whether asked for alone or with others.
    """
    if not metrics or set(metrics) - {"macro_f1", "micro_f1"}:
        raise ValueError(f"metrics must be macro_f1 or micro_f1 (or both), got {list(metrics)!r}")
    if iterations < 1 or not 0 < confidence < 1:
        raise ValueError(f"need iterations >= 1 and 0 < confidence < 1, got {iterations} and {confidence}")
    pairs, pairing = pair_runs(arm, baseline)
    if len(pairs) < max(len(arm), len(baseline)) and len(baseline) > 1:  # only the shared seeds are compared
        arm, baseline = [arm[a] for a, _ in pairs], [baseline[b] for _, b in pairs]
        pairs = [(i, i) for i in range(len(pairs))]
    runs = aligned(arm, baseline)
    arm_index = np.array([a for a, _ in pairs])
    baseline_index = np.array([len(arm) + b for _, b in pairs])
    rng = np.random.default_rng(seed)
    differences: dict[Metric, list[np.ndarray]] = {m: [] for m in metrics}
    retentions: dict[Metric, list[np.ndarray]] = {m: [] for m in metrics}
    for chunk in _bootstrap_f1(runs, iterations, rng, metrics):
        drawn = _draw_counts(rng, len(chunk[metrics[0]]), len(pairs))
        for metric, f1 in chunk.items():
            arm_f1 = (drawn * f1[:, arm_index]).sum(axis=1) / len(pairs)
            baseline_f1 = (drawn * f1[:, baseline_index]).sum(axis=1) / len(pairs)
            differences[metric].append(arm_f1 - baseline_f1)
            retentions[metric].append(_ratio(arm_f1, baseline_f1))
    comparisons = {}
    for metric in metrics:
        scores = [p.macro_f1() if metric == "macro_f1" else p.micro_f1() for p in runs]
        (arm_mean, arm_std), (baseline_mean, baseline_std) = mean_std(scores[: len(arm)]), mean_std(scores[len(arm) :])
        interval = _percentiles(np.concatenate(differences[metric]), confidence)
        comparisons[metric] = Comparison(
            difference=arm_mean - baseline_mean,
            interval=interval,
            significant=interval[0] > 0 or interval[1] < 0,
            retention=float(_ratio(np.array(arm_mean), np.array(baseline_mean))),
            retention_interval=_percentiles(np.concatenate(retentions[metric]), confidence),
            arm_mean=arm_mean,
            arm_std=arm_std,
            baseline_mean=baseline_mean,
            baseline_std=baseline_std,
            pairs=len(pairs),
            iterations=iterations,
            confidence=confidence,
            pairing=pairing,
        )
    return comparisons


def _bootstrap_f1(
    runs: list[DocumentPredictions], iterations: int, rng: np.random.Generator, metrics: Sequence[Metric]
) -> Iterator[dict[Metric, np.ndarray]]:
    """Each metric of every run on each document resample, as (chunk iterations x runs) blocks.

    Columns hold gold, then each run's tp and predicted indicators; fp = predicted - tp and
    fn = gold - tp. Counts are integers below 2**24, so float32 products are exact and identical
    runs get identical scores.
    """
    gold = runs[0].gold
    columns = [gold] + [m for p in runs for m in (gold & p.predicted, p.predicted)]
    indicators = np.concatenate(columns, axis=1).astype(np.float32)
    labels, documents, multi_label = gold.shape[1], gold.shape[0], runs[0].multi_label
    for start in range(0, iterations, CHUNK):
        weights = _draw_counts(rng, min(CHUNK, iterations - start), documents).astype(np.float32)
        counts = (weights @ indicators).astype(np.float64).reshape(len(weights), 1 + 2 * len(runs), labels)
        gold_count, tp, predicted = counts[:, :1], counts[:, 1::2], counts[:, 2::2]
        fp, fn = predicted - tp, gold_count - tp
        yield {
            metric: micro_f1_from_counts(tp, fp, fn)
            if metric == "micro_f1"
            else macro_f1_from_counts(tp, fp, fn, multi_label=multi_label)
            for metric in metrics
        }


def _draw_counts(rng: np.random.Generator, iterations: int, items: int) -> np.ndarray:
    """How often each of ``items`` (documents, or seed pairs) is drawn in each of ``iterations``
    resamples of ``items`` draws with replacement: a resample as a weight vector."""
    draws = rng.integers(0, items, size=(iterations, items))
    offsets = np.arange(iterations)[:, None] * items
    return np.bincount((draws + offsets).ravel(), minlength=iterations * items).reshape(iterations, items)


def _ratio(arm: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """arm / baseline, NaN where the baseline scores 0 (retention of nothing is undefined)."""
    return np.divide(arm, baseline, out=np.full(np.shape(arm), np.nan), where=baseline > 0)


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` share of the bootstrap values, ignoring undefined (NaN) ones."""
    tail = (1 - confidence) / 2
    low, high = np.nanquantile(values, [tail, 1 - tail])
    return float(low), float(high)
