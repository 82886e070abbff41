"""LightningModules: NVDM pretraining, TopicBERT / BERT fine-tuning and the distillation students."""

from lightning_modules.base import BaseTask
from lightning_modules.nvdm_task import NVDMTask
from lightning_modules.student_tasks import BiLSTMStudent, KimCNNStudent, LogRegStudent
from lightning_modules.topicbert_task import TopicBertTask

__all__ = ["BaseTask", "BiLSTMStudent", "KimCNNStudent", "LogRegStudent", "NVDMTask", "TopicBertTask"]
