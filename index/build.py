"""`shopdesk index build`: products and reviews from the store into Chroma, incrementally.

Each record carries two hashes: `doc_hash` (the embedded text) and `meta_hash` (filters such as price or stock).
A re-run embeds only records whose text changed, updates metadata in place where only it changed, and deletes
records that left the store.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from tqdm import tqdm

from index.client import BUILD_HASH, PRODUCTS, REVIEWS, VECTORS, get_collection, open_chroma
from index.sentiment import analyze
from index.text import content_hash

BATCH = 64
PAGE = 5000


@dataclass
class Record:
    id: str
    document: str
    metadata: dict[str, Any] = field(default_factory=dict)


class CollectionReport(BaseModel):
    total: int = Field(description="records in the collection after the build")
    embedded: int = Field(description="new or changed records embedded in this run")
    metadata_updated: int = Field(description="records whose filters changed but text did not (not re-embedded)")
    deleted: int = Field(description="records removed because they left the store")
    unchanged: int


class BuildReport(BaseModel):
    products: CollectionReport
    reviews: CollectionReport
    seconds: float
    embed_records_per_s: float | None = Field(None, description="embedding throughput of this run, records/s")
    target: str = Field(description="Chroma folder or server URL")


def product_records(store) -> Iterator[Record]:
    """One record per product: text to embed + filterable metadata (min price over variants, stock, rating)."""
    from store.models import Product, Review, Variant

    with store.read() as session:
        prices: dict[str, list] = defaultdict(list)
        stock: dict[str, bool] = defaultdict(bool)
        for pid, price, available in session.execute(select(Variant.product_id, Variant.price, Variant.available)):
            prices[pid].append(float(price))
            stock[pid] = stock[pid] or bool(available)
        review_stats: dict[str, list] = defaultdict(list)
        for pid, rating in session.execute(select(Review.product_id, Review.rating)):
            review_stats[pid].append(rating)
        for p in session.scalars(select(Product).order_by(Product.id)).yield_per(1000):
            rating = p.rating
            if rating is None and review_stats.get(p.id):
                rating = sum(review_stats[p.id]) / len(review_stats[p.id])
            ps = prices.get(p.id) or []
            title = p.name.strip()
            parts = [title]
            if p.brand:
                parts.append(f"Brand: {p.brand}")
            if p.category:
                parts.append(f"Category: {p.category}")
            if p.description:
                parts.append(p.description.strip())
            if ps:
                parts.append(f"Price: ${min(ps):.2f}")
            if rating is not None:
                parts.append(f"Rating: {rating:.1f} out of 5")
            meta: dict[str, Any] = {
                "product_id": p.id,
                "title": title[:500],
                "category": p.category or "",
                "category_key": (p.category or "").lower(),
                "brand": p.brand or "",
                "price": min(ps) if ps else -1.0,
                "price_max": max(ps) if ps else -1.0,
                "rating": float(rating) if rating is not None else -1.0,
                "rating_count": int(p.rating_count or len(review_stats.get(p.id, []))),
                "in_stock": bool(stock.get(p.id, False)),
            }
            yield Record(p.id, "\n".join(parts), meta)


def review_records(store) -> Iterator[Record]:
    """One record per review with sentiment and aspects computed here, so insights are counted, not guessed."""
    from store.models import Product, Review

    with store.read() as session:
        rows = session.execute(
            select(Review, Product.name, Product.category).join(Product, Product.id == Review.product_id)
            .order_by(Review.id)
        )
        for review, name, category in rows.yield_per(2000):
            text = (review.text or "").strip()
            title = (review.title or "").strip()
            document = f"{title}. {text}" if title else text
            analysis = analyze(text, title or None)
            created: datetime | None = review.created_at
            meta = {
                "review_id": review.id,
                "product_id": review.product_id,
                "product_title": (name or "")[:500],
                "category": category or "",
                "category_key": (category or "").lower(),
                # a float like the products' rating: Chroma compares a `where` bound only with stored values of the
                # bound's own type, so an int 5 failed `rating >= 4.5` in vector search (the keyword side kept it)
                "rating": float(review.rating),
                "date": created.date().isoformat() if created else "",
                "month": created.strftime("%Y-%m") if created else "",
                "ts": int(created.timestamp()) if created else 0,
                "language": review.language or "en",
                "sentiment": analysis.sentiment,
                "sentiment_score": analysis.score,
                "aspects": json.dumps(
                    [{"aspect": a.aspect, "polarity": a.polarity, "quote": a.quote} for a in analysis.aspects],
                    ensure_ascii=False,
                ),
            }
            yield Record(review.id, document, meta)


def _existing(collection) -> dict[str, tuple[str, str]]:
    """id -> (doc_hash, meta_hash) of what the collection holds, read page by page."""
    found: dict[str, tuple[str, str]] = {}
    offset = 0
    while True:
        page = collection.get(include=["metadatas"], limit=PAGE, offset=offset)
        for rid, meta in zip(page["ids"], page["metadatas"], strict=True):
            found[rid] = ((meta or {}).get("doc_hash", ""), (meta or {}).get("meta_hash", ""))
        if len(page["ids"]) < PAGE:
            return found
        offset += PAGE


def _batches(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def sync_collection(collection, records: Iterable[Record], ef, label: str, progress: bool = True,
                    embed_seconds: list[float] | None = None) -> CollectionReport:
    """Make a Chroma collection hold exactly `records`: embed new or changed ones, update metadata, delete the rest.
    A collection that holds another kind of vectors than `ef` makes (another model, fp32 against int8) has every
    record embedded again.
    """
    existing = _existing(collection)
    kind = getattr(ef, "vectors", None)
    if kind is not None and existing and (collection.metadata or {}).get(VECTORS) != kind:
        existing = {rid: ("", meta) for rid, (_doc, meta) in existing.items()}  # every document embedded again
    to_embed: list[Record] = []
    to_update: list[Record] = []
    seen: set[str] = set()
    hashes: list[list[str]] = []
    for rec in records:
        seen.add(rec.id)
        doc_hash = content_hash(rec.document)
        meta_hash = content_hash(rec.metadata)
        rec.metadata["doc_hash"] = doc_hash
        rec.metadata["meta_hash"] = meta_hash
        hashes.append([rec.id, doc_hash, meta_hash])
        old = existing.get(rec.id)
        if old is None or old[0] != doc_hash:
            to_embed.append(rec)
        elif old[1] != meta_hash:
            to_update.append(rec)
    removed = [rid for rid in existing if rid not in seen]
    # what the collection will hold, as one hash: readers (index.shared) compare it to see that a build changed it
    build_hash = content_hash([kind, sorted(hashes)])
    for chunk in _batches(removed, PAGE):
        collection.delete(ids=chunk)
    for chunk in _batches(to_update, PAGE):
        collection.update(ids=[r.id for r in chunk], metadatas=[r.metadata for r in chunk])
    bar = tqdm(total=len(to_embed), desc=f"embedding {label}", unit="rec", file=sys.stderr,
               disable=not progress or not to_embed)
    for chunk in _batches(to_embed, BATCH):
        start = time.perf_counter()
        vectors = ef([r.document for r in chunk])
        if embed_seconds is not None:
            embed_seconds.append(time.perf_counter() - start)
        collection.upsert(
            ids=[r.id for r in chunk], embeddings=vectors, documents=[r.document for r in chunk],
            metadatas=[r.metadata for r in chunk],
        )
        bar.update(len(chunk))
    bar.close()
    if (collection.metadata or {}).get(BUILD_HASH) != build_hash:
        kept = {k: v for k, v in (collection.metadata or {}).items() if not k.startswith("hnsw:")}  # not modifiable
        collection.modify(metadata={**kept, BUILD_HASH: build_hash, **({VECTORS: kind} if kind else {})})
    return CollectionReport(
        total=collection.count(), embedded=len(to_embed), metadata_updated=len(to_update), deleted=len(removed),
        unchanged=len(seen) - len(to_embed) - len(to_update),
    )


def build_index(store, settings, progress: bool = True, client=None, ef=None) -> BuildReport:
    """Bring the Chroma collections in line with the store. Safe to re-run; only changes are embedded."""
    start = time.perf_counter()
    from index.embeddings import embedding_function

    client = client or open_chroma(settings)
    ef = ef or embedding_function(settings)
    embed_seconds: list[float] = []
    products = get_collection(client, PRODUCTS, ef, create=True)
    reviews = get_collection(client, REVIEWS, ef, create=True)
    p_report = sync_collection(products, product_records(store), ef, "products", progress, embed_seconds)
    r_report = sync_collection(reviews, review_records(store), ef, "reviews", progress, embed_seconds)
    embedded = p_report.embedded + r_report.embedded
    spent = sum(embed_seconds)
    return BuildReport(
        products=p_report, reviews=r_report, seconds=round(time.perf_counter() - start, 2),
        embed_records_per_s=round(embedded / spent, 1) if embedded and spent else None,
        target=settings.chroma_url or str(settings.chroma_dir),
    )
