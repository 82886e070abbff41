"""Shared fixtures: a tiny random BERT with its WordPiece tokenizer, and tiny labelled corpora.

The encoder is saved with ``save_pretrained`` into a temporary folder, so tests exercise the same
``from_pretrained(path)`` loading path as real runs, offline.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
_shared_nltk = Path(__file__).resolve().parents[2] / "shared" / "nltk_data"
if "NLTK_DATA" not in os.environ and _shared_nltk.is_dir():
    os.environ["NLTK_DATA"] = str(_shared_nltk)

ROOT = Path(__file__).resolve().parents[1]

TOPICS = {
    "sport": "goal match team player score league coach season stadium referee",
    "finance": "bank stock market profit shares investor dividend trading earnings quarter",
    "science": "atom cell laboratory experiment physics molecule research theory energy particle",
}
FILLER = [
    *("the", "a", "of", "and", "to", "in", "report", "said"),
    *("today", "new", "people", "year", "week", "time", "group"),
]


def make_document(rng: random.Random, label: str, length: int) -> str:
    words = TOPICS[label].split()
    return " ".join(rng.choice(words) if rng.random() < 0.6 else rng.choice(FILLER) for _ in range(length))


def make_split(rng: random.Random, n: int, min_len: int = 5, max_len: int = 90) -> list[dict]:
    labels = sorted(TOPICS)
    return [
        {
            "id": f"d{rng.randrange(10**9)}-{i}",
            "label": labels[i % 3],
            "text": make_document(rng, labels[i % 3], rng.randint(min_len, max_len)),
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_corpus(folder: Path, make_rows, seed: int, train: int, test: int) -> Path:
    """train.jsonl and test.jsonl in ``folder``, drawn from one seeded generator."""
    rng = random.Random(seed)
    write_jsonl(folder / "train.jsonl", make_rows(rng, train))
    write_jsonl(folder / "test.jsonl", make_rows(rng, test))
    return folder


@pytest.fixture(scope="session")
def tiny_corpus_dir(tmp_path_factory) -> Path:
    """A folder with train.jsonl and test.jsonl: 90 / 30 documents of three topics, 5-90 words."""
    return write_corpus(tmp_path_factory.mktemp("tiny_corpus"), make_split, seed=0, train=90, test=30)


def make_multilabel_split(rng: random.Random, n: int) -> list[dict]:
    """Documents about one or two of the topics, their words mixed; ``labels`` lists the topics."""
    names = sorted(TOPICS)
    rows = []
    for i in range(n):
        labels = sorted(rng.sample(names, 1 + (i % 3 == 0)))
        parts = [make_document(rng, label, rng.randint(8, 40)) for label in labels]
        rows.append({"id": f"m{i}", "labels": labels, "text": " ".join(parts)})
    return rows


@pytest.fixture(scope="session")
def tiny_multilabel_dir(tmp_path_factory) -> Path:
    """A multi-label folder (train.jsonl, test.jsonl; 120 / 40 documents, a third with two labels)."""
    return write_corpus(tmp_path_factory.mktemp("tiny_multilabel"), make_multilabel_split, seed=1, train=120, test=40)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random BERT and a WordPiece tokenizer covering the tiny corpora's words."""
    import transformers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_bert")
    words = sorted({w for text in TOPICS.values() for w in text.split()} | set(FILLER))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz")]
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    if int(transformers.__version__.split(".")[0]) >= 5:
        tokenizer = BertTokenizerFast(vocab=str(vocab_file))
    else:
        tokenizer = BertTokenizerFast(vocab_file=str(vocab_file))
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,  # the shipped configs cut partitions of up to 512 tokens
    )
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A fresh cache root per test, also exported as $TOPICBERT_CACHE."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("TOPICBERT_CACHE", str(folder))
    return folder


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real datasets: $TOPICBERT_DATA, else ../shared/data beside the repository."""
    folder = Path(os.environ.get("TOPICBERT_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    if not (folder / "r8").is_dir():
        pytest.fail(f"Real-data tests need the datasets: set TOPICBERT_DATA (looked in {folder}).")
    return folder


@pytest.fixture(autouse=True)
def in_tmp_folder(tmp_path, monkeypatch):
    """Every test runs in its own folder, so ./runs and other relative outputs never touch the repo."""
    monkeypatch.chdir(tmp_path)


def job_folder(home: Path) -> Path:
    """The one job folder a run made under ``<home>/runs`` (named by the model's label and the dataset)."""
    (folder,) = [p for p in (home / "runs").iterdir() if p.name != "wandb"]
    return folder


def nvdm_args(corpus_dir) -> list[str]:
    """CLI arguments: the topic-model config on a tiny corpus (Fmin 2, a 20% dev split)."""
    return [
        *("--config", str(ROOT / "configs/nvdm.yaml"), "--data.dataset", str(corpus_dir)),
        *("--data.min_freq", "2", "--data.dev_size", "0.2"),
    ]


TASKS = {
    "topicbert": ["--config", str(ROOT / "configs/topicbert.yaml"), "--model.init_args.num_topics", "8"],
    "logreg": ["--config", str(ROOT / "configs/students/logreg.yaml"), "--data.tokenizer", "null"],
    # the students read one partition of N tokens, as their shipped configs do
    "kimcnn": ["--config", str(ROOT / "configs/students/kimcnn.yaml"), "--data.num_partitions", "1"],
    "bilstm": ["--config", str(ROOT / "configs/students/bilstm.yaml"), "--data.num_partitions", "1"],
}


def task_args(task: str, corpus_dir, encoder_dir) -> list[str]:
    """``cli.py fit`` arguments of one task's shipped config on the tiny corpus and encoder, one epoch, no W&B."""
    config, *extra = TASKS[task][1:]
    return [
        "--config",
        config,
        *tiny_args(corpus_dir, encoder_dir)[2:],
        *extra,
        "--trainer.max_epochs",
        "1",
        "--wandb",
        "false",
    ]


def tiny_args(corpus_dir, encoder_dir, config="configs/topicbert.yaml") -> list[str]:
    """CLI arguments: a shipped config on the tiny corpus and encoder, two quick epochs."""
    return [
        "--config",
        str(ROOT / config),
        "--data.dataset",
        str(corpus_dir),
        "--data.tokenizer",
        str(encoder_dir),
        "--data.max_length",
        "32",
        "--data.num_partitions",
        "2",
        "--data.min_freq",
        "2",
        "--data.dev_size",
        "0.2",
        "--data.batch_size",
        "8",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.max_epochs",
        "2",
    ]
