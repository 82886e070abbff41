"""Baselines that put the students in context, written as ``results.json`` runs for the report.

    python -m reports.baselines --dataset r8 --nvdm_checkpoint runs/nvdm-r8/version_0/checkpoints/best.ckpt

- ``tfidf-lr`` / ``tfidf-svm``: scikit-learn logistic regression and linear SVM on tf-idf unigrams
  and bigrams (the same view the logistic-regression student reads).
- ``bert-avg``: the frozen encoder's token vectors, mean-pooled, then logistic regression.
- ``bert-avg-dtr``: the same joined with the NVDM posterior mean (the document-topic representation).

Each classifier's regularisation C is chosen on the dev split by macro-F1; on multi-label data each
label's decision threshold is tuned on dev too, as the models' are.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from jsonargparse import CLI
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from tqdm.auto import tqdm

from datamodules import DocumentDataModule
from lightning_modules.metrics import classification_metrics, metric_inputs
from lightning_modules.thresholds import ThresholdTuning, tune_thresholds
from lightning_modules.topicbert_task import load_nvdm_weights
from models.nvdm import NVDM
from models.topicbert import load_encoder
from utils.files import atomic_write
from utils.hardware import machine_id
from utils.predictions import FILENAME as PREDICTIONS_FILENAME
from utils.predictions import DocumentPredictions

if TYPE_CHECKING:
    import scipy.sparse as sp

log = logging.getLogger(__name__)
EDGE_STEPS = 2  # how far past its edge the C grid may grow
Baseline = Literal["tfidf-lr", "tfidf-svm", "bert-avg", "bert-avg-dtr"]
LABELS = {
    "tfidf-lr": "LR (tf-idf)",
    "tfidf-svm": "SVM (tf-idf)",
    "bert-avg": "BERT-Avg",
    "bert-avg-dtr": "BERT-Avg+DTR",
}


def scores(dm: DocumentDataModule, split: str, predicted: np.ndarray, prefix: str) -> dict[str, float]:
    """macro-F1, micro-F1 and accuracy with the same torchmetrics as every other model."""
    targets = torch.from_numpy(dm.views.split(split).labels)
    probs = torch.from_numpy(predicted.astype(np.float32))
    metrics = classification_metrics(dm.num_labels, dm.multi_label, prefix)
    return {k: float(v) for k, v in metrics(*metric_inputs(probs, targets, dm.multi_label)).items()}


def label_scores(classifier, features) -> np.ndarray:
    """Per-label scores in [0, 1] for a multi-label classifier: logistic regression's probabilities;
    the SVM's margins mapped so that its margin band [-1, 1] spans [0, 1] (0.5 is its own boundary).
    A sigmoid would squeeze the margins into about 0.27 to 0.73, so the threshold grid's low end
    would mean "every document": on Reuters that gave rare labels thresholds that cost 0.6 micro-F1."""
    if hasattr(classifier, "predict_proba"):
        return classifier.predict_proba(features)
    return np.clip((classifier.decision_function(features) + 1.0) / 2.0, 0.0, 1.0)


def decisions(classifier, features, dm: DocumentDataModule, thresholds: np.ndarray | None) -> np.ndarray:
    """Hard predictions as a documents x labels matrix (probability-like input for the metrics): each
    label's score against its threshold (multi-label), or the predicted class (single-label)."""
    if dm.multi_label:
        assert thresholds is not None  # fit_on_dev gives every multi-label classifier its thresholds
        return (label_scores(classifier, features) >= thresholds).astype(np.float32)
    predicted = classifier.predict(features)
    matrix = np.zeros((len(predicted), dm.num_labels), dtype=np.float32)
    matrix[np.arange(len(predicted)), predicted] = 1.0
    return matrix


@dataclass
class DevChoice:
    """A classifier fitted on train with the C (and, multi-label, the thresholds) dev chose."""

    classifier: object
    c: float
    dev_macro_f1: float
    thresholds: np.ndarray | None
    tried: list[float] = field(default_factory=list)  # every C fitted, in order


def fit_on_dev(
    make,
    features: dict,
    dm: DocumentDataModule,
    grid: list[float],
    tuning: ThresholdTuning,
    edge_steps: int = EDGE_STEPS,
) -> DevChoice:
    """Train one classifier per C on train and keep the best by dev macro-F1, multi-label ones at
    thresholds tuned on dev as the models' are (``tuning``). While the best C is the grid's edge, the
    grid grows past it tenfold (at most ``edge_steps`` times): a choice at the edge is not yet one."""
    labels = dm.views.split("train").labels
    y = labels.astype(int) if dm.multi_label else labels.argmax(1)
    dev_gold = torch.from_numpy(dm.views.split("dev").labels)
    tried: list[DevChoice] = []

    def fit(c: float) -> None:
        model = make(c)
        model = OneVsRestClassifier(model) if dm.multi_label else model
        model.fit(features["train"], y)
        thresholds = None
        if dm.multi_label:
            dev_scores = torch.from_numpy(label_scores(model, features["dev"]).astype(np.float32))
            thresholds = tune_thresholds(dev_scores, dev_gold, tuning).numpy()
        dev_f1 = scores(dm, "dev", decisions(model, features["dev"], dm, thresholds), "val_")["val_macro_f1"]
        tried.append(DevChoice(model, c, dev_f1, thresholds))

    for c in grid:
        fit(c)
    for _ in range(edge_steps):
        best = max(tried, key=lambda t: t.dev_macro_f1)  # the first of equals
        cs = [t.c for t in tried]
        if best.c == max(cs):
            fit(best.c * 10)
        elif best.c == min(cs):
            fit(best.c / 10)
        else:
            break
    chosen = max(tried, key=lambda t: t.dev_macro_f1)
    chosen.tried = [t.c for t in tried]
    return chosen


def save_test_predictions(dm: DocumentDataModule, predicted: np.ndarray, path: Path) -> None:
    """The per-document decisions the report's paired intervals resample."""
    test = dm.views.split("test")
    DocumentPredictions(
        ids=list(test.documents.ids),
        gold=test.labels > 0.5,
        predicted=predicted > 0.5,
        label_names=list(dm.label_names),
        multi_label=bool(dm.multi_label),
    ).save(path)


@torch.inference_mode()
def mean_pooled(encoder, dm: DocumentDataModule, split: str, batch_size: int) -> np.ndarray:
    """Mean of the frozen encoder's last hidden states over each document's first N tokens."""
    tokens = dm.views.split(split).tokens
    assert tokens is not None  # the baselines' data module always has the encoder's tokenizer
    special = dm.views.special_tokens
    content = dm.max_length - len(special)
    docs = [np.concatenate([special.prefix, tokens.document(i)[:content], special.suffix]) for i in range(len(tokens))]
    pooled = np.zeros((len(docs), encoder.config.hidden_size), dtype=np.float32)
    order = np.argsort([len(d) for d in docs])
    for start in tqdm(range(0, len(docs), batch_size), desc=f"encoding {split}", leave=False):
        rows = order[start : start + batch_size]
        width = max(len(docs[r]) for r in rows)
        ids = torch.full((len(rows), width), special.pad_id)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(docs[r])] = torch.from_numpy(docs[r].astype(np.int64))
            mask[i, : len(docs[r])] = 1
        hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled[rows] = ((hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)).numpy()
    return pooled


def topic_means(dm: DocumentDataModule, checkpoint: str, split: str) -> np.ndarray:
    """NVDM posterior means (the document-topic representation) of a pretrained topic model."""
    hparams = torch.load(checkpoint, map_location="cpu", weights_only=True)["hyper_parameters"]
    nvdm = NVDM(dm.vocab_size, hparams["num_topics"], hparams["hidden_size"], hparams["activation"]).eval()
    load_nvdm_weights(nvdm, checkpoint, {"vocab_size": dm.vocab_size})
    with torch.inference_mode():
        bow = dm.views.split(split).bow
        assert bow is not None  # the baselines' data module builds the bag of words (bow is on by default)
        return nvdm(torch.from_numpy(bow.toarray())).mean.numpy()


def features_for(
    name: Baseline, dm: DocumentDataModule, encoder: str, nvdm_checkpoint: str | None, batch_size: int
) -> dict[str, np.ndarray | sp.csr_matrix]:
    splits = ("train", "dev", "test")
    if name.startswith("tfidf"):
        return {s: dm.views.split(s).tfidf for s in splits}
    model = load_encoder(encoder).eval()
    pooled = {s: mean_pooled(model, dm, s, batch_size) for s in splits}
    if name == "bert-avg-dtr":
        if nvdm_checkpoint is None:
            raise SystemExit(
                "error: bert-avg-dtr needs --nvdm_checkpoint (python cli.py fit --config configs/nvdm.yaml)."
            )
        pooled = {s: np.hstack([pooled[s], topic_means(dm, nvdm_checkpoint, s)]) for s in splits}
    scaler = StandardScaler().fit(pooled["train"])
    return {s: scaler.transform(pooled[s]) for s in splits}


def baselines(
    dataset: str = "r8",
    data_dir: str | None = None,
    dev_size: int | float = 500,
    seed: int = 42,
    min_freq: int = 10,
    encoder: str = "sentence-transformers/all-MiniLM-L6-v2",
    max_length: int = 512,
    nvdm_checkpoint: str | None = None,
    models: list[Baseline] = ["tfidf-lr", "tfidf-svm", "bert-avg", "bert-avg-dtr"],  # noqa: B006
    c_grid: list[float] = [0.01, 0.1, 1.0, 10.0, 100.0],  # noqa: B006
    threshold_tuning: ThresholdTuning = "per_class",
    batch_size: int = 64,
    out: str = "runs/baselines",
) -> list[dict]:
    """Fit each baseline, pick C on dev, score test, write ``<out>/<dataset>/<model>/results.json``.

    Args:
        dataset: dataset name or folder, as for ``--data.dataset``.
        data_dir: data root (default ``$TOPICBERT_DATA``).
        dev_size: dev documents carved from train (as for the models, so the splits match).
        seed: seed of the dev split.
        min_freq: Fmin of the topic-model vocabulary (must match the NVDM checkpoint's).
        encoder: frozen encoder of the BERT-Avg baselines.
        max_length: tokens per document the encoder reads.
        nvdm_checkpoint: pretrained NVDM for ``bert-avg-dtr``.
        models: which baselines to run.
        c_grid: regularisation values tried on dev (grown past its edge while dev picks the edge).
        threshold_tuning: multi-label thresholds tuned on dev: ``per_class`` as the Reuters models,
            ``global`` or ``none`` (each label's 0.5).
        batch_size: encoder batch size.
        out: output folder.
    """
    dm = DocumentDataModule(
        dataset=dataset,
        data_dir=data_dir,
        tokenizer=encoder,
        max_length=max_length,
        dev_size=dev_size,
        seed=seed,
        min_freq=min_freq,
        tfidf=True,
    )
    makers = {
        "tfidf-svm": lambda c: LinearSVC(C=c),
        "tfidf-lr": lambda c: LogisticRegression(C=c, max_iter=2000),
        "bert-avg": lambda c: LogisticRegression(C=c, max_iter=2000),
        "bert-avg-dtr": lambda c: LogisticRegression(C=c, max_iter=2000),
    }
    written = []
    for name in models:
        start = time.perf_counter()
        features = features_for(name, dm, encoder, nvdm_checkpoint, batch_size)
        choice = fit_on_dev(makers[name], features, dm, c_grid, threshold_tuning)
        c, dev_f1 = choice.c, choice.dev_macro_f1
        folder = Path(out) / dm.corpus.name / name
        predicted = decisions(choice.classifier, features["test"], dm, choice.thresholds)
        save_test_predictions(dm, predicted, folder / PREDICTIONS_FILENAME)
        result = {
            "model": LABELS[name],
            "dataset": dm.corpus.name,
            "seed": seed,
            "status": "complete",
            "C": c,
            "best_val_macro_f1": dev_f1,
            "C_tried": choice.tried,
            **({"threshold_tuning": threshold_tuning} if dm.multi_label else {}),
            "dev_fingerprint": dm.fingerprint("dev"),
            "time_total_s": time.perf_counter() - start,
            "machine_ids": [machine_id()],
            **scores(dm, "test", predicted, "test_"),
            "test_predictions": PREDICTIONS_FILENAME,
            "encoder": encoder if name.startswith("bert") else None,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        path = folder / "results.json"
        with atomic_write(path) as f:
            json.dump(result, f, indent=2)
        written.append(result)
        print(
            f"{LABELS[name]:14s} C={c:<6g} dev macro-F1 {dev_f1:.4f}  test macro-F1 {result['test_macro_f1']:.4f}  "
            f"micro-F1 {result['test_micro_f1']:.4f}  ({result['time_total_s']:.0f} s) -> {path}"
        )
    return written


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    CLI(baselines)
