"""Fetching dataset files once into the data root, verified against a published checksum."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from datamodules.formats import DataError
from utils.files import atomic_write, file_digest

CHUNK = 1 << 20


def _check(path: Path, algorithm: str, found: str, expected: str) -> None:
    if found != expected:
        raise DataError(
            f"{path} does not match its published {algorithm} ({found} instead of {expected}); it is damaged or "
            "another version. Delete it and run again to download a fresh copy, or place the original file there."
        )


def verify_checksum(path: Path, checksum: str) -> None:
    """Raise a :class:`DataError` unless ``path`` matches ``checksum`` (``sha256:<hex>`` or ``md5:<hex>``)."""
    algorithm, expected = checksum.split(":", 1)
    _check(path, algorithm, file_digest(path, algorithm), expected)


def fetch(url: str, path: Path, checksum: str, timeout: float = 60.0) -> None:
    """Download ``url`` to ``path`` with a progress bar; only a complete, verified file appears there.

    Network errors propagate as ``OSError`` (``urllib.error.URLError``) for the caller to explain.
    """
    algorithm, expected = checksum.split(":", 1)
    digest = hashlib.new(algorithm)
    with urllib.request.urlopen(url, timeout=timeout) as response, atomic_write(path, "wb") as f:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"Downloading {path.name}") as bar:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                f.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
        _check(path, algorithm, digest.hexdigest(), expected)  # inside: a bad download is never renamed into place
