"""Multi-label from the CLI on a tiny corpus: fit -> test -> predict, and every model on multi-hot data."""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from sklearn.metrics import f1_score
from sklearn.preprocessing import MultiLabelBinarizer

from callbacks.prediction_writer import PredictionWriter
from cli import main
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
