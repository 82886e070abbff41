"""The serving-cost report on tiny exports: each artifact served as users run it, timed, metered and scored."""

from __future__ import annotations

import json

import numpy as np
import pytest

from datamodules.corpus import load_split
from reports.serving_cost import serving_cost
from serving import DocumentClassifier
from utils.predictions import macro_f1


@pytest.fixture(scope="module")
def folders(exports):
    return [exports(task)[1] for task in ("topicbert", "bilstm", "logreg")]


def api_macro_f1(folder, dataset) -> float:
    """Macro-F1 on the test split from ``DocumentClassifier``'s records (the reference for every artifact)."""
    model = DocumentClassifier.from_pretrained(folder)
    test = load_split(str(dataset), "test", model.label_names, False)
    records = model.predict(test.texts)
    predicted = np.array([[r["label"] == n for n in model.label_names] for r in records])
    gold = np.array([[n in labels for n in model.label_names] for labels in test.labels])
    return macro_f1(gold, predicted, multi_label=False)


def test_every_artifact_is_timed_metered_and_scored_as_it_serves(folders, tiny_corpus_dir, tmp_path):
    out = tmp_path / "report"
    rows = serving_cost(
        [str(f) for f in folders],
        dataset=str(tiny_corpus_dir),
        docs=64,
        min_run_time=0.05,
        energy_seconds=0.2,
        out=str(out),
    )
    assert [r["served_as"] for r in rows] == ["DocumentClassifier", "TorchScript", "scikit-learn pipeline"]
    for row, folder in zip(rows, folders, strict=True):
        for batch in ("b1", "b64"):
            assert row[batch]["median_ms"] > 0 and row[batch]["iqr_ms"] >= 0 and row[batch]["runs"] >= 1
        assert row["size_mb"] > 0 and row["params_m"] > 0 and row["energy_kwh_per_1000"] > 0
        assert row["energy_documents"] >= 1000 and row["co2_g_per_1000"] > 0
        # the artifact decides as the exported model does
        assert row["test_macro_f1"] == pytest.approx(api_macro_f1(folder, tiny_corpus_dir), abs=1e-9)
    assert rows[0]["flops_per_doc_m"] > 0 and rows[0]["speedup_b1"] == pytest.approx(1.0)
    # the TorchScript file and its tokenizer, not the whole folder
    assert rows[1]["size_mb"] < sum(p.stat().st_size for p in folders[1].rglob("*") if p.is_file()) / 2**20
    saved = json.loads((out / "serving.json").read_text())
    assert saved["threads"] >= 1 and len(saved["rows"]) == 3 and saved["streaming"] == []
    table = (out / "serving.md").read_text()
    assert table.count("\n| ") == 4 and (out / "serving.png").stat().st_size > 0


@pytest.mark.slow
def test_streaming_a_corpus_reports_documents_per_second_and_peak_memory(folders, tiny_corpus_dir, tmp_path):
    serving_cost(
        [str(folders[2])],
        dataset=str(tiny_corpus_dir),
        docs=64,
        min_run_time=0.05,
        energy_seconds=0.2,
        stream_model=str(folders[0]),
        stream_sizes=[200, 800],
        out=str(tmp_path),
    )
    stream = json.loads((tmp_path / "serving.json").read_text())["streaming"]
    assert [s["documents"] for s in stream] == [200, 800]
    assert all(s["documents_per_s"] > 0 and s["peak_rss_mb"] > 0 for s in stream)
    assert list(tmp_path.glob("tmp*")) == []  # the generated corpora are gone
