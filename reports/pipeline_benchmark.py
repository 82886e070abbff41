"""How fast data preparation is, cold (empty cache) and warm (cache filled by the cold pass).

    python -m reports.pipeline_benchmark --dataset 20ng --out benchmarks/pipeline-20ng

Each stage is timed as the datamodule runs it in ``prepare_data`` and ``setup("fit")``: reading
the corpus, the topic model's bag of words, tokenisation, and building the training and dev
partition datasets. Cold runs in a fresh cache folder; warm then builds a new datamodule on the
same folder, as a second training run would. Then the NVDM trains one epoch on its own on the
training bags of words (documents/s). Prints documents/s per stage and writes JSON and markdown.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

from jsonargparse import CLI

from datamodules import DocumentDataModule
from datamodules.corpus import SPLIT_NAMES
from utils.files import atomic_write
from utils.hardware import hardware

log = logging.getLogger(__name__)
STAGES = ("read corpus", "bag of words", "tokenise", "partition datasets")


def timed_preparation(make_datamodule) -> dict[str, float]:
    """Seconds per stage for one fresh datamodule (the stages are lazy, so each is forced in turn)."""
    dm = make_datamodule()
    seconds = {}
    # the bag of words is cached by then, so prepare_data's remaining work is tokenisation
    steps = (lambda: dm.corpus, lambda: dm.vocabulary, dm.prepare_data, lambda: dm.setup("fit"))
    for stage, run in zip(STAGES, steps, strict=True):
        start = time.perf_counter()
        run()
        seconds[stage] = time.perf_counter() - start
    seconds["total"] = sum(seconds.values())
    seconds["documents"] = sum(len(dm.corpus[s]) for s in SPLIT_NAMES)
    return seconds


def nvdm_throughput(dm: DocumentDataModule, num_topics: int, batch_size: int) -> dict[str, float]:
    """One training epoch of the topic model alone: documents/s and the epoch's seconds."""
    import lightning.pytorch as pl

    from callbacks.throughput import TrainingThroughput
    from lightning_modules import NVDMTask

    dm.setup("fit")
    throughput = TrainingThroughput()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[throughput],
    )
    trainer.fit(NVDMTask(dm.vocab_size, num_topics=num_topics), datamodule=dm)
    figures = throughput.history[0]
    return {
        "docs_per_s": figures["docs_per_s"],
        "epoch_s": figures["docs_per_epoch"] / figures["docs_per_s"],
        "documents": int(figures["docs_per_epoch"]),
        "batch_size": batch_size,
    }


def to_markdown(result: dict) -> str:
    docs = result["documents"]
    lines = [
        f"# Data preparation: {result['dataset']} ({docs:,} documents)",
        "",
        f"Machine: {result['machine']}.",
        f"Tokenizer: `{result['tokenizer']}`.",
        "",
        "| stage | cold (s) | cold docs/s | warm (s) | warm docs/s |",
        "|---|---|---|---|---|",
    ]
    for stage in (*STAGES, "total"):
        cold, warm = result["cold"][stage], result["warm"][stage]
        lines.append(f"| {stage} | {cold:.2f} | {docs / cold:,.0f} | {warm:.2f} | {docs / warm:,.0f} |")
    nvdm = result["nvdm"]
    lines += [
        "",
        f"NVDM alone ({result['num_topics']} topics, batch {nvdm['batch_size']}, CPU): one training "
        f"epoch over {nvdm['documents']:,} documents in {nvdm['epoch_s']:.1f} s, "
        f"{nvdm['docs_per_s']:,.0f} docs/s.",
    ]
    return "\n".join(lines) + "\n"


def pipeline_benchmark(
    dataset: str = "20ng",
    data_dir: str | None = None,
    tokenizer: str = "sentence-transformers/all-MiniLM-L6-v2",
    max_length: int = 512,
    min_freq: int = 10,
    num_topics: int = 100,
    nvdm_batch_size: int = 64,
    out: str | None = None,
) -> dict:
    """Time data preparation cold and warm; print a table and, with ``out``, write JSON and markdown.

    Args:
        dataset: a named dataset or a folder (as ``--data.dataset``).
        data_dir: the data root of the named datasets.
        tokenizer: the tokenizer (as ``--data.tokenizer``).
        max_length: N (as ``--data.max_length``; at most the encoder's positions).
        min_freq: Fmin of the topic-model vocabulary.
        num_topics: K of the NVDM trained alone.
        nvdm_batch_size: its batch size.
        out: folder for ``pipeline.json`` and ``pipeline.md``.
    """
    with tempfile.TemporaryDirectory(prefix="topicbert-cache-") as cache:

        def make():
            return DocumentDataModule(
                dataset=dataset,
                data_dir=data_dir,
                tokenizer=tokenizer,
                max_length=max_length,
                min_freq=min_freq,
                cache_dir=cache,
            )

        cold = timed_preparation(make)
        warm = timed_preparation(make)
        bow_only = DocumentDataModule(
            dataset=dataset,
            data_dir=data_dir,
            tokenizer=None,
            min_freq=min_freq,
            batch_size=nvdm_batch_size,
            cache_dir=cache,
        )
        nvdm = nvdm_throughput(bow_only, num_topics, nvdm_batch_size)
    result = {
        "dataset": dataset,
        "tokenizer": tokenizer,
        "documents": cold.pop("documents"),
        "cold": cold,
        "warm": {k: v for k, v in warm.items() if k != "documents"},
        "num_topics": num_topics,
        "nvdm": nvdm,
        "machine": hardware(),
    }
    markdown = to_markdown(result)
    print(markdown)
    if out:
        folder = Path(out)
        with atomic_write(folder / "pipeline.json") as f:
            json.dump(result, f, indent=2)
        with atomic_write(folder / "pipeline.md") as f:
            f.write(markdown)
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    CLI(pipeline_benchmark)
