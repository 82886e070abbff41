"""Distillation students as Lightning tasks: the same metrics, logging and callbacks as the teacher."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from transformers import AutoConfig

from lightning_modules.classifier import ClassifierOutput, DocumentClassifierTask
from lightning_modules.losses import classification_loss, default_kd_weight, distillation_loss
from lightning_modules.optim import adam
from models.students import BiLSTM, KimCNN, SparseLogisticRegression, make_embedding, teacher_embeddings
from utils.pretrained import load_pretrained

EmbeddingInit = Literal["teacher", "random"]


class StudentTask(DocumentClassifierTask):
    """Trains ``self.model``: with teacher logits in the batch on the distillation objective
    ``CE + kd_weight * L_distill`` (see ``distillation_loss``), otherwise on CE alone (the no-KD
    baseline). With ``ema_decay`` an exponential moving average of the weights is kept and used for
    validation, test and predict (and saved in checkpoints).

    Args:
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        kd_weight: lambda; by default 4 single-label, 1 multi-label.
        temperature: distillation temperature (1 in the paper).
        ema_decay: decay of the weight average used for evaluation; null disables it.
    """

    label: ClassVar[str]
    model: BiLSTM | KimCNN | SparseLogisticRegression
    ema: AveragedModel | None

    def __init__(
        self,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        kd_weight: float | None = None,
        temperature: float = 1.0,
        ema_decay: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kd_weight = default_kd_weight(self.multi_label) if kd_weight is None else kd_weight
        self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay)) if ema_decay else None

    def run_label(self, datamodule: Any) -> str:
        """``KD-<student>`` with a teacher's soft targets, ``<student>`` without, as in the DocBERT paper."""
        return ("KD-" if getattr(datamodule, "teacher_logits", None) else "") + self.label

    def identity(self) -> dict[str, Any]:
        keys = [k for k in ("encoder", "hidden_size", "embed_dim", "num_features") if k in self.hparams]
        return super().identity() | {k: self.hparams[k] for k in keys}

    def student_logits(self, model: nn.Module, batch: dict) -> torch.Tensor:
        return model(batch["input_ids"], batch["attention_mask"])

    def forward(self, batch: dict) -> ClassifierOutput:
        model = self.ema.module if self.ema is not None and not self.training else self.model
        return ClassifierOutput(self.student_logits(model, batch))

    def forward_flops(self, batch: dict) -> torch.Tensor:
        return self.model.forward_flops(batch["attention_mask"].sum(1))

    def compute_losses(self, batch: dict, output: ClassifierOutput) -> dict[str, torch.Tensor]:
        if "teacher_logits" not in batch:
            return {"loss": classification_loss(output.logits, batch["labels"], self.multi_label)}
        loss, ce, kd = distillation_loss(
            output.logits,
            batch["labels"],
            batch["teacher_logits"],
            self.multi_label,
            self.kd_weight,
            self.hparams.temperature,
        )
        return {"loss": loss, "ce": ce, "kd": kd}

    def optimizer_step(self, *args, **kwargs) -> None:
        # the EMA follows each optimiser step here, not in on_train_batch_end: that hook runs after the
        # callbacks', so a checkpoint saved at the end of a batch would miss this batch's update
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # checkpoints written before the tasks shared one base named the network ``student``
        state = checkpoint.get("state_dict", {})
        for key in [k for k in state if k.startswith("student.")]:
            state["model." + key.removeprefix("student.")] = state.pop(key)
        super().on_load_checkpoint(checkpoint)

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        return adam(params, self.hparams.lr, self.hparams.weight_decay, self.device)


class TokenStudent(StudentTask):
    """A student over the teacher tokenizer's word pieces.

    Args:
        encoder: the teacher encoder whose tokenizer defines the ids (linked from ``data.tokenizer``).
        embeddings: ``teacher`` (the encoder's input embeddings) or ``random``.
        embed_dim: width of random embeddings.
        freeze_embeddings: keep the embeddings fixed (KimCNN's "static" variant).
    """

    def __init__(
        self,
        encoder: str | None = None,
        embeddings: EmbeddingInit = "teacher",
        embed_dim: int = 300,
        freeze_embeddings: bool = False,
        **kwargs,
    ):
        if encoder is None:
            raise ValueError("Token students need data.tokenizer (the teacher's tokenizer) to define their word ids.")
        super().__init__(**kwargs)

    def embedding(self) -> nn.Embedding:
        """Word embeddings over the teacher tokenizer's ids: the teacher's own, or random ones."""
        hp = self.hparams
        if hp.embeddings == "teacher":
            return make_embedding(teacher_embeddings(hp.encoder), 0, 0, hp.freeze_embeddings)
        vocab_size = load_pretrained(AutoConfig, hp.encoder).vocab_size
        return make_embedding(None, vocab_size, hp.embed_dim, hp.freeze_embeddings)


class BiLSTMStudent(TokenStudent):
    """The regularised BiLSTM student (hedwig's LSTM_reg) over the teacher tokenizer's word pieces.

    Args:
        hidden_size: LSTM units per direction (the paper tried 32 to 512).
        bidirectional: read both ways.
        embed_dropout: chance of dropping a word type in a batch.
        weight_drop: DropConnect on the recurrent weights.
        dropout: dropout before the classifier.
        ema_decay: decay of the weight average used for evaluation; null disables it.
    """

    label = "BiLSTM"

    def __init__(
        self,
        hidden_size: int = 256,
        bidirectional: bool = True,
        embed_dropout: float = 0.1,
        weight_drop: float = 0.2,
        dropout: float = 0.5,
        ema_decay: float | None = 0.99,
        **kwargs,
    ):
        super().__init__(ema_decay=ema_decay, **kwargs)

    def build_model(self) -> BiLSTM:
        hp = self.hparams
        return BiLSTM(
            self.embedding(),
            hp.num_labels,
            hp.hidden_size,
            hp.bidirectional,
            hp.embed_dropout,
            hp.weight_drop,
            hp.dropout,
        )


class KimCNNStudent(TokenStudent):
    """The KimCNN student over the teacher tokenizer's word pieces.

    Args:
        widths: filter widths.
        maps: feature maps per width.
        dropout: dropout before the classifier.
    """

    label = "KimCNN"

    def __init__(
        self,
        widths: list[int] = [3, 4, 5],  # noqa: B006 (a literal default shows in --help)
        maps: int = 100,
        dropout: float = 0.5,
        **kwargs,
    ):
        super().__init__(**kwargs)

    def build_model(self) -> KimCNN:
        hp = self.hparams
        return KimCNN(self.embedding(), hp.num_labels, tuple(hp.widths), hp.maps, hp.dropout)


class LogRegStudent(StudentTask):
    """Logistic regression over sparse tf-idf vectors, trained with the same (distillation) loss.

    Args:
        num_features: tf-idf width (linked from ``data.tfidf_features``; needs ``data.tfidf: true``).
        lr: Adam learning rate; 0.5 is the R8 dev choice without KD (0.1 with KD), see
            configs/students/logreg.yaml.
    """

    label = "LogReg"

    def __init__(self, num_features: int = 1, lr: float = 0.5, **kwargs):
        super().__init__(lr=lr, **kwargs)

    def build_model(self) -> SparseLogisticRegression:
        return SparseLogisticRegression(self.hparams.num_features, self.hparams.num_labels)

    def student_logits(self, model: nn.Module, batch: dict) -> torch.Tensor:
        if "tfidf" not in batch:
            raise ValueError("The logistic-regression student reads tf-idf vectors: set data.tfidf: true.")
        return model(batch["tfidf"])

    def forward_flops(self, batch: dict) -> torch.Tensor:
        return self.model.forward_flops(batch["tfidf"])
