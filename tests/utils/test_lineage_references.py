"""Artifact references: what a run calls a file's W&B artifact."""

from __future__ import annotations

import json

import utils.lineage
from utils.files import file_sha256
from utils.lineage import checkpoint_reference, content_alias


def test_a_known_digest_names_the_same_checkpoint_artifact_without_reading_it_again(tmp_path, monkeypatch):
    checkpoint = tmp_path / "run/checkpoints/best.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"weights")
    (tmp_path / "run/results.json").write_text(json.dumps({"model": "TopicBERT-512", "dataset": "r8"}))
    hashed = checkpoint_reference(checkpoint)
    assert hashed == f"checkpoint-topicbert-512-r8:{content_alias(checkpoint)}"
    digest = file_sha256(checkpoint)

    def no_second_read(path):
        raise AssertionError(f"{path} was hashed again")

    monkeypatch.setattr(utils.lineage, "file_sha256", no_second_read)
    assert checkpoint_reference(checkpoint, digest) == hashed


def test_a_checkpoint_without_its_runs_results_has_no_reference(tmp_path):
    checkpoint = tmp_path / "loose.ckpt"
    checkpoint.write_bytes(b"weights")
    assert checkpoint_reference(checkpoint, file_sha256(checkpoint)) is None
    assert checkpoint_reference(tmp_path / "missing.ckpt") is None
