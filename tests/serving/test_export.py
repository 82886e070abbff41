"""Export a checkpoint, reload it with ``DocumentClassifier`` in a fresh process with no hub, no
data root and no encoder folder, and get what ``cli.py predict`` gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from cli import main
from datamodules.bow import english_stopwords
from datamodules.formats import DataError

RELOAD = """
import json, sys
from serving import DocumentClassifier
model = DocumentClassifier.from_pretrained(sys.argv[1])
texts = json.load(open(sys.argv[2]))
json.dump(model.predict(texts, batch_size=4), open(sys.argv[3], "w"))
"""


@pytest.fixture(
    scope="module", params=["topicbert", "logreg", "bilstm", pytest.param("kimcnn", marks=pytest.mark.slow)]
)
def exported(request, exports):
    return exports(request.param)


def test_the_folder_holds_weights_config_encoder_and_a_model_card(exported):
    task, folder, _, _, results = exported
    config = json.loads((folder / "config.json").read_text())
    assert (folder / "model.safetensors").is_file() and config["label_names"] == ["finance", "science", "sport"]
    partitions = 1 if task in ("kimcnn", "bilstm") else 2
    assert config["data_settings"]["max_length"] == 32 and config["data_settings"]["num_partitions"] == partitions
    if task == "logreg":
        assert "encoder" not in config and len(json.loads((folder / "tfidf.json").read_text())["terms"]) > 0
    else:
        assert (folder / "encoder" / "config.json").is_file() and (folder / "encoder" / "tokenizer.json").is_file()
    if task == "topicbert":
        assert len(json.loads((folder / config["vocabulary"]).read_text())) == config["settings"]["vocab_size"]
        assert config["stopwords"] == sorted(english_stopwords()[0])  # the list the vocabulary was built with
    card = (folder / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    co2 = meta["co2_eq_emissions"]
    assert co2["emissions"] == pytest.approx(results["co2_measured_g"], rel=1e-5)
    assert co2["source"] == "codecarbon" and co2["training_type"] == "fine-tuning"
    assert co2["hardware_used"] == results["hardware"] and co2["geographical_location"]
    assert f"| test macro-F1 | {results['test_macro_f1']:.6g} |" in card
    assert f"| dev macro-F1 (best) | {results['best_val_macro_f1']:.6g} |" in card
    assert f"| budget | {results['budget']} |" in card


def test_the_python_api_predicts_what_the_cli_predicts_from_the_folder_alone(exported, tmp_path):
    _, folder, texts, cli_rows, _ = exported
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    # no data root, no hub, and no NLTK stopwords: the folder's own list counts the words
    env = {k: v for k, v in os.environ.items() if k != "TOPICBERT_DATA"} | {"HF_HUB_OFFLINE": "1"}
    env["NLTK_DATA"] = str(tmp_path / "no-nltk")
    done = subprocess.run(
        [sys.executable, "-c", RELOAD, str(folder), str(tmp_path / "texts.json"), str(tmp_path / "api.json")],
        cwd=tmp_path,
        env=env,  # serving is imported from the installed project, as a user would
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    api = json.loads((tmp_path / "api.json").read_text())
    assert len(api) == len(texts) == len(cli_rows)
    assert api[7] == {"id": "7", "skipped": "empty document"} and cli_rows[7]["skipped"] == "empty document"
    for ours, theirs in zip(api, cli_rows, strict=True):
        if "skipped" in ours:
            continue
        assert ours.get("label") == theirs.get("label") and ours.get("topic") == theirs.get("topic")
        for name, p in ours["probabilities"].items():
            assert p == pytest.approx(theirs["probabilities"][name], abs=1e-5)
    assert api[8].get("tokens_cut", 0) == cli_rows[8].get("tokens_cut", 0)


def test_export_never_overwrites(exported, tmp_path):
    folder = exported[1]
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep")
    with pytest.raises(DataError, match="already exists; pass another --out"):
        main(["export", "--ckpt_path", str(tmp_path / "x.ckpt"), "--out", str(tmp_path / "taken")])
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep" and folder.is_dir()


NO_TORCH = """
import json, sys

class NoTorch:  # importing torch fails: the pipeline must not need it
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("torch is blocked")

sys.meta_path.insert(0, NoTorch())
import joblib
pipeline = joblib.load(sys.argv[1])
json.dump(pipeline.predict_proba(json.load(open(sys.argv[2]))).tolist(), open(sys.argv[3], "w"))
assert "torch" not in sys.modules
"""


def test_the_logreg_student_runs_as_a_scikit_learn_pipeline_without_torch(exported, tmp_path):
    task, folder, texts, cli_rows, _ = exported
    if task != "logreg":
        assert not (folder / "sklearn_pipeline.joblib").exists()
        return
    kept = [t for t in texts if t.strip()]
    (tmp_path / "texts.json").write_text(json.dumps(kept))
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_TORCH,
            str(folder / "sklearn_pipeline.joblib"),
            str(tmp_path / "texts.json"),
            str(tmp_path / "p.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    probs = json.loads((tmp_path / "p.json").read_text())
    expected = [r["probabilities"] for r in cli_rows if "skipped" not in r]
    labels = json.loads((folder / "config.json").read_text())["label_names"]
    assert len(probs) == len(expected)
    for row, want in zip(probs, expected, strict=True):
        assert row == pytest.approx([want[name] for name in labels], abs=1e-5)


WITHOUT_PROJECT = """
import json, sys

OURS = {"serving", "models", "datamodules", "lightning_modules", "callbacks", "scaffold", "utils", "cli"}

class Blocked:  # none of this project's packages may be imported
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in OURS:
            raise ImportError(name + " is blocked")

sys.meta_path.insert(0, Blocked())
import tokenizers, torch
folder, n = sys.argv[1], int(sys.argv[2])
tokenizer = tokenizers.Tokenizer.from_file(folder + "/encoder/tokenizer.json")
tokenizer.enable_truncation(n)
tokenizer.enable_padding()
encoded = tokenizer.encode_batch(json.load(open(sys.argv[3])))
ids = torch.tensor([e.ids for e in encoded])
mask = torch.tensor([e.attention_mask for e in encoded])
student = torch.jit.load(folder + "/student.torchscript.pt")
json.dump(student(ids, mask).tolist(), open(sys.argv[4], "w"))
"""


def test_token_students_run_as_torchscript_without_this_project(exported, tmp_path):
    task, folder, texts, cli_rows, _ = exported
    if task not in ("kimcnn", "bilstm"):
        assert not (folder / "student.torchscript.pt").exists()
        return
    kept = [t for t in texts if t.strip()]
    (tmp_path / "texts.json").write_text(json.dumps(kept))
    n = json.loads((folder / "config.json").read_text())["data_settings"]["max_length"]
    script = [sys.executable, "-c", WITHOUT_PROJECT, str(folder), str(n), str(tmp_path / "texts.json")]
    done = subprocess.run([*script, str(tmp_path / "p.json")], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    probs = json.loads((tmp_path / "p.json").read_text())
    labels = json.loads((folder / "config.json").read_text())["label_names"]
    expected = [r["probabilities"] for r in cli_rows if "skipped" not in r]
    for row, want in zip(probs, expected, strict=True):
        assert row == pytest.approx([want[name] for name in labels], abs=1e-5)
