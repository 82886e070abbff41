"""The named datasets: where their files live under the data root and how to get them there.

A dataset with a public, checksummed source is downloaded into ``<data root>/<folder>/`` on first
use and converted to the files the readers expect; the raw archive stays beside them. Offline, or
for datasets without such a source, the error says which files to place where.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from datamodules import converters
from datamodules.download import fetch, verify_checksum
from datamodules.formats import DATA_ENV, DataError, FileFormat

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Download:
    """A public file and its published checksum (``sha256:<hex>`` or ``md5:<hex>``)."""

    url: str
    checksum: str
    filename: str = ""

    @property
    def name(self) -> str:
        return self.filename or self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset.

    Args:
        folder: its folder under the data root.
        files: the split files the readers use (``train``, optional ``dev``, ``test``).
        file_format: how to read them.
        source: what the data is, for messages.
        downloads: public files fetched (and verified) when ``files`` are missing.
        raw_files: files a user places by hand when there is nothing to download.
        prepare: builds ``files`` in the folder from the downloaded or placed raw files.
        instructions: where to get the files, for the error when they are missing.
        multi_label: whether it is multi-label where its form says otherwise (labels written as
            one-element lists in single-label data); None: as the data's form says.
    """

    folder: str
    files: dict[str, str]
    file_format: FileFormat = field(default_factory=FileFormat)
    source: str = ""
    downloads: tuple[Download, ...] = ()
    raw_files: tuple[str, ...] = ()
    prepare: Callable[[Path], None] | None = None
    instructions: str = ""
    multi_label: bool | None = None

    @property
    def raw_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.downloads) or self.raw_files


TEXT_GCN = "https://raw.githubusercontent.com/yao8839836/text_gcn/962223652e9bb164ac2d83cd09fc7b8845ce860b/data"
R8_TRAIN_SHA256 = "sha256:3ed60c905aaa95b96c3fc4afb6d14ad2e20106c59c5b9dda950dcb3075eecfbe"
R8_TEST_SHA256 = "sha256:2ba368c42e6808bc3dc68b8f7879eb07a2810ed137f0b304e2213b689677e561"
HEDWIG_TSV = FileFormat(columns=("label", "text"), label_format="bits")
HEDWIG = (
    "castorini/hedwig-data (datasets/{name}/{{train,dev,test}}.tsv: a 0/1 label string, a tab, the text); "
    "it is not downloadable without a clone of that repository"
)
OHSUMED_ARCHIVE = "ohsumed-first-20000-docs.tar.gz"
OHSUMED_HOW = (
    f"Download {OHSUMED_ARCHIVE} from Alessandro Moschitti's corpus page "
    "(disi.unitn.it/moschitti/corpora.htm; no checksum is published, so it is not fetched automatically) "
    "and place it in the folder; it is converted on first use."
)

DATASETS: dict[str, DatasetSpec] = {
    "r8": DatasetSpec(
        "r8",
        {"train": "r8-train-all-terms.txt", "test": "r8-test-all-terms.txt"},
        source="Cardoso-Cachopo's R8 (all-terms), as shipped with Text GCN",
        downloads=(
            Download(f"{TEXT_GCN}/R8/train.txt", R8_TRAIN_SHA256, "r8-train-all-terms.txt"),
            Download(f"{TEXT_GCN}/R8/test.txt", R8_TEST_SHA256, "r8-test-all-terms.txt"),
        ),
    ),
    "20ng": DatasetSpec(
        "20ng",
        {"train": "train.jsonl.gz", "test": "test.jsonl.gz"},
        source="20 Newsgroups bydate",
        downloads=(
            Download(
                "http://qwone.com/~jason/20Newsgroups/20news-bydate.tar.gz",
                "sha256:8f1b2514ca22a5ade8fbb9cfa5727df95fa587f4c87b786e15c759fa66d95610",
            ),
        ),
        prepare=converters.newsgroups,
    ),
    "imdb": DatasetSpec(
        "imdb",
        {"train": "train.jsonl.gz", "test": "test.jsonl.gz"},
        source="IMDB aclImdb v1",
        downloads=(
            Download(
                "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                "md5:7c2ac02c03563afcf9b574c7e56c153a",
            ),
        ),
        prepare=converters.imdb,
    ),
    "reuters21578": DatasetSpec(
        "reuters21578",
        {"train": "modapte90_train.jsonl.gz", "test": "modapte90_test.jsonl.gz"},
        FileFormat(text_fields=("title", "text"), label_field="labels"),
        source="Reuters-21578 ModApte, 90 labels, multi-label",
        downloads=(
            Download(
                "http://kdd.ics.uci.edu/databases/reuters21578/reuters21578.tar.gz",
                "md5:a22faadd7dde0dfdd784e60087209aa6",
            ),
        ),
        prepare=converters.reuters_modapte90,
    ),
    "ag_news": DatasetSpec(
        "ag_news",
        {"train": "train.jsonl.gz", "test": "test.jsonl.gz"},
        FileFormat(text_fields=("title", "text")),
        source="AG News (Zhang et al., 2015), 4 classes",
        downloads=(
            Download(
                "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/train.csv",
                "md5:b1a00f826fdfbd249f79597b59e1dc12",
            ),
            Download(
                "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/test.csv",
                "md5:d52ea96a97a2d943681189a97654912d",
            ),
        ),
        prepare=converters.ag_news,
    ),
    "ohsumed": DatasetSpec(
        "ohsumed",
        {"train": "single_train.jsonl.gz", "test": "single_test.jsonl.gz"},
        source="Ohsumed, single-label form (documents with one of the 23 categories, as in Text GCN / TopicBERT)",
        raw_files=(OHSUMED_ARCHIVE,),
        prepare=converters.ohsumed,
        instructions=OHSUMED_HOW,
        multi_label=False,  # one-element label lists
    ),
    "ohsumed_multilabel": DatasetSpec(
        "ohsumed",
        {"train": "multi_train.jsonl.gz", "test": "multi_test.jsonl.gz"},
        source="Ohsumed, multi-label form (every document with all of its 23 categories)",
        raw_files=(OHSUMED_ARCHIVE,),
        prepare=converters.ohsumed,
        instructions=OHSUMED_HOW,
    ),
    "aapd": DatasetSpec(
        "aapd",
        {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
        HEDWIG_TSV,
        source="AAPD (Yang et al., 2018), 54 labels, multi-label",
        instructions=f"Copy the files from {HEDWIG.format(name='AAPD')}.",
    ),
    "yelp2014": DatasetSpec(
        "yelp2014",
        {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
        HEDWIG_TSV,
        source="Yelp 2014 reviews, 5 star classes",
        instructions=f"Copy the files from {HEDWIG.format(name='Yelp2014')}.",
    ),
}


def _missing_message(spec: DatasetSpec, folder: Path, missing: list[Path], reason: str) -> str:
    names = ", ".join(p.name for p in missing)
    if spec.downloads:
        sources = "; ".join(f"{d.url} ({d.checksum.split(':')[0]} {d.checksum.split(':')[1]})" for d in spec.downloads)
        how = (
            f"{reason} Place {', '.join(spec.raw_names)} there (from {sources}; converted on first use), "
            f"or the prepared files {names}."
        )
    else:
        how = spec.instructions
    return (
        f"Dataset {spec.folder!r} ({spec.source}) is not in {folder}: missing {names}. {how} Or point "
        f"--data.data_dir (or ${DATA_ENV}) at the folder that holds '{spec.folder}/'."
    )


def locate_named(spec: DatasetSpec, root: Path, download: bool) -> tuple[dict[str, Path], FileFormat]:
    """The split files of a named dataset under ``root``, fetched and prepared first if missing."""
    folder = root / spec.folder
    files = {split: folder / name for split, name in spec.files.items()}
    missing = [p for p in files.values() if not p.is_file()]
    if not missing:
        return files, spec.file_format
    raw = [folder / name for name in spec.raw_names]
    absent = [d for d in spec.downloads if not (folder / d.name).is_file()]
    reason = "Downloading is off (--data.download false)."
    fetched = set()
    if absent and download:
        try:
            for item in absent:
                log.info("Downloading %s to %s", item.url, folder)
                fetch(item.url, folder / item.name, item.checksum)  # verified while it streams
                fetched.add(item.name)
        except OSError as err:
            reason = f"Downloading failed ({getattr(err, 'reason', err)})."
    if raw and all(p.is_file() for p in raw):
        for item in spec.downloads:
            if item.name not in fetched:  # placed by hand: check it before converting
                verify_checksum(folder / item.name, item.checksum)
        if spec.prepare is not None:
            log.info("Preparing %s from %s", spec.folder, ", ".join(p.name for p in raw))
            spec.prepare(folder)
        missing = [p for p in files.values() if not p.is_file()]
    if missing:
        raise DataError(_missing_message(spec, folder, missing, reason))
    return files, spec.file_format
