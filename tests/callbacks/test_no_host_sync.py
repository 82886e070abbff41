"""Telemetry does not slow what it measures: no callback reads a tensor on the host during a training step.

On CUDA a host read (``.item()``, ``bool()``, ``.tolist()``, ``.cpu()``) waits for the queued GPU work,
so the CPU stops feeding the GPU. There is no GPU here, so every per-step hook of the telemetry
callbacks runs under a guard that fails on any such read; reads at epoch ends are allowed.
"""

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils._python_dispatch import TorchDispatchMode

from callbacks.energy import EnergyTracker
from callbacks.memory import PeakMemory
from callbacks.nonfinite import NonFiniteLossGuard
from callbacks.summary import RunSummary
from callbacks.throughput import TrainingThroughput
from callbacks.timing import EpochTimer
from cli import main
from tests.conftest import tiny_args

STEP_HOOKS = (
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
)
READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__")


class HostSyncError(AssertionError):
    """A per-step hook read a tensor on the host."""


class NoHostSync(TorchDispatchMode):
    """Fails on the ops that copy a tensor's value to the host (what ``item()``, ``bool()`` and
    data-dependent shapes do)."""

    FORBIDDEN = (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.nonzero.default)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in self.FORBIDDEN:
            raise HostSyncError(f"host read through {func}")
        return func(*args, **(kwargs or {}))


def guarded(hook, monkeypatch_reads):
    def run(*args, **kwargs):
        with monkeypatch_reads(), NoHostSync():
            return hook(*args, **kwargs)

    return run


@pytest.fixture
def no_reads_in_step_hooks(monkeypatch):
    import contextlib

    @contextlib.contextmanager
    def reads_fail():
        with pytest.MonkeyPatch.context() as mp:
            for name in READS:
                mp.setattr(torch.Tensor, name, lambda *a, _name=name, **k: (_ for _ in ()).throw(HostSyncError(_name)))
            yield

    for cls in (EpochTimer, TrainingThroughput, PeakMemory, EnergyTracker, RunSummary, NonFiniteLossGuard):
        for hook in STEP_HOOKS:
            if getattr(cls, hook) is not getattr(Callback, hook):
                monkeypatch.setattr(cls, hook, guarded(getattr(cls, hook), reads_fail))


def test_the_guard_catches_a_host_read(no_reads_in_step_hooks):
    with pytest.raises(HostSyncError), NoHostSync():
        bool(torch.ones(2).sum() > 1)


def test_telemetry_reads_nothing_on_the_host_during_steps(no_reads_in_step_hooks, tiny_corpus_dir, tiny_encoder_dir):
    cli = main(
        [
            "fit",
            *tiny_args(tiny_corpus_dir, tiny_encoder_dir),
            "--model.init_args.num_topics",
            "8",
            "--trainer.max_epochs",
            "1",
            "--test_after_fit",
            "false",
            "--nonfinite.defer",
            "true",  # the NaN guard as on CUDA: flags stay on the device between reads
            "--trainer.log_every_n_steps",
            "1000",
        ]
    )
    figures = cli.trainer.callback_metrics
    assert figures["docs_per_epoch"] == 72 and figures["tokens_per_s"] > 0 and figures["time_batch_s"] > 0
    assert figures["model_tflops_per_s"] > 0 and figures["nonfinite_batches_skipped"] == 0
