"""Who is chatting. In demo mode anyone may pick a sample customer; on a shop's site the customer arrives with a token
the shop signed (shopdesk.auth), and the marketer password must be configured.
"""

from __future__ import annotations

import hmac

from sqlalchemy import select

from shopdesk.auth import TokenError, secret_key, verify_token
from shopdesk.output import UserError
from shopdesk.settings import Settings
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
    """The id of the customer picked in the demo's list (demo mode only: a shop's customers sign in with a token)."""
    with store.read() as s:
        if not customer_id or s.get(Customer, customer_id) is None:
            raise NotFoundError("Unknown customer: pick one from the list.", user="Unknown customer: pick one from the list.")
    return customer_id


DEMO_MARKETER_PASSWORD = "marketer"
TOKEN_PARAM = "token"  # ?token=... on the chat page's link
TOKEN_COOKIE = "shopdesk_token"  # or a cookie the shop's site set


def marketer_password(settings: Settings) -> str | None:
    """The password that opens the marketer console: the configured one; in demo mode "marketer" if none is. Outside
    demo mode the demo password is never accepted, so a shop that forgot to set one is not open to everyone."""
    configured = settings.marketer_password.get_secret_value() if settings.marketer_password else None
    if settings.demo:
        return configured or DEMO_MARKETER_PASSWORD
    if not configured or configured == DEMO_MARKETER_PASSWORD:
        return None
    return configured


def check_marketer_password(given: str, expected: str | None) -> bool:
    """Constant-time comparison, so response times do not reveal the password; no password set opens nothing."""
    if not expected:
        return False
    return hmac.compare_digest((given or "").encode(), expected.encode())


def token_from(query_params: dict[str, str] | None, cookies: dict[str, str] | None) -> str | None:
    """The customer token a page request carries: `?token=` first, else the cookie."""
    return (query_params or {}).get(TOKEN_PARAM) or (cookies or {}).get(TOKEN_COOKIE) or None


def customer_from_token(settings: Settings, store: Store, token: str) -> str:
    """The customer a signed token names; TokenError (a sentence for the customer) when it proves nothing."""
    try:
        key = secret_key(settings)
    except UserError:
        raise TokenError("Signing in from the shop's site is not set up yet (no SHOPDESK_SECRET_KEY).") from None
    customer_id = verify_token(token, key)
    with store.read() as s:
        if s.get(Customer, customer_id) is None:
            raise TokenError("This sign-in token names a customer this shop does not have.")
    return customer_id
