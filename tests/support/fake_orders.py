"""A stand-in order tool for agent tests: four orders of two customers, rendered in English or Chinese.

Importable from any test (pytest puts tests/support on sys.path): `from fake_orders import get_order_details, info`.
"""

from __future__ import annotations

from pydantic import BaseModel

from tools.context import ShopContext
from tools.errors import NotFoundError
from tools.results import Fact

ORDERS = {
    "#W100": ("alice", "processed", 42.5, "1234567890"),
    "#W101": ("alice", "delivered", 12.0, None),
    "#W102": ("alice", "pending", 7.25, None),
    "#W200": ("bob", "pending", 10.0, None),
}
STATUS_ZH = {"processed": "已处理", "delivered": "已送达", "pending": "待处理"}
NOT_FOUND = "I couldn't find that order on your account. Could you check the order number?"
NOT_FOUND_ZH = "您的账户中没有这个订单。请核对订单号。"


class OrderInfo(BaseModel):
    """What the stand-in tool returns: an order's status, total and tracking number."""

    order_id: str
    status: str
    total: float
    tracking_id: str | None = None

    def render(self, lang: str = "en") -> str:
        """One sentence in `lang`."""
        if lang == "zh":
            track = f",运单号 {self.tracking_id}" if self.tracking_id else ""
            return f"订单 {self.order_id} 状态:{STATUS_ZH[self.status]};总额 ${self.total:.2f}{track}。"
        track = f", tracking {self.tracking_id}" if self.tracking_id else ""
        return f"Order {self.order_id} is {self.status}; total ${self.total:.2f}{track}."

    def facts(self) -> list[Fact]:
        """The order id and status, about the order."""
        about = f"order:{self.order_id}"
        return [Fact(kind="order_id", value=self.order_id, about=about),
                Fact(kind="status", value=self.status, about=about)]


def info(order_id: str) -> OrderInfo:
    """The stand-in tool's result for one of ORDERS."""
    _, status, total, tracking = ORDERS[order_id]
    return OrderInfo(order_id=order_id, status=status, total=total, tracking_id=tracking)


def get_order_details(ctx: ShopContext, order_id: str) -> OrderInfo:
    """Status, total and tracking of one of the customer's orders.

    Args:
        order_id: The order id, like '#W1234567'.
    """
    owner = ORDERS.get(order_id, (None,))[0]
    if owner != ctx.customer_id:
        raise NotFoundError(f"no order {order_id} for this customer", user=NOT_FOUND, user_zh=NOT_FOUND_ZH)
    return info(order_id)
