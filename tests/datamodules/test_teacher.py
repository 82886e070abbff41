import numpy as np
import pytest

from datamodules.corpus import DataError
from datamodules.teacher import TeacherLogits


def make(tmp_path, **overrides):
    fields = {
        "ids": ["a", "b", "c"],
        "logits": np.arange(6, dtype=np.float32).reshape(3, 2),
        "label_names": ["x", "y"],
        "multi_label": False,
        "split": "transfer",
        "data_fingerprint": "f1",
        "teacher": {"model": "TopicBERT-512", "checkpoint_sha256": "abc"},
    } | overrides
    path = tmp_path / "t.npz"
    TeacherLogits(**fields).save(path)
    return path


def test_round_trip_and_alignment_by_id(tmp_path):
    path = make(tmp_path)
    loaded = TeacherLogits.load(path)
    assert loaded.teacher["model"] == "TopicBERT-512" and loaded.split == "transfer"
    rows = loaded.aligned(["c", "a"], ["x", "y"], "f1", str(path))
    np.testing.assert_array_equal(rows, [[4.0, 5.0], [0.0, 1.0]])


def test_logits_of_other_data_are_refused(tmp_path):
    loaded = TeacherLogits.load(make(tmp_path))
    with pytest.raises(DataError, match="computed for other documents"):
        loaded.aligned(["a"], ["x", "y"], "f2", "t.npz")
    with pytest.raises(DataError, match="labels"):
        loaded.aligned(["a"], ["y", "x"], "f1", "t.npz")
    with pytest.raises(DataError, match="lack 1 documents"):
        loaded.aligned(["a", "zzz"], ["x", "y"], "f1", "t.npz")


def test_missing_or_foreign_files_are_refused(tmp_path):
    with pytest.raises(DataError, match="missing or unreadable"):
        TeacherLogits.load(tmp_path / "none.npz")
    np.savez(tmp_path / "other.npz", ids=np.array(["a"]), meta=np.array('{"format": "something-else"}'))
    with pytest.raises(DataError, match="not a teacher-logits file"):
        TeacherLogits.load(tmp_path / "other.npz")
