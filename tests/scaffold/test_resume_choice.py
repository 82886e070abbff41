"""``--ckpt_path last`` resumes only an unfinished run of the same job; one run, one folder."""

import json
import shutil
import threading

import pytest

from cli import main
from datamodules.formats import DataError
from lightning_modules.base import CheckpointMismatchError
from scaffold.resume import RunFinishedError, allocate_version, config_fingerprint
from tests.conftest import ROOT, make_split, write_corpus

KILL = ["--trainer.callbacks+=tests.test_resume.KillAt", "--trainer.callbacks.step=12"]


def args(corpus, *extra) -> list[str]:
    return [
        *("--config", str(ROOT / "configs/students/logreg.yaml"), "--data.dataset", str(corpus)),
        *("--data.dev_size", "0.2", "--data.min_freq", "2", "--data.batch_size", "8"),
        *("--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false", "--wandb", "false"),
        *("--run.name", "job", "--resume.every_n_train_steps", "4"),
        *extra,
    ]


def results(tmp_path, version: str) -> dict:
    return json.loads((tmp_path / "runs/job" / version / "results.json").read_text())


def resumed_from(cli) -> str | None:
    return cli.config_init["fit"]["ckpt_path"]


def killed_run(corpus) -> None:
    with pytest.raises(RuntimeError, match="simulated kill"):
        main(["fit", *args(corpus, *KILL)])


def test_a_finished_run_is_reported_and_leaves_no_empty_folder(tmp_path, tiny_corpus_dir):
    main(["fit", *args(tiny_corpus_dir)])
    with pytest.raises(RunFinishedError, match=r"version_0 already finished.*leaving out --ckpt_path last"):
        main(["fit", *args(tiny_corpus_dir, "--ckpt_path", "last")])
    assert sorted(p.name for p in (tmp_path / "runs/job").iterdir()) == ["version_0"]


def test_a_run_of_other_data_is_never_picked(tmp_path, tiny_corpus_dir):
    killed_run(tiny_corpus_dir)
    (tmp_path / "other").mkdir()
    other = write_corpus(tmp_path / "other", make_split, seed=5, train=90, test=30)
    cli = main(["fit", *args(other, "--ckpt_path", "last")])
    assert resumed_from(cli) is None and results(tmp_path, "version_1")["optimizer_steps"] == 18
    assert results(tmp_path, "version_1")["dataset"] == other.name


def test_a_killed_run_is_marked_failed_then_resumed(tmp_path, tiny_corpus_dir):
    killed_run(tiny_corpus_dir)
    failed = results(tmp_path, "version_0")
    assert failed["status"] == "failed" and failed["error"] == "RuntimeError: simulated kill"
    cli = main(["fit", *args(tiny_corpus_dir, "--ckpt_path", "last")])
    assert resumed_from(cli).endswith("version_0/checkpoints/last.ckpt")
    assert results(tmp_path, "version_1")["status"] == "complete"
    assert results(tmp_path, "version_1")["config_fingerprint"] == failed["config_fingerprint"]


def test_a_corrupt_newest_checkpoint_gives_way_to_the_previous_good_one(tmp_path, tiny_corpus_dir, caplog):
    killed_run(tiny_corpus_dir)
    job = tmp_path / "runs/job"
    shutil.copytree(job / "version_0", job / "version_1")
    last = job / "version_1/checkpoints/last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # truncated, and now the newest
    cli = main(["fit", *args(tiny_corpus_dir, "--ckpt_path", "last")])
    assert resumed_from(cli).endswith("version_0/checkpoints/last.ckpt")
    assert "cannot be read" in caplog.text
    for version in ("version_0", "version_1"):
        (job / version / "checkpoints/last.ckpt").write_bytes(b"not a checkpoint")
    (job / "version_2/results.json").unlink()  # the resumed run, made unfinished and unreadable too
    shutil.rmtree(job / "version_2/checkpoints")
    with pytest.raises(DataError, match=r"Every last\.ckpt of this job is unreadable"):
        main(["fit", *args(tiny_corpus_dir, "--ckpt_path", "last")])


def test_concurrent_runs_of_one_job_get_distinct_folders(tmp_path):
    names: list[str] = []
    threads = [threading.Thread(target=lambda: names.append(allocate_version(tmp_path / "job"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(names, key=lambda n: int(n[8:])) == [f"version_{n}" for n in range(8)]


def test_the_fingerprint_ignores_where_and_how_loudly_a_run_works_not_what_it_computes():
    config = {"seed_everything": 1, "model": {"init_args": {"lr": 0.1}}, "trainer": {"max_epochs": 2}, "data": {}}
    base = config_fingerprint(config, "corpus")
    moved = config | {"run": {"root": "/elsewhere"}, "ckpt_path": "last", "wandb": False}
    moved["trainer"] = {"max_epochs": 2, "enable_progress_bar": False, "callbacks": ["x"]}
    moved["data"] = {"data_dir": "/data", "num_workers": 4}
    assert config_fingerprint(moved, "corpus") == base
    assert config_fingerprint(config | {"seed_everything": 2}, "corpus") != base
    assert config_fingerprint(config | {"model": {"init_args": {"lr": 0.2}}}, "corpus") != base
    assert config_fingerprint(config, "other corpus") != base


def test_a_run_refused_before_training_leaves_no_empty_folder(tmp_path, tiny_corpus_dir, tiny_encoder_dir):
    main(["fit", *args(tiny_corpus_dir)])
    checkpoint = next((tmp_path / "runs/job/version_0/checkpoints").glob("epoch*.ckpt"))
    wrong_task = [*args(tiny_corpus_dir), "--model", "lightning_modules.KimCNNStudent"]
    wrong_task += ["--data.tokenizer", str(tiny_encoder_dir), "--data.max_length", "32"]
    with pytest.raises(CheckpointMismatchError, match="LogRegStudent"):
        main(["fit", *wrong_task, "--ckpt_path", str(checkpoint)])
    assert sorted(p.name for p in (tmp_path / "runs/job").iterdir()) == ["version_0"]
