"""Who is chatting. The demo lets you pick a sample customer; a real shop replaces `sign_in_customer` with its own login."""

from __future__ import annotations

import hmac

from sqlalchemy import select

from store.db import Store
from store.models import Customer, Order
from tools.errors import NotFoundError


def demo_customers(store: Store, limit: int = 50) -> list[tuple[str, str]]:
    """(label, customer id) of sample customers with orders, for the demo's sign-in picker."""
    with store.read() as s:
        with_orders = select(Order.customer_id).distinct().scalar_subquery()
        rows = s.execute(
            select(Customer.id, Customer.first_name, Customer.last_name, Customer.email)
            .where(Customer.id.in_(with_orders))
            .order_by(Customer.id)
            .limit(limit)
        ).all()
    return [(f"{' '.join(p for p in (first, last) if p) or '?'} · {cid} · {email or ''}", cid)
            for cid, first, last, email in rows]


def sign_in_customer(store: Store, customer_id: str) -> str:
    """The signed-in customer's id. Demo: any existing customer picked in the list; replace with the shop's login."""
    with store.read() as s:
        if not customer_id or s.get(Customer, customer_id) is None:
            raise NotFoundError("Unknown customer: pick one from the list.", user="Unknown customer: pick one from the list.")
    return customer_id


def check_marketer_password(given: str, expected: str) -> bool:
    """Constant-time comparison, so response times do not reveal the password."""
    return hmac.compare_digest((given or "").encode(), expected.encode())
