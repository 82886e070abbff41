"""``python cli.py batch-predict --model DIR --input FILE --out FILE.jsonl``: an exported model over a
corpus of any size, streamed.

The input is plain text, one document per line (``-`` reads standard input; ids ``line-<n>`` as
``cli.py predict`` gives them), or JSON Lines (``.jsonl``, ``.jsonl.gz``) with a ``text`` field and an
optional ``id``. Documents are read,
predicted and written ``--chunk_size`` at a time, so memory stays flat as the corpus grows; the
output (one record per input document, in input order, as ``cli.py predict`` writes) is written
beside its target and renamed into place when complete. ``<out>.summary.json`` records documents,
seconds, documents per second and the process's peak memory.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tqdm.auto import tqdm

from datamodules.formats import DataError
from utils.files import atomic_write
from utils.memory import peak_rss_mb

STDIN = "-"


def read_documents(path: str) -> Iterator[tuple[str, str]]:
    """``(id, text)`` one at a time; a line without an id is ``line-<n>``, as ``cli.py predict`` names it."""
    if path == STDIN:
        yield from ((f"line-{n}", line.rstrip("\r\n")) for n, line in enumerate(sys.stdin, 1))
        return
    json_lines = path.endswith((".jsonl", ".jsonl.gz"))
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not json_lines:
                yield f"line-{number}", line.rstrip("\r\n")
                continue
            try:
                row = json.loads(line)
                yield str(row.get("id", f"line-{number}")), row["text"]
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
                raise DataError(
                    f"{path} line {number} is not a JSON object with a text field ({type(err).__name__}); "
                    "fix the line, or give a plain-text file (one document per line)."
                ) from None


def batch_predict(model: str, input: str, out: str, batch_size: int = 64, chunk_size: int = 4096) -> dict:
    """Stream ``input`` through the exported ``model`` into ``out``; returns the summary it writes."""
    from serving.classifier import DocumentClassifier

    if input != STDIN and not Path(input).is_file():
        raise DataError(f"--input {input} is not a file; pass a text or JSON Lines file, or - for standard input.")
    if Path(out).exists():
        raise DataError(f"{out} already exists; pass another --out, or remove it first.")
    classifier = DocumentClassifier.from_pretrained(model)
    start = time.perf_counter()
    documents = skipped = 0
    records = classifier.predict_stream(read_documents(input), batch_size=batch_size, chunk_size=chunk_size)
    with atomic_write(out) as f, tqdm(desc="batch-predict", unit="doc", mininterval=5) as progress:
        for record in records:
            f.write(json.dumps(record) + "\n")
            documents += 1
            skipped += "skipped" in record
            progress.update()
    seconds = time.perf_counter() - start
    summary = {
        "model": model,
        "input": input,
        "documents": documents,
        "skipped": skipped,
        "seconds": seconds,
        "documents_per_s": documents / seconds if seconds else None,
        "peak_rss_mb": peak_rss_mb(),
        "batch_size": batch_size,
        "chunk_size": chunk_size,
    }
    with atomic_write(summary_path(out)) as f:
        json.dump(summary, f, indent=2)
    return summary


def summary_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name.removesuffix(".gz").removesuffix(".jsonl") + ".summary.json")


def main(args: list[str] | None = None) -> Path:
    """Run the command; returns the predictions file."""
    parser = argparse.ArgumentParser(prog="cli.py batch-predict", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a folder written by cli.py export")
    parser.add_argument("--input", required=True, help="text file (one document per line), .jsonl(.gz), or -")
    parser.add_argument("--out", required=True, help="the JSON Lines file to write (must not exist)")
    parser.add_argument("--batch_size", type=int, default=64, help="partitions per forward pass")
    parser.add_argument("--chunk_size", type=int, default=4096, help="documents read and predicted at a time")
    parsed = parser.parse_args(args)
    for name in ("batch_size", "chunk_size"):
        if getattr(parsed, name) < 1:
            raise DataError(f"--{name} must be at least 1, got {getattr(parsed, name)}.")
    summary = batch_predict(parsed.model, parsed.input, parsed.out, parsed.batch_size, parsed.chunk_size)
    print(
        f"Predicted {summary['documents']} documents ({summary['skipped']} skipped) in {summary['seconds']:.1f} s "
        f"({summary['documents_per_s']:.0f} documents/s, peak memory {summary['peak_rss_mb']:.0f} MB); "
        f"written to {parsed.out} (summary in {summary_path(parsed.out).name})"
    )
    return Path(parsed.out)
