"""Checkpoints are written atomically beside their target: no orphan elsewhere, never half a file."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch

from cli import main
from scaffold.checkpoint_io import AtomicCheckpointIO
from tests.conftest import tiny_args


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
