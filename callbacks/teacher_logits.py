"""Writes a teacher's soft targets for distillation from ``python cli.py predict``."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from callbacks.lineage import wandb_runs
from callbacks.prediction_writer import DocumentOutputWriter
from datamodules.teacher import TeacherLogits
from lightning_modules.base import read_checkpoint
from utils.files import file_sha256
from utils.lineage import checkpoint_reference, log_output, record_inputs, teacher_logits_artifact

log = logging.getLogger(__name__)


def probabilities_to_logits(probs: torch.Tensor, multi_label: bool, eps: float = 1e-7) -> torch.Tensor:
    """Logits that reproduce ``probs``: log-probabilities (softmax) or log-odds (sigmoid)."""
    probs = probs.double().clamp(eps, 1 - eps)
    return (probs.log() - (-probs).log1p()) if multi_label else probs.log()


def checkpoint_dev_macro_f1(checkpoint: str | Path | None) -> float | None:
    """The dev macro-F1 a checkpoint was saved with; None without a checkpoint."""
    return saved_dev_macro_f1(read_checkpoint(checkpoint)) if checkpoint else None


def saved_dev_macro_f1(saved: dict) -> float | None:
    """The ``current_score`` of a checkpoint's ModelCheckpoint state when that callback monitored
    ``val_macro_f1``; None without such a callback."""
    for key, state in (saved.get("callbacks") or {}).items():
        if "Checkpoint{" in key and state.get("monitor") == "val_macro_f1":  # ModelCheckpoint or a subclass
            score = state.get("current_score")
            return None if score is None else float(score)
    return None


def log_teacher_logits(trainer, path: Path, teacher: dict, dm, split: str, documents: int) -> None:
    """The logits file as a W&B artifact naming the teacher checkpoint's artifact, which the run uses."""
    checkpoint = checkpoint_reference(trainer.ckpt_path, teacher["checkpoint_sha256"])
    metadata = {
        "teacher": teacher,
        "teacher_checkpoint_artifact": checkpoint,
        "split": split,
        "documents": documents,
        "data_fingerprint": dm.fingerprint("predict"),
        "label_names": list(dm.label_names),
    }
    for run in wandb_runs(trainer):
        if checkpoint:
            record_inputs(run, {"teacher_checkpoint": checkpoint})
        log_output(run, path, teacher_logits_artifact(dm.dataset_name, split), "teacher-logits", metadata)


class TeacherLogitsWriter(DocumentOutputWriter):
    """Saves per-document teacher logits of the predicted split as a ``.npz`` file.

    The file records the document ids, the label names, a fingerprint of the documents (corpus,
    split, augmentation) and of the teacher checkpoint, so a student refuses logits of other data.
    A document's logits come from its probabilities averaged over its partitions, the same rule as
    evaluation.

    Args:
        output_path: the ``.npz`` file; defaults to ``teacher_logits.npz`` in the run folder.
    """

    default_name = "teacher_logits.npz"

    def on_predict_start(self, trainer, pl_module) -> None:
        self.started = time.perf_counter()  # labelling is part of what a distilled student costs

    def write(self, trainer, pl_module, path, docs, probs, topic) -> None:
        dm = trainer.datamodule
        ids = dm.documents("predict").ids
        if len(docs) != len(ids):
            raise RuntimeError(f"Predicted {len(docs)} of {len(ids)} documents; limit_predict_batches must be 1.0.")
        multi_label = bool(getattr(pl_module, "multi_label", False))
        checkpoint = trainer.ckpt_path
        saved = read_checkpoint(checkpoint) if checkpoint else {}
        teacher = {
            "model": pl_module.run_label(dm),
            # the name it was trained with: a restored model loads a copy of it from the cache
            "encoder": (saved.get("hyper_parameters") or {}).get("encoder") or pl_module.hparams.get("encoder"),
            "checkpoint": Path(checkpoint).name if checkpoint else None,
            "checkpoint_sha256": file_sha256(checkpoint) if checkpoint else None,
            "dev_macro_f1": saved_dev_macro_f1(saved),
            "labelling_time_s": round(time.perf_counter() - self.started, 3),  # ms: a tiny set labels in under 0.05 s
        }
        split = "file" if dm.predict_file else dm.predict_split
        TeacherLogits(
            ids=[ids[d] for d in docs.tolist()],
            logits=probabilities_to_logits(probs, multi_label).float().numpy(),
            label_names=list(dm.label_names),
            multi_label=multi_label,
            split=split,
            data_fingerprint=dm.fingerprint("predict"),
            teacher=teacher,
        ).save(path)
        log_teacher_logits(trainer, path, teacher, dm, split, len(docs))
        print(f"Teacher logits for {len(docs)} documents ({split}) written to {path}")
