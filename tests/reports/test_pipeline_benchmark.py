"""The data-preparation benchmark: every stage timed, and the warm pass really reads the cache."""

import json

import pytest

import datamodules.views as views
from datamodules import DocumentDataModule
from reports.pipeline_benchmark import STAGES, pipeline_benchmark, timed_preparation


def test_warm_preparation_reads_the_cache_instead_of_rebuilding(
    tiny_corpus_dir, tiny_encoder_dir, tmp_path, monkeypatch
):
    def make():
        return DocumentDataModule(
            dataset=str(tiny_corpus_dir),
            tokenizer=str(tiny_encoder_dir),
            min_freq=2,
            dev_size=0.2,
            max_length=32,
            cache_dir=str(tmp_path / "cache"),
        )

    cold = timed_preparation(make)
    assert set(cold) == {*STAGES, "total", "documents"} and cold["documents"] == 120
    assert cold["total"] == pytest.approx(sum(cold[s] for s in STAGES))

    def rebuild(*args, **kwargs):
        raise AssertionError("the warm pass must not tokenise or count words again")

    monkeypatch.setattr(views, "tokenize_texts", rebuild)
    monkeypatch.setattr(views.Vocabulary, "build", rebuild)
    warm = timed_preparation(make)
    assert all(warm[s] >= 0 for s in STAGES)


def test_benchmark_writes_json_and_markdown(tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    result = pipeline_benchmark(
        str(tiny_corpus_dir), tokenizer=str(tiny_encoder_dir), max_length=128, min_freq=2, out=str(tmp_path / "out")
    )
    saved = json.loads((tmp_path / "out/pipeline.json").read_text())
    assert saved["documents"] == result["documents"] == 120
    assert set(saved["cold"]) == set(saved["warm"]) == {*STAGES, "total"}
    assert "| tokenise |" in (tmp_path / "out/pipeline.md").read_text()
    nvdm = saved["nvdm"]
    assert nvdm["documents"] == 81  # 90 training documents less a 10% dev split
    assert nvdm["docs_per_s"] == pytest.approx(nvdm["documents"] / nvdm["epoch_s"])
