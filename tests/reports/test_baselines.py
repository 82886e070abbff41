"""How the scikit-learn baselines choose C and, on multi-label data, their thresholds: on dev."""

import json

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from datamodules import DocumentDataModule
from reports.baselines import baselines, decisions, fit_on_dev, label_scores
from utils.hardware import machine_id


@pytest.fixture(scope="module")
def multilabel(tiny_multilabel_dir, tiny_encoder_dir) -> DocumentDataModule:
    return DocumentDataModule(
        dataset=str(tiny_multilabel_dir),
        tokenizer=str(tiny_encoder_dir),
        max_length=32,
        dev_size=0.25,
        min_freq=2,
        tfidf=True,
    )


def tfidf(dm: DocumentDataModule) -> dict:
    return {s: dm.views.split(s).tfidf for s in ("train", "dev", "test")}


def test_multi_label_thresholds_are_tuned_on_dev_and_never_lower_its_score(multilabel):
    features = tfidf(multilabel)
    svm = lambda c: LinearSVC(C=c)  # noqa: E731
    default = fit_on_dev(svm, features, multilabel, [0.1], "none", edge_steps=0)
    tuned = fit_on_dev(svm, features, multilabel, [0.1], "per_class", edge_steps=0)
    assert default.thresholds is not None and tuned.thresholds is not None
    assert np.all(default.thresholds == 0.5) and tuned.thresholds.shape == (multilabel.num_labels,)
    assert np.all((tuned.thresholds >= 0.05) & (tuned.thresholds <= 0.95))
    # per label the tuned threshold maximises its dev F1 over a grid that holds 0.5; at this C the
    # SVM's margins are small and two labels gain by a lower one
    assert tuned.dev_macro_f1 > default.dev_macro_f1 and np.any(tuned.thresholds < 0.5)
    # at 0.5 the mapped margin decides as the SVM itself does
    predicted = decisions(default.classifier, features["test"], multilabel, default.thresholds)
    np.testing.assert_array_equal(predicted, default.classifier.predict(features["test"]))
    dev_scores = label_scores(tuned.classifier, features["dev"])
    assert dev_scores.shape == (features["dev"].shape[0], multilabel.num_labels)
    assert np.all((dev_scores >= 0) & (dev_scores <= 1))


def test_a_c_at_the_edge_of_the_grid_grows_the_grid_past_it(multilabel):
    features = tfidf(multilabel)
    svm = lambda c: LinearSVC(C=c)  # noqa: E731
    lone = fit_on_dev(svm, features, multilabel, [1.0], "none", edge_steps=2)
    # a grid of one value is its own edge: at least one C past it is tried, at most two
    assert lone.tried[:2] == [1.0, 10.0] and len(lone.tried) <= 3 and lone.c in lone.tried
    inside = fit_on_dev(svm, features, multilabel, [1.0], "none", edge_steps=0)
    assert inside.tried == [1.0]


def test_multi_label_baselines_record_their_tuning_and_every_c_tried(tiny_multilabel_dir, tiny_encoder_dir, tmp_path):
    (written,) = baselines(
        dataset=str(tiny_multilabel_dir),
        dev_size=0.25,
        min_freq=2,
        encoder=str(tiny_encoder_dir),
        max_length=32,
        models=["tfidf-svm"],
        c_grid=[0.1, 10.0],
        out=str(tmp_path),
    )
    saved = json.loads(next(tmp_path.rglob("results.json")).read_text())
    assert saved["threshold_tuning"] == "per_class" and saved["C"] in saved["C_tried"]
    assert saved["machine_ids"] == [machine_id()]  # its time compares only with runs of this machine
    assert saved["C_tried"][:2] == [0.1, 10.0] and saved["test_micro_f1"] == pytest.approx(written["test_micro_f1"])
