"""Churn AUC, and the value ranking that follows it, with and without the journey features
(tools.analytics.features.JOURNEY_FEATURES) and what customers' own words say (WORDS_FEATURES) on the sample shop:
a quality measurement, not a speed benchmark.

    python bench/churn_journey_signals.py 5000      # customers; the shop is built once into /tmp/shopdesk-churn-journey
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(customers: int) -> dict:
    from store.db import open_store
    from store.sample import build_sample
    from tools.analytics.evaluate import evaluate_churn
    from tools.analytics.features import FEATURES, JOURNEY_FEATURES, WORDS_FEATURES

    folder = Path(tempfile.gettempdir()) / "shopdesk-churn-journey"
    folder.mkdir(exist_ok=True)
    path = folder / f"sample{customers}.db"
    new = not path.exists()
    store = open_store(f"sqlite:///{path}")
    if new:
        build_sample(store, customers=customers, seed=0, progress=True)
    out = {}
    for as_of in (date(2026, 5, 31), date(2026, 7, 31)):  # the sample's orders end 2026-10-31: 90 days to judge
        for name, features in (("without", FEATURES), ("with journey", FEATURES + JOURNEY_FEATURES),
                               ("with words", FEATURES + WORDS_FEATURES),
                               ("with both", FEATURES + JOURNEY_FEATURES + WORDS_FEATURES)):
            ev = evaluate_churn(store, as_of, 90, features=features)
            out[f"{as_of} {name}"] = {"auc": round(ev.ours.auc, 4), "customers": ev.customers,
                                      "top_decile_lift": round(ev.ours.top_decile_lift, 3),
                                      "value_rank_corr": round(ev.value.ours.rank_corr, 4) if ev.value else None}
            print(as_of, name, out[f"{as_of} {name}"], flush=True)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
