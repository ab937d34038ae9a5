"""Store benchmarks (printed figures, not timed tests): the sample shop at scale and the CDNOW import.

    python bench/bench_store.py                       # 1,000,000 customers (~8.4M orders) into a temp SQLite file
    python bench/bench_store.py --customers 100000 --db /tmp/shop100k.db --keep
    python bench/bench_store.py --customers 0         # CDNOW only
    python bench/bench_store.py --db-url postgresql+psycopg://shop@127.0.0.1:5432/bench   # PostgreSQL

Peak memory is the process's maximum resident set size after the sample build (before the CDNOW import).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--db", type=Path, help="SQLite file for the sample shop (default: a temp file)")
    ap.add_argument("--db-url", help="any SQLAlchemy URL instead of --db")
    ap.add_argument("--keep", action="store_true", help="keep the database files")
    ap.add_argument("--skip-cdnow", action="store_true")
    args = ap.parse_args(argv)

    from shopdesk.datasets import cdnow_transactions
    from store.db import open_store
    from store.importers.transactions import import_transactions, parse_columns
    from store.sample import build_sample
    from store.stats import store_stats

    tmp = Path(tempfile.mkdtemp(prefix="shopdesk-bench-"))
    out: dict = {}
    if args.customers:
        db = args.db or tmp / "sample.db"
        url = args.db_url or f"sqlite:///{db}"
        if not args.db_url and db.exists():
            sys.exit(f"{db} exists; give a new path")
        store = open_store(url)
        t = time.perf_counter()
        result = build_sample(store, customers=args.customers, seed=args.seed, progress=True)
        wall = time.perf_counter() - t
        rows = sum(result["counts"].values())
        out["sample"] = {
            "customers": args.customers,
            "counts": result["counts"],
            "rows": rows,
            "wall_s": round(wall, 1),
            "rows_per_s": round(rows / wall),
            "db_bytes": _size(db) if not args.db_url else None,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        t = time.perf_counter()
        stats = store_stats(store)
        out["sample"]["stats_s"] = round(time.perf_counter() - t, 2)
        out["sample"]["orders_from"], out["sample"]["orders_to"] = str(stats["orders_from"]), str(stats["orders_to"])
        store.dispose()
        if not args.keep and not args.db_url:
            for p in db.parent.glob(db.name + "*"):
                p.unlink()
    if not args.skip_cdnow:
        store = open_store(f"sqlite:///{tmp / 'cdnow.db'}")
        t = time.perf_counter()
        r = import_transactions(
            store,
            cdnow_transactions(),
            parse_columns("customer=0,date=1,quantity=2,amount=3"),
            delimiter="ws",
            date_format="%Y%m%d",
            progress=True,
        )
        wall = time.perf_counter() - t
        out["cdnow"] = {
            "rows": r["counts"]["rows"],
            "customers": r["counts"]["customers"],
            "wall_s": round(wall, 2),
            "rows_per_s": round(r["counts"]["rows"] / wall),
        }
        store.dispose()
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
