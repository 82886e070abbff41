import numpy as np
import pytest

from datamodules.tokens import SpecialTokens, load_tokenizer, partition, tokenize_texts
from utils.pretrained import EncoderNotFoundError

SPECIAL = SpecialTokens(prefix=(101,), suffix=(102,), pad_id=0)


def contents(parts):
    return [p[1:-1].tolist() for p in parts]


def test_long_document_last_partition_takes_last_x_tokens():
    tokens = np.arange(1, 14)  # 13 content tokens; N=12, p=2 -> x=6 -> 4 content tokens per partition
    parts = partition(tokens, max_length=12, num_partitions=2, special=SPECIAL)
    # the document is cut to p * 4 = 8 tokens: [1..8]; partitions [1..4], [5..8]
    assert contents(parts) == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert all(p[0] == 101 and p[-1] == 102 and len(p) == 6 for p in parts)


def test_last_partition_overlaps_instead_of_padding():
    tokens = np.arange(1, 11)  # 10 tokens, N=24, p=4 -> x=6 -> 4 content tokens, room for 16
    parts = partition(tokens, max_length=24, num_partitions=4, special=SPECIAL)
    assert contents(parts) == [[1, 2, 3, 4], [5, 6, 7, 8], [7, 8, 9, 10]]
    assert {len(p) for p in parts} == {6}


def test_short_document_yields_only_the_partitions_it_needs():
    assert contents(partition(np.arange(1, 4), 24, 4, SPECIAL)) == [[1, 2, 3]]
    assert contents(partition(np.arange(1, 5), 24, 4, SPECIAL)) == [[1, 2, 3, 4]]
    assert contents(partition(np.arange(1, 6), 24, 4, SPECIAL)) == [[1, 2, 3, 4], [2, 3, 4, 5]]
    assert contents(partition(np.arange(1, 9), 24, 4, SPECIAL)) == [[1, 2, 3, 4], [5, 6, 7, 8]]


def test_single_partition_is_plain_truncation_to_n():
    parts = partition(np.arange(1, 100), max_length=10, num_partitions=1, special=SPECIAL)
    assert contents(parts) == [list(range(1, 9))]


def test_partition_too_small_for_special_tokens():
    with pytest.raises(ValueError, match="no room"):
        partition(np.arange(5), max_length=4, num_partitions=2, special=SPECIAL)


def test_special_tokens_and_flat_tokenisation_of_real_tokenizer(tiny_encoder_dir):
    tokenizer = load_tokenizer(str(tiny_encoder_dir))
    special = SpecialTokens.of(tokenizer)
    assert special.prefix == (tokenizer.cls_token_id,) and special.suffix == (tokenizer.sep_token_id,)
    assert special.pad_id == tokenizer.pad_token_id
    view = tokenize_texts(tokenizer, ["goal match", "bank", "the team scored a goal today"], chunk=2)
    assert len(view) == 3
    assert view.lengths().tolist() == [2, 1, 7]
    assert view.document(1).tolist() == tokenizer("bank", add_special_tokens=False)["input_ids"]


def test_missing_encoder_path_offline_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderNotFoundError, match=r"HF_HUB_OFFLINE is set.*save_pretrained"):
        load_tokenizer(str(tmp_path / "no-such-model"))
    with pytest.raises(EncoderNotFoundError, match="HF_HUB_OFFLINE is set"):
        load_tokenizer("someone/not-a-cached-model")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EncoderNotFoundError, match="exists but"):
        load_tokenizer(str(empty))
