"""Efficiency table (the DocBERT paper's Table 3): parameters, FLOPs and CPU latency per document.

    python -m reports.efficiency '[teacher.ckpt, kd_bilstm.ckpt, kd_kimcnn.ckpt, kd_logreg.ckpt]'

The first checkpoint is the teacher every ratio is taken against. Latency is the forward pass of
ready-made batches (tokenisation and tf-idf excluded), per document, at batch 1 and batch 64, on
the test split's first documents.
"""

from __future__ import annotations

from utils.process import restart_with_tuned_malloc

if __name__ == "__main__":
    restart_with_tuned_malloc()

import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any, cast

import torch
from jsonargparse import CLI
from lightning.pytorch import LightningModule
from torch import Tensor, nn

import lightning_modules  # noqa: F401  (checkpoints may only load task classes already imported)
from datamodules import DocumentDataModule
from lightning_modules.base import BaseTask
from utils.files import atomic_write
from utils.hardware import hardware

log = logging.getLogger(__name__)
DATA_KEYS_IGNORED = ("predict_split", "predict_file", "augmentation", "teacher_logits")


def load_run(checkpoint: str) -> tuple[BaseTask, DocumentDataModule, dict]:
    """The task and its datamodule from a checkpoint written by ``cli.py fit``, and its results.json."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    # the checkpoints cli.py fit writes hold tasks
    task = cast(BaseTask, LightningModule.load_from_checkpoint(checkpoint, map_location="cpu").eval())
    data_args = {
        k: v
        for k, v in saved["datamodule_hyper_parameters"].items()
        if k not in DATA_KEYS_IGNORED and not k.startswith("_")
    }
    dm = DocumentDataModule(**data_args)
    dm.teacher_logits = saved["datamodule_hyper_parameters"].get("teacher_logits")  # for the KD- label only
    results_file = Path(checkpoint).parent.parent / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    return task, dm, results


def document_batches(dm: DocumentDataModule, docs: int, docs_per_batch: int) -> list[dict]:
    """Collated batches of whole documents (all their partitions), the first ``docs`` of the test split.

    Documents are sorted by length before batching, as the length-bucketed predict loader does, so a
    batch is padded only to similar lengths."""
    dm.setup("test")
    dataset = dm.datasets["test"]
    by_doc: dict[int, list[dict]] = {}
    for i in range(len(dataset)):
        example = dataset[i]
        if example["doc_index"] < docs:
            by_doc.setdefault(example["doc_index"], []).append(example)
    tokens = {d: sum(len(e.get("input_ids", ())) for e in examples) for d, examples in by_doc.items()}
    order = sorted(by_doc, key=lambda d: (tokens[d], d))
    return [
        dataset.collator([e for d in order[start : start + docs_per_batch] for e in by_doc[d]])
        for start in range(0, len(order), docs_per_batch)
    ]


@torch.inference_mode()
def latency_per_doc(task: LightningModule, batches: list[dict], docs: int, repeats: int) -> float:
    """Median over repeats of (time for all batches / documents), after one warm-up pass."""
    for batch in batches[:2]:
        task(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            task(batch)
        times.append((time.perf_counter() - start) / docs)
    return statistics.median(times)


def count_parameters(task: BaseTask) -> tuple[int, int]:
    """(all parameters, parameters outside embedding tables) of the model that predicts."""
    ema = getattr(task, "ema", None)
    model: nn.Module = ema.module if ema is not None else task.model
    embedding = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Embedding))
    total = sum(p.numel() for p in model.parameters())
    return total, total - embedding


def efficiency(checkpoints: list[str], docs: int = 256, repeats: int = 3, out: str = "runs/efficiency") -> list[dict]:
    """Measure every checkpoint and write ``efficiency.md`` / ``efficiency.json``; ratios are to the first.

    Args:
        checkpoints: ``.ckpt`` files of fitted tasks; the first is the teacher.
        docs: test documents timed per batch size.
        repeats: timed passes per batch size (the median is reported).
        out: output folder.
    """
    rows: list[dict[str, Any]] = []
    for checkpoint in checkpoints:
        task, dm, results = load_run(checkpoint)
        total, non_embedding = count_parameters(task)
        row: dict[str, Any] = {
            "model": task.run_label(dm),
            "checkpoint": checkpoint,
            "params_m": total / 1e6,
            "params_non_embedding_m": non_embedding / 1e6,
            "test_macro_f1": results.get("test_macro_f1"),
        }
        single = document_batches(dm, docs, 1)
        # every task measured here models its FLOPs (one that gives None fails in float(), as before)
        row["flops_per_doc_m"] = sum(float(cast(Tensor, task.forward_flops(b))) for b in single) / len(single) / 1e6
        row["latency_b1_ms"] = 1e3 * latency_per_doc(task, single, len(single), repeats)
        row["latency_b64_ms"] = 1e3 * latency_per_doc(task, document_batches(dm, docs, 64), len(single), repeats)
        rows.append(row)
        print(
            f"{row['model']:16s} {row['params_m']:8.2f} M params  {row['flops_per_doc_m']:10.3g} MFLOPs/doc  "
            f"{row['latency_b1_ms']:8.3f} ms/doc (b=1)  {row['latency_b64_ms']:8.3f} ms/doc (b=64)"
        )
    teacher = rows[0]
    for row in rows:
        row["flops_ratio"] = teacher["flops_per_doc_m"] / row["flops_per_doc_m"]
        row["speedup_b1"] = teacher["latency_b1_ms"] / row["latency_b1_ms"]
        row["speedup_b64"] = teacher["latency_b64_ms"] / row["latency_b64_ms"]
    folder = Path(out)
    meta = {"hardware": hardware(), "threads": torch.get_num_threads(), "docs": docs, "repeats": repeats}
    with atomic_write(folder / "efficiency.json") as f:
        json.dump(meta | {"rows": rows}, f, indent=2)
    with atomic_write(folder / "efficiency.md") as f:
        f.write(to_markdown(rows, meta))
    print(to_markdown(rows, meta))
    return rows


def to_markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        f"CPU: {meta['hardware']}, {meta['threads']} threads; {meta['docs']} test documents, median of "
        f"{meta['repeats']} passes. Ratios are to the first row (the teacher).",
        "",
        "| model | test macro-F1 | params (M) | non-embedding (M) | MFLOPs / doc | ms / doc, b=1 | ms / doc, b=64 "
        "| FLOPs ratio | speed-up b=1 | speed-up b=64 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f1 = f"{r['test_macro_f1']:.4f}" if r["test_macro_f1"] is not None else "-"
        lines.append(
            f"| {r['model']} | {f1} | {r['params_m']:.2f} | {r['params_non_embedding_m']:.2f} | "
            f"{r['flops_per_doc_m']:.3g} | {r['latency_b1_ms']:.3f} | {r['latency_b64_ms']:.3f} | "
            f"{r['flops_ratio']:.0f}x | {r['speedup_b1']:.1f}x | {r['speedup_b64']:.1f}x |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    CLI(efficiency)
