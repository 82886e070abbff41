import gzip
import json

import numpy as np
import pytest
import torch

from datamodules import DocumentDataModule
from datamodules import views as views_module
from datamodules.batching import LengthBucketBatchSampler


def make_dm(corpus_dir, encoder_dir, **kwargs):
    args = {
        "dataset": str(corpus_dir),
        "tokenizer": str(encoder_dir),
        "max_length": 24,
        "num_partitions": 2,
        "batch_size": 8,
        "eval_batch_size": 16,
        "dev_size": 0.2,
        "min_freq": 2,
    } | kwargs
    return DocumentDataModule(**args)


def test_batches_have_fixed_keys_shapes_and_dynamic_padding(tiny_corpus_dir, tiny_encoder_dir, cache_dir):
    dm = make_dm(tiny_corpus_dir, tiny_encoder_dir)
    assert dm.num_labels == 3 and dm.label_names == ["finance", "science", "sport"] and not dm.multi_label
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"input_ids", "attention_mask", "bow", "labels", "doc_index", "example_index"}
    size = len(batch["doc_index"])
    assert batch["bow"].shape == (size, dm.vocab_size) and batch["labels"].shape == (size, 3)
    assert batch["input_ids"].shape[1] == batch["attention_mask"].sum(1).max() <= 12
    assert torch.all(batch["labels"].sum(1) == 1)


def test_every_partition_carries_its_documents_bow_and_label(tiny_corpus_dir, tiny_encoder_dir, cache_dir):
    dm = make_dm(tiny_corpus_dir, tiny_encoder_dir)
    dm.setup("fit")
    dataset = dm.datasets["train"]
    bow = dm.views.split("train").bow.toarray()
    labels = dm.views.split("train").labels
    seen = set()
    for batch in dm.train_dataloader():
        for row, doc in enumerate(batch["doc_index"].tolist()):
            np.testing.assert_array_equal(batch["bow"][row].numpy(), bow[doc])
            np.testing.assert_array_equal(batch["labels"][row].numpy(), labels[doc])
            seen.add(doc)
    assert seen == set(range(len(dm.corpus["train"])))
    assert len(dataset) > len(seen)  # long documents gave two partitions


def test_bow_only_view_for_the_topic_model(tiny_corpus_dir, cache_dir):
    dm = DocumentDataModule(dataset=str(tiny_corpus_dir), tokenizer=None, batch_size=10, min_freq=2, dev_size=0.2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"bow", "labels", "doc_index", "example_index"}
    assert len(dm.datasets["train"]) == len(dm.corpus["train"])


def test_tokenisation_is_cached_and_not_repeated(tiny_corpus_dir, tiny_encoder_dir, cache_dir, monkeypatch):
    first = make_dm(tiny_corpus_dir, tiny_encoder_dir)
    first.prepare_data()
    assert len(list((cache_dir / "tokens").glob("*.npz"))) == 1

    def must_not_tokenise(*args, **kwargs):
        raise AssertionError("tokenised again despite a warm cache")

    monkeypatch.setattr(views_module, "tokenize_texts", must_not_tokenise)
    second = make_dm(tiny_corpus_dir, tiny_encoder_dir, num_partitions=1)  # N and p do not matter to the cache
    second.setup("fit")
    for split in ("train", "dev", "test"):
        np.testing.assert_array_equal(second.views.split(split).tokens.ids, first.views.split(split).tokens.ids)


def test_corrupt_cache_is_rebuilt(tiny_corpus_dir, tiny_encoder_dir, cache_dir):
    make_dm(tiny_corpus_dir, tiny_encoder_dir).prepare_data()
    for path in cache_dir.rglob("*.npz"):
        path.write_bytes(path.read_bytes()[:100])
    dm = make_dm(tiny_corpus_dir, tiny_encoder_dir)
    dm.prepare_data()
    assert len(dm.views.split("test").tokens) == 30 and dm.vocab_size > 0


def test_vocabulary_is_built_from_train_only(tmp_path, cache_dir):
    import json

    rows = [{"id": str(i), "label": "a" if i % 2 else "b", "text": "common words here"} for i in range(20)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    test_rows = [{"id": f"t{i}", "label": "a", "text": "common leakage leakage leakage"} for i in range(20)]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test_rows))
    dm = DocumentDataModule(dataset=str(tmp_path), tokenizer=None, min_freq=1, dev_size=2)
    assert dm.vocabulary.words == ["common", "words"]  # "here" is an NLTK stopword; "leakage" is test-only
    test_bow = dm.views.split("test").bow.toarray()
    assert test_bow.sum(0).tolist() == [20.0, 0.0]


def test_empty_vocabulary_suggests_lower_min_freq(tiny_corpus_dir, cache_dir):
    dm = DocumentDataModule(dataset=str(tiny_corpus_dir), tokenizer=None, min_freq=10**6, dev_size=0.2)
    with pytest.raises(ValueError, match=r"Lower --data.min_freq"):
        _ = dm.vocab_size


def test_predict_file_of_new_documents(tiny_corpus_dir, tiny_encoder_dir, cache_dir, tmp_path):
    new = tmp_path / "new.jsonl"
    new.write_text('{"id": "n1", "text": "goal match team"}\n{"id": "n2", "text": "bank stock"}\n')
    dm = make_dm(tiny_corpus_dir, tiny_encoder_dir, predict_file=str(new))
    dm.setup("predict")
    batch = next(iter(dm.predict_dataloader()))
    assert dm.documents("predict").ids == ["n1", "n2"]
    assert batch["labels"].sum() == 0 and batch["bow"].sum() > 0


def test_length_bucket_sampler_is_a_deterministic_permutation():
    lengths = np.random.default_rng(0).integers(1, 500, size=1000)
    sampler = LengthBucketBatchSampler(lengths, batch_size=16, shuffle=True, seed=7)
    epoch0 = list(sampler)
    assert sorted(i for b in epoch0 for i in b) == list(range(1000))
    assert epoch0 == list(LengthBucketBatchSampler(lengths, 16, shuffle=True, seed=7))
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
    padded = sum(len(b) * lengths[b].max() for b in epoch0)
    random_order = np.random.default_rng(1).permutation(1000)
    padded_random = sum(16 * lengths[random_order[i : i + 16]].max() for i in range(0, 1000, 16))
    assert padded < 0.7 * padded_random  # bucketing removes most padding
    eval_batches = list(LengthBucketBatchSampler(lengths, 100, shuffle=False))
    assert [lengths[b].max() for b in eval_batches] == sorted((lengths[b].max() for b in eval_batches), reverse=True)


@pytest.mark.parametrize("shuffle", [True, False])
def test_bucket_sampler_splits_batches_between_ddp_processes(shuffle):
    lengths = np.random.default_rng(0).integers(1, 300, size=105)  # 11 batches of 10: odd for 2 ranks
    ranks = [list(LengthBucketBatchSampler(lengths, 10, shuffle, seed=3, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == len(LengthBucketBatchSampler(lengths, 10, shuffle, num_replicas=2)) == 6
    single = [tuple(b) for b in LengthBucketBatchSampler(lengths, 10, shuffle, seed=3)]
    assert {tuple(b) for b in ranks[0] + ranks[1]} == set(single)  # every batch, split between the ranks
    assert ranks[1][-1] == list(single[0])  # the odd batch count is padded with a repeat
    with pytest.raises(ValueError, match="outside"):
        LengthBucketBatchSampler(lengths, 10, shuffle, num_replicas=2, rank=2)


def test_transfer_set_is_cached_and_read_back(tiny_corpus_dir, cache_dir, monkeypatch):
    from datamodules.augment import Augmentation

    augmentation = Augmentation(copies=2, mask_prob=0.2, swap_prob=0.2, seed=3)
    first = DocumentDataModule(
        dataset=str(tiny_corpus_dir), tokenizer=None, min_freq=2, dev_size=0.2, augmentation=augmentation
    ).documents("transfer")
    assert len(list(cache_dir.rglob("*.npz"))) >= 1

    def rebuilt(*args):
        raise AssertionError("the cached transfer set should have been read")

    monkeypatch.setattr(views_module, "build_transfer_set", rebuilt)
    again = DocumentDataModule(
        dataset=str(tiny_corpus_dir), tokenizer=None, min_freq=2, dev_size=0.2, augmentation=augmentation
    ).documents("transfer")
    assert again.ids == first.ids and again.texts == first.texts and again.labels == first.labels
    assert len(first.ids) == 3 * 72 and first.texts[72:] != first.texts[:72]


def test_paper_style_switches_pad_to_x_and_batch_at_random(tiny_corpus_dir, tiny_encoder_dir, cache_dir):
    dm = make_dm(tiny_corpus_dir, tiny_encoder_dir, pad_to_max_length=True, length_bucketing=False)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert all(b["input_ids"].shape[1] == 12 for b in batches)  # x = 24 / 2, whatever the partitions hold
    assert any((b["attention_mask"].sum(1) < 12).any() for b in batches)  # short partitions are padded to 12
    sampler = dm.train_dataloader().batch_sampler
    assert sampler.bucket_batches == 0
    dev = [i for b in dm.val_dataloader() for i in b["example_index"].tolist()]
    assert dev == list(range(len(dm.datasets["dev"])))  # the split's own order


def test_bucketing_off_gives_random_batches_of_every_example():
    lengths = np.arange(100)
    batches = list(LengthBucketBatchSampler(lengths, 10, shuffle=True, seed=1, bucket_batches=0))
    assert sorted(i for b in batches for i in b) == list(range(100))
    spreads = [lengths[b].max() - lengths[b].min() for b in batches]
    bucketed = [lengths[b].max() - lengths[b].min() for b in LengthBucketBatchSampler(lengths, 10, True, seed=1)]
    assert np.mean(spreads) > 3 * np.mean(bucketed)  # random batches mix short and long examples


def test_predict_file_of_a_named_dataset_is_read_with_its_fields(tmp_path, cache_dir):
    folder = tmp_path / "reuters21578"
    folder.mkdir()
    rows = "".join(
        json.dumps({"id": i, "labels": ["earn"], "title": f"T{i}", "text": f"body {i}"}) + "\n" for i in range(6)
    )
    for split in ("train", "test"):
        (folder / f"modapte90_{split}.jsonl.gz").write_bytes(gzip.compress(rows.encode()))
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"id": "n1", "title": "PROFIT UP", "text": "net rose"}) + "\n")
    dm = DocumentDataModule(
        dataset="reuters21578", data_dir=str(tmp_path), tokenizer=None, dev_size=2, predict_file=str(new)
    )
    assert dm.documents("predict").texts == ["PROFIT UP\nnet rose"]


def test_a_ten_megabyte_document_is_counted_whole_and_cut_to_its_partitions(
    tiny_corpus_dir, tiny_encoder_dir, cache_dir, tmp_path
):
    rows = [json.loads(line) for line in (tiny_corpus_dir / "train.jsonl").read_text().splitlines()]
    rows.append({"id": "huge", "label": "sport", "text": " ".join(["goal match team bank"] * 500_000)})  # 10 MB
    folder = tmp_path / "huge"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "test.jsonl").write_text((tiny_corpus_dir / "test.jsonl").read_text())
    dm = make_dm(folder, tiny_encoder_dir)
    dm.setup("fit")
    split = next(s for s in ("train", "dev") if "huge" in dm.documents(s).ids)
    dataset, doc = dm.datasets[split], dm.documents(split).ids.index("huge")
    parts = [dataset.parts[i] for i, d in enumerate(dataset.doc_index) if d == doc]
    assert len(parts) == 2 and all(len(p) == 12 for p in parts)  # p = 2 partitions of x = 24 / 2 tokens
    in_vocabulary = sum(w in dm.vocabulary.index for w in ("goal", "match", "team", "bank"))
    assert in_vocabulary and dm.views.split(split).bow[doc].sum() == 500_000 * in_vocabulary  # every word counted


def test_bucket_window_is_a_setting_and_must_be_positive(tiny_corpus_dir, tiny_encoder_dir, cache_dir):
    dm = make_dm(tiny_corpus_dir, tiny_encoder_dir, bucket_batches=3)
    dm.setup("fit")
    assert dm.train_dataloader().batch_sampler.bucket_batches == 3
    plain = make_dm(tiny_corpus_dir, tiny_encoder_dir, length_bucketing=False, bucket_batches=3)
    plain.setup("fit")
    assert plain.train_dataloader().batch_sampler.bucket_batches == 0  # random batches
    with pytest.raises(ValueError, match="length_bucketing false"):
        make_dm(tiny_corpus_dir, tiny_encoder_dir, bucket_batches=0)


def test_without_the_bag_of_words_no_vocabulary_is_built(tiny_corpus_dir, tiny_encoder_dir, cache_dir):
    dm = make_dm(tiny_corpus_dir, tiny_encoder_dir, bow=False)
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert "bow" not in batch and dm.vocab_size == 0
    assert not (cache_dir / "bow").exists() and (cache_dir / "tokens").is_dir()


def test_the_train_loader_resumes_from_its_own_state(tiny_corpus_dir, tiny_encoder_dir, cache_dir):
    dm = make_dm(tiny_corpus_dir, tiny_encoder_dir)
    dm.setup("fit")
    loader = dm.train_dataloader()
    loader.batch_sampler.set_epoch(1)
    full = [b["example_index"].tolist() for b in loader]
    partway = iter(loader)
    for _ in range(3):
        next(partway)
    state = loader.state_dict()
    assert state == {"epoch": 1, "batches_done": 3}
    resumed = make_dm(tiny_corpus_dir, tiny_encoder_dir)
    resumed.setup("fit")
    again = resumed.train_dataloader()
    again.load_state_dict(state)
    rest = iter(again)
    assert [next(rest)["example_index"].tolist() for _ in range(2)] == full[3:5]
    assert again.state_dict() == {"epoch": 1, "batches_done": 5}  # counts the batches skipped on resume
    assert [b["example_index"].tolist() for b in rest] == full[5:]
