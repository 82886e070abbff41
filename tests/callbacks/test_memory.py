"""Memory telemetry: the heap trim really returns freed pages, and PeakMemory trims only when memory runs low."""

import ctypes.util
import sys
from typing import ClassVar

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

import callbacks.memory
from callbacks.memory import PeakMemory
from utils.memory import available_memory_share, rss_mb, trim_heap


@pytest.mark.skipif(sys.platform != "linux" or not ctypes.util.find_library("c"), reason="glibc malloc_trim")
def test_trim_heap_returns_the_pages_a_fragmented_heap_holds():
    big = torch.ones(8 * 2**20, dtype=torch.uint8)
    del big  # freeing a mapped block raises glibc's mmap threshold, so the next blocks come from the heap
    blocks = [torch.ones(2**20, dtype=torch.uint8) for _ in range(256)]
    pinned = blocks[-1]  # the top of the heap stays in use, so free() alone cannot shrink it
    del blocks[:-1]
    before = rss_mb()
    trim_heap()
    assert before - rss_mb() > 128  # most of the 255 freed MiB leave the resident set
    assert pinned.sum().item() == 2**20


def test_available_memory_share_is_a_fraction():
    share = available_memory_share()
    assert share is None or 0.0 < share < 1.0


class ShrinkingMemoryModel(BoringModel):
    """Sets the memory share the callback reads after each batch: train 0.6, 0.2, 0.5, test 0.1, 0.9."""

    share: ClassVar[dict] = {"now": 1.0}

    def training_step(self, batch, batch_idx):
        self.share["now"] = [0.6, 0.2, 0.5][batch_idx]
        return super().training_step(batch, batch_idx)

    def test_step(self, batch, batch_idx):
        self.share["now"] = [0.1, 0.9][batch_idx]
        return super().test_step(batch, batch_idx)


@pytest.mark.parametrize("enabled", [True, False])
def test_peak_memory_trims_only_when_memory_runs_low(monkeypatch, tmp_path, enabled):
    trims = []
    monkeypatch.setattr(callbacks.memory, "available_memory_share", lambda: ShrinkingMemoryModel.share["now"])
    monkeypatch.setattr(callbacks.memory, "trim_heap", lambda: trims.append(1))
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=0,
        limit_test_batches=2,
        num_sanity_val_steps=0,
        callbacks=[PeakMemory(trim_cpu_heap=enabled, trim_below_available=0.25)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    model = ShrinkingMemoryModel()
    trainer.fit(model)
    assert trainer.callback_metrics["peak_rss_mb"] > 0
    trainer.test(model, verbose=False)
    assert len(trims) == (2 if enabled else 0)  # after the batches that left 0.2 and 0.1 available
