"""Fine-tuning speed side by side, in one process, on the same documents and encoder.

    python -m reports.finetune_benchmark --dataset r8 --documents 256 --repeats 3 --out benchmarks/finetune-cpu
    python -m reports.finetune_benchmark --dataset r8 --random_encoder bert-base --out benchmarks/finetune-gpu

Variants (each trains on the same sampled training documents):

- ``a`` the paper-era recipe: BERT, every sequence padded to N, random batches, eager attention,
  fp32 on CPU / fp16 on GPU;
- ``b`` our BERT baseline with every optimisation: dynamic padding, length-bucketed batches, SDPA,
  bf16 on capable GPUs;
- ``c<x>`` TopicBERT-x (N / p = x) with the same optimisations;
- ``d`` the Hugging Face ``Trainer`` on the same encoder and documents (dynamic padding with
  ``DataCollatorWithPadding``, its defaults otherwise), the way most users fine-tune today.

Each variant makes ``warmup_passes`` untimed passes first, so the timed pass meets no batch shape
for the first time (on CPU the first batch of a new shape pays for faulting its memory in, up to
1.7x a later one). Throughput counts the last pass: real tokens/s (padding excluded),
documents/s, the time an epoch of the whole training split would take at that rate, model FLOP/s
and utilisation (MFU) against the measured matmul peak, and the peak memory each variant adds.
Ratios of documents/s (b/a, c/a, b/d) are given as min / median / max over the repeats.
"""

from __future__ import annotations

from utils.process import restart_with_tuned_malloc

if __name__ == "__main__":
    restart_with_tuned_malloc()

import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from jsonargparse import CLI
from tqdm.auto import tqdm

from datamodules import DocumentDataModule
from datamodules.corpus import load_corpus
from lightning_modules import TopicBertTask
from utils.files import atomic_write
from utils.hardware import hardware, hardware_precision, measured_matmul_tflops
from utils.memory import peak_memory_mb, release_freed_memory, reset_peak_memory

log = logging.getLogger(__name__)


class StepClock:
    """Times the training steps taken while ``timing`` is on and counts the real tokens, documents and
    model FLOPs (forward + backward on the real tokens) they held."""

    def __init__(self):
        self.timing = False
        self.steps = 0
        self.seconds = 0.0
        self.tokens = 0
        self.documents = 0.0
        self.flops = 0.0
        self._start = 0.0

    def begin(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._start = time.perf_counter()

    def end(self, tokens: int, documents: float, flops: float) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if self.timing:
            self.steps += 1
            self.seconds += time.perf_counter() - self._start
            self.tokens += tokens
            self.documents += documents
            self.flops += flops


class LightningClock(pl.Callback):
    """A document split into p partitions counts 1/p for each partition trained."""

    def __init__(self, clock: StepClock, warmup_passes: int):
        self.clock = clock
        self.warmup_passes = warmup_passes
        self.docs_per_example = 1.0

    def on_train_start(self, trainer, pl_module) -> None:
        dataset = trainer.datamodule.datasets["train"]
        self.docs_per_example = len(set(dataset.doc_index)) / len(dataset)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.clock.timing = trainer.current_epoch >= self.warmup_passes

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.clock.begin()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.clock.end(
            int(batch["attention_mask"].sum()),
            len(batch["doc_index"]) * self.docs_per_example,
            3.0 * float(pl_module.forward_flops(batch)),
        )


def sample_corpus(dataset: str, data_dir: str | None, documents: int, seed: int, folder: Path) -> tuple[Path, int]:
    """A folder with ``documents`` training documents sampled from the dataset (dev and test: a few),
    so every variant does the same work; and the size of the dataset's whole training split."""
    corpus = load_corpus(dataset, data_dir, dev_size=0.1, seed=seed)
    train = corpus["train"]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train), size=min(documents, len(train)), replace=False)
    for split, indices in (("train", pick), ("dev", range(4)), ("test", range(4))):
        source = train if split == "train" else corpus[split]
        with atomic_write(folder / f"{split}.jsonl") as f:
            for i in indices:
                f.write(json.dumps({"id": source.ids[i], "labels": source.labels[i], "text": source.texts[i]}) + "\n")
    return folder, len(train)


def run_lightning(
    variant: str,
    folder: Path,
    encoder: str,
    max_length: int,
    batch_size: int,
    warmup_passes: int,
    accelerator: str,
    cache: str,
) -> StepClock:
    paper, topic_model = variant == "a", variant.startswith("c")
    partitions = 1 if variant in ("a", "b") else max_length // int(variant[1:])
    dm = DocumentDataModule(
        dataset=str(folder),
        tokenizer=encoder,
        max_length=max_length,
        num_partitions=partitions,
        batch_size=batch_size,
        min_freq=2,
        cache_dir=cache,
        pad_to_max_length=paper,
        length_bucketing=not paper,
        bow=topic_model,
    )
    model = TopicBertTask(
        encoder=encoder,
        num_labels=dm.num_labels,
        vocab_size=dm.vocab_size,
        multi_label=dm.multi_label,
        use_topic_model=topic_model,
        attn_implementation="eager" if paper else "sdpa",
    )
    precision = hardware_precision(accelerator)
    if paper:
        precision = "16-mixed" if precision != "32-true" else precision
    clock = StepClock()
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_epochs=warmup_passes + 1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[LightningClock(clock, warmup_passes)],
        use_distributed_sampler=False,
    )
    trainer.fit(model, datamodule=dm)
    return clock


def trainer_rows(corpus, tokenizer, max_length: int) -> list[dict]:
    """The training split as the Trainer's rows: token ids, and a label index (single-label) or a
    multi-hot float vector (multi-label, for ``BCEWithLogitsLoss``)."""
    names = corpus.label_names
    train = corpus["train"]
    encoded = tokenizer(train.texts, truncation=True, max_length=max_length)
    if corpus.multi_label:
        targets = [[float(name in labels) for name in names] for labels in train.labels]
    else:
        targets = [names.index(labels[0]) for labels in train.labels]
    return [
        {"input_ids": ids, "attention_mask": mask, "labels": target}
        for ids, mask, target in zip(encoded["input_ids"], encoded["attention_mask"], targets, strict=True)
    ]


def run_hf_trainer(
    folder: Path, encoder: str, max_length: int, batch_size: int, warmup_passes: int, accelerator: str
) -> StepClock:
    """The reference loop: ``AutoModelForSequenceClassification`` + ``Trainer`` + dynamic padding."""
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from datamodules.tokens import load_tokenizer
    from models.flops import count_encoder_flops
    from utils.pretrained import load_pretrained

    corpus = load_corpus(str(folder), dev_size=0.1)
    tokenizer = load_tokenizer(encoder)
    rows = trainer_rows(corpus, tokenizer, max_length)
    problem = "multi_label_classification" if corpus.multi_label else "single_label_classification"
    model = load_pretrained(
        AutoModelForSequenceClassification, encoder, num_labels=len(corpus.label_names), problem_type=problem
    )
    prefix = model.base_model_prefix + "."
    head = sum(2 * p.numel() for n, p in model.named_parameters() if p.dim() == 2 and not n.startswith(prefix))
    flops = count_encoder_flops(model.base_model).with_per_sequence(head)
    clock = StepClock()
    batches: list[dict] = []

    class Clock(TrainerCallback):
        passes = 0

        def on_epoch_begin(self, args, state, control, **kwargs):
            clock.timing = self.passes >= warmup_passes
            self.passes += 1

        def on_step_begin(self, args, state, control, **kwargs):
            clock.begin()

        def on_step_end(self, args, state, control, **kwargs):
            batch = batches.pop(0)
            lengths = batch["attention_mask"].sum(1)
            clock.end(int(lengths.sum()), len(lengths), 3.0 * float(flops.total(lengths)))

    collate = DataCollatorWithPadding(tokenizer)

    def recording_collate(features):
        batch = collate(features)
        batches.append(batch)
        return batch

    on_gpu = accelerator != "cpu" and torch.cuda.is_available()
    bf16 = on_gpu and torch.cuda.is_bf16_supported()
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="hf-trainer-"),
        per_device_train_batch_size=batch_size,
        num_train_epochs=warmup_passes + 1,
        learning_rate=1e-4,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=not on_gpu,
        fp16=on_gpu and not bf16,
        bf16=bf16,
        disable_tqdm=True,
    )
    Trainer(model=model, args=args, train_dataset=rows, data_collator=recording_collate, callbacks=[Clock()]).train()
    return clock


def summarise(clock: StepClock, epoch_documents: int, memory_mb: float, peak_tflops: float) -> dict:
    docs_per_s = clock.documents / clock.seconds
    return {
        "tokens_per_s": clock.tokens / clock.seconds,
        "docs_per_s": docs_per_s,
        "epoch_s": epoch_documents / docs_per_s,
        "peak_memory_mb": memory_mb,
        "model_tflops_per_s": clock.flops / clock.seconds / 1e12,
        "mfu": clock.flops / clock.seconds / 1e12 / peak_tflops,
        "timed_steps": clock.steps,
        "timed_documents": clock.documents,
    }


def matmul_peak_tflops(device: torch.device) -> tuple[float, str]:
    """The measured dense matmul peak in the precision variant b trains in."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return measured_matmul_tflops(device, dtype), str(dtype).removeprefix("torch.")
    return measured_matmul_tflops(device, torch.float32, size=2048, repeats=10), "float32"


def random_encoder_folder(config_name: str, tokenizer_source: str, folder: Path) -> str:
    """An encoder with random weights built from ``config_name`` (``bert-base``: the bert-base-uncased
    architecture; else a name or folder with a configuration), saved with ``tokenizer_source``'s
    tokenizer. Speed does not depend on the weights, so no download is needed."""
    from transformers import AutoModel

    from datamodules.tokens import load_tokenizer
    from utils.pretrained import encoder_config

    config = encoder_config(config_name)
    tokenizer = load_tokenizer(tokenizer_source)
    if len(tokenizer) > config.vocab_size:
        raise ValueError(
            f"The tokenizer of {tokenizer_source} has {len(tokenizer)} tokens but {config_name} "
            f"only {config.vocab_size} embeddings: pick a tokenizer of that vocabulary size."
        )
    AutoModel.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def spread(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def finetune_benchmark(
    dataset: str = "r8",
    data_dir: str | None = None,
    encoder: str = "sentence-transformers/all-MiniLM-L6-v2",
    random_encoder: str | None = None,
    max_length: int = 512,
    partition_lengths: list[int] = [512, 256, 128, 64],  # noqa: B006 (a literal default shows in --help)
    documents: int = 256,
    batch_size: int = 16,
    warmup_passes: int = 1,
    repeats: int = 3,
    accelerator: str = "auto",
    seed: int = 42,
    out: str | None = None,
) -> dict:
    """Run every variant ``repeats`` times on the same sampled documents; print and save the ratios.

    Args:
        dataset: a named dataset or a folder.
        data_dir: the data root of the named datasets.
        encoder: the encoder every variant fine-tunes (and the tokenizer of ``random_encoder``).
        random_encoder: fine-tune an encoder of this architecture with random weights instead
            (``bert-base`` for the bert-base-uncased configuration, or a name or folder).
        max_length: N.
        partition_lengths: the x of the TopicBERT variants.
        documents: training documents sampled for the passes each variant makes.
        batch_size: examples per step for every variant.
        warmup_passes: untimed passes over the documents before the timed one.
        repeats: passes per variant (alternating variants, so drift hits them alike).
        accelerator: ``cpu``, ``gpu`` or ``auto``.
        seed: seed of the document sample.
        out: folder for ``finetune.json`` and ``finetune.md``.
    """
    variants = ["a", "b", *(f"c{x}" for x in partition_lengths), "d"]
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    device = torch.device("cuda" if accelerator != "cpu" and torch.cuda.is_available() else "cpu")
    peak_tflops, peak_dtype = matmul_peak_tflops(device)
    with tempfile.TemporaryDirectory(prefix="finetune-bench-") as tmp:
        folder, epoch_documents = sample_corpus(dataset, data_dir, documents, seed, Path(tmp) / "data")
        model_dir = random_encoder_folder(random_encoder, encoder, Path(tmp) / "encoder") if random_encoder else encoder
        bar = tqdm(total=repeats * len(variants), desc="benchmark runs")
        for _ in range(repeats):
            for variant in variants:
                bar.set_postfix_str(variant)
                release_freed_memory()  # so that each variant's peak is what it adds, not what earlier ones left
                before = reset_peak_memory(device)
                if variant == "d":
                    clock = run_hf_trainer(folder, model_dir, max_length, batch_size, warmup_passes, accelerator)
                else:
                    clock = run_lightning(
                        variant,
                        folder,
                        model_dir,
                        max_length,
                        batch_size,
                        warmup_passes,
                        accelerator,
                        str(Path(tmp) / "cache"),
                    )
                runs[variant].append(summarise(clock, epoch_documents, peak_memory_mb(device) - before, peak_tflops))
                bar.update()
        bar.close()
    docs = {v: [r["docs_per_s"] for r in rs] for v, rs in runs.items()}
    ratio = {
        name: spread([n / d for n, d in zip(docs[num], docs[den], strict=True)])
        for name, num, den in [
            ("b_over_a", "b", "a"),
            ("b_over_d", "b", "d"),
            *((f"c{x}_over_a", f"c{x}", "a") for x in partition_lengths),
        ]
    }
    result = {
        "machine": hardware(),
        "dataset": dataset,
        "encoder": encoder,
        "random_encoder": random_encoder,
        "max_length": max_length,
        "matmul_peak_tflops": peak_tflops,
        "matmul_peak_dtype": peak_dtype,
        "documents": documents,
        "batch_size": batch_size,
        "warmup_passes": warmup_passes,
        "repeats": repeats,
        "runs": runs,
        "ratios": ratio,
        "b_over_a": ratio["b_over_a"]["median"],
        "b_over_d": ratio["b_over_d"]["median"],
        "c_over_a": {str(x): ratio[f"c{x}_over_a"]["median"] for x in partition_lengths},
    }
    markdown = to_markdown(result)
    print(markdown)
    if out:
        with atomic_write(Path(out) / "finetune.json") as f:
            json.dump(result, f, indent=2)
        with atomic_write(Path(out) / "finetune.md") as f:
            f.write(markdown)
    return result


NAMES = {
    "a": "a: BERT, padded to N, eager, random batches",
    "b": "b: BERT, all optimisations",
    "d": "d: Hugging Face Trainer",
}


def to_markdown(result: dict) -> str:
    model = f"`{result['encoder']}`"
    if result["random_encoder"]:
        model = f"{result['random_encoder']} (random weights, tokenizer of {model})"
    lines = [
        f"# Fine-tuning speed: {result['dataset']}, {model}, N = {result['max_length']}",
        "",
        f"Machine: {result['machine']}. {result['documents']} training documents per pass, batch "
        f"{result['batch_size']}, timed on the pass after {result['warmup_passes']} untimed, "
        f"{result['repeats']} repeats (medians; ratios min / median / max). Model "
        f"FLOP utilisation (MFU) is against the measured {result['matmul_peak_dtype']} matmul peak of "
        f"{result['matmul_peak_tflops']:,.2f} TFLOP/s; peak memory is what each variant added.",
        "",
        "| variant | real tokens/s | docs/s | epoch (s) | model TFLOP/s | MFU | peak memory (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = ("tokens_per_s", "docs_per_s", "epoch_s", "model_tflops_per_s", "mfu", "peak_memory_mb")
    for variant, runs in result["runs"].items():
        name = NAMES.get(variant, f"{variant}: TopicBERT-{variant[1:]}, all optimisations")
        med = {k: statistics.median(r[k] for r in runs) for k in keys}
        cells = [
            f"{med['tokens_per_s']:,.0f}",
            f"{med['docs_per_s']:.2f}",
            f"{med['epoch_s']:,.0f}",
            f"{med['model_tflops_per_s']:.3f}",
            f"{med['mfu']:.1%}",
            f"{med['peak_memory_mb']:,.0f}",
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| ratio (docs/s) | min | median | max |", "|---|---|---|---|"]
    for name, s in result["ratios"].items():
        lines.append(f"| {name.replace('_over_', ' / ')} | {s['min']:.2f} | {s['median']:.2f} | {s['max']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    CLI(finetune_benchmark)
