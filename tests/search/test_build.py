"""Incremental index build: only new or changed records are embedded; metadata-only changes skip embedding."""

from __future__ import annotations


def counting(inner):
    """The real embedder (same loaded model) that counts the documents it is asked to embed."""
    from index.embeddings import LocalEmbeddingFunction

    class CountingEmbedder(LocalEmbeddingFunction):
        def __init__(self):
            super().__init__(inner.model_path)
            self._model = inner.model
            self.calls: list[int] = []

        def __call__(self, input):
            self.calls.append(len(input))
            return super().__call__(input)

        @property
        def embedded(self) -> int:
            return sum(self.calls)

    return CountingEmbedder()


def test_rebuild_embeds_only_changes(tmp_path, embedder, speaker_shop):
    from index.build import build_index
    from index.search import Filters, SearchIndex
    from store.models import Product, Review, Variant

    settings, store = speaker_shop(tmp_path)
    ef = counting(embedder)
    first = build_index(store, settings, progress=False, ef=ef)
    assert (first.products.embedded, first.reviews.embedded) == (6, 2)
    assert ef.embedded == 8

    again = build_index(store, settings, progress=False, ef=ef)
    assert (again.products.embedded, again.reviews.embedded, again.products.unchanged) == (0, 0, 6)
    assert ef.embedded == 8, "an unchanged store must not be embedded again"

    with store.transaction() as s:
        s.get(Product, "p3").description = "Waterproof speaker for the pool"  # text change: re-embed
        s.get(Variant, "v4").available = False  # filter change only: update metadata, no embedding
        s.delete(s.get(Variant, "v5"))
        s.delete(s.get(Product, "p5"))  # removed: delete from the index
        s.delete(s.get(Review, "r2"))
        s.add(Review(id="r3", product_id="p0", rating=4, text="Good value."))
    third = build_index(store, settings, progress=False, ef=ef)
    assert third.products.embedded == 1
    assert third.products.metadata_updated == 1
    assert third.products.deleted == 1
    assert (third.reviews.embedded, third.reviews.deleted) == (1, 1)
    assert ef.embedded == 10
    assert third.products.total == 5 and third.reviews.total == 2

    index = SearchIndex(settings, ef=embedder)
    hits, _, _ = index.search_products("waterproof pool speaker", Filters(), k=1)
    assert hits[0].id == "p3"
    in_stock, _, _ = index.search_products("speaker", Filters(in_stock=True), k=10, mode="vector")
    assert "p4" not in {h.id for h in in_stock} and len(in_stock) == 4
    store.dispose()


def test_build_report_counts_every_record(search_env):
    report = search_env["report"]
    assert report.products.total == len(search_env["products"])
    assert report.reviews.total == len(search_env["reviews"])
    assert report.products.embedded == report.products.total


def test_another_kind_of_vectors_embeds_everything_again(tmp_path, embedder, speaker_shop):
    # fp32 and int8 vectors of the same text differ (cosine ~0.99): an index holds one kind, and a build with the
    # other embeds every record again, once
    from index.build import build_index
    from index.client import VECTORS, get_collection, open_chroma

    settings, store = speaker_shop(tmp_path)
    fp32 = counting(embedder)
    assert fp32.vectors.endswith(":fp32")
    build_index(store, settings, progress=False, ef=fp32)

    int8 = counting(embedder)
    int8.quantized = True
    again = build_index(store, settings, progress=False, ef=int8)
    assert (again.products.embedded, again.reviews.embedded) == (6, 2) and int8.embedded == 8
    assert build_index(store, settings, progress=False, ef=int8).products.embedded == 0
    client = open_chroma(settings)
    assert get_collection(client, "products", int8).metadata[VECTORS] == int8.vectors
