"""The LightningDataModule: batches of one corpus's views for training, evaluation and prediction."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from datamodules.assets import STATE_KEY, InferenceAssets, tfidf_state
from datamodules.augment import Augmentation
from datamodules.batching import (
    Collator,
    DocumentDataset,
    LengthBucketBatchSampler,
    PartitionDataset,
    ResumableLoader,
)
from datamodules.bow import Vocabulary
from datamodules.cache import writable_cache_dir
from datamodules.corpus import SPLIT_NAMES, Corpus, Split
from datamodules.formats import DataError, FileFormat
from datamodules.tokens import cut_documents
from datamodules.views import CorpusViews, SplitView
from utils.options import check_ranges
from utils.pretrained import EncoderNotFoundError, load_pretrained, resolve_pretrained

if TYPE_CHECKING:
    from lightning.fabric.utilities.data import AttributeDict

log = logging.getLogger(__name__)
# the data settings that decide a model's inputs: a restored model is fed as it was trained
INPUT_SETTINGS = ("max_length", "num_partitions", "min_freq", "max_vocab_size", "bow", "tfidf", "tfidf_max_features")
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
        train_fraction: share of the training documents the run trains on, a seeded sample drawn once
            from ``seed_everything`` (all partitions of a chosen document); a budget's fraction of an
            epoch is a fraction of documents, so variants with more partitions see no more documents.
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
        multi_label: whether the data is multi-label; by default as the data says (labels written as
            lists, or documents with several labels), never because a label is missing.
        drop_unlabelled: drop (and count) rows without a label instead of stopping at the first one.
        min_freq: Fmin, the minimum training-split frequency of a topic-model word.
        max_vocab_size: keep at most this many of the most frequent topic-model words.
        file_format: how the files are read (fields or columns of the text, label and id, label
            separator, header-less column names, label format; see ``FileFormat``); replaces a named
            dataset's own format when given.
        cache_dir: where tokenised and BoW views are cached; defaults to ``$TOPICBERT_CACHE``,
            then ``~/.cache/topicbert``.
        num_workers: DataLoader worker processes.
        predict_split: the split ``predict`` runs on, unless ``predict_file`` is given; ``transfer`` is
            the training split plus its augmented copies (the distillation transfer set).
        predict_file: a file of new documents (same formats; labels optional) to predict; ``-``
            reads plain text, one document per line, from standard input.
        predict_format: ``auto`` reads ``predict_file`` by its name like the training files;
            ``lines`` as plain text, one document per line (ids ``line-<n>``).
        augmentation: how the transfer set is augmented; ``null`` means the training split alone.
        teacher_logits: a teacher-logits file for the transfer set; training then runs on the transfer
            set with the teacher's soft targets in every batch (``teacher_logits``).
        tfidf: add a sparse tf-idf vector of each document to every batch (``tfidf``).
        tfidf_max_features: vocabulary cap of the tf-idf view (unigrams and bigrams, train split only).
        bow: build the topic model's bag of words and add it to every batch (``bow``); the CLI sets
            it from the model (on for TopicBERT and the NVDM, off for the BERT baseline and students).
        restore_from: a checkpoint whose saved labels, vocabulary, tf-idf vectorizer and tokenizer
            replace those built from the training data (see ``datamodules.assets``): ``test`` then
            reads only the test file and ``predict --data.predict_file`` no dataset at all. The CLI
            sets it from ``--ckpt_path`` for ``validate``, ``test`` and ``predict``.
    """

    if TYPE_CHECKING:

        @property
        def hparams(self) -> AttributeDict: ...  # Lightning types it as a MutableMapping; it is an AttributeDict

    def __init__(
        self,
        dataset: str = "r8",
        data_dir: str | None = None,
        download: bool = True,
        tokenizer: str | None = "sentence-transformers/all-MiniLM-L6-v2",
        max_length: int = 512,
        num_partitions: int = 1,
        batch_size: int = 16,
        train_fraction: float = 1.0,
        length_bucketing: bool = True,
        bucket_batches: int = 50,
        pad_to_max_length: bool = False,
        eval_batch_size: int = 64,
        dev_size: int | float = 0.1,
        seed: int = 42,
        multi_label: bool | None = None,
        drop_unlabelled: bool = False,
        min_freq: int = 10,
        max_vocab_size: int | None = None,
        file_format: FileFormat | None = None,
        cache_dir: str | None = None,
        num_workers: int = 0,
        predict_split: SplitName = "test",
        predict_file: str | None = None,
        predict_format: Literal["auto", "lines"] = "auto",
        augmentation: Augmentation | None = None,
        teacher_logits: str | None = None,
        tfidf: bool = False,
        tfidf_max_features: int = 100_000,
        bow: bool = True,
        restore_from: str | None = None,
    ):
        super().__init__()
        check_ranges("data", {k: v for k, v in locals().items() if k != "self"})
        if max_length // num_partitions < 8:
            raise DataError(
                f"max_length={max_length} / num_partitions={num_partitions} leaves partitions of fewer than 8 "
                "tokens; lower --data.num_partitions or raise --data.max_length."
            )
        if tokenizer is not None:
            check_partition_fits(tokenizer, max_length // num_partitions)
        # multi_label joins the hparams in setup, resolved: Lightning refuses to log a data module
        # whose initial hparams disagree with the model's, and the model's is the resolved value
        self.save_hyperparameters(ignore=["multi_label"])
        # read by the model links, the CLI, the callbacks and the reports
        self.tokenizer_name = tokenizer
        self.max_length = max_length
        self.num_partitions = num_partitions
        self.batch_size = batch_size
        self.train_fraction = train_fraction
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.predict_split = predict_split
        self.predict_file = predict_file
        self.teacher_logits = teacher_logits
        self.views = CorpusViews(
            dataset=dataset,
            data_dir=data_dir,
            download=download,
            file_format=file_format,
            dev_size=dev_size,
            seed=seed,
            multi_label=multi_label,
            drop_unlabelled=drop_unlabelled,
            tokenizer=tokenizer,
            bow=bow,
            min_freq=min_freq,
            max_vocab_size=max_vocab_size,
            tfidf=tfidf,
            tfidf_max_features=tfidf_max_features,
            augmentation=augmentation or Augmentation(copies=0),
            teacher_logits=teacher_logits,
            predict_split=predict_split,
            predict_file=predict_file,
            predict_lines=predict_format == "lines",
            cache_dir=writable_cache_dir(cache_dir),
            restored=InferenceAssets.load(restore_from) if restore_from else None,
        )
        self.datasets: dict[str, PartitionDataset | DocumentDataset] = {}

    # ----- what the model is sized by (read by LightningCLI links before setup) -----

    @property
    def corpus(self) -> Corpus:
        return self.views.corpus

    @property
    def dataset_name(self) -> str:
        """The dataset's name, known without reading it (run folders are named by it)."""
        return self.views.name

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def label_names(self) -> list[str]:
        return self.views.label_names

    @property
    def multi_label(self) -> bool:
        return self.views.multi_label

    @property
    def vocab_size(self) -> int:
        """Topic-model vocabulary size (linked to the model); 0 without the bag-of-words view."""
        return len(self.vocabulary) if self.hparams.bow else 0

    @property
    def vocabulary(self) -> Vocabulary:
        return self.views.vocabulary

    @property
    def tfidf_features(self) -> int:
        """Width of the tf-idf vectors (linked to the logistic-regression student); 0 without ``tfidf``."""
        return len(self.views.tfidf_vectorizer.vocabulary_) if self.hparams.tfidf else 0

    @property
    def train_split(self) -> str:
        """Students with a teacher train on the transfer set; everything else on the training split."""
        return "transfer" if self.teacher_logits else "train"

    def documents(self, split: str) -> Split:
        """The documents of a split (``predict`` included): ids, texts and label names, by doc_index."""
        return self.views.split(split).documents

    def fingerprint(self, split: str) -> str:
        """Identifies the documents of a split (see ``CorpusViews.fingerprint``)."""
        return self.views.fingerprint(split)

    def tokens_cut(self, split: str) -> np.ndarray | None:
        """Per document of a split, the tokens beyond what N and p let the model read (None without
        a token view: those models read the whole document)."""
        view = self.views.split(split)
        if view.tokens is None:
            return None
        return cut_documents(view.tokens.lengths(), self.max_length, self.num_partitions, self.views.special_tokens)

    def reading_report(self, split: str) -> dict[str, int]:
        """What reading and cutting did to a split: its documents, those dropped or repaired while
        reading (``CorpusViews.read_counts``) and those cut to N tokens, with the tokens left unread."""
        report = {"documents": len(self.views.split(split)), **self.views.read_counts(split)}
        cut = self.tokens_cut(split)
        if cut is not None:
            report |= {"cut_to_max_length": int((cut > 0).sum()), "tokens_cut": int(cut.sum())}
        return report

    def use_for_inference(self, assets: InferenceAssets, documents: Split) -> None:
        """Predict ``documents`` with a trained model's ``assets`` and nothing of its training data
        (the Python API, ``serving``); call it before any batch is built."""
        self.views.restored = assets
        self.views.predict_documents = documents

    # ----- Lightning hooks -----

    def prepare_data(self) -> None:
        """Build the caches once (on one process) so that every rank then only reads them."""
        self.views.prepare()

    def setup(self, stage: str | None = None) -> None:
        # what the data said, so checkpoints and logged hparams (merged with the model's) hold the answer
        self.hparams["multi_label"] = self.multi_label
        splits = {"fit": (self.train_split, "dev"), "validate": ("dev",), "test": ("test",), "predict": ("predict",)}
        for split in splits.get(stage, SPLIT_NAMES) if stage else SPLIT_NAMES:
            if split not in self.datasets:
                self.datasets[split] = self._build(split)

    def _build(self, split: str) -> PartitionDataset | DocumentDataset:
        view = self.views.split(split)
        if view.tokens is not None:
            report = self.reading_report(split)
            if report["cut_to_max_length"]:
                # documents handed over in memory (the Python API) carry tokens_cut in their records
                log.log(
                    logging.DEBUG if self.views.predict_documents is not None else logging.INFO,
                    "%s %s: %d of %d documents are longer than N=%d tokens allows; %d tokens beyond it are not read.",
                    self.dataset_name,
                    split,
                    report["cut_to_max_length"],
                    report["documents"],
                    self.max_length,
                    report["tokens_cut"],
                )
            special = self.views.special_tokens
            dataset: PartitionDataset | DocumentDataset = PartitionDataset(
                view.tokens, self.max_length, self.num_partitions, special
            )
            pad_id = special.pad_id
        else:
            dataset = DocumentDataset(document_costs(view))
            pad_id = 0
        pad_to = self.max_length // self.num_partitions if self.hparams.pad_to_max_length else None
        dataset.collator = Collator(view.labels, view.bow, pad_id, view.teacher_logits, view.tfidf, pad_to)
        return dataset

    def _loader(self, split: str, train: bool) -> DataLoader:
        if split not in self.datasets:
            self.datasets[split] = self._build(split)
        dataset = self.datasets[split]
        trainer = self.trainer
        seed = int(os.environ.get("PL_GLOBAL_SEED", self.seed))
        sample = document_sample(dataset.doc_index, dataset.num_documents, self.train_fraction, seed) if train else None
        sampler = LengthBucketBatchSampler(
            dataset.lengths,
            self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=seed,
            bucket_batches=self.hparams.bucket_batches if self.hparams.length_bucketing else 0,
            num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
            examples=sample,
        )
        workers = self.hparams.num_workers
        return (ResumableLoader if train else DataLoader)(
            dataset,
            batch_sampler=sampler,
            collate_fn=dataset.collator,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            # worker seeds come from this generator, not the global one, so that fetching data
            # draws no random numbers that training would miss after a resume
            generator=torch.Generator().manual_seed(sampler.seed),
        )

    def state_dict(self) -> dict:
        """Saved with every checkpoint: the label names, so a checkpoint is only read with the labels
        it was trained on, and everything inference needs besides the weights (``datamodules.assets``;
        the training position is the train loader's own state)."""
        if self.trainer is None:
            return {}
        return {"label_names": list(self.label_names), STATE_KEY: self.inference_assets().to_state()}

    def inference_assets(self) -> InferenceAssets:
        hp = self.hparams
        settings = {k: hp[k] for k in INPUT_SETTINGS}
        views = self.views
        return InferenceAssets(
            label_names=list(self.label_names),
            multi_label=bool(self.multi_label),
            settings=settings,
            vocabulary=list(views.vocabulary.words) if hp.bow else None,
            stopwords=views.stopwords if hp.bow else None,
            tfidf=tfidf_state(views.tfidf_vectorizer) if hp.tfidf else None,
            encoder_files=views.encoder_files if self.tokenizer_name else None,
            dataset=self.dataset_name,
        )

    def load_state_dict(self, state_dict: dict) -> None:
        saved = state_dict.get("label_names")
        if saved is not None and list(saved) != list(self.label_names):
            raise DataError(
                f"The checkpoint was trained on the labels {saved}, but {self.hparams.dataset!r} has "
                f"{list(self.label_names)}. Use the dataset the checkpoint was trained on, or fit a new model "
                "for this one."
            )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_split, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("dev", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", train=False)


def check_partition_fits(tokenizer: str, partition_length: int) -> None:
    """A partition longer than the encoder's positions would crash inside its embedding mid-training."""
    from transformers import AutoConfig

    try:
        config = load_pretrained(AutoConfig, tokenizer)
    except EncoderNotFoundError:
        if Path(resolve_pretrained(tokenizer)).exists():
            return  # a tokenizer without an encoder config (the students read only its tokens)
        raise  # nothing to load by that name: say so now, before any data is read
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and partition_length > positions:
        raise DataError(
            f"Partitions of {partition_length} tokens (max_length / num_partitions) exceed the "
            f"{positions} positions of {tokenizer}; raise --data.num_partitions or lower --data.max_length."
        )


def document_sample(
    doc_index: Sequence[int] | np.ndarray, documents: int, fraction: float, seed: int
) -> np.ndarray | None:
    """Positions of the examples of a seeded sample of ``fraction`` of the documents (None: all)."""
    if fraction >= 1.0:
        return None
    chosen = np.random.default_rng((seed, 0x5A3)).permutation(documents)[: max(1, round(fraction * documents))]
    return np.flatnonzero(np.isin(np.asarray(doc_index), chosen))


def document_costs(view: SplitView) -> np.ndarray:
    """What a document without tokens costs the model, for length bucketing: its tf-idf non-zeros
    for the tf-idf students, else its topic-model word count."""
    if view.tfidf is not None:
        return np.diff(view.tfidf.indptr)
    if view.bow is not None:
        return np.asarray(view.bow.sum(axis=1)).ravel()
    return np.ones(len(view), dtype=np.int64)
