"""all-MiniLM-L6-v2 (local files, never a download) as an explicit Chroma embedding function."""

from __future__ import annotations

import threading
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

NAME = "shopdesk-minilm"


@register_embedding_function
class LocalEmbeddingFunction(EmbeddingFunction[Documents]):
    """SentenceTransformer on a local model folder; normalised vectors so cosine == dot product.

    The model loads on first use, so opening an index for keyword search or metadata alone stays cheap.
    """

    def __init__(self, model_path: str, batch_size: int = 32, threads: int | None = None):
        self.model_path = model_path
        self.batch_size = batch_size
        self.threads = threads
        self._model: Any = None
        self._lock = threading.Lock()  # concurrent sessions share one instance: load the model once
        self.loads = 0

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    import torch
                    from sentence_transformers import SentenceTransformer

                    if self.threads:
                        torch.set_num_threads(self.threads)
                    self._model = SentenceTransformer(self.model_path, device="cpu", local_files_only=True)
                    self.loads += 1
        return self._model

    def __call__(self, input: Documents) -> Embeddings:
        vectors = self.model.encode(
            list(input), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [v for v in vectors.astype("float32")]

    @staticmethod
    def name() -> str:
        return NAME

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "LocalEmbeddingFunction":
        return LocalEmbeddingFunction(config["model_path"], config.get("batch_size", 32))

    def get_config(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "batch_size": self.batch_size}


def embedding_function(settings) -> LocalEmbeddingFunction:
    from shopdesk.models import resolve_embedding_model

    return LocalEmbeddingFunction(resolve_embedding_model(settings), threads=settings.torch_threads)
