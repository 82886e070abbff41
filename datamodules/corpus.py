"""Corpus readers: files on disk -> ids, texts and label lists for train / dev / test.

Every document carries a *list* of labels, so single- and multi-label data share one data model.
Formats: ``label<TAB>text`` (R8 style, no header), JSON Lines (optionally gzipped) with ``text``
and ``label``/``labels``, and CSV with chosen columns.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sklearn.model_selection import train_test_split

log = logging.getLogger(__name__)

DATA_ENV = "TOPICBERT_DATA"
SPLIT_NAMES = ("train", "dev", "test")
SUFFIXES = (".jsonl.gz", ".jsonl", ".tsv", ".txt", ".csv")


class DataError(ValueError):
    """A problem with the user's data; the message says how to fix it."""


@dataclass
class FileFormat:
    """How to read one dataset's files.

    Args:
        text_fields: fields (JSONL) or columns (CSV) joined with a newline to form the text.
        label_field: field or column with the label; a JSON list means several labels.
        id_field: field or column with the document id; row numbers are used when absent.
        label_separator: in CSV/TSV, splits one label cell into several labels (multi-label).
    """

    text_fields: tuple[str, ...] = ("text",)
    label_field: str = "label"
    id_field: str = "id"
    label_separator: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: its folder under the data root, its split files and its format."""

    folder: str
    files: dict[str, str]
    file_format: FileFormat = field(default_factory=FileFormat)
    source: str = ""


DATASETS: dict[str, DatasetSpec] = {
    "r8": DatasetSpec(
        "r8",
        {"train": "r8-train-all-terms.txt", "test": "r8-test-all-terms.txt"},
        source="Cardoso-Cachopo's R8 (all-terms), as shipped with text_gcn",
    ),
    "20ng": DatasetSpec("20ng", {"train": "train.jsonl.gz", "test": "test.jsonl.gz"}, source="20 Newsgroups bydate"),
    "imdb": DatasetSpec("imdb", {"train": "train.jsonl.gz", "test": "test.jsonl.gz"}, source="IMDB aclImdb v1"),
    "reuters21578": DatasetSpec(
        "reuters21578",
        {"train": "modapte90_train.jsonl.gz", "test": "modapte90_test.jsonl.gz"},
        FileFormat(text_fields=("title", "text"), label_field="labels"),
        source="Reuters-21578 ModApte, 90 labels",
    ),
}


@dataclass
class Split:
    """One split of a corpus; ``labels[i]`` is the list of label names of document i."""

    ids: list[str]
    texts: list[str]
    labels: list[list[str]]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, indices) -> Split:
        return Split(
            [self.ids[i] for i in indices], [self.texts[i] for i in indices], [self.labels[i] for i in indices]
        )


@dataclass
class Corpus:
    """Train / dev / test splits, the label set (from train) and a fingerprint of the raw data."""

    name: str
    splits: dict[str, Split]
    label_names: list[str]
    multi_label: bool
    fingerprint: str

    def __getitem__(self, split: str) -> Split:
        return self.splits[split]


@dataclass
class ReadStats:
    """What the reader repaired or dropped, so it can be reported once."""

    replaced_bytes_docs: int = 0
    empty_docs: int = 0


def resolve_data_dir(data_dir: str | None) -> Path:
    """The data root: the argument, else ``$TOPICBERT_DATA``, else ``./data``."""
    return Path(data_dir or os.environ.get(DATA_ENV) or "data").expanduser()


def _read_bytes(path: Path, digest) -> bytes:
    raw = path.read_bytes()
    digest.update(path.name.encode())
    digest.update(raw)
    if path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{path} is not a valid gzip file ({err}); replace it with an intact copy.") from err
    return raw


def _decode(raw: bytes, stats: ReadStats) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        stats.replaced_bytes_docs += 1
        return raw.decode("utf-8", errors="replace")


def _labels_of(value, sep: str | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    value = str(value).strip()
    if sep:
        return [v.strip() for v in value.split(sep) if v.strip()]
    return [value] if value else []


def _read_tsv(raw: bytes, split: str, fmt: FileFormat, stats: ReadStats, path: Path) -> Split:
    ids, texts, labels = [], [], []
    for n, line in enumerate(raw.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        text_line = _decode(line, stats)
        if "\t" not in text_line:
            raise DataError(f"{path}, line {n}: expected 'label<TAB>text' but found no tab.")
        label, text = text_line.split("\t", 1)
        ids.append(f"{split}-{n}")
        texts.append(text)
        labels.append(_labels_of(label, fmt.label_separator))
    return Split(ids, texts, labels)


def _read_jsonl(raw: bytes, split: str, fmt: FileFormat, stats: ReadStats, path: Path) -> Split:
    ids, texts, labels = [], [], []
    for n, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(_decode(line, stats))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}, line {n}: not valid JSON ({err.msg}).") from err
        missing = [f for f in fmt.text_fields if f not in row]
        if missing:
            raise DataError(
                f"{path}, line {n}: no field {missing[0]!r}; set data.text_fields to the fields that "
                f"hold the text (this row has {sorted(row)})."
            )
        label_value = row.get(fmt.label_field, row.get("labels" if fmt.label_field == "label" else "label"))
        ids.append(str(row.get(fmt.id_field, f"{split}-{n}")))
        texts.append("\n".join(str(row[f] or "") for f in fmt.text_fields))
        labels.append(_labels_of(label_value, fmt.label_separator))
    return Split(ids, texts, labels)


def _read_csv(raw: bytes, split: str, fmt: FileFormat, stats: ReadStats, path: Path) -> Split:
    reader = csv.DictReader(io.StringIO(_decode(raw, stats)))
    columns = reader.fieldnames or []
    needed = [*fmt.text_fields, fmt.label_field] if split != "predict" else list(fmt.text_fields)
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(
            f"{path}: no column {missing[0]!r} (columns: {columns}); set data.text_fields / "
            "data.label_field to the CSV's column names."
        )
    ids, texts, labels = [], [], []
    for n, row in enumerate(reader, start=1):
        ids.append(str(row.get(fmt.id_field) or f"{split}-{n}"))
        texts.append("\n".join(row[c] or "" for c in fmt.text_fields))
        labels.append(_labels_of(row.get(fmt.label_field), fmt.label_separator))
    return Split(ids, texts, labels)


READERS = {".jsonl.gz": _read_jsonl, ".jsonl": _read_jsonl, ".tsv": _read_tsv, ".txt": _read_tsv, ".csv": _read_csv}


def read_split_file(path: Path, split: str, fmt: FileFormat, stats: ReadStats, digest) -> Split:
    """Read one split file in the format its name ends with; drop empty documents."""
    suffix = next((s for s in SUFFIXES if path.name.endswith(s)), None)
    if suffix is None:
        raise DataError(f"{path}: unknown file type; use one of {', '.join(SUFFIXES)}.")
    if not path.is_file():
        raise DataError(f"{path} does not exist.")
    raw = _read_bytes(path, digest)
    data = READERS[suffix](raw, split, fmt, stats, path)
    keep = [i for i, t in enumerate(data.texts) if t.strip()]
    stats.empty_docs += len(data) - len(keep)
    data = data.subset(keep)
    if len(data) == 0:
        raise DataError(f"{path} holds no documents (the {split} split is empty); check the file.")
    return data


def find_split_files(folder: Path) -> dict[str, Path]:
    """Split files of a user folder: ``train.*``, optional ``dev.*``, ``test.*``."""
    found = {}
    for split in SPLIT_NAMES:
        for suffix in SUFFIXES:
            candidate = folder / f"{split}{suffix}"
            if candidate.is_file():
                found[split] = candidate
                break
    return found


def _locate(dataset: str, data_dir: str | None) -> tuple[str, dict[str, Path], FileFormat | None]:
    if dataset in DATASETS:
        spec = DATASETS[dataset]
        folder = resolve_data_dir(data_dir) / spec.folder
        files = {split: folder / name for split, name in spec.files.items()}
        missing = [p for p in files.values() if not p.is_file()]
        if missing:
            names = ", ".join(p.name for p in missing)
            raise DataError(
                f"Dataset {dataset!r} ({spec.source}) not found: missing {names} in {folder}. Place the "
                f"files there, or point --data.data_dir (or ${DATA_ENV}) at the folder that holds "
                f"'{spec.folder}/'."
            )
        return dataset, files, spec.file_format
    folder = Path(dataset).expanduser()
    if folder.is_dir():
        files = find_split_files(folder)
        if "train" not in files or "test" not in files:
            raise DataError(
                f"{folder} needs train.<ext> and test.<ext> (dev.<ext> optional), with <ext> one of "
                f"{', '.join(SUFFIXES)}; found {sorted(p.name for p in folder.iterdir())}."
            )
        return folder.name, files, None
    raise DataError(f"Unknown dataset {dataset!r}: use one of {', '.join(DATASETS)} or a folder with train/test files.")


def carve_dev(train: Split, dev_size: int | float, seed: int, stratify: bool) -> tuple[Split, Split]:
    """Split a dev set off train with a fixed seed, stratified by label when every label allows it."""
    n_dev = int(dev_size) if dev_size >= 1 else round(dev_size * len(train))
    if not 0 < n_dev < len(train):
        raise DataError(f"dev_size={dev_size} leaves no train or no dev documents out of {len(train)}.")
    first = [labels[0] if labels else "" for labels in train.labels]
    counts = Counter(first)
    can_stratify = stratify and min(counts.values()) >= 2 and n_dev >= len(counts)
    idx = list(range(len(train)))
    train_idx, dev_idx = train_test_split(
        idx, test_size=n_dev, random_state=seed, stratify=first if can_stratify else None
    )
    return train.subset(sorted(train_idx)), train.subset(sorted(dev_idx))


def load_corpus(
    dataset: str,
    data_dir: str | None = None,
    file_format: FileFormat | None = None,
    dev_size: int | float = 0.1,
    seed: int = 42,
) -> Corpus:
    """Read a named dataset or a folder into a :class:`Corpus`, carving dev from train if needed.

    ``file_format`` overrides the named dataset's own format (for user folders it defaults to
    ``text``/``label``/``id`` fields).
    """
    name, files, spec_format = _locate(dataset, data_dir)
    fmt = file_format or spec_format or FileFormat()
    digest = hashlib.sha256(repr((fmt, dev_size, seed)).encode())
    stats = ReadStats()
    splits = {split: read_split_file(path, split, fmt, stats, digest) for split, path in files.items()}
    label_names = sorted({label for labels in splits["train"].labels for label in labels})
    if not label_names:
        raise DataError(f"No labels found in {files['train']}; set data.label_field to the field that holds them.")
    multi_label = any(len(labels) != 1 for split in splits.values() for labels in split.labels)
    known = set(label_names)
    for split_name, split in splits.items():
        unseen = sorted({lab for labels in split.labels for lab in labels} - known)
        if unseen:
            shown = ", ".join(unseen[:5]) + (" ..." if len(unseen) > 5 else "")
            raise DataError(
                f"The {split_name} split of {name!r} has labels never seen in train: {shown}. "
                "A classifier cannot predict them; remove those documents or add training examples."
            )
    if "dev" not in splits:
        splits["train"], splits["dev"] = carve_dev(splits["train"], dev_size, seed, stratify=not multi_label)
    for split_name, split in splits.items():
        if len(set(split.ids)) != len(split.ids):
            dup = next(i for i, c in Counter(split.ids).items() if c > 1)
            raise DataError(f"The {split_name} split of {name!r} repeats document id {dup!r}; ids must be unique.")
    if stats.empty_docs:
        log.warning("%s: dropped %d empty or whitespace-only documents.", name, stats.empty_docs)
    if stats.replaced_bytes_docs:
        log.warning(
            "%s: %d lines were not valid UTF-8; bad bytes were replaced with U+FFFD.", name, stats.replaced_bytes_docs
        )
    return Corpus(name, {s: splits[s] for s in SPLIT_NAMES}, label_names, multi_label, digest.hexdigest()[:16])


def read_documents(path: str, file_format: FileFormat) -> Split:
    """Read unlabelled (or labelled) documents to predict on; labels are kept when present."""
    return read_split_file(Path(path).expanduser(), "predict", file_format, ReadStats(), hashlib.sha256())
