"""Who is chatting. In demo mode anyone may pick a sample customer; on a shop's site the customer arrives with a token
the shop signed (shopdesk.auth). Staff sign in with their own account (store.staff); failed tries are throttled per
account and per address. The demo's shared marketer password exists only in demo mode.
"""

from __future__ import annotations

import hmac
import math
import time
from dataclasses import dataclass

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import select

from shopdesk.auth import TokenError, secret_key, verify_token
from shopdesk.output import UserError
from shopdesk.settings import Settings
from store.db import Store
from store.models import Customer, Order
from store.staff import Staff, authenticate
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
            raise NotFoundError("Unknown customer: pick one from the list.",
                                user="Unknown customer: pick one from the list.")
    return customer_id


DEMO_MARKETER_PASSWORD = "marketer"
TOKEN_PARAM = "token"  # ?token=... on the chat page's link
TOKEN_COOKIE = "shopdesk_token"  # or a cookie the shop's site set


def marketer_password(settings: Settings) -> str | None:
    """The shared password that opens the marketer console in demo mode: the configured one, else "marketer".
    Outside demo mode there is none: marketers sign in with their own staff account (store.staff).
    """
    if not settings.demo:
        return None
    configured = settings.marketer_password.get_secret_value() if settings.marketer_password else None
    return configured or DEMO_MARKETER_PASSWORD


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


# Failed staff sign-ins allowed before the account, or the address, must wait (a moving window).
FAILURES_PER_ACCOUNT = "5/15 minutes"
FAILURES_PER_ADDRESS = "20/15 minutes"


class SignInRefused(Exception):
    """A staff sign-in that did not open anything; the message is for the person, `retry_after` set when throttled."""

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class StaffSession:
    """A signed-in staff member in one browser session; it ends at `expires_at` (epoch seconds)."""

    name: str
    role: str
    expires_at: float

    def valid(self) -> bool:
        return time.time() < self.expires_at


class StaffSignIn:
    """Checks staff passwords, throttling failures per account and per address (limits' in-memory storage)."""

    def __init__(self, per_account: str = FAILURES_PER_ACCOUNT, per_address: str = FAILURES_PER_ADDRESS) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._items = {"account": parse(per_account), "address": parse(per_address)}

    def _wait(self, scope: str, key: str) -> int | None:
        item = self._items[scope]
        if self._limiter.test(item, scope, key):
            return None
        reset = self._limiter.get_window_stats(item, scope, key).reset_time
        return max(1, math.ceil(reset - time.time()))

    def sign_in(self, store: Store, name: str, password: str, address: str, role: str | None = None) -> Staff:
        """The staff account, if the password is right (and its role is `role`, when given); SignInRefused else."""
        name = (name or "").strip().lower()
        waits = [w for w in (self._wait("account", name), self._wait("address", address)) if w]
        if waits:  # refused before the password is even checked, so guessing gains nothing while throttled
            wait = max(waits)
            raise SignInRefused(f"Too many failed sign-ins. Please wait {wait} s and try again.", retry_after=wait)
        staff = authenticate(store, name, password)
        if staff is None or (role is not None and staff.role != role):
            self._limiter.hit(self._items["account"], "account", name)
            self._limiter.hit(self._items["address"], "address", address)
            raise SignInRefused("Wrong staff name or password." if staff is None
                                else f"This account is not a {role} account.")
        return staff
