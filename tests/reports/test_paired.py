"""The paired two-level bootstrap: exact where it must be, significant only when the difference is real."""

import numpy as np
import pytest

from reports.paired import mean_std, pair_runs, paired_difference, paired_differences
from utils.predictions import DocumentPredictions

CLASSES = 8
IDS = [f"doc{i}" for i in range(2000)]
GOLD = np.random.default_rng(0).integers(0, CLASSES, len(IDS))


def run(predicted: np.ndarray, ids: list[str] = IDS, gold: np.ndarray = GOLD) -> DocumentPredictions:
    eye = np.eye(CLASSES, dtype=bool)
    return DocumentPredictions(ids, eye[gold], eye[predicted], [f"c{k}" for k in range(CLASSES)], multi_label=False)


def noisy(seed: int, accuracy: float) -> np.ndarray:
    """Class predictions right on about ``accuracy`` of the documents, wrong ones random."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(len(GOLD)) < accuracy, GOLD, rng.integers(0, CLASSES, len(GOLD)))


def arm_of(accuracies: dict[int, float], offset: int = 0) -> list[tuple[int, DocumentPredictions]]:
    return [(seed, run(noisy(seed + offset, accuracy))) for seed, accuracy in accuracies.items()]


def test_identical_arms_differ_by_exactly_zero():
    baseline = arm_of({1: 0.6, 2: 0.7, 3: 0.8})
    comparison = paired_difference(baseline, baseline, iterations=300)
    assert comparison.difference == 0.0 and comparison.interval == (0.0, 0.0) and not comparison.significant
    assert comparison.retention == 1.0 and comparison.retention_interval == (1.0, 1.0)
    assert comparison.pairs == 3 and comparison.iterations == 300 and comparison.pairing == "by seed"


def test_an_arm_right_on_every_document_beats_a_random_baseline():
    perfect = [(seed, run(GOLD)) for seed in (1, 2, 3)]
    comparison = paired_difference(perfect, arm_of({1: 0.0, 2: 0.0, 3: 0.0}), iterations=300)
    assert comparison.significant and comparison.interval[0] > 0.5 and comparison.arm_mean == 1.0
    assert comparison.retention > 5 and comparison.retention_interval[0] > 1


def test_one_document_changed_out_of_2000_is_not_significant():
    baseline = arm_of({1: 0.7, 2: 0.7, 3: 0.7})
    arm = []
    for seed, predictions in baseline:
        predicted = predictions.predicted.argmax(axis=1)
        wrong = int(np.flatnonzero(predicted != GOLD)[0])
        predicted[wrong] = GOLD[wrong]
        arm.append((seed, run(predicted)))
    comparison = paired_difference(arm, baseline, iterations=500)
    assert 0 < comparison.difference < 1e-3 and not comparison.significant


def test_the_interval_covers_the_observed_difference():
    comparison = paired_difference(arm_of({1: 0.75, 2: 0.7}), arm_of({1: 0.7, 2: 0.72}, offset=10), iterations=500)
    low, high = comparison.interval
    assert low < comparison.difference < high
    assert comparison.retention_interval[0] < comparison.retention < comparison.retention_interval[1]


def test_a_fixed_seed_gives_the_same_comparison():
    arm, baseline = arm_of({1: 0.72, 2: 0.7}), arm_of({1: 0.7, 2: 0.7}, offset=10)
    assert paired_difference(arm, baseline, seed=5) == paired_difference(arm, baseline, seed=5)
    assert paired_difference(arm, baseline, seed=5).interval != paired_difference(arm, baseline, seed=6).interval


def test_runs_on_different_test_documents_are_refused_by_name():
    arm = [(1, run(GOLD)), (2, run(GOLD[:-1], ids=IDS[:-1], gold=GOLD[:-1]))]
    with pytest.raises(ValueError, match="arm run seed 2 and baseline run seed 1"):
        paired_difference(arm, arm_of({1: 0.5, 2: 0.5}), iterations=10)


def test_documents_in_another_order_are_aligned_by_id():
    arm, baseline = arm_of({1: 0.8}), arm_of({1: 0.7}, offset=10)
    order = np.random.default_rng(1).permutation(len(IDS))
    shuffled = run(arm[0][1].predicted.argmax(axis=1)[order], ids=[IDS[i] for i in order], gold=GOLD[order])
    assert paired_difference([(1, shuffled)], baseline) == paired_difference(arm, baseline)


def test_runs_pair_by_seed_whatever_their_order():
    by_seed = {seed: run(noisy(seed, 0.7)) for seed in (1, 2, 3)}  # seed s of both arms: the same predictions
    arm, baseline = [(s, by_seed[s]) for s in (3, 1, 2)], [(s, by_seed[s]) for s in (1, 2, 3)]
    assert pair_runs(arm, baseline) == ([(0, 2), (1, 0), (2, 1)], "by seed")
    assert paired_difference(arm, baseline, iterations=200).interval == (0.0, 0.0)


def test_a_single_baseline_run_is_the_partner_of_every_arm_run():
    svm = [(0, run(noisy(99, 0.7)))]
    pairs, pairing = pair_runs(arm_of({1: 0.7, 2: 0.7, 3: 0.7}), svm)
    assert pairs == [(0, 0), (1, 0), (2, 0)] and "one baseline run" in pairing
    comparison = paired_difference(arm_of({1: 0.8, 2: 0.8, 3: 0.8}), svm, iterations=200)
    assert comparison.pairs == 3 and comparison.significant and comparison.baseline_std == 0.0


def test_unmatched_seeds_pair_in_sorted_order_and_say_so():
    pairs, pairing = pair_runs(arm_of({5: 0.7, 4: 0.7}), arm_of({1: 0.7, 2: 0.7}))
    assert pairs == [(1, 0), (0, 1)] and "sorted seed order" in pairing
    with pytest.raises(ValueError, match="cannot pair"):
        pair_runs(arm_of({5: 0.7, 4: 0.7}), arm_of({1: 0.7, 2: 0.7, 3: 0.7}))


def test_seed_to_seed_variance_widens_the_interval():
    baseline = [(seed, run(noisy(50, 0.7))) for seed in (1, 2, 3)]
    steady = [(seed, run(noisy(20, 0.8))) for seed in (1, 2, 3)]  # every seed gives the same model
    erratic = arm_of({1: 0.6, 2: 0.8, 3: 1.0}, offset=20)
    steady_low, steady_high = paired_difference(steady, baseline, iterations=500).interval
    erratic_low, erratic_high = paired_difference(erratic, baseline, iterations=500).interval
    assert erratic_high - erratic_low > 3 * (steady_high - steady_low)


def test_mean_std_over_seeds():
    assert mean_std([0.5]) == (0.5, 0.0)
    assert mean_std([1.0, 3.0]) == pytest.approx((2.0, 2**0.5))


def test_an_arm_on_a_subset_of_the_baselines_seeds_is_compared_on_those_seeds_only():
    baseline = arm_of({1: 0.5, 2: 0.6, 3: 0.7})
    arm = arm_of({2: 0.9}, offset=10)
    pairs, pairing = pair_runs(arm, baseline)
    assert pairs == [(0, 1)] and "seed" in pairing
    result = paired_difference(arm, baseline, iterations=200)
    assert result.baseline_mean == pytest.approx(baseline[1][1].macro_f1())
    assert result.difference == pytest.approx(arm[0][1].macro_f1() - baseline[1][1].macro_f1())


def multi_label_run(predicted: np.ndarray, gold: np.ndarray) -> DocumentPredictions:
    return DocumentPredictions(IDS, gold, predicted, [f"l{k}" for k in range(gold.shape[1])], multi_label=True)


def test_micro_and_macro_f1_can_rank_two_models_oppositely_and_each_interval_says_so():
    rng = np.random.default_rng(3)
    gold = np.column_stack([rng.random(len(IDS)) < 0.8] + [rng.random(len(IDS)) < 0.05 for _ in range(4)])
    frequent_only = gold.copy()
    frequent_only[:, 1:] = False  # right on the frequent label, never predicts a rare one
    rare_too = gold.copy()
    rare_too[:, 0] ^= rng.random(len(IDS)) < 0.3  # every rare label right, the frequent one often wrong
    arm = [(s, multi_label_run(frequent_only, gold)) for s in (1, 2, 3)]
    baseline = [(s, multi_label_run(rare_too, gold)) for s in (1, 2, 3)]
    macro = paired_difference(arm, baseline, iterations=300)
    micro = paired_difference(arm, baseline, iterations=300, metric="micro_f1")
    assert macro.significant and macro.interval[1] < 0
    assert micro.significant and micro.interval[0] > 0
    assert micro.difference == pytest.approx(arm[0][1].micro_f1() - baseline[0][1].micro_f1())
    # one pass scores both on the same resamples, so each equals its own pass
    assert paired_differences(arm, baseline, iterations=300) == {"macro_f1": macro, "micro_f1": micro}


def test_an_unknown_metric_is_refused_by_name():
    arm = arm_of({1: 0.5})
    with pytest.raises(ValueError, match="macro_f1 or micro_f1"):
        paired_difference(arm, arm, metric="accuracy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="macro_f1 or micro_f1"):
        paired_differences(arm, arm, metrics=())
