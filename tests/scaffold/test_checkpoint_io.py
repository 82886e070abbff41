"""Checkpoints are written atomically beside their target: no orphan elsewhere, never half a file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import torch

from cli import main
from scaffold.checkpoint_io import AtomicCheckpointIO
from tests.conftest import ROOT, tiny_args


def test_a_checkpoint_is_staged_beside_its_target_and_renamed_over_it(tmp_path, monkeypatch):
    staging = tmp_path / "system-tmp"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))  # where Lightning's own writer would stage it
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renames.append((src, dst)), real_replace(src, dst)))
    target = tmp_path / "run" / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(3)}}, target)
    assert torch.load(target, weights_only=True)["state_dict"]["w"].tolist() == [1.0, 1.0, 1.0]
    ((src, dst),) = renames
    assert os.path.dirname(src) == str(target.parent) and dst == target
    assert list(staging.iterdir()) == [] and [p.name for p in target.parent.iterdir()] == ["last.ckpt"]


def test_a_write_that_dies_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.zeros(2)}}, target)
    before = target.read_bytes()

    def dies_halfway(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # a kill arriving mid-write

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.ones(2)}}, target)
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_the_cli_writes_every_checkpoint_through_it(tiny_corpus_dir, tiny_encoder_dir, tmp_path, monkeypatch):
    staging = tmp_path / "system-tmp"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))
    cli = main(["fit", *tiny_args(tiny_corpus_dir, tiny_encoder_dir), "--trainer.max_epochs", "1"])
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    folder = tmp_path / cli.trainer.log_dir / "checkpoints"
    assert {p.suffix for p in folder.iterdir()} == {".ckpt"}
    assert [p for p in staging.rglob("*") if p.is_file()] == []  # (W&B leaves empty folders there)


KEEP_SAVING = """
import sys, torch
from scaffold.checkpoint_io import AtomicCheckpointIO
io, k = AtomicCheckpointIO(), 0
while True:
    k += 1
    io.save_checkpoint({"state_dict": {"w": torch.full((4_000_000,), float(k))}, "k": k}, sys.argv[1])
"""


def test_a_run_killed_while_saving_leaves_a_whole_checkpoint(tmp_path):
    target = tmp_path / "last.ckpt"
    child = subprocess.Popen([sys.executable, "-c", KEEP_SAVING, str(target)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # mid-way through a later save
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    saved = torch.load(target, weights_only=True)
    assert saved["state_dict"]["w"].eq(float(saved["k"])).all()  # one whole save, not a mix or a stub
    assert {p.name for p in tmp_path.iterdir()} - {"last.ckpt"} <= {
        p.name for p in tmp_path.glob(".last.ckpt.*.tmp")
    }  # at most the killed write's own temporary, beside its target
