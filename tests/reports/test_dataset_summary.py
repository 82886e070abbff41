"""The dataset summary: counts, cardinality, lengths and the padding table, on hand-checked data."""

import json

import numpy as np
import pytest

from reports.dataset_summary import dataset_summary, padding_cost


def test_padding_cost_by_hand():
    cost = padding_cost(np.array([10, 20, 100]), 50)
    assert cost["share_longer"] == pytest.approx(1 / 3, abs=1e-4)
    assert cost["real_tokens"] == 10 + 20 + 50 and cost["padded_tokens"] == 150
    assert cost["padding_share"] == pytest.approx(1 - 80 / 150, abs=1e-4)
    assert cost["padded_over_real"] == pytest.approx(1.88, abs=0.01)


def test_summary_of_a_multi_label_folder(tiny_multilabel_dir, tiny_encoder_dir, tmp_path):
    out = tmp_path / "summary"
    summary = dataset_summary(
        str(tiny_multilabel_dir), tokenizer=str(tiny_encoder_dir), lengths=[16, 64], dev_size=0.25, out=str(out)
    )
    rows = {
        split: [json.loads(line) for line in (tiny_multilabel_dir / f"{split}.jsonl").read_text().splitlines()]
        for split in ("train", "test")
    }
    splits = summary["splits"]
    assert (splits["train"]["documents"], splits["dev"]["documents"], splits["test"]["documents"]) == (90, 30, 40)
    test_labels = [r["labels"] for r in rows["test"]]
    assert splits["test"]["label_cardinality"] == pytest.approx(np.mean([len(x) for x in test_labels]), abs=1e-3)
    assert splits["test"]["multi_label_documents"] == sum(len(x) > 1 for x in test_labels)
    assert splits["test"]["words"]["max"] == max(len(r["text"].split()) for r in rows["test"])
    assert splits["test"]["tokens"]["p50"] >= splits["test"]["words"]["p50"]  # special tokens at least
    assert summary["multi_label"] and summary["labels"] == 3
    assert summary["label_frequencies"]["sport"]["test"] == sum("sport" in x for x in test_labels)
    short, long = summary["padding_train"]
    assert short["share_longer"] > long["share_longer"] and short["padding_share"] < long["padding_share"]
    assert {p.name for p in out.iterdir()} == {"summary.md", "summary.json", "lengths.png", "labels.png"}
    assert json.loads((out / "summary.json").read_text())["splits"]["train"]["documents"] == 90
    assert "| 64 |" in (out / "summary.md").read_text()
