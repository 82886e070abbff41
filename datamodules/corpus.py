"""Corpus readers: files on disk -> ids, texts and label lists for train / dev / test.

Every document carries a *list* of labels, so single- and multi-label data share one data model.
Formats (see :class:`FileFormat`): JSON Lines (optionally gzipped), CSV and TSV with a header row or
named columns, and ``label<TAB>text`` lines (R8 style). Named datasets are found (and, where a
public source exists, downloaded) by :mod:`datamodules.registry`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sklearn.model_selection import train_test_split

from datamodules.formats import DATA_ENV, SUFFIXES, DataError, FileFormat, resolve_data_dir
from datamodules.registry import DATASETS, locate_named

__all__ = ["DATASETS", "DATA_ENV", "DataError", "FileFormat", "resolve_data_dir"]
log = logging.getLogger(__name__)
SPLIT_NAMES = ("train", "dev", "test")
DEFAULT_ID = FileFormat().id_field  # optional: row numbers stand in when no row has it
csv.field_size_limit(sys.maxsize)  # documents of many megabytes are still one field


@dataclass
class Split:
    """One split of a corpus; ``labels[i]`` is the list of label names of document i.

    A split read from a file also says what reading it dropped or repaired: ``read_counts`` (see
    :meth:`ReadStats.counts`) and ``skipped``, the (row position among the rows read, id, reason) of
    each dropped empty document, so predictions can name them in input order."""

    ids: list[str]
    texts: list[str]
    labels: list[list[str]]
    read_counts: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[int, str, str]] = field(default_factory=list)

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
    read_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # per split file, before dev is carved

    def __getitem__(self, split: str) -> Split:
        return self.splits[split]


@dataclass
class ReadStats:
    """What the reader of one file repaired or dropped, so it can be reported, and what it saw of the
    labels."""

    replaced_bytes_docs: int = 0
    empty_docs: int = 0
    unlabelled_docs: int = 0
    drop_unlabelled: bool = False
    list_labels: bool = False  # some label value was written as a list: the data's own multi-label form

    def counts(self) -> dict[str, int]:
        """What reading changed, by what happened (results.json, the predictions summary)."""
        return {
            "dropped_empty": self.empty_docs,
            "dropped_unlabelled": self.unlabelled_docs,
            "replaced_invalid_utf8": self.replaced_bytes_docs,
        }


def unlabelled(stats: ReadStats, split: str, where: str, fix: str) -> bool:
    """A labelled split's row without a label: skipped and counted when the user said so (True), else
    refused with the row and the fix; prediction files need no labels (False)."""
    if split == "predict":
        return False
    if stats.drop_unlabelled:
        stats.unlabelled_docs += 1
        return True
    raise DataError(f"{where}: no label. {fix}, or pass --data.drop_unlabelled true to drop unlabelled rows.")


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
    """UTF-8 text; invalid bytes become U+FFFD and each line holding some is counted."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        lines = raw.split(b"\n")
        for line in lines:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                stats.replaced_bytes_docs += 1
        return raw.decode("utf-8", errors="replace")


def _labels_of(value, fmt: FileFormat, stats: ReadStats) -> list[str] | None:
    """The labels of one value; None when there is none (missing, null or an empty cell). A list (even
    an empty one) is the multi-label form."""
    if value is None:
        return None
    if isinstance(value, list):
        stats.list_labels = True
        return [str(v) for v in value]
    value = str(value).strip()
    if not value:
        return None
    if fmt.label_format == "bits":
        if set(value) - {"0", "1"}:
            raise DataError(f"label {value[:40]!r} is not a 0/1 string; set data.file_format.label_format: names.")
        return [f"{i:0{len(str(len(value) - 1))}d}" for i, bit in enumerate(value) if bit == "1"]
    if fmt.label_separator:
        return [v.strip() for v in value.split(fmt.label_separator) if v.strip()] or None
    return [value]


def _read_label_text_lines(raw: bytes, split: str, fmt: FileFormat, stats: ReadStats, path: Path) -> Split:
    ids, texts, labels = [], [], []
    for n, line in enumerate(raw.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        text_line = _decode(line, stats)
        if "\t" not in text_line:
            fix = (
                "for plain documents, one per line, pass --data.predict_format lines"
                if split == "predict"
                else "write the label, a tab, then the text"
            )
            raise DataError(f"{path}, line {n}: expected 'label<TAB>text' but found no tab; {fix}.")
        label, text = text_line.split("\t", 1)
        parsed = _labels_of(label, fmt, stats)
        if parsed is None and unlabelled(stats, split, f"{path}, line {n}", "Write its label before the tab"):
            continue
        ids.append(f"{split}-{n}")
        texts.append(text)
        labels.append(parsed or [])
    return Split(ids, texts, labels)


def _read_jsonl(raw: bytes, split: str, fmt: FileFormat, stats: ReadStats, path: Path) -> Split:
    ids, texts, labels = [], [], []
    for n, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(_decode(line, stats))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}, line {n}: not valid JSON ({err.msg}); fix or remove that line.") from err
        missing = [f for f in fmt.text_fields if f not in row]
        if missing:
            raise DataError(
                f"{path}, line {n}: no field {missing[0]!r}; set data.file_format.text_fields to the fields that "
                f"hold the text (this row has {sorted(row)})."
            )
        if fmt.id_field != DEFAULT_ID and fmt.id_field not in row:
            raise DataError(
                f"{path}, line {n}: no id field {fmt.id_field!r} (this row has {sorted(row)}); set "
                "data.file_format.id_field to the field that holds the id."
            )
        # the default field also answers to "labels", the usual name of a multi-label list
        field = "labels" if fmt.label_field == "label" and "label" not in row and "labels" in row else fmt.label_field
        parsed = _labels_of(row.get(field), fmt, stats)
        fix = f"Fill in field {fmt.label_field!r} or set data.file_format.label_field (this row has {sorted(row)})"
        if parsed is None and unlabelled(stats, split, f"{path}, line {n}", fix):
            continue
        ids.append(str(row.get(fmt.id_field, f"{split}-{n}")))
        texts.append("\n".join(str(row[f] or "") for f in fmt.text_fields))
        labels.append(parsed or [])
    return Split(ids, texts, labels)


def _read_delimited(raw: bytes, split: str, fmt: FileFormat, stats: ReadStats, path: Path) -> Split:
    """CSV (quoted fields) or TSV (no quoting), with a header row unless ``fmt.columns`` names them."""
    tsv = path.name.endswith(".tsv")
    dialect: dict[str, Any] = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if tsv else {}
    reader = csv.DictReader(io.StringIO(_decode(raw, stats), newline=""), fieldnames=fmt.columns, **dialect)
    columns = list(reader.fieldnames or [])
    needed = [*fmt.text_fields, fmt.label_field] if split != "predict" else list(fmt.text_fields)
    if fmt.id_field != DEFAULT_ID:
        needed.append(fmt.id_field)
    missing = [c for c in needed if c not in columns]
    if missing:
        shown = [c[:30] for c in columns[:8]]
        raise DataError(
            f"{path}: no column {missing[0]!r} (header: {shown}); set data.file_format.text_fields / "
            "data.file_format.label_field / data.file_format.id_field to its column names, or, if the file has no "
            "header row, name its columns "
            "with data.file_format.columns (e.g. [label, text])."
        )
    ids, texts, labels = [], [], []
    for n, row in enumerate(reader, start=1):
        if None in row or any(row.get(c) is None for c in needed):
            raise DataError(
                f"{path}, row {n}: expected {len(columns)} columns ({columns}), found another count; fix the row "
                "(in CSV, quote a field that holds the delimiter)."
            )
        parsed = _labels_of(row.get(fmt.label_field), fmt, stats)
        fix = f"Fill in its {fmt.label_field!r} cell"
        if parsed is None and unlabelled(stats, split, f"{path}, row {n}", fix):
            continue
        ids.append(str(row.get(fmt.id_field) or f"{split}-{n}"))
        texts.append("\n".join(row[c] or "" for c in fmt.text_fields))
        labels.append(parsed or [])
    return Split(ids, texts, labels)


READERS = {
    ".jsonl.gz": _read_jsonl,
    ".jsonl": _read_jsonl,
    ".tsv": _read_delimited,
    ".csv": _read_delimited,
    ".txt": _read_label_text_lines,
}


def read_split_file(path: Path, split: str, fmt: FileFormat, stats: ReadStats, digest) -> Split:
    """Read one split file in the format its name ends with; drop empty documents."""
    suffix = next((s for s in SUFFIXES if path.name.endswith(s)), None)
    if suffix is None:
        raise DataError(f"{path}: unknown file type; use one of {', '.join(SUFFIXES)}.")
    if not path.is_file():
        raise DataError(
            f"{path} does not exist; check the path" + (" given to --data.predict_file." if split == "predict" else ".")
        )
    raw = _read_bytes(path, digest)
    data = READERS[suffix](raw, split, fmt, stats, path)
    keep = [i for i, t in enumerate(data.texts) if t.strip()]
    skipped = [(i, data.ids[i], "empty document") for i in sorted(set(range(len(data))) - set(keep))]
    stats.empty_docs += len(skipped)
    data = data.subset(keep)
    if len(data) == 0:
        raise DataError(f"{path} holds no documents (the {split} split is empty); check the file.")
    data.read_counts, data.skipped = stats.counts(), skipped
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


def _locate(
    dataset: str, data_dir: str | None, download: bool
) -> tuple[str, dict[str, Path], FileFormat | None, bool | None]:
    """(name, split files, the named dataset's format, whether it is multi-label where its form says otherwise)."""
    if dataset in DATASETS:
        spec = DATASETS[dataset]
        files, fmt = locate_named(spec, resolve_data_dir(data_dir), download)
        return dataset, files, fmt, spec.multi_label
    folder = Path(dataset).expanduser()
    if folder.is_dir():
        files = find_split_files(folder)
        if "train" not in files or "test" not in files:
            raise DataError(
                f"{folder} needs train.<ext> and test.<ext> (dev.<ext> optional), with <ext> one of "
                f"{', '.join(SUFFIXES)}; found {sorted(p.name for p in folder.iterdir())}."
            )
        return folder.name, files, None, None
    raise DataError(
        f"Unknown dataset {dataset!r}: use one of {', '.join(DATASETS)} or a folder with train/test files "
        f"(the path {folder} does not exist)."
    )


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
    download: bool = True,
    multi_label: bool | None = None,
    drop_unlabelled: bool = False,
) -> Corpus:
    """Read a named dataset or a folder into a :class:`Corpus`, carving dev from train if needed.

    ``file_format`` overrides the named dataset's own format (for user folders it defaults to
    ``text``/``label``/``id`` fields). A named dataset missing from the data root is downloaded there
    when ``download`` allows and a checksummed public source exists.

    Whether the data is multi-label comes from ``multi_label``, else from the data's own form: labels
    written as lists, or any document with several labels. Never from a missing label: a row
    without one is an error naming it, or is dropped and counted with ``drop_unlabelled``.
    """
    name, files, spec_format, spec_multi_label = _locate(dataset, data_dir, download)
    fmt = file_format or spec_format or FileFormat()
    digest = hashlib.sha256(repr((fmt, dev_size, seed, multi_label, drop_unlabelled)).encode())
    stats = {split: ReadStats(drop_unlabelled=drop_unlabelled) for split in files}
    splits = {split: read_split_file(path, split, fmt, stats[split], digest) for split, path in files.items()}
    label_names = sorted({label for labels in splits["train"].labels for label in labels})
    if not label_names:
        raise DataError(
            f"No labels found in {files['train']}; set data.file_format.label_field to the field that holds them."
        )
    if len(label_names) < 2:
        raise DataError(
            f"{files['train']} has only one label ({label_names[0]!r}); a classifier needs at least two. Check "
            "data.file_format.label_field, or add documents of other classes."
        )
    several = any(len(labels) > 1 for split in splits.values() for labels in split.labels)
    if multi_label is None:
        list_labels = any(s.list_labels for s in stats.values())
        multi_label = spec_multi_label if spec_multi_label is not None else list_labels or several
    if not multi_label:
        check_one_label_each(splits, name)
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
            raise DataError(
                f"The {split_name} split of {name!r} repeats document id {dup!r}; make the ids unique, or set "
                "data.file_format.id_field to a field that no row has, so that rows are numbered."
            )
    read_counts = {split_name: stats[split_name].counts() for split_name in files}
    for split_name, path in files.items():
        log_read_counts(f"{name} {split_name} ({path.name})", read_counts[split_name])
    return Corpus(
        name, {s: splits[s] for s in SPLIT_NAMES}, label_names, multi_label, digest.hexdigest()[:16], read_counts
    )


READ_MESSAGES = {
    "dropped_empty": "dropped %d empty or whitespace-only documents",
    "dropped_unlabelled": "dropped %d documents without a label (--data.drop_unlabelled)",
    "replaced_invalid_utf8": "replaced bytes that are not valid UTF-8 with U+FFFD in %d lines",
}


def log_read_counts(where: str, counts: dict[str, int]) -> None:
    """One warning line per file that reading changed."""
    said = [READ_MESSAGES[k] % n for k, n in counts.items() if n]
    if said:
        log.warning("%s: %s.", where, "; ".join(said))


def check_one_label_each(splits: dict[str, Split], name: str) -> None:
    """Single-label data: every document has exactly one label."""
    for split_name, split in splits.items():
        for doc_id, labels in zip(split.ids, split.labels, strict=True):
            if len(labels) != 1:
                raise DataError(
                    f"The {split_name} split of {name!r} is single-label, but document {doc_id!r} has "
                    f"{len(labels)} labels ({labels}); pass --data.multi_label true if it is multi-label data."
                )


STDIN = "-"


def read_documents(path: str, file_format: FileFormat, lines: bool = False) -> Split:
    """Read unlabelled (or labelled) documents to predict on; labels are kept when present.

    ``lines`` (and ``path`` ``-``, standard input): plain text, one document per line, ids
    ``line-<n>``; a blank line is an empty document, skipped and reported in its place."""
    if lines or path == STDIN:
        raw = sys.stdin.buffer.read() if path == STDIN else _read_bytes(Path(path).expanduser(), hashlib.sha256())
        documents = plain_lines(raw, ReadStats())
    else:
        documents = read_split_file(Path(path).expanduser(), "predict", file_format, ReadStats(), hashlib.sha256())
    log_read_counts(f"{path}", documents.read_counts)
    return documents


def plain_lines(raw: bytes, stats: ReadStats) -> Split:
    rows = raw.split(b"\n")
    if rows and not rows[-1].strip():
        rows.pop()  # the newline that ends the last line starts no document
    texts = [_decode(row.rstrip(b"\r"), stats) for row in rows]
    return documents_to_predict(texts, [f"line-{n}" for n in range(1, len(texts) + 1)], stats)


def documents_to_predict(texts: list[str], ids: list[str], stats: ReadStats | None = None) -> Split:
    """Unlabelled documents; empty ones are skipped and remembered in their place (``Split.skipped``)."""
    stats = stats or ReadStats()
    skipped = [(i, ids[i], "empty document") for i, text in enumerate(texts) if not text.strip()]
    stats.empty_docs = len(skipped)
    keep = [i for i, text in enumerate(texts) if text.strip()]
    if not keep:
        raise DataError("The documents to predict are all empty; give at least one with some text.")
    documents = Split(ids, texts, [[] for _ in texts]).subset(keep)
    documents.read_counts, documents.skipped = stats.counts(), skipped
    return documents


def load_split(
    dataset: str,
    split: str,
    label_names: list[str],
    multi_label: bool,
    data_dir: str | None = None,
    file_format: FileFormat | None = None,
    download: bool = True,
    drop_unlabelled: bool = False,
) -> Split:
    """One split's file alone, read against a trained model's labels: a model restored from its
    checkpoint is tested without its training data."""
    spec = DATASETS.get(dataset)
    if spec is not None:
        path: Path | None = resolve_data_dir(data_dir) / spec.folder / spec.files.get(split, "")
    else:
        path = find_split_files(Path(dataset).expanduser()).get(split) if Path(dataset).expanduser().is_dir() else None
    fmt = file_format or (spec.file_format if spec else FileFormat())
    if path is None or not path.is_file():  # not there yet: located (and fetched) with the whole dataset
        name, files, spec_format, _ = _locate(dataset, data_dir, download)
        if split not in files:
            raise DataError(f"{name!r} has no {split} file; {split} needs one.")
        path, fmt = files[split], file_format or spec_format or FileFormat()
    stats = ReadStats(drop_unlabelled=drop_unlabelled)
    documents = read_split_file(path, split, fmt, stats, hashlib.sha256())
    log_read_counts(f"{dataset} {split} ({path.name})", documents.read_counts)
    unseen = sorted({label for labels in documents.labels for label in labels} - set(label_names))
    if unseen:
        raise DataError(
            f"{path} has labels the model was not trained on: {', '.join(unseen[:5])}. Remove those documents, "
            "or fit a model on data that has them."
        )
    if not multi_label:
        check_one_label_each({split: documents}, dataset)
    return documents
