import gzip
import json
import logging

import pytest

from datamodules.corpus import DATA_ENV, DataError, FileFormat, carve_dev, load_corpus, read_documents
from tests.conftest import write_jsonl


def write_r8_style(folder, train_lines, test_lines):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "r8-train-all-terms.txt").write_text("\n".join(train_lines))  # no trailing newline, as in R8
    (folder / "r8-test-all-terms.txt").write_text("\n".join(test_lines))


def test_r8_tsv_reader_keeps_every_row_including_first_and_last(tmp_path):
    train = [f"{'earn' if i % 2 else 'acq'}\tdoc number {i} text" for i in range(20)]
    write_r8_style(tmp_path / "r8", train, ["earn\tfirst test doc", "acq\tlast test doc"])
    corpus = load_corpus("r8", str(tmp_path), dev_size=4, seed=1)
    assert (len(corpus["train"]), len(corpus["dev"]), len(corpus["test"])) == (16, 4, 2)
    assert corpus.label_names == ["acq", "earn"]
    assert not corpus.multi_label
    assert corpus["test"].texts == ["first test doc", "last test doc"]
    assert corpus["test"].labels == [["earn"], ["acq"]]
    assert sorted(corpus["train"].ids + corpus["dev"].ids) == sorted(f"train-{i}" for i in range(1, 21))


def test_data_root_from_environment_variable(tmp_path, monkeypatch):
    write_r8_style(tmp_path / "r8", [f"{('earn', 'acq')[i % 2]}\tdoc {i}" for i in range(10)], ["earn\tx"])
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert len(load_corpus("r8", None, dev_size=2)["dev"]) == 2


def test_jsonl_gz_multi_label_with_title_and_text_fields(tmp_path):
    rows = [
        {"id": i, "labels": ["a", "b"] if i % 3 == 0 else ["a"], "title": f"T{i}", "text": f"body {i}"}
        for i in range(12)
    ]
    for split in ("train", "test"):
        with gzip.open(tmp_path / f"{split}.jsonl.gz", "wt", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    fmt = FileFormat(text_fields=("title", "text"), label_field="labels")
    corpus = load_corpus(str(tmp_path), file_format=fmt, dev_size=3)
    assert corpus.multi_label
    assert corpus["test"].texts[0] == "T0\nbody 0"
    assert corpus["test"].labels[0] == ["a", "b"]
    assert corpus["test"].ids[:2] == ["0", "1"]


def test_csv_with_chosen_columns_and_given_dev_split(tmp_path):
    header = "doc,headline,body,topic\n"
    for split, n in (("train", 8), ("dev", 2), ("test", 3)):
        lines = "".join(f"{split}{i},head {i},body {i},{'x' if i % 2 else 'y'}\n" for i in range(n))
        (tmp_path / f"{split}.csv").write_text(header + lines)
    fmt = FileFormat(text_fields=("headline", "body"), label_field="topic", id_field="doc")
    corpus = load_corpus(str(tmp_path), file_format=fmt)
    assert [len(corpus[s]) for s in ("train", "dev", "test")] == [8, 2, 3]
    assert corpus["dev"].ids == ["dev0", "dev1"]
    assert corpus["train"].texts[1] == "head 1\nbody 1"


def test_csv_missing_column_names_the_setting(tmp_path):
    for split in ("train", "test"):
        (tmp_path / f"{split}.csv").write_text("content,label\nhello,a\n")
    with pytest.raises(DataError, match=r"no column 'text'.*data.file_format.text_fields"):
        load_corpus(str(tmp_path))


def test_dev_split_is_fixed_by_seed_and_stratified(tmp_path):
    rows = [{"id": str(i), "label": "rare" if i < 10 else "common", "text": f"t {i}"} for i in range(100)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", rows[:5])
    a = load_corpus(str(tmp_path), dev_size=0.2, seed=3)
    b = load_corpus(str(tmp_path), dev_size=0.2, seed=3)
    c = load_corpus(str(tmp_path), dev_size=0.2, seed=4)
    assert a["dev"].ids == b["dev"].ids
    assert a["dev"].ids != c["dev"].ids
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert sum(labels == ["rare"] for labels in a["dev"].labels) == 2  # 10% of the 20 dev documents
    assert not set(a["dev"].ids) & set(a["train"].ids)


def test_carve_dev_rejects_impossible_sizes(tmp_path):
    rows = [{"id": str(i), "label": "ab"[i % 2], "text": "t"} for i in range(5)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", rows)
    with pytest.raises(DataError, match="dev_size=5"):
        load_corpus(str(tmp_path), dev_size=5)
    split = load_corpus(str(tmp_path), dev_size=1)["train"]
    with pytest.raises(DataError):
        carve_dev(split, 0.01, 0, stratify=True)


def test_missing_named_dataset_names_files_and_fix(tmp_path):
    with pytest.raises(DataError) as err:
        load_corpus("20ng", str(tmp_path))
    message = str(err.value)
    assert "train.jsonl.gz" in message and "test.jsonl.gz" in message
    assert "--data.data_dir" in message and DATA_ENV in message


def test_unknown_dataset_and_incomplete_folder(tmp_path):
    with pytest.raises(DataError, match=r"Unknown dataset 'nope'.*r8"):
        load_corpus("nope", str(tmp_path))
    write_jsonl(tmp_path / "train.jsonl", [{"id": "1", "label": "a", "text": "x"}])
    with pytest.raises(DataError, match=r"needs train.<ext> and test.<ext>"):
        load_corpus(str(tmp_path))


def test_empty_split_is_an_error(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"id": str(i), "label": "a", "text": "x"} for i in range(4)])
    (tmp_path / "test.jsonl").write_text("\n")
    with pytest.raises(DataError, match="test split is empty"):
        load_corpus(str(tmp_path), dev_size=1)


def test_label_unseen_in_train_is_an_error(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"id": str(i), "label": "ab"[i % 2], "text": "x"} for i in range(4)])
    write_jsonl(tmp_path / "test.jsonl", [{"id": "t", "label": "zebra", "text": "x"}])
    with pytest.raises(DataError, match=r"test split .* never seen in train: zebra"):
        load_corpus(str(tmp_path), dev_size=1)


def test_empty_documents_dropped_and_bad_bytes_replaced(tmp_path, caplog):
    lines = [
        b'{"id": "1", "label": "a", "text": "ok"}',
        b'{"id": "2", "label": "a", "text": "   "}',
        b'{"id": "3", "label": "a", "text": "caf\xe9"}',
        b'{"id": "4", "label": "b", "text": "more"}',
    ]
    (tmp_path / "train.jsonl").write_bytes(b"\n".join(lines))
    (tmp_path / "test.jsonl").write_bytes(lines[0])
    with caplog.at_level(logging.WARNING):
        corpus = load_corpus(str(tmp_path), dev_size=1)
    texts = corpus["train"].texts + corpus["dev"].texts
    assert sorted(texts) == ["caf\ufffd", "more", "ok"]
    assert "dropped 1 empty" in caplog.text and "not valid UTF-8" in caplog.text


def test_duplicate_ids_are_an_error(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"id": "same", "label": "ab"[i % 2], "text": "x"} for i in range(4)])
    write_jsonl(tmp_path / "test.jsonl", [{"id": "t", "label": "a", "text": "x"}])
    with pytest.raises(DataError, match="repeats document id 'same'"):
        load_corpus(str(tmp_path), dev_size=1)


def test_read_documents_for_prediction_without_labels(tmp_path):
    write_jsonl(tmp_path / "new.jsonl", [{"text": "hello"}, {"text": "world"}])
    docs = read_documents(str(tmp_path / "new.jsonl"), FileFormat())
    assert docs.texts == ["hello", "world"] and docs.labels == [[], []]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "sizes", "labels", "multi"),
    [
        ("r8", (4985, 500, 2189), 8, False),
        ("20ng", (10183, 1131, 7532), 20, False),
        ("imdb", (22500, 2500, 25000), 2, False),
        ("reuters21578", (6993, 777, 3019), 90, True),
    ],
)
def test_real_datasets(name, sizes, labels, multi, shared_data_dir):
    dev_size = 500 if name == "r8" else 0.1
    corpus = load_corpus(name, str(shared_data_dir), dev_size=dev_size)
    assert tuple(len(corpus[s]) for s in ("train", "dev", "test")) == sizes
    assert len(corpus.label_names) == labels and corpus.multi_label is multi
