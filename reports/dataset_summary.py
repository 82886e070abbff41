"""What a dataset holds, and what padding it to N tokens would cost, before anything is trained.

    python -m reports.dataset_summary --dataset reuters21578 --out benchmarks/datasets/reuters21578

Per split: documents, labels, label cardinality, length in words and in tokens (with the
tokenizer's special tokens, untruncated). Per N: the share of training documents longer than N,
and the tokens an epoch would process if every document were padded (and cut) to N, against the
real tokens it holds. Writes ``summary.md``, ``summary.json``, ``lengths.png`` and ``labels.png``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from jsonargparse import CLI

from datamodules.corpus import SPLIT_NAMES, Corpus, DataError, FileFormat, load_corpus
from datamodules.tokens import SpecialTokens, load_tokenizer, tokenize_texts
from utils.files import atomic_write
from utils.pretrained import EncoderNotFoundError

log = logging.getLogger(__name__)
PERCENTILES = (50, 90, 99)


def length_stats(lengths: np.ndarray) -> dict:
    stats = {"mean": round(float(lengths.mean()), 1), "max": int(lengths.max())}
    stats.update({f"p{q}": float(np.percentile(lengths, q)) for q in PERCENTILES})
    return stats


def padding_cost(token_lengths: np.ndarray, n: int) -> dict:
    """Padding every document to ``n`` tokens (longer ones cut to ``n``): how much of it is padding."""
    real = int(np.minimum(token_lengths, n).sum())
    padded = n * len(token_lengths)
    return {
        "n": n,
        "share_longer": round(float((token_lengths > n).mean()), 4),
        "real_tokens": real,
        "padded_tokens": padded,
        "padding_share": round(1 - real / padded, 4),
        "padded_over_real": round(padded / real, 2),
    }


def summarise(corpus: Corpus, token_lengths: dict[str, np.ndarray], lengths_n: list[int]) -> dict:
    splits = {}
    for split in SPLIT_NAMES:
        labels = corpus[split].labels
        words = np.array([len(t.split()) for t in corpus[split].texts])
        splits[split] = {
            "documents": len(labels),
            "labels_present": len({lab for doc in labels for lab in doc}),
            "label_cardinality": round(float(np.mean([len(doc) for doc in labels])), 3),
            "multi_label_documents": sum(len(doc) > 1 for doc in labels),
            "words": length_stats(words),
            "tokens": length_stats(token_lengths[split]),
        }
    frequencies = {
        name: {split: sum(name in doc for doc in corpus[split].labels) for split in SPLIT_NAMES}
        for name in corpus.label_names
    }
    return {
        "dataset": corpus.name,
        "labels": len(corpus.label_names),
        "multi_label": corpus.multi_label,
        "splits": splits,
        "padding_train": [padding_cost(token_lengths["train"], n) for n in lengths_n],
        "label_frequencies": dict(sorted(frequencies.items(), key=lambda kv: -kv[1]["train"])),
    }


def to_markdown(summary: dict, tokenizer: str, top_labels: int) -> str:
    splits = summary["splits"]
    kind = "multi-label" if summary["multi_label"] else "single-label"
    lines = [f"# {summary['dataset']}: {summary['labels']} labels, {kind}", "", f"Tokens: `{tokenizer}`.", ""]
    lines += [
        "| split | docs | labels present | labels/doc | docs with >1 label | words mean / p50 / p90 / p99 / max "
        "| tokens mean / p50 / p90 / p99 / max |",
        "|---|---|---|---|---|---|---|",
    ]
    for split, s in splits.items():
        w, t = s["words"], s["tokens"]
        lines.append(
            f"| {split} | {s['documents']:,} | {s['labels_present']} | {s['label_cardinality']} | "
            f"{s['multi_label_documents']:,} | {w['mean']} / {w['p50']:.0f} / {w['p90']:.0f} / {w['p99']:.0f} / "
            f"{w['max']:,} | {t['mean']} / {t['p50']:.0f} / {t['p90']:.0f} / {t['p99']:.0f} / {t['max']:,} |"
        )
    lines += [
        "",
        "Padding the training split to N tokens (longer documents cut to N):",
        "",
        "| N | docs longer than N | real tokens | padded tokens | padding share | padded / real |",
        "|---|---|---|---|---|---|",
    ]
    for p in summary["padding_train"]:
        lines.append(
            f"| {p['n']} | {p['share_longer']:.1%} | {p['real_tokens']:,} | {p['padded_tokens']:,} | "
            f"{p['padding_share']:.1%} | {p['padded_over_real']}x |"
        )
    shown = list(summary["label_frequencies"].items())[:top_labels]
    lines += [
        "",
        f"Label frequencies (documents; the {len(shown)} most frequent in train):",
        "",
        "| label | train | dev | test |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {f['train']:,} | {f['dev']:,} | {f['test']:,} |" for name, f in shown]
    return "\n".join(lines) + "\n"


def plot_lengths(token_lengths: dict[str, np.ndarray], lengths_n: list[int], title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=150)
    top = np.percentile(np.concatenate(list(token_lengths.values())), 99.5)
    bins = np.linspace(0, max(top, max(lengths_n)) * 1.05, 60)
    edges = cast(Sequence[float], bins)  # matplotlib takes any array of bin edges; its stubs say Sequence
    for split, lengths in token_lengths.items():
        ax.hist(np.minimum(lengths, bins[-1]), bins=edges, histtype="step", linewidth=1.4, label=split, density=True)
    for n in lengths_n:
        ax.axvline(n, color="gray", linestyle=":", linewidth=1)
        ax.text(n, ax.get_ylim()[1] * 0.97, f" N={n}", fontsize=7, color="gray", va="top", rotation=90)
    ax.set(xlabel="tokens per document (with special tokens)", ylabel="density", title=title)
    ax.legend()
    fig.tight_layout()
    _save(fig, path)


def plot_labels(frequencies: dict[str, dict[str, int]], title: str, path: Path, top: int) -> None:
    names = list(frequencies)[:top]
    fig, ax = plt.subplots(figsize=(max(6.4, 0.16 * len(names) + 2), 4.0), dpi=150)
    ax.bar(range(len(names)), [frequencies[n]["train"] for n in names], color="tab:blue")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6 if len(names) > 30 else 8)
    ax.set_yscale("log")
    ax.set(ylabel="training documents", title=title)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: Path) -> None:
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)


def dataset_summary(
    dataset: str = "r8",
    data_dir: str | None = None,
    tokenizer: str = "sentence-transformers/all-MiniLM-L6-v2",
    lengths: list[int] = [64, 128, 256, 512],  # noqa: B006 (a literal default shows in --help)
    dev_size: float = 0.1,
    seed: int = 42,
    file_format: FileFormat | None = None,
    out: str | None = None,
    top_labels: int = 40,
) -> dict:
    """Summarise a dataset; print the tables and, with ``out``, write them as markdown, JSON and PNGs.

    Args:
        dataset: a named dataset or a folder (as ``--data.dataset``).
        data_dir: the data root of the named datasets.
        tokenizer: the tokenizer whose lengths are counted.
        lengths: the N values of the padding table.
        dev_size: dev documents carved from train when there is no dev file (as ``--data.dev_size``).
        seed: seed of that dev split.
        file_format: fields and columns of a folder's files.
        out: folder for summary.md, summary.json, lengths.png and labels.png.
        top_labels: labels shown in the table and the bar chart (all are in the JSON).
    """
    corpus = load_corpus(dataset, data_dir, file_format, dev_size, seed)
    tok = load_tokenizer(tokenizer)
    extra = len(SpecialTokens.of(tok))
    token_lengths = {
        split: tokenize_texts(tok, corpus[split].texts, desc=f"tokenising {split}").lengths() + extra
        for split in SPLIT_NAMES
    }
    summary = summarise(corpus, token_lengths, sorted(lengths))
    summary["tokenizer"] = tokenizer
    markdown = to_markdown(summary, tokenizer, top_labels)
    print(markdown)
    if out:
        folder = Path(out)
        with atomic_write(folder / "summary.md") as f:
            f.write(markdown)
        with atomic_write(folder / "summary.json") as f:
            json.dump(summary, f, indent=2)
        plot_lengths(token_lengths, sorted(lengths), f"{corpus.name}: document lengths", folder / "lengths.png")
        plot_labels(
            summary["label_frequencies"], f"{corpus.name}: label frequencies", folder / "labels.png", top_labels
        )
        print(f"Written to {folder}/: summary.md, summary.json, lengths.png, labels.png")
    return summary


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        CLI(dataset_summary)
    except (DataError, EncoderNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
