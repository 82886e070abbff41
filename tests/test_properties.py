"""Property-based checks (hypothesis) of partitioning, bag-of-words building and per-document aggregation."""

from collections import Counter

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from datamodules.bow import Vocabulary
from datamodules.tokens import SpecialTokens, partition
from lightning_modules.metrics import aggregate_by_document

SPECIAL = SpecialTokens(prefix=(101,), suffix=(102,), pad_id=0)
# distinct ids, so that where each partition came from in the document is unambiguous
documents = st.integers(0, 300).map(lambda n: np.arange(1000, 1000 + n, dtype=np.int32))


@settings(max_examples=300, deadline=None)
@given(tokens=documents, x=st.integers(3, 64), p=st.integers(1, 8))
def test_partitions_cover_every_kept_token_and_never_exceed_x(tokens, x, p):
    parts = partition(tokens, x * p, p, SPECIAL)
    content = x - 2
    kept = tokens[: p * content]  # the document cut to the tokens that p partitions hold
    assert len(parts) == max(1, -(-len(kept) // content)) <= p  # as few as cover the kept tokens
    assert all(len(part) <= x for part in parts)
    assert all(part[0] == 101 and part[-1] == 102 for part in parts)
    bodies = [part[1:-1] for part in parts]
    # each body is a contiguous slice of the kept document; together they cover all of it
    covered = np.zeros(len(kept), dtype=bool)
    for body in bodies:
        starts = [s for s in range(len(kept) - len(body) + 1) if np.array_equal(kept[s : s + len(body)], body)]
        assert starts, "a partition is not a slice of the document"
        covered[starts[0] : starts[0] + len(body)] = True
    assert covered.all()
    if len(kept) >= content:  # only a document shorter than one partition gives a short one
        assert all(len(body) == content for body in bodies)


WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]
words = st.lists(st.lists(st.sampled_from(WORDS), max_size=30), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(train=words, other=words, min_freq=st.integers(1, 6))
def test_bow_counts_every_in_vocabulary_word_once(train, other, min_freq):
    vocab = Vocabulary.build(train, min_freq=min_freq)
    totals = Counter(w for doc in train for w in doc)
    assert set(vocab.words) == {w for w, c in totals.items() if c >= min_freq}
    counts = vocab.counts(other)
    assert counts.shape == (len(other), len(vocab))
    for row, doc in enumerate(other):
        expected = Counter(w for w in doc if w in vocab.index)
        got = {vocab.words[c]: v for c, v in zip(counts[row].indices, counts[row].data, strict=True)}
        assert got == expected
        assert counts[row].sum() == sum(expected.values())


@settings(max_examples=200, deadline=None)
@given(data=st.data(), docs=st.integers(1, 12), labels=st.integers(1, 5))
def test_aggregation_is_invariant_to_partition_order_and_batching(data, docs, labels):
    parts_per_doc = data.draw(st.lists(st.integers(1, 4), min_size=docs, max_size=docs))
    doc_index = torch.tensor([d for d, n in enumerate(parts_per_doc) for _ in range(n)])
    values = torch.rand(len(doc_index), labels, generator=torch.Generator().manual_seed(data.draw(st.integers(0, 99))))
    order = torch.tensor(data.draw(st.permutations(range(len(doc_index)))))
    ids, means = aggregate_by_document(doc_index, values)
    shuffled_ids, shuffled_means = aggregate_by_document(doc_index[order], values[order])
    assert torch.equal(ids, torch.arange(docs)) and torch.equal(shuffled_ids, ids)
    torch.testing.assert_close(shuffled_means, means, rtol=0, atol=1e-6)
    for d in range(docs):
        torch.testing.assert_close(means[d], values[doc_index == d].mean(0), rtol=0, atol=1e-6)
