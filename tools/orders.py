"""The signed-in customer's order tools: look up, cancel, modify, return and exchange, under the shop's policy.

Identity: every tool acts for `ctx.require_customer()`; no tool takes a customer id. An order of another customer is
reported exactly like a missing one (NotFoundError "no order X on your account"), so nothing leaks.

Order ids: "#W2611340", "W2611340" and "2611340" (and "#S0001234"-style sample ids) all find the same order; digits
alone must match exactly one of the customer's orders.

Writes (cancel_pending_order, modify_pending_order_address, modify_pending_order_items,
return_delivered_order_items, exchange_delivered_order_items) follow a confirmation protocol:
1. the tool validates the request against the policy (tools/policy.py) and does NOT write; it stores the exact action in
   `ctx.pending_action = {"tool": name, "arguments": {...normalised...}, "summary": "..."}` and returns
   `ConfirmationRequired(summary=..., action=...)`;
2. when the customer confirms in their next turn, the agent calls `execute_pending_action(ctx)`, which re-checks the
   policy against the current store state inside one transaction and, only if the action is still exactly the one
   confirmed (same summary: same items, amounts, payment method), performs it and returns an `ActionResult`;
   otherwise it raises PolicyError and writes nothing. The pending action is cleared either way;
3. anything else: `discard_pending_action(ctx)`.
Money moves at once for cancellations (refund rows) and items modifications (payment or refund row for the price
difference); returns and exchanges are *requests* (status "return requested"/"exchange requested", details recorded
on the order), and their money moves when the items come back, as in tau2.

Rendering and grounding: `render_result(result) -> str` is the faithful plain-text answer for any result of this
module (one `render_*` per type). `result_facts(result) -> dict` lists the facts an answer must not contradict:
    {"order_ids": [str], "statuses": {order_id: status}, "amounts": [float, USD],
     "tracking_ids": [str], "item_ids": [str], "product_ids": [str], "dates": ["YYYY-MM-DD"]}
Every key is always present (possibly empty). Order ids are given in the store's form ("#W2611340").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from store.models import Order, OrderItem, Payment, PaymentMethod, Variant
from tools import policy
from tools.context import ShopContext
from tools.errors import NotFoundError, PolicyError, ToolInputError

WRITE_TOOLS = (
    "cancel_pending_order",
    "modify_pending_order_address",
    "modify_pending_order_items",
    "return_delivered_order_items",
    "exchange_delivered_order_items",
)
MAX_LISTED_ORDERS = 20
CENT = Decimal("0.01")


# ---------------------------------------------------------------- results


class ItemLine(BaseModel):
    item_id: str = Field(description="variant id of the item (use it in item_ids)")
    product_id: str | None = None
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    quantity: int = Field(ge=1)
    unit_price: float = Field(description="USD paid per unit")


class ShipmentInfo(BaseModel):
    tracking_ids: list[str]
    carrier: str | None = None
    item_ids: list[str] = Field(default_factory=list)
    shipped_at: datetime | None = None


class PaymentLine(BaseModel):
    kind: str = Field(description="payment or refund")
    amount: float = Field(description="USD")
    payment_method_id: str | None = None
    method: str = Field(description="human description of the payment method")


class OrderSummary(BaseModel):
    order_id: str
    status: str
    created_at: datetime
    total: float = Field(description="USD")
    item_count: int


class OrderList(BaseModel):
    orders: list[OrderSummary] = Field(description="most recent first")
    total_orders: int = Field(description="all orders on the account (the list shows at most 20)")


class OrderDetails(BaseModel):
    order_id: str
    status: str
    created_at: datetime
    updated_at: datetime
    items: list[ItemLine]
    total: float = Field(description="USD, sum of the item lines")
    currency: str = "USD"
    shipping_address: str
    shipments: list[ShipmentInfo] = Field(default_factory=list)
    payments: list[PaymentLine] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="cancel reason, return/exchange requests, changes")


class ConfirmationRequired(BaseModel):
    """A write that waits for the customer's explicit yes; nothing has changed yet."""

    summary: str
    action: dict[str, Any]


class ActionResult(BaseModel):
    """What a confirmed write did."""

    tool: str
    order_id: str
    status: str = Field(description="order status after the change")
    message: str
    refund_amount: float = Field(0.0, description="USD refunded (or to be refunded once items are back)")
    charge_amount: float = Field(0.0, description="USD charged")
    payment_method_id: str | None = None


# ---------------------------------------------------------------- helpers


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _money(x: Decimal | float | int | None) -> Decimal:
    return Decimal(str(x or 0)).quantize(CENT)


def _usd(x: Decimal | float) -> str:
    return f"${_money(x)}"


def _pm_label(pm: PaymentMethod | None, pm_id: str | None = None) -> str:
    if pm is None:
        return f"payment method {pm_id}" if pm_id else "the original payment method"
    if pm.kind == "credit_card":
        brand = f"{pm.brand} " if pm.brand else ""
        return f"{brand}credit card ending {pm.last_four} ({pm.id})" if pm.last_four else f"credit card {pm.id}"
    if pm.kind == "gift_card":
        return f"gift card {pm.id}"
    if pm.kind == "paypal":
        return f"PayPal {pm.id}"
    return f"{pm.kind} {pm.id}"


def _address_text(addr: dict[str, Any] | None) -> str:
    if not addr:
        return "unknown"
    parts = [addr.get(k) for k in ("address1", "address2", "city", "state", "zip", "country")]
    return ", ".join(str(p) for p in parts if p)


def _options_text(options: dict[str, Any] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in (options or {}).items())


def _clean_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ToolInputError(f"{field} must be a non-empty string")
    return value.strip().replace("＃", "#").replace(" ", "")


def _id_list(values: Any, field: str) -> list[str]:
    if isinstance(values, str):
        values = [v for v in values.replace(";", ",").split(",") if v.strip()]
    if not isinstance(values, list):
        raise ToolInputError(f"{field} must be a list of item ids")
    return [_clean_id(v if isinstance(v, str) else str(v), field) for v in values]


def _order_query(customer_id: str):
    return (
        select(Order)
        .where(Order.customer_id == customer_id)
        .options(selectinload(Order.items), selectinload(Order.fulfillments), selectinload(Order.payments))
    )


def _find_order(session: Session, customer_id: str, order_id: str, *, lock: bool = False) -> Order:
    """The customer's own order for any accepted id form; NotFoundError otherwise (also for others' orders)."""
    raw = _clean_id(order_id, "order_id")
    core = raw.lstrip("#").upper()
    if not core or not core.isalnum():
        raise ToolInputError(f"order_id {order_id!r} is not an order id like #W2611340")
    q = _order_query(customer_id)
    if lock:
        q = q.with_for_update()
    if core.isdigit():
        found = [
            o for o in session.scalars(q.where(Order.id.like(f"%{core}"))).unique()
            if o.id.lstrip("#").lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") == core
        ]
    else:
        found = list(session.scalars(q.where(Order.id.in_(["#" + core, core, raw]))).unique())
    if not found:
        raise NotFoundError(f"There is no order {order_id} on your account.")
    if len(found) > 1:
        ids = ", ".join(sorted(o.id for o in found))
        raise ToolInputError(f"order_id {order_id!r} matches several orders ({ids}); use the full id.")
    return found[0]


def _payment_methods(session: Session, ids: set[str]) -> dict[str, PaymentMethod]:
    if not ids:
        return {}
    return {pm.id: pm for pm in session.scalars(select(PaymentMethod).where(PaymentMethod.id.in_(ids)))}


def _lines_for(order: Order, item_ids: list[str]) -> list[OrderItem]:
    """One order line per requested unit (a line with quantity n serves up to n requests)."""
    left = {line.id: line.quantity or 1 for line in order.items}
    picked = []
    for item_id in item_ids:
        line = next(li for li in order.items if li.variant_id == item_id and left[li.id] > 0)
        left[line.id] -= 1
        picked.append(line)
    return picked


def _order_total(order: Order) -> Decimal:
    return sum((_money(li.unit_price) * (li.quantity or 1) for li in order.items), Decimal("0.00"))


def _refund_timing(pm: PaymentMethod | None) -> str:
    return "at once" if pm is not None and pm.kind == "gift_card" else f"within {policy.POLICY.card_refund_days}"


def _difference_text(diff: Decimal, pm: PaymentMethod) -> str:
    if diff > 0:
        return f"you pay the price difference of {_usd(diff)} with {_pm_label(pm)}"
    if diff < 0:
        return f"you get the price difference of {_usd(-diff)} back to {_pm_label(pm)}"
    return f"there is no price difference (payment method {_pm_label(pm)})"


def _swap_text(lines: list[OrderItem], news: list[Variant]) -> str:
    return "; ".join(
        f"{li.name or 'item'} {li.variant_id} ({_options_text(li.options)}, {_usd(li.unit_price)}) -> "
        f"{nv.id} ({_options_text(nv.options)}, {_usd(nv.price)})"
        for li, nv in zip(lines, news)
    )


def _items_text(lines: list[OrderItem]) -> str:
    return "; ".join(f"{li.name or 'item'} {li.variant_id} ({_usd(li.unit_price)})" for li in lines)


def _unit_count(order: Order) -> int:
    return sum(li.quantity or 1 for li in order.items)


# ---------------------------------------------------------------- planning (validate, describe, and how to apply)


@dataclass
class _Plan:
    tool: str
    arguments: dict[str, Any]
    summary: str
    apply: Callable[[Session], ActionResult]


def _plan_cancel(s: Session, cid: str, args: dict[str, Any], lock: bool = False) -> _Plan:
    order = _find_order(s, cid, args.get("order_id"), lock=lock)
    policy.check_status(order, "cancel", order.id)
    reason = policy.check_cancel_reason(args.get("reason", ""))
    net: dict[str, Decimal] = {}
    for p in order.payments:
        sign = 1 if p.kind == "payment" else -1
        net[p.payment_method_id] = net.get(p.payment_method_id, Decimal("0")) + sign * _money(p.amount)
    refunds = {pm_id: amt for pm_id, amt in net.items() if amt > 0}
    pms = _payment_methods(s, {k for k in refunds if k})
    total = _order_total(order)
    refund_text = "; ".join(
        f"refund {_usd(a)} to {_pm_label(pms.get(k), k)} {_refund_timing(pms.get(k))}" for k, a in refunds.items()
    ) or "nothing to refund"
    summary = (
        f"Cancel order {order.id} ({_unit_count(order)} items, {_usd(total)}), reason '{reason}'; {refund_text}."
    )

    def apply(session: Session) -> ActionResult:
        now = _now()
        for pm_id, amount in refunds.items():
            session.add(Payment(order_id=order.id, kind="refund", amount=amount, payment_method_id=pm_id,
                                created_at=now))
            pm = pms.get(pm_id)
            if pm is not None and pm.kind == "gift_card":
                pm.balance = _money(pm.balance) + amount
        return _record(order, "cancel_pending_order", {"cancel_reason": reason}, f"Order {order.id} is cancelled; "
                       f"{refund_text}.", status="cancelled", now=now,
                       refund_amount=float(sum(refunds.values(), Decimal("0"))),
                       payment_method_id=next(iter(refunds), None))

    return _Plan("cancel_pending_order", {"order_id": order.id, "reason": reason}, summary, apply)


ADDRESS_FIELDS = ("address1", "address2", "city", "state", "country", "zip")


def _plan_address(s: Session, cid: str, args: dict[str, Any], lock: bool = False) -> _Plan:
    order = _find_order(s, cid, args.get("order_id"), lock=lock)
    policy.check_status(order, "modify", order.id)
    new: dict[str, str] = {}
    for f in ADDRESS_FIELDS:
        v = args.get(f)
        v = "" if v is None else str(v).strip()
        if not v and f != "address2":
            raise ToolInputError(f"{f} is empty: ask the customer for the full new address.")
        new[f] = v
    old_text = _address_text(order.address)
    summary = f"Change the shipping address of pending order {order.id} from '{old_text}' to '{_address_text(new)}'."

    def apply(session: Session) -> ActionResult:
        order.address = new
        order.updated_at = _now()
        return ActionResult(
            tool="modify_pending_order_address", order_id=order.id, status=order.status,
            message=f"Order {order.id} will ship to {_address_text(new)}.",
        )

    return _Plan("modify_pending_order_address", {"order_id": order.id, **new}, summary, apply)


def _record(order: Order, tool: str, details: dict[str, Any], message: str, *, status: str | None = None,
            now: datetime | None = None, **amounts: Any) -> ActionResult:
    """The end every write shares: new status (if any), `details` merged into the order's, the time, the result."""
    if status is not None:
        order.status = status
    order.details = {**(order.details or {}), **details}
    order.updated_at = now or _now()
    return ActionResult(tool=tool, order_id=order.id, status=order.status, message=message, **amounts)


def _difference_amounts(diff: Decimal, pm: PaymentMethod) -> dict[str, Any]:
    """A price difference as the result's charge (positive) or refund (negative) on `pm`."""
    return {"charge_amount": float(max(diff, Decimal("0"))), "refund_amount": float(max(-diff, Decimal("0"))),
            "payment_method_id": pm.id}


def _swap_setup(s: Session, cid: str, order: Order, args: dict[str, Any]):
    item_ids = _id_list(args.get("item_ids"), "item_ids")
    new_ids = _id_list(args.get("new_item_ids"), "new_item_ids")
    policy.check_items_in_order(order, item_ids, order.id)
    lines = _lines_for(order, item_ids)
    variants = {v.id: v for v in s.scalars(select(Variant).where(Variant.id.in_(set(new_ids))))}
    news = [variants.get(i) for i in new_ids]
    policy.check_swaps(lines, news, new_ids)
    pm_id = _clean_id(args.get("payment_method_id"), "payment_method_id")
    pm = policy.check_payment_method(s.get(PaymentMethod, pm_id), pm_id, cid)
    diff = sum((_money(n.price) for n in news), Decimal("0")) - sum(
        (_money(li.unit_price) for li in lines), Decimal("0")
    )
    policy.check_gift_card_covers(pm, diff)
    return item_ids, new_ids, lines, news, pm, diff


def _plan_modify_items(s: Session, cid: str, args: dict[str, Any], lock: bool = False) -> _Plan:
    order = _find_order(s, cid, args.get("order_id"), lock=lock)
    policy.check_status(order, "modify", order.id)
    policy.check_items_not_modified(order, order.id)
    item_ids, new_ids, lines, news, pm, diff = _swap_setup(s, cid, order, args)
    summary = (
        f"Modify the items of pending order {order.id}: {_swap_text(lines, news)}; {_difference_text(diff, pm)}. "
        f"Items of an order can be modified only once, and the order can then no longer be cancelled."
    )

    def apply(session: Session) -> ActionResult:
        now = _now()
        for line, nv in zip(lines, news):
            if (line.quantity or 1) > 1:  # split one unit off a multi-unit line
                line.quantity -= 1
                session.add(OrderItem(order=order, product_id=nv.product_id, variant_id=nv.id, name=line.name,
                                      quantity=1, unit_price=_money(nv.price), options=dict(nv.options or {})))
            else:
                line.variant_id = nv.id
                line.unit_price = _money(nv.price)
                line.options = dict(nv.options or {})
        session.flush()
        session.refresh(order, ["items"])
        order.total = _order_total(order)
        if diff != 0:
            kind = "payment" if diff > 0 else "refund"
            session.add(Payment(order_id=order.id, kind=kind, amount=abs(diff), payment_method_id=pm.id,
                                created_at=now))
            if pm.kind == "gift_card":
                pm.balance = _money(pm.balance) - diff
        details = {"items_modified": True, "modified_items": [[a, b] for a, b in zip(item_ids, new_ids)]}
        return _record(order, "modify_pending_order_items", details,
                       f"The items of order {order.id} are changed; {_difference_text(diff, pm)}.", now=now,
                       **_difference_amounts(diff, pm))

    return _Plan(
        "modify_pending_order_items",
        {"order_id": order.id, "item_ids": item_ids, "new_item_ids": new_ids, "payment_method_id": pm.id},
        summary, apply,
    )


def _plan_return(s: Session, cid: str, args: dict[str, Any], lock: bool = False) -> _Plan:
    order = _find_order(s, cid, args.get("order_id"), lock=lock)
    policy.check_status(order, "return", order.id)
    item_ids = _id_list(args.get("item_ids"), "item_ids")
    policy.check_items_in_order(order, item_ids, order.id)
    lines = _lines_for(order, item_ids)
    pm_id = _clean_id(args.get("payment_method_id"), "payment_method_id")
    pm = policy.check_payment_method(s.get(PaymentMethod, pm_id), pm_id, cid)
    policy.check_refund_method(order, pm, order.id)
    refund = sum((_money(li.unit_price) for li in lines), Decimal("0"))
    summary = (
        f"Return {len(lines)} item(s) of delivered order {order.id}: {_items_text(lines)}; refund {_usd(refund)} to "
        f"{_pm_label(pm)}. The order becomes 'return requested' and you will get an email on how to send the items "
        f"back."
    )

    def apply(session: Session) -> ActionResult:
        details = {"return_items": item_ids, "return_payment_method_id": pm.id, "return_refund_amount": float(refund)}
        message = (f"Return requested for order {order.id}: {_usd(refund)} will be refunded to {_pm_label(pm)} once "
                   f"the items are back; an email explains how to send them.")
        return _record(order, "return_delivered_order_items", details, message, status="return requested",
                       refund_amount=float(refund), payment_method_id=pm.id)

    return _Plan(
        "return_delivered_order_items",
        {"order_id": order.id, "item_ids": item_ids, "payment_method_id": pm.id}, summary, apply,
    )


def _plan_exchange(s: Session, cid: str, args: dict[str, Any], lock: bool = False) -> _Plan:
    order = _find_order(s, cid, args.get("order_id"), lock=lock)
    policy.check_status(order, "exchange", order.id)
    item_ids, new_ids, lines, news, pm, diff = _swap_setup(s, cid, order, args)
    summary = (
        f"Exchange items of delivered order {order.id}: {_swap_text(lines, news)}; {_difference_text(diff, pm)}. "
        f"An order can be exchanged only once. The order becomes 'exchange requested' and you will get an email on "
        f"how to send the items back."
    )

    def apply(session: Session) -> ActionResult:
        details = {"exchange_items": item_ids, "exchange_new_items": new_ids, "exchange_payment_method_id": pm.id,
                   "exchange_price_difference": float(diff)}
        return _record(order, "exchange_delivered_order_items", details,
                       f"Exchange requested for order {order.id}; {_difference_text(diff, pm)}.",
                       status="exchange requested", **_difference_amounts(diff, pm))

    return _Plan(
        "exchange_delivered_order_items",
        {"order_id": order.id, "item_ids": item_ids, "new_item_ids": new_ids, "payment_method_id": pm.id},
        summary, apply,
    )


_PLANNERS: dict[str, Callable[..., _Plan]] = {
    "cancel_pending_order": _plan_cancel,
    "modify_pending_order_address": _plan_address,
    "modify_pending_order_items": _plan_modify_items,
    "return_delivered_order_items": _plan_return,
    "exchange_delivered_order_items": _plan_exchange,
}


def _propose(ctx: ShopContext, tool: str, args: dict[str, Any]) -> ConfirmationRequired:
    cid = ctx.require_customer()
    ctx.pending_action = None  # a new proposal replaces any older one, even when it is refused
    ctx.confirmed = False
    with ctx.store.read() as s:
        plan = _PLANNERS[tool](s, cid, args)
    ctx.pending_action = {"tool": plan.tool, "arguments": plan.arguments, "summary": plan.summary}
    return ConfirmationRequired(
        summary=plan.summary + " Shall I go ahead? (yes/no)",
        action={"tool": plan.tool, "arguments": plan.arguments},
    )


# ---------------------------------------------------------------- protocol


def is_write_tool(name: str) -> bool:
    """True for the tools that change orders and therefore need the customer's confirmation."""
    return name in WRITE_TOOLS


def execute_pending_action(ctx: ShopContext) -> ActionResult:
    """Carry out the confirmed pending action after re-checking the policy on the current data, in one transaction."""
    action = ctx.pending_action
    if not action:
        raise PolicyError("There is no pending change to confirm.")
    ctx.pending_action = None  # a confirmation is used once, whatever happens next
    ctx.confirmed = False
    cid = ctx.require_customer()
    tool = action["tool"]
    if tool not in _PLANNERS:
        raise ToolInputError(f"{tool} is not a write tool")
    with ctx.store.transaction() as s:
        plan = _PLANNERS[tool](s, cid, action["arguments"], lock=True)
        if plan.summary != action["summary"]:
            raise PolicyError(
                "The order changed since this was proposed, so nothing was done. It would now be: "
                f"{plan.summary} Please ask again if you still want it."
            )
        return plan.apply(s)


def discard_pending_action(ctx: ShopContext) -> dict[str, Any] | None:
    """Forget the proposed write (the customer did not confirm); returns what was discarded."""
    action, ctx.pending_action, ctx.confirmed = ctx.pending_action, None, False
    return action


# ---------------------------------------------------------------- tools


def list_my_orders(ctx: ShopContext) -> OrderList:
    """List the signed-in customer's orders, most recent first, with status and total."""
    cid = ctx.require_customer()
    with ctx.store.read() as s:
        orders = list(s.scalars(_order_query(cid).order_by(Order.created_at.desc(), Order.id)).unique())
        rows = [
            OrderSummary(order_id=o.id, status=o.status, created_at=o.created_at, total=float(_order_total(o)),
                         item_count=_unit_count(o))
            for o in orders[:MAX_LISTED_ORDERS]
        ]
    return OrderList(orders=rows, total_orders=len(orders))


def get_order_details(ctx: ShopContext, order_id: str) -> OrderDetails:
    """Get the status, items, amounts, shipments and payments of one of the customer's orders.

    Args:
        order_id: The order id, e.g. "#W2611340".
    """
    cid = ctx.require_customer()
    with ctx.store.read() as s:
        o = _find_order(s, cid, order_id)
        pms = _payment_methods(s, {p.payment_method_id for p in o.payments if p.payment_method_id})
        d = o.details or {}
        notes = []
        if d.get("cancel_reason"):
            notes.append(f"cancelled because: {d['cancel_reason']}")
        if d.get("items_modified"):
            notes.append("items were modified (this can be done only once)")
        if d.get("return_items"):
            notes.append(f"return requested for items {', '.join(d['return_items'])}, refund to "
                         f"{d.get('return_payment_method_id')}")
        if d.get("exchange_items"):
            notes.append(f"exchange requested: {', '.join(d['exchange_items'])} -> "
                         f"{', '.join(d.get('exchange_new_items') or [])}")
        return OrderDetails(
            order_id=o.id, status=o.status, created_at=o.created_at, updated_at=o.updated_at,
            items=[
                ItemLine(item_id=li.variant_id or "", product_id=li.product_id, name=li.name or "item",
                         options=li.options or {}, quantity=li.quantity or 1, unit_price=float(_money(li.unit_price)))
                for li in o.items
            ],
            total=float(_order_total(o)),
            shipping_address=_address_text(o.address),
            shipments=[
                ShipmentInfo(tracking_ids=[t for t in f.tracking_id.split(",") if t], carrier=f.carrier,
                             item_ids=[str(i) for i in (f.variant_ids or [])], shipped_at=f.shipped_at)
                for f in o.fulfillments
            ],
            payments=[
                PaymentLine(kind=p.kind, amount=float(_money(p.amount)), payment_method_id=p.payment_method_id,
                            method=_pm_label(pms.get(p.payment_method_id), p.payment_method_id))
                for p in o.payments
            ],
            notes=notes,
        )


def cancel_pending_order(
    ctx: ShopContext, order_id: str, reason: Literal["no longer needed", "ordered by mistake"]
) -> ConfirmationRequired:
    """Propose cancelling a pending order; it is cancelled only after the customer confirms.

    Args:
        order_id: The order id, e.g. "#W2611340".
        reason: Why: "no longer needed" or "ordered by mistake".
    """
    return _propose(ctx, "cancel_pending_order", {"order_id": order_id, "reason": reason})


def modify_pending_order_address(
    ctx: ShopContext, order_id: str, address1: str, address2: str, city: str, state: str, country: str, zip: str
) -> ConfirmationRequired:
    """Propose a new shipping address for a pending order; changed only after the customer confirms.

    Args:
        order_id: The order id, e.g. "#W2611340".
        address1: Street and number.
        address2: Apartment or suite ("" if none).
        city: City.
        state: State or province.
        country: Country.
        zip: Postal code.
    """
    return _propose(ctx, "modify_pending_order_address", {
        "order_id": order_id, "address1": address1, "address2": address2, "city": city, "state": state,
        "country": country, "zip": zip,
    })


def modify_pending_order_items(
    ctx: ShopContext, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
) -> ConfirmationRequired:
    """Propose changing items of a pending order to other options of the same product (once per order).

    Args:
        order_id: The order id, e.g. "#W2611340".
        item_ids: Item ids in the order to change.
        new_item_ids: The new item id for each, same product, same order.
        payment_method_id: Pays or receives the price difference, e.g. "credit_card_7815826".
    """
    return _propose(ctx, "modify_pending_order_items", {
        "order_id": order_id, "item_ids": item_ids, "new_item_ids": new_item_ids,
        "payment_method_id": payment_method_id,
    })


def return_delivered_order_items(
    ctx: ShopContext, order_id: str, item_ids: list[str], payment_method_id: str
) -> ConfirmationRequired:
    """Propose returning items of a delivered order; the refund goes to the original payment method or a gift card.

    Args:
        order_id: The order id, e.g. "#W2611340".
        item_ids: Item ids in the order to return.
        payment_method_id: Receives the refund: the original payment method or a gift card.
    """
    return _propose(ctx, "return_delivered_order_items", {
        "order_id": order_id, "item_ids": item_ids, "payment_method_id": payment_method_id,
    })


def exchange_delivered_order_items(
    ctx: ShopContext, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
) -> ConfirmationRequired:
    """Propose exchanging items of a delivered order for other options of the same product (once per order).

    Args:
        order_id: The order id, e.g. "#W2611340".
        item_ids: Item ids in the order to exchange.
        new_item_ids: The new item id for each, same product, same order.
        payment_method_id: Pays or receives the price difference.
    """
    return _propose(ctx, "exchange_delivered_order_items", {
        "order_id": order_id, "item_ids": item_ids, "new_item_ids": new_item_ids,
        "payment_method_id": payment_method_id,
    })


# ---------------------------------------------------------------- rendering and facts


def render_order_list(r: OrderList) -> str:
    if not r.orders:
        return "You have no orders."
    lines = [f"You have {r.total_orders} order(s):"]
    lines += [
        f"- {o.order_id}: {o.status}, {o.item_count} item(s), {_usd(o.total)}, placed {o.created_at.date()}"
        for o in r.orders
    ]
    if r.total_orders > len(r.orders):
        lines.append(f"(showing the {len(r.orders)} most recent)")
    return "\n".join(lines)


def render_order_details(r: OrderDetails) -> str:
    lines = [f"Order {r.order_id} is {r.status} (placed {r.created_at.date()}, total {_usd(r.total)})."]
    lines.append("Items:")
    for it in r.items:
        qty = f"{it.quantity} x " if it.quantity > 1 else ""
        opts = f" ({_options_text(it.options)})" if it.options else ""
        lines.append(f"- {qty}{it.name}{opts}, item id {it.item_id}, {_usd(it.unit_price)}")
    for sh in r.shipments:
        carrier = f" via {sh.carrier}" if sh.carrier else ""
        lines.append(f"Tracking {', '.join(sh.tracking_ids)}{carrier}.")
    if r.status in ("pending", "processed"):
        lines.append(f"Ships to: {r.shipping_address}.")
    for p in r.payments:
        lines.append(f"{p.kind.capitalize()} of {_usd(p.amount)} via {p.method}.")
    lines += [f"Note: {n}." for n in r.notes]
    return "\n".join(lines)


def render_confirmation(r: ConfirmationRequired) -> str:
    return r.summary


def render_action_result(r: ActionResult) -> str:
    return f"Done. {r.message} Order {r.order_id} is now {r.status}."


_RENDERERS: dict[type, Callable[[Any], str]] = {
    OrderList: render_order_list,
    OrderDetails: render_order_details,
    ConfirmationRequired: render_confirmation,
    ActionResult: render_action_result,
}


def render_result(result: BaseModel) -> str:
    """The faithful plain-text answer for a result of the order, catalog or handoff tools."""
    from tools.catalog import ProductDetails, render_product_details
    from tools.handoff import HandoffResult, render_handoff

    renderers = {**_RENDERERS, ProductDetails: render_product_details, HandoffResult: render_handoff}
    fn = renderers.get(type(result))
    if fn is None:
        raise TypeError(f"no renderer for {type(result).__name__}")
    return fn(result)


def _empty_facts() -> dict[str, Any]:
    return {"order_ids": [], "statuses": {}, "amounts": [], "tracking_ids": [], "item_ids": [], "product_ids": [],
            "dates": []}


def result_facts(result: BaseModel) -> dict[str, Any]:
    """Facts an answer about `result` must not contradict (see the module docstring for the keys)."""
    f = _empty_facts()
    if isinstance(result, OrderList):
        for o in result.orders:
            f["order_ids"].append(o.order_id)
            f["statuses"][o.order_id] = o.status
            f["amounts"].append(o.total)
            f["dates"].append(o.created_at.date().isoformat())
    elif isinstance(result, OrderDetails):
        f["order_ids"].append(result.order_id)
        f["statuses"][result.order_id] = result.status
        f["amounts"] += [result.total] + [it.unit_price for it in result.items] + [p.amount for p in result.payments]
        f["tracking_ids"] += [t for sh in result.shipments for t in sh.tracking_ids]
        f["item_ids"] += [it.item_id for it in result.items]
        f["product_ids"] += [it.product_id for it in result.items if it.product_id]
        f["dates"] += [result.created_at.date().isoformat(), result.updated_at.date().isoformat()]
    elif isinstance(result, ConfirmationRequired):
        args = result.action.get("arguments", {})
        if args.get("order_id"):
            f["order_ids"].append(args["order_id"])
        f["item_ids"] += list(args.get("item_ids") or []) + list(args.get("new_item_ids") or [])
        f["amounts"] += _amounts_in(result.summary)
    elif isinstance(result, ActionResult):
        f["order_ids"].append(result.order_id)
        f["statuses"][result.order_id] = result.status
        f["amounts"] += [a for a in (result.refund_amount, result.charge_amount) if a]
        f["amounts"] += [a for a in _amounts_in(result.message) if a not in f["amounts"]]
    else:
        from tools.catalog import ProductDetails

        if isinstance(result, ProductDetails):
            f["product_ids"].append(result.product_id)
            f["item_ids"] += [v.item_id for v in result.variants]
            f["amounts"] += sorted({v.price for v in result.variants})
    f["amounts"] = [round(float(a), 2) for a in f["amounts"]]
    return f


def _amounts_in(text: str) -> list[float]:
    import re

    return [float(m) for m in re.findall(r"\$(\d+(?:\.\d{1,2})?)", text)]
