"""MFU's peak follows the run's precision and the card, and is absent where no data sheet says."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from utils.hardware import hardware_precision, machine_id, matmul_kind, peak_tflops

CUDA = torch.device("cuda", 0)


@pytest.fixture
def float32_precision():
    """Restore PyTorch's fp32 matmul settings after a test changes them."""
    before = torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32
    yield
    torch.set_float32_matmul_precision(before[0])
    torch.backends.cuda.matmul.allow_tf32 = before[1]


def test_matmul_kind_of_each_precision(float32_precision):
    assert matmul_kind("bf16-mixed") == matmul_kind("bf16-true") == "bf16"
    assert matmul_kind("16-mixed") == matmul_kind("16-true") == "fp16"
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    assert matmul_kind("32-true") == "fp32"
    torch.set_float32_matmul_precision("high")
    assert matmul_kind("32-true") == "tf32"
    assert matmul_kind("64-true") is None


@pytest.mark.parametrize(
    ("card", "precision", "peak"),
    [
        ("NVIDIA H200", "bf16-mixed", 989.4),
        ("NVIDIA H200", "16-mixed", 989.4),
        ("NVIDIA H100 PCIe", "bf16-mixed", 756.0),
        ("NVIDIA A100-SXM4-80GB", "32-true", 19.5),
        ("NVIDIA A10G", "bf16-mixed", 125.0),
        ("Tesla T4", "16-mixed", 65.0),
        ("Tesla T4", "bf16-mixed", None),  # no bf16 on a T4
        ("Some Future GPU", "bf16-mixed", None),
    ],
)
def test_data_sheet_peak_of_card_and_precision(card, precision, peak, monkeypatch, float32_precision):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: card)
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    assert peak_tflops(CUDA, precision) == peak


def test_tf32_products_read_against_the_tf32_peak_or_fp32_where_a_card_has_none(monkeypatch, float32_precision):
    torch.set_float32_matmul_precision("high")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H200")
    assert peak_tflops(CUDA, "32-true") == 494.7
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla V100-SXM2-16GB")
    assert peak_tflops(CUDA, "32-true") == 15.7


def test_no_peak_on_a_cpu():
    assert peak_tflops(torch.device("cpu"), "32-true") is None


def test_precision_follows_the_hardware(monkeypatch):
    assert hardware_precision("cpu") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert hardware_precision("auto") == "bf16-mixed"
    assert hardware_precision("cpu") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert hardware_precision("gpu") == "16-mixed"


def test_the_machine_id_is_stable_and_short():
    assert re.fullmatch(r"[0-9a-f]{12}", machine_id()) and machine_id() == machine_id()


def test_the_command_prints_this_hosts_probe_reading():
    root = Path(__file__).resolve().parents[2]
    printed = subprocess.run(
        [sys.executable, "-m", "utils.hardware"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    found = re.fullmatch(r".+: fp32 matmul (\d+\.\d{3}) TFLOP/s \(machine_fp32_tflops\)\n", printed)
    assert found, printed
    assert 1e-3 < float(found.group(1)) < 1000  # TFLOP/s, from a CPU's to an H200's
