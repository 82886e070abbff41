"""Distillation from the CLI on tiny data: teacher fit -> predict the transfer set -> student fit -> test."""

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from callbacks.teacher_logits import TeacherLogitsWriter
from cli import main
from datamodules.corpus import DataError
from datamodules.teacher import TeacherLogits
from tests.conftest import ROOT, tiny_args

TRAIN_DOCS = 72  # 90 tiny training documents less the 20% dev split
COPIES = 1


@dataclass
class Teacher:
    logits: Path
    checkpoint: str


def data_args(corpus_dir, encoder_dir) -> list[str]:
    return [
        "--data.dataset",
        str(corpus_dir),
        "--data.tokenizer",
        str(encoder_dir),
        "--data.max_length",
        "32",
        "--data.min_freq",
        "2",
        "--data.dev_size",
        "0.2",
        "--data.batch_size",
        "8",
        "--data.augmentation.copies",
        str(COPIES),
        "--trainer.enable_progress_bar",
        "false",
    ]


@pytest.fixture(scope="module")
def teacher(tiny_corpus_dir, tiny_encoder_dir, tmp_path_factory) -> Teacher:
    """A tiny TopicBERT teacher and its soft targets for the training split plus one augmented copy."""
    home = tmp_path_factory.mktemp("teacher")
    args = [*tiny_args(tiny_corpus_dir, tiny_encoder_dir), "--model.init_args.num_topics", "8"]
    previous = os.getcwd()
    os.chdir(home)
    try:
        fitted = main(["fit", *args, "--trainer.max_epochs", "1", "--test_after_fit", "false"])
        checkpoint = str(home / fitted.trainer.checkpoint_callback.last_model_path)
        predicted = main(
            [
                "predict",
                *args,
                "--config",
                str(ROOT / "configs/distill/teacher.yaml"),
                "--data.augmentation.copies",
                str(COPIES),
                "--ckpt_path",
                checkpoint,
            ]
        )
    finally:
        os.chdir(previous)
    logits = home / "runs/distill/r8-teacher-logits.npz"  # the path configs/distill/teacher.yaml names
    writer = next(c for c in predicted.trainer.callbacks if isinstance(c, TeacherLogitsWriter))
    assert (home / writer.written).resolve() == logits.resolve()
    return Teacher(logits, checkpoint)


def test_teacher_writes_logits_for_every_transfer_document(teacher, tiny_corpus_dir, tiny_encoder_dir):
    saved = TeacherLogits.load(teacher.logits)
    train_ids = {json.loads(line)["id"] for line in (tiny_corpus_dir / "train.jsonl").read_text().splitlines()}
    originals = [i for i in saved.ids if "#aug" not in i]
    assert len(saved.ids) == len(set(saved.ids)) == TRAIN_DOCS * (1 + COPIES)
    assert len(originals) == TRAIN_DOCS and set(originals) <= train_ids
    assert {f"{i}#aug1" for i in originals} == set(saved.ids) - set(originals)
    assert saved.logits.shape == (len(saved.ids), 3) and saved.label_names == ["finance", "science", "sport"]
    np.testing.assert_allclose(np.exp(saved.logits).sum(1), 1.0, atol=1e-4)  # log-probabilities
    assert saved.split == "transfer" and saved.teacher["model"] == "TopicBERT-16"
    assert saved.teacher["checkpoint"] == Path(teacher.checkpoint).name
    assert len(saved.teacher["checkpoint_sha256"]) == 16
    assert saved.teacher["encoder"] == str(tiny_encoder_dir)  # the name it was trained with, not its cached copy
    assert saved.teacher["labelling_time_s"] > 0


@pytest.mark.parametrize("student", ["bilstm", "kimcnn", "logreg"])
def test_student_fits_on_teacher_logits_then_tests_from_its_checkpoint(
    student, teacher, tiny_corpus_dir, tiny_encoder_dir
):
    args = [
        "--config",
        str(ROOT / f"configs/students/{student}.yaml"),
        "--config",
        str(ROOT / "configs/distill/student.yaml"),
        *data_args(tiny_corpus_dir, tiny_encoder_dir),
        "--data.teacher_logits",
        str(teacher.logits),
    ]
    if student == "logreg":
        args += ["--data.tokenizer", "null"]
    fitted = main(["fit", *args, "--trainer.max_epochs", "2", "--trainer.log_every_n_steps", "1"])
    metrics = fitted.trainer.callback_metrics
    logged = list(csv.DictReader((Path(fitted.trainer.log_dir) / "metrics.csv").open()))
    kd = [float(row["train_kd"]) for row in logged if row.get("train_kd")]
    assert len(kd) == 2 * 18 and min(kd) >= 0  # every step of both epochs
    assert 0 <= metrics["test_macro_f1"] <= 1
    results = json.loads((Path(fitted.trainer.log_dir) / "results.json").read_text())
    assert results["status"] == "complete" and results["model"] == f"KD-{fitted.model.__class__.__name__[:-7]}"
    assert results["docs_per_epoch"] == TRAIN_DOCS * (1 + COPIES)  # the transfer set, not the training split

    best = fitted.trainer.checkpoint_callback.best_model_path
    again = main(["test", *args, "--ckpt_path", best])
    assert again.trainer.callback_metrics["test_macro_f1"] == pytest.approx(metrics["test_macro_f1"].item(), abs=1e-6)


def test_student_without_teacher_trains_on_labels_alone(tiny_corpus_dir, tiny_encoder_dir):
    fitted = main(
        [
            "fit",
            "--config",
            str(ROOT / "configs/students/kimcnn.yaml"),
            *data_args(tiny_corpus_dir, tiny_encoder_dir),
            "--trainer.max_epochs",
            "1",
            "--trainer.log_every_n_steps",
            "1",
        ]
    )
    logged = (Path(fitted.trainer.log_dir) / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "train_kd" not in logged and "train_loss" in logged
    results = json.loads((Path(fitted.trainer.log_dir) / "results.json").read_text())
    assert results["model"] == "KimCNN" and results["docs_per_epoch"] == TRAIN_DOCS


@pytest.mark.parametrize(
    "override, message",
    [
        (["--data.augmentation.seed", "7"], "computed for other documents"),
        (["--data.dev_size", "0.3"], "computed for other documents"),
    ],
)
def test_student_refuses_logits_of_other_data(override, message, teacher, tiny_corpus_dir, tiny_encoder_dir):
    args = [
        "fit",
        "--config",
        str(ROOT / "configs/students/kimcnn.yaml"),
        "--config",
        str(ROOT / "configs/distill/student.yaml"),
        *data_args(tiny_corpus_dir, tiny_encoder_dir),
        "--data.teacher_logits",
        str(teacher.logits),
        "--trainer.max_epochs",
        "1",
        *override,
    ]
    with pytest.raises(DataError, match=message):
        main(args)


def test_student_refuses_a_missing_logits_file(tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    args = [
        "fit",
        "--config",
        str(ROOT / "configs/students/kimcnn.yaml"),
        "--config",
        str(ROOT / "configs/distill/student.yaml"),
        *data_args(tiny_corpus_dir, tiny_encoder_dir),
        "--data.teacher_logits",
        str(tmp_path / "absent.npz"),
    ]
    with pytest.raises(DataError, match=r"Write them with `python cli\.py predict`"):
        main(args)
