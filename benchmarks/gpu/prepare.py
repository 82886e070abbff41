"""Prepare what the GPU check carries to the device, which has torch but no registry (issue 19).

    python benchmarks/gpu/prepare.py

Writes, in folders that git ignores (``.git/info/exclude``):

- ``.whl/``: Python 3.12 x86-64 wheels of what the device image lacks and the runs import (nltk,
  codecarbon, jsonargparse and their needs; not wandb, since the device runs log with
  ``--wandb false``; not codecarbon's login and CLI packages, which the tracker does not import);
- ``.gpu/common/``: R8 (gzipped), NLTK's English stopwords and all-MiniLM-L6-v2's configuration and
  tokenizer files (the random BERT-base of the speed runs uses its tokenizer);
- ``.gpu/weights/``: all-MiniLM-L6-v2's weights in half precision, gzipped (run.sh widens them to
  fp32 on the device, beside the tokenizer, for the main job).

Then prints what each device call carries against the 64 MiB limit.
"""

from __future__ import annotations

import gzip
import importlib.metadata as metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
LIMIT_MIB = 64
# the device image's packages (the device tool's KINDS.md), normalised
DEVICE_HAS = set(
    [
        "attrs",
        "certifi",
        "charset-normalizer",
        "click",
        "colorama",
        "filelock",
        "fsspec",
        "huggingface-hub",
        "idna",
        "jinja2",
        "joblib",
        "lightning",
        "lightning-utilities",
        "markupsafe",
        "matplotlib",
        "numpy",
        "nvidia-ml-py",
        "packaging",
        "pandas",
        "pillow",
        "pip",
        "prometheus-client",
        "protobuf",
        "psutil",
        "py-cpuinfo",
        "pygments",
        "python-dateutil",
        "pytorch-lightning",
        "pyyaml",
        "regex",
        "requests",
        "rich",
        "safetensors",
        "scikit-learn",
        "scipy",
        "setuptools",
        "shellingham",
        "six",
        "sympy",
        "threadpoolctl",
        "tokenizers",
        "torch",
        "torchmetrics",
        "tqdm",
        "transformers",
        "typer",
        "typing-extensions",
        "urllib3",
        "pytest",
        "hypothesis",
    ]
)
NEEDED = ["nltk", "codecarbon", "jsonargparse", "docstring-parser"]
# imported only by codecarbon's login and command line, not by its tracker
NOT_IMPORTED = {"authlib", "joserfc", "cryptography", "cffi", "pycparser", "questionary", "prompt-toolkit", "wcwidth"}
# the device: CPython 3.12 on x86-64 Linux (a requirement for an extra is not installed)
DEVICE_ENVIRONMENT = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}
ENCODER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_pins() -> list[str]:
    """``name==version`` of every package the needed ones pull in that the device lacks (versions as here)."""
    pins, stack, seen = [], list(NEEDED), set()
    while stack:
        name = normalise(stack.pop())
        if name in seen or name in DEVICE_HAS or name in NOT_IMPORTED:
            continue
        seen.add(name)
        dist = metadata.distribution(name)
        pins.append(f"{name}=={dist.version}")
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate(DEVICE_ENVIRONMENT):
                stack.append(requirement.name)
    return sorted(pins)


def download_wheels(folder: Path) -> None:
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    for pin in wheel_pins():
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        command += ["--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(folder), pin]
        subprocess.run(command, check=True)


def write_common(folder: Path, data_root: Path, nltk_root: Path, encoder: Path) -> None:
    (folder / "data" / "r8").mkdir(parents=True, exist_ok=True)
    for path in sorted((data_root / "r8").glob("*.txt")):
        with path.open("rb") as src, gzip.open(folder / "data" / "r8" / f"{path.name}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    tokenizer = folder / "minilm"
    tokenizer.mkdir(exist_ok=True)
    for name in ENCODER_FILES:
        shutil.copy(encoder / name, tokenizer / name)
    stopwords = folder / "nltk_data" / "corpora" / "stopwords"
    stopwords.mkdir(parents=True, exist_ok=True)
    shutil.copy(nltk_root / "corpora" / "stopwords" / "english", stopwords / "english")


def write_half_precision_weights(folder: Path, encoder: Path) -> None:
    from safetensors.torch import load_file, save

    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.half().contiguous() for k, v in load_file(str(encoder / "model.safetensors")).items()}
    with gzip.open(folder / "model.fp16.safetensors.gz", "wb", compresslevel=9) as f:
        f.write(save(weights, metadata={"format": "pt"}))


def mib(*paths: Path) -> float:
    return sum(f.stat().st_size for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()) / 2**20


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from utils.pretrained import resolve_pretrained

    exclude = ROOT / ".git" / "info" / "exclude"
    lines = exclude.read_text().splitlines() if exclude.is_file() else []
    with exclude.open("a") as f:
        f.writelines(f"{entry}\n" for entry in ("/.whl/", "/.gpu/") if entry not in lines)
    encoder = Path(resolve_pretrained("sentence-transformers/all-MiniLM-L6-v2"))
    shared = ROOT.parent / "shared"
    shutil.rmtree(ROOT / ".whl", ignore_errors=True)
    shutil.rmtree(ROOT / ".gpu", ignore_errors=True)
    download_wheels(ROOT / ".whl")
    write_common(ROOT / ".gpu" / "common", shared / "data", shared / "nltk_data", encoder)
    write_half_precision_weights(ROOT / ".gpu" / "weights", encoder)
    tree = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True)
    repo = sum((ROOT / p).stat().st_size for p in tree.stdout.splitlines() if (ROOT / p).is_file()) / 2**20
    wheels, common, weights = mib(ROOT / ".whl"), mib(ROOT / ".gpu" / "common"), mib(ROOT / ".gpu" / "weights")
    print("wheels: " + ", ".join(sorted(p.name for p in (ROOT / ".whl").iterdir())))
    for call, size in (("bench", repo + wheels + common), ("main", repo + wheels + common + weights)):
        print(
            f"call {call}: {size:.1f} MiB of {LIMIT_MIB} (repo {repo:.1f}, wheels {wheels:.1f}, common {common:.1f}"
            + (f", MiniLM fp16 {weights:.1f})" if call == "main" else ")")
        )
        if size > LIMIT_MIB:
            raise SystemExit(f"error: call {call} would carry {size:.1f} MiB, over the device's {LIMIT_MIB} MiB.")


if __name__ == "__main__":
    main()
