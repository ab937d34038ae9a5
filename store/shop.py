"""Shop-wide settings kept in the store: the currency every amount is in."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from shopdesk.output import UserError
from store.db import Store
from store.models import ShopSetting

DEFAULT_CURRENCY = "USD"


def check_currency(code: str) -> str:
    """An ISO 4217 code in upper case ("gbp" -> "GBP"); anything else is a UserError."""
    value = str(code).strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise UserError(f"--currency must be a three-letter ISO 4217 code such as USD, GBP or EUR, not {code!r}")
    return value


def shop_currency(store: Store) -> str:
    """The shop's currency (USD until an import sets another)."""
    with store.read() as s:
        row = s.get(ShopSetting, "currency")
        return row.value if row is not None else DEFAULT_CURRENCY


def set_shop_currency(session: Session, code: str, has_orders: bool) -> str:
    """Store the shop's currency; a shop that already holds orders in another currency refuses the change."""
    code = check_currency(code)
    row = session.get(ShopSetting, "currency")
    current = row.value if row is not None else DEFAULT_CURRENCY
    if current != code and has_orders:
        raise UserError(
            f"the shop's amounts are in {current}; importing {code} amounts would mix currencies "
            "(use a separate store: point SHOPDESK_DATA_DIR or SHOPDESK_DATABASE_URL elsewhere)"
        )
    if row is None:
        session.add(ShopSetting(key="currency", value=code))
    else:
        row.value = code
    return code
