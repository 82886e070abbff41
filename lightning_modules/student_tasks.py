"""Distillation students as Lightning tasks: the same metrics, logging and callbacks as the teacher."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from transformers import AutoConfig

from lightning_modules.classifier import ClassifierOutput, DocumentClassifierTask
from lightning_modules.losses import classification_loss, default_kd_weight, distillation_loss
from lightning_modules.thresholds import ThresholdTuning
from models.pretrained import load_pretrained
from models.students import BiLSTM, KimCNN, SparseLogisticRegression, make_embedding, teacher_embeddings

EmbeddingInit = Literal["teacher", "random"]


class StudentTask(DocumentClassifierTask):
    """Trains ``self.student``: with teacher logits in the batch on the distillation objective
    ``CE + kd_weight * L_distill`` (see ``distillation_loss``), otherwise on CE alone (the no-KD
    baseline). With ``ema_decay`` an exponential moving average of the weights is kept and used for
    validation, test and predict (and saved in checkpoints).
    """

    student: nn.Module

    def __init__(self, num_labels: int, multi_label: bool, lr: float, weight_decay: float, kd_weight: float | None,
                 temperature: float, ema_decay: float | None, threshold: float,
                 threshold_tuning: ThresholdTuning):  # fmt: skip
        super().__init__(num_labels, multi_label, threshold, threshold_tuning)
        self.lr = lr
        self.weight_decay = weight_decay
        self.kd_weight = default_kd_weight(multi_label) if kd_weight is None else kd_weight
        self.temperature = temperature
        self.ema_decay = ema_decay
        self.ema: AveragedModel | None = None

    def init_ema(self) -> None:
        """Call once ``self.student`` exists."""
        if self.ema_decay:
            self.ema = AveragedModel(self.student, multi_avg_fn=get_ema_multi_avg_fn(self.ema_decay))

    def student_logits(self, model: nn.Module, batch: dict) -> torch.Tensor:
        return model(batch["input_ids"], batch["attention_mask"])

    def forward(self, batch: dict) -> ClassifierOutput:
        model = self.ema.module if self.ema is not None and not self.training else self.student
        return ClassifierOutput(self.student_logits(model, batch))

    def forward_flops(self, batch: dict) -> float:
        """Model FLOPs of one forward pass over a collated batch (its real tokens only)."""
        return sum(self.student.forward_flops(int(n)) for n in batch["attention_mask"].sum(1))

    def compute_losses(self, batch: dict, output: ClassifierOutput) -> dict[str, torch.Tensor]:
        if "teacher_logits" not in batch:
            return {"loss": classification_loss(output.logits, batch["labels"], self.multi_label)}
        loss, ce, kd = distillation_loss(output.logits, batch["labels"], batch["teacher_logits"], self.multi_label,
                                         self.kd_weight, self.temperature)  # fmt: skip
        return {"loss": loss, "ce": ce, "kd": kd}

    def optimizer_step(self, *args, **kwargs) -> None:
        # the EMA follows each optimiser step here, not in on_train_batch_end: that hook runs after the
        # callbacks', so a checkpoint saved at the end of a batch would miss this batch's update
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.update_parameters(self.student)

    def configure_optimizers(self):
        params = [p for p in self.student.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)


def student_embedding(encoder: str | None, init: EmbeddingInit, embed_dim: int, freeze: bool) -> nn.Embedding:
    """Word embeddings over the teacher tokenizer's ids: the teacher's own, or random ones."""
    if encoder is None:
        raise ValueError("Token students need data.tokenizer (the teacher's tokenizer) to define their word ids.")
    if init == "teacher":
        return make_embedding(teacher_embeddings(encoder), 0, 0, freeze)
    return make_embedding(None, load_pretrained(AutoConfig, encoder).vocab_size, embed_dim, freeze)


class BiLSTMStudent(StudentTask):
    """The regularised BiLSTM student (hedwig's LSTM_reg) over the teacher tokenizer's word pieces.

    Args:
        encoder: the teacher encoder whose tokenizer defines the ids (linked from ``data.tokenizer``).
        num_labels: number of classes (linked from the data).
        multi_label: sigmoid/BCE instead of softmax/CE (linked from the data).
        embeddings: ``teacher`` (the encoder's input embeddings) or ``random``.
        embed_dim: width of random embeddings.
        freeze_embeddings: keep the embeddings fixed.
        hidden_size: LSTM units per direction (the paper tried 32 to 512).
        bidirectional: read both ways.
        embed_dropout: chance of dropping a word type in a batch.
        weight_drop: DropConnect on the recurrent weights.
        dropout: dropout before the classifier.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        kd_weight: lambda; by default 4 single-label, 1 multi-label.
        temperature: distillation temperature (1 in the paper).
        ema_decay: decay of the weight average used for evaluation; null disables it.
        threshold: multi-label decision threshold.
        threshold_tuning: tune the multi-label thresholds on dev (``global`` or ``per_class``).
    """

    def __init__(
        self,
        encoder: str | None = None,
        num_labels: int = 2,
        multi_label: bool = False,
        embeddings: EmbeddingInit = "teacher",
        embed_dim: int = 300,
        freeze_embeddings: bool = False,
        hidden_size: int = 256,
        bidirectional: bool = True,
        embed_dropout: float = 0.1,
        weight_drop: float = 0.2,
        dropout: float = 0.5,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        kd_weight: float | None = None,
        temperature: float = 1.0,
        ema_decay: float | None = 0.99,
        threshold: float = 0.5,
        threshold_tuning: ThresholdTuning = "none",
    ):
        super().__init__(num_labels, multi_label, lr, weight_decay, kd_weight, temperature, ema_decay, threshold,
                         threshold_tuning)  # fmt: skip
        self.save_hyperparameters()
        embedding = student_embedding(encoder, embeddings, embed_dim, freeze_embeddings)
        self.student = BiLSTM(embedding, num_labels, hidden_size, bidirectional, embed_dropout, weight_drop, dropout)
        self.init_ema()


class KimCNNStudent(StudentTask):
    """The KimCNN student over the teacher tokenizer's word pieces.

    Args:
        encoder: the teacher encoder whose tokenizer defines the ids (linked from ``data.tokenizer``).
        num_labels: number of classes (linked from the data).
        multi_label: sigmoid/BCE instead of softmax/CE (linked from the data).
        embeddings: ``teacher`` (the encoder's input embeddings) or ``random``.
        embed_dim: width of random embeddings.
        freeze_embeddings: keep the embeddings fixed (KimCNN's "static" variant).
        widths: filter widths.
        maps: feature maps per width.
        dropout: dropout before the classifier.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        kd_weight: lambda; by default 4 single-label, 1 multi-label.
        temperature: distillation temperature (1 in the paper).
        ema_decay: decay of the weight average used for evaluation; null disables it.
        threshold: multi-label decision threshold.
        threshold_tuning: tune the multi-label thresholds on dev (``global`` or ``per_class``).
    """

    def __init__(
        self,
        encoder: str | None = None,
        num_labels: int = 2,
        multi_label: bool = False,
        embeddings: EmbeddingInit = "teacher",
        embed_dim: int = 300,
        freeze_embeddings: bool = False,
        widths: list[int] = [3, 4, 5],  # noqa: B006 (a literal default shows in --help)
        maps: int = 100,
        dropout: float = 0.5,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        kd_weight: float | None = None,
        temperature: float = 1.0,
        ema_decay: float | None = None,
        threshold: float = 0.5,
        threshold_tuning: ThresholdTuning = "none",
    ):
        super().__init__(num_labels, multi_label, lr, weight_decay, kd_weight, temperature, ema_decay, threshold,
                         threshold_tuning)  # fmt: skip
        self.save_hyperparameters()
        embedding = student_embedding(encoder, embeddings, embed_dim, freeze_embeddings)
        self.student = KimCNN(embedding, num_labels, tuple(widths), maps, dropout)
        self.init_ema()


class LogRegStudent(StudentTask):
    """Logistic regression over sparse tf-idf vectors, trained with the same (distillation) loss.

    Args:
        num_features: tf-idf width (linked from ``data.tfidf_features``; needs ``data.tfidf: true``).
        num_labels: number of classes (linked from the data).
        multi_label: sigmoid/BCE instead of softmax/CE (linked from the data).
        lr: Adam learning rate.
        weight_decay: Adam weight decay (L2 regularisation).
        kd_weight: lambda; by default 4 single-label, 1 multi-label.
        temperature: distillation temperature (1 in the paper).
        ema_decay: decay of the weight average used for evaluation; null disables it.
        threshold: multi-label decision threshold.
        threshold_tuning: tune the multi-label thresholds on dev (``global`` or ``per_class``).
    """

    def __init__(
        self,
        num_features: int = 1,
        num_labels: int = 2,
        multi_label: bool = False,
        lr: float = 0.2,
        weight_decay: float = 0.0,
        kd_weight: float | None = None,
        temperature: float = 1.0,
        ema_decay: float | None = None,
        threshold: float = 0.5,
        threshold_tuning: ThresholdTuning = "none",
    ):
        super().__init__(num_labels, multi_label, lr, weight_decay, kd_weight, temperature, ema_decay, threshold,
                         threshold_tuning)  # fmt: skip
        self.save_hyperparameters()
        self.student = SparseLogisticRegression(num_features, num_labels)
        self.init_ema()

    def student_logits(self, model: nn.Module, batch: dict) -> torch.Tensor:
        if "tfidf" not in batch:
            raise ValueError("The logistic-regression student reads tf-idf vectors: set data.tfidf: true.")
        return model(batch["tfidf"])

    def forward_flops(self, batch: dict) -> float:
        return sum(self.student.forward_flops(int(n)) for n in torch.bincount(batch["tfidf"].indices()[0]))
