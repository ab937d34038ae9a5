"""Search fixtures: a small real catalog (Costco electronics, a subset of categories) with hand-labelled reviews,
indexed once per session; the embedding model is loaded once and shared.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REVIEWS = HERE / "data" / "reviews_labelled.jsonl"
# Small enough to embed in seconds on 2 cores, varied enough for every kind of query in the relevance set.
CATEGORIES = (
    "Headphones", "Soundbars", "Speakers", "Smart Watches", "Gaming Laptops", "Cameras", "Hard Drives", "Routers",
    "Batteries", "Streaming", "Video Games", "Projectors", "Musical",
)
# Products the labelled reviews are about, added to the subset whatever their category.
REVIEWED = ("MacBook Air - (13.6-inch) Apple M2 Chip 8-core CPU, 8-core GPU", "MacBook Pro (14-inch) - Apple M3 chip",
            "HP 14\" Touchscreen Laptop", "Samsung 85\" Class - QN85C", "LG 86\" Class - UR8000",
            "Sony 85\" Class - X90CL", "Ring Battery Doorbell Plus", "Arlo Essential Outdoor 2K Camera",
            "iPad 10.2-inch, 64GB", "iPad Air 10.9-inch, 256GB", "Mac mini – Apple M2 Chip 8-core CPU, 10-core GPU",
            "LG UltraGear 32\" Class QHD Gaming Monitor", "Acer 27” Class FHD IPS Monitor",
            "Samsung 55\" Class - QN85C",
            "Samsung 65\" Class - QN85C", "Google Nest Learning Thermostat")


def catalog_subset() -> tuple[list[dict], list[dict]]:
    from shopdesk.datasets import electronics_catalog
    from store.importers.catalog import parse_catalog

    data = parse_catalog(electronics_catalog(), skip_bad=True)
    keep = [p for p in data.products
            if p["category"].startswith(CATEGORIES) or any(p["name"].startswith(r) for r in REVIEWED)]
    ids = {p["id"] for p in keep}
    return keep, [v for v in data.variants if v["product_id"] in ids]


def load_reviews() -> list[dict]:
    return [json.loads(line) for line in REVIEWS.read_text(encoding="utf-8").splitlines() if line.strip()]


def fill_store(store, products: list[dict], variants: list[dict], reviews: list[dict]) -> dict[str, str]:
    """Write products, variants and reviews; returns review id -> product id."""
    from store.models import Product, Review, Variant

    by_title = {p["name"]: p["id"] for p in products}
    placed: dict[str, str] = {}
    with store.transaction() as s:
        s.add_all(Product(**p) for p in products)
        s.add_all(Variant(**v) for v in variants)
        s.flush()
        for r in reviews:
            pid = next((i for title, i in by_title.items() if title.startswith(r["product"])), None)
            if pid is None:
                continue
            placed[r["id"]] = pid
            s.add(Review(id=r["id"], product_id=pid, rating=r["rating"], title=r["title"], text=r["text"],
                         language=r["lang"], created_at=datetime.fromisoformat(r["date"])))
    return placed


@pytest.fixture(scope="session")
def embedder():
    """One loaded MiniLM for the whole session (loading costs seconds)."""
    from index.embeddings import embedding_function
    from shopdesk.settings import get_settings

    ef = embedding_function(get_settings())
    ef(["warm up"])
    return ef


@pytest.fixture(scope="session")
def search_env(tmp_path_factory, embedder):
    """A store with the catalog subset and labelled reviews, and its index built once."""
    from index.build import build_index
    from index.search import SearchIndex
    from shopdesk.settings import Settings
    from store.db import open_store

    root = tmp_path_factory.mktemp("search-env")
    settings = Settings(data_dir=root)
    store = open_store(settings.db_url)
    products, variants = catalog_subset()
    reviews = load_reviews()
    placed = fill_store(store, products, variants, reviews)
    report = build_index(store, settings, progress=False, ef=embedder)
    index = SearchIndex(settings, ef=embedder)
    yield {"settings": settings, "store": store, "report": report, "index": index, "products": products,
           "variants": variants, "reviews": [r for r in reviews if r["id"] in placed], "placed": placed}
    store.dispose()


@pytest.fixture
def ctx(search_env):
    """A marketer context on the session index (tools read ctx.cache for the index handle)."""
    from tools.context import ShopContext

    c = ShopContext(store=search_env["store"], settings=search_env["settings"], role="marketer")
    c.cache["search_index"] = search_env["index"]
    return c


def _speaker_shop(tmp_path):
    """Six Acme speakers (p0..p5, v0..v5, $50-$100) and two reviews in a fresh store under tmp_path."""
    from shopdesk.settings import Settings
    from store.db import open_store
    from store.models import Product, Review, Variant

    settings = Settings(data_dir=tmp_path / "data")
    store = open_store(settings.db_url)
    with store.transaction() as s:
        for i in range(6):
            s.add(Product(id=f"p{i}", name=f"Test speaker model X{i}00", category="Speakers", brand="Acme",
                          description=f"Portable speaker number {i} with deep bass", rating=4.0,
                          rating_count=10))
            s.add(Variant(id=f"v{i}", product_id=f"p{i}", price=Decimal(f"{50 + i * 10}.00"), available=True))
        s.flush()
        s.add(Review(id="r1", product_id="p1", rating=5, text="Great sound, battery lasts all day."))
        s.add(Review(id="r2", product_id="p2", rating=1, text="Broke after a week. Terrible."))
    return settings, store


@pytest.fixture
def speaker_shop():
    """A factory: `speaker_shop(folder)` -> (settings, store) of the small speaker shop."""
    return _speaker_shop
