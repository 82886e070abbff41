import json
import os
import subprocess
import sys

import pytest

from reports.seqlen_cost import seqlen_cost
from reports.sweep import Run
from tests.conftest import ROOT


def test_grid_names_map_to_partitions():
    assert Run("r8", "TopicBERT-128", 1, 512).num_partitions == 4
    assert Run("r8", "BERT-512", 1, 512).num_partitions == 1 and not Run("r8", "BERT-512", 1, 512).topic_model
    with pytest.raises(ValueError, match="does not divide"):
        _ = Run("r8", "TopicBERT-100", 1, 512).num_partitions
    assert Run("/data/my corpus", "BERT-512", 3, 512).folder(ROOT).parts[-3:] == ("my corpus", "BERT-512", "seed3")


@pytest.mark.slow
def test_sweep_runs_reports_and_resumes(tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    command = [
        sys.executable,
        "-m",
        "reports.sweep",
        "--dataset",
        str(tiny_corpus_dir),
        "--models",
        "[TopicBERT-16]",
        "--seeds",
        "[1]",
        "--max_length",
        "32",
        "--baseline",
        "TopicBERT-16",
        "--out",
        str(tmp_path / "sweep"),
        "--overrides",
        f"[--data.tokenizer={tiny_encoder_dir},--data.min_freq=2,--data.dev_size=0.2]",
        "--budget.epochs",
        "0.5",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    first = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    folder = tmp_path / "sweep" / tiny_corpus_dir.name
    results = json.loads((folder / "TopicBERT-16" / "seed1" / "results.json").read_text())
    assert results["status"] == "complete" and results["seed"] == 1 and results["num_partitions"] == 2
    assert results["budget"] == "epochs=0.5" and results["documents_seen"] == results["docs_per_epoch"] == 36
    assert (folder / "report" / "table3.md").is_file() and (
        folder / "report" / f"pareto_co2_{folder.name}.png"
    ).is_file()
    stamp = (folder / "TopicBERT-16" / "seed1" / "results.json").stat().st_mtime_ns
    second = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600, env=env)
    assert second.returncode == 0 and "already finished" in second.stdout + second.stderr
    assert (folder / "TopicBERT-16" / "seed1" / "results.json").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_seqlen_cost_grows_with_length_and_writes_a_plot(tiny_encoder_dir, tmp_path):
    rows = seqlen_cost(
        encoder=str(tiny_encoder_dir), lengths=[16, 128], batch_size=4, steps=2, warmup=1, out=str(tmp_path)
    )
    assert [r["length"] for r in rows] == [16, 128]
    assert rows[1]["time_per_batch_s"] > rows[0]["time_per_batch_s"]
    assert all(r["peak_memory_mb"] > 0 and r["energy_per_batch_kwh"] > 0 for r in rows)
    assert rows[1]["co2_paper_eq_per_batch_g"] > rows[0]["co2_paper_eq_per_batch_g"]
    assert all(0 < r["mfu"] < 1 for r in rows)
    saved = json.loads((tmp_path / "seqlen_cost.json").read_text())
    assert saved["batch_size"] == 4 and len(saved["rows"]) == 2 and saved["matmul_peak_tflops"] > 0
    assert (tmp_path / "seqlen_cost.png").read_bytes()[:4] == b"\x89PNG"


def test_bert_base_configuration_needs_no_download(monkeypatch):
    from reports.seqlen_cost import load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_model("bert-base", random_weights=True, attn_implementation="sdpa")
    assert (model.config.num_hidden_layers, model.config.hidden_size, model.config.vocab_size) == (12, 768, 30522)
