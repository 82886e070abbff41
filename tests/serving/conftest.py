"""Tiny fitted and exported models shared by the serving tests: each task is fitted once per session."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from cli import main
from tests.conftest import task_args

LONG = " ".join(["goal match team season"] * 40)  # far beyond N = 32 tokens


def fit_and_export(task: str, home, tiny_corpus_dir, tiny_encoder_dir):
    """A fitted tiny model (its corpus and encoder copies removed after export), its export folder,
    and the CLI's predictions for some texts, made before the removal."""
    corpus, encoder = home / "corpus", home / "encoder"
    shutil.copytree(tiny_corpus_dir, corpus)
    shutil.copytree(tiny_encoder_dir, encoder)
    previous = os.getcwd()
    os.chdir(home)
    try:
        fitted = main(["fit", *task_args(task, corpus, encoder)])
        best = home / fitted.trainer.checkpoint_callback.best_model_path
        texts = [json.loads(line)["text"] for line in (corpus / "test.jsonl").read_text().splitlines()[:7]]
        texts += ["", LONG]
        (home / "texts.txt").write_text("".join(t + "\n" for t in texts))
        out = home / "cli.jsonl"
        main(
            [
                *("predict", "--ckpt_path", str(best), "--data.predict_file", str(home / "texts.txt")),
                *("--data.predict_format", "lines", "--predictions.output_path", str(out)),
            ]
        )
        folder = main(["export", "--ckpt_path", str(best), "--out", str(home / "exported")])
    finally:
        os.chdir(previous)
    shutil.rmtree(corpus)
    shutil.rmtree(encoder)
    cli_rows = [json.loads(line) for line in out.read_text().splitlines()]
    return task, folder, texts, cli_rows, json.loads((best.parent.parent / "results.json").read_text())


@pytest.fixture(scope="session")
def exports(tiny_corpus_dir, tiny_encoder_dir, tmp_path_factory):
    """``exports(task)``: (task, export folder, texts, the CLI's records for them, results.json)."""
    made: dict[str, tuple] = {}

    def get(task: str):
        if task not in made:
            home = tmp_path_factory.mktemp(f"export-{task}")
            made[task] = fit_and_export(task, home, tiny_corpus_dir, tiny_encoder_dir)
        return made[task]

    return get
