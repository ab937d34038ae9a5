"""Fixtures shared by the agent and order-tool tests."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from store.models import Customer, Order, OrderItem, Payment, PaymentMethod


def _snapshot(store) -> dict:
    """Everything a write could touch, to prove nothing changed (plain rows: cheap on the whole shop)."""
    with store.read() as s:
        return {
            "orders": sorted(s.execute(select(Order.id, Order.status, Order.total, Order.address, Order.details,
                                              Order.updated_at)).all(), key=lambda r: r[0]),
            "items": sorted(s.execute(select(OrderItem.id, OrderItem.order_id, OrderItem.variant_id,
                                             OrderItem.unit_price, OrderItem.quantity)).all()),
            "payments": s.scalar(select(func.count()).select_from(Payment)),
            "balances": sorted(s.execute(select(PaymentMethod.id, PaymentMethod.balance)).all()),
        }


@pytest.fixture
def snapshot():
    """`snapshot(store)`: the rows a write could touch, compared before and after to prove nothing was written."""
    return _snapshot


@pytest.fixture
def shop(sqlite_store):
    """An empty store with the stand-in tools' two customers, alice and bob (tests/support/fake_orders.py)."""
    with sqlite_store.transaction() as s:
        s.add_all([Customer(id="alice", email="alice@example.com"), Customer(id="bob", email="bob@example.com")])
    return sqlite_store
