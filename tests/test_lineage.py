"""W&B lineage, offline: teacher fit -> teacher logits -> student fit -> export, each run's records read
back from the ``.wandb`` file that ``wandb sync`` would upload."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from cli import main
from tests.conftest import ROOT, tiny_args
from utils.files import file_sha256
from utils.lineage import artifact_name, content_alias

BLOCK = 32768  # the .wandb file is a LevelDB-style log of protobuf records in 32 KiB blocks


def wandb_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    data, records, pending, position = path.read_bytes(), [], b"", 7  # after the 7-byte header
    while position + 7 <= len(data):
        left = BLOCK - position % BLOCK
        if left < 7:  # a block's tail too short for a record header is padding
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if length == 0 and kind == 0:
            position += left
            continue
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def offline_runs(root: Path) -> dict[str, dict]:
    """Per W&B run name: its artifacts (name -> (type, aliases, metadata, files)) and config lineage."""
    runs = {}
    for path in root.glob("**/offline-run-*/run-*.wandb"):
        name, artifacts, lineage = None, {}, {}
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                name = record.run.display_name
            elif kind == "artifact":
                a = record.artifact
                files = [entry.path for entry in a.manifest.contents]
                artifacts[a.name] = (a.type, set(a.aliases), json.loads(a.metadata or "{}"), files)
            elif kind == "config":
                for item in record.config.update:
                    if item.key == "lineage":
                        lineage |= json.loads(item.value_json)
        runs[name] = {"artifacts": artifacts, "lineage": lineage}
    return runs


@pytest.fixture(scope="module")
def chain(tiny_corpus_dir, tiny_encoder_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("lineage")
    args = [*tiny_args(tiny_corpus_dir, tiny_encoder_dir), "--model.init_args.num_topics", "8"]
    previous, mode = os.getcwd(), os.environ.get("WANDB_MODE")
    os.chdir(home)
    os.environ["WANDB_MODE"] = "offline"
    try:
        teacher = main(["fit", *args, "--trainer.max_epochs", "1", "--test_after_fit", "false"])
        best = teacher.trainer.checkpoint_callback.best_model_path
        distill = ["--config", str(ROOT / "configs/distill/teacher.yaml"), "--ckpt_path", best]
        main(["predict", *args, *distill, "--data.augmentation.copies", "1"])
        logits = home / "runs/distill/r8-teacher-logits.npz"
        student_args = [
            *("--config", str(ROOT / "configs/students/logreg.yaml")),
            *("--config", str(ROOT / "configs/distill/student.yaml")),
            *tiny_args(tiny_corpus_dir, tiny_encoder_dir)[2:],
            *("--data.tokenizer", "null", "--data.augmentation.copies", "1", "--data.teacher_logits", str(logits)),
            *("--trainer.max_epochs", "1"),
        ]
        student = main(["fit", *student_args])
        student_best = student.trainer.checkpoint_callback.best_model_path
        export = main(["export", "--ckpt_path", student_best, "--out", str(home / "exported")])
    finally:
        os.chdir(previous)
        if mode is None:
            os.environ.pop("WANDB_MODE")
        else:
            os.environ["WANDB_MODE"] = mode
    import wandb

    wandb.teardown()  # waits for W&B's service process to flush every run's record log
    corpus = tiny_corpus_dir.name
    return {
        "runs": offline_runs(home),
        "teacher_ckpt": home / best,
        "logits": logits,
        "student_ckpt": home / student_best,
        "export": export,
        "corpus": corpus,
    }


def test_the_best_checkpoint_is_an_artifact_named_by_its_content(chain):
    name = artifact_name("checkpoint", "TopicBERT-16", chain["corpus"])
    (teacher_run,) = [r for r in chain["runs"].values() if name in r["artifacts"]]
    kind, aliases, metadata, files = teacher_run["artifacts"][name]
    assert kind == "model" and aliases == {"latest", content_alias(chain["teacher_ckpt"])}
    assert files == [chain["teacher_ckpt"].name] and metadata["sha256"] == file_sha256(chain["teacher_ckpt"])
    assert 0 <= metadata["best_val_macro_f1"] <= 1 and metadata["model"] == "TopicBERT-16"


def test_the_teacher_logits_artifact_records_the_checkpoint_it_came_from(chain):
    checkpoint = (
        f"{artifact_name('checkpoint', 'TopicBERT-16', chain['corpus'])}:{content_alias(chain['teacher_ckpt'])}"
    )
    (predict_run,) = [r for r in chain["runs"].values() if r["lineage"].get("teacher_checkpoint")]
    assert predict_run["lineage"] == {"teacher_checkpoint": checkpoint}
    kind, aliases, metadata, _ = predict_run["artifacts"][artifact_name("teacher-logits", chain["corpus"], "transfer")]
    assert kind == "teacher-logits" and content_alias(chain["logits"]) in aliases
    assert metadata["teacher_checkpoint_artifact"] == checkpoint and metadata["split"] == "transfer"
    assert metadata["teacher"]["checkpoint_sha256"] == file_sha256(chain["teacher_ckpt"])


def test_the_student_run_names_the_logits_artifact_it_used(chain):
    (student_run,) = [r for r in chain["runs"].values() if r["lineage"].get("teacher_logits")]
    logits = f"{artifact_name('teacher-logits', chain['corpus'], 'transfer')}:{content_alias(chain['logits'])}"
    assert student_run["lineage"] == {"teacher_logits": logits}
    assert artifact_name("checkpoint", "KD-LogReg", chain["corpus"]) in student_run["artifacts"]


def test_the_export_folder_is_an_artifact_that_uses_the_checkpoint(chain):
    (export_run,) = [r for name, r in chain["runs"].items() if name.startswith("export-")]
    checkpoint = f"{artifact_name('checkpoint', 'KD-LogReg', chain['corpus'])}:{content_alias(chain['student_ckpt'])}"
    assert export_run["lineage"] == {"checkpoint": checkpoint}
    kind, aliases, metadata, files = export_run["artifacts"][artifact_name("export", "KD-LogReg", chain["corpus"])]
    assert kind == "model" and content_alias(chain["export"]) in aliases
    assert {"model.safetensors", "config.json", "README.md", "sklearn_pipeline.joblib"} <= set(files)
    assert metadata["checkpoint_artifact"] == checkpoint and 0 <= metadata["test_macro_f1"] <= 1
