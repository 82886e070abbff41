"""``DocumentClassifier``: an exported model (``serving.export``) in Python, for notebooks and services.

    from serving import DocumentClassifier

    model = DocumentClassifier.from_pretrained("exports/topicbert-r8")
    model.predict(["first document", "second document"], batch_size=32)

Each document gets the same record as a line of ``cli.py predict``: ``label`` (or ``labels``),
``probabilities``, and for TopicBERT its dominant ``topic`` and ``topic_words``. Documents of any
length are cut into partitions and their partitions' probabilities averaged exactly as in evaluation
(the same data module and the same per-document aggregation do it).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from callbacks.prediction_writer import PredictionWriter, document_outputs
from datamodules.assets import InferenceAssets
from datamodules.corpus import documents_to_predict
from datamodules.documents import DocumentDataModule
from datamodules.formats import DataError
from lightning_modules.base import task_class
from serving.export import FORMAT


class DocumentClassifier:
    """A trained task and what feeds it, loaded from an export folder."""

    def __init__(self, task, assets: InferenceAssets, encoder: str | None, cache_dir: str | None = None):
        self.task = task.eval()
        self.assets = assets
        self.encoder = encoder
        self.cache_dir = cache_dir

    @classmethod
    def from_pretrained(cls, folder: str | Path, cache_dir: str | None = None) -> DocumentClassifier:
        from safetensors.torch import load_file

        folder = Path(folder)
        try:
            config = json.loads((folder / "config.json").read_text())
        except (OSError, json.JSONDecodeError):
            config = {}
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise DataError(
                f"{folder} is not a folder written by `cli.py export` (no config.json of format {FORMAT}); "
                "pass the --out folder of `python cli.py export --ckpt_path CKPT --out DIR`."
            )
        encoder = str(folder / config["encoder"]) if config.get("encoder") else None
        settings = dict(config["settings"])
        if "encoder" in settings:
            settings["encoder"] = encoder
        task = task_class(config["task"])(**settings)
        task.load_state_dict(load_file(str(folder / "model.safetensors")))
        if config.get("decision_thresholds") is not None:
            task.decision_thresholds.copy_(torch.tensor(config["decision_thresholds"]))
        assets = InferenceAssets(
            label_names=config["label_names"],
            multi_label=config["multi_label"],
            settings=config["data_settings"],
            vocabulary=json.loads((folder / config["vocabulary"]).read_text()) if config.get("vocabulary") else None,
            tfidf=json.loads((folder / config["tfidf"]).read_text()) if config.get("tfidf") else None,
            stopwords=config.get("stopwords"),
        )
        return cls(task, assets, encoder, cache_dir)

    @property
    def label_names(self) -> list[str]:
        return self.assets.label_names

    def predict(self, texts: list[str], batch_size: int = 64, top_words: int = 10) -> list[dict]:
        """One record per text, in order; an empty text gets ``{"id": ..., "skipped": "empty document"}``.
        Ids are the texts' positions (``"0"``, ``"1"``, ...)."""
        texts = list(texts)
        return self._predict_chunk(texts, [str(i) for i in range(len(texts))], batch_size, top_words)

    def predict_stream(
        self,
        documents: Iterable[str | tuple[str, str]],
        batch_size: int = 64,
        top_words: int = 10,
        chunk_size: int = 4096,
    ) -> Iterator[dict]:
        """The records of ``documents`` (texts, or ``(id, text)`` pairs), in order, predicted
        ``chunk_size`` at a time: memory stays flat however many come (a generator over a file works).
        A text's id is its position unless given. Within a chunk, batches are length-bucketed as in
        ``predict``; a chunk's probabilities equal ``predict``'s on the same texts up to float rounding.
        On CPU, start Python with ``ONEDNN_PRIMITIVE_CACHE_CAPACITY=16`` (``cli.py batch-predict`` sets
        it) or oneDNN's cache of kernels per input shape grows with the corpus."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}.")
        ids: list[str] = []
        texts: list[str] = []
        for position, document in enumerate(documents):
            doc_id, text = document if isinstance(document, tuple) else (str(position), document)
            ids.append(doc_id)
            texts.append(text)
            if len(texts) == chunk_size:
                yield from self._predict_chunk(texts, ids, batch_size, top_words)
                ids, texts = [], []
                # Lightning's save_hyperparameters leaves each chunk's data module (and the chunk's texts)
                # in a cycle of frames that only the cyclic collector frees: free it before the next chunk
                gc.collect()
        if texts:
            yield from self._predict_chunk(texts, ids, batch_size, top_words)

    def datamodule(self, texts: list[str], ids: list[str], batch_size: int) -> DocumentDataModule:
        """The data module that feeds ``texts`` to the model as evaluation does (no training data read)."""
        settings = self.assets.settings
        datamodule = DocumentDataModule(
            tokenizer=self.encoder,
            eval_batch_size=batch_size,
            cache_dir=self.cache_dir,
            **{k: v for k, v in settings.items() if k in ("max_length", "num_partitions", "bow", "tfidf")},
        )
        datamodule.use_for_inference(self.assets, documents_to_predict(texts, ids))
        return datamodule

    def _predict_chunk(self, texts: list[str], ids: list[str], batch_size: int, top_words: int) -> list[dict]:
        if not any(text.strip() for text in texts):  # nothing to predict in this chunk
            return [{"id": doc_id, "skipped": "empty document"} for doc_id in ids]
        datamodule = self.datamodule(texts, ids, batch_size)
        device = next(self.task.parameters()).device
        outputs = []
        with torch.inference_mode():
            for i, batch in enumerate(datamodule.predict_dataloader()):
                batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                outputs.append({k: v.cpu() for k, v in self.task.predict_step(batch, i).items()})
        docs, probs, topic = document_outputs(outputs)
        return PredictionWriter(top_words=top_words).in_input_order(datamodule, self.task, docs, probs, topic)
