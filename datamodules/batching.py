"""Examples, batches and batch order.

A training example is one partition (token view) or one document (BoW-only view); it always
carries its document's index, so the document's BoW vector and labels are looked up at collate
time and predictions can be aggregated per document later.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from datamodules.tokens import SpecialTokens, TokenizedSplit, partition


class PartitionDataset(Dataset):
    """Every partition of every document of one split."""

    collator: Collator  # set by the data module

    def __init__(self, tokenized: TokenizedSplit, max_length: int, num_partitions: int, special: SpecialTokens):
        self.parts: list[np.ndarray] = []
        self.doc_index: list[int] = []
        for doc in range(len(tokenized)):
            for part in partition(tokenized.document(doc), max_length, num_partitions, special):
                self.parts.append(part)
                self.doc_index.append(doc)
        self.lengths = np.fromiter((len(p) for p in self.parts), dtype=np.int64, count=len(self.parts))
        self.num_documents = len(tokenized)

    def __len__(self) -> int:
        return len(self.parts)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.parts[i], "doc_index": self.doc_index[i], "example_index": i}


class DocumentDataset(Dataset):
    """One example per document (views without tokens: the topic model's bag of words, tf-idf).

    ``lengths`` orders the length-bucketed batches: the work each document costs the model."""

    collator: Collator  # set by the data module

    def __init__(self, lengths: np.ndarray):
        self.lengths = np.asarray(lengths)
        self.num_documents = len(self.lengths)
        self.doc_index = np.arange(self.num_documents)

    def __len__(self) -> int:
        return self.num_documents

    def __getitem__(self, i: int) -> dict:
        return {"doc_index": i, "example_index": i}


@dataclass
class Collator:
    """Builds the batch dict: ``input_ids``, ``attention_mask`` (token view only), ``bow`` (when the
    model reads it), ``labels`` (multi-hot float, documents x labels), ``doc_index``, ``example_index`` (the
    partition's position in its dataset, which identifies repeats under DDP) and, when given,
    ``teacher_logits`` (documents x labels) and ``tfidf`` (a sparse COO tensor).

    Token sequences are padded only to the longest in the batch, or to ``pad_to`` tokens when it is
    set (the paper-era recipe of padding every sequence to N, kept to measure what it costs).
    """

    labels: np.ndarray
    bow: sp.csr_matrix | None = None
    pad_id: int = 0
    teacher: np.ndarray | None = None
    tfidf: sp.csr_matrix | None = None
    pad_to: int | None = None

    def __call__(self, items: Sequence[dict]) -> dict[str, torch.Tensor]:
        docs = np.asarray([item["doc_index"] for item in items], dtype=np.int64)
        batch = {
            "labels": torch.from_numpy(self.labels[docs]),
            "doc_index": torch.from_numpy(docs),
            "example_index": torch.tensor([item["example_index"] for item in items], dtype=torch.long),
        }
        if self.bow is not None:
            batch["bow"] = torch.from_numpy(self.bow[docs].toarray())
        if self.teacher is not None:
            batch["teacher_logits"] = torch.from_numpy(self.teacher[docs])
        if self.tfidf is not None:
            rows = self.tfidf[docs].tocoo()
            indices = torch.from_numpy(np.vstack([rows.row, rows.col]).astype(np.int64))
            values = torch.from_numpy(rows.data)
            batch["tfidf"] = torch.sparse_coo_tensor(indices, values, rows.shape, check_invariants=False).coalesce()
        if "input_ids" in items[0]:
            width = max(len(item["input_ids"]) for item in items)
            width = max(width, self.pad_to or 0)
            ids = np.full((len(items), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(items), width), dtype=np.int64)
            for row, item in enumerate(items):
                ids[row, : len(item["input_ids"])] = item["input_ids"]
                mask[row, : len(item["input_ids"])] = 1
            batch["input_ids"] = torch.from_numpy(ids)
            batch["attention_mask"] = torch.from_numpy(mask)
        return batch


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, so dynamic padding wastes little.

    Training order: shuffle all examples, sort within windows of ``bucket_batches`` batches by
    length, cut into batches, shuffle the batches. Deterministic for a given seed and epoch.
    Without shuffling, batches run from the longest examples to the shortest. ``bucket_batches=0``
    turns bucketing off: random batches for training, the split's own order otherwise.

    Under DDP every process builds the same global batch list and takes every ``num_replicas``-th
    batch from ``rank``. The list is padded by repeating its first batches so that all processes run
    the same number of steps (DDP synchronises every forward pass); evaluation drops the repeated
    examples again by their ``example_index``.

    ``examples`` restricts the batches to those dataset positions (a training budget's share of the
    documents); all examples by default.
    """

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        bucket_batches: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
        examples: np.ndarray | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}.")
        self.examples = np.arange(len(lengths)) if examples is None else np.asarray(examples)
        self.lengths = np.asarray(lengths)[self.examples]
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.bucket_batches = bucket_batches
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.resume_at: tuple[int, int] | None = None

    @property
    def sampler(self) -> LengthBucketBatchSampler:
        """Lightning sets the epoch on ``batch_sampler.sampler``; this batch sampler draws its own order."""
        return self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume(self, epoch: int, batches_done: int) -> None:
        """Skip the first ``batches_done`` batches of this process the next time ``epoch`` is iterated,
        so a run resumed mid-epoch sees exactly the batches the interrupted one had left."""
        self.resume_at = (epoch, batches_done)

    def __len__(self) -> int:
        total = -(-len(self.lengths) // self.batch_size)
        return -(-total // self.num_replicas)

    def global_batches(self) -> list[np.ndarray]:
        """The batch list all processes share, before it is split between them (dataset positions)."""
        return [self.examples[batch] for batch in self._batches()]

    def _batches(self) -> list[np.ndarray]:
        """The batches as positions in ``examples``."""
        if not self.shuffle:
            order = np.argsort(-self.lengths, kind="stable") if self.bucket_batches else np.arange(len(self.lengths))
            return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.lengths))
        if not self.bucket_batches:
            return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        window = self.batch_size * self.bucket_batches
        batches: list[np.ndarray] = []
        for start in range(0, len(order), window):
            chunk = order[start : start + window]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def batches_to_skip(self) -> int:
        """Batches the next pass skips: those done before a resume in this epoch, else none."""
        return self.resume_at[1] if self.resume_at is not None and self.resume_at[0] == self.epoch else 0

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.global_batches()
        padded = len(self) * self.num_replicas
        batches = [batches[i % len(batches)] for i in range(padded)]
        mine = batches[self.rank :: self.num_replicas]
        if self.resume_at is not None:
            epoch, done = self.resume_at
            self.resume_at = None
            if epoch == self.epoch:
                mine = mine[done:]
        for batch in mine:
            yield batch.tolist()


class ResumableLoader(DataLoader):
    """The training loader: it knows its position in the epoch, and Lightning saves that
    (``state_dict``) in every checkpoint and gives it back (``load_state_dict``) on resume, so a run
    resumed mid-epoch sees exactly the batches the stopped one had left, in the same order.

    Needs a :class:`LengthBucketBatchSampler`. The position counts batches handed to the training
    loop (not those DataLoader workers fetched ahead), including those skipped on a resume.
    """

    batch_sampler: LengthBucketBatchSampler

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.epoch = 0
        self.batches_done = 0

    def __iter__(self) -> Iterator:  # type: ignore[override]  # a generator over the base iterator, not one of its own
        sampler = self.batch_sampler
        self.epoch, self.batches_done = sampler.epoch, sampler.batches_to_skip()  # before workers draw indices
        for batch in super().__iter__():
            self.batches_done += 1
            yield batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state_dict: dict) -> None:
        self.batch_sampler.set_epoch(state_dict["epoch"])
        self.batch_sampler.resume(state_dict["epoch"], state_dict["batches_done"])
