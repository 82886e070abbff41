import nltk
import numpy as np
import pytest
from nltk.corpus.reader import WordListCorpusReader
from nltk.corpus.util import LazyCorpusLoader

from datamodules.bow import Vocabulary, english_stopwords, words_of


def test_words_are_lowercased_alphabetic_and_stopword_free():
    assert words_of("The Bank's 3 profits, rose 10% in Q3 -- a record!", frozenset({"the", "in"})) == [
        "bank",
        "profits",
        "rose",
        "record",
    ]


def test_vocabulary_counts_train_only_with_min_freq_and_max_size():
    train = [["stock", "bank", "stock"], ["bank", "stock", "rare"], ["gold"]]
    vocab = Vocabulary.build(train, min_freq=2)
    assert vocab.words == ["stock", "bank"]  # most frequent first
    assert Vocabulary.build(train, min_freq=1, max_size=3).words == ["stock", "bank", "gold"]  # ties alphabetical
    test_only = [["zebra", "stock", "stock", "bank"]]
    counts = vocab.counts(test_only)
    assert counts.shape == (1, 2)
    np.testing.assert_array_equal(counts.toarray(), [[2.0, 1.0]])
    assert "zebra" not in vocab.index


def test_counts_matrix_hand_checked():
    vocab = Vocabulary(["a", "b", "c"])
    m = vocab.counts([["c", "a", "c"], [], ["b"]])
    np.testing.assert_array_equal(m.toarray(), [[1, 0, 2], [0, 0, 0], [0, 1, 0]])
    assert m.dtype == np.float32


def test_nltk_stopwords_are_used_when_installed():
    words, source = english_stopwords()
    assert source == "nltk"
    assert {"the", "and", "ourselves"} <= words


def test_stopwords_fall_back_to_sklearn_with_a_warning_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    fresh = LazyCorpusLoader("stopwords", WordListCorpusReader, r"(?!README|\.).*", encoding="utf8")
    monkeypatch.setattr(nltk.corpus, "stopwords", fresh)  # the real loader may already be loaded

    def offline_download(*args, **kwargs):  # what nltk.download raises without network
        raise ValueError("Error loading stopwords: <urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(nltk, "download", offline_download)
    with pytest.warns(UserWarning, match="scikit-learn's English stopword list"):
        words, source = english_stopwords()
    assert source == "sklearn" and "the" in words
