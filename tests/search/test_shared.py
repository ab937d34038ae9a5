"""One search index per registry: the sessions handed a registry share it (the embedding model loads once), a rebuild
is seen, and two registries share nothing.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest


@pytest.fixture
def registry():
    from index.shared import IndexRegistry

    fresh = IndexRegistry()
    yield fresh
    fresh.clear()


def _session(settings, store, registry):
    from tools.context import ShopContext

    return ShopContext(store=store, settings=settings, role="customer", customer_id="c1", indexes=registry)


def test_sessions_share_one_index_and_one_model(tmp_path, registry, speaker_shop):
    from index.build import build_index
    from tools.search import open_index, search_products

    settings, store = speaker_shop(tmp_path)
    ef = registry.embedder(settings)
    build_index(store, settings, progress=False, ef=ef)

    sessions = [_session(settings, store, registry) for _ in range(4)]
    results, errors = [], []

    def chat(ctx):
        try:
            results.append([p.product_id for p in search_products(ctx, "X300 speaker", k=3).products])
        except Exception as exc:  # noqa: BLE001 - surfaced below; a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=chat, args=(c,)) for c in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(r[0] == "p3" for r in results) and len(results) == 4
    # loaded once for all four sessions: on ONNX Runtime the build's session and one query session, on torch one model
    assert ef.loads == (2 if ef.onnx_path else 1)
    assert registry.builds == 1
    assert len({id(open_index(c)) for c in sessions}) == 1
    assert all(_not_pinned(c) for c in sessions)
    store.dispose()


def _not_pinned(ctx) -> bool:
    """The shared handle is not pinned in a session's cache, so the next call can see a rebuild."""
    return "search_index" not in ctx.cache


def test_rebuild_is_seen_by_running_sessions(tmp_path, registry, speaker_shop):
    from index.build import build_index
    from store.models import Product, Variant
    from tools.search import open_index, search_products

    settings, store = speaker_shop(tmp_path)
    ef = registry.embedder(settings)
    build_index(store, settings, progress=False, ef=ef)
    ctx = _session(settings, store, registry)
    assert not [p for p in search_products(ctx, "Zorblax", k=3).products if p.product_id == "p9"]
    before = open_index(ctx)

    # an unchanged rebuild keeps the instance (and its BM25 corpus)
    build_index(store, settings, progress=False, ef=ef)
    assert open_index(ctx) is before

    with store.transaction() as s:
        s.add(Product(id="p9", name="Zorblax Boombox 9000", category="Speakers", brand="Zorblax",
                      description="Loud boombox", rating=4.5, rating_count=2))
        s.add(Variant(id="v9", product_id="p9", price=Decimal("99.00"), available=True))
    build_index(store, settings, progress=False, ef=ef)

    after = open_index(ctx)
    assert after is not before
    assert search_products(ctx, "Zorblax", k=3).products[0].product_id == "p9"
    assert registry.builds == 2
    assert ef.loads == (2 if ef.onnx_path else 1)  # a new index, the same loaded model (ONNX: documents and queries)
    store.dispose()


def test_different_stores_get_different_indexes(tmp_path, registry, speaker_shop):
    from index.build import build_index

    settings, store = speaker_shop(tmp_path / "a")
    build_index(store, settings, progress=False, ef=registry.embedder(settings))
    first = registry.get(settings)
    other = registry.get(settings.model_copy(update={"chroma_path": tmp_path / "elsewhere"}))
    assert first is not other
    assert registry.get(settings) is first
    store.dispose()


def test_two_registries_hold_independent_indexes(tmp_path, registry, speaker_shop):
    """Two owners (two shops' servers, two tests) each keep their own index, client and model; neither sees the
    other's.
    """
    from index.build import build_index
    from index.shared import IndexRegistry
    from tools.search import open_index, search_products

    settings, store = speaker_shop(tmp_path)
    build_index(store, settings, progress=False, ef=registry.embedder(settings))
    other = IndexRegistry()
    try:
        mine, theirs = _session(settings, store, registry), _session(settings, store, other)
        assert open_index(mine) is registry.get(settings, store.url)
        assert open_index(theirs) is other.get(settings, store.url)
        assert open_index(mine) is not open_index(theirs)
        assert registry.embedder(settings) is not other.embedder(settings)
        assert registry.builds == other.builds == 1
        assert search_products(mine, "X300 speaker", k=3).products[0].product_id == "p3"
        assert search_products(theirs, "X300 speaker", k=3).products[0].product_id == "p3"
        registry.clear()  # one owner letting go leaves the other's index alone
        assert open_index(theirs) is other.get(settings, store.url) and other.builds == 1
    finally:
        other.clear()
        store.dispose()


def test_a_context_searches_the_registry_it_was_given():
    """The tools take the registry from the context; no module-level registry is consulted."""
    from types import SimpleNamespace

    from tools.context import ShopContext
    from tools.search import open_index

    asked = []
    index = object()

    class Registry:
        def get(self, settings, store_url=None):
            asked.append((settings, store_url))
            return index

    settings = SimpleNamespace()
    ctx = ShopContext(store=SimpleNamespace(url="sqlite:///shop.db"), settings=settings, role="customer",
                      customer_id="c1", indexes=Registry())
    assert open_index(ctx) is index
    assert asked == [(settings, "sqlite:///shop.db")]
    ctx.cache["search_index"] = "pinned"  # a handle a caller put in the cache still wins
    assert open_index(ctx) == "pinned" and len(asked) == 1


def test_a_context_made_without_a_registry_uses_the_default_one(monkeypatch):
    from types import SimpleNamespace

    import index.shared
    from tools.context import ShopContext
    from tools.search import open_index

    asked = []

    class Registry:
        def get(self, settings, store_url=None):
            asked.append(store_url)
            return "default index"

    default = Registry()
    monkeypatch.setattr(index.shared, "_default", default)
    a = ShopContext(store=SimpleNamespace(url="sqlite:///a.db"), settings=SimpleNamespace(), role="marketer")
    assert a.indexes is None and open_index(a) == "default index" and asked == ["sqlite:///a.db"]


def _index_build_in_another_process(settings) -> dict:
    """`shopdesk index build` in a fresh interpreter on the same data dir, as an operator would run it."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "SHOPDESK_DATA_DIR": str(settings.data_dir)}
    env.pop("SHOPDESK_CHROMA_URL", None)
    done = subprocess.run([sys.executable, "-m", "shopdesk.cli", "index", "build", "--json", "--quiet"],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_build_in_another_process_is_seen_by_vector_search(tmp_path, registry, speaker_shop, monkeypatch):
    """A local Chroma folder rebuilt by another process: the running app's vector search finds the new product.

    chromadb keeps one System per folder per process, and its in-memory vector segment does not see another
    process's writes; the registry must open a fresh one when the build hash changes.
    """
    from index.build import build_index
    from store.models import Product, Variant

    monkeypatch.setenv("SHOPDESK_DATA_DIR", str(tmp_path / "data"))
    settings, store = speaker_shop(tmp_path)
    build_index(store, settings, progress=False, ef=registry.embedder(settings))
    first = registry.get(settings)
    query = "Zorblax boombox"
    assert "p9" not in [h.id for h in first.search_products(query, k=3, mode="vector")[0]]

    with store.transaction() as s:
        s.add(Product(id="p9", name="Zorblax Boombox 9000", category="Speakers", brand="Zorblax",
                      description="Loud boombox for parties", rating=4.5, rating_count=2))
        s.add(Variant(id="v9", product_id="p9", price=Decimal("99.00"), available=True))
    report = _index_build_in_another_process(settings)
    assert report["products"]["embedded"] == 1 and report["products"]["total"] == 7

    after = registry.get(settings)
    assert after is not first and after.client is not first.client
    assert registry.reopens == 1
    hits = after.search_products(query, k=3, mode="vector")[0]
    assert hits[0].id == "p9"
    assert after.collection("products").count() == 7
    # keyword search saw it before this fix too; the fused ranking must agree
    assert after.search_products(query, k=3)[0][0].id == "p9"
    store.dispose()
