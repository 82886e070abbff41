"""Which run ``--ckpt_path last`` may resume, and one folder per run.

A job's earlier runs live in ``<root>/<job>/version_<n>/``. Only an unfinished run of the same job
is resumed: the same configuration fingerprint (the resolved config without paths, logging and
resume settings, plus the corpus's content digest, so other data or other labels never match). A
finished run is reported as finished; a corrupt newest ``last.ckpt`` gives way to the previous good
one, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from datamodules.formats import DataError
from lightning_modules.base import read_checkpoint
from scaffold.errors import UsageError

log = logging.getLogger(__name__)

# Settings that say where and how loudly a run works, not what it computes.
IGNORED = {
    "": {"ckpt_path", "run", "csv", "wandb", "config", "test_after_fit", "timing", "memory", "energy", "throughput"},
    "trainer": {"callbacks", "logger", "enable_progress_bar", "default_root_dir", "enable_model_summary"},
    "data": {"data_dir", "cache_dir", "num_workers", "download", "predict_split", "predict_file", "predict_format"},
}
SCAFFOLD_WRITERS = {"summary", "checkpoint", "resume", "nonfinite", "lr_monitor", "predictions", "topics"}


class RunFinishedError(DataError):
    """``--ckpt_path last`` found only a finished run of this job."""


def config_fingerprint(config: dict[str, Any], corpus_fingerprint: str) -> str:
    """What makes two runs the same job: the config minus the ``IGNORED`` settings, and the data."""
    kept = {k: v for k, v in config.items() if k not in IGNORED[""] | SCAFFOLD_WRITERS}
    for section in ("trainer", "data"):
        if isinstance(kept.get(section), dict):
            kept[section] = {k: v for k, v in kept[section].items() if k not in IGNORED[section]}
    text = json.dumps(kept, sort_keys=True, default=str) + corpus_fingerprint
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def allocate_version(job_folder: Path) -> str:
    """The next free ``version_<n>``, created here: ``mkdir`` is atomic, so concurrent runs of one
    job never share a folder."""
    try:
        job_folder.mkdir(parents=True, exist_ok=True)
        taken = [int(p.name.removeprefix("version_")) for p in job_folder.glob("version_*") if p.name[8:].isdigit()]
        n = max(taken, default=-1) + 1
        while True:
            try:
                (job_folder / f"version_{n}").mkdir()
                return f"version_{n}"
            except FileExistsError:
                n += 1
    except OSError as err:
        raise UsageError(
            f"Cannot create a run folder in {job_folder} ({err.strerror}); pass --run.root a folder you can write to."
        ) from None


def _results(version_folder: Path) -> dict:
    try:
        return json.loads((version_folder / "results.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def saved_fingerprint(checkpoint: Path) -> str | None:
    """The job fingerprint a checkpoint's run summary saved; raises when the file cannot be read."""
    saved = read_checkpoint(checkpoint)
    state = (saved.get("callbacks") or {}).get("RunSummary") or {}
    return state.get("config_fingerprint")


def checkpoint_to_resume(folders: list[Path], fingerprint: str) -> Path | None:
    """The newest readable ``last*.ckpt`` of an unfinished run of this job, in the folders or their
    run subfolders' ``checkpoints`` (``version_<n>``, or a study's ``seed<k>.stopped-<n>``); None
    when this job has no run to resume.

    Raises :class:`RunFinishedError` when this job's runs have all finished, and a ``DataError``
    when its only checkpoints are unreadable."""
    candidates: list[Path] = []
    for folder in folders:
        candidates += folder.glob("last*.ckpt")
        candidates += folder.glob("*/checkpoints/last*.ckpt")
    finished, corrupt, other = [], [], []
    for path in sorted(set(candidates), key=lambda p: p.stat().st_mtime, reverse=True):
        results = _results(path.parent.parent)
        if results.get("status") == "complete":
            if results.get("config_fingerprint") == fingerprint:
                finished.append(path.parent.parent)
            continue
        try:
            saved = saved_fingerprint(path)
        except Exception as err:  # a truncated or foreign file: whatever torch.load raises
            log.warning("%s cannot be read (%s); trying the previous last.ckpt.", path, type(err).__name__)
            corrupt.append(path)
            continue
        if saved != fingerprint:
            other.append(path)
            continue
        return path
    if other:
        log.warning("Not resuming %d checkpoint(s) of other data or settings, e.g. %s.", len(other), other[0])
    if finished:
        raise RunFinishedError(
            f"The run in {finished[0]} already finished (results.json: complete). Start a fresh one by leaving "
            "out --ckpt_path last."
        )
    if corrupt and not other:
        raise DataError(
            f"Every last.ckpt of this job is unreadable (newest: {corrupt[0]}); start a fresh run by leaving out "
            "--ckpt_path last."
        )
    return None
