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

_STATUS_EN = r"delivered|pending|processed|shipped|cancell?ed"
_STATUS_ZH = r"已送达|已签收|待处理|已处理|已发货|已取消"

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
    # "my latest delivered order", "我最近一个已送达的订单": the status word picks among the orders (STATUS_PARTS)
    "latest": re.compile(
        rf"\b(?:latest|most recent|newest|last|previous)\s+(?:(?:{_STATUS_EN})\s+)?(?:order|purchase)\b(?!s)"
        rf"|最新(?:的|一个|一笔)?(?:(?:{_STATUS_ZH})的)?订单|最近(?:一个|一笔|一单)(?:(?:{_STATUS_ZH})的)?订单"
        r"|上一(?:个|笔|单)订单|最近的订单(?:是什么|的)?状态",
        re.I),
    # "Where is my order?" names no order and no status: one order is meant, not the whole list (OrderList.picked)
    "one": re.compile(
        r"\bmy (?:order|package|parcel|delivery|shipment)\b(?!s|\s*(?:#|no\.|number|id\b)|\s*[a-z]?\d)"
        r"|(?<![哪些所有全部])我的(?:订单|包裹|快递)(?![都们]|\s*#|\s*[a-z]?\d)",
        re.I),
}
# The status words that pick the latest order of that status; each part is a status as stored.
STATUS_PARTS = {
    "pending": re.compile(r"\bpending\b|待处理", re.I),
    "processed": re.compile(r"\b(?:processed|shipped)\b|已处理|已发货", re.I),
    "delivered": re.compile(r"\bdelivered\b|已送达|已签收", re.I),
    "cancelled": re.compile(r"\bcancell?ed\b|已取消", re.I),
}


def asked_parts(text: str) -> frozenset[str]:
    """The parts of a result `text` asks for by name (empty: it names none, and the whole result answers it). With
    "latest", the status it names too ("my latest delivered order": {"latest", "delivered"}).
    """
    parts = {name for name, pattern in _PARTS.items() if pattern.search(text or "")}
    if "latest" in parts:
        latest = _PARTS["latest"].search(text).group(0)
        parts |= {status for status, pattern in STATUS_PARTS.items() if pattern.search(latest)}
    return frozenset(parts)
