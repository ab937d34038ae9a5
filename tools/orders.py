"""The signed-in customer's order tools: look up, cancel, modify, return and exchange, under the shop's policy.

Identity: every tool acts for `ctx.require_customer()`; no tool takes a customer id. An order of another customer is
reported exactly like a missing one (NotFoundError "no order X on your account"), so nothing leaks.

Order ids: "#W2611340", "W2611340" and "2611340" (and "#S0001234"-style sample ids) all find the same order; digits
alone must match exactly one of the customer's orders.

Writes (cancel_pending_order, modify_pending_order_address, modify_pending_order_items,
return_delivered_order_items, exchange_delivered_order_items) follow a confirmation protocol:
1. the tool validates the request against the policy (tools/policy.py) and does NOT write; it stores the exact action
   as `ctx.pending_action = PendingAction(tool, arguments, summary)` (arguments normalised, summary the English
   description of the proposal) and returns a `ConfirmationRequired` describing it;
2. when the customer confirms, the agent calls `execute_pending_action(ctx)`, which re-checks the policy against the
   current store state inside one transaction and, only if the action is still exactly the one confirmed (same
   summary: same items, amounts, payment method), performs it and returns an `ActionResult`; otherwise it raises
   PolicyError and writes nothing. The pending action is cleared either way;
3. anything else: `discard_pending_action(ctx)`.
Money moves at once for cancellations (refund rows) and items modifications (payment or refund row for the price
difference); returns and exchanges are *requests* (status "return requested"/"exchange requested", details recorded
on the order), and their money moves when the items come back, as in tau2.

Every result renders itself (`render(lang)`, English or Chinese) and lists its facts (`facts()`), following
tools/results.py: an order's facts are bound to "order:<id>", an item's to "item:<item id>".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from store.models import Order, OrderItem, Payment, PaymentMethod, Variant
from tools import policy
from tools.catalog import clean_text
from tools.context import PendingAction, ShopContext
from tools.errors import NotFoundError, PolicyError, ToolInputError
from tools.results import Fact, Lang, customer_view, fact, in_customer_view, iso, reason_text, status_text, tr, usd

WRITE_TOOLS = (
    "cancel_pending_order",
    "modify_pending_order_address",
    "modify_pending_order_items",
    "return_delivered_order_items",
    "exchange_delivered_order_items",
)
# The policy action (tools.policy.ACTION_STATUSES) each write tool takes: the statuses an order needs for it.
WRITE_ACTIONS = {
    "cancel_pending_order": "cancel",
    "modify_pending_order_address": "modify",
    "modify_pending_order_items": "modify",
    "return_delivered_order_items": "return",
    "exchange_delivered_order_items": "exchange",
}
MAX_LISTED_ORDERS = 20
CENT = Decimal("0.01")
CONFIRM_QUESTION = {"en": "Shall I go ahead? (yes/no)", "zh": "要我继续办理吗?(是/否)"}


def _about(order_id: str) -> str:
    return f"order:{order_id}"


def _item_about(item_id: str) -> str:
    return f"item:{item_id}"


def _options_text(options: dict[str, Any] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in (options or {}).items())


# ---------------------------------------------------------------- results


class PayMethod(BaseModel):
    """A payment method as the customer knows it."""

    id: str | None = None
    kind: str | None = Field(None, description="credit_card, gift_card, paypal, ...; None if not in the store")
    brand: str | None = None
    last_four: str | None = None

    def label(self, lang: Lang = "en") -> str:
        """How the method is named: with its id for the model and staff, as the customer knows it in a customer's
        view (tools.results.customer_view): "PayPal", "Visa credit card ending 4920", "gift card".
        """
        if in_customer_view():
            return self._known_as(lang)
        pid = self.id
        if self.kind is None:
            if pid:
                return tr(lang, f"payment method {pid}", f"支付方式 {pid}")
            return tr(lang, "the original payment method", "原支付方式")
        if self.kind == "credit_card":
            if self.last_four:
                brand = f"{self.brand} " if self.brand else ""
                return tr(lang, f"{brand}credit card ending {self.last_four} ({pid})",
                          f"{brand}信用卡(尾号 {self.last_four},{pid})")
            return tr(lang, f"credit card {pid}", f"信用卡 {pid}")
        if self.kind == "gift_card":
            return tr(lang, f"gift card {pid}", f"礼品卡 {pid}")
        if self.kind == "paypal":
            return f"PayPal {pid}"
        return f"{self.kind} {pid}"

    def _known_as(self, lang: Lang) -> str:
        if self.kind == "credit_card":
            brand = f"{self.brand} " if self.brand else ""
            if self.last_four:
                return tr(lang, f"{brand}credit card ending {self.last_four}", f"{brand}信用卡(尾号 {self.last_four})")
            return tr(lang, f"{brand}credit card", f"{brand}信用卡")
        if self.kind == "gift_card":
            return tr(lang, "gift card", "礼品卡")
        if self.kind == "paypal":
            return "PayPal"
        if self.kind:
            return self.kind.replace("_", " ")
        return tr(lang, "the payment method on file", "您账户中的支付方式") if self.id else \
            tr(lang, "the original payment method", "原支付方式")

    def facts(self, about: str) -> list[Fact]:
        if in_customer_view():  # the id is not shown; a card's last four digits are
            return [fact("payment_method", self.last_four, about)] if self.last_four else []
        return [fact("payment_method", self.id, about)] if self.id else []


RefundTiming = Literal["at_once", "business_days", "when_returned"]


class MoneyMove(BaseModel):
    """Money going back to the customer (refund) or taken from them (charge)."""

    kind: Literal["refund", "charge"]
    amount: float = Field(ge=0, description="USD")
    method: PayMethod
    timing: RefundTiming | None = None

    def text(self, lang: Lang = "en") -> str:
        """"$12.00 to gift card gift_card_1, at once" (the amount, where it goes, and when)."""
        amount, to = usd(self.amount), self.method.label(lang)
        if self.kind == "charge":
            return tr(lang, f"{amount} charged to {to}", f"{amount},从 {to} 扣款")
        en, zh = {
            "at_once": ("at once", "立即到账"),
            "business_days": (f"within {policy.POLICY.card_refund_days}", f"{policy.POLICY.card_refund_days_zh}内到账"),
            "when_returned": ("once the items are back", "收到退回的商品后退款"),
        }.get(self.timing, ("", ""))
        return tr(lang, f"{amount} to {to}" + (f", {en}" if en else ""),
                  f"{amount},退到 {to}" + (f",{zh}" if zh else ""))

    def line(self, order_id: str, lang: Lang = "en") -> str:
        if self.kind == "charge":
            return tr(lang, f"Charge for {order_id}: {self.text(lang)}.", f"订单 {order_id} 的扣款:{self.text(lang)}。")
        return tr(lang, f"Refund for {order_id}: {self.text(lang)}.", f"订单 {order_id} 的退款:{self.text(lang)}。")

    def facts(self, about: str) -> list[Fact]:
        return [fact("amount", usd(self.amount), about), *self.method.facts(about)]


class ItemLine(BaseModel):
    item_id: str = Field(description="variant id of the item (use it in item_ids)")
    product_id: str | None = None
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    quantity: int = Field(ge=1)
    unit_price: float = Field(description="USD paid per unit")

    def line(self, lang: Lang = "en") -> str:
        opts = _options_text(self.options)
        product = tr(lang, f", product id {self.product_id}", f",商品 ID {self.product_id}") if self.product_id else ""
        if lang == "zh":
            return (f"- {self.name}" + (f"({opts})" if opts else "") + f":数量 {self.quantity},单价 "
                    f"{usd(self.unit_price)},商品编号 {self.item_id}{product}")
        return (f"- {self.name}" + (f" ({opts})" if opts else "") + f": quantity {self.quantity}, "
                f"{usd(self.unit_price)} each, item id {self.item_id}{product}")

    def facts(self) -> list[Fact]:
        about = _item_about(self.item_id)
        out = [fact("item_id", self.item_id, about), fact("product_name", self.name, about),
               fact("quantity", self.quantity, about), fact("price", usd(self.unit_price), about)]
        if self.options:
            out.append(fact("text", _options_text(self.options), about))
        if self.product_id:
            out.append(fact("product_id", self.product_id, about))
        return out


class ShipmentInfo(BaseModel):
    tracking_ids: list[str]
    carrier: str | None = None
    item_ids: list[str] = Field(default_factory=list)
    shipped_at: datetime | None = None


class PaymentLine(BaseModel):
    kind: str = Field(description="payment or refund")
    amount: float = Field(description="USD")
    payment_method_id: str | None = None
    method: PayMethod


class OrderSummary(BaseModel):
    order_id: str
    status: str
    created_at: datetime
    total: float = Field(description="USD")
    item_count: int

    def line(self, lang: Lang = "en") -> str:
        """One line, the order id first, holding this order's own date, status, item count and total."""
        return tr(
            lang,
            f"{self.order_id}: placed {iso(self.created_at)}, {status_text(self.status, lang)}, "
            f"{self.item_count} item(s), total {usd(self.total)}",
            f"{self.order_id}:下单日期 {iso(self.created_at)},状态 {status_text(self.status, lang)},"
            f"{self.item_count} 件商品,合计 {usd(self.total)}",
        )

    def render(self, lang: Lang = "en") -> str:
        return self.line(lang)

    def facts(self) -> list[Fact]:
        about = _about(self.order_id)
        return [fact("order_id", self.order_id, about), fact("date", iso(self.created_at), about),
                fact("status", self.status, about), fact("count", self.item_count, about),
                fact("amount", usd(self.total), about)]


def _change_words(tool: str) -> tuple[str, str, str, str]:
    """How `tool`'s change and the statuses that allow it read: ("cancelled", "取消", "pending", "待处理(pending)")."""
    action = WRITE_ACTIONS[tool]
    allowed = policy.ACTION_STATUSES[action]
    return (policy.ACTION_WORDS[action], policy.ACTION_WORDS_ZH[action], " or ".join(allowed),
            "或".join(status_text(st, "zh") for st in allowed))


# Orders still on their way: where one is and where it goes are still open questions (OrderList.picked).
OPEN_STATUSES = ("pending", "processed")


class OrderList(BaseModel):
    # The parts of the list a question can ask for alone (agent.focus): "latest" is the most recent order only (of
    # the status named with it: "delivered", ...); "one" with "tracking" or "address" ("Where is my order?") the
    # orders still on their way; a write tool's name (agent.graph: a change asked of no order named) the orders
    # whose status allows that change.
    PARTS: ClassVar[frozenset[str]] = frozenset({"latest", "one", *WRITE_TOOLS})
    STATUSES: ClassVar[frozenset[str]] = frozenset({"pending", "processed", "delivered", "cancelled"})

    orders: list[OrderSummary] = Field(description="most recent first")
    total_orders: int = Field(description="all orders on the account (the list shows at most 20)")

    def picked(self, parts: frozenset[str] | None) -> list[OrderSummary] | None:
        """The orders a question singles out of the list, most recent first; None when it singles out none.
        "latest" is the most recent order (of the status named with it), or none when no listed order has that
        status; "one" asking where an order is or goes is the orders not delivered yet, else the most recent one.
        """
        parts = parts or frozenset()
        if "latest" in parts:
            wanted = parts & self.STATUSES
            return [o for o in self.orders if not wanted or o.status in wanted][:1]
        if "one" in parts and parts & {"tracking", "address"}:
            return [o for o in self.orders if o.status in OPEN_STATUSES] or self.orders[:1]
        return None

    def _picked_header(self, parts: frozenset[str], picked: list[OrderSummary], lang: Lang) -> str:
        n, shown = self.total_orders, len(self.orders)
        status = next(iter(sorted(parts & self.STATUSES)), None)
        if "latest" in parts and status is None:
            return tr(lang, f"Your most recent order (of {n}):", f"您最近的一个订单(共 {n} 个):")
        if "latest" in parts and picked:
            return tr(lang, f"Your most recent {status} order (of {n}):",
                      f"您最近一个{status_text(status, lang)}的订单(共 {n} 个):")
        if "latest" in parts and n == shown:
            return tr(lang, f"None of your {n} order(s) is {status}.",
                      f"您的 {n} 个订单中没有{status_text(status, lang)}的订单。")
        if "latest" in parts:
            return tr(lang, f"None of your {shown} most recent orders is {status}.",
                      f"您最近的 {shown} 个订单中没有{status_text(status, lang)}的订单。")
        if picked[0].status in OPEN_STATUSES:
            return tr(lang, f"Of {self._scope('en')}, {len(picked)} not delivered yet:",
                      f"{self._scope('zh')}中,尚未送达的有 {len(picked)} 个:")
        return tr(lang, f"None of {self._scope('en')} is on its way; the most recent:",
                  f"{self._scope('zh')}都不在运送途中;最近的一个:")

    def _scope(self, lang: Lang) -> str:
        """The orders a count of the list is of: all of them, or the most recent ones it shows (counting the shown
        orders as all of them said "Of your 42 orders, 18 can be returned" when 39 can).
        """
        n, shown = self.total_orders, len(self.orders)
        if n == shown:
            return tr(lang, f"your {n} order(s)", f"您的 {n} 个订单")
        return tr(lang, f"your {shown} most recent orders (of {n})", f"您最近的 {shown} 个订单(共 {n} 个)")

    def can(self, tool: str) -> list[OrderSummary]:
        """The listed orders whose status allows `tool`'s change (the tool checks the rest of the policy when one is
        chosen).
        """
        allowed = policy.ACTION_STATUSES[WRITE_ACTIONS[tool]]
        return [o for o in self.orders if o.status in allowed]

    def none_can(self, tool: str, lang: Lang = "en") -> str:
        """That no listed order's status allows `tool`'s change, and which statuses would."""
        word, word_zh, need, need_zh = _change_words(tool)
        n, shown = self.total_orders, len(self.orders)
        if n == shown:
            return tr(lang, f"None of your orders can be {word}: only {need} orders can be.",
                      f"您没有可以{word_zh}的订单:只有{need_zh}的订单才能{word_zh}。")
        return tr(lang, f"None of your {shown} most recent orders can be {word}: only {need} orders can be. "
                        "If you mean an older order, tell me its number.",
                  f"您最近的 {shown} 个订单都不能{word_zh}:只有{need_zh}的订单才能{word_zh}。"
                  "如果是更早的订单,请告诉我订单号。")

    def _can_list(self, tool: str, lang: Lang) -> str | None:
        """The orders that can take `tool`'s change, when some but not all of those listed can; else None."""
        can = self.can(tool)
        if not can or len(can) == len(self.orders):
            return None
        word, word_zh, need, need_zh = _change_words(tool)
        header = tr(lang, f"Of {self._scope('en')}, {len(can)} can be {word} ({need}):",
                    f"{self._scope('zh')}中,可以{word_zh}的有 {len(can)} 个({need_zh}):")
        return "\n".join([header, *(o.line(lang) for o in can)])

    def render(self, lang: Lang = "en", parts: frozenset[str] | None = None) -> str:
        if not self.orders:
            return tr(lang, "You have no orders.", "您还没有订单。")
        picked = self.picked(parts)
        change = sorted((parts or frozenset()) & set(WRITE_TOOLS))
        if picked is None and len(change) == 1 and (narrowed := self._can_list(change[0], lang)):
            return narrowed  # "I want to cancel an order": the orders that can be, not all 42
        if picked is not None and parts and "detailed" in parts and len(picked) == 1:
            return self._picked_header(parts, picked, lang)  # the order's details follow (agent.graph)
        if picked is not None:
            return "\n".join([self._picked_header(parts or frozenset(), picked, lang), *(o.line(lang) for o in picked)])
        lines = [tr(lang, f"You have {self.total_orders} order(s):", f"您共有 {self.total_orders} 个订单:")]
        lines += [o.line(lang) for o in self.orders]
        if self.total_orders > len(self.orders):
            shown = len(self.orders)
            lines.append(tr(lang, f"(showing the {shown} most recent)", f"(仅显示最近的 {shown} 个)"))
        return "\n".join(lines)

    def facts(self) -> list[Fact]:
        return [fact("count", self.total_orders)] + [f for o in self.orders for f in o.facts()]


class OrderDetails(BaseModel):
    # The parts a question can ask for alone (agent.focus). The first line (status, dates, total) and the notes are
    # always said; without parts, everything is.
    PARTS: ClassVar[frozenset[str]] = frozenset({"items", "tracking", "address", "payment"})

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
    cancel_reason: str | None = None
    items_modified: bool = Field(False, description="items were modified (this can be done only once)")
    return_items: list[str] = Field(default_factory=list, description="item ids of a requested return")
    return_method: PayMethod | None = Field(None, description="the return's refund method")
    exchange_items: list[str] = Field(default_factory=list, description="item ids of a requested exchange")
    exchange_new_items: list[str] = Field(default_factory=list)

    def render(self, lang: Lang = "en", parts: frozenset[str] | None = None) -> str:
        """The whole order, or with `parts` (of PARTS) its first line, those parts and the notes."""
        oid = self.order_id
        shown = self.PARTS if not parts else self.PARTS & parts or self.PARTS
        lines = [tr(
            lang,
            f"Order {oid}: status {status_text(self.status, lang)}, placed {iso(self.created_at)}, last updated "
            f"{iso(self.updated_at)}, total {usd(self.total)}.",
            f"订单 {oid}:状态 {status_text(self.status, lang)},下单日期 {iso(self.created_at)},最后更新 "
            f"{iso(self.updated_at)},合计 {usd(self.total)}。",
        )]
        if "items" in shown:
            lines.append(tr(lang, f"Items in {oid}:", f"订单 {oid} 的商品:"))
            lines += [it.line(lang) for it in self.items]
            lines.append("")  # ends the item list: in markdown the lines below would join its last bullet
        if "tracking" in shown and not self.shipments and shown != self.PARTS:
            lines.append(tr(lang, f"{oid} has no shipment yet, so there is no tracking number.",
                            f"订单 {oid} 还没有发货记录,所以没有快递单号。"))
        for sh in self.shipments if "tracking" in shown else ():
            tracking = ", ".join(sh.tracking_ids) or tr(lang, "none yet", "暂无")
            carrier = tr(lang, f" via {sh.carrier}", f",承运商 {sh.carrier}") if sh.carrier else ""
            shipped = "" if sh.shipped_at is None else tr(lang, f", shipped {iso(sh.shipped_at)}",
                                                          f",发货日期 {iso(sh.shipped_at)}")
            lines.append(tr(lang, f"Tracking number for {oid}: {tracking}{carrier}{shipped}.",
                            f"订单 {oid} 的快递单号:{tracking}{carrier}{shipped}。"))
        if "address" in shown:
            lines.append(tr(lang, f"Shipping address of {oid}: {self.shipping_address}.",
                            f"订单 {oid} 的收货地址:{self.shipping_address}。"))
        for p in self.payments if "payment" in shown else ():
            if p.kind == "refund":
                lines.append(tr(lang, f"Refund for {oid}: {usd(p.amount)} to {p.method.label(lang)}.",
                                f"订单 {oid} 的退款:{usd(p.amount)},退到 {p.method.label(lang)}。"))
            else:
                lines.append(tr(lang, f"Payment for {oid}: {usd(p.amount)} with {p.method.label(lang)}.",
                                f"订单 {oid} 的付款:{usd(p.amount)},使用 {p.method.label(lang)}。"))
        lines += self._notes(lang)
        return "\n".join(lines)

    def _notes(self, lang: Lang) -> list[str]:
        oid, notes = self.order_id, []
        if self.cancel_reason:
            notes.append(tr(lang, f"Note on {oid}: cancelled because '{self.cancel_reason}'.",
                            f"订单 {oid} 备注:取消原因为“{reason_text(self.cancel_reason, lang)}”。"))
        if self.items_modified:
            notes.append(tr(lang, f"Note on {oid}: the items were modified (this can be done only once).",
                            f"订单 {oid} 备注:商品已修改过(每个订单只能修改一次)。"))
        if self.return_items:
            items = ", ".join(self.return_items)
            to = self.return_method.label(lang) if self.return_method else ""
            notes.append(tr(lang, f"Note on {oid}: return requested for items {items}, refund to {to}.",
                            f"订单 {oid} 备注:已申请退货,商品 {items},退款到 {to}。"))
        if self.exchange_items:
            old, new = ", ".join(self.exchange_items), ", ".join(self.exchange_new_items)
            notes.append(tr(lang, f"Note on {oid}: exchange requested: {old} -> {new}.",
                            f"订单 {oid} 备注:已申请换货:{old} -> {new}。"))
        return notes

    def facts(self) -> list[Fact]:
        about = _about(self.order_id)
        out = [fact("order_id", self.order_id, about), fact("status", self.status, about),
               fact("date", iso(self.created_at), about), fact("date", iso(self.updated_at), about),
               fact("amount", usd(self.total), about), fact("address", self.shipping_address, about)]
        for it in self.items:
            out += it.facts()
        for sh in self.shipments:
            out += [fact("tracking_id", t, about) for t in sh.tracking_ids]
            if sh.carrier:
                out.append(fact("carrier", sh.carrier, about))
            if sh.shipped_at:
                out.append(fact("date", iso(sh.shipped_at), about))
        for p in self.payments:
            out += [fact("amount", usd(p.amount), about), *p.method.facts(about)]
        if self.cancel_reason:
            out.append(fact("text", self.cancel_reason, about))
        out += [fact("item_id", i, about) for i in self.return_items + self.exchange_items + self.exchange_new_items]
        if self.return_items and self.return_method:
            out += self.return_method.facts(about)
        return out


class ItemChange(BaseModel):
    """An item a write touches: returned (no new item), or changed to another option of the same product."""

    item_id: str
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    unit_price: float = Field(description="USD")
    new_item_id: str | None = None
    new_options: dict[str, Any] = Field(default_factory=dict)
    new_price: float | None = Field(None, description="USD")

    def line(self, lang: Lang = "en") -> str:
        def one(item_id: str, options: dict[str, Any], price: float | None) -> str:
            opts = _options_text(options)
            return tr(lang, f"item {item_id} ({opts + ', ' if opts else ''}{usd(price)})",
                      f"款式 {item_id}({opts + ',' if opts else ''}{usd(price)})")

        old = f"- {self.name}: {one(self.item_id, self.options, self.unit_price)}"
        if self.new_item_id is None:
            return old
        return f"{old} -> {one(self.new_item_id, self.new_options, self.new_price)}"

    def facts(self) -> list[Fact]:
        about = _item_about(self.item_id)
        out = [fact("item_id", self.item_id, about), fact("product_name", self.name, about),
               fact("price", usd(self.unit_price), about)]
        if self.new_item_id is not None:
            new = _item_about(self.new_item_id)
            out += [fact("item_id", self.new_item_id, new), fact("price", usd(self.new_price), new)]
        return out


def _difference_text(diff: float, pm: PayMethod, lang: Lang) -> str:
    if diff > 0:
        return tr(lang, f"you pay the price difference of {usd(diff)} with {pm.label(lang)}",
                  f"您需用 {pm.label(lang)} 支付差价 {usd(diff)}")
    if diff < 0:
        return tr(lang, f"you get the price difference of {usd(-diff)} back to {pm.label(lang)}",
                  f"差价 {usd(-diff)} 将退回到 {pm.label(lang)}")
    return tr(lang, f"there is no price difference (payment method {pm.label(lang)})",
              f"没有差价(支付方式:{pm.label(lang)})")


def _difference_facts(diff: float | None, pm: PayMethod | None, about: str) -> list[Fact]:
    out = [fact("amount", usd(abs(diff)), about)] if diff else []
    return out + (pm.facts(about) if pm is not None else [])


class ConfirmationRequired(BaseModel):
    """A write that waits for the customer's explicit yes; nothing has changed yet."""

    tool: str
    order_id: str
    order_status: str = Field(description="the order's status now")
    action: dict[str, Any] = Field(description='{"tool": name, "arguments": {...}}: exactly what will run')
    summary: str = Field("", description="the English description and question (the pending action's summary)")
    reason: str | None = Field(None, description="cancellation reason")
    item_count: int | None = Field(None, description="units in the order (cancellation)")
    order_total: float | None = Field(None, description="USD (cancellation)")
    old_address: str | None = None
    new_address: str | None = None
    items: list[ItemChange] = Field(default_factory=list)
    refunds: list[MoneyMove] = Field(default_factory=list)
    difference: float | None = Field(None, description="USD the customer pays (>0) or gets back (<0)")
    payment_method: PayMethod | None = None

    def describe(self, lang: Lang = "en") -> str:
        """What will happen, without the question: the text the customer confirms (English: the pending summary)."""
        oid, status = self.order_id, status_text(self.order_status, lang)
        lines: list[str] = []
        if self.tool == "cancel_pending_order":
            lines.append(tr(
                lang,
                f"Cancel order {oid}: status {status}, {self.item_count} items, total {usd(self.order_total)}, reason "
                f"'{self.reason}'.",
                f"取消订单 {oid}:状态 {status},{self.item_count} 件商品,合计 {usd(self.order_total)},"
                f"原因“{reason_text(self.reason or '', lang)}”。",
            ))
            lines += [r.line(oid, lang) for r in self.refunds]
            if not self.refunds:
                lines.append(tr(lang, f"Refund for {oid}: nothing to refund.", f"订单 {oid} 的退款:无需退款。"))
        elif self.tool == "modify_pending_order_address":
            lines.append(tr(
                lang,
                f"Change the shipping address of order {oid}, status {status}, from '{self.old_address}' to "
                f"'{self.new_address}'.",
                f"修改订单 {oid} 的收货地址,当前状态 {status}:从“{self.old_address}”改为“{self.new_address}”。",
            ))
        elif self.tool in ("modify_pending_order_items", "exchange_delivered_order_items"):
            modify = self.tool == "modify_pending_order_items"
            lines.append(tr(lang,
                            f"{'Modify the items' if modify else 'Exchange items'} of order {oid}, status {status}:",
                            f"{'修改商品' if modify else '换货'}:订单 {oid},状态 {status}:"))
            lines += [c.line(lang) for c in self.items]
            diff = _difference_text(self.difference or 0.0, self.payment_method or PayMethod(), lang)
            lines.append(tr(lang, f"Price difference for {oid}: {diff}.", f"订单 {oid} 的差价:{diff}。"))
            if modify:
                lines.append(tr(lang, "Items of an order can be modified only once, and the order can then no longer "
                                      "be cancelled.", "每个订单的商品只能修改一次,修改后订单不能再取消。"))
            else:
                lines.append(tr(lang, "An order can be exchanged only once. The order becomes 'exchange requested' "
                                      "and you will get an email on how to send the items back.",
                                "每个订单只能换货一次。订单将变为“换货申请中”(exchange requested),"
                                "您会收到一封说明如何寄回商品的邮件。"))
        elif self.tool == "return_delivered_order_items":
            lines.append(tr(lang, f"Return {len(self.items)} item(s) of order {oid}, status {status}:",
                            f"退货:订单 {oid},状态 {status},共 {len(self.items)} 件商品:"))
            lines += [c.line(lang) for c in self.items]
            lines += [r.line(oid, lang) for r in self.refunds]
            lines.append(tr(lang, "The order becomes 'return requested' and you will get an email on how to send the "
                                  "items back.",
                            "订单将变为“退货申请中”(return requested),您会收到一封说明如何寄回商品的邮件。"))
        return "\n".join(lines)

    def render(self, lang: Lang = "en") -> str:
        return f"{self.describe(lang)}\n{CONFIRM_QUESTION[lang]}"

    def facts(self) -> list[Fact]:
        about = _about(self.order_id)
        out = [fact("order_id", self.order_id, about), fact("status", self.order_status, about)]
        if self.item_count is not None:
            out.append(fact("count", self.item_count, about))
        if self.order_total is not None:
            out.append(fact("amount", usd(self.order_total), about))
        if self.reason:
            out.append(fact("text", self.reason, about))
        out += [fact("address", a, about) for a in (self.old_address, self.new_address) if a]
        for c in self.items:
            out += c.facts()
        for r in self.refunds:
            out += r.facts(about)
        if self.tool in ("modify_pending_order_items", "exchange_delivered_order_items"):
            out += _difference_facts(self.difference, self.payment_method, about)
        return out


class ActionResult(BaseModel):
    """What a confirmed write did."""

    tool: str
    order_id: str
    status: str = Field(description="order status after the change")
    refund_amount: float = Field(0.0, description="USD refunded (or to be refunded once items are back)")
    charge_amount: float = Field(0.0, description="USD charged")
    payment_method_id: str | None = None
    refunds: list[MoneyMove] = Field(default_factory=list, description="refunds made or due")
    items: list[ItemChange] = Field(default_factory=list, description="items returned or changed")
    new_address: str | None = None
    difference: float | None = Field(None, description="USD the customer pays (>0) or gets back (<0)")
    payment_method: PayMethod | None = None

    def render(self, lang: Lang = "en") -> str:
        oid, status = self.order_id, status_text(self.status, lang)
        lines: list[str] = []
        if self.tool == "cancel_pending_order":
            lines.append(tr(lang, f"Done: order {oid} is now {status}.", f"已完成:订单 {oid} 现在的状态是{status}。"))
        elif self.tool == "modify_pending_order_address":
            lines.append(tr(lang, f"Done: order {oid} will ship to {self.new_address}; its status is {status}.",
                            f"已完成:订单 {oid} 将寄往 {self.new_address};状态为{status}。"))
        elif self.tool == "modify_pending_order_items":
            lines.append(tr(lang, f"Done: the items of order {oid} are changed; its status is {status}.",
                            f"已完成:订单 {oid} 的商品已修改,状态为{status}。"))
        elif self.tool == "return_delivered_order_items":
            lines.append(tr(lang, f"Done: return requested for order {oid}; its status is now {status}. "
                                  f"An email explains how to send the items back.",
                            f"已完成:订单 {oid} 已申请退货,状态为{status}。邮件会说明如何寄回商品。"))
        elif self.tool == "exchange_delivered_order_items":
            lines.append(tr(lang, f"Done: exchange requested for order {oid}; its status is now {status}. An email "
                                  f"explains how to send the items back.",
                            f"已完成:订单 {oid} 已申请换货,状态为{status}。邮件会说明如何寄回商品。"))
        lines += [c.line(lang) for c in self.items]
        lines += [r.line(oid, lang) for r in self.refunds]
        if self.difference is not None and self.payment_method is not None:
            diff = _difference_text(self.difference, self.payment_method, lang)
            lines.append(tr(lang, f"Price difference for {oid}: {diff}.", f"订单 {oid} 的差价:{diff}。"))
        return "\n".join(lines)

    def facts(self) -> list[Fact]:
        about = _about(self.order_id)
        out = [fact("order_id", self.order_id, about), fact("status", self.status, about)]
        if self.new_address:
            out.append(fact("address", self.new_address, about))
        for c in self.items:
            out += c.facts()
        for r in self.refunds:
            out += r.facts(about)
        if self.difference is not None:
            out += _difference_facts(self.difference, self.payment_method, about)
        return out


# ---------------------------------------------------------------- helpers


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _money(x: Decimal | float | int | None) -> Decimal:
    return Decimal(str(x or 0)).quantize(CENT)


def _pay_method(pm: PaymentMethod | None, pm_id: str | None = None) -> PayMethod:
    if pm is None:
        return PayMethod(id=pm_id)
    return PayMethod(id=pm.id, kind=pm.kind, brand=pm.brand, last_four=pm.last_four)


def _address_text(addr: dict[str, Any] | None) -> str:
    if not addr:
        return "unknown"
    parts = [addr.get(k) for k in ("address1", "address2", "city", "state", "zip", "country")]
    return ", ".join(str(p) for p in parts if p)


_ASK_ORDER = ("Which order do you mean? You can ask me to list your orders.",
              "您指的是哪个订单?您可以让我列出您的订单。")
_ASK_ITEMS = ("Which items do you mean? I can show you the order's items first.",
              "您指的是哪些商品?我可以先为您列出订单中的商品。")
_ASK_PAYMENT = ("Which of your payment methods should I use?", "请问要使用您账户中的哪个支付方式?")
_FIELD_QUESTIONS = {"order_id": _ASK_ORDER, "item_ids": _ASK_ITEMS, "new_item_ids": _ASK_ITEMS,
                    "payment_method_id": _ASK_PAYMENT}


def _input_error(message: str, field: str) -> ToolInputError:
    en, zh = _FIELD_QUESTIONS.get(field, (None, None))
    return ToolInputError(message, user=en, user_zh=zh)


def _clean_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _input_error(f"{field} must be a non-empty string", field)
    return value.strip().replace("＃", "#").replace(" ", "")


def _id_list(values: Any, field: str) -> list[str]:
    if isinstance(values, str):
        values = [v for v in values.replace(";", ",").split(",") if v.strip()]
    if not isinstance(values, list):
        raise _input_error(f"{field} must be a list of item ids", field)
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
        raise ToolInputError(
            f"order_id {order_id!r} is not an order id like #W2611340",
            user="That doesn't look like an order number. You can ask me to list your orders.",
            user_zh="这看起来不像订单号。您可以让我列出您的订单。",
        )
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
        shown = raw if raw.startswith("#") else "#" + raw
        raise NotFoundError(
            f"There is no order {order_id} on your account.",
            user=f"There is no order {shown} on your account. You can ask me to list your orders.",
            user_zh=f"您的账户中没有订单 {shown}。您可以让我列出您的订单。",
        )
    if len(found) > 1:
        ids = ", ".join(sorted(o.id for o in found))
        raise ToolInputError(
            f"order_id {order_id!r} matches several orders ({ids}); use the full id.",
            user=f"That number matches several of your orders ({ids}). Which one do you mean?",
            user_zh=f"这个号码对应您的多个订单({ids})。您指的是哪一个?",
        )
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


def _refund_timing(pm: PaymentMethod | None) -> RefundTiming:
    return "at_once" if pm is not None and pm.kind == "gift_card" else "business_days"


def _item_change(line: OrderItem, new: Variant | None = None) -> ItemChange:
    new_fields = {} if new is None else {
        "new_item_id": new.id, "new_options": dict(new.options or {}), "new_price": float(_money(new.price))}
    return ItemChange(item_id=line.variant_id or "", name=clean_text(line.name or "item"),
                      options=dict(line.options or {}), unit_price=float(_money(line.unit_price)), **new_fields)


def _unit_count(order: Order) -> int:
    return sum(li.quantity or 1 for li in order.items)


# ---------------------------------------------------------------- planning (validate, describe, and how to apply)


@dataclass
class _Plan:
    tool: str
    arguments: dict[str, Any]
    proposal: ConfirmationRequired
    apply: Callable[[Session], ActionResult]

    @property
    def summary(self) -> str:
        """The English description the customer confirms; executing re-plans and must find the same text. It names
        payment methods by id whoever renders it, so a change proposed in a staff view can be confirmed in the
        customer's.
        """
        with customer_view(False):
            return self.proposal.describe("en")


def _proposal(tool: str, order: Order, arguments: dict[str, Any], **fields: Any) -> ConfirmationRequired:
    return ConfirmationRequired(tool=tool, order_id=order.id, order_status=order.status,
                                action={"tool": tool, "arguments": arguments}, **fields)


def _plan_cancel(s: Session, cid: str, args: dict[str, Any], lock: bool = False) -> _Plan:
    order = _find_order(s, cid, args.get("order_id"), lock=lock)
    policy.check_status(order, "cancel", order.id)
    reason = policy.check_cancel_reason(args.get("reason") or "")
    net: dict[str, Decimal] = {}
    for p in order.payments:
        sign = 1 if p.kind == "payment" else -1
        net[p.payment_method_id] = net.get(p.payment_method_id, Decimal("0")) + sign * _money(p.amount)
    refunds = {pm_id: amt for pm_id, amt in net.items() if amt > 0}
    pms = _payment_methods(s, {k for k in refunds if k})
    moves = [MoneyMove(kind="refund", amount=float(a), method=_pay_method(pms.get(k), k),
                       timing=_refund_timing(pms.get(k))) for k, a in refunds.items()]
    arguments = {"order_id": order.id, "reason": reason}
    proposal = _proposal("cancel_pending_order", order, arguments, reason=reason, item_count=_unit_count(order),
                         order_total=float(_order_total(order)), refunds=moves)

    def apply(session: Session) -> ActionResult:
        now = _now()
        for pm_id, amount in refunds.items():
            session.add(Payment(order_id=order.id, kind="refund", amount=amount, payment_method_id=pm_id,
                                created_at=now))
            pm = pms.get(pm_id)
            if pm is not None and pm.kind == "gift_card":
                pm.balance = _money(pm.balance) + amount
        return _record(order, "cancel_pending_order", {"cancel_reason": reason}, status="cancelled", now=now,
                       refund_amount=float(sum(refunds.values(), Decimal("0"))),
                       payment_method_id=next(iter(refunds), None), refunds=moves)

    return _Plan("cancel_pending_order", arguments, proposal, apply)


ADDRESS_FIELDS = ("address1", "address2", "city", "state", "country", "zip")


def _plan_address(s: Session, cid: str, args: dict[str, Any], lock: bool = False) -> _Plan:
    order = _find_order(s, cid, args.get("order_id"), lock=lock)
    policy.check_status(order, "modify", order.id)
    new: dict[str, str] = {}
    for f in ADDRESS_FIELDS:
        v = args.get(f)
        v = "" if v is None else str(v).strip()
        if not v and f != "address2":
            raise ToolInputError(
                f"{f} is empty: ask the customer for the full new address.",
                user="I need the full new address to change it: street, city, state, postal code and country.",
                user_zh="要修改地址,我需要完整的新地址:街道、城市、州/省、邮编和国家。",
            )
        new[f] = v
    if new["address2"].casefold() in {new[f].casefold() for f in ("address1", "city", "state", "zip", "country")}:
        new["address2"] = ""  # a line that repeats another part ("Seattle" as both line 2 and city) is no line 2
    policy.check_address(new)
    arguments = {"order_id": order.id, **new}
    proposal = _proposal("modify_pending_order_address", order, arguments, old_address=_address_text(order.address),
                         new_address=_address_text(new))

    def apply(session: Session) -> ActionResult:
        order.address = new
        order.updated_at = _now()
        return ActionResult(tool="modify_pending_order_address", order_id=order.id, status=order.status,
                            new_address=_address_text(new))

    return _Plan("modify_pending_order_address", arguments, proposal, apply)


def _record(order: Order, tool: str, details: dict[str, Any], *, status: str | None = None,
            now: datetime | None = None, **fields: Any) -> ActionResult:
    """The end every write shares: new status (if any), `details` merged into the order's, the time, the result."""
    if status is not None:
        order.status = status
    order.details = {**(order.details or {}), **details}
    order.updated_at = now or _now()
    return ActionResult(tool=tool, order_id=order.id, status=order.status, **fields)


def _difference_fields(diff: Decimal, pm: PaymentMethod) -> dict[str, Any]:
    """A price difference as the result's charge (positive) or refund (negative) on `pm`."""
    return {"charge_amount": float(max(diff, Decimal("0"))), "refund_amount": float(max(-diff, Decimal("0"))),
            "payment_method_id": pm.id, "difference": float(diff), "payment_method": _pay_method(pm)}


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
    changes = [_item_change(li, nv) for li, nv in zip(lines, news, strict=True)]
    arguments = {"order_id": order.id, "item_ids": item_ids, "new_item_ids": new_ids, "payment_method_id": pm.id}
    proposal = _proposal("modify_pending_order_items", order, arguments, items=changes, difference=float(diff),
                         payment_method=_pay_method(pm))

    def apply(session: Session) -> ActionResult:
        now = _now()
        for line, nv in zip(lines, news, strict=True):
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
        details = {"items_modified": True, "modified_items": [[a, b] for a, b in zip(item_ids, new_ids, strict=True)]}
        return _record(order, "modify_pending_order_items", details, now=now, items=changes,
                       **_difference_fields(diff, pm))

    return _Plan("modify_pending_order_items", arguments, proposal, apply)


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
    changes = [_item_change(li) for li in lines]
    moves = [MoneyMove(kind="refund", amount=float(refund), method=_pay_method(pm), timing="when_returned")]
    arguments = {"order_id": order.id, "item_ids": item_ids, "payment_method_id": pm.id}
    proposal = _proposal("return_delivered_order_items", order, arguments, items=changes, refunds=moves)

    def apply(session: Session) -> ActionResult:
        details = {"return_items": item_ids, "return_payment_method_id": pm.id, "return_refund_amount": float(refund)}
        return _record(order, "return_delivered_order_items", details, status="return requested",
                       refund_amount=float(refund), payment_method_id=pm.id, items=changes, refunds=moves)

    return _Plan("return_delivered_order_items", arguments, proposal, apply)


def _plan_exchange(s: Session, cid: str, args: dict[str, Any], lock: bool = False) -> _Plan:
    order = _find_order(s, cid, args.get("order_id"), lock=lock)
    policy.check_status(order, "exchange", order.id)
    item_ids, new_ids, lines, news, pm, diff = _swap_setup(s, cid, order, args)
    changes = [_item_change(li, nv) for li, nv in zip(lines, news, strict=True)]
    arguments = {"order_id": order.id, "item_ids": item_ids, "new_item_ids": new_ids, "payment_method_id": pm.id}
    proposal = _proposal("exchange_delivered_order_items", order, arguments, items=changes, difference=float(diff),
                         payment_method=_pay_method(pm))

    def apply(session: Session) -> ActionResult:
        details = {"exchange_items": item_ids, "exchange_new_items": new_ids, "exchange_payment_method_id": pm.id,
                   "exchange_price_difference": float(diff)}
        return _record(order, "exchange_delivered_order_items", details, status="exchange requested", items=changes,
                       **_difference_fields(diff, pm))

    return _Plan("exchange_delivered_order_items", arguments, proposal, apply)


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
    ctx.pending_action = PendingAction(tool=plan.tool, arguments=plan.arguments, summary=plan.summary)
    return plan.proposal.model_copy(update={"summary": plan.proposal.render("en")})


# ---------------------------------------------------------------- protocol


def is_write_tool(name: str) -> bool:
    """True for the tools that change orders and therefore need the customer's confirmation."""
    return name in WRITE_TOOLS


def execute_pending_action(ctx: ShopContext) -> ActionResult:
    """Carry out the confirmed pending action after re-checking the policy on the current data, in one transaction."""
    action = ctx.pending_action
    if action is None:
        raise PolicyError("There is no pending change to confirm.",
                          user="There is no change waiting for your confirmation.",
                          user_zh="目前没有等待您确认的更改。")
    ctx.pending_action = None  # a confirmation is used once, whatever happens next
    ctx.confirmed = False
    cid = ctx.require_customer()
    if action.tool not in _PLANNERS:
        raise ToolInputError(f"{action.tool} is not a write tool")
    with ctx.store.transaction() as s:
        plan = _PLANNERS[action.tool](s, cid, action.arguments, lock=True)
        if plan.summary != action.summary:
            raise PolicyError(
                "The order changed since this was proposed, so nothing was done. It would now be: "
                f"{plan.summary} Please ask again if you still want it.",
                user="The order changed since this was proposed, so nothing was done. It would now be: "
                     f"{plan.proposal.describe('en')} Please ask again if you still want it.",
                user_zh="订单在提出这项更改之后发生了变化,所以没有做任何更改。现在的内容会是:\n"
                        f"{plan.proposal.describe('zh')}\n如果仍需要,请再告诉我一次。",
            )
        return plan.apply(s)


def discard_pending_action(ctx: ShopContext) -> PendingAction | None:
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
        d = o.details or {}
        refund_to = d.get("return_payment_method_id")
        pms = _payment_methods(s, ({p.payment_method_id for p in o.payments} | {refund_to}) - {None})
        return OrderDetails(
            order_id=o.id, status=o.status, created_at=o.created_at, updated_at=o.updated_at,
            items=[
                ItemLine(item_id=li.variant_id or "", product_id=li.product_id, name=clean_text(li.name or "item"),
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
                            method=_pay_method(pms.get(p.payment_method_id), p.payment_method_id))
                for p in o.payments
            ],
            cancel_reason=d.get("cancel_reason") or None,
            items_modified=bool(d.get("items_modified")),
            return_items=[str(i) for i in d.get("return_items") or []],
            return_method=_pay_method(pms.get(refund_to), refund_to) if refund_to else None,
            exchange_items=[str(i) for i in d.get("exchange_items") or []],
            exchange_new_items=[str(i) for i in d.get("exchange_new_items") or []],
        )


def cancel_pending_order(
    ctx: ShopContext, order_id: str, reason: Literal["no longer needed", "ordered by mistake"] | None = None
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
