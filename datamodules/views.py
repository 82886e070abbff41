"""The views of one corpus that models read: documents, bag of words, tokens, tf-idf, teacher logits.

``CorpusViews.split(name)`` is the one accessor: it returns a :class:`SplitView` with everything a
split's batches are built from. Each view is built when first asked for, once, and (bag of words,
tokens, the augmented transfer set) cached on disk keyed by what it depends on.

Split names: ``train``, ``dev``, ``test``; ``transfer`` (the training split and its augmented
copies, the distillation transfer set); ``predict`` (``predict_file`` when given, else the split
named by ``predict_split``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from datamodules.assets import InferenceAssets, encoder_files, tfidf_from_state
from datamodules.augment import Augmentation, build_transfer_set
from datamodules.bow import Vocabulary, english_stopwords, words_of
from datamodules.cache import arrays_to_texts, cache_path, load_arrays, save_arrays, texts_to_arrays
from datamodules.corpus import SPLIT_NAMES, STDIN, Corpus, Split, load_corpus, load_split, read_documents
from datamodules.formats import DataError, FileFormat
from datamodules.registry import DATASETS
from datamodules.teacher import TeacherLogits
from datamodules.tokens import SpecialTokens, TokenizedSplit, load_tokenizer, tokenize_texts, tokenizer_fingerprint
from utils.files import file_sha256

log = logging.getLogger(__name__)
CACHE_VERSION = "1"


class SplitView:
    """One split as the models see it; each view is built on first use. Views a run does not use are
    None.

    ``labels`` are multi-hot float32 targets (documents x labels; labels outside the training label
    set are ignored); ``bow`` holds topic-model word counts, ``tokens`` the token ids (no special
    tokens, not truncated), ``tfidf`` the tf-idf vectors and ``teacher_logits`` a teacher's soft
    targets (the transfer split of a distillation run), all one row per document."""

    def __init__(self, views: CorpusViews, name: str):
        self.views = views
        self.name = name

    def __len__(self) -> int:
        return len(self.documents)

    @functools.cached_property
    def documents(self) -> Split:
        return self.views._documents(self.name)

    @functools.cached_property
    def labels(self) -> np.ndarray:
        return self.views._label_matrix(self.documents)

    @functools.cached_property
    def bow(self) -> sp.csr_matrix | None:
        return self.views._bow(self.name, self.documents) if self.views.use_bow else None

    @functools.cached_property
    def tokens(self) -> TokenizedSplit | None:
        return self.views._tokens(self.name, self.documents) if self.views.tokenizer_name is not None else None

    @functools.cached_property
    def tfidf(self) -> sp.csr_matrix | None:
        return self.views.tfidf_vectorizer.transform(self.documents.texts) if self.views.use_tfidf else None

    @functools.cached_property
    def teacher_logits(self) -> np.ndarray | None:
        path = self.views.teacher_logits
        if self.name != "transfer" or not path:
            return None
        return TeacherLogits.load(path).aligned(
            self.documents.ids, self.views.label_names, self.views.fingerprint("transfer"), path
        )


class CorpusViews:
    """A corpus and its views, configured once and built lazily (see the module docstring).

    Args:
        dataset, data_dir, download, file_format, dev_size, seed: where the corpus comes from and how
            dev is carved (see :func:`datamodules.corpus.load_corpus`).
        tokenizer: Hugging Face tokenizer name or folder; None gives no token view.
        bow: build the topic model's bag of words (train-only vocabulary of words seen ``min_freq``
            times, at most ``max_vocab_size``).
        tfidf: build tf-idf vectors (unigrams and bigrams fit on train, at most ``tfidf_max_features``).
        augmentation: how the transfer set's copies are made.
        teacher_logits: a teacher-logits file; the transfer split then carries its soft targets.
        predict_split, predict_file: the documents behind ``predict``.
        predict_lines: read ``predict_file`` as plain text, one document per line.
        cache_dir: the disk cache root.
        restored: a trained model's assets (``datamodules.assets``): its labels, vocabulary and
            tf-idf vectorizer are used instead of being rebuilt from train, and ``test`` reads only
            the test file.
    """

    def __init__(
        self,
        *,
        dataset: str,
        data_dir: str | None,
        download: bool,
        file_format: FileFormat | None,
        dev_size: int | float,
        seed: int,
        multi_label: bool | None,
        drop_unlabelled: bool,
        tokenizer: str | None,
        bow: bool,
        min_freq: int,
        max_vocab_size: int | None,
        tfidf: bool,
        tfidf_max_features: int,
        augmentation: Augmentation,
        teacher_logits: str | None,
        predict_split: str,
        predict_file: str | None,
        predict_lines: bool,
        cache_dir: Path,
        restored: InferenceAssets | None = None,
    ):
        self.dataset = dataset
        self.data_dir = data_dir
        self.download = download
        self.file_format = file_format
        self.dev_size = dev_size
        self.seed = seed
        self.multi_label_setting = multi_label
        self.drop_unlabelled = drop_unlabelled
        self.tokenizer_name = tokenizer
        self.use_bow = bow
        self.min_freq = min_freq
        self.max_vocab_size = max_vocab_size
        self.use_tfidf = tfidf
        self.tfidf_max_features = tfidf_max_features
        self.augmentation = augmentation
        self.teacher_logits = teacher_logits
        self.predict_split = predict_split
        self.predict_file = predict_file
        self.predict_lines = predict_lines
        self.cache_dir = cache_dir
        self.restored = restored
        self.predict_documents: Split | None = None  # documents handed over in memory (the Python API)
        self._splits: dict[str, SplitView] = {}

    # ----- the one accessor -----

    def split(self, name: str) -> SplitView:
        """Everything about one split (``predict`` without a file is the split it names)."""
        if name == "predict" and not self.predicts_given_documents:
            name = self.predict_split
        if name not in self._splits:
            if name not in (*SPLIT_NAMES, "transfer", "predict"):
                raise ValueError(f"Unknown split {name!r}: use train, dev, test, transfer or predict.")
            self._splits[name] = SplitView(self, name)
        return self._splits[name]

    @property
    def predicts_given_documents(self) -> bool:
        """``predict`` runs on a file or on documents handed over, not on a split of the corpus."""
        return bool(self.predict_file) or self.predict_documents is not None

    # ----- what the model is sized by (read by LightningCLI links before setup) -----

    @property
    def name(self) -> str:
        """The corpus's name without reading it: the named dataset, or the user folder's name."""
        return self.dataset if self.dataset in DATASETS else Path(self.dataset).expanduser().name

    @functools.cached_property
    def corpus(self) -> Corpus:
        corpus = load_corpus(
            self.dataset,
            self.data_dir,
            self.file_format,
            self.dev_size,
            self.seed,
            self.download,
            self.multi_label_setting,
            self.drop_unlabelled,
        )
        sizes = " / ".join(f"{len(corpus[s])} {s}" for s in SPLIT_NAMES)
        log.info("%s: %s documents, %d labels.", corpus.name, sizes, len(corpus.label_names))
        return corpus

    @property
    def label_names(self) -> list[str]:
        return self.restored.label_names if self.restored else self.corpus.label_names

    @property
    def multi_label(self) -> bool:
        return self.restored.multi_label if self.restored else self.corpus.multi_label

    @functools.cached_property
    def vocabulary(self) -> Vocabulary:
        if self.restored and self.restored.vocabulary is not None:
            return Vocabulary(self.restored.vocabulary)
        return self._bow_cache[0]

    @functools.cached_property
    def encoder_files(self) -> dict[str, str]:
        """The tokenizer's and encoder configuration's files, saved with every checkpoint."""
        assert self.tokenizer_name is not None
        return encoder_files(self.tokenizer_name)

    @functools.cached_property
    def tokenizer(self):
        return load_tokenizer(self.tokenizer_name)

    @functools.cached_property
    def special_tokens(self) -> SpecialTokens:
        return SpecialTokens.of(self.tokenizer)

    @functools.cached_property
    def tfidf_vectorizer(self):
        from sklearn.feature_extraction.text import TfidfVectorizer

        if self.restored and self.restored.tfidf is not None:
            return tfidf_from_state(self.restored.tfidf)
        vectorizer = TfidfVectorizer(
            sublinear_tf=True, ngram_range=(1, 2), min_df=2, max_features=self.tfidf_max_features, dtype=np.float32
        )
        return vectorizer.fit(self.corpus["train"].texts)

    def fingerprint(self, name: str) -> str:
        """Identifies the documents of a split (recorded in, and checked against, teacher-logits files):
        the corpus, the split and, for the transfer set, the augmentation; a predict file's content."""
        if name == "predict" and self.predict_file and self.predict_file != STDIN:
            return file_sha256(self.predict_file)
        if name == "predict" and not self.predicts_given_documents:
            name = self.predict_split
        if name == "predict" or (self.restored and name == "test"):  # read without the corpus: identified by content
            documents = self.split(name).documents
            return hashlib.sha256(repr((documents.ids, documents.texts)).encode()).hexdigest()[:16]
        extra = repr(self.augmentation) if name == "transfer" else ""
        return hashlib.sha256(f"{self.corpus.fingerprint}|{name}|{extra}".encode()).hexdigest()[:16]

    def read_counts(self, name: str) -> dict[str, int]:
        """What reading the split's file dropped or repaired (``ReadStats.counts``); a dev split carved
        from train has none of its own (the train file's counts cover it), the transfer set has train's."""
        if name == "predict" and self.predicts_given_documents:
            return self.split("predict").documents.read_counts
        if name == "predict":
            name = self.predict_split
        if self.restored and name == "test":
            return self.split("test").documents.read_counts
        return self.corpus.read_counts.get("train" if name == "transfer" else name, {})

    def prepare(self) -> None:
        """Build the disk caches of the corpus splits (on one process; the others then only read);
        a restored model reads no training corpus to cache."""
        if self.restored:
            return
        if self.use_bow:
            self._bow_cache  # noqa: B018
        if self.tokenizer_name is not None:
            self._token_cache  # noqa: B018

    # ----- documents -----

    def _documents(self, name: str) -> Split:
        if self.restored and name == "test":
            return load_split(
                self.dataset,
                "test",
                self.restored.label_names,
                self.restored.multi_label,
                self.data_dir,
                self.file_format,
                self.download,
                self.drop_unlabelled,
            )
        if name in SPLIT_NAMES:
            return self.corpus[name]
        if name == "transfer":
            return self._transfer
        if self.predict_documents is not None:
            return self.predict_documents
        spec = DATASETS.get(self.dataset)  # predict: the file, read like the training files
        assert self.predict_file is not None  # without a file, split() gives the predict split's own view
        fmt = self.file_format or (spec.file_format if spec else FileFormat())
        return read_documents(self.predict_file, fmt, lines=self.predict_lines)

    @functools.cached_property
    def _transfer(self) -> Split:
        """The training split followed by its augmented copies, cached on disk."""
        train = self.corpus["train"]
        if self.augmentation.copies == 0:
            return train
        path = cache_path(self.cache_dir, "transfer", self.corpus.name, CACHE_VERSION, self.fingerprint("transfer"))
        cached = load_arrays(path)
        if cached is None:
            transfer = build_transfer_set(train, self.augmentation)
            save_arrays(path, texts_to_arrays(transfer.texts[len(train) :]))
            return transfer
        copies = arrays_to_texts(cached)
        ids = [f"{doc_id}#aug{k}" for k in range(1, self.augmentation.copies + 1) for doc_id in train.ids]
        labels = [labels for _ in range(self.augmentation.copies) for labels in train.labels]
        return Split(train.ids + ids, train.texts + copies, train.labels + labels)

    def _label_matrix(self, documents: Split) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.label_names)}
        matrix = np.zeros((len(documents), len(index)), dtype=np.float32)
        for row, labels in enumerate(documents.labels):
            for label in labels:
                if label in index:
                    matrix[row, index[label]] = 1.0
        return matrix

    # ----- bag of words -----

    @functools.cached_property
    def _stopwords(self) -> tuple[frozenset[str], str]:
        if self.restored and self.restored.stopwords is not None:  # the list the vocabulary was built with
            return frozenset(self.restored.stopwords), "checkpoint"
        return english_stopwords()

    @property
    def stopwords(self) -> list[str]:
        return sorted(self._stopwords[0])

    @functools.cached_property
    def _bow_cache(self) -> tuple[Vocabulary, dict[str, sp.csr_matrix]]:
        """The vocabulary and the count matrices of the corpus splits, from the disk cache or built."""
        stopwords, source = self._stopwords
        corpus = self.corpus
        key = (corpus.fingerprint, str(self.min_freq), str(self.max_vocab_size), source)
        path = cache_path(self.cache_dir, "bow", corpus.name, CACHE_VERSION, *key)
        cached = load_arrays(path)
        if cached is not None:
            vocab = Vocabulary(cached["words"].tolist())
            return vocab, {s: _csr(cached, s, (len(corpus[s]), len(vocab))) for s in SPLIT_NAMES}
        tokenized = {s: [words_of(t, stopwords) for t in corpus[s].texts] for s in SPLIT_NAMES}
        vocab = Vocabulary.build(tokenized["train"], self.min_freq, self.max_vocab_size)
        if len(vocab) == 0:
            raise DataError(
                f"The topic-model vocabulary of {corpus.name!r} is empty: no training word occurs "
                f"{self.min_freq} times. Lower --data.min_freq."
            )
        matrices = {s: vocab.counts(tokenized[s]) for s in SPLIT_NAMES}
        arrays = {"words": np.asarray(vocab.words)}
        for s, m in matrices.items():
            arrays |= {f"{s}_data": m.data, f"{s}_indices": m.indices, f"{s}_indptr": m.indptr}
        save_arrays(path, arrays)
        log.info("Topic-model vocabulary: %d words (Fmin=%d), cached in %s.", len(vocab), self.min_freq, path)
        return vocab, matrices

    def _bow(self, name: str, documents: Split) -> sp.csr_matrix:
        if not self.restored:  # the corpus's splits were counted with the vocabulary (a restored one reads no train)
            if name in SPLIT_NAMES:
                return self._bow_cache[1][name]
            if name == "transfer" and self.augmentation.copies == 0:
                return self._bow_cache[1]["train"]
        stopwords, _ = self._stopwords
        return self.vocabulary.counts(words_of(t, stopwords) for t in documents.texts)

    # ----- tokens -----

    def _cached_tokens(self, key: str, splits: dict[str, list[str]]) -> dict[str, TokenizedSplit]:
        fingerprint = tokenizer_fingerprint(self.tokenizer)
        path = cache_path(self.cache_dir, "tokens", self.corpus.name, CACHE_VERSION, key, fingerprint)
        cached = load_arrays(path)
        if cached is not None:
            return {s: TokenizedSplit(cached[f"{s}_ids"], cached[f"{s}_offsets"]) for s in splits}
        view = {s: tokenize_texts(self.tokenizer, texts, desc=f"tokenising {s}") for s, texts in splits.items()}
        save_arrays(path, {f"{s}_{k}": getattr(v, k) for s, v in view.items() for k in ("ids", "offsets")})
        log.info("Tokenised %s with %s, cached in %s.", self.corpus.name, self.tokenizer_name, path)
        return view

    @functools.cached_property
    def _token_cache(self) -> dict[str, TokenizedSplit]:
        return self._cached_tokens(self.corpus.fingerprint, {s: self.corpus[s].texts for s in SPLIT_NAMES})

    def _tokens(self, name: str, documents: Split) -> TokenizedSplit:
        if self.restored:  # documents handed over in memory come in chunks: their caller shows progress
            return tokenize_texts(self.tokenizer, documents.texts, progress=self.predict_documents is None)
        if name in SPLIT_NAMES or (name == "transfer" and self.augmentation.copies == 0):
            return self._token_cache["train" if name == "transfer" else name]
        if name == "transfer":
            return self._cached_tokens(self.fingerprint("transfer"), {"transfer": documents.texts})["transfer"]
        return tokenize_texts(self.tokenizer, documents.texts)


def _csr(arrays: dict[str, np.ndarray], split: str, shape: tuple[int, int]) -> sp.csr_matrix:
    return sp.csr_matrix((arrays[f"{split}_data"], arrays[f"{split}_indices"], arrays[f"{split}_indptr"]), shape=shape)
