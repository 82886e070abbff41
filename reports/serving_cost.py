"""What a trained model costs to serve: each exported artifact timed from text to probabilities.

    python -m reports.serving_cost '[exports/teacher, exports/kimcnn, exports/bilstm, exports/logreg]' \\
        --dataset r8 --stream_model exports/kimcnn --out benchmarks/serving-r8

Each folder written by ``cli.py export`` is served the way a user would run it: KimCNN and BiLSTM
as their TorchScript file fed by the ``tokenizers`` library, the tf-idf LogReg as its scikit-learn
pipeline, anything else (the teacher) through ``serving.DocumentClassifier``. Tokenisation, bag of
words and tf-idf are part of the time. Per artifact:

- size on disk of the files it needs;
- ms per document at batch 1 and batch 64, median and interquartile range of
  ``torch.utils.benchmark``'s ``blocked_autorange`` over the test split's first documents, cycled
  (so the spread includes documents of different lengths), with the thread count stated;
- energy and CO2 per 1,000 documents at batch 64 (CodeCarbon, for at least ``energy_seconds``);
- parameters and model FLOPs per document (the task's own count, real tokens only);
- macro-F1 of the artifact's own decisions on the whole test split.

``--stream_model`` also streams ``stream_sizes`` documents, resampled with replacement from the test
split, through ``cli.py batch-predict`` in a fresh process each, for documents/s and peak memory.
"""

from __future__ import annotations

from utils.process import restart_with_tuned_malloc

if __name__ == "__main__":
    restart_with_tuned_malloc()

import itertools
import json
import logging
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from datamodules.corpus import load_split
from reports.efficiency import count_parameters
from serving.batch import summary_path
from serving.classifier import DocumentClassifier
from utils.files import atomic_write
from utils.hardware import hardware
from utils.predictions import macro_f1, micro_f1

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
Serve = Callable[[list[str]], np.ndarray]


def torchscript_server(folder: Path, config: dict) -> tuple[Serve, list[Path]]:
    """The TorchScript student fed by the exported tokenizer, as ``serving.students`` documents it."""
    import tokenizers

    tokenizer = tokenizers.Tokenizer.from_file(str(folder / "encoder" / "tokenizer.json"))
    tokenizer.enable_truncation(int(config["data_settings"]["max_length"]))
    tokenizer.enable_padding()
    module = torch.jit.load(str(folder / config["torchscript"]))

    @torch.inference_mode()
    def serve(texts: list[str]) -> np.ndarray:
        encoded = tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encoded])
        mask = torch.tensor([e.attention_mask for e in encoded])
        return module(ids, mask).numpy()

    return serve, [folder / config["torchscript"], folder / "encoder" / "tokenizer.json"]


def sklearn_server(folder: Path, config: dict) -> tuple[Serve, list[Path]]:
    import joblib

    pipeline = joblib.load(folder / config["sklearn_pipeline"])
    return pipeline.predict_proba, [folder / config["sklearn_pipeline"]]


def api_server(classifier: DocumentClassifier, folder: Path) -> tuple[Serve, list[Path]]:
    names = classifier.label_names

    def serve(texts: list[str]) -> np.ndarray:
        records = classifier.predict(texts, batch_size=max(len(texts), 1))
        return np.array([[r["probabilities"][n] for n in names] for r in records])

    return serve, [p for p in folder.rglob("*") if p.is_file() and p.name != "README.md"]


def artifact(folder: Path, classifier: DocumentClassifier) -> tuple[str, Serve, list[Path]]:
    """(what is served, the function from texts to probabilities, the files it needs)."""
    config = json.loads((folder / "config.json").read_text())
    if config.get("torchscript") and int(config["data_settings"].get("num_partitions", 1)) == 1:
        return ("TorchScript", *torchscript_server(folder, config))
    if config.get("sklearn_pipeline"):
        return ("scikit-learn pipeline", *sklearn_server(folder, config))
    return ("DocumentClassifier", *api_server(classifier, folder))


def decisions(probs: np.ndarray, multi_label: bool, thresholds: list[float] | None) -> np.ndarray:
    if multi_label:
        return probs >= np.asarray(thresholds if thresholds is not None else [0.5] * probs.shape[1])
    return np.eye(probs.shape[1], dtype=bool)[probs.argmax(1)]


def per_document_ms(serve: Serve, texts: list[str], batch: int, min_run_time: float) -> dict[str, float]:
    """Median and interquartile range of ms per document, batches of ``batch`` texts cycled."""
    from torch.utils import benchmark

    batches = itertools.cycle([texts[i : i + batch] for i in range(0, len(texts) - batch + 1, batch)])
    timer = benchmark.Timer(
        stmt="serve(next(batches))", globals={"serve": serve, "batches": batches}, num_threads=torch.get_num_threads()
    )
    measured = timer.blocked_autorange(min_run_time=min_run_time)
    return {
        "median_ms": 1e3 * measured.median / batch,
        "iqr_ms": 1e3 * measured.iqr / batch,
        "runs": len(measured.times),
    }


def energy_per_1000(serve: Serve, texts: list[str], seconds: float, country_iso_code: str = "USA") -> dict[str, float]:
    """kWh and g CO2 per 1,000 documents at batch 64, measured by CodeCarbon over at least ``seconds``."""
    from codecarbon import OfflineEmissionsTracker

    tracker = OfflineEmissionsTracker(
        country_iso_code=country_iso_code,
        measure_power_secs=1,
        tracking_mode="process",
        log_level="error",
        save_to_file=False,
        allow_multiple_runs=True,
    )
    batches = itertools.cycle([texts[i : i + 64] for i in range(0, len(texts), 64)])
    documents, start = 0, time.perf_counter()
    tracker.start()
    while time.perf_counter() - start < seconds or documents < 1000:
        batch = next(batches)
        serve(batch)
        documents += len(batch)
    tracker.stop()
    data = tracker.final_emissions_data
    return {
        "energy_kwh_per_1000": 1000 * data.energy_consumed / documents,
        "co2_g_per_1000": 1e6 * data.emissions / documents,
        "energy_documents": documents,
        "energy_seconds": time.perf_counter() - start,
    }


def flops_per_document(classifier: DocumentClassifier, texts: list[str]) -> float | None:
    datamodule = classifier.datamodule(texts, [str(i) for i in range(len(texts))], batch_size=1)
    total = 0.0
    with torch.inference_mode():
        for batch in datamodule.predict_dataloader():
            flops = classifier.task.forward_flops(batch)
            if flops is None:
                return None
            total += float(flops)
    return total / len(texts)


def measure(
    folder: Path, test_texts: list[str], gold: np.ndarray, docs: int, min_run_time: float, energy_seconds: float
) -> dict[str, Any]:
    classifier = DocumentClassifier.from_pretrained(folder)
    kind, serve, files = artifact(folder, classifier)
    config = json.loads((folder / "config.json").read_text())
    timed = list(itertools.islice(itertools.cycle(test_texts), docs))  # a small test split repeats
    total, non_embedding = count_parameters(classifier.task)
    # scored 64 documents a call, as served: one call over the whole split would hold every activation at once
    probs = np.concatenate([serve(test_texts[i : i + 64]) for i in range(0, len(test_texts), 64)])
    predicted = decisions(probs, config["multi_label"], config.get("decision_thresholds"))
    row: dict[str, Any] = {
        "model": folder.name,
        "task": config["task"].rsplit(".", 1)[-1],
        "served_as": kind,
        "size_mb": sum(p.stat().st_size for p in files) / 2**20,
        "params_m": total / 1e6,
        "params_non_embedding_m": non_embedding / 1e6,
        "flops_per_doc_m": (f / 1e6) if (f := flops_per_document(classifier, timed)) is not None else None,
        "test_macro_f1": macro_f1(gold, predicted, multi_label=config["multi_label"]),
        "test_micro_f1": micro_f1(gold, predicted),
        "b1": per_document_ms(serve, timed, 1, min_run_time),
        "b64": per_document_ms(serve, timed, 64, min_run_time),
    }
    row |= energy_per_1000(serve, timed, energy_seconds)
    print(
        f"{row['model']:10s} {kind:22s} {row['size_mb']:8.1f} MB  b=1 {row['b1']['median_ms']:8.3f} ms/doc  "
        f"b=64 {row['b64']['median_ms']:8.3f} ms/doc  {row['energy_kwh_per_1000']:.3g} kWh/1000  "
        f"macro-F1 {row['test_macro_f1']:.4f}"
    )
    return row


def streaming(model: Path, test_texts: list[str], sizes: list[int], folder: Path) -> list[dict]:
    """``cli.py batch-predict`` over ``sizes`` documents resampled (seed 0, with replacement) from the
    test split, one fresh process each: documents/s and peak memory per corpus size."""
    rng = random.Random(0)
    lines = [t.replace("\n", " ").replace("\r", " ") for t in test_texts]
    rows = []
    with tempfile.TemporaryDirectory(dir=folder) as work:
        for size in sizes:
            corpus, out = Path(work) / f"corpus{size}.txt", Path(work) / f"predictions{size}.jsonl"
            with corpus.open("w", encoding="utf-8") as f:
                f.writelines(rng.choice(lines) + "\n" for _ in range(size))
            command = [sys.executable, str(ROOT / "cli.py"), "batch-predict", "--model", str(model)]
            subprocess.run([*command, "--input", str(corpus), "--out", str(out)], check=True)
            summary = json.loads(summary_path(out).read_text())
            rows.append({k: summary[k] for k in ("documents", "seconds", "documents_per_s", "peak_rss_mb")})
            print(
                f"streamed {size} documents: {rows[-1]['documents_per_s']:.0f} docs/s, {rows[-1]['peak_rss_mb']:.0f} MB"
            )
    return rows


def serving_cost(
    exports: list[str],
    dataset: str = "r8",
    data_dir: str | None = None,
    docs: int = 256,
    min_run_time: float = 5.0,
    energy_seconds: float = 10.0,
    stream_model: str | None = None,
    stream_sizes: list[int] = [10_000, 30_000, 100_000],  # noqa: B006
    out: str = "runs/serving-cost",
) -> list[dict]:
    """Measure every export and write ``serving.json``, ``serving.md`` and ``serving.png``; ratios are to the first.

    Args:
        exports: folders written by ``cli.py export``; the first (the teacher) is the reference.
        dataset: the dataset whose test split is timed and scored (its name or folder).
        data_dir: data root (default ``$TOPICBERT_DATA``).
        docs: test documents the timing and energy cycle over (a multiple of 64).
        min_run_time: seconds ``blocked_autorange`` runs per artifact and batch size.
        energy_seconds: seconds of batch-64 serving CodeCarbon measures per artifact (at least 1,000 documents).
        stream_model: an export to stream ``stream_sizes`` documents through (``cli.py batch-predict``).
        stream_sizes: corpus sizes streamed.
        out: output folder.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    first = json.loads((Path(exports[0]) / "config.json").read_text())
    test = load_split(dataset, "test", first["label_names"], first["multi_label"], data_dir)
    names = first["label_names"]
    gold = np.array([[n in labels for n in names] for labels in test.labels], dtype=bool)
    rows = [measure(Path(e), test.texts, gold, docs, min_run_time, energy_seconds) for e in exports]
    for row in rows:
        row["speedup_b1"] = rows[0]["b1"]["median_ms"] / row["b1"]["median_ms"]
        row["speedup_b64"] = rows[0]["b64"]["median_ms"] / row["b64"]["median_ms"]
    stream = streaming(Path(stream_model), test.texts, stream_sizes, folder) if stream_model else []
    meta = {
        "hardware": hardware(),
        "threads": torch.get_num_threads(),
        "dataset": dataset,
        "test_documents": len(test.texts),
        "timed_documents": docs,
        "min_run_time_s": min_run_time,
        "stream_model": Path(stream_model).name if stream_model else None,
        "stream_source": "test split resampled with replacement (seed 0)",
    }
    with atomic_write(folder / "serving.json") as f:
        json.dump(meta | {"rows": rows, "streaming": stream}, f, indent=2)
    markdown = to_markdown(rows, stream, meta)
    with atomic_write(folder / "serving.md") as f:
        f.write(markdown)
    plot(rows, stream, folder / "serving.png")
    print(markdown)
    return rows


def to_markdown(rows: list[dict], stream: list[dict], meta: dict) -> str:
    lines = [
        f"{meta['hardware']}, {meta['threads']} threads. From text to probabilities; ms per document are the median "
        f"[interquartile range] of `torch.utils.benchmark` blocked_autorange ({meta['min_run_time_s']:g} s per cell) "
        f"over the first {meta['timed_documents']} {meta['dataset']} test documents, cycled. Energy: CodeCarbon, "
        f"batch 64. Macro-F1: the artifact's own decisions on all {meta['test_documents']} test documents. "
        "Speed-ups are to the first row.",
        "",
        "| model | served as | size (MB) | params (M) | MFLOPs / doc | ms / doc, b=1 | ms / doc, b=64 | speed-up b=1 "
        "| speed-up b=64 | Wh / 1,000 docs | g CO2 / 1,000 docs | test macro-F1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        flops = f"{r['flops_per_doc_m']:.3g}" if r["flops_per_doc_m"] is not None else "-"
        b1, b64 = (f"{r[b]['median_ms']:.3f} [{r[b]['iqr_ms']:.3f}]" for b in ("b1", "b64"))
        lines.append(
            f"| {r['model']} ({r['task']}) | {r['served_as']} | {r['size_mb']:.1f} | {r['params_m']:.2f} | {flops} | "
            f"{b1} | {b64} | {r['speedup_b1']:.1f}x | {r['speedup_b64']:.1f}x | {1e3 * r['energy_kwh_per_1000']:.3g} | "
            f"{r['co2_g_per_1000']:.3g} | {r['test_macro_f1']:.4f} |"
        )
    if stream:
        lines += [
            "",
            f"Streaming `cli.py batch-predict` with `{meta['stream_model']}` ({meta['stream_source']}), a fresh "
            "process per size:",
            "",
            "| documents | seconds | documents / s | peak memory (MB) |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {s['documents']:,} | {s['seconds']:.1f} | {s['documents_per_s']:.0f} | {s['peak_rss_mb']:.0f} |"
            for s in stream
        ]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], stream: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if stream else 1, figsize=(11 if stream else 6, 4), squeeze=False)
    ax = axes[0][0]
    x = np.arange(len(rows))
    for offset, key in ((-0.2, "b1"), (0.2, "b64")):
        ax.bar(
            x + offset,
            [r[key]["median_ms"] for r in rows],
            0.4,
            yerr=[r[key]["iqr_ms"] / 2 for r in rows],
            label=f"batch {key[1:]}",
        )
    ax.set_xticks(x, [r["model"] for r in rows])
    ax.set_yscale("log")
    ax.set_ylabel("ms per document (median, IQR)")
    ax.legend()
    if stream:
        ax = axes[0][1]
        ax.plot([s["documents"] for s in stream], [s["peak_rss_mb"] for s in stream], marker="o")
        ax.set_xlabel("documents streamed")
        ax.set_ylabel("peak memory (MB)")
        ax.set_ylim(0, 1.2 * max(s["peak_rss_mb"] for s in stream))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    from jsonargparse import CLI

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    CLI(serving_cost)
