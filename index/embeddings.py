"""all-MiniLM-L6-v2 (local files, never a download) as an explicit Chroma embedding function."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

NAME = "shopdesk-minilm"
# One short query gains nothing from a second core and, on a busy machine, loses a lot waiting for it: measured with
# `bench/bench_search.py --query-threads 1,2` (p50 34 ms with 1 thread vs 348 ms with 2 at load average 6-7).
QUERY_THREADS = 1
_TORCH_THREADS = threading.Lock()  # set_num_threads also moves a process-wide default: one change at a time


@register_embedding_function
class LocalEmbeddingFunction(EmbeddingFunction[Documents]):
    """SentenceTransformer on a local model folder; normalised vectors so cosine == dot product.

    The model loads on first use, so opening an index for keyword search or metadata alone stays cheap.
    """

    def __init__(self, model_path: str, batch_size: int = 32, threads: int | None = None,
                 query_threads: int | None = QUERY_THREADS):
        self.model_path = model_path
        self.batch_size = batch_size
        self.threads = threads
        self.query_threads = query_threads  # torch threads for embed_query; None: the process's own count
        self._model: Any = None
        self._lock = threading.Lock()  # concurrent sessions share one instance: load the model once
        self._query_worker: ThreadPoolExecutor | None = None
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

    def embed_query(self, input: Documents) -> Embeddings:
        """Vectors for search queries, computed on one worker thread that runs torch with `query_threads` threads.

        torch's thread count is per thread once set, so the rest of the process (an in-process LLM, `index build`)
        keeps its own.
        """
        if not self.query_threads:
            return self(input)
        _ = self.model  # load here: loading applies `threads`, which must not land on the worker
        if self._query_worker is None:
            with self._lock:
                if self._query_worker is None:
                    self._query_worker = _thread_limited_worker(self.query_threads)
        return self._query_worker.submit(self, input).result()

    @staticmethod
    def name() -> str:
        return NAME

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> LocalEmbeddingFunction:
        return LocalEmbeddingFunction(config["model_path"], config.get("batch_size", 32))

    def get_config(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "batch_size": self.batch_size}


def _thread_limited_worker(threads: int) -> ThreadPoolExecutor:
    """A one-thread executor whose torch ops use `threads` threads, the process default left as it was.

    torch.set_num_threads sets the calling thread's OpenMP count and the process default that other threads take
    when they first use torch. So the worker first takes its default (torch initialises a thread lazily: it would
    otherwise reset the count on its first op), then lowers its own count, and the caller puts the default back.
    """
    import torch

    def own_count() -> None:
        torch.get_num_threads()
        torch.set_num_threads(threads)

    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shopdesk-query-embed")
    with _TORCH_THREADS:
        default = torch.get_num_threads()
        worker.submit(own_count).result()
        torch.set_num_threads(default)
    return worker


def embedding_function(settings) -> LocalEmbeddingFunction:
    """The configured local embedding model as a Chroma embedding function."""
    from shopdesk.models import resolve_embedding_model

    return LocalEmbeddingFunction(resolve_embedding_model(settings), threads=settings.torch_threads)
