import nltk
import numpy as np
import pytest

from datamodules.augment import Augmentation, PosSampler, augment_document, build_transfer_set, load_pos_tagger
from datamodules.corpus import DataError, Split

TRAIN = Split(
    ids=["a", "b", "c"],
    texts=[
        "The bank raised its rates. Investors sold shares quickly.",
        "The team won the match. Fans cheered loudly in the stadium.",
        "Scientists measured the atom. The experiment failed twice.",
    ],
    labels=[["finance"], ["sport"], ["science"]],
)


def test_transfer_set_is_deterministic_for_a_seed():
    config = Augmentation(copies=2, mask_prob=0.2, swap_prob=0.3, seed=7)
    first, second = build_transfer_set(TRAIN, config), build_transfer_set(TRAIN, config)
    assert first.texts == second.texts
    assert first.ids[:3] == TRAIN.ids and first.ids[3:] == ["a#aug1", "b#aug1", "c#aug1", "a#aug2", "b#aug2", "c#aug2"]
    assert first.labels[3:] == TRAIN.labels * 2
    other = build_transfer_set(TRAIN, Augmentation(copies=2, mask_prob=0.2, swap_prob=0.3, seed=8))
    assert other.texts[3:] != first.texts[3:]


def test_swapped_words_keep_their_part_of_speech():
    tagger = load_pos_tagger()
    tokens = [doc.replace(".", " .").split() for doc in TRAIN.texts]
    tagged = tagger.tag_sents(tokens)
    sampler = PosSampler(tagged)
    config = Augmentation(copies=1, mask_prob=0.0, swap_prob=1.0, seed=0)
    for doc in tagged:
        new = augment_document(doc, sampler, config, np.random.default_rng(0)).split()
        assert len(new) == len(doc)
        for (word, tag), replacement in zip(doc, new, strict=True):
            if word.isalpha():
                assert replacement in sampler.words[tag]  # a word seen with the same tag in the corpus
            else:
                assert replacement == word  # punctuation is never swapped


def test_masking_and_no_op_settings():
    masked = build_transfer_set(TRAIN, Augmentation(copies=1, mask_prob=1.0, swap_prob=0.0))
    assert set(masked.texts[3].split()) == {"[MASK]"}
    same = build_transfer_set(TRAIN, Augmentation(copies=1, mask_prob=0.0, swap_prob=0.0))
    assert same.texts[3] == "The bank raised its rates . Investors sold shares quickly ."
    assert build_transfer_set(TRAIN, Augmentation(copies=0)) is TRAIN


def test_sentence_shuffle_keeps_every_sentence():
    shuffled = build_transfer_set(TRAIN, Augmentation(copies=3, mask_prob=0, swap_prob=0, shuffle_sentences=True))
    for i, text in enumerate(shuffled.texts[3:]):
        assert sorted(text.split()) == sorted(TRAIN.texts[i % 3].replace(".", " .").split())


def test_missing_tagger_offline_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])

    def offline(*args, **kwargs):
        raise ValueError("Error loading averaged_perceptron_tagger_eng: <urlopen error>")

    monkeypatch.setattr(nltk, "download", offline)
    with pytest.raises(DataError, match=r"NLTK_DATA.*swap_prob 0"):
        load_pos_tagger()
