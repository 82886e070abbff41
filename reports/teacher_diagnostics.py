"""How far a teacher's soft targets agree with the gold labels: training documents and augmented copies apart.

    python -m reports.teacher_diagnostics --logits runs/distill/r8-teacher-logits.npz --dataset r8 --dev_size 500

For the original training documents and, separately, their augmented copies (ids ``<id>#aug<k>``,
whose gold labels are their source's), per class and overall: documents, agreement of the
teacher's prediction with the gold labels, and the mean teacher probability of the gold label(s),
p(gold). Single-label files hold log-probabilities: the prediction is the argmax, p(gold) the
softmax at the gold label. Multi-label files hold log-odds: a label is predicted when its sigmoid
reaches 0.5, and a document's p(gold) is the mean over its gold labels. A class row covers the
documents with that gold label (agreement: the share whose prediction includes it; p(gold): its
mean probability); the overall row is the share of documents predicted exactly right.

Also prints the teacher's own dev macro-F1 as the file records it. Writes ``teacher_diagnostics.md``
and ``teacher_diagnostics.json`` beside the logits file, or in ``--out``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from jsonargparse import CLI

from callbacks.teacher_logits import checkpoint_dev_macro_f1
from datamodules import DocumentDataModule
from datamodules.formats import DataError
from datamodules.teacher import TeacherLogits
from utils.files import atomic_write, file_sha256

_COPY = re.compile(r"#aug\d+$")
SPLITS = {"original": "originals", "augmented": "copies"}
UNRECORDED = "unknown (file written before this was recorded)"


def is_copy(doc_id: str) -> bool:
    return _COPY.search(doc_id) is not None


def probabilities(saved: TeacherLogits) -> np.ndarray:
    """The teacher's probabilities: sigmoid of log-odds (multi-label), softmax of log-probabilities."""
    logits = saved.logits.astype(np.float64)
    if saved.multi_label:
        return 1.0 / (1.0 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def predictions(probs: np.ndarray, multi_label: bool) -> np.ndarray:
    """The teacher's labels as a 0/1 matrix: thresholded at 0.5 (multi-label) or the argmax."""
    if multi_label:
        return probs >= 0.5
    chosen = np.zeros(probs.shape, dtype=bool)
    chosen[np.arange(len(probs)), probs.argmax(axis=1)] = True
    return chosen


def check_labels(saved: TeacherLogits, dm: DocumentDataModule, path: str) -> None:
    if saved.label_names != dm.label_names or saved.multi_label != dm.multi_label:
        raise SystemExit(
            f"error: {path} holds logits for the labels {saved.label_names} (multi-label: {saved.multi_label}), "
            f"but {dm.dataset_name} has {dm.label_names} (multi-label: {dm.multi_label}); pass the --dataset the "
            "teacher was trained on."
        )


def gold_labels(saved: TeacherLogits, dm: DocumentDataModule, path: str) -> np.ndarray:
    """The multi-hot gold labels of every document of the file; a copy has its source's."""
    train = dm.documents("train")
    row = {doc_id: i for i, doc_id in enumerate(train.ids)}
    sources = [_COPY.sub("", doc_id) for doc_id in saved.ids]
    missing = [doc_id for doc_id, source in zip(saved.ids, sources, strict=True) if source not in row]
    if missing:
        raise SystemExit(
            f"error: {len(missing)} of the {len(saved.ids)} documents of {path} (e.g. {missing[0]!r}) are not "
            f"training documents of {dm.dataset_name} with dev_size={dm.hparams.dev_size}, seed={dm.seed}; pass "
            "the --dataset, --dev_size and --seed the teacher's predict used."
        )
    return dm.views.split("train").labels[[row[source] for source in sources]] > 0.5


def figures(gold: np.ndarray, predicted: np.ndarray, probs: np.ndarray) -> dict:
    """Documents, agreement and mean p(gold) of one group of documents (None where it is empty)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p_gold = (probs * gold).sum(axis=1) / gold.sum(axis=1)  # NaN for a document without gold labels
    agreement = (predicted == gold).all(axis=1)
    known = p_gold[~np.isnan(p_gold)]
    return {
        "documents": len(gold),
        "agreement": float(agreement.mean()) if len(gold) else None,
        "p_gold": float(known.mean()) if len(known) else None,
    }


def group_figures(gold: np.ndarray, predicted: np.ndarray, probs: np.ndarray, names: list[str]) -> dict:
    """Overall figures of a group and, per class, those of its documents with that gold label."""
    classes = {}
    for c, name in enumerate(names):
        rows = gold[:, c]
        classes[name] = figures(gold[rows][:, [c]], predicted[rows][:, [c]], probs[rows][:, [c]])
    return {**figures(gold, predicted, probs), "classes": classes}


def dev_score_of(checkpoint: str, teacher: dict, path: str) -> float | None:
    """The dev macro-F1 saved in the checkpoint that wrote the logits file (checked by its hash)."""
    if file_sha256(checkpoint) != teacher.get("checkpoint_sha256"):
        raise SystemExit(
            f"error: {checkpoint} is not the checkpoint that wrote {path} (its SHA-256 differs); pass the "
            f"checkpoint named in the file ({teacher.get('checkpoint')})."
        )
    return checkpoint_dev_macro_f1(checkpoint)


def dev_score_text(teacher: dict) -> str:
    if "dev_macro_f1" not in teacher:
        return UNRECORDED
    score = teacher["dev_macro_f1"]
    return "unknown (the checkpoint recorded no val_macro_f1)" if score is None else f"{score:.4f}"


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _seconds(value: float | None) -> str:
    return "an unrecorded time (a file from before labelling was timed)" if value is None else f"{value:.0f} s"


def to_markdown(report: dict) -> str:
    """The report as a markdown page: a header, then one table row per class and one overall."""
    teacher = report["teacher"]
    rule = "0.5 on each label's sigmoid" if report["multi_label"] else "argmax"
    documents = sum(split["documents"] for split in report["splits"].values())
    lines = [
        f"# Teacher diagnostics: {Path(report['logits']).name}",
        "",
        f"Teacher {teacher.get('model')} (checkpoint {teacher.get('checkpoint')}) on {report['dataset']} "
        f"(dev_size {report['dev_size']}, seed {report['seed']}); prediction: {rule}.",
        "",
        f"Teacher dev macro-F1: {dev_score_text(teacher)}",
        "",
        f"Labelling the {documents} documents took {_seconds(teacher.get('labelling_time_s'))}.",
        "",
        "| class | " + " | ".join(f"{n} | agreement | p(gold)" for n in SPLITS.values()) + " |",
        "|---|" + "---:|---:|---:|" * len(SPLITS),
    ]
    splits = report["splits"]
    for name in [*report["label_names"], None]:
        cells = []
        for split in SPLITS:
            row = splits[split]["classes"][name] if name else splits[split]
            cells += [str(row["documents"]), _cell(row["agreement"]), _cell(row["p_gold"])]
        lines.append(f"| {name or '**all**'} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, folder: Path) -> None:
    with atomic_write(folder / "teacher_diagnostics.md") as f:
        f.write(to_markdown(report))
    with atomic_write(folder / "teacher_diagnostics.json") as f:
        json.dump(report, f, indent=2)


def teacher_diagnostics(
    logits: str = "runs/distill/r8-teacher-logits.npz",
    dataset: str = "r8",
    dev_size: int | float = 500,
    seed: int = 42,
    data_dir: str | None = None,
    out: str | None = None,
    teacher_checkpoint: str | None = None,
) -> dict:
    """Agreement and p(gold) of a teacher-logits file, originals and augmented copies apart.

    Args:
        logits: the teacher-logits file; defaults to the one ``configs/distill/teacher.yaml`` writes.
        dataset: dataset name or folder the teacher's predict read.
        dev_size: dev documents carved from train, as in the teacher's run.
        seed: seed of the dev split, as in the teacher's run.
        data_dir: data root (default ``$TOPICBERT_DATA``).
        out: output folder; defaults to the logits file's folder.
        teacher_checkpoint: the checkpoint that wrote the file (its hash must match), to read its dev
            macro-F1 from when the file predates recording it.
    """
    saved = TeacherLogits.load(logits)
    if teacher_checkpoint is not None and "dev_macro_f1" not in saved.teacher:
        saved.teacher["dev_macro_f1"] = dev_score_of(teacher_checkpoint, saved.teacher, logits)
    dm = DocumentDataModule(dataset=dataset, data_dir=data_dir, dev_size=dev_size, seed=seed, tokenizer=None, bow=False)
    check_labels(saved, dm, logits)
    gold = gold_labels(saved, dm, logits)
    probs = probabilities(saved)
    predicted = predictions(probs, saved.multi_label)
    copies = np.array([is_copy(doc_id) for doc_id in saved.ids], dtype=bool)
    groups = {"original": ~copies, "augmented": copies}
    report = {
        "logits": str(logits),
        "dataset": dm.corpus.name,
        "dev_size": dev_size,
        "seed": seed,
        "multi_label": saved.multi_label,
        "label_names": saved.label_names,
        "teacher": saved.teacher,
        "teacher_dev_macro_f1": saved.teacher.get("dev_macro_f1"),
        "splits": {
            split: group_figures(gold[rows], predicted[rows], probs[rows], saved.label_names)
            for split, rows in groups.items()
        },
    }
    write_report(report, Path(out) if out else Path(logits).parent)
    print(to_markdown(report))
    return report


def main(args: list[str] | None = None) -> None:
    try:
        CLI(teacher_diagnostics, args=args)
    except DataError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
