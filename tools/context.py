"""What a tool knows about the caller: injected by the agent from the signed-in session, never filled by the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from shopdesk.settings import Settings
from store.db import Store

if TYPE_CHECKING:
    from index.shared import IndexRegistry

Role = Literal["customer", "marketer"]


@dataclass(frozen=True)
class PendingAction:
    """A write the bot proposed and the customer has not yet confirmed: exactly what will run, and its summary."""

    tool: str
    arguments: dict[str, Any]
    summary: str  # the policy-checked description the customer confirms (amounts, items, payment method)


@dataclass
class ShopContext:
    """Per-session dependencies of the tools.

    `customer_id` is the signed-in customer (role "customer") and is the only identity customer tools act for.
    `pending_action` holds a write the bot has proposed and is waiting for the customer to confirm.
    `indexes` is where the search tools get their index: the registry the context's owner shares among its sessions
    (the app's services hand theirs down); without one the search tools use index.shared.default_registry().
    """

    store: Store
    settings: Settings
    role: Role
    customer_id: str | None = None
    conversation_id: str | None = None
    pending_action: PendingAction | None = None
    confirmed: bool = False
    cache: dict[str, Any] = field(default_factory=dict)  # per-session lazily built helpers (search index handle, ...)
    indexes: IndexRegistry | None = field(default=None, repr=False)

    def require_customer(self) -> str:
        if self.role != "customer" or not self.customer_id:
            raise PermissionError("this tool needs a signed-in customer")
        return self.customer_id

    def require_marketer(self) -> None:
        if self.role != "marketer":
            raise PermissionError("this tool is for marketers only")
