"""One base for every task: the tasks it knows, abstract methods enforced, hyperparameters of the whole chain."""

import pytest
import torch
from torch import nn

from lightning_modules import BiLSTMStudent, KimCNNStudent, LogRegStudent, NVDMTask, TopicBertTask
from lightning_modules.base import BaseTask, task_classes
from lightning_modules.classifier import DocumentClassifierTask
from lightning_modules.student_tasks import StudentTask, TokenStudent


class FakeData:
    max_length, num_partitions, teacher_logits = 512, 4, None


def test_the_tasks_a_config_can_name():
    assert set(task_classes()) == {TopicBertTask, NVDMTask, BiLSTMStudent, KimCNNStudent, LogRegStudent}


@pytest.mark.parametrize("base", [BaseTask, DocumentClassifierTask, StudentTask, TokenStudent])
def test_bases_cannot_be_built(base):
    with pytest.raises(TypeError, match="abstract"):
        base()


def test_a_task_without_build_model_is_refused():
    class Unbuilt(DocumentClassifierTask):
        def run_label(self, datamodule):
            return "x"

        def forward(self, batch):
            return None

        def compute_losses(self, batch, output):
            return {}

    with pytest.raises(TypeError, match="build_model"):
        Unbuilt()


def test_hyperparameters_of_the_whole_argument_chain_are_saved(tiny_encoder_dir):
    task = KimCNNStudent(
        encoder=str(tiny_encoder_dir), widths=[2, 3], maps=4, num_labels=5, lr=0.01, embeddings="random"
    )
    hp = task.hparams
    assert (hp.widths, hp.maps, hp.lr, hp.num_labels, hp.embeddings, hp.ema_decay) == (
        [2, 3],
        4,
        0.01,
        5,
        "random",
        None,
    )
    assert set(hp) == KimCNNStudent.init_parameters()
    assert [conv.kernel_size[0] for conv in task.model.convs] == [2, 3] and task.model.classifier.out_features == 5
    assert BiLSTMStudent.init_parameters() >= {"hidden_size", "ema_decay", "encoder", "kd_weight", "threshold"}
    assert LogRegStudent(num_features=7).hparams.lr == 0.5  # a subclass's own default wins


def test_run_labels(tiny_encoder_dir):
    data = FakeData()
    assert TopicBertTask(encoder=str(tiny_encoder_dir), vocab_size=10).run_label(data) == "TopicBERT-128"
    assert TopicBertTask(encoder=str(tiny_encoder_dir), use_topic_model=False).run_label(data) == "BERT-128"
    assert NVDMTask(vocab_size=10).run_label(data) == "NVDM"
    student = LogRegStudent(num_features=7)
    assert student.run_label(data) == "LogReg"
    data.teacher_logits = "teacher.npz"
    assert student.run_label(data) == "KD-LogReg"


def test_a_student_checkpoint_from_before_the_shared_base_still_loads(tmp_path):
    task = LogRegStudent(num_features=6, num_labels=3)
    old = {f"student.{k.removeprefix('model.')}": v for k, v in task.state_dict().items() if k.startswith("model.")}
    checkpoint = {"state_dict": old, "hyper_parameters": dict(task.hparams)}
    fresh = LogRegStudent(num_features=6, num_labels=3)
    fresh.on_load_checkpoint(checkpoint)
    fresh.load_state_dict(checkpoint["state_dict"])
    torch.testing.assert_close(fresh.model.linear.weight, task.model.linear.weight)


def test_build_model_gives_self_model():
    class Tiny(NVDMTask):
        def build_model(self) -> nn.Module:
            return nn.Linear(2, 2)

    assert isinstance(Tiny().model, nn.Linear)
