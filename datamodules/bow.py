"""Bag-of-words view for the topic model: a train-only vocabulary and sparse count vectors.

Words are found with NLTK's regular-expression tokenizer (it needs no downloaded model),
lowercased, kept when alphabetic and at least two letters long, and filtered with NLTK's English
stopword list. The vocabulary is counted on the training split only, so no dev or test word can
leak into the model; words rarer than ``min_freq`` (the paper's Fmin) are dropped.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from nltk.tokenize import RegexpTokenizer

log = logging.getLogger(__name__)

_WORDS = RegexpTokenizer(r"[^\W\d_]+")


def english_stopwords() -> tuple[frozenset[str], str]:
    """NLTK's English stopwords, downloading them once if needed; offline, scikit-learn's list.

    Returns the set and the name of its source, which becomes part of the cache key.
    """
    import nltk
    from nltk.corpus import stopwords

    with contextlib.suppress(LookupError):
        return frozenset(stopwords.words("english")), "nltk"
    with contextlib.suppress(OSError, ValueError, LookupError):
        if nltk.download("stopwords", quiet=True, raise_on_error=True):
            return frozenset(stopwords.words("english")), "nltk"
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    warnings.warn(
        "NLTK English stopwords are not installed and could not be downloaded; using scikit-learn's "
        "English stopword list instead. Set NLTK_DATA to a folder holding corpora/stopwords to use NLTK's.",
        stacklevel=2,
    )
    return frozenset(ENGLISH_STOP_WORDS), "sklearn"


def words_of(text: str, stopwords: frozenset[str]) -> list[str]:
    """The topic-model words of one document, in order."""
    return [w for w in (t.lower() for t in _WORDS.tokenize(text)) if len(w) > 1 and w not in stopwords]


@dataclass
class Vocabulary:
    """Topic-model vocabulary: ``words[i]`` is column i of every BoW matrix."""

    words: list[str]

    def __post_init__(self):
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, tokenized: Iterable[list[str]], min_freq: int = 10, max_size: int | None = None) -> Vocabulary:
        """Keep words seen at least ``min_freq`` times; most frequent first, ties alphabetical."""
        counts = Counter(w for doc in tokenized for w in doc)
        kept = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            kept = kept[:max_size]
        return cls(kept)

    def counts(self, tokenized: Iterable[list[str]]) -> sp.csr_matrix:
        """Sparse document x word count matrix (float32); out-of-vocabulary words are ignored."""
        indptr: list[int] = [0]
        indices: list[int] = []
        values: list[int] = []
        for doc in tokenized:
            row = Counter(self.index[w] for w in doc if w in self.index)
            cols = sorted(row)
            indices.extend(cols)
            values.extend(row[c] for c in cols)
            indptr.append(len(indices))
        return sp.csr_matrix(
            (np.asarray(values, dtype=np.float32), np.asarray(indices, dtype=np.int32), np.asarray(indptr)),
            shape=(len(indptr) - 1, len(self.words)),
        )
