"""Behaviour events at scale (printed figures, not timed tests): the importer's rate and the funnel's time.

    python bench/bench_events.py                          # 10,000,000 events into a temp SQLite file
    python bench/bench_events.py --events 1000000 --keep
    python bench/bench_events.py --db-url postgresql+psycopg://shop@127.0.0.1:5432/bench    # PostgreSQL

The store is first filled with the sample shop (--customers; it brings its own events, about 63 per customer), then
an export of --events events of those customers is written as a GA4-shaped CSV (event_id, user_id, event_name,
event_timestamp, item_id, search_term, transaction_id) and imported with `store import events`. The funnel is then
timed over everything the store holds: over all time, the default 30 days, one category, and one value tier's
customers. Peak memory is the process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Shares of the export's event kinds, roughly a shop's: many views, fewer carts, fewer purchases.
KIND_SHARES = {"view_item": 0.56, "view_search_results": 0.12, "add_to_cart": 0.16, "purchase": 0.09,
               "product_reviewed": 0.03, "refund": 0.01, "contact": 0.03}
EXPORT_DAYS = 365


def write_export(path: Path, customers: list[str], products: list[str], n: int, end: datetime, seed: int = 0) -> None:
    """A GA4-shaped CSV of `n` events of `customers` about `products`, written in chunks (bounded memory)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    kinds = np.array(list(KIND_SHARES))
    shares = np.array(list(KIND_SHARES.values()))
    start = end - timedelta(days=EXPORT_DAYS)
    chunk = 1_000_000
    for first in range(0, n, chunk):
        m = min(chunk, n - first)
        kind = kinds[rng.choice(len(kinds), m, p=shares / shares.sum())]
        seconds = np.sort(rng.uniform(0, EXPORT_DAYS * 86400, m))
        frame = pd.DataFrame({
            "event_id": [f"bench-{i}" for i in range(first, first + m)],
            "user_id": np.array(customers)[rng.integers(0, len(customers), m)],
            "event_name": kind,
            "event_timestamp": (pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%dT%H:%M:%S"),
            "item_id": np.array(products)[rng.integers(0, len(products), m)],
            "search_term": np.where(kind == "view_search_results", "wireless headphones", ""),
            "transaction_id": np.where(kind == "purchase", [f"T{i}" for i in range(first, first + m)], ""),
        })
        frame.loc[frame["event_name"] == "view_search_results", "item_id"] = ""
        frame.to_csv(path, mode="w" if first == 0 else "a", header=first == 0, index=False)


def _timed(fn):
    t = time.perf_counter()
    result = fn()
    return result, round(time.perf_counter() - t, 3)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--db", type=Path, help="SQLite file (default: a temp file)")
    ap.add_argument("--db-url", help="any SQLAlchemy URL instead of --db")
    ap.add_argument("--keep", action="store_true", help="keep the database and the export")
    args = ap.parse_args(argv)

    from sqlalchemy import func, select

    from store.db import open_store
    from store.importers.events import import_events
    from store.models import Customer, Event, Product
    from store.sample import AS_OF, build_sample
    from tools.analytics.journey import funnel

    tmp = Path(tempfile.mkdtemp(prefix="shopdesk-bench-events-"))
    url = args.db_url or f"sqlite:///{args.db or tmp / 'events.db'}"
    store = open_store(url)
    out: dict = {"database": store.engine.dialect.name, "customers": args.customers, "events_exported": args.events}
    _, out["sample_build_s"] = _timed(lambda: build_sample(store, customers=args.customers, seed=0, progress=True))
    with store.read() as s:
        customers = list(s.scalars(select(Customer.id)))
        products = list(s.scalars(select(Product.id)))
        category = s.scalar(select(Product.category).group_by(Product.category).order_by(func.count().desc()))
        out["sample_events"] = s.scalar(select(func.count()).select_from(Event))

    export = tmp / "events.csv"
    _, out["export_write_s"] = _timed(lambda: write_export(export, customers, products, args.events, AS_OF))
    out["export_mb"] = round(export.stat().st_size / 1e6, 1)
    result, seconds = _timed(lambda: import_events(store, export, progress=True))
    out["import"] = {"events": result["counts"]["events"], "seconds": seconds,
                     "events_per_second": round(result["counts"]["events"] / seconds)}
    with store.read() as s:
        total = s.scalar(select(func.count()).select_from(Event))
    out["events_in_store"] = total

    tier_members = customers[: len(customers) // 5]  # a value tier's size: the snapshot is not what is timed here
    end = AS_OF.date()
    cases = {
        "all time": dict(start=end - timedelta(days=EXPORT_DAYS + 800)),
        "last 30 days": dict(start=end - timedelta(days=29), end=end),
        f"category {category}, all time": dict(category=category, start=end - timedelta(days=EXPORT_DAYS + 800)),
        f"{len(tier_members):,} customers (a tier), all time": dict(customers=tier_members,
                                                                     start=end - timedelta(days=EXPORT_DAYS + 800)),
    }
    out["funnel_seconds"] = {}
    for name, kw in cases.items():
        f, seconds = _timed(lambda kw=kw: funnel(store, **kw))
        out["funnel_seconds"][name] = seconds
        print(f"funnel {name}: {seconds:.2f} s, {f.rows[0].customers:,} viewers -> {f.rows[2].customers:,} buyers",
              file=sys.stderr)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if args.keep:
        out["kept"] = str(tmp)
    else:
        store.engine.dispose()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=2))
    print(f"\n{total:,} events in the store ({out['database']}): import {out['import']['events_per_second']:,} "
          f"events/s ({out['import']['events']:,} in {out['import']['seconds']} s); funnel "
          + ", ".join(f"{k} {v:.2f} s" for k, v in out["funnel_seconds"].items())
          + f"; peak RSS {out['peak_rss_mb']} MB")
    return out


if __name__ == "__main__":
    main()
