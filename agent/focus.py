"""Which parts of a result a question asks for: "And what's its tracking number?" is answered with the order's
first line and its tracking, not the whole order again; "我最近的订单是什么状态？" with the latest order, not the list.

The tool call (chosen by the model) decides what is looked up; these words decide only how much of the rendering the
person reads. Every line shown is still the result's own rendering (tools.orders: OrderDetails.PARTS and
OrderList.PARTS), and the model's copy of the result stays whole, so a follow-up can use the rest.

    asked_parts("And what's its tracking number?")   # frozenset({"tracking"})
    asked_parts("Where is my order #W1?")             # frozenset({"tracking"}): where it is, and its status line
    asked_parts("Tell me about order #W1")            # frozenset(): everything
"""

from __future__ import annotations

import re

# An AIMessage's additional_kwargs key: the whole rendering of a reply the person read narrowed, which the model
# remembers instead (agent.session.remember): a later decision is not steered by what one question asked for.
WHOLE_REPLY = "whole_reply"

_PARTS = {
    "tracking": re.compile(
        r"\b(?:track\w*|carrier|shipped|shipping status|shipment|courier|where(?:'s| is)\b(?! the (?:return|refund)))"
        r"|快递单号|物流单号|运单号|跟踪号|快递|物流|承运|发货了|(?<![寄送])到哪",
        re.I),
    "items": re.compile(
        r"\b(?:items?|what(?:'s| is| was) in|in (?:it|that order|this order)|products? in|contents?|"
        r"what did i (?:buy|order|get|purchase))\b"
        r"|里(?:面|头)?有什么|有什么商品|哪些商品|什么东西|买了什么|买的什么",
        re.I),
    "address": re.compile(r"\b(?:address|ship(?:ping|ped)? to|deliver(?:ing|ed)? to)\b|地址|寄到|送到哪", re.I),
    "payment": re.compile(
        r"\b(?:pa(?:y|id)\b(?! the difference)|payment|card|charged?|refund(?:ed)?\b(?! the difference)|"
        r"how much did i)|付款|支付|付的钱|扣款|退款到",
        re.I),
    "latest": re.compile(
        r"\b(?:latest|most recent|newest|last|previous)\s+(?:order|purchase)\b(?!s)"
        r"|最新(?:的|一个|一笔)?订单|最近(?:一个|一笔|一单)订单|上一(?:个|笔|单)订单|最近的订单(?:是什么|的)?状态",
        re.I),
}


def asked_parts(text: str) -> frozenset[str]:
    """The parts of a result `text` asks for by name (empty: it names none, and the whole result answers it)."""
    return frozenset(name for name, pattern in _PARTS.items() if pattern.search(text or ""))
