"""Test F1 on a teacher's missed labels and on the rest: exact on planted runs, clear errors on bad input."""

import json
from pathlib import Path

import numpy as np
import pytest

from reports.blind_spots import blind_spots, main, missed_labels
from utils.predictions import DocumentPredictions

LABELS = ["a", "b", "c", "d"]
# Multi-label gold: every label has test documents.
GOLD = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1]], dtype=bool)


def diagnostics(tmp_path, agreement: dict[str, float]) -> str:
    classes = {name: {"documents": 5, "agreement": value, "p_gold": value} for name, value in agreement.items()}
    classes["e"] = {"documents": 0, "agreement": 0.0, "p_gold": None}  # no training documents: not "missed"
    path = tmp_path / "teacher_diagnostics.json"
    path.write_text(json.dumps({"splits": {"original": {"classes": classes}}}))
    return str(path)


def write_run(folder, model, seed, predicted, labels=LABELS):
    folder.mkdir(parents=True)
    ids = [f"d{i}" for i in range(len(GOLD))]
    DocumentPredictions(ids, GOLD, np.asarray(predicted, dtype=bool), labels, True).save(
        folder / "test_predictions.npz"
    )
    result = {"dataset": "reuters21578", "model": model, "seed": seed, "status": "complete"}
    (folder / "results.json").write_text(json.dumps(result | {"test_predictions": "test_predictions.npz"}))


def test_missed_labels_are_those_never_predicted_on_their_own_training_documents(tmp_path):
    path = diagnostics(tmp_path, {"a": 0.0, "b": 0.4, "c": 1.0, "d": 0.0})
    assert missed_labels(json.loads(Path(path).read_text())) == ["a", "d"]
    with pytest.raises(ValueError, match=r"reports\.teacher_diagnostics"):
        missed_labels({"splits": {"augmented": {}}})


def test_shares_split_macro_f1_between_missed_and_other_labels(tmp_path):
    path = diagnostics(tmp_path, {"a": 0.0, "b": 0.9, "c": 0.8, "d": 0.7})
    write_run(tmp_path / "runs" / "perfect", "Student", 1, GOLD)
    blind = GOLD.copy()
    blind[:, 0] = False  # never predicts the missed label "a": its F1 is 0
    write_run(tmp_path / "runs" / "kd1", "KD-Student", 1, blind)
    worse = blind.copy()
    worse[:, 1] = True  # also predicts "b" everywhere: 2 true of 6 predicted, F1 = 4 / (4 + 4) = 0.5
    write_run(tmp_path / "runs" / "kd2", "KD-Student", 2, worse)

    rows = {r.model: r for r in blind_spots(path, [str(tmp_path / "runs")], out=str(tmp_path / "out"))}

    assert rows["Student"].missed_f1 == 1.0 and rows["Student"].other_f1 == 1.0
    kd = rows["KD-Student"]
    assert kd.seeds == 2 and kd.missed_f1 == 0.0
    assert kd.other_f1 == pytest.approx((1 + 1 + 1 + 0.5 + 1 + 1) / 6)  # labels b, c, d over both seeds
    assert kd.missed_share == 0.0 and kd.other_share == pytest.approx((0.75 + 1 + 1) / 4)
    seed_macro = [
        DocumentPredictions.load(tmp_path / "runs" / f / "test_predictions.npz").macro_f1() for f in ("kd1", "kd2")
    ]
    assert kd.missed_share + kd.other_share == pytest.approx(np.mean(seed_macro))
    text = (tmp_path / "out" / "blind_spots.md").read_text()
    assert "the 1 of 4 labels" in text and "| KD-Student | 2 | 0.000 | 0.917 |" in text


def test_a_missed_label_the_runs_do_not_know_is_an_error_that_writes_nothing(tmp_path, capsys):
    path = diagnostics(tmp_path, {"a": 0.0, "zz": 0.0, "b": 1.0})
    write_run(tmp_path / "runs" / "one", "Student", 1, GOLD)
    with pytest.raises(SystemExit, match=r"error: Student: the teacher's missed labels \['zz'\]"):
        main([path, json.dumps([str(tmp_path / "runs")]), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
