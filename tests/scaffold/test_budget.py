"""One training budget per comparison: what ``--budget`` sets, and what results.json says was consumed."""

import json

import numpy as np
import pytest
from lightning.pytorch.callbacks import EarlyStopping

from cli import main
from datamodules.documents import document_sample
from scaffold.budget import Budget, BudgetError
from tests.conftest import ROOT, job_folder, tiny_args
from utils.predictions import DocumentPredictions


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "one of"),
        ({"epochs": 1, "steps": 10}, "one of"),
        ({"epochs": 1.5}, "whole number"),
        ({"steps": 25, "evaluations": 10}, "multiple"),
        ({"steps": -10}, "positive"),
    ],
)
def test_a_budget_that_cannot_be_carried_out_is_refused(kwargs, message):
    with pytest.raises(BudgetError, match=message):
        Budget(**kwargs)


def test_steps_budget_fixes_steps_and_evenly_spaced_evaluations():
    trainer = {"max_epochs": 20, "limit_train_batches": 0.3}
    assert Budget(steps=120, evaluations=4).apply(trainer, train_documents=500) == 1.0
    assert trainer == {
        "max_epochs": -1,
        "max_steps": 120,
        "check_val_every_n_epoch": None,
        "val_check_interval": 30,
        "limit_train_batches": None,
    }


@pytest.mark.parametrize(
    ("budget", "epochs", "fraction"),
    [
        (Budget(epochs=0.3), 1, 0.3),
        (Budget(epochs=2), 2, 1.0),
        (Budget(documents=150), 1, 0.3),
        (Budget(documents=1000), 2, 1.0),
    ],
)
def test_epochs_and_documents_budgets_become_epochs_over_a_share_of_documents(budget, epochs, fraction):
    trainer: dict = {}
    assert budget.apply(trainer, train_documents=500) == pytest.approx(fraction)
    assert trainer["max_epochs"] == epochs and trainer["max_steps"] == -1


def test_documents_that_are_no_whole_number_of_epochs_are_refused():
    with pytest.raises(BudgetError, match="multiple"):
        Budget(documents=750).apply({}, train_documents=500)
    with pytest.raises(BudgetError, match="once per epoch"):
        Budget(epochs=2, evaluations=4).apply({}, train_documents=500)


def test_budget_arguments_round_trip():
    assert Budget(steps=1560, evaluations=10).arguments() == ["--budget.steps", "1560", "--budget.evaluations", "10"]
    assert Budget(epochs=0.3).arguments() == ["--budget.epochs", "0.3"]


def test_a_document_sample_keeps_every_partition_of_its_documents():
    doc_index = np.repeat(np.arange(100), 3)  # three partitions per document
    examples = document_sample(doc_index, 100, 0.3, seed=7)
    chosen = np.unique(doc_index[examples])
    assert len(chosen) == 30 and len(examples) == 90
    assert np.array_equal(examples, document_sample(doc_index, 100, 0.3, seed=7))
    assert not np.array_equal(chosen, np.unique(doc_index[document_sample(doc_index, 100, 0.3, seed=8)]))
    assert document_sample(doc_index, 100, 1.0, seed=7) is None


def logreg_args(corpus_dir) -> list[str]:
    return [
        *("--config", str(ROOT / "configs/students/logreg.yaml"), "--data.dataset", str(corpus_dir)),
        *("--data.dev_size", "0.2", "--data.min_freq", "2", "--data.batch_size", "8"),
        *("--trainer.enable_progress_bar", "false", "--wandb", "false"),
    ]


def test_a_steps_budget_is_what_results_json_reports(tmp_path, tiny_corpus_dir):
    main(["fit", *logreg_args(tiny_corpus_dir), "--budget.steps", "24", "--budget.evaluations", "4"])
    folder = job_folder(tmp_path) / "version_0"
    results = json.loads((folder / "results.json").read_text())
    assert results["budget"] == "steps=24,evaluations=4"
    assert results["optimizer_steps"] == 24 and results["candidate_checkpoints"] == 4
    assert [e["step"] for e in results["evaluations"]] == [6, 12, 18, 24]
    train_docs = results["docs_per_epoch"]
    assert results["documents_seen"] == pytest.approx(24 * 8, abs=train_docs)  # the last batch of an epoch is short
    seen = [e["documents_seen"] for e in results["evaluations"]]
    times = [e["time_s"] for e in results["evaluations"]]
    assert seen == sorted(seen) and times == sorted(times) and seen[-1] == results["documents_seen"]
    best = max(e["val_macro_f1"] for e in results["evaluations"])
    first = next(e for e in results["evaluations"] if e["val_macro_f1"] >= 0.99 * best)
    assert results["steps_to_quality"] == first["step"] and results["time_to_quality_s"] == first["time_s"]
    assert results["hparams"]["lr"] == 0.5 and len(results["dev_fingerprint"]) == 16
    predictions = DocumentPredictions.load(folder / results["test_predictions"])
    assert predictions.macro_f1() == pytest.approx(results["test_macro_f1"], abs=1e-6)


def test_a_fractional_epoch_trains_on_that_share_of_documents_whatever_the_partitions(
    tmp_path, tiny_corpus_dir, tiny_encoder_dir
):
    cli = main(["fit", *tiny_args(tiny_corpus_dir, tiny_encoder_dir), "--budget.epochs", "0.5", "--wandb", "false"])
    results = json.loads((job_folder(tmp_path) / "version_0/results.json").read_text())
    train_documents = len(cli.datamodule.views.split("train"))
    assert results["budget"] == "epochs=0.5" and results["epochs"] == 1
    assert results["documents_seen"] == train_documents // 2 and results["candidate_checkpoints"] == 1


def test_an_impossible_budget_stops_before_training_with_the_fix(tmp_path, tiny_corpus_dir):
    with pytest.raises(BudgetError, match=r"budget\.steps"):
        main(["fit", *logreg_args(tiny_corpus_dir), "--budget.documents", "150"])


def test_early_stopping_is_one_flag_and_follows_the_task_metric(tmp_path, tiny_corpus_dir):
    cli = main(["fit", *logreg_args(tiny_corpus_dir), "--trainer.max_epochs", "2", "--early_stopping", "true"])
    (stopper,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, EarlyStopping)]
    assert stopper.monitor == "val_macro_f1" and stopper.mode == "max"
    cli = main(["fit", *logreg_args(tiny_corpus_dir), "--trainer.max_epochs", "1"])
    assert not any(isinstance(cb, EarlyStopping) for cb in cli.trainer.callbacks)
