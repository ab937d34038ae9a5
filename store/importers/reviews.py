"""Import product reviews from CSV (with a header) or JSONL: product, rating, text; customer, title, date optional.

The product must already be in the store (by id, or by exact product name). A review's id derives from its
product, customer, date and text, so re-importing the same file updates instead of duplicating.
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from store.db import Store
from store.importers.common import BadInputError, BulkWriter, previous_runs, record_run, stable_digits
from store.importers.reading import jsonl_records, open_text
from store.models import Customer, Product, Review

FIELDS = ("product", "customer", "rating", "title", "text", "date", "language")
REQUIRED = ("product", "rating", "text")


def _records(path: Path):
    """(line, dict) per review; JSONL when the suffix says so or the first character is '{'."""
    with open_text(path) as f:
        first = f.readline()
        if not first.strip():
            raise BadInputError(path, "the file is empty", 1)
        if path.suffix.lower() in (".jsonl", ".ndjson") or first.lstrip().startswith("{"):
            yield from jsonl_records(path)
        else:
            header = [h.strip().lower() for h in next(csv.reader([first]))]
            missing = [r for r in REQUIRED if r not in header]
            if missing:
                raise BadInputError(path, f"missing column (the header has: {', '.join(header)})", 1, missing[0])
            reader = csv.reader(f)
            for parts in reader:
                if any(p.strip() for p in parts):
                    yield reader.line_num + 1, dict(zip(header, parts, strict=False))


def import_reviews(store: Store, path: Path, skip_bad: bool = False) -> dict[str, Any]:
    """Import reviews in one transaction; returns counts and, with skip_bad, the skipped rows per reason."""
    path = Path(path)
    skipped: Counter[str] = Counter()
    rows: dict[str, dict[str, Any]] = {}
    seen = 0
    with store.read() as session:
        product_ids = set(session.scalars(select(Product.id)))
        by_name = {name: pid for pid, name in session.execute(select(Product.id, Product.name))}
        customer_ids = set(session.scalars(select(Customer.id)))
    for line, rec in _records(path):
        seen += 1
        try:
            for fld in REQUIRED:
                if fld not in rec:
                    raise BadInputError(path, "missing column", line, fld)
            product = str(rec["product"]).strip()
            pid = product if product in product_ids else by_name.get(product)
            if pid is None:
                raise BadInputError(path, f"unknown product {product!r} (import the catalog first)", line, "product")
            try:
                rating = int(float(str(rec["rating"]).strip()))
            except ValueError:
                raise BadInputError(path, f"bad number {rec['rating']!r}", line, "rating") from None
            if not 1 <= rating <= 5:
                raise BadInputError(path, f"bad number: rating {rating} is not 1-5", line, "rating")
            text = str(rec["text"]).strip()
            if not text:
                raise BadInputError(path, "empty review text", line, "text")
            created = None
            if rec.get("date"):
                try:
                    created = datetime.fromisoformat(str(rec["date"]).strip())
                except ValueError:
                    raise BadInputError(
                        path, f"bad date {rec['date']!r} (expected ISO 8601, e.g. 2026-10-31)", line, "date"
                    ) from None
            customer = str(rec.get("customer") or "").strip() or None
            if customer is not None and customer not in customer_ids:
                raise BadInputError(path, f"unknown customer {customer!r}", line, "customer")
        except BadInputError as exc:
            if not skip_bad:
                raise
            skipped[f"bad {exc.field}" if exc.field else "bad row"] += 1
            continue
        rid = "rv" + stable_digits("review", pid, customer, created, text, digits=14)
        rows[rid] = {
            "id": rid,
            "product_id": pid,
            "customer_id": customer,
            "rating": rating,
            "title": (str(rec.get("title") or "").strip() or None),
            "text": text,
            "language": str(rec.get("language") or "en"),
            "created_at": created,
            "source": "import",
        }
    if seen == 0:
        raise BadInputError(path, "the file has a header but no rows")
    with store.transaction() as session:
        before = previous_runs(session, "reviews", path)
        new, updated = BulkWriter(session).upsert(Review, list(rows.values()))
        counts = {"reviews": len(rows), "new": new, "updated": updated}
        record_run(session, "reviews", path, {**counts, "skipped": dict(skipped)})
    result: dict[str, Any] = {"file": str(path), "counts": counts, "skipped": dict(skipped)}
    if before:
        result["note"] = f"this file was imported {before} time(s) before; rows were updated, not duplicated"
    return result
