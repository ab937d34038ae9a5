"""Recommendation hit rate against the next purchase: the basket-similarity recommender alone ("current") and with the
journey first ("journey-aware": what the customer recently viewed or carted and did not buy). A quality
measurement, not a speed benchmark.

    python bench/recommend_hit_rate.py --customers 2000

A sample shop (and its search index, with the embedded model) is built into a temp folder. For each customer whose
first order after the cut (default: 30 days before the shop's last day) falls within --window days, both recommenders
suggest k products from what happened before the cut; a hit is any product of that order among them.

The sample generator puts views and a cart of each bought product in the days before its order, so on the sample
shop the journey-aware recommender is helped by how the data was made; a real event export is the honest test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--cut-days", type=int, default=30, help="the cut is this many days before the last order")
    ap.add_argument("--window", type=int, default=30, help="days after the cut the next order must fall in")
    ap.add_argument("--max-customers", type=int, default=500, help="customers evaluated at most")
    args = ap.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="shopdesk-recs-"))
    os.environ["SHOPDESK_DATA_DIR"] = str(root)
    from sqlalchemy import func, select

    from index.build import build_index
    from shopdesk.settings import Settings
    from store.db import open_store
    from store.models import Order, OrderItem
    from store.sample import build_sample
    from tools.context import ShopContext
    from tools.search import recommend_for

    settings = Settings(data_dir=root)
    store = open_store(settings.db_url)
    build_sample(store, customers=args.customers, seed=0, progress=True)
    build_index(store, settings, progress=True)
    with store.read() as s:
        last = s.scalar(select(func.max(Order.created_at)))
        cut = last - timedelta(days=args.cut_days)
        nxt = s.execute(
            select(Order.customer_id, func.min(Order.created_at))
            .where(Order.created_at >= cut, Order.created_at < cut + timedelta(days=args.window),
                   Order.status != "cancelled")
            .group_by(Order.customer_id).order_by(Order.customer_id)
        ).all()[: args.max_customers]
        targets = {}
        for cid, at in nxt:
            targets[cid] = set(s.scalars(select(OrderItem.product_id).join(Order)
                                         .where(Order.customer_id == cid, Order.created_at == at)))
    out: dict = {"customers_in_shop": args.customers, "cut": cut.date().isoformat(), "window_days": args.window,
                 "evaluated": len(targets)}
    for k in (5, 10):
        for name, journey in (("current", False), ("journey-aware", True)):
            hits = 0
            for cid, want in targets.items():
                ctx = ShopContext(store=store, settings=settings, role="customer", customer_id=cid)
                got = {r.product_id for r in recommend_for(ctx, cid, k, now=cut, journey=journey).products}
                hits += bool(got & want)
            out[f"hit@{k} {name}"] = round(hits / max(1, len(targets)), 4)
    print(json.dumps(out, indent=2))
    print(f"\n| recommender | hit@5 | hit@10 |\n|---|---|---|\n"
          f"| current | {out['hit@5 current']:.3f} | {out['hit@10 current']:.3f} |\n"
          f"| journey-aware | {out['hit@5 journey-aware']:.3f} | {out['hit@10 journey-aware']:.3f} |\n"
          f"({out['evaluated']} customers whose next order falls within {args.window} days of {out['cut']})")
    return out


if __name__ == "__main__":
    main()
