"""Fine-tuning TopicBERT (or, with the topic model off, the BERT baseline) as a LightningModule."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from lightning_modules.base import CheckpointMismatchError, read_checkpoint
from lightning_modules.classifier import DocumentClassifierTask
from lightning_modules.losses import classification_loss, joint_loss
from lightning_modules.optim import linear_warmup_decay, param_groups
from models.nvdm import NVDM, Activation
from models.topicbert import Pooling, TopicBert, TopicBertOutput, load_encoder


def load_nvdm_weights(nvdm: NVDM, path: str, expected: dict) -> None:
    """Initialise ``nvdm`` from a checkpoint written by ``fit --config configs/nvdm.yaml``."""
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"nvdm_checkpoint {path!r} does not exist. Pretrain the topic model with "
            "'python cli.py fit --config configs/nvdm.yaml' and pass its best checkpoint, or set it to null."
        )
    checkpoint = read_checkpoint(path)
    found = checkpoint.get("hyper_parameters", {})
    differ = [f"{k}: checkpoint {found.get(k)!r} vs model {v!r}" for k, v in expected.items() if found.get(k) != v]
    if differ:
        raise CheckpointMismatchError(
            f"The NVDM checkpoint {path} does not match this model ({'; '.join(differ)}). Pretrain the NVDM "
            "on the same dataset and vocabulary settings, with the same topic-model sizes."
        )
    prefix = "model."
    nvdm.load_state_dict({k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)})


class TopicBertTask(DocumentClassifierTask):
    """Joint fine-tuning of an encoder and the NVDM topic model on partitioned documents.

    Loss: ``alpha * CE + (1 - alpha) * NVDM loss per word`` (see ``NVDMOutput.loss_per_word``).
    Validation and test score documents, not partitions: a document's class probabilities are the
    mean over its partitions.

    Args:
        encoder: Hugging Face encoder name or folder (linked from ``data.tokenizer``).
        vocab_size: topic-model vocabulary size (linked from the data).
        use_topic_model: False gives the plain fine-tuned BERT baseline.
        num_topics: K, topics of the NVDM.
        nvdm_hidden_size: width of the NVDM encoder MLP.
        nvdm_activation: non-linearity of the NVDM encoder.
        nvdm_samples: S, posterior samples per training step.
        nvdm_checkpoint: a pretrained NVDM checkpoint to start the topic model from.
        alpha: weight of the classification loss in the joint objective.
        dropout: dropout on the pooled encoder vector.
        pooling: ``cls`` (the paper) or ``mean`` of token vectors.
        encoder_lr: AdamW learning rate of the pretrained encoder.
        head_lr: AdamW learning rate of the topic model, projection and classifier.
        weight_decay: AdamW weight decay (not applied to biases and norms).
        warmup_ratio: share of all training steps spent warming the learning rate up.
        attn_implementation: ``sdpa`` (fused attention) or ``eager`` (the paper-era baseline).
        compile_encoder: ``torch.compile`` the encoder (dynamic shapes, weights and checkpoints
            unchanged); pays a one-off compilation of tens of seconds for faster steps, mostly on GPU.
    """

    model: TopicBert

    def __init__(
        self,
        encoder: str = "sentence-transformers/all-MiniLM-L6-v2",
        vocab_size: int = 2000,
        use_topic_model: bool = True,
        num_topics: int = 100,
        nvdm_hidden_size: int = 256,
        nvdm_activation: Activation = "sigmoid",
        nvdm_samples: int = 1,
        nvdm_checkpoint: str | None = None,
        alpha: float = 0.9,
        dropout: float = 0.1,
        pooling: Pooling = "cls",
        encoder_lr: float = 2e-5,
        head_lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        attn_implementation: Literal["sdpa", "eager"] = "sdpa",
        compile_encoder: bool = False,
        **kwargs,
    ):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}.")
        super().__init__(**kwargs)
        self.encoder_compiled = False

    def build_model(self) -> TopicBert:
        hp = self.hparams
        nvdm = None
        if hp.use_topic_model:
            nvdm = NVDM(hp.vocab_size, hp.num_topics, hp.nvdm_hidden_size, hp.nvdm_activation, hp.nvdm_samples)
        encoder = load_encoder(hp.encoder, hp.attn_implementation)
        return TopicBert(encoder, hp.num_labels, nvdm, hp.dropout, hp.pooling)

    def run_label(self, datamodule: Any) -> str:
        """``TopicBERT-<x>`` / ``BERT-<x>`` (x = tokens per partition), as in the TopicBERT paper's tables."""
        x = datamodule.max_length // datamodule.num_partitions
        return f"{'TopicBERT' if self.hparams.use_topic_model else 'BERT'}-{x}"

    def identity(self) -> dict[str, Any]:
        hp = self.hparams
        topic_model = ("vocab_size", "num_topics", "nvdm_hidden_size") if hp.use_topic_model else ()
        keys = ("encoder", "use_topic_model", *topic_model)
        return super().identity() | {k: hp[k] for k in keys}

    @classmethod
    def reads_bow(cls, init_args: Mapping[str, Any]) -> bool:
        return bool(init_args.get("use_topic_model", True))

    def configure_model(self) -> None:
        # Counted before compiling (the counter runs the eager model once at a few short lengths).
        self.model.flops  # noqa: B018
        # In place (nn.Module.compile), so parameter names and checkpoints are those of the eager model.
        if self.hparams.compile_encoder and not self.encoder_compiled:
            self.model.encoder.compile(dynamic=True)
            self.encoder_compiled = True

    def setup(self, stage: str) -> None:
        # Before a resumed checkpoint is restored, so resuming keeps the fine-tuned topic model.
        if stage == "fit" and self.hparams.nvdm_checkpoint and self.model.nvdm is not None:
            expected = {
                "vocab_size": self.hparams.vocab_size,
                "num_topics": self.hparams.num_topics,
                "hidden_size": self.hparams.nvdm_hidden_size,
                "activation": self.hparams.nvdm_activation,
            }
            load_nvdm_weights(self.model.nvdm, self.hparams.nvdm_checkpoint, expected)

    def forward(self, batch: dict) -> TopicBertOutput:
        return self.model(batch["input_ids"], batch["attention_mask"], batch.get("bow"))

    def forward_flops(self, batch: dict) -> torch.Tensor | None:
        return self.model.forward_flops(batch["attention_mask"].sum(1))

    def compute_losses(self, batch: dict, output: TopicBertOutput) -> dict[str, torch.Tensor]:
        ce = classification_loss(output.logits, batch["labels"], self.multi_label)
        topic = output.topics.loss_per_word.mean() if output.topics is not None else None
        losses = {"loss": joint_loss(ce, topic, self.hparams.alpha), "ce": ce}
        if topic is not None:
            losses["nvdm_loss"] = topic
        return losses

    def predict_extras(self, output: TopicBertOutput) -> dict[str, torch.Tensor]:
        return {"topic": output.topics.mean.argmax(-1)} if output.topics is not None else {}

    def topic_word_indices(self, top_n: int) -> torch.Tensor | None:
        return self.model.nvdm.topic_word_indices(top_n) if self.model.nvdm is not None else None

    def configure_optimizers(self):
        hp = self.hparams
        groups = param_groups(self.model, self.model.encoder, hp.encoder_lr, hp.head_lr, hp.weight_decay)
        optimizer = torch.optim.AdamW(groups, fused=True)  # one kernel for all parameters: ~10% per CPU step
        total = self.trainer.estimated_stepping_batches
        scheduler = linear_warmup_decay(optimizer, int(hp.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
