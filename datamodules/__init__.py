"""Corpus readers, BoW and token views, and the LightningDataModule that serves them."""

from datamodules.documents import DocumentDataModule

__all__ = ["DocumentDataModule"]
