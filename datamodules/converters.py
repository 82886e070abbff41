"""Turn the public archives of the named datasets into the JSON Lines files the readers expect.

Each converter reads the raw file(s) in a dataset folder and writes gzipped JSON Lines beside them
(atomically, with a fixed gzip timestamp so the same input always gives the same bytes).
"""

from __future__ import annotations

import csv
import gzip
import html
import json
import re
import tarfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from utils.files import atomic_write


def write_jsonl_gz(path: Path, rows: Iterable[dict]) -> None:
    with atomic_write(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        for row in rows:
            f.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))


def _numeric_key(name: str) -> tuple[int, str]:
    stem = name.split("_")[0]
    return (int(stem), name) if stem.isdigit() else (0, name)


def _tar_files(archive: Path, desc: str) -> Iterable[tuple[list[str], bytes]]:
    """(path parts, bytes) of every regular file in a tar archive, with a progress bar."""
    with tarfile.open(archive) as tar:
        for member in tqdm(tar, desc=desc, unit=" files"):
            if member.isfile():
                f = tar.extractfile(member)
                assert f is not None  # extractfile returns a file object for every regular file
                yield member.name.split("/"), f.read()


def newsgroups(folder: Path, archive: str = "20news-bydate.tar.gz") -> None:
    """20news-bydate: ``20news-bydate-{train,test}/<group>/<article>`` -> ``{train,test}.jsonl.gz``.

    Texts are the files' bytes read as latin-1 (as scikit-learn does); ids are ``<group>/<article>``.
    """
    rows = defaultdict(list)
    for parts, data in _tar_files(folder / archive, "Converting 20 Newsgroups"):
        if len(parts) == 3 and parts[0].startswith("20news-bydate-"):
            split, group, article = parts[0].removeprefix("20news-bydate-"), parts[1], parts[2]
            rows[split].append({"id": f"{group}/{article}", "label": group, "text": data.decode("latin-1")})
    for split in ("train", "test"):
        ordered = sorted(rows[split], key=lambda r: (r["label"], _numeric_key(r["id"].split("/")[1])))
        write_jsonl_gz(folder / f"{split}.jsonl.gz", ordered)


def imdb(folder: Path, archive: str = "aclImdb_v1.tar.gz") -> None:
    """aclImdb v1: ``aclImdb/{train,test}/{pos,neg}/<n>_<rating>.txt`` -> ``{train,test}.jsonl.gz``
    (the unlabelled ``unsup`` reviews are left out)."""
    rows: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for parts, data in _tar_files(folder / archive, "Converting IMDB"):
        if len(parts) == 4 and parts[1] in ("train", "test") and parts[2] in ("pos", "neg"):
            split, label, name = parts[1], parts[2], parts[3].removesuffix(".txt")
            rating = int(name.split("_")[1])
            text = data.decode("utf-8", errors="replace")
            rows[split].append({"id": f"{split}/{label}/{name}", "label": label, "rating": rating, "text": text})
    for split in ("train", "test"):
        ordered = sorted(rows[split], key=lambda r: (r["label"], _numeric_key(r["id"].split("/")[2])))
        write_jsonl_gz(folder / f"{split}.jsonl.gz", ordered)


AG_NEWS_CLASSES = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}


def ag_news(folder: Path) -> None:
    """AG News (Zhang et al., 2015): ``{train,test}.csv`` rows ``class, title, description`` ->
    ``{train,test}.jsonl.gz`` with the class names."""
    for split in ("train", "test"):
        with (folder / f"{split}.csv").open(encoding="utf-8", newline="") as f:
            rows = [
                {"id": f"{split}-{n}", "label": AG_NEWS_CLASSES[cls], "title": title, "text": description}
                for n, (cls, title, description) in enumerate(csv.reader(f), start=1)
            ]
        write_jsonl_gz(folder / f"{split}.jsonl.gz", rows)


_REUTERS = re.compile(r"<REUTERS (?P<attrs>[^>]*)>(?P<body>.*?)</REUTERS>", re.S)
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_CONTROL_REF = re.compile(r"&#(\d+);")


def _sgml_text(value: str) -> str:
    """Unescape ``&lt; &gt; &amp;`` and drop character references to control codes (e.g. ``&#3;``)."""
    value = _CONTROL_REF.sub(lambda m: "" if int(m.group(1)) < 32 or int(m.group(1)) == 127 else m.group(0), value)
    return html.unescape(value) if "&" in value else value


def _element(body: str, tag: str) -> str | None:
    match = re.search(rf"<{tag}>(.*?)</{tag}>", body, re.S)
    return match.group(1) if match else None


def parse_reuters_sgml(text: str) -> list[dict]:
    """Every ``<REUTERS>`` document of one ``reut2-NNN.sgm`` file: id, split, topics, title, text."""
    docs = []
    for match in _REUTERS.finditer(text):
        attrs = dict(_ATTR.findall(match.group("attrs")))
        body = match.group("body")
        topics = re.findall(r"<D>(.*?)</D>", _element(body, "TOPICS") or "")
        text_attrs = re.search(r"<TEXT([^>]*)>(.*?)</TEXT>", body, re.S)
        kind = dict(_ATTR.findall(text_attrs.group(1))).get("TYPE", "NORM") if text_attrs else "NORM"
        inner = text_attrs.group(2) if text_attrs else ""
        title = _element(inner, "TITLE") or ""
        content = inner if kind == "UNPROC" else (_element(inner, "BODY") or "")
        docs.append(
            {
                "id": int(attrs["NEWID"]),
                "split": attrs.get("LEWISSPLIT"),
                "has_topics": attrs.get("TOPICS") == "YES",
                "topics": topics,
                "title": _sgml_text(title).strip(),
                "text": _sgml_text(content),
            }
        )
    return docs


def reuters_modapte90(folder: Path, archive: str = "reuters21578.tar.gz") -> None:
    """Reuters-21578 ModApte with the 90 categories that occur in both splits (the distribution's README,
    section VIII.B): ``modapte90_{train,test}.jsonl.gz`` and ``modapte90_labels.txt``."""
    docs = []
    for parts, data in _tar_files(folder / archive, "Converting Reuters-21578"):
        if parts[-1].startswith("reut2-") and parts[-1].endswith(".sgm"):
            docs += parse_reuters_sgml(data.decode("latin-1"))
    modapte: dict[str, list[dict]] = {"train": [], "test": []}
    for doc in docs:
        if doc["has_topics"] and doc["split"] in ("TRAIN", "TEST"):
            modapte[doc["split"].lower()].append(doc)
    in_train = {t for d in modapte["train"] for t in d["topics"]}
    labels = sorted(in_train & {t for d in modapte["test"] for t in d["topics"]})
    keep = set(labels)
    for split, split_docs in modapte.items():
        rows = []
        for doc in sorted(split_docs, key=lambda d: d["id"]):
            doc_labels = [t for t in doc["topics"] if t in keep]
            if doc_labels:
                rows.append({"id": doc["id"], "labels": doc_labels, "title": doc["title"], "text": doc["text"]})
        write_jsonl_gz(folder / f"modapte90_{split}.jsonl.gz", rows)
    with atomic_write(folder / "modapte90_labels.txt") as f:
        f.write("\n".join(labels) + "\n")


def ohsumed(folder: Path, archive: str = "ohsumed-first-20000-docs.tar.gz") -> None:
    """Ohsumed (first 20,000 abstracts, 23 cardiovascular categories C01-C23), whose archive files sit in
    ``{training,test}/<category>/<doc>``; a document filed under several categories carries them all.

    Writes ``multi_{train,test}.jsonl.gz`` (every document, all its categories) and
    ``single_{train,test}.jsonl.gz`` (only documents with one category, as in Text GCN and TopicBERT).
    """
    texts: dict[str, dict[str, str]] = defaultdict(dict)
    categories: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for parts, data in _tar_files(folder / archive, "Converting Ohsumed"):
        if len(parts) >= 3 and parts[-3] in ("training", "test"):
            split = "train" if parts[-3] == "training" else "test"
            texts[split][parts[-1]] = data.decode("utf-8", errors="replace")
            categories[split][parts[-1]].append(parts[-2])
    for split in ("train", "test"):
        rows = [
            {"id": doc, "labels": sorted(categories[split][doc]), "text": texts[split][doc]}
            for doc in sorted(texts[split], key=_numeric_key)
        ]
        write_jsonl_gz(folder / f"multi_{split}.jsonl.gz", rows)
        write_jsonl_gz(folder / f"single_{split}.jsonl.gz", (r for r in rows if len(r["labels"]) == 1))
