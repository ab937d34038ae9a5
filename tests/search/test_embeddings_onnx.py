"""The ONNX Runtime embeddings (the default runtime) give the vectors sentence-transformers gives on torch."""

from __future__ import annotations

import numpy as np
import pytest

TEXTS = [
    "Sony WH-1000XM5 wireless noise cancelling headphones, 30 hours of battery",
    "降噪耳机,音质很好,但是有点夹头",
    "4K TV",
    "",
    "a " * 400,  # longer than the model's 256 tokens: truncated the same way
]


@pytest.fixture(scope="module")
def runtimes():
    from index.embeddings import LocalEmbeddingFunction
    from shopdesk.models import embedding_onnx, resolve_embedding_model
    from shopdesk.settings import get_settings

    settings = get_settings()
    model = resolve_embedding_model(settings)
    return LocalEmbeddingFunction(model), LocalEmbeddingFunction(model, onnx_path=str(embedding_onnx(settings)))


def test_onnx_vectors_match_sentence_transformers(runtimes):
    torch_ef, onnx_ef = runtimes
    ref = np.array(torch_ef(TEXTS))
    got = np.array(onnx_ef(TEXTS))
    assert got.shape == ref.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (got * ref).sum(axis=1).min() > 0.9999
    # a query goes through its own session (query threads) and is the same vector
    q = np.array(onnx_ef.embed_query(["4K TV"]))[0]
    assert float(q @ ref[2]) > 0.9999
    assert set(onnx_ef._onnx) == {0, 1}  # documents: the default threads; a query: one thread, its own session


def test_the_export_is_made_once_and_again_for_another_model(tmp_path, monkeypatch):
    from shopdesk.models import embedding_onnx, embedding_onnx_path
    from shopdesk.settings import get_settings

    monkeypatch.setenv("SHOPDESK_EMBEDDING_ONNX", str(tmp_path / "e" / "model.onnx"))
    settings = get_settings()
    out = embedding_onnx(settings)
    assert out == embedding_onnx_path(settings) and out.exists()
    made = out.stat().st_mtime_ns
    assert embedding_onnx(settings).stat().st_mtime_ns == made  # kept
    out.with_suffix(".source").write_text("/some/other/model")
    assert embedding_onnx(settings).stat().st_mtime_ns != made  # exported again for this model
    assert not list(out.parent.glob("*.partial"))


def test_the_default_runtime_is_onnx_and_torch_can_be_chosen(monkeypatch):
    from index.embeddings import embedding_function
    from shopdesk.settings import get_settings

    assert embedding_function(get_settings()).onnx_path
    monkeypatch.setenv("SHOPDESK_EMBEDDING_RUNTIME", "torch")
    assert embedding_function(get_settings()).onnx_path is None
