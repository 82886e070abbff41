"""Transfer-set augmentation for distillation (Tang et al., 2019, as used by the DocBERT paper).

Each augmented copy of a training document is built word by word: with ``mask_prob`` a word becomes
the mask token, with ``swap_prob`` it is replaced by another word of the same part of speech drawn
from the training corpus's unigram distribution for that tag; optionally the sentence order is
shuffled. Copies keep their source document's labels; the teacher labels them softly later.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from datamodules.corpus import DataError, Split

_TOKENS = re.compile(r"\w+|[^\w\s]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Augmentation:
    """How the transfer set is built.

    Args:
        copies: augmented copies per training document (the paper used 2 to 3, giving 3x to 4x).
        mask_prob: chance that a word becomes ``mask_token``.
        swap_prob: chance that a word is replaced by a same-POS word from the corpus.
        shuffle_sentences: shuffle the sentence order of each copy.
        mask_token: the tokenizer's mask token.
        seed: seed of every random choice; the same seed gives the same transfer set.
    """

    copies: int = 3
    mask_prob: float = 0.1
    swap_prob: float = 0.1
    shuffle_sentences: bool = False
    mask_token: str = "[MASK]"
    seed: int = 0


def load_pos_tagger():
    """NLTK's averaged perceptron tagger, downloading it once if needed."""
    import nltk
    from nltk.tag import PerceptronTagger

    with contextlib.suppress(LookupError, OSError):  # not installed: try downloading it below
        return PerceptronTagger(lang="eng")
    try:
        nltk.download("averaged_perceptron_tagger_eng", quiet=True, raise_on_error=True)
        return PerceptronTagger(lang="eng")
    except (LookupError, OSError, ValueError) as err:
        raise DataError(
            "POS-guided word swaps need NLTK's averaged_perceptron_tagger_eng, which is not installed and "
            "could not be downloaded. Set NLTK_DATA to a folder that holds taggers/averaged_perceptron_tagger_eng, "
            "or set --data.augmentation.swap_prob 0."
        ) from err


class PosSampler:
    """Draws words of a given POS tag with the training corpus's unigram probabilities."""

    def __init__(self, tagged_docs: list[list[tuple[str, str]]]):
        counts: dict[str, dict[str, int]] = {}
        for doc in tagged_docs:
            for word, tag in doc:
                if word.isalpha():
                    by_tag = counts.setdefault(tag, {})
                    by_tag[word] = by_tag.get(word, 0) + 1
        self.words = {tag: list(c) for tag, c in counts.items()}
        self.cumulative = {tag: np.cumsum(list(c.values()), dtype=np.float64) for tag, c in counts.items()}

    def sample(self, tag: str, rng: np.random.Generator) -> str | None:
        cumulative = self.cumulative.get(tag)
        if cumulative is None:
            return None
        return self.words[tag][int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))]


def augment_document(
    tagged: list[tuple[str, str]], sampler: PosSampler, config: Augmentation, rng: np.random.Generator
) -> str:
    """One augmented copy of a tagged document, as space-joined tokens."""
    words = []
    for word, tag in tagged:
        draw = rng.random()
        if draw < config.mask_prob:
            words.append(config.mask_token)
        elif draw < config.mask_prob + config.swap_prob and word.isalpha():
            words.append(sampler.sample(tag, rng) or word)
        else:
            words.append(word)
    text = " ".join(words)
    if config.shuffle_sentences:
        sentences = _SENTENCE_END.split(text)
        text = " ".join(sentences[i] for i in rng.permutation(len(sentences)))
    return text


def build_transfer_set(train: Split, config: Augmentation) -> Split:
    """The training split followed by ``config.copies`` augmented copies of each document.

    Copy k of document ``id`` has id ``id#aug<k>`` and the source's labels.
    """
    if config.copies == 0:
        return train
    tokens = [_TOKENS.findall(text) for text in train.texts]
    untagged = [[(w, "") for w in doc] for doc in tokens]
    tagged = load_pos_tagger().tag_sents(tokens) if config.swap_prob > 0 else untagged
    sampler = PosSampler(tagged)
    ids, texts, labels = list(train.ids), list(train.texts), list(train.labels)
    for copy in range(1, config.copies + 1):
        for i in tqdm(
            range(len(train)), desc=f"augmenting (copy {copy}/{config.copies})", leave=False, disable=len(train) < 1000
        ):
            rng = np.random.default_rng((config.seed, copy, i))
            ids.append(f"{train.ids[i]}#aug{copy}")
            texts.append(augment_document(tagged[i], sampler, config, rng))
            labels.append(train.labels[i])
    return Split(ids, texts, labels)
