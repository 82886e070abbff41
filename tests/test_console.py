"""A calm console: ``--help`` without the heavy imports, and a run without library chatter."""

from __future__ import annotations

import os
import subprocess
import sys

from lightning.pytorch.cli import LightningCLI

from tests.conftest import ROOT, tiny_args


def test_top_level_help_lists_every_subcommand_without_importing_torch():
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "cli.py"), "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ") and line.split()}
    assert set(LightningCLI.subcommands()) <= listed
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time")}
    assert "platform" in imported and not {"torch", "lightning", "transformers"} & imported


def test_a_run_prints_one_wandb_line_and_no_unactionable_warnings(tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline", "TOPICBERT_MALLOC_TUNING": "0"}
    env.pop("WANDB_SILENT", None)
    args = [*tiny_args(tiny_corpus_dir, tiny_encoder_dir), "--trainer.max_epochs", "1", "--energy", "false"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "fit", *args], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = (done.stdout + done.stderr).splitlines()
    wandb_lines = [line for line in lines if "wandb" in line.lower() or "W&B" in line]
    assert len(wandb_lines) == 1 and "W&B run" in wandb_lines[0] and "wandb sync" in wandb_lines[0]
    assert not [line for line in lines if "LeafSpec" in line or "Tip:" in line or "Loading weights" in line]
    assert any("test macro-F1" in line and "every figure in" in line for line in lines)
