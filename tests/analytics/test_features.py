"""Features on a hand-computed example (on SQLite and PostgreSQL), and the time split that keeps the future out."""

from datetime import date, datetime, timedelta

import numpy as np
import pytest

from store.models import Conversation, Product, Review
from tools.analytics.features import build_feature_sets, build_features, cutoff_of, purchased_between


def _example(store, helpers):
    d = datetime
    helpers.add_orders(store, [
        ("alice", d(2024, 1, 1, 10), 100.0, "delivered"),
        ("alice", d(2024, 1, 31, 9), 50.0, "delivered"),
        ("alice", d(2024, 2, 10, 12), 30.0, "cancelled"),
        ("alice", d(2024, 3, 1, 8), 70.0, "return requested"),
        ("bob", d(2024, 2, 15, 15), 20.0, "delivered"),
        ("carol", d(2024, 3, 5, 11), 40.0, "cancelled"),  # only a cancelled order: not a customer with a purchase
        ("alice", d(2024, 4, 2, 10), 999.0, "delivered"),  # after the as-of date
    ])
    with store.transaction() as s:
        s.add(Product(id="p1", name="Thing"))
        s.flush()
        s.add_all([
            Review(id="r1", product_id="p1", customer_id="alice", rating=2, text="meh", created_at=d(2024, 2, 1)),
            Review(id="r2", product_id="p1", customer_id="alice", rating=4, text="ok", created_at=d(2024, 3, 2)),
            Review(id="r3", product_id="p1", customer_id="alice", rating=1, text="late", created_at=d(2024, 4, 5)),
            Conversation(id="v1", role="customer", customer_id="alice", started_at=d(2024, 2, 11)),
            Conversation(id="v2", role="customer", customer_id="bob", started_at=d(2024, 4, 10)),
        ])


def test_features_match_hand_computed_values(store, helpers):
    _example(store, helpers)
    f = build_features(store, date(2024, 3, 31))
    assert sorted(f.index) == ["alice", "bob"]
    a = f.loc["alice"]
    cutoff = datetime(2024, 4, 1)

    def days(t):
        return (cutoff - t).total_seconds() / 86400

    assert a["frequency"] == 3  # the cancelled order is not a purchase; the April order is after as_of
    assert a["orders_all"] == 4
    assert a["monetary_total"] == pytest.approx(220.0)
    assert a["avg_order_value"] == pytest.approx(220.0 / 3)
    assert a["recency_days"] == pytest.approx(days(datetime(2024, 3, 1, 8)), abs=1e-4)
    assert a["tenure_days"] == pytest.approx(days(datetime(2024, 1, 1, 10)), abs=1e-4)
    span = (datetime(2024, 3, 1, 8) - datetime(2024, 1, 1, 10)).total_seconds() / 86400
    assert a["mean_gap_days"] == pytest.approx(span / 2, abs=1e-4)
    mean_offset = sum((t - datetime(2024, 1, 1, 10)).total_seconds() / 86400
                      for t in (datetime(2024, 1, 1, 10), datetime(2024, 1, 31, 9), datetime(2024, 3, 1, 8))) / 3
    assert a["timing_skew"] == pytest.approx(mean_offset / span - 0.5, abs=1e-4)
    assert a["overdue_ratio"] == pytest.approx(a["recency_days"] / (span / 2), rel=1e-6)
    assert a["cancel_share"] == pytest.approx(1 / 4)
    assert a["return_share"] == pytest.approx(1 / 4)
    assert a["orders_90d"] == 2  # Jan 31 and Mar 1 are within 90 days of Apr 1; Jan 1 is 91 days before
    assert a["orders_prev_90d"] == 1
    assert a["review_mean_rating"] == pytest.approx(3.0)  # the April review is after as_of
    assert a["review_count"] == 2
    assert a["support_contacts"] == 1
    assert a["x"] == 2 and a["t_x"] == pytest.approx(span / 7, abs=1e-4)
    assert a["T"] == pytest.approx(days(datetime(2024, 1, 1, 10)) / 7, abs=1e-4)
    b = f.loc["bob"]
    assert b["frequency"] == 1 and b["x"] == 0
    assert b["mean_gap_days"] != b["mean_gap_days"]  # NaN: no gap with one order (LightGBM reads it as missing)
    assert b["support_contacts"] == 0  # his conversation is after as_of
    assert b["review_count"] == 0


def test_future_orders_do_not_reach_features(sqlite_store, helpers):
    """Leakage guard: orders, reviews and contacts after as_of leave the feature table unchanged."""
    _example(sqlite_store, helpers)
    as_of = date(2024, 3, 31)
    before = build_features(sqlite_store, as_of)
    helpers.add_orders(sqlite_store, [
        ("alice", datetime(2024, 4, 1, 0, 0, 1), 5.0, "delivered"),
        ("bob", datetime(2024, 5, 1), 500.0, "delivered"),
        ("dave", datetime(2024, 4, 20), 50.0, "delivered"),
    ])
    after = build_features(sqlite_store, as_of)
    assert list(after.index) == list(before.index)
    assert after.equals(before)
    # An order on the as-of day itself does count.
    helpers.add_orders(sqlite_store, [("bob", datetime(2024, 3, 31, 23, 59), 1.0, "delivered")])
    assert build_features(sqlite_store, as_of).loc["bob", "frequency"] == 2


def test_labels_window(sqlite_store, helpers):
    _example(sqlite_store, helpers)
    start = cutoff_of(date(2024, 3, 31))
    assert purchased_between(sqlite_store, start, start + timedelta(days=30)) == {"alice"}
    assert purchased_between(sqlite_store, start - timedelta(days=60), start) == {"alice", "bob"}


def test_feature_sets_from_one_scan_equal_separate_builds(store, helpers):
    _example(store, helpers)
    early, late = build_feature_sets(store, [date(2024, 2, 14), date(2024, 3, 31)])
    assert early.equals(build_features(store, date(2024, 2, 14)))
    assert late.equals(build_features(store, date(2024, 3, 31)))
    assert early.loc["alice", "frequency"] == 2 and "bob" not in early.index


def test_parallel_customer_ranges_give_the_single_scan_result(store, helpers, monkeypatch):
    """Large shops are scanned in customer-id ranges on parallel connections; the result must not change."""
    import os

    from tools.analytics import features

    helpers.simulate_shop(store, n_customers=60, seed=3)
    as_ofs = [date(2024, 3, 31), date(2024, 6, 30)]
    single = build_feature_sets(store, as_ofs)
    monkeypatch.setattr(features, "PARALLEL_FROM_ORDERS", 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    ranges = features._customer_ranges(store)
    assert len(ranges) == 2 and ranges[0][1] == ranges[1][0]
    for a, b in zip(single, build_feature_sets(store, as_ofs), strict=True):
        assert len(a) > 20
        assert a.sort_index(axis=1).equals(b.sort_index(axis=1))


def test_journey_features_match_the_events_by_hand(store):
    """JOURNEY_FEATURES recomputed in plain Python over the hand-built journey shop's rows, on both engines."""
    from journey_shop import build_journey_shop
    from sqlalchemy import select

    from index.sentiment import analyze
    from store.models import Event, Message, Review
    from tools.analytics.features import JOURNEY_FEATURES, WORDS_FEATURES
    from tools.analytics.intents import stated_purchase_intent

    build_journey_shop(store)
    with store.read() as s:
        events = s.execute(select(Event.customer_id, Event.kind, Event.occurred_at)).all()
        messages = s.execute(select(Conversation.customer_id, Message.content, Message.created_at)
                             .join(Message, Message.conversation_id == Conversation.id)
                             .where(Conversation.role == "customer", Message.role == "user")).all()
        reviews = s.execute(select(Review.customer_id, Review.title, Review.text, Review.created_at)).all()
    as_of = max(at for _, _, at in events).date() - timedelta(days=20)
    assert not set(JOURNEY_FEATURES + WORDS_FEATURES) & set(build_features(store, as_of).columns)  # only if asked
    table = build_features(store, as_of, journey=True)
    assert set(JOURNEY_FEATURES + WORDS_FEATURES) <= set(table.columns)
    cut = cutoff_of(as_of)
    texts = [(c, text, at) for c, text, at in messages] + [
        (c, " ".join(x for x in (title, text) if x), at) for c, title, text, at in reviews]
    said_total = 0.0
    for cid in table.index:
        row = table.loc[cid]
        for intent, col in (("buy again", "said_buy_again"), ("abandon", "said_abandon"), ("wait", "said_wait")):
            said = sum(c == cid and at < cut and stated_purchase_intent(t) == intent for c, t, at in texts)
            assert row[col] == said, (cid, col)
            said_total += said
    assert said_total > 5  # the shop's texts say "never buy again" and "would buy again": the counts are tested
    for cid in table.index:
        mine = [(k, at) for c, k, at in events if c == cid and at < cut]
        views90 = sum(k == "view" and at >= cut - timedelta(days=90) for k, at in mine)
        carts90 = sum(k == "cart" and at >= cut - timedelta(days=90) for k, at in mine)
        cart_days = {at.date() for k, at in mine if k == "cart" and at >= cut - timedelta(days=90)}
        bought_days = {at.date() for k, at in mine if k == "purchase" and at >= cut - timedelta(days=90)}
        browsed = [at for k, at in mine if k in ("view", "search", "cart")]
        negative = sum(c == cid and at < cut and analyze(text).sentiment == "negative" for c, text, at in messages)
        row = table.loc[cid]
        assert (row["views_90d"], row["carts_90d"]) == (views90, carts90), cid
        assert row["abandoned_cart_days_90d"] == len(cart_days - bought_days), cid
        assert row["negative_support_messages"] == negative, cid
        assert row["open_handoffs"] == 0
        if browsed:
            assert row["browse_recency_days"] == pytest.approx((cut - max(browsed)).total_seconds() / 86400, abs=1e-3)
        else:
            assert np.isnan(row["browse_recency_days"])
