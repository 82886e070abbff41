"""Does reading past 512 tokens pay on IMDB? TopicBERT at x = 512 with N = 512 (p = 1) against
N = 2048 (p = 4), on a fixed sample, three seeds, one run after another (finished runs are skipped).

    python -m reports.long_documents --out runs/long-documents

The sample (``<out>/data/``: train, dev and test JSON Lines drawn once with ``sample_seed`` from the
IMDB files) is the same for every run, so the two arms pair by seed on the same test documents.
Both arms train the same documents for the config's epochs (a budget in documents; the p = 4 arm
reads more partitions of the long ones, which its T shows). Macro-F1 is given on every test
document and on those longer than 512 tokens, the only ones the arms read differently.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import sys
from pathlib import Path

import numpy as np
from jsonargparse import CLI
from tqdm.auto import tqdm

from datamodules.formats import resolve_data_dir
from reports.paired import mean_std, paired_difference
from reports.runs import is_finished, read_results, run_fit
from utils.files import atomic_write
from utils.predictions import FILENAME, DocumentPredictions
from utils.pretrained import load_pretrained

ARMS = {"N512-p1": (512, 1), "N2048-p4": (2048, 4)}


def write_sample(folder: Path, source: Path, sizes: dict[str, int], seed: int) -> None:
    """``train``/``dev`` from IMDB's train file and ``test`` from its test file, drawn with ``seed``."""
    if all((folder / f"{split}.jsonl").is_file() for split in sizes):
        return
    rng = random.Random(seed)
    train, test = (read_rows(source / f"{split}.jsonl.gz") for split in ("train", "test"))
    drawn = rng.sample(train, sizes["train"] + sizes["dev"])
    splits = {"train": drawn[: sizes["train"]], "dev": drawn[sizes["train"] :], "test": rng.sample(test, sizes["test"])}
    for split, rows in splits.items():
        with atomic_write(folder / f"{split}.jsonl") as f:
            f.writelines(json.dumps({"id": r["id"], "label": r["label"], "text": r["text"]}) + "\n" for r in rows)


def read_rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def long_ids(test_file: Path, tokenizer: str, limit: int) -> set[str]:
    """Ids of the test documents with more than ``limit`` tokens (special tokens included)."""
    from transformers import AutoTokenizer

    tok = load_pretrained(AutoTokenizer, tokenizer)
    rows = [json.loads(line) for line in test_file.open(encoding="utf-8")]
    lengths = tok([r["text"] for r in rows], add_special_tokens=True, truncation=False)["input_ids"]
    return {r["id"] for r, ids in zip(rows, lengths, strict=True) if len(ids) > limit}


def subset(p: DocumentPredictions, keep: set[str]) -> DocumentPredictions:
    rows = np.array([i in keep for i in p.ids])
    return DocumentPredictions(
        [i for i in p.ids if i in keep], p.gold[rows], p.predicted[rows], p.label_names, p.multi_label
    )


def long_documents(
    out: str = "runs/long-documents",
    seeds: list[int] = [1, 2, 3],  # noqa: B006
    config: str = "configs/topicbert.yaml",
    train: int = 1000,
    dev: int = 500,
    test: int = 1000,
    sample_seed: int = 0,
    min_freq: int = 10,
    tokenizer: str = "sentence-transformers/all-MiniLM-L6-v2",
    data_dir: str | None = None,
    overrides: list[str] = [],  # noqa: B006
) -> int:
    """Run both arms for every seed, then write ``table.md`` and ``table.json`` in ``out``.

    Args:
        out: study folder (sample, runs and table).
        seeds: ``seed_everything`` values, one run per arm and seed.
        config: the base config (the main job's: TopicBERT, 2 epochs, MiniLM).
        train, dev, test: documents in the sample's splits.
        sample_seed: seed of the sample draw.
        min_freq: the topic model's vocabulary threshold (the sample is small for the paper's 100).
        tokenizer: counts tokens for the long-document subset.
        data_dir: data root holding ``imdb/`` (default ``$TOPICBERT_DATA``).
        overrides: extra ``cli.py fit`` arguments for every run (a smoke test's batch limits).

    Returns the number of failed runs.
    """
    folder = Path(out)
    data = folder / "data"
    write_sample(data, resolve_data_dir(data_dir) / "imdb", {"train": train, "dev": dev, "test": test}, sample_seed)
    grid = [(arm, seed) for seed in seeds for arm in ARMS]
    failed = 0
    progress = tqdm(grid, desc="long documents", unit="run")
    for arm, seed in progress:
        run = folder / "runs" / arm / f"seed{seed}"
        if is_finished(run):
            progress.write(f"skip  {arm} seed {seed}: already finished")
            continue
        n, p = ARMS[arm]
        arguments = ["--data.dataset", str(data), "--data.max_length", str(n), "--data.num_partitions", str(p)]
        arguments += ["--data.min_freq", str(min_freq), "--seed_everything", str(seed)]
        arguments += ["--wandb.group", "long-documents-imdb"]
        code, minutes = run_fit(run, [config], [*arguments, *overrides])
        if code == 0 and is_finished(run):
            f1 = (read_results(run) or {})["test_macro_f1"]
            progress.write(f"done  {arm} seed {seed}: test macro-F1 {f1:.4f} in {minutes:.1f} min")
        else:
            failed += 1
            progress.write(f"FAIL  {arm} seed {seed} (exit {code}); see {run}.log")
    write_table(folder, seeds, long_ids(data / "test.jsonl", tokenizer, 512))
    return failed


def write_table(folder: Path, seeds: list[int], long: set[str]) -> None:
    """Mean ± std per arm over the finished seeds, and N = 2048 minus N = 512 with its paired interval."""
    runs: dict[str, list[tuple[int, DocumentPredictions, dict]]] = {}
    for arm in ARMS:
        for seed in seeds:
            run = folder / "runs" / arm / f"seed{seed}"
            if is_finished(run):
                results = read_results(run) or {}
                runs.setdefault(arm, []).append((seed, DocumentPredictions.load(run / FILENAME), results))
    if len(runs) < len(ARMS):
        return
    summary: dict = {"seeds": seeds, "test_documents": len(runs["N512-p1"][0][1].ids), "long_documents": len(long)}
    for arm, arm_runs in runs.items():
        summary[arm] = {
            "seeds": [s for s, _, _ in arm_runs],
            "macro_f1": mean_std([p.macro_f1() for _, p, _ in arm_runs]),
            "macro_f1_long": mean_std([subset(p, long).macro_f1() for _, p, _ in arm_runs]),
            "time_total_s": mean_std([r["time_total_s"] for _, _, r in arm_runs]),
            "time_epoch_s": mean_std([r["time_epoch_mean_s"] for _, _, r in arm_runs]),
            "energy_kwh": mean_std([r["energy_kwh"] for _, _, r in arm_runs]),
            "documents_seen": arm_runs[0][2].get("documents_seen"),
            "optimizer_steps": arm_runs[0][2].get("optimizer_steps"),
        }
    for name, view in (("all", lambda p: p), ("long", lambda p: subset(p, long))):
        c = paired_difference(
            [(s, view(p)) for s, p, _ in runs["N2048-p4"]], [(s, view(p)) for s, p, _ in runs["N512-p1"]]
        )
        summary[f"difference_{name}"] = {"mean": c.difference, "interval": c.interval, "pairing": c.pairing}
    with atomic_write(folder / "table.json") as f:
        json.dump(summary, f, indent=2)
    with atomic_write(folder / "table.md") as f:
        f.write(to_markdown(summary))
    print(to_markdown(summary))


def to_markdown(s: dict) -> str:
    def ms(pair, spec=".4f"):
        return f"{pair[0]:{spec}} ± {pair[1]:{spec}}"

    lines = [
        f"IMDB sample: {s['test_documents']} test documents, {s['long_documents']} of them longer than 512 tokens; "
        f"seeds {s['seeds']}.",
        "",
        "| arm | macro-F1, all | macro-F1, >512 tokens | T (s) | T_epoch (s) | energy (kWh) | documents seen "
        "| optimiser steps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm in ARMS:
        a = s[arm]
        lines.append(
            f"| {arm} | {ms(a['macro_f1'])} | {ms(a['macro_f1_long'])} | {ms(a['time_total_s'], '.0f')} | "
            f"{ms(a['time_epoch_s'], '.0f')} | {ms(a['energy_kwh'], '.2g')} | {a['documents_seen']} | "
            f"{a['optimizer_steps']} |"
        )
    ratio = s["N2048-p4"]["time_total_s"][0] / s["N512-p1"]["time_total_s"][0]
    lines.append("")
    for name in ("all", "long"):
        d = s[f"difference_{name}"]
        lines.append(
            f"- N = 2048 minus N = 512, macro-F1 on {name} test documents: {d['mean']:+.4f}, 95% interval "
            f"[{d['interval'][0]:+.4f}, {d['interval'][1]:+.4f}] (paired {d['pairing']})."
        )
    lines.append(f"- T ratio (N = 2048 / N = 512): {ratio:.2f}x.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(CLI(long_documents))
