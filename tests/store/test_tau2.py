"""tau2 retail import: the expected counts, tau2's ids and details kept, dates consistent, no duplicates."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from shopdesk.datasets import tau2_db
from store.importers.common import BadInputError
from store.importers.tau2 import AS_OF, import_tau2
from store.models import Customer, Order, Payment, PaymentMethod
from store.stats import store_stats

EXPECTED = {"customers": 500, "orders": 1000, "products": 50, "variants": 591}


def test_import_counts_and_reimport_on_both_engines(store):
    result = import_tau2(store, tau2_db())
    for name, n in EXPECTED.items():
        assert result["counts"][name] == n
    first = store_stats(store)["counts"]
    for name, n in EXPECTED.items():
        assert first[name] == n
    again = import_tau2(store, tau2_db())
    assert "before" in again["note"]
    second = store_stats(store)["counts"]
    assert {k: v for k, v in second.items() if k != "import_runs"} == {
        k: v for k, v in first.items() if k != "import_runs"
    }


def test_ids_details_and_dates(tau2_store):
    raw = json.loads(tau2_db().read_text())
    order = raw["orders"]["#W2611340"]
    with tau2_store.read() as s:
        o = s.get(Order, "#W2611340")
        assert o.customer_id == order["user_id"] and o.status == order["status"]
        assert sorted(i.variant_id for i in o.items) == sorted(i["item_id"] for i in order["items"])
        assert float(o.total) == pytest.approx(sum(i["price"] for i in order["items"]))
        assert [(p.kind, float(p.amount), p.payment_method_id) for p in o.payments] == [
            (t["transaction_type"], t["amount"], t["payment_method_id"]) for t in order["payment_history"]
        ]
        c = s.get(Customer, "james_li_5688")
        assert c is not None and c.zip and c.signup_date < min(x.created_at for x in c.orders)
        assert s.get(PaymentMethod, "credit_card_9513926") is not None
        for o in s.scalars(select(Order)):
            assert o.created_at <= o.updated_at <= AS_OF
        pending_max_age = s.scalar(select(func.min(Order.created_at)).where(Order.status == "pending"))
        delivered_newest = s.scalar(select(func.max(Order.created_at)).where(Order.status == "delivered"))
        assert pending_max_age > delivered_newest  # pending orders are the newest
        refunds = s.scalar(select(func.count()).select_from(Payment).where(Payment.kind == "refund"))
        assert refunds == 102


def test_bad_file_leaves_store_unchanged(tau2_store, tmp_path):
    before = store_stats(tau2_store)["counts"]
    raw = json.loads(tau2_db().read_text())
    oid = next(iter(raw["orders"]))
    raw["orders"][oid]["items"][0]["price"] = "twelve"
    bad = tmp_path / "db.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(BadInputError) as err:
        import_tau2(tau2_store, bad)
    assert str(bad) in str(err.value) and "price" in str(err.value) and oid in str(err.value)
    assert store_stats(tau2_store)["counts"] == before
    bad.write_text('{"users": {}, \n "orders": [}')
    with pytest.raises(BadInputError, match="line 2"):
        import_tau2(tau2_store, bad)
