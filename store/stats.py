"""Counts per entity and the date range of orders: what `shopdesk store stats` prints."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from store.db import Store
from store.models import (
    Conversation,
    Customer,
    Event,
    Fulfillment,
    ImportRun,
    Message,
    Order,
    OrderItem,
    Payment,
    PaymentMethod,
    Product,
    Review,
    Variant,
)

ENTITIES = {
    "customers": Customer,
    "payment_methods": PaymentMethod,
    "products": Product,
    "variants": Variant,
    "orders": Order,
    "order_items": OrderItem,
    "fulfillments": Fulfillment,
    "payments": Payment,
    "reviews": Review,
    "conversations": Conversation,
    "messages": Message,
    "events": Event,
    "import_runs": ImportRun,
}


def store_stats(store: Store) -> dict[str, Any]:
    """Row counts, order date range and order statuses of a store."""
    with store.read() as s:
        counts = {name: s.scalar(select(func.count()).select_from(model)) for name, model in ENTITIES.items()}
        first, last = s.execute(select(func.min(Order.created_at), func.max(Order.created_at))).one()
        statuses = dict(s.execute(select(Order.status, func.count()).group_by(Order.status)).all())
    return {"counts": counts, "orders_from": first, "orders_to": last, "order_statuses": statuses}
