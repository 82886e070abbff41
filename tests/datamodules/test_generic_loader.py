"""The user's own data: a folder of train / (dev) / test files in each format, single- and multi-label."""

import gzip
import json

import pytest

from datamodules.corpus import DataError, FileFormat, load_corpus
from tests.conftest import write_jsonl

ROWS = [
    ("d1", "sport", "goal match"),
    ("d2", "finance|sport", "bank goal"),
    ("d3", "science", "atom cell"),
    ("d4", "finance", "stock bank"),
    ("d5", "sport|science", "team atom"),
    ("d6", "science", "physics"),
]


def write_split_files(folder, suffix, render, header=""):
    for split, rows in (("train", ROWS), ("dev", ROWS[:2]), ("test", ROWS[2:])):
        (folder / f"{split}{suffix}").write_text(header + "".join(render(r) for r in rows), encoding="utf-8")


def check(corpus, multi=True):
    assert [len(corpus[s]) for s in ("train", "dev", "test")] == [6, 2, 4]
    names = ["finance", "science", "sport"] if multi else sorted({r[1] for r in ROWS})  # cells kept whole
    assert corpus.label_names == names
    assert corpus.multi_label is multi
    assert corpus["train"].ids[:2] == ["d1", "d2"]
    assert corpus["train"].texts[1] == "bank goal"
    assert corpus["train"].labels[1] == (["finance", "sport"] if multi else ["finance|sport"])


def test_jsonl_with_label_lists(tmp_path):
    for split, rows in (("train", ROWS), ("dev", ROWS[:2]), ("test", ROWS[2:])):
        write_jsonl(tmp_path / f"{split}.jsonl", [{"id": i, "labels": lab.split("|"), "text": t} for i, lab, t in rows])
    check(load_corpus(str(tmp_path)))


def test_jsonl_gz_with_named_fields(tmp_path):
    for split, rows in (("train", ROWS), ("dev", ROWS[:2]), ("test", ROWS[2:])):
        with gzip.open(tmp_path / f"{split}.jsonl.gz", "wt", encoding="utf-8") as f:
            f.writelines(json.dumps({"key": i, "tags": lab.split("|"), "body": t}) + "\n" for i, lab, t in rows)
    check(load_corpus(str(tmp_path), file_format=FileFormat(text_fields=("body",), label_field="tags", id_field="key")))


def test_csv_with_header_and_label_separator(tmp_path):
    write_split_files(tmp_path, ".csv", lambda r: f'{r[0]},"{r[2]}",{r[1]}\n', header="id,text,label\n")
    check(load_corpus(str(tmp_path), file_format=FileFormat(label_separator="|")))


def test_tsv_with_header(tmp_path):
    write_split_files(tmp_path, ".tsv", lambda r: f"{r[1]}\t{r[0]}\t{r[2]}\n", header="topic\tdoc\tcontent\n")
    fmt = FileFormat(text_fields=("content",), label_field="topic", id_field="doc", label_separator="|")
    check(load_corpus(str(tmp_path), file_format=fmt))


def test_single_label_when_the_separator_is_not_given(tmp_path):
    write_split_files(tmp_path, ".tsv", lambda r: f"{r[0]}\t{r[1]}\t{r[2]}\n", header="id\tlabel\ttext\n")
    check(load_corpus(str(tmp_path)), multi=False)


def test_headerless_tsv_with_named_columns_and_label_bits(tmp_path):
    bits = {"finance": "100", "science": "010", "sport": "001"}

    def render(row):
        mask = "".join(str(max(int(bits[lab][k]) for lab in row[1].split("|"))) for k in range(3))
        return f"{mask}\t{row[2]}\n"

    write_split_files(tmp_path, ".tsv", render)
    corpus = load_corpus(str(tmp_path), file_format=FileFormat(columns=("label", "text"), label_format="bits"))
    assert corpus.label_names == ["0", "1", "2"] and corpus.multi_label
    assert corpus["train"].labels[:2] == [["2"], ["0", "2"]]
    assert corpus["train"].texts[0] == "goal match" and corpus["train"].ids[0] == "train-1"


def test_label_bits_name_labels_so_they_sort_by_position(tmp_path):
    lines = "".join(f"{'0' * i}1{'0' * (11 - i)}\tdoc {i}\n" for i in range(12))
    for split in ("train", "test"):
        (tmp_path / f"{split}.tsv").write_text(lines)
    corpus = load_corpus(
        str(tmp_path), file_format=FileFormat(columns=("label", "text"), label_format="bits"), dev_size=2
    )
    assert corpus.label_names == [f"{i:02d}" for i in range(12)]


def test_bits_that_are_not_bits_are_an_error(tmp_path):
    for split in ("train", "test"):
        (tmp_path / f"{split}.tsv").write_text("01x\tsome text\n" * 4)
    with pytest.raises(DataError, match="not a 0/1 string"):
        load_corpus(str(tmp_path), file_format=FileFormat(columns=("label", "text"), label_format="bits"))


def test_headerless_file_read_with_a_header_names_the_fix(tmp_path):
    for split in ("train", "test"):
        (tmp_path / f"{split}.tsv").write_text("earn\tprofit rose\nacq\tbought a firm\n")
    with pytest.raises(DataError, match=r"data\.file_format\.columns"):
        load_corpus(str(tmp_path))


def test_csv_row_with_missing_cells_is_an_error(tmp_path):
    for split in ("train", "test"):
        (tmp_path / f"{split}.csv").write_text("text,label\nfine doc,a\nbroken row\n")
    with pytest.raises(DataError, match="row 2"):
        load_corpus(str(tmp_path))


def test_a_path_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_corpus(str(tmp_path / "nowhere"))


def test_datamodule_passes_columns_and_label_format_to_the_reader(tmp_path):
    from datamodules import DocumentDataModule

    for split in ("train", "test"):
        (tmp_path / f"{split}.tsv").write_text("".join(f"{'10' if i % 2 else '11'}\tdoc {i}\n" for i in range(10)))
    fmt = FileFormat(columns=("label", "text"), label_format="bits")
    dm = DocumentDataModule(dataset=str(tmp_path), tokenizer=None, file_format=fmt, dev_size=2)
    assert dm.multi_label and dm.label_names == ["0", "1"] and dm.num_labels == 2
