"""Token view: tokenise each document once, then cut it into TopicBERT-x partitions.

Documents are tokenised without special tokens and stored as one flat int32 array plus offsets,
so the cache is small, loads in milliseconds and does not depend on N or p.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from utils.pretrained import EncoderNotFoundError, load_pretrained


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    tokenizer = load_pretrained(AutoTokenizer, name)
    if not tokenizer.is_fast:
        raise EncoderNotFoundError(f"{name!r} has no fast tokenizer; TopicBERT needs a Hugging Face fast tokenizer.")
    return tokenizer


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of the tokenizer's full definition, so a changed vocabulary never reuses a stale cache."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SpecialTokens:
    """Ids the tokenizer puts before and after one sequence, e.g. [CLS] ... [SEP]."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    pad_id: int

    @classmethod
    def of(cls, tokenizer) -> SpecialTokens:
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        full = tokenizer("a", add_special_tokens=True)["input_ids"]
        start = next(i for i in range(len(full)) if full[i : i + len(plain)] == plain)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        return cls(tuple(full[:start]), tuple(full[start + len(plain) :]), pad)

    def __len__(self) -> int:
        return len(self.prefix) + len(self.suffix)


@dataclass
class TokenizedSplit:
    """All documents of one split as a flat id array; document i is ``ids[offsets[i]:offsets[i+1]]``."""

    ids: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def document(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def tokenize_texts(
    tokenizer, texts: list[str], desc: str = "tokenising", chunk: int = 1000, progress: bool = True
) -> TokenizedSplit:
    """Tokenise without special tokens or truncation, in chunks so progress is visible (unless
    ``progress`` is off: a caller streaming documents shows its own)."""
    pieces, lengths = [], []
    quiet = not progress or len(texts) <= chunk
    for start in tqdm(range(0, len(texts), chunk), desc=desc, unit="chunk", leave=False, disable=quiet):
        encoded = tokenizer(
            texts[start : start + chunk], add_special_tokens=False, return_attention_mask=False, verbose=False
        )["input_ids"]
        for ids in encoded:
            pieces.append(np.asarray(ids, dtype=np.int32))
            lengths.append(len(ids))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
    return TokenizedSplit(flat, offsets)


def partition_content(max_length: int, num_partitions: int, special: SpecialTokens) -> int:
    """c: the document tokens one partition of x = N / p tokens holds next to the special tokens."""
    x = max_length // num_partitions
    content = x - len(special)
    if content < 1:
        raise ValueError(f"Partitions of {x} tokens leave no room next to {len(special)} special tokens.")
    return content


def cut_documents(lengths: np.ndarray, max_length: int, num_partitions: int, special: SpecialTokens) -> np.ndarray:
    """Tokens each document loses to the N-token budget (its first p * c tokens are read)."""
    return np.clip(lengths - num_partitions * partition_content(max_length, num_partitions, special), 0, None)


def partition(tokens: np.ndarray, max_length: int, num_partitions: int, special: SpecialTokens) -> list[np.ndarray]:
    """Cut one document into TopicBERT-x partitions, each wrapped in the special tokens.

    The document is first cut to the ``num_partitions * c`` tokens that fit, where
    ``c = max_length / num_partitions - len(special)`` is the content of one partition of
    ``x = max_length / num_partitions`` tokens. Partitions are consecutive slices of ``c`` tokens,
    except the last, which takes the last ``c`` tokens (overlapping its neighbour) so that it needs
    no padding. A document shorter than that yields only the partitions it needs; one shorter than
    ``c`` yields a single short partition.
    """
    content = partition_content(max_length, num_partitions, special)
    tokens = tokens[: num_partitions * content]
    count = max(1, math.ceil(len(tokens) / content))
    starts = [i * content for i in range(count - 1)] + [max(0, len(tokens) - content)]
    prefix = np.asarray(special.prefix, dtype=np.int32)
    suffix = np.asarray(special.suffix, dtype=np.int32)
    return [np.concatenate([prefix, tokens[s : s + content], suffix]) for s in starts]
