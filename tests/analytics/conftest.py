"""Hand-built shops for the analytics tests: a few exact orders, and a small simulated shop to train on."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from store.models import Conversation, Customer, Order, OrderItem, Product, Review

END = datetime(2024, 6, 30)  # the simulated shop's last day


def add_orders(store, rows, emails: bool = True) -> None:
    """rows: (customer_id, datetime, total, status) tuples; customers are created as needed."""
    with store.transaction() as s:
        known = {c for (c,) in s.query(Customer.id).all()}
        for cid, when, total, status in rows:
            if cid not in known:
                s.add(Customer(id=cid, first_name=cid.title(), email=f"{cid}@example.com" if emails else None))
                known.add(cid)
                s.flush()
            n = s.query(Order).count()
            s.add(Order(id=f"o{n}-{cid}", customer_id=cid, status=status, created_at=when, updated_at=when,
                        total=Decimal(str(total)), details={}))
            s.flush()


def simulate_shop(store, n_customers: int = 500, seed: int = 1, end: datetime = END, days: int = 540) -> None:
    """A BG/NBD-like shop: each customer buys at their own rate and may drop out after each purchase.

    A third of the customers slow down before dropping out, and unhappy ones leave low reviews and contact
    support, so the trend, review and support features carry signal the BG/NBD baseline does not see.
    """
    rng = np.random.default_rng(seed)
    start = end - timedelta(days=days)
    with store.transaction() as s:
        products = [Product(id=f"p{k}", name=f"Product {k}", category=cat)
                    for k, cat in enumerate(["Headphones", "Laptops", "Cameras", "Phones"])]
        s.add_all(products)
        s.flush()
        s.add_all(Customer(id=f"c{c:04d}", first_name=f"Cust{c}", last_name="Test", email=f"c{c:04d}@example.com")
                  for c in range(n_customers))
        s.flush()
        order_no = 0
        for c in range(n_customers):
            cid = f"c{c:04d}"
            rate = rng.gamma(2.0, 1 / 60.0)  # purchases per day
            drop = rng.beta(1.0, 4.0)
            unhappy = rng.random() < 0.3
            t = rng.uniform(0, days * 0.6)
            aov = rng.gamma(4.0, 15.0)
            alive = True
            k = 0
            while alive and t < days:
                when = start + timedelta(days=float(t))
                status = "cancelled" if rng.random() < (0.25 if unhappy else 0.03) else (
                    "return requested" if rng.random() < (0.2 if unhappy else 0.03) else "delivered")
                total = round(float(aov * rng.uniform(0.6, 1.4)), 2)
                oid = f"o{order_no:06d}"
                order_no += 1
                s.add(Order(id=oid, customer_id=cid, status=status, created_at=when, updated_at=when,
                            total=Decimal(str(total)), details={}))
                s.add(OrderItem(order_id=oid, product_id=products[(c + k) % 4 if k % 3 else c % 4].id, name="x",
                                quantity=1, unit_price=Decimal(str(total))))
                if unhappy and rng.random() < 0.5:
                    s.add(Review(id=f"r{oid}", product_id=products[c % 4].id, customer_id=cid,
                                 rating=int(rng.integers(1, 3)), text="meh", created_at=when + timedelta(days=5)))
                    s.add(Conversation(id=f"v{oid}", role="customer", customer_id=cid,
                                       started_at=when + timedelta(days=3)))
                elif rng.random() < 0.2:
                    s.add(Review(id=f"r{oid}", product_id=products[c % 4].id, customer_id=cid,
                                 rating=int(rng.integers(4, 6)), text="good", created_at=when + timedelta(days=5)))
                k += 1
                if rng.random() < drop * (2.0 if unhappy else 1.0):
                    alive = False
                gap = rng.exponential(1 / rate)
                if unhappy:
                    gap *= 1.0 + 0.5 * k  # slowing down
                t += gap


@pytest.fixture(scope="session")
def shop(tmp_path_factory):
    """A simulated shop on SQLite, shared read-only by the tests that only read it."""
    from store.db import open_store

    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('shop') / 'shop.db'}")
    simulate_shop(store)
    yield store
    store.dispose()


@pytest.fixture(scope="session")
def shop_cache():
    """One analytics cache for the read-only shop, so its snapshot is built once per test session."""
    return {}


@pytest.fixture
def marketer(shop, settings, shop_cache):
    from tools.context import ShopContext

    return ShopContext(store=shop, settings=settings, role="marketer", cache=shop_cache)


def assert_no_nan(obj, path="result") -> None:
    """No NaN or infinity anywhere in a JSON-able structure."""
    if isinstance(obj, float):
        assert np.isfinite(obj), f"{path} is {obj}"
    elif isinstance(obj, dict):
        for k, v in obj.items():
            assert_no_nan(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            assert_no_nan(v, f"{path}[{i}]")


@pytest.fixture
def helpers():
    """The module's helper functions (conftest modules are not importable under --import-mode=importlib)."""

    class H:
        add_orders = staticmethod(add_orders)
        simulate_shop = staticmethod(simulate_shop)
        assert_no_nan = staticmethod(assert_no_nan)
        END = END

    return H
