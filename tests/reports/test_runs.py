"""Refitting or resuming a run folder that an interrupted attempt left behind."""

import json
from pathlib import Path

import torch

from reports.runs import is_finished, run_fit, set_aside
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


def test_a_stopped_attempts_checkpoints_go_on_with_the_run(tmp_path):
    """The restored checkpoint callback names its best file by its path in the run's folder, so a
    best saved before the stop must still be there once the attempt is set aside (a study's resumed
    run failed its test on this)."""
    folder, best = tmp_path / "study/arm/seed1", "epoch3-val_macro_f10.9716.ckpt"
    (folder / "checkpoints").mkdir(parents=True)
    for name in ("last.ckpt", best):
        (folder / "checkpoints" / name).write_bytes(name.encode())
    (folder / "metrics.csv").write_text("epoch\n3\n")

    assert set_aside(folder)

    assert sorted(p.name for p in folder.iterdir()) == ["checkpoints"]
    assert (folder / "checkpoints" / best).read_bytes() == best.encode()
    assert (folder / "checkpoints/last.ckpt").read_bytes() == b"last.ckpt"
    kept = folder.with_name("seed1.stopped-1")
    assert (kept / "metrics.csv").read_text() == "epoch\n3\n" and not list(kept.rglob("*.ckpt"))
    assert set_aside(folder) and folder.with_name("seed1.stopped-2").is_dir()  # a second stop, beside
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == sorted([best, "last.ckpt"])


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
    assert kept.is_dir() and not list(kept.rglob("*.ckpt"))  # its checkpoints went on with the run
    assert is_finished(stopped) and not is_finished(kept, ("fit", "complete"))
    a, b = (json.loads((f / "results.json").read_text()) for f in (straight, stopped))
    assert comparable(b) == comparable(a)
    assert len(b["machine_fp32_tflops_segments"]) == 2 and b["time_total_s"] > 0
    assert Path(b["best_checkpoint"]).is_file() and Path(b["best_checkpoint"]).parent == stopped / "checkpoints"
    log = stopped.with_name("seed1.log").read_text()
    assert "simulated kill" in log and "Resuming from" in log  # one log, both parts
