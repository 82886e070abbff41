"""Refitting or resuming a run folder that an interrupted attempt left behind."""

import json
from pathlib import Path

import torch

from reports.runs import is_finished, run_fit
from tests.conftest import tiny_args
from tests.test_resume import comparable


def test_a_refit_clears_what_an_unfinished_attempt_left(tmp_path):
    folder = tmp_path / "study/arm/seed1"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints/best.ckpt").write_bytes(b"stale")
    (folder / "emissions.csv").write_text("timestamp,duration\n2026-12-01,1.5\n")
    (folder / "results.json").write_text(json.dumps({"status": "failed", "optimizer_steps": 5}))
    assert not is_finished(folder)

    code, _ = run_fit(folder, [str(tmp_path / "missing.yaml")], [])

    assert code != 0  # the config does not exist: cli.py refuses before fitting
    assert not (folder / "checkpoints").exists() and not (folder / "emissions.csv").exists()
    assert not (folder / "results.json").exists()
    assert "missing.yaml" in folder.with_name("seed1.log").read_text()


def test_a_stopped_run_is_resumed_from_its_last_checkpoint(tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    """A study's run killed mid-way goes on from its ``last.ckpt`` and ends as an unstopped one does."""
    config, *arguments = tiny_args(tiny_corpus_dir, tiny_encoder_dir)[1:]
    arguments += ["--model.init_args.num_topics", "8", "--resume.every_n_train_steps", "4"]
    straight, stopped = tmp_path / "straight/arm/seed1", tmp_path / "stopped/arm/seed1"
    assert run_fit(straight, [config], arguments)[0] == 0
    kill = ["--trainer.callbacks+=tests.test_resume.KillAt", "--trainer.callbacks.step=9"]
    assert run_fit(stopped, [config], [*arguments, *kill])[0] != 0
    assert torch.load(stopped / "checkpoints/last.ckpt", weights_only=False)["global_step"] == 8

    assert run_fit(stopped, [config], arguments)[0] == 0

    kept = stopped.with_name("seed1.stopped-1")
    assert (kept / "checkpoints/last.ckpt").is_file()  # the stopped attempt is kept whole, aside
    assert is_finished(stopped) and not is_finished(kept, ("fit", "complete"))
    a, b = (json.loads((f / "results.json").read_text()) for f in (straight, stopped))
    assert comparable(b) == comparable(a)
    assert len(b["machine_fp32_tflops_segments"]) == 2 and b["time_total_s"] > 0
    assert Path(b["best_checkpoint"]).is_file()  # may lie in the kept attempt: that is why it is kept
    log = stopped.with_name("seed1.log").read_text()
    assert "simulated kill" in log and "Resuming from" in log  # one log, both parts
