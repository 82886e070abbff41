"""Memory telemetry: the heap trim really returns freed pages, and PeakMemory trims after each CPU batch."""

import ctypes.util
import sys
from typing import ClassVar

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

import callbacks.memory
from callbacks.memory import PeakMemory, rss_mb, trim_heap


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


class GrowingModel(BoringModel):
    """Sets the resident set the callback reads after each batch: train 1000, 1400, 1600 (over 1.5x
    the first), test 900, 2000 (over 1.5x)."""

    rss: ClassVar[dict] = {"now": 0.0}

    def training_step(self, batch, batch_idx):
        self.rss["now"] = [1000, 1400, 1600][batch_idx]
        return super().training_step(batch, batch_idx)

    def test_step(self, batch, batch_idx):
        self.rss["now"] = [900, 2000][batch_idx]
        return super().test_step(batch, batch_idx)


@pytest.mark.parametrize("enabled", [True, False])
def test_peak_memory_trims_only_when_a_loop_outgrows_its_first_batch(monkeypatch, tmp_path, enabled):
    trims = []
    monkeypatch.setattr(callbacks.memory, "rss_mb", lambda: GrowingModel.rss["now"])
    monkeypatch.setattr(callbacks.memory, "trim_heap", lambda: trims.append(1))
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=3, limit_val_batches=0,
                         limit_test_batches=2, num_sanity_val_steps=0,
                         callbacks=[PeakMemory(trim_cpu_heap=enabled, trim_growth=1.5)], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path)  # fmt: skip
    model = GrowingModel()
    trainer.fit(model)
    assert trainer.callback_metrics["peak_rss_mb"] > 0
    trainer.test(model, verbose=False)
    assert len(trims) == (2 if enabled else 0)
