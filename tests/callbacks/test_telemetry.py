"""Cost telemetry on tiny runs through the CLI: figures present, positive, in their units, consistent."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import wandb

from cli import main
from tests.conftest import ROOT, tiny_args
from utils.carbon import paper_co2_g


@pytest.fixture(scope="module")
def telemetry_run(tiny_corpus_dir, tiny_encoder_dir, tmp_path_factory):
    """A 3-epoch tiny fit with W&B offline: (results.json, metrics.csv rows, run folder, home)."""
    home = tmp_path_factory.mktemp("telemetry")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(home)
        mp.setenv("WANDB_MODE", "offline")
        cli = main(["fit", *tiny_args(tiny_corpus_dir, tiny_encoder_dir), "--trainer.max_epochs", "3"])
    folder = home / cli.trainer.log_dir
    results = json.loads((folder / "results.json").read_text())
    rows = list(csv.DictReader((folder / "metrics.csv").open()))
    return results, rows, folder, home


def column(rows, name):
    return [float(r[name]) for r in rows if r.get(name)]


def test_results_summary_has_every_figure(telemetry_run):
    results, _, folder, _ = telemetry_run
    assert results["status"] == "complete" and results["model"] == "TopicBERT-16"
    assert results["dataset"].startswith("tiny_corpus") and results["num_partitions"] == 2 and results["seed"] == 42
    assert results["epochs"] == 3 and len(results["val_macro_f1_per_epoch"]) == 3
    assert results["best_val_macro_f1"] == max(results["val_macro_f1_per_epoch"])
    for name in (
        "test_macro_f1",
        "time_epoch_mean_s",
        "time_total_s",
        "time_batch_mean_s",
        "energy_kwh",
        "co2_measured_g",
        "co2_paper_eq_g",
        "peak_rss_mb",
        "docs_per_s",
        "tokens_per_s",
    ):
        assert results[name] > 0, name
    assert Path(results["best_checkpoint"]).name.startswith("epoch")
    assert not list(folder.glob(".results.json.*"))  # written atomically


def test_times_are_consistent(telemetry_run):
    results, rows, _, _ = telemetry_run
    epochs = results["time_epoch_s"]
    assert len(epochs) == 3 and all(t > 0 for t in epochs)
    assert results["time_epoch_mean_s"] == pytest.approx(sum(epochs) / 3)
    assert results["time_total_s"] >= sum(epochs)  # the total also covers validation
    assert results["time_batch_mean_s"] < max(epochs)
    assert 1e-3 < results["machine_fp32_tflops"] < 100  # a CPU's fp32 matmul rate, in TFLOP/s
    assert column(rows, "time_epoch_s") == pytest.approx(epochs)


def test_energy_and_co2_accumulate_per_epoch(telemetry_run):
    results, rows, _, _ = telemetry_run
    per_epoch = column(rows, "energy_kwh_epoch")
    totals = column(rows, "energy_kwh_total")
    assert len(per_epoch) == 3 and all(e > 0 for e in per_epoch)
    assert totals == sorted(totals) and totals[-1] == pytest.approx(sum(per_epoch))
    assert results["energy_kwh"] == pytest.approx(totals[-1])
    assert results["energy_kwh"] < 1e-3  # a few seconds on a CPU: far below a watt-hour
    assert results["co2_paper_eq_g"] == pytest.approx(sum(column(rows, "co2_paper_eq_g_epoch")))
    # grid intensity of the USA in CodeCarbon's table: a few hundred g per kWh
    assert 100 < results["co2_measured_g"] / results["energy_kwh"] < 1000


def test_throughput_counts_every_training_document(telemetry_run, tiny_corpus_dir):
    results, _, _, _ = telemetry_run
    assert results["docs_per_epoch"] == 72  # 90 training documents minus 18 for dev
    assert 0 <= results["padding_share"] < 0.5
    assert results["partitions_per_s"] >= results["docs_per_s"]
    assert "mfu" not in results  # no GPU peak to compare with on a CPU
    assert 0 < results["peak_rss_mb"] < 64 * 1024


def test_paper_equation_against_a_hand_computation():
    # 0.07 kW for 2.5 h on a 0.61 kg/kWh grid = 0.10675 kg
    assert paper_co2_g(2.5) == pytest.approx(106.75)
    assert paper_co2_g(1.0, power_kw=0.3, grid_kg_per_kwh=0.5, devices=2) == pytest.approx(300.0)


def test_wandb_offline_run_folder_holds_the_summary(telemetry_run):
    results, _, _, home = telemetry_run
    (run_dir,) = (home / "runs" / "wandb").glob("offline-run-*")
    saved = json.loads((run_dir / "files" / "results.json").read_text())
    assert saved["test_macro_f1"] == results["test_macro_f1"]
    wandb.teardown()  # waits for W&B's service process to flush the run's record log
    (records,) = run_dir.glob("run-*.wandb")
    data = records.read_bytes()
    for key in (b"best_val_macro_f1", b"time_epoch_mean_s", b"energy_kwh", b"co2_paper_eq_g", b"val_macro_f1"):
        assert key in data


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_sums_energy_and_syncs_metrics(tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    args = tiny_args(tiny_corpus_dir, tiny_encoder_dir)
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "fit",
            *args,
            "--trainer.strategy",
            "ddp",
            "--trainer.devices",
            "2",
            "--trainer.accelerator",
            "cpu",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (results_file,) = (tmp_path / "runs").rglob("results.json")
    results = json.loads(results_file.read_text())
    assert results["devices"] == 2 and results["status"] == "complete"
    assert len(results["energy_kwh_per_rank"]) == 2 and all(e > 0 for e in results["energy_kwh_per_rank"])
    assert results["energy_kwh"] == pytest.approx(sum(results["energy_kwh_per_rank"]))
    assert results["peak_rss_mb"] == max(results["peak_rss_mb_per_rank"])
    assert results["docs_per_epoch"] >= 72  # both halves of the training split are counted
    # metrics are synchronised: the DDP test score is the score of the whole test split
    best = str(tmp_path / results["best_checkpoint"])
    single = main(["test", *args, "--ckpt_path", best])
    assert single.trainer.callback_metrics["test_macro_f1"].item() == pytest.approx(results["test_macro_f1"], abs=1e-6)
    # predict under DDP: rank 0 writes every document once
    predict = subprocess.run(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "predict",
            *args,
            "--trainer.strategy",
            "ddp",
            "--trainer.devices",
            "2",
            "--trainer.accelerator",
            "cpu",
            "--ckpt_path",
            best,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert predict.returncode == 0, predict.stderr[-3000:]
    (predictions,) = (tmp_path / "runs").rglob("predictions.jsonl")
    ids = [json.loads(line)["id"] for line in predictions.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 30
