"""Streaming prediction: ``DocumentClassifier.predict_stream`` and ``cli.py batch-predict`` give what
``predict`` gives, in input order, in memory that does not grow with the corpus."""

from __future__ import annotations

import gc
import io
import json
import random
import sys
import tracemalloc

import pytest

from cli import main
from datamodules.formats import DataError
from serving import DocumentClassifier
from tests.conftest import make_document


@pytest.fixture(scope="module")
def topicbert(exports):
    return exports("topicbert")


@pytest.fixture(scope="module")
def classifier(topicbert):
    return DocumentClassifier.from_pretrained(topicbert[1])


def assert_same_records(ours: list[dict], theirs: list[dict]) -> None:
    assert [r["id"] for r in ours] == [r["id"] for r in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a.get("skipped") == b.get("skipped") and a.get("label") == b.get("label")
        assert a.get("topic") == b.get("topic") and a.get("tokens_cut", 0) == b.get("tokens_cut", 0)
        for name, p in a.get("probabilities", {}).items():
            assert p == pytest.approx(b["probabilities"][name], abs=1e-5)


@pytest.mark.parametrize("chunk_size", [1, 3, 100])
def test_a_stream_in_chunks_predicts_what_predict_does(classifier, topicbert, chunk_size):
    texts = topicbert[2]  # seven test documents, an empty one and a long one
    streamed = list(classifier.predict_stream(iter(texts), batch_size=4, chunk_size=chunk_size))
    assert_same_records(streamed, classifier.predict(texts, batch_size=4))
    assert streamed[7] == {"id": "7", "skipped": "empty document"}  # a chunk of one empty text too


def test_a_stream_keeps_the_ids_it_is_given(classifier, topicbert):
    pairs = [(f"doc-{i}", t) for i, t in enumerate(topicbert[2])]
    streamed = list(classifier.predict_stream(pairs, chunk_size=2))
    assert [r["id"] for r in streamed] == [doc_id for doc_id, _ in pairs]


def test_a_chunk_size_below_one_is_refused(classifier):
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        list(classifier.predict_stream(["a text"], chunk_size=0))


def generated(n: int, seed: int = 0):
    rng = random.Random(seed)
    labels = ["sport", "finance", "science"]
    for i in range(n):
        yield make_document(rng, labels[i % 3], rng.randint(5, 90))


def peak_python_memory(classifier: DocumentClassifier, n: int, chunk_size: int) -> int:
    """Peak bytes Python allocated while ``n`` generated documents streamed through (records dropped)."""
    gc.collect()
    tracemalloc.start()
    try:
        count = sum(1 for _ in classifier.predict_stream(generated(n), batch_size=16, chunk_size=chunk_size))
        return tracemalloc.get_traced_memory()[1] if count == n else -1
    finally:
        tracemalloc.stop()


def test_streaming_memory_does_not_grow_with_the_corpus(classifier):
    list(classifier.predict_stream(generated(64), chunk_size=64))  # one-time loading out of the way
    small, large = peak_python_memory(classifier, 256, 64), peak_python_memory(classifier, 2048, 64)
    assert small > 0 and large > 0
    # 8x the documents: one chunk's texts, batches and records live at a time, so the peak stays put
    assert large < 1.3 * small, (small, large)
    whole = peak_python_memory(classifier, 2048, 2048)  # the same corpus held as one chunk
    assert whole > 2 * large, (whole, large)


def test_batch_predict_writes_what_cli_predict_writes(topicbert, tmp_path, capsys):
    _, folder, texts, cli_rows, _ = topicbert
    (tmp_path / "texts.txt").write_text("".join(t + "\n" for t in texts))
    out = tmp_path / "out.jsonl"
    written = main(["batch-predict", "--model", str(folder), "--input", str(tmp_path / "texts.txt"), "--out", str(out)])
    assert written == out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert_same_records(rows, cli_rows)
    summary = json.loads((tmp_path / "out.summary.json").read_text())
    assert summary["documents"] == len(texts) and summary["skipped"] == 1 and summary["peak_rss_mb"] > 0
    assert "Predicted 9 documents (1 skipped)" in capsys.readouterr().out


def test_batch_predict_reads_json_lines_with_ids_and_standard_input(topicbert, tmp_path, monkeypatch):
    _, folder, texts, cli_rows, _ = topicbert
    rows = [{"id": f"a{i}", "text": t} for i, t in enumerate(texts[:3])] + [{"text": texts[3]}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    main(["batch-predict", "--model", str(folder), "--input", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "o")])
    written = [json.loads(line) for line in (tmp_path / "o").read_text().splitlines()]
    assert [r["id"] for r in written] == ["a0", "a1", "a2", "line-4"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(t + "\n" for t in texts[:2])))
    main(["batch-predict", "--model", str(folder), "--input", "-", "--out", str(tmp_path / "s.jsonl")])
    from_stdin = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert_same_records(from_stdin, cli_rows[:2])


def test_batch_predict_refuses_bad_input_and_leaves_nothing(topicbert, tmp_path):
    folder = str(topicbert[1])
    (tmp_path / "taken.jsonl").write_text("mine\n")
    (tmp_path / "bad.jsonl").write_text(json.dumps({"text": "fine"}) + "\n" + "not json\n")
    (tmp_path / "texts.txt").write_text("a text\n")
    cases = [
        (["--model", folder, "--input", str(tmp_path / "gone.txt")], "is not a file; pass a text or JSON Lines"),
        (["--model", folder, "--input", str(tmp_path / "texts.txt"), "--out", str(tmp_path / "taken.jsonl")], "exists"),
        (["--model", folder, "--input", str(tmp_path / "bad.jsonl")], "line 2 is not a JSON object with a text"),
        (["--model", str(tmp_path), "--input", str(tmp_path / "texts.txt")], "not a folder written by `cli.py export`"),
        (["--model", folder, "--input", str(tmp_path / "texts.txt"), "--chunk_size", "0"], "at least 1"),
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    for args, message in cases:
        out = [] if "--out" in args else ["--out", str(tmp_path / "new.jsonl")]
        with pytest.raises(DataError, match=message):
            main(["batch-predict", *args, *out])
        assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "taken.jsonl").read_text() == "mine\n"
