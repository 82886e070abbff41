"""The baselines and the efficiency table on tiny data, fitted through the CLI."""

import json
import os
from pathlib import Path

import pytest

from cli import main
from reports.baselines import baselines
from reports.efficiency import efficiency
from reports.table import load_results, summarize
from tests.conftest import ROOT, tiny_args


@pytest.fixture(scope="module")
def checkpoints(tiny_corpus_dir, tiny_encoder_dir, tmp_path_factory) -> dict[str, str]:
    """One-epoch tiny fits: the TopicBERT teacher, the NVDM and two students (no KD)."""
    home = tmp_path_factory.mktemp("fits")
    data = [
        "--data.dataset",
        str(tiny_corpus_dir),
        "--data.min_freq",
        "2",
        "--data.dev_size",
        "0.2",
        "--trainer.max_epochs",
        "1",
        "--trainer.enable_progress_bar",
        "false",
    ]
    runs = {
        "teacher": [
            *tiny_args(tiny_corpus_dir, tiny_encoder_dir),
            "--model.init_args.num_topics",
            "8",
            "--trainer.max_epochs",
            "1",
        ],
        "nvdm": ["--config", str(ROOT / "configs/nvdm.yaml"), *data, "--model.init_args.num_topics", "8"],
        "kimcnn": [
            "--config",
            str(ROOT / "configs/students/kimcnn.yaml"),
            *data,
            "--data.tokenizer",
            str(tiny_encoder_dir),
            "--data.max_length",
            "32",
        ],
        "logreg": ["--config", str(ROOT / "configs/students/logreg.yaml"), *data],
    }
    previous = os.getcwd()
    os.chdir(home)
    try:
        return {
            name: str(home / main(["fit", *args]).trainer.checkpoint_callback.best_model_path)
            for name, args in runs.items()
        }
    finally:
        os.chdir(previous)


def test_baselines_write_results_the_report_reads(checkpoints, tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    out = tmp_path / "baselines"
    written = baselines(
        dataset=str(tiny_corpus_dir),
        dev_size=0.2,
        min_freq=2,
        encoder=str(tiny_encoder_dir),
        max_length=32,
        nvdm_checkpoint=checkpoints["nvdm"],
        c_grid=[0.1, 10.0],
        out=str(out),
    )
    assert [r["model"] for r in written] == ["LR (tf-idf)", "SVM (tf-idf)", "BERT-Avg", "BERT-Avg+DTR"]
    by_model = {r["model"]: r for r in written}
    # three topics with distinct vocabularies: the bag-of-words baselines separate them
    assert by_model["SVM (tf-idf)"]["test_macro_f1"] > 0.9 and by_model["LR (tf-idf)"]["test_macro_f1"] > 0.9
    assert all(0 <= r["test_macro_f1"] <= 1 and r["C"] in (0.1, 10.0) for r in written)
    rows = summarize(load_results([out]), baseline="SVM (tf-idf)")
    assert {r.model for r in rows} == set(by_model) and all(r.seeds == 1 for r in rows)
    saved = json.loads((out / "tiny_corpus0" / "tfidf-svm" / "results.json").read_text())
    assert saved["test_macro_f1"] == pytest.approx(by_model["SVM (tf-idf)"]["test_macro_f1"])


def test_dtr_baseline_needs_a_topic_model(tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    with pytest.raises(SystemExit, match="--nvdm_checkpoint"):
        baselines(
            dataset=str(tiny_corpus_dir),
            dev_size=0.2,
            min_freq=2,
            encoder=str(tiny_encoder_dir),
            max_length=32,
            models=["bert-avg-dtr"],
            out=str(tmp_path),
        )


def test_efficiency_table_has_ratios_to_the_teacher(checkpoints, tmp_path):
    runs = [checkpoints["teacher"], checkpoints["kimcnn"], checkpoints["logreg"]]
    rows = efficiency(runs, docs=8, repeats=1, out=str(tmp_path))
    assert [r["model"] for r in rows] == ["TopicBERT-16", "KimCNN", "LogReg"]
    teacher, cnn, logreg = rows
    assert teacher["flops_ratio"] == teacher["speedup_b1"] == teacher["speedup_b64"] == 1.0
    for row in rows:
        assert row["params_m"] > 0 and row["flops_per_doc_m"] > 0
        assert row["latency_b1_ms"] > 0 and row["latency_b64_ms"] > 0
        assert row["flops_ratio"] == pytest.approx(teacher["flops_per_doc_m"] / row["flops_per_doc_m"])
    assert cnn["params_m"] - cnn["params_non_embedding_m"] > 0  # the word-piece embedding table
    assert logreg["flops_per_doc_m"] < cnn["flops_per_doc_m"]  # a sparse dot product per class
    saved = json.loads((tmp_path / "efficiency.json").read_text())
    assert len(saved["rows"]) == 3 and saved["docs"] == 8
    table = (tmp_path / "efficiency.md").read_text().splitlines()
    assert table[2].startswith("| model |") and len(table) == 4 + 3
    assert Path(rows[0]["checkpoint"]).is_file()
