"""The paper's Figure 1: what one training batch costs the encoder as the sequence grows.

    python -m reports.seqlen_cost --encoder sentence-transformers/all-MiniLM-L6-v2 --batch_size 8

For each sequence length, a few warm-up steps and then timed training steps (forward, backward,
AdamW) on random token ids: time per batch, peak memory, model FLOP utilisation against the
measured matmul peak, and CO2 per batch both measured with CodeCarbon and from the paper's
equation. Writes JSON, CSV and a PNG. On a GPU, BERT-base with random weights in bf16:

    python -m reports.seqlen_cost --encoder bert-base --random_weights true --batch_size 32
"""

from __future__ import annotations

from utils.process import restart_with_tuned_malloc

if __name__ == "__main__":
    restart_with_tuned_malloc()

import csv
import json
import logging
import statistics
import time
from pathlib import Path

import torch
from jsonargparse import CLI
from tqdm.auto import tqdm

from models.flops import SequenceFlops, count_encoder_flops
from utils.carbon import paper_co2_g
from utils.files import atomic_write
from utils.hardware import measured_matmul_tflops
from utils.memory import peak_memory_mb, reset_peak_memory
from utils.pretrained import encoder_config, load_pretrained

log = logging.getLogger(__name__)


def load_model(encoder: str, random_weights: bool, attn_implementation: str):
    from transformers import AutoModel

    if random_weights:
        return AutoModel.from_config(encoder_config(encoder), attn_implementation=attn_implementation)
    return load_pretrained(AutoModel, encoder, attn_implementation=attn_implementation)


def measure_length(
    model,
    length: int,
    batch_size: int,
    steps: int,
    warmup: int,
    device: torch.device,
    dtype: torch.dtype | None,
    tracker,
    peak_tflops: float,
    flops: SequenceFlops,
) -> dict:
    """Time, throughput, peak memory, energy and CO2 (measured and by the paper's equation) of one
    training step at one sequence length."""
    vocab = model.config.vocab_size
    ids = torch.randint(1000 if vocab > 2000 else 0, vocab, (batch_size, length), device=device)
    mask = torch.ones_like(ids)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = model(input_ids=ids, attention_mask=mask).last_hidden_state.float().pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    reset_peak_memory(device)
    tracker.start_task(f"length{length}")
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    measured = tracker.stop_task()
    memory = peak_memory_mb(device)
    seconds = statistics.fmean(times)
    model_tflops = 3.0 * batch_size * flops.of(length) / seconds / 1e12
    return {
        "length": length,
        "time_per_batch_s": seconds,
        "tokens_per_s": batch_size * length / seconds,
        "peak_memory_mb": memory,
        "model_tflops_per_s": model_tflops,
        "mfu": model_tflops / peak_tflops,
        "energy_per_batch_kwh": measured.energy_consumed / steps,
        "co2_measured_per_batch_g": measured.emissions * 1000 / steps,
        "co2_paper_eq_per_batch_g": paper_co2_g(seconds / 3600),
    }


def plot(rows: list[dict], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = [r["length"] for r in rows]
    panels = [
        ("time_per_batch_s", "time per batch (s)"),
        ("peak_memory_mb", "peak memory (MiB)"),
        ("co2_measured_per_batch_g", "CO2 per batch (g)"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), dpi=150)
    for ax, (key, label) in zip(axes, panels, strict=True):
        ax.plot(lengths, [r[key] for r in rows], marker="o", label="measured" if "co2" in key else None)
        if "co2" in key:
            ax.plot(lengths, [r["co2_paper_eq_per_batch_g"] for r in rows], marker="s", label="paper equation")
            ax.legend(fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, [str(n) for n in lengths])
        ax.set_xlabel("sequence length")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def seqlen_cost(
    encoder: str = "sentence-transformers/all-MiniLM-L6-v2",
    lengths: list[int] = [32, 64, 128, 256, 512],  # noqa: B006
    batch_size: int = 8,
    steps: int = 5,
    warmup: int = 2,
    random_weights: bool = False,
    attn_implementation: str = "sdpa",
    precision: str = "auto",
    country_iso_code: str = "USA",
    out: str = "runs/seqlen_cost",
) -> list[dict]:
    """Measure and plot training cost per batch against sequence length (the paper's Figure 1).

    Args:
        encoder: Hugging Face encoder name or folder.
        lengths: sequence lengths to measure.
        batch_size: sequences per batch, fixed for every length.
        steps: timed training steps per length.
        warmup: untimed steps before them.
        random_weights: build the encoder from its configuration only (speed does not depend on
            weights); ``--encoder bert-base`` then needs no download.
        attn_implementation: ``sdpa`` or ``eager``.
        precision: ``auto`` (bf16 autocast on CUDA with bf16, else fp32), ``bf16``, ``16`` or ``32``.
        country_iso_code: grid for the measured CO2.
        out: output folder for ``seqlen_cost.{json,csv,png}``.
    """
    from codecarbon import OfflineEmissionsTracker

    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "32"
    dtype = {"bf16": torch.bfloat16, "16": torch.float16, "32": None}[precision]
    model = load_model(encoder, random_weights, attn_implementation).to(device).train()
    flops = count_encoder_flops(model)
    on_cpu = device.type == "cpu"
    peak_tflops = measured_matmul_tflops(device, dtype or torch.float32, size=2048 if on_cpu else 8192)
    tracker = OfflineEmissionsTracker(
        country_iso_code=country_iso_code,
        measure_power_secs=1,
        save_to_file=False,
        log_level="error",
        allow_multiple_runs=True,
        gpu_ids=[device.index or 0] if device.type == "cuda" else None,
    )
    tracker.start()
    try:
        rows = [
            measure_length(model, n, batch_size, steps, warmup, device, dtype, tracker, peak_tflops, flops)
            for n in tqdm(lengths, desc="sequence lengths", unit="length")
        ]
    finally:
        tracker.stop()
    folder = Path(out)
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    meta = {
        "encoder": encoder,
        "batch_size": batch_size,
        "steps": steps,
        "precision": precision,
        "attn_implementation": attn_implementation,
        "hardware": hardware,
        "matmul_peak_tflops": peak_tflops,
    }
    with atomic_write(folder / "seqlen_cost.json") as f:
        json.dump(meta | {"rows": rows}, f, indent=2)
    with atomic_write(folder / "seqlen_cost.csv") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    label = {"bf16": "bf16", "16": "fp16", "32": "fp32"}[precision]
    plot(rows, f"{encoder}: one training step, batch {batch_size}, {label}, {hardware}", folder / "seqlen_cost.png")
    for row in rows:
        print(
            f"N={row['length']:4d}  {row['time_per_batch_s']:.3f} s/batch  {row['tokens_per_s']:.0f} tok/s  "
            f"{row['peak_memory_mb']:.0f} MiB  MFU {row['mfu']:.1%}  "
            f"{row['co2_measured_per_batch_g']:.2e} g CO2 (measured)  "
            f"{row['co2_paper_eq_per_batch_g']:.2e} g (paper eq.)"
        )
    print(f"Written to {folder}/seqlen_cost.{{json,csv,png}}")
    return rows


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    CLI(seqlen_cost)
