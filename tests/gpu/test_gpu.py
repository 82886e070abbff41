"""The CUDA path on a tiny BERT: precision chosen by the hardware, GPU memory, NVML energy, MFU,
agreement with a CPU fp32 run of the same checkpoint, the out-of-memory message, ``compile_encoder``.

Run with ``pytest -m gpu`` on a machine with CUDA (``benchmarks/gpu/run.sh`` does, on the device);
skipped elsewhere.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cli import main
from tests.conftest import ROOT, tiny_args

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
# bf16 keeps 8 bits of mantissa: a tiny model's probabilities agree with fp32 to about 1e-2
PROBABILITY_TOLERANCE = 0.02


def fit_on_gpu(corpus, encoder, *extra) -> tuple[object, dict]:
    args = [*tiny_args(corpus, encoder), "--model.init_args.num_topics", "8", "--trainer.accelerator", "gpu"]
    fitted = main(
        ["fit", *args, "--trainer.devices", "1", "--trainer.log_every_n_steps", "1", "--wandb", "false", *extra]
    )
    return fitted, json.loads((Path(fitted.trainer.log_dir) / "results.json").read_text())


@pytest.fixture(scope="module")
def gpu_run(tiny_corpus_dir, tiny_encoder_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("gpu")
    previous = os.getcwd()
    os.chdir(home)
    try:
        fitted, results = fit_on_gpu(tiny_corpus_dir, tiny_encoder_dir)
    finally:
        os.chdir(previous)
    return home, fitted, results


def test_fit_runs_in_the_hardware_precision_with_a_finite_loss(gpu_run):
    _, fitted, results = gpu_run
    expected = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    assert results["precision"] == expected and results["status"] == "complete"
    rows = list(csv.DictReader((Path(fitted.trainer.log_dir) / "metrics.csv").open()))
    losses = [float(r["train_loss"]) for r in rows if r.get("train_loss")]
    assert losses and all(math.isfinite(v) for v in losses)


def test_gpu_memory_energy_and_mfu_are_recorded(gpu_run):
    results = gpu_run[2]
    assert results["peak_gpu_reserved_mb"] >= results["peak_gpu_allocated_mb"] > 0
    assert results["energy_gpu_kwh"] > 0 and results["energy_cpu_kwh"] >= 0  # NVML's GPU energy, apart from the CPU's
    assert results["cost_setup"]["gpu_energy"].startswith("measured (NVML)")
    assert 0 < results["mfu"] < 1  # against the precision's peak


def predict(ckpt: str, corpus, out: Path, accelerator: str, precision: str) -> dict[str, dict]:
    """The checkpoint's test-split predictions on one device and precision, by document id."""
    args = [
        "--ckpt_path",
        ckpt,
        "--data.dataset",
        str(corpus),
        "--wandb",
        "false",
        "--trainer.accelerator",
        accelerator,
    ]
    main(["predict", *args, "--trainer.precision", precision, "--predictions.output_path", str(out)])
    return {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}


def test_a_cpu_fp32_run_of_the_checkpoint_gives_the_same_documents(gpu_run, tiny_corpus_dir, tmp_path):
    home, fitted, results = gpu_run
    best = str(home / fitted.trainer.checkpoint_callback.best_model_path)
    gpu = predict(best, tiny_corpus_dir, tmp_path / "gpu.jsonl", "gpu", results["precision"])
    cpu = predict(best, tiny_corpus_dir, tmp_path / "cpu.jsonl", "cpu", "32-true")
    assert gpu.keys() == cpu.keys() and len(gpu) == 30
    for doc, row in gpu.items():
        theirs = cpu[doc]["probabilities"]
        for label, p in row["probabilities"].items():
            assert p == pytest.approx(theirs[label], abs=PROBABILITY_TOLERANCE)
        top = sorted(theirs.values(), reverse=True)
        if top[0] - top[1] > 2 * PROBABILITY_TOLERANCE:  # a clear decision is the same decision
            assert row["label"] == cpu[doc]["label"]


OUT_OF_MEMORY = """
import sys, torch
torch.cuda.set_per_process_memory_fraction(1e-6)  # the caching allocator refuses past ~140 kB: a real CUDA OOM
sys.argv = ["cli.py", *sys.argv[1:]]
from cli import main
main()
"""


def test_a_real_cuda_out_of_memory_is_one_line_that_names_the_fix(tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    args = [*tiny_args(tiny_corpus_dir, tiny_encoder_dir), "--trainer.accelerator", "gpu", "--wandb", "false"]
    done = subprocess.run(
        [sys.executable, "-c", OUT_OF_MEMORY, "fit", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Out of accelerator memory during fit") and "--data.batch_size 4" in last
    assert "Traceback" not in done.stderr


def test_compile_encoder_on_cuda_writes_the_same_checkpoint_keys(gpu_run, tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    home, fitted, _ = gpu_run
    os.chdir(tmp_path)
    compiled, _ = fit_on_gpu(tiny_corpus_dir, tiny_encoder_dir, "--model.init_args.compile_encoder", "true")
    plain = torch.load(home / fitted.trainer.checkpoint_callback.best_model_path, map_location="cpu", weights_only=True)
    ours = torch.load(compiled.trainer.checkpoint_callback.best_model_path, map_location="cpu", weights_only=True)
    assert sorted(ours["state_dict"]) == sorted(plain["state_dict"])
