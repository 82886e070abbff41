"""KimCNN and BiLSTM students as TorchScript files that run without this project's code.

``student.torchscript.pt`` maps ``(input_ids, attention_mask)`` (int64, batch x tokens, padded
with 0) to class probabilities (softmax; per-label sigmoid for multi-label data). The ids are the
exported ``encoder/tokenizer.json``'s, with its special tokens, truncated to N tokens (the
students' configs read one partition of N tokens; with p > 1, cut the ids into p partitions as
``datamodules.tokens.partition`` does and average their probabilities):

    import torch, tokenizers
    tokenizer = tokenizers.Tokenizer.from_file("encoder/tokenizer.json")
    tokenizer.enable_truncation(N); tokenizer.enable_padding()
    encoded = tokenizer.encode_batch(texts)
    ids = torch.tensor([e.ids for e in encoded]); mask = torch.tensor([e.attention_mask for e in encoded])
    probabilities = torch.jit.load("student.torchscript.pt")(ids, mask)
"""

from pathlib import Path

import torch
from torch import Tensor, nn

FILENAME = "student.torchscript.pt"


class StudentProbabilities(nn.Module):
    """A token student's evaluation forward, ending in probabilities."""

    def __init__(self, model: nn.Module, multi_label: bool):
        super().__init__()
        self.model = model
        self.multi_label = multi_label

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        logits = self.model(input_ids, attention_mask)
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, -1)


def save_token_student(task, folder: Path) -> str:
    """Compile the student's evaluation network (its weight average where it keeps one) and save it."""
    model = task.ema.module if getattr(task, "ema", None) is not None else task.model
    scripted = torch.jit.script(StudentProbabilities(model.eval(), bool(task.multi_label)))
    scripted.save(str(folder / FILENAME))
    return FILENAME
