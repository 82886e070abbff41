"""W&B lineage of the files this tool makes and reads: best checkpoints, export folders, teacher logits.

Each file (or folder) is an artifact named by what it is and carries an alias made from its content,
``sha256-<16 hex digits>``, so a run that holds the file can name its artifact without asking W&B:
an export names the checkpoint it came from, a student the teacher-logits file it learnt from.
Online, the reading run ``use_artifact``s that reference and W&B draws the graph. Offline, where W&B
refuses ``use_artifact``, the same references go into the run's config under ``lineage`` and into the
metadata of the artifacts it logs, and ``wandb sync`` uploads both. Artifacts point at the files in
place (no copy): keep the run folders until an offline run is synced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

from utils.files import file_sha256

log = logging.getLogger(__name__)


def content_alias(path: str | Path, sha256: str | None = None) -> str:
    """``sha256-`` and 16 hex digits of a file's bytes, or of a folder's relative paths and files.
    ``sha256``: a file's ``file_sha256`` when the caller has it, so a large checkpoint is read once."""
    path = Path(path)
    if path.is_file():
        return f"sha256-{(sha256 or file_sha256(path))[:16]}"
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{file_sha256(file)}\0".encode())
    return f"sha256-{digest.hexdigest()[:16]}"


def artifact_name(kind: str, *parts: str) -> str:
    """A W&B artifact name (letters, digits, ``-``, ``_``, ``.``): ``checkpoint-topicbert-512-r8``."""
    return re.sub(r"[^a-z0-9._-]+", "-", "-".join((kind, *parts)).lower()).strip("-")


def reference(name: str, path: str | Path, sha256: str | None = None) -> str:
    """What a run that holds ``path`` calls its artifact: ``name:sha256-...`` (``sha256`` as in
    ``content_alias``)."""
    return f"{name}:{content_alias(path, sha256)}"


def checkpoint_artifact(results: dict) -> str | None:
    """The artifact name of a fit run's checkpoints, from its ``results.json``."""
    if not results.get("model") or not results.get("dataset"):
        return None
    return artifact_name("checkpoint", results["model"], results["dataset"])


def run_results(ckpt_path: str | Path) -> dict:
    """The ``results.json`` of the run that wrote a checkpoint (``<run>/checkpoints/x.ckpt``), if any."""
    path = Path(ckpt_path).resolve().parent.parent / "results.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def checkpoint_reference(ckpt_path: str | Path | None, sha256: str | None = None) -> str | None:
    """The artifact reference of a checkpoint that its run's results.json names (``sha256``: its
    ``file_sha256`` when already known)."""
    if not ckpt_path or not Path(ckpt_path).is_file():
        return None
    name = checkpoint_artifact(run_results(ckpt_path))
    return reference(name, ckpt_path, sha256) if name else None


def teacher_logits_artifact(dataset: str, split: str) -> str:
    return artifact_name("teacher-logits", dataset, split)


def is_logging(run) -> bool:
    """A W&B run that records (not a disabled one)."""
    return run is not None and getattr(run.settings, "mode", "disabled") != "disabled"


def log_output(run, path: str | Path, name: str, kind: str, metadata: dict, sha256: str | None = None) -> str | None:
    """Log ``path`` as artifact ``name`` of type ``kind`` with ``metadata`` (aliases ``latest`` and its
    content alias, ``sha256`` as in ``content_alias``); returns its reference, None when the run does
    not record."""
    if not is_logging(run):
        return None
    import wandb

    path = Path(path)
    alias = content_alias(path, sha256)
    artifact = wandb.Artifact(name, type=kind, metadata=metadata)
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            artifact.add_file(str(file), name=file.relative_to(path).as_posix(), policy="immutable")
    else:
        artifact.add_file(str(path), policy="immutable")
    run.log_artifact(artifact, aliases=["latest", alias])
    return f"{name}:{alias}"


def record_inputs(run, inputs: dict[str, str]) -> None:
    """Record what the run read (role -> artifact reference) in its config, and online use each
    artifact so W&B links it; one not on W&B yet (its run still offline) is named in the config only."""
    if not inputs or not is_logging(run):
        return
    run.config.update({"lineage": inputs}, allow_val_change=True)
    if getattr(run.settings, "_offline", False):
        return
    for role, ref in inputs.items():
        try:
            run.use_artifact(ref)
        except Exception as err:  # wandb raises its own CommError / ValueError kinds for a missing artifact
            log.warning("%s %s is not on W&B yet (%s); the run's config names it.", role, ref, type(err).__name__)


# what the artifacts of a fit run's checkpoint and of an export carry from its results.json
RESULT_METADATA = (
    "model",
    "dataset",
    "encoder",
    "max_length",
    "num_partitions",
    "seed",
    "precision",
    "hardware",
    "best_val_macro_f1",
    "test_macro_f1",
    "test_micro_f1",
    "budget",
    "epochs",
    "optimizer_steps",
    "documents_seen",
    "time_total_s",
    "energy_kwh",
    "co2_measured_g",
    "dev_fingerprint",
    "test_fingerprint",
    "config_fingerprint",
)


def result_metadata(results: dict) -> dict:
    return {k: results[k] for k in RESULT_METADATA if results.get(k) is not None}
