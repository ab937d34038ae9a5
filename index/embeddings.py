"""all-MiniLM-L6-v2 (local files, never a download) as an explicit Chroma embedding function.

Two runtimes give the same vectors (cosine > 0.9999, tests/search/test_embeddings_onnx.py): ONNX Runtime on an export
of the model with fused attention (shopdesk.models.export_embedding_onnx), and sentence-transformers on torch. The
default is ONNX Runtime on an int8 quantization of that export (shopdesk.models.quantize_embedding_onnx): other
vectors (cosine >= 0.97 to fp32), so an index records which kind it holds (`vectors`) and is embedded again for
another. bench/bench_search.py measures them against the CPU's matmul ceilings.
"""

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
                 query_threads: int | None = QUERY_THREADS, onnx_path: str | None = None, quantized: bool = False):
        self.model_path = model_path
        self.onnx_path = onnx_path  # set: ONNX Runtime on this export of the model, not torch
        self.quantized = quantized  # onnx_path is an int8 quantization: vectors of their own kind
        self.batch_size = batch_size
        self.threads = threads
        self.query_threads = query_threads  # torch threads for embed_query; None: the process's own count
        self._model: Any = None
        self._lock = threading.Lock()  # concurrent sessions share one instance: load the model once
        self._query_worker: ThreadPoolExecutor | None = None
        self._onnx: dict[int, _OnnxEncoder] = {}  # by thread count: batches and queries each get their own session
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

    def _onnx_encoder(self, threads: int | None) -> _OnnxEncoder:
        key = threads or 0
        if key not in self._onnx:
            with self._lock:
                if key not in self._onnx:
                    self._onnx[key] = _OnnxEncoder(self.model_path, self.onnx_path, threads=key)
                    self.loads += 1
        return self._onnx[key]

    def __call__(self, input: Documents) -> Embeddings:
        if self.onnx_path:
            return list(self._onnx_encoder(self.threads).encode(list(input), self.batch_size))
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
        if self.onnx_path:  # a session of its own with query_threads threads; ONNX Runtime's run is thread-safe
            return list(self._onnx_encoder(self.query_threads or self.threads).encode(list(input), self.batch_size))
        if not self.query_threads:
            return self(input)
        _ = self.model  # load here: loading applies `threads`, which must not land on the worker
        if self._query_worker is None:
            with self._lock:
                if self._query_worker is None:
                    self._query_worker = _thread_limited_worker(self.query_threads)
        return self._query_worker.submit(self, input).result()

    @property
    def vectors(self) -> str:
        """The kind of vectors this function makes: the model folder's name and fp32 or int8. An index holds one
        kind; `index build` embeds everything again when it held another.
        """
        from pathlib import Path

        folder = Path(self.model_path)
        return f"{folder.parent.name}/{folder.name}:{'int8' if self.quantized else 'fp32'}"

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


class _OnnxEncoder:
    """The sentence-transformers pipeline of a BERT encoder on ONNX Runtime: the model folder's own tokenizer (its
    tokenizer.json, truncated at the folder's max_seq_length), the exported encoder, mean pooling over real tokens,
    unit length. Texts are batched by length, as sentence-transformers does, so little of a batch is padding.
    """

    def __init__(self, model_path: str, onnx_path: str, threads: int = 0):
        import json
        from pathlib import Path

        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(model_path)
        config = folder / "sentence_bert_config.json"
        max_length = json.loads(config.read_text()).get("max_seq_length", 256) if config.exists() else 256
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.no_padding()
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default (the physical cores)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}  # the fusions may drop one the model does not use
        self.dim = self.session.get_outputs()[0].shape[-1]

    def encode(self, texts: list[str], batch_size: int):
        import numpy as np

        encoded = self.tokenizer.encode_batch(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(encoded[i].ids))
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            width = max(len(encoded[i].ids) for i in idx)
            ids = np.full((len(idx), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            types = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                e = encoded[i]
                ids[row, :len(e.ids)] = e.ids
                mask[row, :len(e.ids)] = e.attention_mask
                types[row, :len(e.ids)] = e.type_ids
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})[0]
            m = mask[..., None].astype(np.float32)
            vectors = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
            out[idx] = vectors
        return out


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
    from shopdesk.models import embedding_onnx, resolve_embedding_model

    onnx = str(embedding_onnx(settings)) if settings.embedding_runtime != "torch" else None
    return LocalEmbeddingFunction(resolve_embedding_model(settings), threads=settings.torch_threads, onnx_path=onnx,
                                  quantized=settings.embedding_runtime == "onnx-int8")
