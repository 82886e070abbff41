"""Named datasets: download on first use (checksummed), conversion of the public archives, offline errors."""

import gzip
import hashlib
import io
import json
import socket
import tarfile

import pytest

from datamodules import converters
from datamodules.corpus import DataError, load_corpus
from datamodules.download import fetch
from datamodules.registry import DATASETS, DatasetSpec, Download, locate_named


def make_tar(path, files: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def read_rows(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def sha256(path):
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


NEWSGROUPS = {
    "20news-bydate-train/sci.med/10": b"From: a\n\nfever and cells",
    "20news-bydate-train/sci.med/9": b"caf\xe9 doctors",  # latin-1, ordered numerically before 10
    "20news-bydate-train/rec.autos/7": b"engine and wheels",
    "20news-bydate-test/rec.autos/20": b"brakes",
    "20news-bydate-test/sci.med/21": b"vaccine",
}


def test_every_named_dataset_of_the_papers_is_registered():
    assert {
        "r8",
        "20ng",
        "imdb",
        "reuters21578",
        "ohsumed",
        "ohsumed_multilabel",
        "ag_news",
        "aapd",
        "yelp2014",
    } <= set(DATASETS)
    for spec in DATASETS.values():
        assert {"train", "test"} <= set(spec.files)
        assert spec.downloads or spec.instructions, "each dataset either downloads or says where to get it"
        for item in spec.downloads:
            algorithm, digest = item.checksum.split(":")
            assert len(digest) == {"md5": 32, "sha256": 64}[algorithm]


@pytest.fixture
def offline(monkeypatch):
    """No name resolves, as on a machine without internet (this one already has none; elsewhere the
    test must not download 80 MB)."""

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)


def test_offline_download_fails_with_the_files_to_place(tmp_path, offline):
    with pytest.raises(DataError) as err:
        load_corpus("imdb", str(tmp_path))
    message = str(err.value)
    assert "Downloading failed" in message and "aclImdb_v1.tar.gz" in message
    assert "train.jsonl.gz" in message and str(tmp_path / "imdb") in message and "md5" in message
    assert not any((tmp_path / "imdb").glob("*")), "no partial download is left behind"


def test_download_off_and_manual_datasets_say_what_to_do(tmp_path, offline):
    with pytest.raises(DataError, match="Downloading is off"):
        load_corpus("20ng", str(tmp_path), download=False)
    with pytest.raises(DataError, match=r"hedwig-data.*AAPD"):
        load_corpus("aapd", str(tmp_path))
    with pytest.raises(DataError, match=r"ohsumed-first-20000-docs\.tar\.gz"):
        load_corpus("ohsumed_multilabel", str(tmp_path))


def test_placed_archive_with_a_wrong_checksum_is_refused(tmp_path):
    (tmp_path / "imdb").mkdir()
    (tmp_path / "imdb" / "aclImdb_v1.tar.gz").write_bytes(b"not the archive")
    with pytest.raises(DataError, match="does not match its published md5"):
        load_corpus("imdb", str(tmp_path))


def test_download_is_verified_then_converted_on_first_use(tmp_path):
    archive = make_tar(tmp_path / "20news-bydate.tar.gz", NEWSGROUPS)
    download = Download(archive.as_uri(), sha256(archive))
    files = {"train": "train.jsonl.gz", "test": "test.jsonl.gz"}
    spec = DatasetSpec("toy", files, source="toy 20NG", downloads=(download,), prepare=converters.newsgroups)
    files, _ = locate_named(spec, tmp_path / "root", download=True)
    assert (tmp_path / "root/toy/20news-bydate.tar.gz").read_bytes() == archive.read_bytes()
    train = read_rows(files["train"])
    assert [r["id"] for r in train] == ["rec.autos/7", "sci.med/9", "sci.med/10"]
    assert train[1] == {"id": "sci.med/9", "label": "sci.med", "text": "café doctors"}
    assert [r["label"] for r in read_rows(files["test"])] == ["rec.autos", "sci.med"]
    again, _ = locate_named(spec, tmp_path / "root", download=False)  # ready: nothing fetched or converted
    assert again == files


def test_fetch_with_a_wrong_checksum_leaves_nothing(tmp_path):
    source = tmp_path / "file.bin"
    source.write_bytes(b"payload")
    with pytest.raises(DataError, match="does not match"):
        fetch(source.as_uri(), tmp_path / "out" / "file.bin", "md5:" + "0" * 32)
    assert list((tmp_path / "out").iterdir()) == []


def test_imdb_archive_conversion(tmp_path):
    make_tar(
        tmp_path / "aclImdb_v1.tar.gz",
        {
            "aclImdb/train/pos/10_9.txt": b"great film",
            "aclImdb/train/pos/2_8.txt": b"fine<br />film",
            "aclImdb/train/neg/0_1.txt": b"awful",
            "aclImdb/train/unsup/5_0.txt": b"no label",
            "aclImdb/test/neg/3_2.txt": b"bad",
            "aclImdb/README": b"readme",
        },
    )
    converters.imdb(tmp_path)
    train = read_rows(tmp_path / "train.jsonl.gz")
    assert [r["id"] for r in train] == ["train/neg/0_1", "train/pos/2_8", "train/pos/10_9"]
    assert train[2] == {"id": "train/pos/10_9", "label": "pos", "rating": 9, "text": "great film"}
    assert read_rows(tmp_path / "test.jsonl.gz") == [{"id": "test/neg/3_2", "label": "neg", "rating": 2, "text": "bad"}]


def test_ag_news_conversion_names_the_classes(tmp_path):
    (tmp_path / "train.csv").write_text('"3","Stocks rise","Markets, up"\n"2","Cup final","Goal"\n')
    (tmp_path / "test.csv").write_text('"2","Derby","Draw"\n')
    converters.ag_news(tmp_path)
    assert read_rows(tmp_path / "train.jsonl.gz")[0] == {
        "id": "train-1",
        "label": "Business",
        "title": "Stocks rise",
        "text": "Markets, up",
    }
    corpus = load_corpus(str(tmp_path), dev_size=1)  # the prepared files read like any folder
    assert corpus.label_names == ["Business", "Sports"]


def test_ohsumed_archive_gives_single_and_multi_label_forms(tmp_path):
    root = tmp_path / "data"
    (root / "ohsumed").mkdir(parents=True)
    docs = {
        "training/C01/0000001": b"heart valve",
        "training/C04/0000001": b"heart valve",
        "training/C04/0000002": b"tumour",
        "training/C01/0000003": b"infection",
        "test/C01/0000010": b"bacteria",
        "test/C04/0000011": b"cancer",
        "test/C01/0000011": b"cancer",
    }
    make_tar(
        root / "ohsumed" / "ohsumed-first-20000-docs.tar.gz",
        {f"ohsumed-first-20000-docs/{k}": v for k, v in docs.items()},
    )
    multi = load_corpus("ohsumed_multilabel", str(root), dev_size=1)
    assert multi.multi_label and multi.label_names == ["C01", "C04"]
    labels = dict(zip(multi["test"].ids, multi["test"].labels, strict=True))
    assert labels == {"0000010": ["C01"], "0000011": ["C01", "C04"]}
    assert multi["test"].texts == ["bacteria", "cancer"]
    single = load_corpus("ohsumed", str(root), dev_size=1)
    assert not single.multi_label
    assert sorted(single["train"].ids + single["dev"].ids) == ["0000002", "0000003"]
    assert single["test"].ids == ["0000010"]


REUTERS_SGML = """<!DOCTYPE lewis SYSTEM "lewis.dtd">
<REUTERS TOPICS="YES" LEWISSPLIT="TRAIN" CGISPLIT="TRAINING-SET" OLDID="1" NEWID="2">
<DATE>26-FEB-1987</DATE><TOPICS><D>grain</D><D>wheat</D></TOPICS><PLACES><D>usa</D></PLACES>
<TEXT>&#2;
<TITLE>WHEAT &lt;UP&gt; IN WEEK
</TITLE>
<BODY>Wheat &amp; corn rose.
 Reuter
&#3;</BODY></TEXT>
</REUTERS>
<REUTERS TOPICS="YES" LEWISSPLIT="TRAIN" CGISPLIT="TRAINING-SET" OLDID="2" NEWID="1">
<TOPICS><D>earn</D><D>castor-oil</D></TOPICS>
<TEXT TYPE="BRIEF">&#2;
<TITLE>ACME PROFIT UP</TITLE>
&#3;</TEXT>
</REUTERS>
<REUTERS TOPICS="NO" LEWISSPLIT="TRAIN" CGISPLIT="TRAINING-SET" OLDID="3" NEWID="3">
<TOPICS></TOPICS><TEXT><TITLE>NO TOPICS</TITLE><BODY>x</BODY></TEXT>
</REUTERS>
<REUTERS TOPICS="YES" LEWISSPLIT="TEST" CGISPLIT="TRAINING-SET" OLDID="4" NEWID="4">
<TOPICS><D>wheat</D><D>earn</D></TOPICS>
<TEXT TYPE="UNPROC">&#2;raw wheat text
&#3;</TEXT>
</REUTERS>
<REUTERS TOPICS="YES" LEWISSPLIT="TEST" CGISPLIT="TRAINING-SET" OLDID="5" NEWID="5">
<TOPICS><D>rye</D></TOPICS><TEXT><TITLE>ONLY IN TEST</TITLE><BODY>y</BODY></TEXT>
</REUTERS>
"""


def test_reuters_sgml_conversion_follows_modapte(tmp_path):
    make_tar(tmp_path / "reuters21578.tar.gz", {"reut2-000.sgm": REUTERS_SGML.encode("latin-1")})
    converters.reuters_modapte90(tmp_path)
    assert (tmp_path / "modapte90_labels.txt").read_text().split() == ["earn", "wheat"]  # in both splits
    train = read_rows(tmp_path / "modapte90_train.jsonl.gz")
    assert train == [
        {"id": 1, "labels": ["earn"], "title": "ACME PROFIT UP", "text": ""},
        {"id": 2, "labels": ["wheat"], "title": "WHEAT <UP> IN WEEK", "text": "Wheat & corn rose.\n Reuter\n"},
    ]
    assert read_rows(tmp_path / "modapte90_test.jsonl.gz") == [
        {"id": 4, "labels": ["wheat", "earn"], "title": "", "text": "raw wheat text\n"}
    ]  # document 5 keeps no label of the 90 and is dropped


@pytest.mark.slow
def test_reuters_conversion_reproduces_the_shared_files(tmp_path, shared_data_dir):
    source = shared_data_dir / "reuters21578"
    (tmp_path / "reuters21578.tar.gz").symlink_to(source / "reuters21578_distribution1.0.tar.gz")
    converters.reuters_modapte90(tmp_path)
    for split in ("train", "test"):
        assert read_rows(tmp_path / f"modapte90_{split}.jsonl.gz") == read_rows(source / f"modapte90_{split}.jsonl.gz")
    assert (tmp_path / "modapte90_labels.txt").read_text() == (source / "modapte90_labels.txt").read_text()
