"""Carrying a checkpoint forward from a study: by dev macro-F1 only, finished runs only."""

import json

import pytest

from reports.best_run import best_run


def write_run(folder, model, dev, test, status="complete"):
    folder.mkdir(parents=True)
    results = {"model": model, "seed": 1, "best_val_macro_f1": dev, "test_macro_f1": test, "status": status}
    results["best_checkpoint"] = str(folder / "best.ckpt")
    (folder / "results.json").write_text(json.dumps(results))


def test_the_best_dev_run_is_chosen_whatever_the_test_scores(tmp_path, capsys):
    write_run(tmp_path / "TopicBERT-512/seed1", "TopicBERT-512", dev=0.95, test=0.90)
    write_run(tmp_path / "TopicBERT-64/seed1", "TopicBERT-64", dev=0.94, test=0.99)
    write_run(tmp_path / "TopicBERT-128/seed1", "TopicBERT-128", dev=0.99, test=0.99, status="failed")
    write_run(tmp_path / "BERT-512/seed1", "BERT-512", dev=0.97, test=0.99)
    out = tmp_path / "choice.json"
    chosen = best_run(str(tmp_path), model="TopicBERT-*", out=str(out))
    assert chosen == str(tmp_path / "TopicBERT-512/seed1/best.ckpt")
    assert capsys.readouterr().out.strip() == chosen
    record = json.loads(out.read_text())
    assert [c["model"] for c in record["candidates"]] == ["TopicBERT-512", "TopicBERT-64"]
    assert "test_macro_f1" not in json.dumps(record)


def test_no_finished_match_names_the_fix_and_writes_nothing(tmp_path):
    write_run(tmp_path / "BERT-512/seed1", "BERT-512", dev=0.97, test=0.99)
    with pytest.raises(SystemExit, match="finish the study first"):
        best_run(str(tmp_path), model="TopicBERT-*", out=str(tmp_path / "choice.json"))
    assert not (tmp_path / "choice.json").exists()


def test_the_copy_of_results_json_that_wandb_keeps_is_not_a_second_candidate(tmp_path):
    write_run(tmp_path / "TopicBERT-512/config/seed1", "TopicBERT-512", dev=0.95, test=0.90)
    copy = tmp_path / "TopicBERT-512/wandb/offline-run-1/files"
    copy.mkdir(parents=True)
    (copy / "results.json").write_text((tmp_path / "TopicBERT-512/config/seed1/results.json").read_text())
    best_run(str(tmp_path), model="TopicBERT-*", out=str(tmp_path / "choice.json"))
    record = json.loads((tmp_path / "choice.json").read_text())
    assert [c["run"] for c in record["candidates"]] == [str(tmp_path / "TopicBERT-512/config/seed1")]
