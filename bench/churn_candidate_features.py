"""Issue 17's candidate churn features on CDNOW, and how far any model on these features could go: a quality
measurement, not a speed benchmark.

    python bench/churn_candidate_features.py [CDNOW_master.txt]   # default: the copy `make setup` installs

CDNOW goes into a temporary store through the store's transaction importer (as `shopdesk churn evaluate` does). For
each as-of date (1997-12-31, 1998-03-31; 90-day horizon) it prints the AUC and top-decile lift of:
- BG/NBD;
- our model (FEATURES), trained on the window before as-of, as shipped;
- our model with each candidate group added: the variability of inter-purchase gaps (std, coefficient of variation,
  the last and the longest gap), breadth (items per order, items in total, in the last order), and recent activity
  (orders in the last 30 days, the first and the last order's value);
- a ceiling: LightGBM cross-validated (5 folds) inside the test window itself, on FEATURES plus every candidate. It
  sees the very customers and labels it is judged on, which no deployable model can; if it does not reach BG/NBD +
  0.02, no feature set built from these columns will.
The candidates are computed here from the store's orders and items; none is in the shipped feature table.
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CANDIDATES = {
    "gap variability": ["gap_std", "gap_cv", "last_gap", "gap_max"],
    "breadth": ["items_total", "items_per_order", "last_items"],
    "recent activity": ["orders_30d", "last_order_value", "first_order_value"],
}
AS_OFS = (date(1997, 12, 31), date(1998, 3, 31))
HORIZON = 90


def candidate_features(store, as_of: date):
    """The candidates per customer from purchases up to as_of (same-day orders are one occasion, as in features)."""
    import pandas as pd
    from sqlalchemy import func, select

    from store.models import Order, OrderItem
    from tools.analytics.features import cutoff_of

    cut = cutoff_of(as_of)
    q = (select(Order.customer_id, Order.created_at, Order.total, func.sum(OrderItem.quantity))
         .join(OrderItem, OrderItem.order_id == Order.id)
         .where(Order.created_at < cut, Order.total >= 0, Order.status != "cancelled")
         .group_by(Order.id))
    with store.engine.connect() as conn:
        df = pd.DataFrame(conn.execute(q).all(), columns=["c", "d", "a", "q"])
    df["d"] = pd.to_datetime(df["d"]).dt.normalize()
    df["a"] = df["a"].astype(float)
    g = df.groupby(["c", "d"], as_index=False).agg(q=("q", "sum"), a=("a", "sum")).sort_values(["c", "d"])
    g["gap"] = g.groupby("c")["d"].diff().dt.days
    by = g.groupby("c")
    out = pd.DataFrame({
        "gap_std": by["gap"].std(),
        "last_gap": by["gap"].last(),
        "gap_max": by["gap"].max(),
        "items_total": by["q"].sum(),
        "items_per_order": by["q"].mean(),
        "last_items": by["q"].last(),
        "last_order_value": by["a"].last(),
        "first_order_value": by["a"].first(),
        "orders_30d": g[g["d"] >= pd.Timestamp(cut) - pd.Timedelta(days=30)].groupby("c").size(),
    })
    out["gap_cv"] = out["gap_std"] / by["gap"].mean()
    out["orders_30d"] = out["orders_30d"].fillna(0.0)
    return out


def main(path: Path) -> dict:
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from store.db import open_store
    from store.importers.transactions import import_transactions
    from tools.analytics import bgnbd
    from tools.analytics.churn import label_churn, metrics, train_churn_model
    from tools.analytics.features import FEATURES, build_feature_sets, cutoff_of, purchased_between

    every = [c for group in CANDIDATES.values() for c in group]
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'cdnow.db'}")
        import_transactions(store, path, {"customer": "0", "date": "1", "quantity": "2", "amount": "3"})
        for as_of in AS_OFS:
            dates = [as_of - timedelta(days=HORIZON), as_of]
            train, test = build_feature_sets(store, dates, HORIZON)
            for df, d in ((train, dates[0]), (test, as_of)):
                extra = candidate_features(store, d).reindex(df.index)
                for col in every:
                    df[col] = extra[col].to_numpy(dtype=float)
            frame = label_churn(train, test)
            buyers = purchased_between(store, cutoff_of(as_of), cutoff_of(as_of + timedelta(days=HORIZON)))
            y = (~test.index.isin(list(buyers))).astype(int)
            params = bgnbd.fit_bgnbd(test["x"], test["t_x"], test["T"])
            rows = {"BG/NBD": metrics(y, bgnbd.prob_no_purchase(params, test["x"], test["t_x"], test["T"],
                                                                HORIZON / 7.0))}
            for name, extra_cols in {"ours (shipped)": [], **{f"ours + {k}": v for k, v in CANDIDATES.items()},
                                     "ours + all candidates": every}.items():
                model = train_churn_model(store, as_of, HORIZON, frame=frame, features=FEATURES + extra_cols)
                rows[name] = metrics(y, model.predict(test))
            ceiling = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=50,
                                         verbose=-1, n_jobs=1)
            p = cross_val_predict(ceiling, test[FEATURES + every].to_numpy(float), y, method="predict_proba",
                                  cv=StratifiedKFold(5, shuffle=True, random_state=0))[:, 1]
            rows["ceiling: 5-fold CV inside the test window"] = {"auc": float(roc_auc_score(y, p))}
            base = rows["BG/NBD"]["auc"]
            print(f"\nas of {as_of}, {len(y)} customers, churn rate {y.mean():.3f}; target AUC {base + 0.02:.4f}")
            for name, m in rows.items():
                lift = f"  lift {m['top_decile_lift']:.3f}" if "top_decile_lift" in m else ""
                print(f"  {name:<45} AUC {m['auc']:.4f} ({m['auc'] - base:+.4f} vs BG/NBD){lift}")
            out[str(as_of)] = {k: {m: round(v, 4) for m, v in r.items()} for k, r in rows.items()}
        store.dispose()
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    from shopdesk.datasets import cdnow_transactions

    main(Path(sys.argv[1]) if len(sys.argv) > 1 else cdnow_transactions())
