"""The tf-idf logistic-regression student as a scikit-learn pipeline that needs no torch.

``Pipeline([("tfidf", TfidfVectorizer), ("classifier", LogisticRegression)])`` with the trained
vectorizer and the student's weights set on a ``LogisticRegression`` (one-vs-rest over binary ones
for multi-label data), so ``pipeline.predict_proba(texts)`` gives the student's probabilities.
``cli.py export`` writes it as ``sklearn_pipeline.joblib`` beside the folder's other files.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelBinarizer

FILENAME = "sklearn_pipeline.joblib"


def fitted_logistic_regression(weight: np.ndarray, bias: np.ndarray) -> LogisticRegression:
    """A ``LogisticRegression`` whose ``predict_proba`` is ``softmax(x W^T + b)`` over len(b) classes
    (for two classes, the sigmoid of the difference of the two rows, which is the same)."""
    model = LogisticRegression()
    classes = len(bias)
    model.classes_ = np.arange(classes)
    if classes == 2:
        weight, bias = weight[1:] - weight[:1], bias[1:] - bias[:1]
    model.coef_ = np.asarray(weight, dtype=np.float64)
    model.intercept_ = np.asarray(bias, dtype=np.float64)
    model.n_features_in_ = weight.shape[1]
    return model


def logreg_pipeline(vectorizer, weight: np.ndarray, bias: np.ndarray, multi_label: bool) -> Pipeline:
    """The pipeline of a trained student: its vectorizer and its linear layer's weights."""
    if not multi_label:
        return Pipeline([("tfidf", vectorizer), ("classifier", fitted_logistic_regression(weight, bias))])
    per_label = []
    for w, b in zip(weight, bias, strict=True):  # sigmoid(w.x + b): a binary LR with [-w/2, w/2] rows
        per_label.append(fitted_logistic_regression(np.stack([-w / 2, w / 2]), np.array([-b / 2, b / 2])))
    classifier = OneVsRestClassifier(LogisticRegression())
    classifier.estimators_ = per_label
    classifier.label_binarizer_ = LabelBinarizer(sparse_output=False).fit(np.eye(len(bias), dtype=int))
    classifier.n_features_in_ = weight.shape[1]
    return Pipeline([("tfidf", vectorizer), ("classifier", classifier)])
