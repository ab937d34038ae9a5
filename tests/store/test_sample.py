"""The sample shop: deterministic, coherent, and with the behaviours analytics must find."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select

from store.models import ORDER_STATUSES, Customer, Fulfillment, Order, OrderItem, Payment, Review, Variant
from store.sample import AS_OF, EN_NEG, EN_POS, build_sample
from store.stats import store_stats


def sentiment_sentences(text: str) -> tuple[bool, bool]:
    """Whether the review text has a sentence of the sample's positive phrase bank, and one of its negative bank."""
    low = text.lower()

    def has(bank: dict[str, list[str]]) -> bool:
        return any(sentence.lower() in low for sentences in bank.values() for sentence in sentences)

    return has(EN_POS), has(EN_NEG)


def test_every_status_and_coherent_orders(sample_store):
    with sample_store.read() as s:
        statuses = set(s.scalars(select(Order.status).distinct()))
        assert statuses == set(ORDER_STATUSES)
        orders = s.scalars(select(Order)).all()
        assert all(o.created_at <= o.updated_at <= AS_OF for o in orders)
        shipped = {o.id for o in orders if o.status not in ("pending", "cancelled")}
        fulfilled = set(s.scalars(select(Fulfillment.order_id)))
        assert fulfilled == shipped
        # totals agree with item lines; every order is paid; cancelled ones refunded
        lines = dict(
            s.execute(
                select(OrderItem.order_id, func.sum(OrderItem.unit_price * OrderItem.quantity)).group_by(
                    OrderItem.order_id
                )
            ).all()
        )
        assert all(abs(float(lines[o.id]) - float(o.total)) < 0.01 for o in orders)
        refunds = set(s.scalars(select(Payment.order_id).where(Payment.kind == "refund")))
        assert refunds == {o.id for o in orders if o.status == "cancelled"}
        for o in orders:
            if o.status == "exchange requested":
                old, new = o.details["exchange_items"][0], o.details["exchange_new_items"][0]
                assert old != new
                assert s.get(Variant, old).product_id == s.get(Variant, new).product_id


def test_reviews_agree_with_rating_and_purchases(sample_store):
    with sample_store.read() as s:
        reviews = [(r.customer_id, r.product_id, r.language, r.rating, r.text) for r in s.scalars(select(Review))]
        bought = set(s.execute(select(Order.customer_id, OrderItem.product_id).join(OrderItem)).all())
    assert len(reviews) > 100
    assert all((cid, pid) in bought for cid, pid, *_ in reviews)
    zh = [r for r in reviews if r[2] == "zh"]
    assert 0.04 < len(zh) / len(reviews) < 0.2
    for _, _, lang, rating, text in reviews:
        if lang != "en":
            continue
        pos, neg = sentiment_sentences(text)
        if rating >= 4:
            assert pos and not neg, (rating, text)
        elif rating <= 2:
            assert neg and not pos, (rating, text)
        else:
            assert pos and neg, (rating, text)
    assert {r[3] for r in reviews} == {1, 2, 3, 4, 5}


def test_fading_customers_exist(sample_store):
    """Some customers' gaps between orders grow and they stop long before the as-of date: the churners."""
    with sample_store.read() as s:
        rows = s.execute(
            select(Order.customer_id, Order.created_at).order_by(Order.customer_id, Order.created_at)
        ).all()
    times: dict[str, list[datetime]] = defaultdict(list)
    for cid, t in rows:
        times[cid].append(t)
    fading = 0
    for ts in times.values():
        if len(ts) >= 4:
            gaps = [(b - a).days for a, b in itertools.pairwise(ts)]
            if gaps[-1] > 2 * max(gaps[0], 1) and (AS_OF - ts[-1]).days > 120:
                fading += 1
    loyal = sum(1 for ts in times.values() if len(ts) >= 15 and (AS_OF - ts[-1]).days < 60)
    one_time = sum(1 for ts in times.values() if len(ts) == 1)
    assert fading >= 10 and loyal >= 10 and one_time >= 10, (fading, loyal, one_time)


def test_deterministic_for_a_seed(sqlite_store, tmp_path):
    from store.db import open_store

    a = build_sample(sqlite_store, customers=40, seed=3)
    other = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    b = build_sample(other, customers=40, seed=3)
    assert a == b
    with sqlite_store.read() as s1, other.read() as s2:
        q = select(Order.id, Order.customer_id, Order.status, Order.created_at, Order.total).order_by(Order.id)
        assert s1.execute(q).all() == s2.execute(q).all()
        q = select(Review.id, Review.rating, Review.text).order_by(Review.id)
        assert s1.execute(q).all() == s2.execute(q).all()
    c = build_sample(open_store(f"sqlite:///{tmp_path / 'third.db'}"), customers=40, seed=4)
    assert c["counts"] != a["counts"]
    other.dispose()


def test_builds_on_both_engines(store):
    result = build_sample(store, customers=30, seed=1)
    stats = store_stats(store)
    assert stats["counts"]["customers"] == 30
    for name in ("orders", "order_items", "reviews", "payments", "fulfillments", "products", "variants"):
        assert stats["counts"][name] == result["counts"][name] > 0, name
    with store.read() as s:
        c = s.get(Customer, "c000000")
        assert c.payment_methods and c.orders and c.zip
        o = c.orders[0]
        assert o.id.startswith("#S") and o.items and o.payments and o.address["zip"] == c.zip
    assert result["orders_to"] <= AS_OF


def test_bulk_path_gives_the_same_shop_and_keeps_indexes(sqlite_store, tmp_path, monkeypatch):
    """Large builds drop and rebuild SQLite indexes; the shop and the schema must come out the same."""
    from sqlalchemy import inspect

    from store import sample
    from store.db import open_store

    normal = build_sample(sqlite_store, customers=30, seed=5)
    monkeypatch.setattr(sample, "BULK_FROM", 10)
    bulk_store = open_store(f"sqlite:///{tmp_path / 'bulk.db'}")
    bulk = build_sample(bulk_store, customers=30, seed=5)
    assert bulk == normal
    def index_names(store, table):
        return sorted(i["name"] for i in inspect(store.engine).get_indexes(table))

    for table in sample.BULK_TABLES:
        assert index_names(bulk_store, table) == index_names(sqlite_store, table), table
    with sqlite_store.read() as a, bulk_store.read() as b:
        q = select(Order.id, Order.status, Order.total, Order.updated_at).order_by(Order.id)
        assert a.execute(q).all() == b.execute(q).all()
    bulk_store.dispose()
