"""The shop's written support policy as data, and the checks the order tools run against it.

The human-readable text is `tools/policy.md` (adapted from tau2-bench's retail policy, MIT); the rules below are the
same policy in a form code can enforce. Tools validate here, never in the prompt: a model that ignores the policy is
still refused.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from store.models import Order, OrderItem, PaymentMethod, Variant
from tools.errors import PolicyError, ToolInputError
from tools.results import status_text, usd

POLICY_FILE = Path(__file__).with_name("policy.md")


@dataclass(frozen=True)
class Policy:
    """Which order statuses allow which change, and the money rules."""

    cancel_statuses: tuple[str, ...] = ("pending",)
    modify_statuses: tuple[str, ...] = ("pending",)
    return_statuses: tuple[str, ...] = ("delivered",)
    exchange_statuses: tuple[str, ...] = ("delivered",)
    cancel_reasons: tuple[str, ...] = ("no longer needed", "ordered by mistake")
    card_refund_days: str = "5 to 7 business days"
    card_refund_days_zh: str = "5 到 7 个工作日"
    # After an items modification the order can no longer be cancelled or have its items modified again.
    items_modification_is_final: bool = True


POLICY = Policy()

ACTION_STATUSES = {
    "cancel": POLICY.cancel_statuses,
    "modify": POLICY.modify_statuses,
    "return": POLICY.return_statuses,
    "exchange": POLICY.exchange_statuses,
}
ACTION_WORDS = {
    "cancel": "cancelled",
    "modify": "modified",
    "return": "returned",
    "exchange": "exchanged",
}
ACTION_WORDS_ZH = {"cancel": "取消", "modify": "修改", "return": "退货", "exchange": "换货"}


def policy_text() -> str:
    """The policy as written for customers and staff (Markdown)."""
    return POLICY_FILE.read_text(encoding="utf-8")


def check_status(order: Order, action: str, display_id: str) -> None:
    """Refuse `action` ("cancel", "modify", "return", "exchange") unless the order's status allows it."""
    allowed = ACTION_STATUSES[action]
    if order.status not in allowed:
        need = " or ".join(allowed)
        need_zh = "或".join(status_text(s, "zh") for s in allowed)
        raise PolicyError(
            f"Order {display_id} is {order.status}; only {need} orders can be {ACTION_WORDS[action]}.",
            user_zh=f"订单 {display_id} 的状态是{status_text(order.status, 'zh')};只有{need_zh}的订单才能"
                    f"{ACTION_WORDS_ZH[action]}。",
        )
    details = order.details or {}
    if POLICY.items_modification_is_final and details.get("items_modified") and action == "cancel":
        raise PolicyError(f"Order {display_id} already had its items modified, so it can no longer be cancelled.",
                          user_zh=f"订单 {display_id} 的商品已经修改过,因此不能再取消。")


def check_items_not_modified(order: Order, display_id: str) -> None:
    """PolicyError unless the order's items have not been modified before."""
    if (order.details or {}).get("items_modified"):
        raise PolicyError(
            f"The items of order {display_id} were already modified once; they can be modified only once.",
            user_zh=f"订单 {display_id} 的商品已经修改过一次;每个订单只能修改一次。",
        )


def check_cancel_reason(reason: str) -> str:
    """The cancel reason in its policy form; ToolInputError for any other reason."""
    norm = " ".join(str(reason).strip().lower().split())
    if norm not in POLICY.cancel_reasons:
        allowed = " or ".join(f"'{r}'" for r in POLICY.cancel_reasons)
        raise ToolInputError(
            f"reason must be {allowed}; got {reason!r}. Ask the customer which one applies.",
            user="Why would you like to cancel: do you no longer need the order, or did you order it by mistake? "
                 "An order can be cancelled for one of these two reasons.",
            user_zh="请问您为什么要取消:是不再需要这个订单了,还是下错单了?只有这两种原因可以取消订单。",
        )
    return norm


# Shapes a real address field never has: an id of this shop (payment method, order, item or product), a bare number
# where words belong. A model that fills an address from the wrong part of the conversation is stopped here.
_ID_LIKE = re.compile(r"^(?:(?:credit_card|paypal|gift_card)_\d+|#?[A-Z]\d{6,}|\d{8,})$", re.IGNORECASE)
_HAS_LETTER = re.compile(r"[^\W\d_]")
_POSTCODE = {"usa": re.compile(r"^\d{5}(?:-\d{4})?$")}  # US ZIP or ZIP+4; other countries: the generic shape below
_GENERIC_POSTCODE = re.compile(r"^(?=.*\d)[A-Za-z0-9][A-Za-z0-9 -]{1,9}$")
_ADDRESS_NAMES = {"address1": ("street", "街道"), "address2": ("apartment or suite", "门牌/套房"),
                  "city": ("city", "城市"), "state": ("state", "州/省"), "country": ("country", "国家"),
                  "zip": ("postal code", "邮编")}


def check_address(fields: dict[str, str]) -> None:
    """A new shipping address must look like one: words where words belong, no ids of this shop, a postal code of
    the country's shape (US: 12345 or 12345-6789). Else ToolInputError naming the field, with a question for the
    customer.
    """
    for name, value in fields.items():
        bad = bool(value) and (_ID_LIKE.match(value) is not None
                               or (name != "zip" and name != "address2" and not _HAS_LETTER.search(value)))
        if name == "zip" and value:
            shape = _POSTCODE.get(fields.get("country", "").strip().lower().replace(".", ""), _GENERIC_POSTCODE)
            bad = shape.match(value) is None
        if bad:
            en, zh = _ADDRESS_NAMES.get(name, (name, name))
            raise ToolInputError(
                f"{name} {value!r} is not a valid {en}: ask the customer for the full new address.",
                user=f"That doesn't look like a valid {en} ({value}). Could you write the full new address: street, "
                     f"city, state, postal code and country?",
                user_zh=f"{zh}“{value}”似乎不正确。请提供完整的新地址:街道、城市、州/省、邮编和国家。",
            )


def order_units(order: Order) -> Counter[str]:
    """How many units of each variant (item id) the order holds."""
    units: Counter[str] = Counter()
    for line in order.items:
        if line.variant_id:
            units[line.variant_id] += line.quantity or 1
    return units


def check_items_in_order(order: Order, item_ids: list[str], display_id: str, field: str = "item_ids") -> None:
    """ToolInputError unless `item_ids` is non-empty and names items of the order, none more often than it has."""
    if not item_ids:
        raise ToolInputError(
            f"{field} is empty: list the item ids (variant ids from the order details) to change.",
            user=f"Which items of order {display_id} do you mean? I can show you the order's items.",
            user_zh=f"您指的是订单 {display_id} 中的哪些商品?我可以先为您列出这个订单的商品。",
        )
    units = order_units(order)
    wanted = Counter(item_ids)
    for item_id, n in wanted.items():
        have = units.get(item_id, 0)
        if have == 0:
            raise ToolInputError(
                f"item {item_id} is not in order {display_id}; its item ids are {', '.join(sorted(units)) or 'none'}.",
                user=f"Item {item_id} is not in order {display_id}. I can show you the order's items.",
                user_zh=f"订单 {display_id} 中没有商品 {item_id}。我可以先为您列出这个订单的商品。",
            )
        if n > have:
            raise ToolInputError(
                f"item {item_id} appears {n} times in {field} but order {display_id} has {have}.",
                user=f"Order {display_id} has {have} of item {item_id}, not {n}. How many do you mean?",
                user_zh=f"订单 {display_id} 中商品 {item_id} 只有 {have} 件,不是 {n} 件。您指的是几件?",
            )


def check_swaps(old_lines: list[OrderItem], new_variants: list[Variant | None], new_ids: list[str]) -> None:
    """Each item may change only to an available, different variant of the same product."""
    if len(new_ids) != len(old_lines):
        raise ToolInputError(
            f"new_item_ids has {len(new_ids)} ids but item_ids has {len(old_lines)}; give one new item per item.",
            user="Which new option would you like for each item? Please name one new option per item.",
            user_zh="每件商品想换成哪个新款式?请为每件商品各选一个新款式。",
        )
    for old, new, new_id in zip(old_lines, new_variants, new_ids, strict=True):
        if new is None:
            raise ToolInputError(
                f"new item {new_id} does not exist; use an item id from get_product_details.",
                user=f"I couldn't find the option {new_id}. I can show you the product's options.",
                user_zh=f"我没有找到款式 {new_id}。我可以为您列出这件商品的所有款式。",
            )
        if new.product_id != old.product_id:
            raise PolicyError(
                f"Item {old.variant_id} ({old.name or 'item'}) can only be changed to another option of the same "
                f"product, not to item {new_id} of a different product.",
                user_zh=f"商品 {old.variant_id}({old.name or '商品'})只能换成同一商品的其他款式,"
                        f"不能换成另一商品的 {new_id}。",
            )
        if new.id == old.variant_id:
            raise ToolInputError(
                f"new item {new_id} is the same as the current item; pick a different option.",
                user=f"Option {new_id} is the one you already have. Which other option would you like?",
                user_zh=f"款式 {new_id} 就是您现在的款式。您想换成哪个其他款式?",
            )
        if not new.available:
            raise PolicyError(f"Item {new_id} is not available right now.",
                              user_zh=f"款式 {new_id} 目前无货。")


def check_payment_method(pm: PaymentMethod | None, pm_id: str, customer_id: str) -> PaymentMethod:
    """The customer's payment method `pm_id`; ToolInputError when it is not theirs."""
    if pm is None or pm.customer_id != customer_id:
        raise ToolInputError(
            f"payment method {pm_id!r} is not one of the customer's payment methods.",
            user="That payment method isn't on your account. Which of your payment methods should I use?",
            user_zh="这个支付方式不在您的账户中。请问要使用您账户中的哪个支付方式?",
        )
    return pm


def check_refund_method(order: Order, pm: PaymentMethod, display_id: str) -> None:
    """Refunds go to the order's original payment method or to one of the customer's existing gift cards."""
    original = {p.payment_method_id for p in order.payments if p.kind == "payment"}
    if pm.id in original or pm.kind == "gift_card":
        return
    methods = ", ".join(sorted(original)) or "unknown"
    raise PolicyError(
        f"A refund for order {display_id} can only go to the original payment method ({methods}) or to an existing "
        f"gift card.",
        user=f"A refund for order {display_id} can only go to the original payment method or to an existing gift "
             f"card. Which of them should I use?",
        user_zh=f"订单 {display_id} 的退款只能退回原支付方式或您已有的礼品卡。请问要退到哪一个?",
    )


def check_gift_card_covers(pm: PaymentMethod, amount: Decimal) -> None:
    """A gift card paying `amount` (> 0) must have the balance for it."""
    if pm.kind == "gift_card" and amount > 0 and (pm.balance or Decimal("0")) < amount:
        raise PolicyError(
            f"Gift card {pm.id} has a balance of {usd(pm.balance)}, not enough for {usd(amount)}; "
            f"choose another payment method.",
            user=f"Your gift card has a balance of {usd(pm.balance)}, not enough for {usd(amount)}. Which other "
                 f"payment method should I use?",
            user_zh=f"您的礼品卡余额为 {usd(pm.balance)},不足以支付 {usd(amount)};请选择其他支付方式。",
        )
