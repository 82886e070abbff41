"""Teacher soft targets on disk: per-document logits with the ids and fingerprints they belong to."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from datamodules.cache import load_arrays, save_arrays
from datamodules.formats import DataError

FORMAT = "topicbert-teacher-logits/1"


@dataclass
class TeacherLogits:
    """Logits of a teacher for every document of one split.

    ``data_fingerprint`` identifies the documents (corpus, split, augmentation); ``teacher`` says
    which checkpoint produced them. Single-label logits are log-probabilities, multi-label ones are
    per-label log-odds, both of the document's probabilities averaged over its partitions.
    """

    ids: list[str]
    logits: np.ndarray
    label_names: list[str]
    multi_label: bool
    split: str
    data_fingerprint: str
    teacher: dict

    def save(self, path: str | Path) -> None:
        meta = {k: v for k, v in asdict(self).items() if k not in ("ids", "logits")} | {"format": FORMAT}
        save_arrays(
            Path(path),
            {
                "ids": np.asarray(self.ids),
                "logits": self.logits.astype(np.float32),
                "meta": np.asarray(json.dumps(meta)),
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> TeacherLogits:
        arrays = load_arrays(Path(path))
        if arrays is None or "meta" not in arrays:
            raise DataError(
                f"Teacher logits {path} are missing or unreadable. Write them with `python cli.py predict` and "
                "callbacks.teacher_logits.TeacherLogitsWriter (see configs/distill/teacher.yaml)."
            )
        meta = json.loads(str(arrays["meta"]))
        if meta.pop("format", None) != FORMAT:
            raise DataError(f"{path} is not a teacher-logits file of this tool ({FORMAT}).")
        return cls(arrays["ids"].tolist(), arrays["logits"], **meta)

    def aligned(self, ids: list[str], label_names: list[str], data_fingerprint: str, path: str) -> np.ndarray:
        """The logits row of every id in ``ids``, after checking the file belongs to this data."""
        if label_names != self.label_names:
            raise DataError(f"Teacher logits {path} have labels {self.label_names}, this data has {label_names}.")
        if data_fingerprint != self.data_fingerprint:
            raise DataError(
                f"Teacher logits {path} were computed for other documents (split {self.split!r}, data "
                f"{self.data_fingerprint}; this run's transfer set is {data_fingerprint}). Run the teacher's "
                "predict again with the same --data settings (dataset, dev_size, seed, augmentation) as the student."
            )
        row = {doc_id: i for i, doc_id in enumerate(self.ids)}
        missing = [doc_id for doc_id in ids if doc_id not in row]
        if missing:
            raise DataError(f"Teacher logits {path} lack {len(missing)} documents, e.g. {missing[0]!r}.")
        return self.logits[[row[doc_id] for doc_id in ids]]
