"""Atomic writes: a failed or killed writer leaves the old file whole, never half a new one."""

import subprocess
import sys

import pytest

from utils.files import atomic_write


def test_new_content_replaces_the_old_in_one_step(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")
    with atomic_write(target) as f:
        f.write("new")
        assert target.read_text() == "old"  # readers see the old file until the write completes
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_an_error_mid_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "predictions.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["predictions.jsonl"]


def test_a_writer_killed_mid_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "teacher.npz"
    target.write_bytes(b"old")
    writer = (
        "import os, signal, sys\n"
        "from utils.files import atomic_write\n"
        f"with atomic_write({str(target)!r}, 'wb') as f:\n"
        "    f.write(b'x' * 1_000_000); f.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", writer], timeout=120)
    assert result.returncode == -9
    assert target.read_bytes() == b"old"
