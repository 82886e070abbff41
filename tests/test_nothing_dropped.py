"""Nothing is dropped or changed silently: every empty, undecodable or cut document is counted in
results.json or the predictions summary, and a predictions file has one line per input row."""

from __future__ import annotations

import io
import json
import os
import random
import sys

import pytest

from cli import main
from scaffold.errors import UsageError
from tests.conftest import make_split, tiny_args, write_jsonl

BAD_UTF8 = b'{"id": "bad-bytes", "label": "sport", "text": "goal match \xff\xfe team"}\n'


@pytest.fixture(scope="module")
def flawed(tmp_path_factory):
    """A corpus with 2 empty training documents and 1 line of invalid UTF-8 in test, fitted once."""
    root = tmp_path_factory.mktemp("flawed")
    rng = random.Random(3)
    train = make_split(rng, 60, max_len=60)
    train[4]["text"] = ""
    train[9]["text"] = "   \n "
    folder = root / "corpus"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "test.jsonl", make_split(rng, 20, max_len=60))
    with open(folder / "test.jsonl", "ab") as f:
        f.write(BAD_UTF8)
    new = make_split(rng, 6, max_len=60)
    new[2]["text"] = ""
    write_jsonl(root / "new.jsonl", new)
    return root, folder, new


def test_dropped_repaired_and_cut_documents_are_in_results_json(flawed, tiny_encoder_dir, monkeypatch):
    root, folder, _ = flawed
    monkeypatch.chdir(root)
    cli = main(["fit", *tiny_args(folder, tiny_encoder_dir), "--trainer.max_epochs", "1"])
    results = json.loads((root / cli.trainer.log_dir / "results.json").read_text())
    report = results["data_report"]
    assert report["train"]["dropped_empty"] == 2  # the train file's count: dev was carved from it
    assert report["train"]["documents"] + report["dev"]["documents"] == 58
    assert report["test"] == report["test"] | {"documents": 21, "dropped_empty": 0, "replaced_invalid_utf8": 1}
    lengths = cli.datamodule.views.split("test").tokens.lengths()
    content = 2 * (16 - 2)  # p partitions of x = 32 / 2 tokens, less [CLS] and [SEP]
    assert report["test"]["cut_to_max_length"] == int((lengths > content).sum()) > 0
    assert report["test"]["tokens_cut"] == int((lengths - content).clip(0).sum())


def test_predictions_have_one_line_per_input_row_in_input_order(flawed, tiny_encoder_dir, monkeypatch, capsys):
    root, folder, new = flawed
    monkeypatch.chdir(root)
    args = [*tiny_args(folder, tiny_encoder_dir), "--trainer.max_epochs", "1", "--run.name", "predicting"]
    fitted = main(["fit", *args, "--test_after_fit", "false"])
    best = os.path.abspath(fitted.trainer.checkpoint_callback.best_model_path)
    out = root / "new.predictions.jsonl"
    main(
        [
            *("predict", *args, "--ckpt_path", best),
            *("--data.predict_file", str(root / "new.jsonl"), "--predictions.output_path", str(out)),
        ]
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [d["id"] for d in new]
    assert rows[2] == {"id": new[2]["id"], "skipped": "empty document"}
    assert all("label" in r for i, r in enumerate(rows) if i != 2)
    summary = json.loads((root / "new.predictions.summary.json").read_text())
    cut = sum(1 for r in rows if r.get("tokens_cut"))
    assert summary | {"input_documents": 6, "predicted": 5, "skipped": {"empty document": 1}} == summary
    assert summary["dropped_empty"] == 1 and summary["cut_to_max_length"] == cut
    assert "Predictions for 5 of 6 documents" in capsys.readouterr().out

    lines = "".join(f"{d['text']}\n" for d in new)  # plain text, one document per line (the third blank)
    (root / "new.txt").write_text(lines)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(lines.encode())))
    for source in (["-"], [str(root / "new.txt"), "--data.predict_format", "lines"]):
        out = root / "lines.jsonl"
        main(
            [
                "predict",
                *args,
                "--ckpt_path",
                best,
                "--data.predict_file",
                *source,
                "--predictions.output_path",
                str(out),
            ]
        )
        plain = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["id"] for r in plain] == [f"line-{n}" for n in range(1, 7)] and plain[2][
            "skipped"
        ] == "empty document"
        assert [r["probabilities"] for r in plain if "label" in r] == [r["probabilities"] for r in rows if "label" in r]


@pytest.mark.parametrize("subcommand", ["test", "predict", "validate"])
def test_scoring_without_a_checkpoint_is_refused(subcommand, tiny_corpus_dir, tiny_encoder_dir, tmp_path):
    with pytest.raises(UsageError, match=rf"{subcommand} needs a trained model: pass --ckpt_path"):
        main([subcommand, *tiny_args(tiny_corpus_dir, tiny_encoder_dir)])
    assert not (tmp_path / "runs").exists()
