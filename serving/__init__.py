"""Models that leave the tool: an exported folder (``serving.export``) and the Python API that
predicts from it (``serving.classifier.DocumentClassifier``)."""

from serving.classifier import DocumentClassifier

__all__ = ["DocumentClassifier"]
