"""The README's main job, run as a user runs it: TopicBERT on R8 with MiniLM must reach macro-F1 0.90."""

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_main_job_reaches_macro_f1_on_r8(tmp_path, shared_data_dir, monkeypatch, capsys):
    monkeypatch.setenv("TOPICBERT_DATA", str(shared_data_dir))
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "fit",
            "--config",
            str(ROOT / "configs/topicbert.yaml"),
            "--trainer.enable_progress_bar",
            "false",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    minutes = (time.perf_counter() - start) / 60
    assert result.returncode == 0, result.stderr[-3000:]
    (metrics_file,) = (tmp_path / "runs" / "topicbert-512-r8").glob("version_*/metrics.csv")
    rows = list(csv.DictReader(metrics_file.open()))
    test_f1 = next(float(r["test_macro_f1"]) for r in rows if r.get("test_macro_f1"))
    val_f1 = [float(r["val_macro_f1"]) for r in rows if r.get("val_macro_f1")]
    with capsys.disabled():  # the figures belong in the CI log
        print(f"\nmain job: test macro-F1 {test_f1:.4f}, val macro-F1 per epoch {val_f1}, {minutes:.1f} min")
    assert test_f1 >= 0.90
    assert list((metrics_file.parent / "checkpoints").glob("epoch*.ckpt"))
