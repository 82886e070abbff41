"""A checkpoint is self-contained: test and predict work from it alone, in a fresh process, offline,
with neither the training data nor the encoder folder it was trained with."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from cli import main
from datamodules.assets import STATE_KEY
from tests.conftest import ROOT, task_args, tiny_args


def fresh_process(args: list[str], cwd, env_drop=("TOPICBERT_DATA",)) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in env_drop} | {"HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "task",
    ["topicbert", "logreg", pytest.param("kimcnn", marks=pytest.mark.slow)],  # kimcnn: as topicbert's tokens
)
def test_test_and_predict_need_only_the_checkpoint(task, tiny_corpus_dir, tiny_encoder_dir, tmp_path, monkeypatch):
    corpus, encoder = tmp_path / "corpus", tmp_path / "encoder"
    shutil.copytree(tiny_corpus_dir, corpus)
    shutil.copytree(tiny_encoder_dir, encoder)
    monkeypatch.chdir(tmp_path)
    args = task_args(task, corpus, encoder)
    fitted = main(["fit", *args])
    score = fitted.trainer.callback_metrics["test_macro_f1"].item()
    checkpoint = tmp_path / "model.ckpt"
    shutil.copy(fitted.trainer.checkpoint_callback.best_model_path, checkpoint)
    new = tmp_path / "new.jsonl"
    shutil.copy(corpus / "test.jsonl", new)
    shutil.copy(corpus / "test.jsonl", tmp_path / "test.jsonl")
    shutil.rmtree(corpus)
    shutil.rmtree(encoder)
    shutil.rmtree(tmp_path / "runs")
    (tmp_path / "only-test").mkdir()
    shutil.move(tmp_path / "test.jsonl", tmp_path / "only-test" / "test.jsonl")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    out = elsewhere / "p.jsonl"
    done = fresh_process(
        [
            "predict",
            "--ckpt_path",
            str(checkpoint),
            "--data.predict_file",
            str(new),
            "--predictions.output_path",
            str(out),
        ],
        elsewhere,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 30 and all(sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-4) for r in rows)
    gold = sum(r["label"] == r["true_labels"][0] for r in rows) / len(rows)
    (job,) = [p.name for p in (elsewhere / "runs").iterdir() if p.name != "wandb"]
    assert job.endswith("-corpus")  # filed under the data the model was trained on, not the default dataset

    done = fresh_process(
        ["test", "--ckpt_path", str(checkpoint), "--data.dataset", str(tmp_path / "only-test")], elsewhere
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (metrics,) = elsewhere.glob("runs/*/version_*/metrics.csv")
    logged = next(row for row in csv.DictReader(metrics.open()) if row.get("test_macro_f1"))
    assert float(logged["test_macro_f1"]) == pytest.approx(score, abs=1e-6)
    accuracy = fitted.trainer.callback_metrics["test_accuracy"].item()
    assert gold == pytest.approx(accuracy, abs=1e-6)  # predict labels the same documents as test scored


def test_a_checkpoint_from_before_the_assets_is_read_the_old_way(tiny_corpus_dir, tiny_encoder_dir, tmp_path, caplog):
    args = [*tiny_args(tiny_corpus_dir, tiny_encoder_dir), "--trainer.max_epochs", "1", "--wandb", "false"]
    fitted = main(["fit", *args, "--model.init_args.num_topics", "8"])
    saved = torch.load(fitted.trainer.checkpoint_callback.best_model_path, weights_only=True)
    for state in saved.values():
        if isinstance(state, dict):
            state.pop(STATE_KEY, None)
    old = tmp_path / "old.ckpt"
    torch.save(saved, old)
    tested = main(["test", *args, "--model.init_args.num_topics", "8", "--ckpt_path", str(old)])
    assert "predates self-contained checkpoints" in caplog.text
    assert tested.trainer.callback_metrics["test_macro_f1"].item() == pytest.approx(
        fitted.trainer.callback_metrics["test_macro_f1"].item(), abs=1e-6
    )
