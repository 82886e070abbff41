"""A fit killed mid-epoch and resumed with ``--ckpt_path last`` ends exactly where an uninterrupted one does."""

import json
import os
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from cli import main
from datamodules.batching import LengthBucketBatchSampler
from tests.conftest import ROOT, job_folder, tiny_args
from utils.hardware import machine_id


class KillAt(pl.Callback):
    """Stands in for a kill: the process dies after ``step`` optimiser steps, saving nothing more."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("simulated kill")


class StepClock(pl.Callback):
    """The epoch clock's time source in the timed runs: it moves exactly ``seconds`` per training step
    and stands still otherwise, so the epoch times a resume must keep whole are exact and do not
    depend on what else shares the host's cores."""

    seconds = 1.0
    now = 0.0

    @classmethod
    def perf_counter(cls) -> float:
        return cls.now

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        type(self).now += self.seconds


def fit(folder, args):
    folder.mkdir(exist_ok=True)
    previous = os.getcwd()
    os.chdir(folder)
    try:
        cli = main(["fit", *args])
        cli.home = folder  # type: ignore[attr-defined]  # where its relative run folder lies
        return cli
    finally:
        os.chdir(previous)


def kill_and_resume(args: list[str], straight_home, killed_home, into_second_epoch: int = 6, straight=None):
    """An uninterrupted fit (unless given), and one killed ``into_second_epoch`` steps into its second
    epoch then resumed."""
    straight = straight or fit(straight_home, args)
    kill_at = straight.trainer.num_training_batches + into_second_epoch
    with pytest.raises(RuntimeError, match="simulated kill"):
        fit(
            killed_home, [*args, "--trainer.callbacks+=tests.test_resume.KillAt", f"--trainer.callbacks.step={kill_at}"]
        )
    return straight, fit(killed_home, [*args, "--ckpt_path", "last"]), kill_at


def assert_same_end(straight, resumed) -> None:
    assert resumed.trainer.global_step == straight.trainer.global_step
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-6, msg=name)
    for metric in ("val_macro_f1", "val_loss"):
        assert float(resumed.trainer.callback_metrics[metric]) == pytest.approx(
            float(straight.trainer.callback_metrics[metric]), abs=1e-6
        )


@pytest.fixture(scope="module")
def runs(tiny_corpus_dir, tiny_encoder_dir, tmp_path_factory):
    args = [
        *tiny_args(tiny_corpus_dir, tiny_encoder_dir),
        "--model.init_args.num_topics",
        "8",
        "--resume.every_n_train_steps",
        "4",
        "--test_after_fit",
        "false",
    ]
    home = tmp_path_factory.mktemp("killed")
    straight, resumed, kill_at = kill_and_resume(args, tmp_path_factory.mktemp("straight"), home)
    return straight, resumed, home, kill_at


TINY_EPOCH_STEPS = 17  # the tiny corpus's training batches: each of the 2 evaluations ends an epoch


@pytest.fixture(scope="module")
def timed_runs(tiny_corpus_dir, tiny_encoder_dir, tmp_path_factory):
    """Slow steps, killed mid-epoch (the last save 4 steps apart) and just after the first epoch's
    validation (the save there is the last): (straight, mid-epoch resume, post-validation resume).
    A steps budget, as the studies use: its validations save before the epoch's end hooks run."""
    args = [
        *tiny_args(tiny_corpus_dir, tiny_encoder_dir),
        *("--budget.steps", str(2 * TINY_EPOCH_STEPS), "--budget.evaluations", "2"),
        *("--model.init_args.num_topics", "8", "--resume.every_n_train_steps", "4", "--test_after_fit", "false"),
        "--trainer.callbacks+=tests.test_resume.StepClock",
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("callbacks.telemetry.time", StepClock)  # the epoch clock of every cost callback
        straight, mid, _ = kill_and_resume(args, tmp_path_factory.mktemp("straight"), tmp_path_factory.mktemp("mid"))
        _, at_validation, _ = kill_and_resume(args, None, tmp_path_factory.mktemp("val"), 1, straight=straight)
    return straight, mid, at_validation


def callback(cli, name: str):
    return next(cb for cb in cli.trainer.callbacks if type(cb).__name__ == name)


@pytest.mark.parametrize(("stop", "epoch"), [("mid_epoch", 1), ("at_validation", 0)])
def test_the_epoch_a_run_resumes_in_is_measured_whole(timed_runs, stop, epoch):
    """Its time, throughput, energy and dev score cover the steps before the stop too, as in a run
    that never stopped (the stopped run's part lies in the checkpoint). Resumed at the first epoch's
    validation, the run replays only that epoch's end."""
    straight, *resumes = timed_runs
    resumed = dict(zip(["mid_epoch", "at_validation"], resumes, strict=True))[stop]
    steps = straight.trainer.num_training_batches
    assert steps == TINY_EPOCH_STEPS  # else the budget's evaluations fall mid-epoch
    times = [callback(cli, "EpochTimer").summary()["time_epoch_s"] for cli in (straight, resumed)]
    assert len(times[1]) == len(times[0]) == 2
    # every step's time, those before the stop included, and none twice
    assert times[1][epoch] == pytest.approx(times[0][epoch], abs=1e-6) == steps * StepClock.seconds
    flows = [callback(cli, "TrainingThroughput").history[epoch] for cli in (straight, resumed)]
    assert flows[1]["docs_per_epoch"] == flows[0]["docs_per_epoch"]
    assert flows[1]["docs_per_s"] == pytest.approx(flows[0]["docs_per_s"], rel=1e-6)
    energy = callback(resumed, "EnergyTracker")
    assert sum(energy.energy_per_rank) == pytest.approx(energy.totals["energy_kwh"], rel=1e-9)  # no part left out
    scores = [callback(cli, "RunSummary").results["val_macro_f1_per_epoch"] for cli in (straight, resumed)]
    assert scores[1] == pytest.approx(scores[0], abs=1e-6) and len(scores[1]) == 2


def test_resumed_run_ends_with_the_same_weights_and_metrics(runs):
    straight, resumed, _, _ = runs
    assert_same_end(straight, resumed)


def test_a_student_resumes_with_its_ema_weights(tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    from tests.test_distill_cli import data_args

    args = [
        "--config",
        str(ROOT / "configs/students/bilstm.yaml"),
        *data_args(tiny_corpus_dir, tiny_encoder_dir),
        "--trainer.max_epochs",
        "2",
        "--resume.every_n_train_steps",
        "4",
        "--test_after_fit",
        "false",
    ]
    straight, resumed, _ = kill_and_resume(args, tmp_path / "straight", tmp_path / "killed")
    assert resumed.model.ema is not None and int(resumed.model.ema.n_averaged) == straight.trainer.global_step
    assert_same_end(straight, resumed)


def test_resume_reads_the_last_checkpoint_of_the_killed_run(runs):
    _, _, home, kill_at = runs
    versions = sorted(p.name for p in (job_folder(home)).iterdir())
    assert versions == ["version_0", "version_1"]  # the killed run's folder is kept, the resume logs anew
    folder = job_folder(home) / "version_0/checkpoints"
    assert [p.name for p in folder.glob("last*")] == ["last.ckpt"]  # one file, shared by both checkpoint callbacks
    killed = torch.load(folder / "last.ckpt", weights_only=False)
    assert killed["global_step"] == (kill_at - 1) // 4 * 4  # the last save before the kill
    per_epoch = kill_at - 6  # the kill was 6 steps into the second epoch
    (position,) = killed["loops"]["fit_loop"]["state_dict"]["combined_loader"]  # the train loader's own state
    assert position == {"epoch": 1, "batches_done": killed["global_step"] - per_epoch}
    assert set(killed["DocumentDataModule"]) == {"label_names", "inference_assets"}  # no position: the loader's own
    assert any("random_states" in state for state in killed["callbacks"].values())


def test_time_and_energy_totals_carry_over(runs):
    import csv

    straight, resumed, home, _ = runs
    timer = next(cb for cb in resumed.trainer.callbacks if type(cb).__name__ == "EpochTimer")
    summary = timer.summary()
    assert summary["epochs"] == straight.trainer.max_epochs  # the killed run's first epoch counts
    assert summary["time_total_s"] > timer.earlier_s > 0  # and so does its training time
    killed_speed, resumed_speed = summary["machine_fp32_tflops_segments"]  # each part's machine, this one last
    assert resumed_speed == summary["machine_fp32_tflops"] and killed_speed > 0
    assert summary["machine_ids"] == [machine_id(), machine_id()]  # both parts ran here
    killed = job_folder(home) / "version_0"
    first_epoch = max(
        float(row["energy_kwh_total"])
        for row in csv.DictReader((killed / "metrics.csv").open())
        if row.get("energy_kwh_total")
    )
    saved = torch.load(killed / "checkpoints/last.ckpt", weights_only=False)["callbacks"]["EnergyTracker"]
    assert saved["totals"]["energy_kwh"] == pytest.approx(first_epoch, rel=1e-6)  # the ended epoch
    assert saved["in_epoch"]["energy"] > 0  # and the part of epoch 2 before the kill, which counts too
    tracker = next(cb for cb in resumed.trainer.callbacks if type(cb).__name__ == "EnergyTracker")
    assert tracker.totals["energy_kwh"] > saved["totals"]["energy_kwh"] + saved["in_epoch"]["energy"]


def test_sampler_skips_the_batches_done_in_the_resumed_epoch_only():
    sampler = LengthBucketBatchSampler(np.arange(40), 4, shuffle=True, seed=1)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.resume(epoch=2, batches_done=3)
    assert list(sampler) == full[3:]
    assert list(sampler) == full  # only the first pass after a resume skips
    sampler.resume(epoch=1, batches_done=3)  # saved at the end of epoch 1: epoch 2 runs whole
    assert list(sampler) == full


def test_epochs_draw_different_batch_orders_through_lightning():
    from lightning.fabric.utilities.data import _set_sampler_epoch
    from torch.utils.data import DataLoader

    sampler = LengthBucketBatchSampler(np.arange(40), 4, shuffle=True, seed=1)
    loader = DataLoader(list(range(40)), batch_sampler=sampler)
    _set_sampler_epoch(loader, 0)
    first = [b.tolist() for b in loader]
    _set_sampler_epoch(loader, 1)
    assert [b.tolist() for b in loader] != first


class PoisonBatches(pl.Callback):
    """Makes the topic model's input NaN for the given steps, so their loss is NaN."""

    def __init__(self, steps: list[int]):
        self.steps = steps

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step in self.steps:
            batch["bow"].fill_(float("nan"))


def poisoned_fit(home, tiny_corpus_dir, tiny_encoder_dir, steps, *extra):
    args = [
        *tiny_args(tiny_corpus_dir, tiny_encoder_dir),
        "--model.init_args.num_topics",
        "8",
        "--resume.every_n_train_steps",
        "2",
        "--test_after_fit",
        "false",
        "--trainer.callbacks+=tests.test_resume.PoisonBatches",
        f"--trainer.callbacks.steps={steps}",
        *extra,
    ]
    return fit(home, args)


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    from callbacks.nonfinite import NonFiniteLossError

    with pytest.raises(NonFiniteLossError, match=r"Loss is nan at step 5 .*learning rate.*--ckpt_path last"):
        poisoned_fit(tmp_path, tiny_corpus_dir, tiny_encoder_dir, [5])
    last = torch.load(job_folder(tmp_path) / "version_0/checkpoints/last.ckpt", weights_only=False)
    assert last["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_bad_batches_can_be_skipped_and_are_counted(tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    cli = poisoned_fit(tmp_path, tiny_corpus_dir, tiny_encoder_dir, [3, 20], "--nonfinite.skip_batches", "2")
    assert cli.trainer.callback_metrics["nonfinite_batches_skipped"] == 2
    assert all(torch.isfinite(p).all() for p in cli.model.parameters())


def adam_steps(state_dict: dict) -> set[int]:
    return {int(state["step"]) for state in state_dict["state"].values()}


def test_deferred_guard_skips_a_bad_step_on_the_device_and_stops_at_the_next_read(
    tiny_corpus_dir, tiny_encoder_dir, tmp_path
):
    """The NaN guard as it runs on CUDA: the flag is read every log_every_n_steps steps, and the fused
    AdamW skips the bad step itself in between (weights and optimiser state untouched)."""
    from callbacks.nonfinite import NonFiniteLossError

    defer = ["--nonfinite.defer", "true", "--trainer.log_every_n_steps", "8"]
    with pytest.raises(NonFiniteLossError, match=r"Loss is not finite at step 5 \(epoch 0; 1 bad steps skipped\)"):
        poisoned_fit(tmp_path, tiny_corpus_dir, tiny_encoder_dir, [5], *defer)
    last = torch.load(job_folder(tmp_path) / "version_0/checkpoints/last.ckpt", weights_only=False)
    assert last["global_step"] == 6  # saved after the bad step, before the read at step 8
    assert adam_steps(last["optimizer_states"][0]) == {5}  # six steps, one of them skipped
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_deferred_guard_counts_skipped_steps(tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    defer = ["--nonfinite.defer", "true", "--nonfinite.skip_batches", "2"]
    cli = poisoned_fit(tmp_path, tiny_corpus_dir, tiny_encoder_dir, [3, 20], *defer)
    assert cli.trainer.callback_metrics["nonfinite_batches_skipped"] == 2
    assert all(torch.isfinite(p).all() for p in cli.model.parameters())
    assert adam_steps(cli.trainer.optimizers[0].state_dict()) == {cli.trainer.global_step - 2}


@pytest.mark.slow
def test_a_run_killed_by_sigkill_resumes_to_the_same_weights(tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    """The real thing: ``kill -9`` on the CLI process as soon as a mid-run ``last.ckpt`` exists."""
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    args = [
        sys.executable,
        str(ROOT / "cli.py"),
        "fit",
        *tiny_args(tiny_corpus_dir, tiny_encoder_dir),
        "--model.init_args.num_topics",
        "8",
        "--trainer.max_epochs",
        "4",
        "--resume.every_n_train_steps",
        "5",
        "--test_after_fit",
        "false",
    ]
    env = os.environ | {"WANDB_MODE": "disabled"}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for folder in (straight, killed):
        folder.mkdir()
    subprocess.run(args, cwd=straight, env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=600)
    log = (tmp_path / "killed.log").open("w")
    process = subprocess.Popen(args, cwd=killed, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    last = killed / "runs" / f"topicbert-16-{tiny_corpus_dir.name}" / "version_0/checkpoints/last.ckpt"
    deadline = time.monotonic() + 300
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved_step = torch.load(last, weights_only=False)["global_step"]
    subprocess.run(
        [*args, "--ckpt_path", "last"],
        cwd=killed,
        env=env,
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    final = torch.load(job_folder(straight) / "version_0/checkpoints/last.ckpt", weights_only=False)
    resumed = torch.load(job_folder(killed) / "version_1/checkpoints/last.ckpt", weights_only=False)
    assert 0 < saved_step < final["global_step"] == resumed["global_step"]
    for name, value in final["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], value, rtol=0, atol=1e-6, msg=name)


TIMINGS = (
    "time",
    "energy",
    "co2",
    "peak_",
    "docs_per_s",
    "partitions_per_s",
    "tokens_per_s",
    "model_tflops",
    "mfu",
    "machine_",
)


def comparable(results: dict) -> dict:
    """results.json without what depends on the clock, the machine's load or the run's folder."""
    kept = {k: v for k, v in results.items() if not k.startswith(TIMINGS) and k not in ("finished_at", "hardware")}
    kept["best_checkpoint"] = Path(kept["best_checkpoint"]).name
    kept["evaluations"] = [{k: v for k, v in e.items() if not k.startswith(TIMINGS)} for e in kept["evaluations"]]
    kept.pop("cost_setup", None)
    return kept


def test_a_resumed_run_writes_the_same_results_as_one_that_never_stopped(runs):
    straight, resumed, _, _ = runs
    a = json.loads((straight.home / straight.trainer.log_dir / "results.json").read_text())
    b = json.loads((resumed.home / resumed.trainer.log_dir / "results.json").read_text())
    assert comparable(b) == comparable(a)
