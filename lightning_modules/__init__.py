"""LightningModules: the NVDM pretraining task and the TopicBERT / BERT fine-tuning task."""

from lightning_modules.nvdm_task import NVDMTask
from lightning_modules.topicbert_task import TopicBertTask

__all__ = ["NVDMTask", "TopicBertTask"]
