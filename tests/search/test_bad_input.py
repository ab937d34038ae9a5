"""Bad input gets clear errors (or empty results), never a crash."""

from __future__ import annotations

import pytest

from shopdesk.output import UserError
from tools.errors import NotFoundError, ToolInputError


def test_empty_query(ctx):
    from tools.search import search_products, search_reviews

    for fn in (search_products, search_reviews):
        with pytest.raises(ToolInputError, match="query is empty"):
            fn(ctx, "   ")


def test_huge_query(ctx):
    from tools.search import search_products

    with pytest.raises(ToolInputError, match="102400 characters long; the limit is 1000"):
        search_products(ctx, "x" * 102_400)


def test_unknown_category_lists_the_known_ones(ctx):
    from tools.search import review_insights, search_products

    with pytest.raises(ToolInputError, match="unknown category 'Lawnmowers'; known categories: .*Smart Watches"):
        search_products(ctx, "mower", category="Lawnmowers")
    with pytest.raises(ToolInputError, match="unknown category") as info:
        review_insights(ctx, category="Lawnmowers")
    assert info.value.user_message().startswith("I couldn't find a category called 'Lawnmowers'. Some of the "
                                                "categories are: Batteries, ")


def test_a_person_reads_a_plain_sentence_with_the_closest_category(ctx):
    from tools.search import review_insights, search_products

    with pytest.raises(ToolInputError) as info:  # "What do buyers complain about in headphones?"
        review_insights(ctx, category="In headphones")
    assert info.value.user_message() == (
        "I couldn't find a category called 'In headphones'. Did you mean Headphones & Earbuds?")
    assert "Headphones & Earbuds" in info.value.user_message("zh") and "known" not in info.value.user_message("zh")
    for bad in ({"query": "   "}, {"query": "tv", "k": 0}, {"query": "tv", "min_price": -5}):
        with pytest.raises(ToolInputError) as info:
            search_products(ctx, **bad)
        for lang in ("en", "zh"):
            assert str(info.value) not in info.value.user_message(lang)
            assert not any(raw in info.value.user_message(lang) for raw in ("query", "k must", "min_price"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_price": -5}, "min_price must be a price in USD of 0 or more"),
        ({"max_price": -1.5}, "max_price must be a price in USD of 0 or more"),
        ({"min_price": 500, "max_price": 100}, "min_price \\(500.0\\) is above max_price"),
        ({"min_rating": 7}, "min_rating must be a star rating from 0 to 5"),
        ({"k": 0}, "k must be a whole number from 1 to 20"),
    ],
)
def test_bad_numbers(ctx, kwargs, message):
    from tools.search import search_products

    with pytest.raises(ToolInputError, match=message):
        search_products(ctx, "tv", **kwargs)


def test_no_match_is_an_empty_result(ctx):
    from tools.search import search_products

    result = search_products(ctx, "speaker", max_price=0.5)
    assert result.products == [] and "No products match" in result.render()


def test_unknown_product_for_reviews(ctx):
    from tools.search import search_reviews

    with pytest.raises(NotFoundError, match="no product matches") as info:
        search_reviews(ctx, "battery", product="zzqx nonexistent 99999")
    assert info.value.user_message() == ("I couldn't find a product matching 'zzqx nonexistent 99999'. You can ask me "
                                         "to search for products.")


def test_index_not_built_yet(settings, embedder):
    from tools.context import ShopContext
    from tools.search import search_products

    ctx = ShopContext(store=None, settings=settings, role="customer", customer_id="c1")
    with pytest.raises(NotFoundError, match="search index has not been built"):
        search_products(ctx, "tv")


def test_chroma_folder_from_another_version(tmp_path):
    from index.client import open_chroma
    from shopdesk.settings import Settings

    folder = tmp_path / "chroma"
    folder.mkdir()
    # what an incompatible or damaged chroma.sqlite3 looks like to this version: not a database it knows
    (folder / "chroma.sqlite3").write_bytes(b"SQLite format 3\x00" + b"\x00" * 200 + b"garbage" * 100)
    settings = Settings(data_dir=tmp_path, chroma_path=folder)
    with pytest.raises(UserError, match="cannot be opened by chromadb .*delete it and run `shopdesk index build`"):
        open_chroma(settings)


def test_chroma_folder_with_an_old_schema(tmp_path):
    import sqlite3

    from index.client import open_chroma
    from shopdesk.settings import Settings

    folder = tmp_path / "chroma"
    folder.mkdir()
    with sqlite3.connect(folder / "chroma.sqlite3") as db:  # a 0.3-era layout: tables this version does not have
        db.execute("CREATE TABLE collections (uuid TEXT, name TEXT, metadata TEXT)")
        db.execute("CREATE TABLE embeddings (collection_uuid TEXT, embedding BLOB, document TEXT, id TEXT)")
    settings = Settings(data_dir=tmp_path, chroma_path=folder)
    with pytest.raises(UserError, match="cannot be opened by chromadb"):
        open_chroma(settings)


def test_unreachable_chroma_server(tmp_path, shop_helpers):
    from index.client import open_chroma
    from shopdesk.settings import Settings

    url = f"http://127.0.0.1:{shop_helpers.free_port()}"  # a port nobody listens on
    with pytest.raises(UserError, match=f"cannot reach the Chroma server at {url}"):
        open_chroma(Settings(data_dir=tmp_path, chroma_url=url))
    with pytest.raises(UserError, match="not an http"):
        open_chroma(Settings(data_dir=tmp_path, chroma_url="ftp:/nowhere"))
