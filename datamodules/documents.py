"""The LightningDataModule: one corpus, its BoW view and (optionally) its token view."""

from __future__ import annotations

import logging
import os
from functools import cached_property
from typing import Literal

import lightning.pytorch as pl
import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader

from datamodules.batching import Collator, DocumentDataset, LengthBucketBatchSampler, PartitionDataset
from datamodules.bow import Vocabulary, english_stopwords, words_of
from datamodules.cache import cache_path, load_arrays, resolve_cache_dir, save_arrays
from datamodules.corpus import SPLIT_NAMES, Corpus, DataError, FileFormat, Split, load_corpus, read_documents
from datamodules.tokens import (
    SpecialTokens,
    TokenizedSplit,
    load_tokenizer,
    tokenize_texts,
    tokenizer_fingerprint,
)

log = logging.getLogger(__name__)
CACHE_VERSION = "1"
SplitName = Literal["train", "dev", "test"]


class DocumentDataModule(pl.LightningDataModule):
    """Documents for TopicBERT, BERT and the NVDM topic model.

    Args:
        dataset: ``r8``, ``20ng``, ``imdb``, ``reuters21578``, or a folder holding ``train``, optional
            ``dev`` and ``test`` files (``.jsonl``, ``.jsonl.gz``, ``.csv``, ``.tsv``/``.txt``).
        data_dir: root folder of the named datasets; defaults to ``$TOPICBERT_DATA``, then ``./data``.
        tokenizer: Hugging Face tokenizer name or folder; it is also the encoder the model loads.
            ``null`` gives BoW-only batches, one per document (topic-model pretraining).
        max_length: N, the token budget per document including special tokens.
        num_partitions: p; each document is cut into at most p partitions of x = N / p tokens.
        batch_size: training examples (partitions) per batch.
        eval_batch_size: examples per batch for validation, test and predict.
        dev_size: dev documents carved from train when the dataset has no dev split
            (below 1: a fraction of train; 1 or more: a number of documents).
        seed: seed of the dev split. The training batch order follows ``seed_everything``
            (Lightning's ``PL_GLOBAL_SEED``), so runs with different seeds share one dev split.
        min_freq: Fmin, the minimum training-split frequency of a topic-model word.
        max_vocab_size: keep at most this many of the most frequent topic-model words.
        text_fields: fields/columns joined to form the text (overrides the dataset's own).
        label_field: field/column holding the label(s) (overrides the dataset's own).
        id_field: field/column holding the document id.
        label_separator: splits one CSV/TSV label cell into several labels.
        cache_dir: where tokenised and BoW views are cached; defaults to ``$TOPICBERT_CACHE``,
            then ``~/.cache/topicbert``.
        num_workers: DataLoader worker processes.
        predict_split: the split ``predict`` runs on, unless ``predict_file`` is given.
        predict_file: a file of new documents (same formats; labels optional) to predict.
    """

    def __init__(
        self,
        dataset: str = "r8",
        data_dir: str | None = None,
        tokenizer: str | None = "sentence-transformers/all-MiniLM-L6-v2",
        max_length: int = 512,
        num_partitions: int = 1,
        batch_size: int = 16,
        eval_batch_size: int = 64,
        dev_size: int | float = 0.1,
        seed: int = 42,
        min_freq: int = 10,
        max_vocab_size: int | None = None,
        text_fields: list[str] | None = None,
        label_field: str | None = None,
        id_field: str | None = None,
        label_separator: str | None = None,
        cache_dir: str | None = None,
        num_workers: int = 0,
        predict_split: SplitName = "test",
        predict_file: str | None = None,
    ):
        super().__init__()
        if max_length // num_partitions < 8:
            raise DataError(
                f"max_length={max_length} / num_partitions={num_partitions} leaves partitions of fewer than 8 "
                "tokens; lower --data.num_partitions or raise --data.max_length."
            )
        self.save_hyperparameters()
        self.dataset = dataset
        self.data_dir = data_dir
        self.tokenizer_name = tokenizer
        self.max_length = max_length
        self.num_partitions = num_partitions
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.dev_size = dev_size
        self.seed = seed
        self.min_freq = min_freq
        self.max_vocab_size = max_vocab_size
        self.cache_dir = resolve_cache_dir(cache_dir)
        self.num_workers = num_workers
        self.predict_split = predict_split
        self.predict_file = predict_file
        self.file_format = None
        if any(v is not None for v in (text_fields, label_field, id_field, label_separator)):
            self.file_format = FileFormat(
                text_fields=tuple(text_fields or ("text",)),
                label_field=label_field or "label",
                id_field=id_field or "id",
                label_separator=label_separator,
            )
        self.datasets: dict[str, PartitionDataset | DocumentDataset] = {}

    # ----- lazily prepared views (read by LightningCLI links before setup) -----

    @cached_property
    def corpus(self) -> Corpus:
        corpus = load_corpus(self.dataset, self.data_dir, self.file_format, self.dev_size, self.seed)
        sizes = " / ".join(f"{len(corpus[s])} {s}" for s in SPLIT_NAMES)
        log.info("%s: %s documents, %d labels.", corpus.name, sizes, len(corpus.label_names))
        return corpus

    @property
    def num_labels(self) -> int:
        return len(self.corpus.label_names)

    @property
    def label_names(self) -> list[str]:
        return self.corpus.label_names

    @property
    def multi_label(self) -> bool:
        return self.corpus.multi_label

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    @property
    def vocabulary(self) -> Vocabulary:
        return self._bow_view[0]

    @cached_property
    def stopwords(self) -> tuple[frozenset[str], str]:
        return english_stopwords()

    @cached_property
    def _bow_view(self) -> tuple[Vocabulary, dict[str, sp.csr_matrix]]:
        stopwords, source = self.stopwords
        path = cache_path(
            self.cache_dir,
            "bow",
            self.corpus.name,
            CACHE_VERSION,
            self.corpus.fingerprint,
            str(self.min_freq),
            str(self.max_vocab_size),
            source,
        )
        cached = load_arrays(path)
        if cached is None:
            tokenized = {s: [words_of(t, stopwords) for t in self.corpus[s].texts] for s in SPLIT_NAMES}
            vocab = Vocabulary.build(tokenized["train"], self.min_freq, self.max_vocab_size)
            if len(vocab) == 0:
                raise DataError(
                    f"The topic-model vocabulary of {self.corpus.name!r} is empty: no training word occurs "
                    f"{self.min_freq} times. Lower --data.min_freq."
                )
            matrices = {s: vocab.counts(tokenized[s]) for s in SPLIT_NAMES}
            arrays = {"words": np.asarray(vocab.words)}
            for s, m in matrices.items():
                arrays |= {f"{s}_data": m.data, f"{s}_indices": m.indices, f"{s}_indptr": m.indptr}
            save_arrays(path, arrays)
            log.info("Topic-model vocabulary: %d words (Fmin=%d), cached in %s.", len(vocab), self.min_freq, path)
        else:
            vocab = Vocabulary(cached["words"].tolist())
            matrices = {
                s: sp.csr_matrix(
                    (cached[f"{s}_data"], cached[f"{s}_indices"], cached[f"{s}_indptr"]),
                    shape=(len(self.corpus[s]), len(vocab)),
                )
                for s in SPLIT_NAMES
            }
        return vocab, matrices

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.tokenizer_name)

    @cached_property
    def special_tokens(self) -> SpecialTokens:
        return SpecialTokens.of(self.tokenizer)

    @cached_property
    def _token_view(self) -> dict[str, TokenizedSplit]:
        path = cache_path(
            self.cache_dir,
            "tokens",
            self.corpus.name,
            CACHE_VERSION,
            self.corpus.fingerprint,
            tokenizer_fingerprint(self.tokenizer),
        )
        cached = load_arrays(path)
        if cached is not None:
            return {s: TokenizedSplit(cached[f"{s}_ids"], cached[f"{s}_offsets"]) for s in SPLIT_NAMES}
        view = {s: tokenize_texts(self.tokenizer, self.corpus[s].texts, desc=f"tokenising {s}") for s in SPLIT_NAMES}
        save_arrays(path, {f"{s}_{k}": getattr(v, k) for s, v in view.items() for k in ("ids", "offsets")})
        log.info("Tokenised %s with %s, cached in %s.", self.corpus.name, self.tokenizer_name, path)
        return view

    def label_matrix(self, split: Split) -> np.ndarray:
        """Multi-hot float32 targets (documents x labels); unknown labels are ignored."""
        index = {name: i for i, name in enumerate(self.label_names)}
        matrix = np.zeros((len(split), len(index)), dtype=np.float32)
        for row, labels in enumerate(split.labels):
            for label in labels:
                if label in index:
                    matrix[row, index[label]] = 1.0
        return matrix

    # ----- Lightning hooks -----

    def prepare_data(self) -> None:
        """Build the caches once (on one process) so that every rank then only reads them."""
        self._bow_view  # noqa: B018
        if self.tokenizer_name is not None:
            self._token_view  # noqa: B018

    def setup(self, stage: str | None = None) -> None:
        splits = {"fit": ("train", "dev"), "validate": ("dev",), "test": ("test",), "predict": ("predict",)}
        for split in splits.get(stage, SPLIT_NAMES) if stage else SPLIT_NAMES:
            if split not in self.datasets:
                self.datasets[split] = self._build(split)

    def _documents(self, split: str) -> tuple[Split, sp.csr_matrix, TokenizedSplit | None]:
        if split == "predict" and self.predict_file:
            docs = read_documents(self.predict_file, self.file_format or FileFormat())
            stopwords, _ = self.stopwords
            bow = self.vocabulary.counts(words_of(t, stopwords) for t in docs.texts)
            tokens = tokenize_texts(self.tokenizer, docs.texts) if self.tokenizer_name else None
            return docs, bow, tokens
        split = self.predict_split if split == "predict" else split
        tokens = self._token_view[split] if self.tokenizer_name else None
        return self.corpus[split], self._bow_view[1][split], tokens

    def _build(self, split: str) -> PartitionDataset | DocumentDataset:
        docs, bow, tokens = self._documents(split)
        if tokens is None:
            dataset = DocumentDataset(len(docs), np.asarray(bow.sum(axis=1)).ravel())
            pad_id = 0
        else:
            dataset = PartitionDataset(tokens, self.max_length, self.num_partitions, self.special_tokens)
            pad_id = self.special_tokens.pad_id
        dataset.ids = docs.ids
        dataset.collator = Collator(bow, self.label_matrix(docs), pad_id)
        return dataset

    def document_ids(self, split: str) -> list[str]:
        """Ids of the documents of a split set up earlier (``predict`` included), by doc_index."""
        return self.datasets[split].ids

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            self.datasets[split] = self._build(split)
        dataset = self.datasets[split]
        batch_size = self.batch_size if shuffle else self.eval_batch_size
        trainer = self.trainer
        sampler = LengthBucketBatchSampler(
            dataset.lengths,
            batch_size,
            shuffle=shuffle,
            seed=int(os.environ.get("PL_GLOBAL_SEED", self.seed)),
            num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
        )
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=dataset.collator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("dev", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", shuffle=False)
