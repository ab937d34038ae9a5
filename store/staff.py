"""Staff accounts: support agents and marketers who sign in with a name and a password (kept as argon2 hashes).

    shopdesk staff add alice --role support     # asks for the password (or reads it from stdin)
    shopdesk staff list
    shopdesk staff disable alice
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from shopdesk.auth import hash_password, password_matches
from shopdesk.output import UserError
from store.db import Store
from store.models import STAFF_ROLES, StaffAccount

MIN_PASSWORD_CHARS = 8
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
# Verified against when the name is unknown, so an unknown name takes as long as a wrong password.
_UNKNOWN_HASH = hash_password("no such staff account")


@dataclass(frozen=True)
class Staff:
    """A staff account as the rest of the app sees it (never the hash)."""

    name: str
    role: str
    active: bool
    created_at: datetime
    last_sign_in_at: datetime | None = None


def _view(row: StaffAccount) -> Staff:
    return Staff(row.name, row.role, row.active, row.created_at, row.last_sign_in_at)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def add_staff(store: Store, name: str, role: str, password: str) -> Staff:
    """A new active account; UserError for a taken name, an unknown role or a short password. Names are kept in
    lower case: Alice and alice are one account.
    """
    name = (name or "").strip().lower()
    if not NAME.match(name or ""):
        raise UserError(f"{name!r} is not a usable staff name: letters, digits and . _ @ - only, up to 100 characters")
    if role not in STAFF_ROLES:
        raise UserError(f"unknown role {role!r}; expected one of {', '.join(STAFF_ROLES)}")
    if len(password or "") < MIN_PASSWORD_CHARS:
        raise UserError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")
    with store.transaction() as s:
        if s.scalar(select(StaffAccount).where(StaffAccount.name == name)) is not None:
            raise UserError(f"there is already a staff account named {name!r}")
        row = StaffAccount(name=name, role=role, password_hash=hash_password(password), active=True,
                           created_at=_now())
        s.add(row)
    return _view(row)


def list_staff(store: Store) -> list[Staff]:
    """All staff accounts, by name."""
    with store.read() as s:
        return [_view(r) for r in s.scalars(select(StaffAccount).order_by(StaffAccount.name))]


def set_active(store: Store, name: str, active: bool) -> Staff:
    """Enable or disable an account (a disabled one cannot sign in; its history stays)."""
    with store.transaction() as s:
        row = s.scalar(select(StaffAccount).where(StaffAccount.name == (name or "").strip().lower()))
        if row is None:
            raise UserError(f"no staff account named {name!r}")
        row.active = active
    return _view(row)


def authenticate(store: Store, name: str, password: str) -> Staff | None:
    """The active account `name` if `password` is its password, else None (unknown, disabled and wrong read alike)."""
    with store.transaction() as s:
        row = s.scalar(select(StaffAccount).where(StaffAccount.name == (name or "").strip().lower()))
        if row is None:
            password_matches(_UNKNOWN_HASH, password)
            return None
        if not password_matches(row.password_hash, password) or not row.active:
            return None
        row.last_sign_in_at = _now()
    return _view(row)


def get_staff(store: Store, name: str) -> Staff | None:
    """The staff account with this name (case and surrounding spaces ignored), or None."""
    with store.read() as s:
        row = s.scalar(select(StaffAccount).where(StaffAccount.name == (name or "").strip().lower()))
        return _view(row) if row else None
