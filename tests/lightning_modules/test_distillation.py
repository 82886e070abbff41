import math

import pytest
import torch
import torch.nn.functional as F

from lightning_modules.losses import default_kd_weight, distillation_loss


def test_single_label_kd_loss_on_known_values():
    student = torch.tensor([[2.0, 0.0]])
    teacher = torch.tensor([[0.0, 0.0]])  # uniform teacher
    labels = torch.tensor([[1.0, 0.0]])
    loss, ce, kd = distillation_loss(student, labels, teacher, multi_label=False, kd_weight=4.0)
    p = 1 / (1 + math.exp(-2))  # student probability of class 0
    assert ce.item() == pytest.approx(-math.log(p))
    # KL(teacher || student) = sum_t 0.5 * (log 0.5 - log p_s)
    assert kd.item() == pytest.approx(0.5 * (math.log(0.5) - math.log(p)) + 0.5 * (math.log(0.5) - math.log(1 - p)))
    assert loss.item() == pytest.approx(ce.item() + 4.0 * kd.item())


def test_kd_term_vanishes_when_student_matches_teacher_and_scales_with_temperature():
    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    labels = F.one_hot(torch.arange(5) % 4, 4).float()
    _, _, kd = distillation_loss(logits, labels, logits.clone(), False, 4.0)
    assert kd.item() == pytest.approx(0.0, abs=1e-6)
    teacher = torch.zeros(5, 4)
    _, _, kd_t2 = distillation_loss(logits, labels, teacher, False, 1.0, temperature=2.0)
    expected = F.kl_div((logits / 2).log_softmax(-1), (teacher / 2).softmax(-1), reduction="batchmean") * 4
    assert kd_t2.item() == pytest.approx(expected.item(), rel=1e-5)


def test_kd_gradient_pulls_student_towards_teacher():
    student = torch.tensor([[1.0, 2.0, 0.5]], requires_grad=True)
    teacher = torch.tensor([[3.0, 0.0, 0.0]])
    labels = torch.tensor([[1.0, 0.0, 0.0]])
    _, _, kd = distillation_loss(student, labels, teacher, False, 1.0, temperature=2.0)
    kd.backward()
    # d/ds [T^2 KL(p_t || p_s)] = T * (p_s - p_t) for one example
    expected = 2.0 * ((student.detach() / 2).softmax(-1) - (teacher / 2).softmax(-1))
    torch.testing.assert_close(student.grad, expected)


def test_multi_label_kd_is_bce_against_teacher_sigmoids():
    student = torch.tensor([[0.5, -1.0, 2.0]])
    teacher = torch.tensor([[2.0, -2.0, 0.0]])
    labels = torch.tensor([[1.0, 0.0, 1.0]])
    loss, ce, kd = distillation_loss(student, labels, teacher, multi_label=True, kd_weight=1.0)
    assert ce.item() == pytest.approx(F.binary_cross_entropy_with_logits(student, labels).item())
    assert kd.item() == pytest.approx(F.binary_cross_entropy(student.sigmoid(), teacher.sigmoid()).item(), rel=1e-5)
    assert loss.item() == pytest.approx(ce.item() + kd.item())


def test_default_lambda_is_the_papers():
    assert default_kd_weight(multi_label=False) == 4.0
    assert default_kd_weight(multi_label=True) == 1.0


def test_ema_weights_serve_evaluation_and_trail_the_trained_ones():
    from lightning_modules.student_tasks import LogRegStudent

    torch.manual_seed(0)
    task = LogRegStudent(num_features=6, num_labels=3, lr=0.5, ema_decay=0.9)
    batch = {"tfidf": torch.eye(6)[:4].to_sparse(), "labels": F.one_hot(torch.tensor([0, 1, 2, 0]), 3).float()}
    optimiser = task.configure_optimizers()
    start = task.model.linear.weight.detach().clone()

    def closure():
        optimiser.zero_grad()
        loss = task.compute_losses(batch, task(batch))["loss"]
        loss.backward()
        return loss

    for step in range(5):
        task.optimizer_step(0, step, optimiser, closure)  # the hook Lightning calls: step, then the average
    trained, averaged = task.model.linear.weight, task.ema.module.linear.weight
    assert int(task.ema.n_averaged) == 5
    assert not torch.allclose(averaged, start)  # the average moved with the steps ...
    assert not torch.allclose(trained, averaged)  # ... and lags behind the trained weights
    # with decay 0.9 the average is the exponential average of the weights after each step
    task.eval()
    torch.testing.assert_close(task(batch).logits, task.ema.module(batch["tfidf"]))
    task.train()
    torch.testing.assert_close(task(batch).logits, task.model(batch["tfidf"]))
