"""How datasets look on disk: the data root, the file formats and the error for bad data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DATA_ENV = "TOPICBERT_DATA"
SUFFIXES = (".jsonl.gz", ".jsonl", ".tsv", ".csv", ".txt")
LabelFormat = Literal["names", "bits"]


class DataError(ValueError):
    """A problem with the user's data; the message says how to fix it."""


@dataclass(frozen=True)
class FileFormat:
    """How to read one dataset's files.

    ``.jsonl``/``.jsonl.gz`` hold one JSON object per line; ``.csv`` and ``.tsv`` have a header row
    unless ``columns`` names their columns; ``.txt`` is ``label<TAB>text`` per line (R8 style).

    Args:
        text_fields: fields (JSONL) or columns (CSV/TSV) joined with a newline to form the text.
        label_field: field or column with the label; a JSON list means several labels.
        id_field: field or column with the document id; row numbers are used when absent.
        label_separator: in CSV/TSV, splits one label cell into several labels (multi-label).
        columns: column names of CSV/TSV files without a header row.
        label_format: ``names`` (labels as written) or ``bits`` (a 0/1 string whose i-th character
            marks label i, as in the hedwig datasets; labels are named by their zero-padded position).
    """

    text_fields: tuple[str, ...] = ("text",)
    label_field: str = "label"
    id_field: str = "id"
    label_separator: str | None = None
    columns: tuple[str, ...] | None = None
    label_format: LabelFormat = "names"


def resolve_data_dir(data_dir: str | None) -> Path:
    """The data root: the argument, else ``$TOPICBERT_DATA``, else ``./data``."""
    return Path(data_dir or os.environ.get(DATA_ENV) or "data").expanduser()
