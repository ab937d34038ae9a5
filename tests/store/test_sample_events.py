"""The sample shop's behaviour events: they belong to real customers, agree with the orders, reviews and returns, and
show a funnel that narrows at every step.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

from sqlalchemy import func, inspect, select

from store.models import Conversation, Customer, Event, Order, Review
from store.sample import AS_OF, build_sample


def events(store) -> list[Event]:
    with store.read() as s:
        return list(s.scalars(select(Event).order_by(Event.key)))


def test_events_belong_to_customers_and_end_by_as_of(sample_store):
    evs = events(sample_store)
    with sample_store.read() as s:
        customers = set(s.scalars(select(Customer.id)))
    assert len(evs) > 5000
    assert {e.customer_id for e in evs} <= customers
    assert all(e.occurred_at <= AS_OF for e in evs)
    assert {e.source for e in evs} == {"sample"}
    assert all(e.key.startswith("sample-") for e in evs)
    # keys follow each customer's journey in time
    by_key = [(e.customer_id, e.occurred_at) for e in evs]
    assert by_key == sorted(by_key)
    assert set(Counter(e.kind for e in evs)) == {"view", "search", "cart", "purchase", "review", "return", "support"}
    assert all(e.query for e in evs if e.kind == "search")


def test_purchases_match_orders_and_follow_a_view_or_cart(sample_store):
    evs = events(sample_store)
    with sample_store.read() as s:
        orders = {o.id: (o.customer_id, o.created_at) for o in s.scalars(select(Order))}
    purchases = [e for e in evs if e.kind == "purchase"]
    assert sorted(e.order_id for e in purchases) == sorted(orders)  # one purchase event per order
    before: dict[tuple[str, str], list] = defaultdict(list)
    for e in evs:
        if e.kind in ("view", "cart"):
            before[e.customer_id, e.product_id].append(e.occurred_at)
    for e in purchases:
        assert orders[e.order_id] == (e.customer_id, e.occurred_at), e.key
        assert any(t < e.occurred_at for t in before[e.customer_id, e.product_id]), e.key
        assert e.session_id


def test_funnel_narrows(sample_store):
    evs = events(sample_store)
    kinds = Counter(e.kind for e in evs)
    assert kinds["view"] > 1.5 * kinds["cart"] > 1.5 * kinds["purchase"]
    carters = {e.customer_id for e in evs if e.kind == "cart"}
    buyers = {e.customer_id for e in evs if e.kind == "purchase"}
    assert buyers <= carters
    # abandoned carts: visits that put something in the cart and bought nothing
    bought_in = {e.session_id for e in evs if e.kind == "purchase"}
    abandoned = [e for e in evs if e.kind == "cart" and e.session_id not in bought_in]
    assert len(abandoned) > 0.1 * kinds["cart"]
    # and among the customers active in the last 30 days, fewer cart than view and fewer buy than cart
    recent = [e for e in evs if e.occurred_at > AS_OF - timedelta(days=30)]
    who = {k: {e.customer_id for e in recent if e.kind == k} for k in ("view", "cart", "purchase")}
    assert len(who["view"]) > 1.1 * len(who["cart"]) > 1.1 * len(who["purchase"]) > 0


def test_reviews_returns_and_support_have_their_events(sample_store):
    evs = events(sample_store)
    with sample_store.read() as s:
        reviews = Counter(s.execute(select(Review.customer_id, Review.product_id, Review.created_at)).all())
        returned = set(s.scalars(select(Order.id).where(Order.status == "return requested")))
        conversations = s.scalar(select(func.count()).select_from(Conversation))
    assert Counter((e.customer_id, e.product_id, e.occurred_at) for e in evs if e.kind == "review") == reviews
    assert returned and sorted(e.order_id for e in evs if e.kind == "return") == sorted(returned)
    support = [e for e in evs if e.kind == "support"]
    assert len(support) >= conversations
    returns_asked_first = {e.order_id for e in support} & returned
    assert len(returns_asked_first) > len(returned) / 3


def test_more_browsing_in_november_and_december(sample_store):
    """Views per day in the last holiday season against the months on either side (the shop grows all the time,
    so a whole year would compare early holidays with a bigger shop).
    """
    months = Counter((e.occurred_at.year, e.occurred_at.month) for e in events(sample_store) if e.kind == "view")
    year = AS_OF.year - 1  # the sample shop's as-of date is in October
    holidays = (months[year, 11] + months[year, 12]) / 61
    around = (months[year, 10] + months[year + 1, 1]) / 62
    assert holidays > 1.2 * around


def test_deterministic_for_a_seed(sqlite_store, tmp_path):
    from store.db import open_store

    def rows(store):
        with store.read() as s:
            return s.execute(
                select(Event.key, Event.customer_id, Event.kind, Event.occurred_at, Event.product_id, Event.query,
                       Event.order_id, Event.session_id).order_by(Event.key)
            ).all()

    a = build_sample(sqlite_store, customers=40, seed=3)
    other = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    b = build_sample(other, customers=40, seed=3)
    assert a["counts"]["events"] == b["counts"]["events"] == len(rows(sqlite_store)) > 0
    assert rows(sqlite_store) == rows(other)
    third = open_store(f"sqlite:///{tmp_path / 'third.db'}")
    build_sample(third, customers=40, seed=4)
    assert rows(third) != rows(sqlite_store)
    other.dispose()
    third.dispose()


def test_event_indexes_are_rebuilt(sqlite_store):
    """The build drops the events' indexes on SQLite to load faster; they must all be back."""
    expected = sorted(i["name"] for i in inspect(sqlite_store.engine).get_indexes("events"))
    build_sample(sqlite_store, customers=20, seed=1)
    assert sorted(i["name"] for i in inspect(sqlite_store.engine).get_indexes("events")) == expected
    assert len(expected) == 4  # customer and time, kind and time, product, order
