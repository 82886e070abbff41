"""``python cli.py export --ckpt_path CKPT --out DIR``: a checkpoint as a Hugging Face-style folder.

The folder holds ``model.safetensors`` (the task's weights), ``config.json`` (the task class and
settings, labels, decision thresholds, N and p, and where the vocabulary and vectorizer are),
``vocabulary.json`` and ``tfidf.json`` where the model reads them (and, for the tf-idf LogReg
student, ``sklearn_pipeline.joblib``, which needs no torch; for KimCNN and BiLSTM,
``student.torchscript.pt``, which needs no code of this project), ``encoder/`` (the encoder's
configuration and tokenizer files) and a model card ``README.md`` with the run's dev and test
figures, its budget and its measured cost, with the Hub's ``co2_eq_emissions`` metadata. It is
written beside ``DIR`` and renamed into place whole.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from datamodules.assets import InferenceAssets, tfidf_from_state, write_files
from datamodules.formats import DataError
from lightning_modules.base import BaseTask, read_checkpoint, task_class
from lightning_modules.student_tasks import TokenStudent
from serving.students import save_token_student
from utils.files import file_sha256
from utils.lineage import artifact_name, checkpoint_reference, log_output, record_inputs, result_metadata, run_results
from utils.pretrained import WEIGHTS_IN_CHECKPOINT
from utils.wandb_mode import Mode, resolve_wandb_mode

FORMAT = "topicbert-lightning/1"


def init_settings(checkpoint: dict) -> tuple[str, dict[str, Any]]:
    """(task class path, the arguments its ``__init__`` takes), from the checkpoint's hyperparameters."""
    hparams = dict(checkpoint.get("hyper_parameters", {}))
    class_path = hparams.pop("_class_path", None) or f"lightning_modules.{checkpoint.get('task')}"
    cls = task_class(class_path)
    accepted = cls.init_parameters() if issubclass(cls, BaseTask) else set(hparams)
    return class_path, {k: v for k, v in hparams.items() if k in accepted}


def export(ckpt_path: str | Path, out: str | Path) -> Path:
    """Write the export folder of a checkpoint (see the module docstring); refuses to overwrite."""
    ckpt_path, out = Path(ckpt_path), Path(out)
    if out.exists():
        raise DataError(f"{out} already exists; pass another --out, or remove it first.")
    checkpoint = read_checkpoint(ckpt_path)
    assets = InferenceAssets.from_checkpoint(checkpoint)
    if assets is None:
        raise DataError(
            f"{ckpt_path} predates self-contained checkpoints (it holds no labels, vocabulary or tokenizer); fit "
            "again with this version to get a checkpoint that exports."
        )
    class_path, settings = init_settings(checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        write_folder(staging, checkpoint, assets, class_path, settings, run_results(ckpt_path))
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def write_folder(folder: Path, checkpoint: dict, assets: InferenceAssets, class_path: str, settings, results) -> None:
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in checkpoint["state_dict"].items() if isinstance(v, torch.Tensor)}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config: dict[str, Any] = {
        "format": FORMAT,
        "task": class_path,
        "settings": settings,
        "label_names": assets.label_names,
        "multi_label": assets.multi_label,
        "decision_thresholds": checkpoint.get("decision_thresholds"),
        "data_settings": assets.settings,
    }
    if assets.vocabulary is not None:
        (folder / "vocabulary.json").write_text(json.dumps(assets.vocabulary))
        config["vocabulary"] = "vocabulary.json"
        config["stopwords"] = assets.stopwords
    if assets.tfidf is not None:
        (folder / "tfidf.json").write_text(json.dumps(assets.tfidf))
        config["tfidf"] = "tfidf.json"
    if assets.encoder_files is not None:
        write_files(folder / "encoder", assets.encoder_files)
        (folder / "encoder" / WEIGHTS_IN_CHECKPOINT).write_text("The encoder's weights are in ../model.safetensors.\n")
        config["encoder"] = "encoder"
    task = task_class(class_path)
    if issubclass(task, TokenStudent):  # the cheap students serve without this project's code
        student = task(**{**settings, "encoder": str(folder / "encoder")})
        student.load_state_dict(state)
        config["torchscript"] = save_token_student(student, folder)
    if assets.tfidf is not None and "model.linear.weight" in state:  # the tf-idf LogReg student
        config["sklearn_pipeline"] = write_sklearn_pipeline(folder, assets, state, multi_label=assets.multi_label)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "README.md").write_text(model_card(config, results))


def write_sklearn_pipeline(folder: Path, assets: InferenceAssets, state: dict, multi_label: bool) -> str:
    """The student's vectorizer and (averaged, where it keeps an average) weights as a scikit-learn
    pipeline that runs without torch (``serving.sklearn_pipeline``)."""
    import joblib

    from serving.sklearn_pipeline import FILENAME, logreg_pipeline

    assert assets.tfidf is not None
    prefix = "ema.module." if "ema.module.linear.weight" in state else "model."  # what evaluation runs
    weight, bias = (state[f"{prefix}linear.{k}"].float().numpy() for k in ("weight", "bias"))
    joblib.dump(logreg_pipeline(tfidf_from_state(assets.tfidf), weight, bias, multi_label), folder / FILENAME)
    return FILENAME


def model_card(config: dict, results: dict) -> str:
    """A Hub model card: YAML metadata (CO2 as the Hub records it) and the run's figures."""
    setup = results.get("cost_setup") or {}
    lines = ["---", "library_name: topicbert-lightning", "pipeline_tag: text-classification", "tags:"]
    lines += ["- text-classification", f"- {results.get('model', config['task'].rsplit('.', 1)[-1])}"]
    if results.get("co2_measured_g") is not None:
        lines += [
            "co2_eq_emissions:",
            f"  emissions: {results['co2_measured_g']:.6g}",
            "  source: codecarbon",
            "  training_type: fine-tuning",
            f"  geographical_location: {setup.get('country_iso_code', 'unknown')}",
            f"  hardware_used: {results.get('hardware', 'unknown')}",
        ]
    lines += ["---", "", f"# {results.get('model', 'Document classifier')} on {results.get('dataset', 'its data')}", ""]
    lines += [
        f"Task `{config['task']}`, {len(config['label_names'])} labels"
        f"{' (multi-label)' if config['multi_label'] else ''}, N = {config['data_settings'].get('max_length')}, "
        f"p = {config['data_settings'].get('num_partitions')}.",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    figures = {
        "dev macro-F1 (best)": "best_val_macro_f1",
        "test macro-F1": "test_macro_f1",
        "test micro-F1": "test_micro_f1",
        "test accuracy": "test_accuracy",
        "budget": "budget",
        "epochs": "epochs",
        "optimizer steps": "optimizer_steps",
        "documents seen": "documents_seen",
        "training time (s)": "time_total_s",
        "time per epoch (s)": "time_epoch_mean_s",
        "peak memory (MB)": "peak_rss_mb",
        "energy (kWh)": "energy_kwh",
        "CO2 (g)": "co2_measured_g",
        "hardware": "hardware",
    }
    for name, key in figures.items():
        value = results.get(key)
        if value is not None:
            lines.append(f"| {name} | {value:.6g} |" if isinstance(value, float) else f"| {name} | {value} |")
    if not results:
        lines.append("| figures | the checkpoint's run folder held no results.json |")
    lines += [
        "",
        "```python",
        "from serving import DocumentClassifier",
        "",
        'model = DocumentClassifier.from_pretrained("path/to/this/folder")',
        'model.predict(["a document to classify"])',
        "```",
        "",
    ]
    return "\n".join(lines)


def log_export(folder: Path, ckpt_path: str | Path, mode: Mode, project: str) -> str | None:
    """The export folder as a W&B ``model`` artifact of a run (job type ``export``) that uses the
    checkpoint's artifact (``utils.lineage``); returns where the run is, None when W&B is off."""
    resolved, reason = resolve_wandb_mode(mode)
    if resolved == "disabled":
        return None
    import wandb

    results = run_results(ckpt_path)
    config = json.loads((folder / "config.json").read_text())
    label = results.get("model") or config["task"].rsplit(".", 1)[-1]
    checkpoint = checkpoint_reference(ckpt_path)
    run = wandb.init(
        project=project,
        job_type="export",
        name=f"export-{folder.name}",
        mode=resolved,  # type: ignore[arg-type]  # resolve_wandb_mode gives online, offline or disabled
        dir=str(folder.resolve().parent),  # absolute: see AutoWandbLogger
        settings=wandb.Settings(silent=True),
    )
    try:
        if checkpoint:
            record_inputs(run, {"checkpoint": checkpoint})
        metadata = result_metadata(results) | {
            "checkpoint_artifact": checkpoint,
            "checkpoint_sha256": file_sha256(ckpt_path),
        }
        log_output(run, folder, artifact_name("export", label, results.get("dataset", "")), "model", metadata)
        where = (
            run.url
            if resolved == "online"
            else f"offline ({reason}) in {Path(run.dir).parent}; upload it with wandb sync"
        )
    finally:
        run.finish()
    return where


def main(args: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="cli.py export", description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint written by fit")
    parser.add_argument("--out", required=True, help="the folder to write (must not exist)")
    parser.add_argument(
        "--wandb_mode",
        default="auto",
        choices=["auto", "online", "offline", "disabled"],
        help="log the folder as a W&B artifact (auto: online when possible, else offline; $WANDB_MODE wins)",
    )
    parser.add_argument("--wandb_project", default="topicbert", help="W&B project")
    parsed = parser.parse_args(args)
    folder = export(parsed.ckpt_path, parsed.out)
    print(f"Exported {parsed.ckpt_path} to {folder}")
    where = log_export(folder, parsed.ckpt_path, parsed.wandb_mode, parsed.wandb_project)
    if where:
        print(f"W&B: the folder is an artifact of run export-{folder.name}, {where}")
    return folder
