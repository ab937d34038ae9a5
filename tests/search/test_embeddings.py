"""Query embedding runs with its own torch thread count and leaves the rest of the process's count alone (the torch
runtime; the ONNX Runtime one gives queries a session of their own: test_embeddings_onnx.py).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest


@pytest.fixture(scope="module")
def embedder():
    from index.embeddings import LocalEmbeddingFunction
    from shopdesk.models import resolve_embedding_model

    ef = LocalEmbeddingFunction(resolve_embedding_model())  # no onnx_path: sentence-transformers on torch
    ef(["warm up"])
    return ef


def test_query_embedding_uses_one_thread_and_leaves_the_process_count(embedder, monkeypatch):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # what CI's 2 cores give by default; set so the test means the same anywhere
    try:
        seen: list[tuple[str, int]] = []
        encode = embedder.model.encode

        def recording_encode(*args, **kwargs):
            seen.append((threading.current_thread().name, torch.get_num_threads()))
            return encode(*args, **kwargs)

        monkeypatch.setattr(embedder.model, "encode", recording_encode)
        query = ["quiet soundbar under $300"]
        by_query = embedder.embed_query(query)
        by_call = embedder(query)

        assert seen[0][0].startswith("shopdesk-query-embed") and seen[0][1] == 1
        assert seen[1] == (threading.current_thread().name, 2)  # documents (index build) keep all threads
        assert torch.get_num_threads() == 2
        fresh: list[int] = []
        t = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
        t.start()
        t.join()
        assert fresh == [2]  # the process default other threads start from is unchanged
        np.testing.assert_allclose(by_query[0], by_call[0], atol=1e-5)
    finally:
        torch.set_num_threads(before)


def test_query_threads_none_embeds_on_the_calling_thread(embedder, monkeypatch):
    seen: list[str] = []
    encode = embedder.model.encode

    def recording_encode(*args, **kwargs):
        seen.append(threading.current_thread().name)
        return encode(*args, **kwargs)

    monkeypatch.setattr(embedder.model, "encode", recording_encode)
    monkeypatch.setattr(embedder, "query_threads", None)
    embedder.embed_query(["tv"])
    assert seen == [threading.current_thread().name]
