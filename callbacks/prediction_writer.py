"""Writes one JSON line per document from ``predict``: label(s), probabilities and topic words."""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from lightning_modules.metrics import aggregate_by_document, drop_repeats
from utils.files import atomic_write

log = logging.getLogger(__name__)


def gather_document_outputs(trainer: pl.Trainer, predictions) -> tuple[Tensor, Tensor, Tensor | None] | None:
    """``predict_step`` outputs of every process, per document: (doc indices, mean probabilities,
    dominant topic or None). Returns None on every process but rank 0 (all ranks must call it)."""
    outputs = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
    outputs = [{k: v.cpu() for k, v in o.items()} for o in outputs]
    if trainer.world_size > 1:  # every process predicted its share of the batches
        shares: list[Any] = [None] * trainer.world_size
        torch.distributed.all_gather_object(shares, outputs)
        outputs = [o for share in shares for o in share]
    if not trainer.is_global_zero:
        return None
    return document_outputs(outputs)


def document_outputs(outputs: list[dict[str, Tensor]]) -> tuple[Tensor, Tensor, Tensor | None]:
    """``predict_step`` outputs (on the CPU) per document: (doc indices, mean probabilities over
    the document's partitions, dominant topic or None)."""
    keep = drop_repeats(torch.cat([o["example_index"] for o in outputs]))
    doc_index = torch.cat([o["doc_index"] for o in outputs])[keep]
    docs, probs = aggregate_by_document(doc_index, torch.cat([o["probs"] for o in outputs]).float()[keep])
    topic = None
    if "topic" in outputs[0]:
        by_doc = dict(zip(doc_index.tolist(), torch.cat([o["topic"] for o in outputs])[keep].tolist(), strict=True))
        topic = torch.tensor([by_doc[d] for d in docs.tolist()])
    return docs, probs, topic


class DocumentOutputWriter(BasePredictionWriter, ABC):
    """Base of the writers of per-document ``predict`` outputs: resolves the output file (``output_path``,
    else ``default_name`` in the run folder), gathers every process's outputs and hands them, on rank 0
    only, to ``write(trainer, pl_module, path, docs, probs, topic)``; ``written`` is the file written."""

    default_name: str

    def __init__(self, output_path: str | None = None):
        super().__init__(write_interval="epoch")
        self.output_path = output_path
        self.written: Path | None = None

    def write_on_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions, batch_indices):
        path = Path(self.output_path or Path(trainer.log_dir or trainer.default_root_dir) / self.default_name)
        gathered = gather_document_outputs(trainer, predictions)
        if gathered is not None:
            self.write(trainer, pl_module, path, *gathered)
            self.written = path

    @abstractmethod
    def write(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        path: Path,
        docs: Tensor,
        probs: Tensor,
        topic: Tensor | None,
    ) -> None:
        """Write one file from the per-document outputs (rank 0 only)."""


def input_positions(kept: int, skipped: list[tuple[int, str, str]]) -> list[int]:
    """The row position among the input rows of each kept document (skipped rows take the others)."""
    gaps = {position for position, _, _ in skipped}
    return [i for i in range(kept + len(skipped)) if i not in gaps]


def summary_path(path: Path) -> Path:
    """``predictions.jsonl`` -> ``predictions.summary.json``, beside it."""
    return path.with_name(path.name.removesuffix(".gz").removesuffix(".jsonl") + ".summary.json")


class PredictionWriter(DocumentOutputWriter):
    """Aggregates partition predictions per document and writes them as JSON Lines (on rank 0, with
    the predictions of every process under DDP), one line per input document in input order.

    Each line: ``id``, ``label`` (single-label) or ``labels`` (multi-label: every label whose
    probability reaches the model's decision threshold, most probable first), ``probabilities`` by
    label, the document's gold ``true_labels`` when known, ``tokens_cut`` when the document was
    longer than N tokens allows, and, for TopicBERT, its dominant ``topic`` (largest posterior-mean
    component) with that topic's ``topic_words``. A row that could not be predicted (an empty
    document) has a line with its ``id`` and ``skipped``: the reason. ``<name>.summary.json`` beside
    the file counts the input documents, those predicted, skipped, repaired and cut.

    Args:
        output_path: the JSONL file; defaults to ``predictions.jsonl`` in the run folder.
        top_words: words listed per topic.
    """

    default_name = "predictions.jsonl"

    def __init__(self, output_path: str | None = None, top_words: int = 10):
        super().__init__(output_path)
        self.top_words = top_words

    def write(self, trainer, pl_module, path, docs, probs, topic) -> None:
        datamodule = trainer.datamodule
        documents = datamodule.documents("predict")
        with atomic_write(path) as f:
            for record in self.in_input_order(datamodule, pl_module, docs, probs, topic):
                f.write(json.dumps(record) + "\n")
        summary = {
            "predictions": path.name,
            "input_documents": len(documents) + len(documents.skipped),
            "predicted": len(docs),
            "skipped": dict(Counter(reason for _, _, reason in documents.skipped)),
            **datamodule.reading_report("predict"),
            "max_length": datamodule.max_length,
            "num_partitions": datamodule.num_partitions,
        }
        with atomic_write(summary_path(path)) as f:
            json.dump(summary, f, indent=2)
        log.info("Wrote %d document predictions to %s", len(docs), path)
        notes = [f"{n} skipped ({reason})" for reason, n in summary["skipped"].items()]
        if summary.get("cut_to_max_length"):
            notes.append(f"{summary['cut_to_max_length']} cut to N={datamodule.max_length} tokens")
        said = f" ({'; '.join(notes)}; see {summary_path(path).name})" if notes else ""
        print(f"Predictions for {len(docs)} of {summary['input_documents']} documents written to {path}{said}")

    def in_input_order(self, datamodule, pl_module, docs: Tensor, probs: Tensor, topic: Tensor | None) -> list[dict]:
        """Every input row's record in input order: the predicted documents' and the skipped rows'."""
        documents = datamodule.documents("predict")
        positions = input_positions(len(documents), documents.skipped)
        cut = datamodule.tokens_cut("predict")
        records = self.records(datamodule, pl_module, docs, probs, topic, cut)
        placed = [(positions[d], r) for d, r in zip(docs.tolist(), records, strict=True)]
        placed += [(position, {"id": doc_id, "skipped": reason}) for position, doc_id, reason in documents.skipped]
        return [record for _, record in sorted(placed, key=lambda item: item[0])]

    def records(self, datamodule, pl_module, docs: Tensor, probs: Tensor, topic: Tensor | None, cut) -> Iterator[dict]:
        """One record per predicted document, in the order of ``docs``."""
        names = datamodule.label_names
        documents = datamodule.documents("predict")
        topic_words = None
        indices = pl_module.topic_word_indices(self.top_words) if topic is not None else None
        if indices is not None:
            words = datamodule.vocabulary.words
            topic_words = [[words[i] for i in row] for row in indices.tolist()]
        multi_label = bool(getattr(pl_module, "multi_label", False))
        thresholds: list[float] = pl_module.decision_thresholds.tolist() if multi_label else []
        topics = topic.tolist() if topic is not None else None
        for k, (doc, row) in enumerate(zip(docs.tolist(), probs.tolist(), strict=True)):
            record: dict[str, Any] = {"id": documents.ids[doc]}
            if multi_label:
                chosen = [(p, n) for n, p, t in zip(names, row, thresholds, strict=True) if p >= t]
                record["labels"] = [n for _, n in sorted(chosen, reverse=True)]
            else:
                record["label"] = names[max(range(len(row)), key=row.__getitem__)]
            record["probabilities"] = {n: round(p, 6) for n, p in zip(names, row, strict=True)}
            gold = set(documents.labels[doc])
            if gold & set(names):
                record["true_labels"] = [n for n in names if n in gold]
            if cut is not None and cut[doc]:
                record["tokens_cut"] = int(cut[doc])
            if topics is not None:
                assert topic_words is not None  # a model that predicts topics has topic words
                record["topic"] = topics[k]
                record["topic_words"] = topic_words[topics[k]]
            yield record
