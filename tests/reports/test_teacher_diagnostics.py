"""Teacher diagnostics on planted logits, and a planted per-document signal through predict -> student batches."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from datamodules import DocumentDataModule
from datamodules.augment import Augmentation
from datamodules.batching import LengthBucketBatchSampler
from datamodules.teacher import TeacherLogits
from reports.teacher_diagnostics import UNRECORDED, main, teacher_diagnostics
from tests.conftest import ROOT
from tests.test_distill_cli import COPIES, TRAIN_DOCS, teacher  # noqa: F401  # teacher: the module fixture

NAMES = ["finance", "science", "sport"]


def training_documents(corpus_dir, dev_size=0.2):
    """The training split exactly as the report reads it (no tokens, no bag of words)."""
    dm = DocumentDataModule(dataset=str(corpus_dir), dev_size=dev_size, tokenizer=None, bow=False)
    return dm.documents("train")


def write_logits(path, ids, logits, names=NAMES, multi_label=False, teacher_info=None):
    TeacherLogits(
        ids=ids,
        logits=np.asarray(logits, dtype=np.float32),
        label_names=names,
        multi_label=multi_label,
        split="transfer",
        data_fingerprint="planted",
        teacher={"model": "planted", "dev_macro_f1": 0.75} if teacher_info is None else teacher_info,
    ).save(path)
    return path


def single_label_row(gold: str, p_gold: float, wrong: str | None = None) -> list[float]:
    """Log-probabilities giving ``gold`` p_gold; the rest goes to ``wrong`` (most of it) or is shared."""
    others = [n for n in NAMES if n != gold]
    rest = {n: (1 - p_gold) / 2 for n in others}
    if wrong is not None:
        rest = {n: (1 - p_gold) * (0.9 if n == wrong else 0.1) for n in others}
    return np.log([p_gold if n == gold else rest[n] for n in NAMES]).tolist()


def test_single_label_figures_per_class_for_originals_and_copies(tiny_corpus_dir, tmp_path, capsys):
    train = training_documents(tiny_corpus_dir)
    gold = [labels[0] for labels in train.labels]
    ids = list(train.ids) + [f"{i}#aug1" for i in train.ids]
    # right on every original (p(gold) 0.8); on copies right with 0.6, except sport: 0.2 and mostly finance
    rows = [single_label_row(g, 0.8) for g in gold]
    rows += [single_label_row(g, 0.2, "finance") if g == "sport" else single_label_row(g, 0.6) for g in gold]
    path = write_logits(tmp_path / "t.npz", ids, rows)

    report = teacher_diagnostics(str(path), dataset=str(tiny_corpus_dir), dev_size=0.2, out=str(tmp_path / "out"))

    counts = {n: gold.count(n) for n in NAMES}
    original, augmented = report["splits"]["original"], report["splits"]["augmented"]
    assert original["documents"] == augmented["documents"] == len(train) == TRAIN_DOCS
    assert original["agreement"] == 1.0 and original["p_gold"] == pytest.approx(0.8)
    for name in NAMES:
        assert original["classes"][name] == pytest.approx({"documents": counts[name], "agreement": 1.0, "p_gold": 0.8})
        right = name != "sport"
        expected = {"documents": counts[name], "agreement": float(right), "p_gold": 0.6 if right else 0.2}
        assert augmented["classes"][name] == pytest.approx(expected)
    sport = counts["sport"] / len(train)
    assert augmented["agreement"] == pytest.approx(1 - sport)
    assert augmented["p_gold"] == pytest.approx(0.2 * sport + 0.6 * (1 - sport))
    assert report["teacher_dev_macro_f1"] == 0.75

    printed = capsys.readouterr().out
    assert "Teacher dev macro-F1: 0.7500" in printed
    assert f"Labelling the {2 * TRAIN_DOCS} documents took an unrecorded time" in printed  # a planted file has none
    assert f"| sport | {counts['sport']} | 1.000 | 0.800 | {counts['sport']} | 0.000 | 0.200 |" in printed
    assert (tmp_path / "out/teacher_diagnostics.md").read_text() in printed
    assert json.loads((tmp_path / "out/teacher_diagnostics.json").read_text()) == report


def test_multi_label_figures_threshold_the_log_odds(tiny_multilabel_dir, tmp_path):
    train = training_documents(tiny_multilabel_dir, dev_size=0.25)
    gold = np.array([[n in labels for n in NAMES] for labels in train.labels])
    right = np.where(gold, 2.0, -2.0)  # sigmoid(2) on every gold label, nothing else predicted
    wrong_sport = right.copy()
    wrong_sport[:, 2] = -1.0  # copies: sport never predicted, sigmoid(-1) on it
    ids = list(train.ids) + [f"{i}#aug1" for i in train.ids]
    path = write_logits(tmp_path / "t.npz", ids, np.vstack([right, wrong_sport]), multi_label=True, teacher_info={})

    report = teacher_diagnostics(str(path), dataset=str(tiny_multilabel_dir), dev_size=0.25)

    high, low = 1 / (1 + np.exp(-2.0)), 1 / (1 + np.exp(1.0))
    original, augmented = report["splits"]["original"], report["splits"]["augmented"]
    assert original["agreement"] == 1.0 and original["p_gold"] == pytest.approx(high)
    assert augmented["classes"]["sport"] == pytest.approx(
        {"documents": int(gold[:, 2].sum()), "agreement": 0.0, "p_gold": low}
    )
    assert augmented["classes"]["finance"] == pytest.approx(
        {"documents": int(gold[:, 0].sum()), "agreement": 1.0, "p_gold": high}
    )
    per_doc = np.where(gold, [high, high, low], 0).sum(1) / gold.sum(1)
    assert augmented["agreement"] == pytest.approx(1 - gold[:, 2].mean())
    assert augmented["p_gold"] == pytest.approx(per_doc.mean())
    assert (tmp_path / "teacher_diagnostics.md").exists()  # beside the logits file by default
    assert UNRECORDED in (tmp_path / "teacher_diagnostics.md").read_text()


@pytest.mark.parametrize(
    "names, dev_size, message",
    [
        (["finance", "sport", "science"], 0.2, r"labels \['finance', 'sport', 'science'\].*pass the --dataset"),
        (NAMES, 0.3, r"are not training documents .* dev_size=0\.3.*pass the --dataset, --dev_size and --seed"),
    ],
)
def test_refuses_a_file_of_other_data(names, dev_size, message, tiny_corpus_dir, tmp_path):
    ids = list(training_documents(tiny_corpus_dir).ids)
    path = write_logits(tmp_path / "t.npz", ids, np.zeros((len(ids), 3)), names=names)
    args = ["--logits", str(path), "--dataset", str(tiny_corpus_dir), "--dev_size", str(dev_size)]
    with pytest.raises(SystemExit, match=f"^error: .*{message}") as raised:
        main(args)
    assert "\n" not in str(raised.value)


def test_refuses_a_missing_file_in_one_line(tiny_corpus_dir, tmp_path):
    with pytest.raises(SystemExit, match=r"^error: Teacher logits .* are missing"):
        main(["--logits", str(tmp_path / "absent.npz"), "--dataset", str(tiny_corpus_dir)])


# ----- through the real predict path -----


def test_real_teacher_file_records_the_checkpoints_dev_score(teacher, tiny_corpus_dir, tmp_path):  # noqa: F811
    saved = TeacherLogits.load(teacher.logits)
    callbacks = torch.load(teacher.checkpoint, map_location="cpu", weights_only=True)["callbacks"]
    (state,) = [s for key, s in callbacks.items() if key.startswith("BestCheckpoint")]
    assert state["monitor"] == "val_macro_f1"
    assert saved.teacher["dev_macro_f1"] == pytest.approx(float(state["current_score"]))
    assert 0 <= saved.teacher["dev_macro_f1"] <= 1

    report = teacher_diagnostics(str(teacher.logits), dataset=str(tiny_corpus_dir), dev_size=0.2, out=str(tmp_path))
    for split in ("original", "augmented"):
        figures = report["splits"][split]
        assert figures["documents"] == TRAIN_DOCS
        assert sum(c["documents"] for c in figures["classes"].values()) == TRAIN_DOCS
        assert 0 <= figures["agreement"] <= 1 and 0 < figures["p_gold"] < 1
    page = (tmp_path / "teacher_diagnostics.md").read_text()
    assert f"Teacher dev macro-F1: {saved.teacher['dev_macro_f1']:.4f}" in page
    assert f"took {saved.teacher['labelling_time_s']:.0f} s." in page


def test_an_older_file_gets_its_dev_score_from_the_checkpoint_that_wrote_it(teacher, tiny_corpus_dir, tmp_path):  # noqa: F811
    saved = TeacherLogits.load(teacher.logits)
    expected = saved.teacher.pop("dev_macro_f1")  # as files written before the score was recorded
    older = tmp_path / "older.npz"
    saved.save(older)
    args = {"dataset": str(tiny_corpus_dir), "dev_size": 0.2, "out": str(tmp_path)}
    assert teacher_diagnostics(str(older), **args)["teacher_dev_macro_f1"] is None
    report = teacher_diagnostics(str(older), **args, teacher_checkpoint=teacher.checkpoint)
    assert report["teacher_dev_macro_f1"] == pytest.approx(expected)
    other = tmp_path / "other.ckpt"
    other.write_bytes(Path(teacher.checkpoint).read_bytes() + b"x")
    with pytest.raises(SystemExit, match="not the checkpoint that wrote"):
        teacher_diagnostics(str(older), **args, teacher_checkpoint=str(other))


def plant_signal(source, path, reorder: bool) -> dict[str, np.ndarray]:
    """Copy the teacher's file with every field kept but the logits: row of a document = its own signal
    (distinct per document, originals and copies apart); ``reorder`` also permutes the file's rows."""
    saved = TeacherLogits.load(source)
    order = np.random.default_rng(3).permutation(len(saved.ids)) if reorder else np.arange(len(saved.ids))
    planted = {
        doc_id: np.array([i + 1, -(i + 1), 0.5 * i + (1000 if "#aug" in doc_id else 0)], dtype=np.float32)
        for i, doc_id in enumerate(saved.ids)
    }
    saved.ids = [saved.ids[i] for i in order]
    saved.logits = np.stack([planted[doc_id] for doc_id in saved.ids])
    saved.save(path)
    return planted


def student_datamodule(corpus_dir, encoder_dir, logits, cache) -> DocumentDataModule:
    """The data module of a distilled student: configs/distill/student.yaml's augmentation, the tiny data."""
    augmentation = yaml.safe_load((ROOT / "configs/distill/student.yaml").read_text())["data"]["augmentation"]
    return DocumentDataModule(
        dataset=str(corpus_dir),
        tokenizer=str(encoder_dir),
        max_length=32,
        min_freq=2,
        dev_size=0.2,
        batch_size=8,
        augmentation=Augmentation(**{**augmentation, "copies": COPIES}),
        teacher_logits=str(logits),
        bow=False,  # as the CLI sets it for students
        cache_dir=str(cache),
    )


@pytest.mark.parametrize("reorder", [False, True], ids=["file-order", "rows-permuted"])
def test_every_student_batch_carries_its_own_documents_planted_logits(
    reorder,
    teacher,  # noqa: F811
    tiny_corpus_dir,
    tiny_encoder_dir,
    tmp_path,
) -> None:
    path = tmp_path / "planted.npz"
    shutil.copy(teacher.logits, tmp_path / "written.npz")
    planted = plant_signal(tmp_path / "written.npz", path, reorder)
    written, rewritten = TeacherLogits.load(teacher.logits), TeacherLogits.load(path)
    for field in ("label_names", "multi_label", "split", "data_fingerprint", "teacher"):  # all kept but the logits
        assert getattr(rewritten, field) == getattr(written, field)
    assert sorted(rewritten.ids) == sorted(written.ids) and (rewritten.ids == written.ids) != reorder

    dm = student_datamodule(tiny_corpus_dir, tiny_encoder_dir, path, tmp_path / "cache")
    dm.setup("fit")
    transfer_ids = dm.documents("transfer").ids
    assert dm.train_split == "transfer" and len(transfer_ids) == TRAIN_DOCS * (1 + COPIES)
    loader = dm.train_dataloader()
    sampler = loader.batch_sampler
    assert isinstance(sampler, LengthBucketBatchSampler) and sampler.shuffle and sampler.bucket_batches > 0
    seen: list[int] = []
    for batch in loader:
        docs = batch["doc_index"].tolist()
        expected = np.stack([planted[transfer_ids[d]] for d in docs])
        torch.testing.assert_close(batch["teacher_logits"], torch.from_numpy(expected), rtol=0, atol=0)
        seen += docs
    assert sorted(seen) == list(range(len(transfer_ids)))  # every transfer document, once
    assert {transfer_ids[d] for d in seen} == set(planted)
    assert seen != sorted(seen)  # the loader shuffled
