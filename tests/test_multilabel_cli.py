"""Multi-label from the CLI on a tiny corpus: fit -> test -> predict, and every model on multi-hot data."""

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score
from sklearn.preprocessing import MultiLabelBinarizer

from callbacks.prediction_writer import PredictionWriter
from cli import main
from datamodules.teacher import TeacherLogits
from lightning_modules.thresholds import GRID
from tests.conftest import ROOT, nvdm_args, tiny_args

LABELS = ["finance", "science", "sport"]


@dataclass
class Fitted:
    cli: object
    best: str
    args: list[str]


@pytest.fixture(scope="module")
def fitted(tiny_multilabel_dir, tiny_encoder_dir, tmp_path_factory) -> Fitted:
    """TopicBERT on the tiny multi-label corpus with per-label thresholds tuned on dev."""
    home = tmp_path_factory.mktemp("multilabel")
    args = [
        *tiny_args(tiny_multilabel_dir, tiny_encoder_dir),
        "--model.init_args.num_topics",
        "8",
        "--model.init_args.threshold_tuning",
        "per_class",
    ]
    previous = os.getcwd()
    os.chdir(home)
    try:
        cli = main(["fit", *args, "--model.init_args.head_lr", "3e-3", "--trainer.max_epochs", "3"])
    finally:
        os.chdir(previous)
    return Fitted(cli, str(home / cli.trainer.checkpoint_callback.best_model_path), args)


def test_multi_label_is_linked_from_the_data_and_trains_with_bce(fitted):
    model = fitted.cli.model
    assert fitted.cli.datamodule.multi_label and model.multi_label and model.hparams.multi_label
    batch = next(iter(fitted.cli.datamodule.train_dataloader()))
    assert batch["labels"].shape[-1] == 3 and (batch["labels"].sum(-1) == 2).any()  # multi-hot targets
    metrics = fitted.cli.trainer.callback_metrics
    assert metrics["test_micro_f1"] > 0.6 and {"test_macro_f1", "test_accuracy"} <= set(metrics)


def test_tuned_thresholds_are_saved_with_the_checkpoint_and_used_by_test(fitted):
    saved = torch.load(fitted.best, weights_only=True)["decision_thresholds"]
    assert len(saved) == 3
    assert all(any(abs(t - g) < 1e-6 for g in GRID.tolist()) for t in saved)
    again = main(["test", *fitted.args, "--ckpt_path", fitted.best])
    torch.testing.assert_close(again.model.decision_thresholds, torch.tensor(saved))
    assert again.trainer.callback_metrics["test_micro_f1"] == pytest.approx(
        fitted.cli.trainer.callback_metrics["test_micro_f1"].item(), abs=1e-6
    )


def test_predict_writes_label_sets_that_score_like_test(fitted):
    predicted = main(["predict", *fitted.args, "--ckpt_path", fitted.best])
    writer = next(c for c in predicted.trainer.callbacks if isinstance(c, PredictionWriter))
    rows = [json.loads(line) for line in writer.written.read_text().splitlines()]
    assert len(rows) == 40
    thresholds = dict(zip(LABELS, predicted.model.decision_thresholds.tolist(), strict=True))
    for row in rows:
        assert set(row["probabilities"]) == set(LABELS)
        assert set(row["labels"]) == {n for n, p in row["probabilities"].items() if p >= thresholds[n]}
        assert [row["probabilities"][n] for n in row["labels"]] == sorted(
            (row["probabilities"][n] for n in row["labels"]), reverse=True
        )
    binarize = MultiLabelBinarizer(classes=LABELS)
    gold = binarize.fit_transform([r["true_labels"] for r in rows])
    pred = binarize.transform([r["labels"] for r in rows])
    test = fitted.cli.trainer.callback_metrics
    assert f1_score(gold, pred, average="micro") == pytest.approx(test["test_micro_f1"].item(), abs=1e-5)
    assert f1_score(gold, pred, average="macro", zero_division=0) == pytest.approx(
        test["test_macro_f1"].item(), abs=1e-5
    )


def test_bert_baseline_and_nvdm_run_on_multi_label_data(tiny_multilabel_dir, tiny_encoder_dir):
    bert = main(
        ["fit", *tiny_args(tiny_multilabel_dir, tiny_encoder_dir, "configs/bert.yaml"), "--trainer.max_epochs", "1"]
    )
    assert bert.model.multi_label and 0.0 <= bert.trainer.callback_metrics["test_accuracy"] <= 1.0
    nvdm = main(
        [
            "fit",
            *nvdm_args(tiny_multilabel_dir),
            "--trainer.max_epochs",
            "1",
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    assert torch.isfinite(nvdm.trainer.callback_metrics["test_perplexity"])


@pytest.mark.parametrize("student", ["kimcnn", "logreg"])
def test_students_train_on_multi_label_data(student, tiny_multilabel_dir, tiny_encoder_dir):
    args = [
        "--config",
        str(ROOT / f"configs/students/{student}.yaml"),
        "--data.dataset",
        str(tiny_multilabel_dir),
        "--data.dev_size",
        "0.2",
        "--data.min_freq",
        "2",
        "--data.batch_size",
        "8",
        "--trainer.max_epochs",
        "2",
        "--trainer.enable_progress_bar",
        "false",
        "--model.init_args.threshold_tuning",
        "global",
    ]
    args += ["--data.tokenizer", "null"] if student == "logreg" else ["--data.tokenizer", str(tiny_encoder_dir)]
    fitted = main(["fit", *args])
    assert fitted.model.multi_label
    thresholds = fitted.model.decision_thresholds
    assert torch.all(thresholds == thresholds[0])  # one global threshold
    assert 0.0 <= fitted.trainer.callback_metrics["test_micro_f1"] <= 1.0
    assert Path(fitted.trainer.log_dir, "results.json").is_file()


@pytest.fixture(scope="module")
def multi_label_logits(fitted, tmp_path_factory) -> Path:
    """The multi-label teacher's soft targets for the training split and one augmented copy."""
    path = tmp_path_factory.mktemp("multilabel_kd") / "teacher-logits.npz"
    distill = ["--config", str(ROOT / "configs/distill/teacher.yaml"), "--data.augmentation.copies", "1"]
    output = ["--trainer.callbacks.init_args.output_path", str(path)]
    main(["predict", *fitted.args, *distill, *output, "--ckpt_path", fitted.best])
    return path


def test_a_multi_label_teacher_writes_per_label_log_odds_and_its_dev_score(multi_label_logits, fitted):
    saved = TeacherLogits.load(multi_label_logits)
    assert saved.multi_label and saved.label_names == LABELS and saved.split == "transfer"
    assert saved.logits.shape == (2 * 96, 3)  # 96 training documents after the dev split, and one copy each
    probabilities = 1 / (1 + np.exp(-saved.logits))
    assert not np.allclose(probabilities.sum(1), 1.0)  # independent sigmoids, not a softmax
    assert saved.teacher["dev_macro_f1"] == pytest.approx(
        fitted.cli.trainer.checkpoint_callback.best_model_score.item(), abs=1e-6
    )


@pytest.mark.parametrize("student", ["bilstm", "kimcnn", "logreg"])
def test_students_distil_a_multi_label_teacher_with_per_label_thresholds(
    student, multi_label_logits, tiny_multilabel_dir, tiny_encoder_dir
):
    """The Reuters study's student runs (configs/students/reuters.yaml's recipe) on tiny data."""
    args = [
        *("--config", str(ROOT / f"configs/students/{student}.yaml")),
        *("--config", str(ROOT / "configs/distill/student.yaml")),
        *("--data.dataset", str(tiny_multilabel_dir), "--data.dev_size", "0.2", "--data.min_freq", "2"),
        *("--data.tokenizer", "null" if student == "logreg" else str(tiny_encoder_dir)),
        *("--data.batch_size", "8", "--data.augmentation.copies", "1"),
        *("--data.teacher_logits", str(multi_label_logits), "--model.init_args.threshold_tuning", "per_class"),
        *("--trainer.max_epochs", "1", "--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false"),
    ]
    fitted = main(["fit", *args])
    assert fitted.model.multi_label and fitted.model.kd_weight == 1.0  # BCE against the sigmoids
    logged = list(csv.DictReader((Path(fitted.trainer.log_dir) / "metrics.csv").open()))
    assert len([row for row in logged if row.get("train_kd")]) == 2 * 96 // 8  # every step of the transfer set
    results = json.loads((Path(fitted.trainer.log_dir) / "results.json").read_text())
    assert results["status"] == "complete" and results["model"].startswith("KD-")
    assert 0 <= results["test_micro_f1"] <= 1 and len(fitted.model.decision_thresholds) == 3
