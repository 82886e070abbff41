"""Disk cache of prepared arrays: atomic writes, and corrupt files detected and rebuilt."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from datamodules.formats import DataError
from utils.files import atomic_write

log = logging.getLogger(__name__)
CACHE_ENV = "TOPICBERT_CACHE"


def resolve_cache_dir(cache_dir: str | None) -> Path:
    """The cache root: the argument, else ``$TOPICBERT_CACHE``, else ``~/.cache/topicbert``."""
    return Path(cache_dir or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "topicbert").expanduser()


def writable_cache_dir(cache_dir: str | None) -> Path:
    """The cache root, created and checked writable now rather than when the first view is saved."""
    root = resolve_cache_dir(cache_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=root).close()  # a file can be created there (and is gone again)
    except OSError as err:
        raise DataError(
            f"Cannot write the cache folder {root} ({err.strerror}); pass --data.cache_dir (or set {CACHE_ENV} to) "
            "a folder you can write to."
        ) from None
    return root


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` through a temporary file and a rename, so readers never see half a file."""
    with atomic_write(path, "wb") as f:
        np.savez(f, allow_pickle=True, **arrays)  # numpy's default, named so that no array is taken for it


def load_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays in ``path``, or None when it is missing or unreadable (then it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        log.warning("Cache file %s is corrupt (%s); rebuilding it.", path, err)
        return None


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def cache_path(cache_dir: Path, kind: str, *key_parts: str) -> Path:
    """A cache file name that is readable and unique for the key."""
    digest = hashlib.sha256("\x1f".join(key_parts).encode()).hexdigest()[:20]
    return cache_dir / kind / f"{_SAFE.sub('-', key_parts[0])[:40]}-{digest}.npz"


def texts_to_arrays(texts: list[str]) -> dict[str, np.ndarray]:
    """Texts as one UTF-8 byte array plus offsets (compact, and loadable without pickle)."""
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return {"text_bytes": np.frombuffer(b"".join(encoded), dtype=np.uint8), "text_offsets": offsets}


def arrays_to_texts(arrays: dict[str, np.ndarray]) -> list[str]:
    data, offsets = arrays["text_bytes"].tobytes(), arrays["text_offsets"]
    return [data[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(len(offsets) - 1)]
