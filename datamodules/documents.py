"""The LightningDataModule: one corpus and its views (BoW, tokens, tf-idf, teacher soft targets)."""

from __future__ import annotations

import hashlib
import logging
import os
from functools import cached_property
from typing import Literal

import lightning.pytorch as pl
import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader

from datamodules.augment import Augmentation, build_transfer_set
from datamodules.batching import Collator, DocumentDataset, LengthBucketBatchSampler, PartitionDataset
from datamodules.bow import Vocabulary, english_stopwords, words_of
from datamodules.cache import (
    arrays_to_texts,
    cache_path,
    load_arrays,
    resolve_cache_dir,
    save_arrays,
    texts_to_arrays,
)
from datamodules.corpus import SPLIT_NAMES, Corpus, DataError, FileFormat, Split, load_corpus, read_documents
from datamodules.formats import LabelFormat
from datamodules.registry import DATASETS
from datamodules.teacher import TeacherLogits, file_sha256
from datamodules.tokens import (
    SpecialTokens,
    TokenizedSplit,
    load_tokenizer,
    tokenize_texts,
    tokenizer_fingerprint,
)

log = logging.getLogger(__name__)
CACHE_VERSION = "1"
SplitName = Literal["train", "dev", "test", "transfer"]


class DocumentDataModule(pl.LightningDataModule):
    """Documents for TopicBERT, BERT, the NVDM topic model and distilled students.

    Args:
        dataset: a named dataset (``r8``, ``20ng``, ``imdb``, ``reuters21578``, ``ohsumed``,
            ``ohsumed_multilabel``, ``ag_news``, ``aapd``, ``yelp2014``; see ``datamodules.registry``) or a
            folder holding ``train``, optional ``dev`` and ``test`` files (``.jsonl``, ``.jsonl.gz``,
            ``.csv``, ``.tsv``, or ``.txt`` with ``label<TAB>text`` lines).
        data_dir: root folder of the named datasets; defaults to ``$TOPICBERT_DATA``, then ``./data``.
        download: fetch a missing named dataset from its public source (checksummed) into the data root.
        tokenizer: Hugging Face tokenizer name or folder; it is also the encoder the model loads.
            ``null`` gives batches without tokens, one per document (topic model, tf-idf students).
        max_length: N, the token budget per document including special tokens.
        num_partitions: p; each document is cut into at most p partitions of x = N / p tokens.
        batch_size: training examples (partitions) per batch.
        length_bucketing: batch examples of similar length together (sorted within windows of
            ``bucket_batches`` batches), so dynamic padding wastes little; off gives random batches.
        bucket_batches: the window; smaller mixes lengths (and so often labels) more in each batch,
            larger pads less.
        pad_to_max_length: pad every partition to x = N / p tokens instead of the batch's longest
            (the paper-era recipe; slower, for measuring what dynamic padding saves).
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
        columns: column names of CSV/TSV files without a header row.
        label_format: ``names``, or ``bits`` for 0/1 label strings (the hedwig datasets).
        cache_dir: where tokenised and BoW views are cached; defaults to ``$TOPICBERT_CACHE``,
            then ``~/.cache/topicbert``.
        num_workers: DataLoader worker processes.
        predict_split: the split ``predict`` runs on, unless ``predict_file`` is given; ``transfer`` is
            the training split plus its augmented copies (the distillation transfer set).
        predict_file: a file of new documents (same formats; labels optional) to predict.
        augmentation: how the transfer set is augmented; ``null`` means the training split alone.
        teacher_logits: a teacher-logits file for the transfer set; training then runs on the transfer
            set with the teacher's soft targets in every batch (``teacher_logits``).
        tfidf: add a sparse tf-idf vector of each document to every batch (``tfidf``).
        tfidf_max_features: vocabulary cap of the tf-idf view (unigrams and bigrams, train split only).
    """

    def __init__(
        self,
        dataset: str = "r8",
        data_dir: str | None = None,
        download: bool = True,
        tokenizer: str | None = "sentence-transformers/all-MiniLM-L6-v2",
        max_length: int = 512,
        num_partitions: int = 1,
        batch_size: int = 16,
        length_bucketing: bool = True,
        bucket_batches: int = 50,
        pad_to_max_length: bool = False,
        eval_batch_size: int = 64,
        dev_size: int | float = 0.1,
        seed: int = 42,
        min_freq: int = 10,
        max_vocab_size: int | None = None,
        text_fields: list[str] | None = None,
        label_field: str | None = None,
        id_field: str | None = None,
        label_separator: str | None = None,
        columns: list[str] | None = None,
        label_format: LabelFormat = "names",
        cache_dir: str | None = None,
        num_workers: int = 0,
        predict_split: SplitName = "test",
        predict_file: str | None = None,
        augmentation: Augmentation | None = None,
        teacher_logits: str | None = None,
        tfidf: bool = False,
        tfidf_max_features: int = 100_000,
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
        self.download = download
        self.tokenizer_name = tokenizer
        self.max_length = max_length
        self.num_partitions = num_partitions
        self.batch_size = batch_size
        self.length_bucketing = length_bucketing
        if bucket_batches < 1:
            raise ValueError(f"bucket_batches must be at least 1, got {bucket_batches}; "
                             "turn bucketing off with length_bucketing: false.")  # fmt: skip
        self.bucket_batches = bucket_batches
        self.pad_to_max_length = pad_to_max_length
        self.eval_batch_size = eval_batch_size
        self.dev_size = dev_size
        self.seed = seed
        self.min_freq = min_freq
        self.max_vocab_size = max_vocab_size
        self.cache_dir = resolve_cache_dir(cache_dir)
        self.num_workers = num_workers
        self.predict_split = predict_split
        self.predict_file = predict_file
        self.augmentation = augmentation or Augmentation(copies=0)
        self.teacher_logits = teacher_logits
        self.use_tfidf = tfidf
        self.tfidf_max_features = tfidf_max_features
        self.file_format = None
        if any(v is not None for v in (text_fields, label_field, id_field, label_separator, columns)) or (
            label_format != "names"
        ):
            self.file_format = FileFormat(
                text_fields=tuple(text_fields or ("text",)),
                label_field=label_field or "label",
                id_field=id_field or "id",
                label_separator=label_separator,
                columns=tuple(columns) if columns else None,
                label_format=label_format,
            )
        self.datasets: dict[str, PartitionDataset | DocumentDataset] = {}
        self._resume_position: tuple[int, int] | None = None

    # ----- lazily prepared views (read by LightningCLI links before setup) -----

    @cached_property
    def corpus(self) -> Corpus:
        corpus = load_corpus(self.dataset, self.data_dir, self.file_format, self.dev_size, self.seed, self.download)
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

    @property
    def tfidf_features(self) -> int:
        """Width of the tf-idf vectors (linked to the logistic-regression student); 0 without ``tfidf``."""
        return len(self.tfidf_vectorizer.vocabulary_) if self.use_tfidf else 0

    @cached_property
    def stopwords(self) -> tuple[frozenset[str], str]:
        return english_stopwords()

    @cached_property
    def transfer(self) -> Split:
        """The training split followed by its augmented copies, cached on disk."""
        train = self.corpus["train"]
        if self.augmentation.copies == 0:
            return train
        path = cache_path(
            self.cache_dir, "transfer", self.corpus.name, CACHE_VERSION, self.split_fingerprint("transfer")
        )
        cached = load_arrays(path)
        if cached is None:
            transfer = build_transfer_set(train, self.augmentation)
            save_arrays(path, texts_to_arrays(transfer.texts[len(train) :]))
            return transfer
        copies = arrays_to_texts(cached)
        ids = [f"{doc_id}#aug{k}" for k in range(1, self.augmentation.copies + 1) for doc_id in train.ids]
        labels = [labels for _ in range(self.augmentation.copies) for labels in train.labels]
        return Split(train.ids + ids, train.texts + copies, train.labels + labels)

    def split_fingerprint(self, split: str) -> str:
        """Identifies the documents of a split: the corpus, the split and (transfer) the augmentation."""
        extra = repr(self.augmentation) if split == "transfer" else ""
        return hashlib.sha256(f"{self.corpus.fingerprint}|{split}|{extra}".encode()).hexdigest()[:16]

    def _source(self, split: str) -> str:
        """The split behind ``predict``: ``predict_file`` stays ``predict``, else ``predict_split``."""
        return self.predict_split if split == "predict" and not self.predict_file else split

    @property
    def predict_fingerprint(self) -> str:
        """Identifies the documents ``predict`` runs on (recorded in teacher-logits files)."""
        if self.predict_file:
            return file_sha256(self.predict_file)
        return self.split_fingerprint(self.predict_split)

    def documents(self, split: str) -> Split:
        split = self._source(split)
        if split == "transfer":
            return self.transfer
        if split == "predict":
            return self.predict_documents
        return self.corpus[split]

    @cached_property
    def predict_documents(self) -> Split:
        """``predict_file`` read like the training files: the given fields, else the named dataset's."""
        spec = DATASETS.get(self.dataset)
        return read_documents(self.predict_file, self.file_format or (spec.file_format if spec else FileFormat()))

    @cached_property
    def _bow_view(self) -> tuple[Vocabulary, dict[str, sp.csr_matrix]]:
        stopwords, source = self.stopwords
        path = cache_path(self.cache_dir, "bow", self.corpus.name, CACHE_VERSION, self.corpus.fingerprint,
                          str(self.min_freq), str(self.max_vocab_size), source)  # fmt: skip
        cached = load_arrays(path)
        if cached is not None:
            vocab = Vocabulary(cached["words"].tolist())
            return vocab, {s: _csr(cached, s, (len(self.corpus[s]), len(vocab))) for s in SPLIT_NAMES}
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
        return vocab, matrices

    def bow(self, split: str) -> sp.csr_matrix:
        """Topic-model word counts of every document of a split."""
        split = self._source(split)
        if split == "transfer" and self.augmentation.copies == 0:
            split = "train"
        if split in SPLIT_NAMES:
            return self._bow_view[1][split]
        stopwords, _ = self.stopwords
        return self.vocabulary.counts(words_of(t, stopwords) for t in self.documents(split).texts)

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.tokenizer_name)

    @cached_property
    def special_tokens(self) -> SpecialTokens:
        return SpecialTokens.of(self.tokenizer)

    def _cached_tokens(self, key: str, splits: dict[str, list[str]]) -> dict[str, TokenizedSplit]:
        path = cache_path(self.cache_dir, "tokens", self.corpus.name, CACHE_VERSION, key,
                          tokenizer_fingerprint(self.tokenizer))  # fmt: skip
        cached = load_arrays(path)
        if cached is not None:
            return {s: TokenizedSplit(cached[f"{s}_ids"], cached[f"{s}_offsets"]) for s in splits}
        view = {s: tokenize_texts(self.tokenizer, texts, desc=f"tokenising {s}") for s, texts in splits.items()}
        save_arrays(path, {f"{s}_{k}": getattr(v, k) for s, v in view.items() for k in ("ids", "offsets")})
        log.info("Tokenised %s with %s, cached in %s.", self.corpus.name, self.tokenizer_name, path)
        return view

    @cached_property
    def _token_view(self) -> dict[str, TokenizedSplit]:
        return self._cached_tokens(self.corpus.fingerprint, {s: self.corpus[s].texts for s in SPLIT_NAMES})

    def tokens(self, split: str) -> TokenizedSplit:
        """Token ids (no special tokens, not truncated) of every document of a split."""
        split = self._source(split)
        if split in SPLIT_NAMES or (split == "transfer" and self.augmentation.copies == 0):
            return self._token_view["train" if split == "transfer" else split]
        if split == "transfer":
            return self._cached_tokens(self.split_fingerprint("transfer"), {"transfer": self.transfer.texts})[
                "transfer"
            ]
        return tokenize_texts(self.tokenizer, self.documents(split).texts)

    @cached_property
    def tfidf_vectorizer(self):
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2,
                                     max_features=self.tfidf_max_features, dtype=np.float32)  # fmt: skip
        return vectorizer.fit(self.corpus["train"].texts)

    def label_matrix(self, split: Split) -> np.ndarray:
        """Multi-hot float32 targets (documents x labels); unknown labels are ignored."""
        index = {name: i for i, name in enumerate(self.label_names)}
        matrix = np.zeros((len(split), len(index)), dtype=np.float32)
        for row, labels in enumerate(split.labels):
            for label in labels:
                if label in index:
                    matrix[row, index[label]] = 1.0
        return matrix

    @property
    def train_split(self) -> str:
        """Students with a teacher train on the transfer set; everything else on the training split."""
        return "transfer" if self.teacher_logits else "train"

    # ----- Lightning hooks -----

    def prepare_data(self) -> None:
        """Build the caches once (on one process) so that every rank then only reads them."""
        self._bow_view  # noqa: B018
        if self.tokenizer_name is not None:
            self._token_view  # noqa: B018

    def setup(self, stage: str | None = None) -> None:
        splits = {"fit": (self.train_split, "dev"), "validate": ("dev",), "test": ("test",), "predict": ("predict",)}
        for split in splits.get(stage, SPLIT_NAMES) if stage else SPLIT_NAMES:
            if split not in self.datasets:
                self.datasets[split] = self._build(split)

    def _build(self, split: str) -> PartitionDataset | DocumentDataset:
        docs, bow = self.documents(split), self.bow(split)
        if self.tokenizer_name is None:
            dataset = DocumentDataset(len(docs), np.asarray(bow.sum(axis=1)).ravel())
            pad_id = 0
        else:
            dataset = PartitionDataset(self.tokens(split), self.max_length, self.num_partitions, self.special_tokens)
            pad_id = self.special_tokens.pad_id
        teacher = None
        if split == "transfer" and self.teacher_logits:
            teacher = TeacherLogits.load(self.teacher_logits).aligned(
                docs.ids, self.label_names, self.split_fingerprint("transfer"), self.teacher_logits
            )
        tfidf = self.tfidf_vectorizer.transform(docs.texts) if self.use_tfidf else None
        dataset.ids = docs.ids
        pad_to = self.max_length // self.num_partitions if self.pad_to_max_length and self.tokenizer_name else None
        dataset.collator = Collator(bow, self.label_matrix(docs), pad_id, teacher=teacher, tfidf=tfidf, pad_to=pad_to)
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
            bucket_batches=self.bucket_batches if self.length_bucketing else 0,
            num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
        )
        if shuffle and self._resume_position is not None:
            sampler.resume(*self._resume_position)
            self._resume_position = None
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=dataset.collator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            # worker seeds come from this generator, not the global one, so that fetching data
            # draws no random numbers that training would miss after a resume
            generator=torch.Generator().manual_seed(sampler.seed),
        )

    def state_dict(self) -> dict:
        """Saved with every checkpoint: the label names (a checkpoint is only read with the labels it
        was trained on) and the training position (epoch, batches done in it)."""
        trainer = self.trainer
        if trainer is None:
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"label_names": list(self.label_names), "epoch": trainer.current_epoch, "batches_done": done}

    def load_state_dict(self, state_dict: dict) -> None:
        saved = state_dict.get("label_names")
        if saved is not None and list(saved) != list(self.label_names):
            raise DataError(f"The checkpoint was trained on the labels {saved}, but {self.dataset!r} has "
                            f"{list(self.label_names)}. Use the dataset the checkpoint was trained on, or fit a "
                            "new model for this one.")  # fmt: skip
        if "epoch" in state_dict:
            self._resume_position = (state_dict["epoch"], state_dict["batches_done"])

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_split, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("dev", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", shuffle=False)


def _csr(arrays: dict[str, np.ndarray], split: str, shape: tuple[int, int]) -> sp.csr_matrix:
    return sp.csr_matrix((arrays[f"{split}_data"], arrays[f"{split}_indices"], arrays[f"{split}_indptr"]), shape=shape)
