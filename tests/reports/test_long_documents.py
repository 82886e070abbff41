"""The IMDB long-document study's sample and subset scoring (the runs themselves are the study)."""

from __future__ import annotations

import gzip
import json

import numpy as np

from reports.long_documents import subset, write_sample
from utils.predictions import DocumentPredictions


def write_gz(path, rows):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def test_the_sample_is_drawn_once_and_disjoint(tmp_path):
    source = tmp_path / "imdb"
    source.mkdir()
    write_gz(source / "train.jsonl.gz", [{"id": f"tr{i}", "label": "pos", "text": f"t {i}", "x": 1} for i in range(50)])
    write_gz(source / "test.jsonl.gz", [{"id": f"te{i}", "label": "neg", "text": f"u {i}"} for i in range(40)])
    sizes = {"train": 20, "dev": 10, "test": 15}
    write_sample(tmp_path / "a", source, sizes, seed=0)
    write_sample(tmp_path / "b", source, sizes, seed=0)
    splits = {s: [json.loads(line) for line in (tmp_path / "a" / f"{s}.jsonl").open()] for s in sizes}
    assert {s: len(rows) for s, rows in splits.items()} == sizes
    assert not {r["id"] for r in splits["train"]} & {r["id"] for r in splits["dev"]}
    assert all(r["id"].startswith("te") for r in splits["test"]) and set(splits["test"][0]) == {"id", "label", "text"}
    assert all(
        (tmp_path / "a" / f"{s}.jsonl").read_text() == (tmp_path / "b" / f"{s}.jsonl").read_text() for s in sizes
    )


def test_a_subset_is_scored_on_its_documents_only():
    eye = np.eye(2, dtype=bool)
    run = DocumentPredictions(["a", "b", "c"], eye[[0, 1, 1]], eye[[0, 0, 1]], ["neg", "pos"], False)
    assert subset(run, {"a", "c"}).macro_f1() == 1.0 and subset(run, {"a", "c"}).ids == ["a", "c"]
    assert run.macro_f1() < 1.0
