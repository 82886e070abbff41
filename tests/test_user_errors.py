"""Every user error is one line that names the problem and the fix, exit status 2, and leaves no file
behind: bad options, configs, data of every format, checkpoints and folders, as a user meets them."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from cli import main
from tests.conftest import ROOT, tiny_args


@dataclass
class Inputs:
    """What a case builds its command from: a folder of its own, the tiny corpus and encoder, and one
    trained checkpoint of the tiny corpus."""

    tmp: Path
    corpus: Path
    encoder: Path
    checkpoint: Path

    def base(self, *extra: str, corpus: Path | str | None = None) -> list[str]:
        args = tiny_args(corpus or self.corpus, self.encoder)
        return [*args, "--trainer.max_epochs", "1", "--wandb", "false", *extra]

    def folder(self, files: dict[str, str | bytes], test: bool = True) -> Path:
        """A corpus folder with these files, and the tiny corpus's test.jsonl unless one is given."""
        folder = self.tmp / "data"
        folder.mkdir(exist_ok=True)
        for name, content in files.items():
            (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
        if test and not any(n.startswith("test.") for n in files):
            shutil.copy(self.corpus / "test.jsonl", folder / "test.jsonl")
        return folder

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    def train_rows(self) -> list[dict]:
        return [json.loads(line) for line in (self.corpus / "train.jsonl").read_text().splitlines()]

    def jsonl(self, rows: list[dict]) -> str:
        return "".join(json.dumps(r) + "\n" for r in rows)


def checkpoint_file(i: Inputs, content: dict) -> str:
    path = i.tmp / "given.ckpt"
    torch.save(content, path)
    return str(path)


def truncated_checkpoint(i: Inputs) -> str:
    data = i.checkpoint.read_bytes()
    return str(i.file("truncated.ckpt", data[: len(data) // 2]))


def csv_rows(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


def three_class_csv(i: Inputs, rows: int = 30) -> list[str]:
    return [f"{r['label']},{r['text']}" for r in i.train_rows()[:rows]]


def with_row(i: Inputs, n: int, row: dict | str) -> str:
    """The tiny training rows with row ``n`` replaced (a dict, or a raw line)."""
    lines = [json.dumps(r) for r in i.train_rows()]
    lines[n] = row if isinstance(row, str) else json.dumps(row)
    return "\n".join(lines) + "\n"


def resume_from_corrupt_last(i: Inputs) -> list[str]:
    i.file("runs/job/version_0/checkpoints/last.ckpt", b"torn")
    return ["fit", *i.base("--run.name", "job", "--ckpt_path", "last")]


def under_a_file(i: Inputs, folder: str) -> str:
    i.file("a-file", "not a folder")
    return str(i.tmp / "a-file" / folder)


def single_class(i: Inputs) -> list[str]:
    rows = [r | {"label": "sport"} for r in i.train_rows()]
    folder = i.folder({"train.jsonl": i.jsonl(rows), "test.jsonl": i.jsonl(rows[:5])})
    return ["fit", *i.base(corpus=folder)]


def predict_file(i: Inputs, name: str, content: str | None) -> list[str]:
    path = i.tmp / name if content is None else i.file(name, content)
    return ["predict", *i.base("--ckpt_path", str(i.checkpoint), "--data.predict_file", str(path))]


def other_labels(i: Inputs) -> list[str]:
    rows = [r | {"label": {"sport": "tennis"}.get(r["label"], r["label"])} for r in i.train_rows()]
    folder = i.folder({"train.jsonl": i.jsonl(rows), "test.jsonl": i.jsonl(rows[:9])})
    return ["test", *i.base("--ckpt_path", str(i.checkpoint), corpus=folder)]


Build = Callable[[Inputs], list[str]]
CASES: dict[str, tuple[Build, str]] = {
    # numeric options, refused right after parsing
    "batch size 0": (lambda i: ["fit", *i.base("--data.batch_size", "0")], r"--data\.batch_size must be at least 1"),
    "eval batch size negative": (
        lambda i: ["fit", *i.base("--data.eval_batch_size", "-4")],
        r"--data\.eval_batch_size must be at least 1, got -4",
    ),
    "max_length 0": (lambda i: ["fit", *i.base("--data.max_length", "0")], r"--data\.max_length must be at least 1"),
    "no partitions": (
        lambda i: ["fit", *i.base("--data.num_partitions", "0")],
        r"--data\.num_partitions must be at least 1",
    ),
    "train fraction above 1": (
        lambda i: ["fit", *i.base("--data.train_fraction", "1.5")],
        r"--data\.train_fraction must be in \(0, 1\], got 1\.5",
    ),
    "negative dev size": (lambda i: ["fit", *i.base("--data.dev_size", "-0.1")], r"--data\.dev_size must be above 0"),
    "negative workers": (
        lambda i: ["fit", *i.base("--data.num_workers", "-1")],
        r"--data\.num_workers must be 0 or more",
    ),
    "negative learning rate": (
        lambda i: ["fit", *i.base("--model.init_args.head_lr", "-0.001")],
        r"--model\.head_lr must be 0 or more, got -0\.001",
    ),
    "dropout of 1": (
        lambda i: ["fit", *i.base("--model.init_args.dropout", "1.0")],
        r"--model\.dropout must be in \[0, 1\)",
    ),
    "no topics": (
        lambda i: ["fit", *i.base("--model.init_args.num_topics", "0")],
        r"--model\.num_topics must be at least 1",
    ),
    "loss weight above 1": (
        lambda i: ["fit", *i.base("--model.init_args.alpha", "1.5")],
        r"--model\.alpha must be in \[0, 1\]",
    ),
    "budget of 0 steps": (lambda i: ["fit", *i.base("--budget.steps", "0")], r"--budget\.steps must be at least 1"),
    "two budgets": (
        lambda i: ["fit", *i.base("--budget.epochs", "1", "--budget.steps", "5")],
        r"A budget is one of --budget\.epochs, --budget\.steps or --budget\.documents; got \['epochs', 'steps'\]",
    ),
    "not a number": (
        lambda i: ["fit", *i.base("--data.batch_size", "abc")],
        r"data\.batch_size.*abc.*Fix the option \(python cli\.py fit --help",
    ),
    "unknown option": (
        lambda i: ["fit", *i.base("--data.batchsize", "8")],
        r"data\.batchsize.*Fix the option \(python cli\.py fit --help",
    ),
    "partition beyond the encoder's positions": (
        lambda i: ["fit", *i.base("--data.max_length", "1024", "--data.num_partitions", "1")],
        r"Partitions of 1024 tokens .* exceed the 512 positions .*raise --data\.num_partitions",
    ),
    "partitions of a few tokens": (
        lambda i: ["fit", *i.base("--data.max_length", "32", "--data.num_partitions", "8")],
        r"partitions of fewer than 8 tokens; lower --data\.num_partitions",
    ),
    # config files
    "config not YAML": (
        lambda i: ["fit", *i.base("--config", str(i.file("bad.yaml", "data:\n  dataset: [r8\n")))],
        r"bad\.yaml is not valid YAML at line \d+.*Fix that line",
    ),
    "class that does not exist": (
        lambda i: [
            "fit",
            *i.base("--config", str(i.file("cls.yaml", "model:\n  class_path: lightning_modules.Nope\n"))),
        ],
        r"class_path 'lightning_modules\.Nope' cannot be imported\. Check the spelling; the tasks are",
    ),
    # data, every format
    "dataset folder missing": (
        lambda i: ["fit", *i.base(corpus=i.tmp / "nowhere")],
        r"Unknown dataset .* use one of r8, .* or a folder with train/test files",
    ),
    "folder without a test file": (
        lambda i: ["fit", *i.base(corpus=i.folder({"train.jsonl": i.jsonl(i.train_rows())}, test=False))],
        r"needs train\.<ext> and test\.<ext>",
    ),
    "named dataset not on disk": (
        lambda i: [
            "fit",
            *i.base("--data.data_dir", str(i.tmp / "empty-root"), "--data.download", "false", corpus="r8"),
        ],
        r"Dataset 'r8' .* is not in .*empty-root/r8: missing r8-train-all-terms\.txt.* Place r8-train-all-terms\.txt",
    ),
    "jsonl row not JSON": (
        lambda i: ["fit", *i.base(corpus=i.folder({"train.jsonl": with_row(i, 4, '{"id": "x", "text": ')}))],
        r"train\.jsonl, line 5: not valid JSON \(.*\); fix or remove that line",
    ),
    "jsonl row without label": (
        lambda i: ["fit", *i.base(corpus=i.folder({"train.jsonl": with_row(i, 2, {"id": "x", "text": "t"})}))],
        r"train\.jsonl, line 3: no label\. .*--data\.drop_unlabelled true",
    ),
    "jsonl row without text": (
        lambda i: ["fit", *i.base(corpus=i.folder({"train.jsonl": with_row(i, 6, {"id": "x", "label": "sport"})}))],
        r"train\.jsonl, line 7: no field 'text'; set data\.file_format\.text_fields",
    ),
    "misspelt label field": (
        lambda i: [
            "fit",
            *i.base(
                "--data.file_format.label_field", "lable", corpus=i.folder({"train.jsonl": i.jsonl(i.train_rows())})
            ),
        ],
        r"train\.jsonl, line 1: no label\. Fill in field 'lable' or set data\.file_format\.label_field",
    ),
    "gzip file torn": (
        lambda i: [
            "fit",
            *i.base(corpus=i.folder({"train.jsonl.gz": gzip.compress(b'{"a": 1}\n' * 50)[:12] + b"torn"})),
        ],
        r"train\.jsonl\.gz is not a valid gzip file .*replace it with an intact copy",
    ),
    "csv row with a column too many": (
        lambda i: [
            "fit",
            *i.base(corpus=i.folder({"train.csv": csv_rows("label,text", [*three_class_csv(i), "sport,a,b"])})),
        ],
        r"train\.csv, row 31: expected 2 columns .*quote a field that holds the delimiter",
    ),
    "csv without the label column": (
        lambda i: ["fit", *i.base(corpus=i.folder({"train.csv": csv_rows("category,text", three_class_csv(i))}))],
        r"train\.csv: no column 'label' .*set data\.file_format\.text_fields / data\.file_format\.label_field",
    ),
    "tsv row with a column missing": (
        lambda i: ["fit", *i.base(corpus=i.folder({"train.tsv": csv_rows("label\ttext", ["sport\tgoal", "finance"])}))],
        r"train\.tsv, row 2: expected 2 columns .*fix the row",
    ),
    "txt line without a tab": (
        lambda i: ["fit", *i.base(corpus=i.folder({"train.txt": "sport\tgoal match\nfinance bank loan\n"}))],
        r"train\.txt, line 2: expected 'label<TAB>text'",
    ),
    "empty training file": (
        lambda i: ["fit", *i.base(corpus=i.folder({"train.jsonl": "\n\n"}))],
        r"train\.jsonl holds no documents .*check the file",
    ),
    "one class only": (single_class, r"has only one label \('sport'\); a classifier needs at least two"),
    "test label never seen in train": (
        lambda i: [
            "fit",
            *i.base(
                corpus=i.folder(
                    {
                        "train.jsonl": i.jsonl(i.train_rows()),
                        "test.jsonl": with_row(i, 0, {"id": "t", "label": "chess", "text": "pawn"}),
                    }
                )
            ),
        ],
        r"labels never seen in train: chess\. .*remove those documents or add training examples",
    ),
    "duplicate ids": (
        lambda i: ["fit", *i.base(corpus=i.folder({"train.jsonl": with_row(i, 1, i.train_rows()[0])}))],
        r"repeats document id .*make the ids unique",
    ),
    "vocabulary emptied by min_freq": (
        lambda i: ["fit", *i.base("--data.min_freq", "100000")],
        r"topic-model vocabulary .* is empty.*Lower --data\.min_freq",
    ),
    "encoder folder missing": (
        lambda i: ["fit", *i.base("--data.tokenizer", str(i.tmp / "no-encoder"))],
        r"Cannot load '.*no-encoder': no such folder.*Give the path of a folder saved with save_pretrained\(\)",
    ),
    # checkpoints
    "test without a checkpoint": (lambda i: ["test", *i.base()], r"test needs a trained model: pass --ckpt_path"),
    "checkpoint path missing": (
        lambda i: ["predict", *i.base("--ckpt_path", str(i.tmp / "gone.ckpt"))],
        r"gone\.ckpt is not a file; pass the path of a \.ckpt file",
    ),
    "truncated checkpoint": (
        lambda i: ["test", *i.base("--ckpt_path", truncated_checkpoint(i))],
        r"truncated\.ckpt cannot be read as a checkpoint .*Use another checkpoint of the run",
    ),
    "garbage checkpoint": (
        lambda i: ["validate", *i.base("--ckpt_path", str(i.file("junk.ckpt", b"\x00junk" * 10)))],
        r"junk\.ckpt cannot be read as a checkpoint",
    ),
    "plain state dict": (
        lambda i: ["predict", *i.base("--ckpt_path", checkpoint_file(i, {"weight": torch.zeros(2)}))],
        r"is a PyTorch file but not a Lightning checkpoint of this tool",
    ),
    "checkpoint of another task": (
        lambda i: [
            "test",
            *i.base(
                "--ckpt_path",
                checkpoint_file(
                    i, {"state_dict": {}, "hyper_parameters": {"_class_path": "lightning_modules.NVDMTask"}}
                ),
            ),
        ],
        r"holds a lightning_modules\.NVDMTask, but the config builds a lightning_modules\.TopicBertTask",
    ),
    "checkpoint of other labels": (
        other_labels,
        r"test\.jsonl has labels the model was not trained on: tennis\. Remove those documents, or fit a model",
    ),
    "resume when every last.ckpt is torn": (
        resume_from_corrupt_last,
        r"Every last\.ckpt of this job is unreadable .*leaving out --ckpt_path last",
    ),
    # files and folders
    "predict file missing": (
        lambda i: predict_file(i, "new.jsonl", None),
        r"new\.jsonl does not exist; check the path given to --data\.predict_file",
    ),
    "predict file not JSON": (
        lambda i: predict_file(i, "new.jsonl", '{"text": \n'),
        r"new\.jsonl, line 1: not valid JSON .*fix or remove that line",
    ),
    "predict file of unknown type": (
        lambda i: predict_file(i, "new.docx", "x"),
        r"new\.docx: unknown file type; use one of",
    ),
    "run folder under a file": (
        lambda i: ["fit", *i.base("--run.root", under_a_file(i, "runs"))],
        r"a-file/runs.*(--run\.root)",
    ),
    "cache folder under a file": (
        lambda i: ["fit", *i.base("--data.cache_dir", under_a_file(i, "cache"))],
        r"a-file/cache.*(--data\.cache_dir|TOPICBERT_CACHE)",
    ),
}


@pytest.fixture(scope="module")
def trained(tiny_corpus_dir, tiny_encoder_dir, tmp_path_factory) -> Path:
    """One checkpoint of the tiny corpus, for the cases that need a real one."""
    home = tmp_path_factory.mktemp("trained")
    previous = os.getcwd()
    os.chdir(home)
    try:
        args = tiny_args(tiny_corpus_dir, tiny_encoder_dir)
        cli = main(["fit", *args, "--trainer.max_epochs", "1", "--test_after_fit", "false", "--wandb", "false"])
    finally:
        os.chdir(previous)
    return home / cli.trainer.checkpoint_callback.best_model_path


def every_file(*roots: Path) -> set[Path]:
    """Every file and folder under the roots, except complete cache files: a cache entry is keyed by
    what it holds, written atomically, and saves the next run the work, so it may stay."""
    return {p for root in roots if root.exists() for p in root.rglob("*") if not is_cache_entry(p)}


def is_cache_entry(path: Path) -> bool:
    """Views (``.npz``) and a checkpoint's encoder files (``encoders/``, renamed into place whole)."""
    return "cache" in path.parts and (path.is_dir() or path.suffix == ".npz" or "encoders" in path.parts)


def test_there_are_at_least_30_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", list(CASES))
def test_a_user_error_is_one_line_exit_2_and_leaves_nothing(
    case, trained, tiny_corpus_dir, tiny_encoder_dir, tmp_path, monkeypatch, capsys
):
    build, message = CASES[case]
    monkeypatch.setenv("TOPICBERT_CACHE", str(tmp_path / "cache"))
    args = build(Inputs(tmp_path, tiny_corpus_dir, tiny_encoder_dir, trained))
    before = every_file(tmp_path, tiny_corpus_dir)
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", [str(ROOT / "cli.py"), *args])
    with pytest.raises(SystemExit) as done:
        main()
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert done.value.code == 2
    assert len(errors) == 1 and err.strip().endswith(errors[0]) and "Traceback" not in err, err[-500:]
    assert re.search(message, errors[0]), errors[0]
    assert every_file(tmp_path, tiny_corpus_dir) == before
