"""Checking a final answer against the tool results of the conversation, and the faithful fallback renderings.

A small model may phrase things badly, but the facts a customer acts on (order ids, statuses, amounts, dates,
tracking numbers, prices, ratings) must come from a tool result of this conversation or the answer is replaced.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from shopdesk.output import to_jsonable
from store.models import ORDER_STATUSES

# Words a reply may use for an order status, per language; each must match a status some tool reported.
STATUS_WORDS: dict[str, str] = {s: s for s in ORDER_STATUSES}
STATUS_WORDS.update({
    "canceled": "cancelled",
    "待处理": "pending",
    "已处理": "processed",
    "处理中": "processed",
    "已送达": "delivered",
    "已签收": "delivered",
    "已交付": "delivered",
    "已取消": "cancelled",
    "退货申请": "return requested",
    "换货申请": "exchange requested",
})
_STATUS_RE = re.compile(
    "|".join(sorted((re.escape(w) if not w.isascii() else rf"\b{re.escape(w)}\b" for w in STATUS_WORDS),
                    key=len, reverse=True)),
    re.I,
)
_ORDER_ID_RE = re.compile(r"#\s?[A-Za-z]{0,3}\d{3,}|\b[A-Z]{1,3}\d{5,}\b")
_MONEY_RE = re.compile(r"(?:[$¥€£]|USD|usd|RMB)\s?(\d[\d,]*(?:\.\d+)?)|(\d[\d,]*(?:\.\d+)?)\s?(?:美元|元|dollars?\b)")
_DECIMAL_RE = re.compile(r"(?<![\d.,])(\d[\d,]*\.\d+)(?!\d|\.\d)")
_DATE_RE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b|(\d{4})年(\d{1,2})月(\d{1,2})日")
_LONG_NUMBER_RE = re.compile(r"(?<![\d.#A-Za-z])(\d{7,})(?!\d|\.\d)")


def _norm_id(text: str) -> str:
    return re.sub(r"[#\s]", "", text).upper()


def _num(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None


class Facts:
    """Everything tool results said in this conversation, indexed for checking."""

    def __init__(self) -> None:
        self.strings: set[str] = set()
        self.ids: set[str] = set()
        self.numbers: set[Decimal] = set()
        self.statuses: set[str] = set()
        self.order_status: dict[str, str] = {}  # normalised order id -> latest status a tool reported
        self.count = 0

    def add(self, result: Any) -> None:
        self.count += 1
        self._walk(to_jsonable(result), key="")
        try:  # the order tools know their own facts best (D1's protocol); generic walking covers the rest
            from tools.orders import result_facts
        except ImportError:
            return
        try:
            extra = result_facts(result)
        except Exception:  # noqa: BLE001 - not every result type is an order result
            return
        data = to_jsonable(extra)
        self._walk(data, key="")
        if isinstance(data, dict):
            for order_id, status in (data.get("statuses") or {}).items():
                self.order_status[_norm_id(order_id)] = str(status).lower()

    def _walk(self, value: Any, key: str) -> None:
        if isinstance(value, dict):
            oid, status = value.get("order_id"), value.get("status")
            if isinstance(oid, str) and isinstance(status, str) and status.lower() in ORDER_STATUSES:
                self.order_status[_norm_id(oid)] = status.lower()
            for k, v in value.items():
                self._walk(v, f"{key}.{k}")
        elif isinstance(value, (list, tuple, set)):
            for v in value:
                self._walk(v, key)
        elif value is None or isinstance(value, bool):
            return
        elif isinstance(value, (int, float, Decimal)):
            n = _num(str(value))
            if n is not None:
                self.numbers.add(n)
            self.strings.add(str(value))
        else:
            text = str(value)
            self.strings.add(text)
            if "status" in ".".join(key.split(".")[-2:]).lower() and text.lower() in ORDER_STATUSES:
                self.statuses.add(text.lower())
            for token in re.findall(r"#?[A-Za-z]{0,3}\d{3,}", text):
                self.ids.add(_norm_id(token))
            for token in re.findall(r"\d[\d,]*(?:\.\d+)?", text):
                n = _num(token)
                if n is not None:
                    self.numbers.add(n)
            self.ids.add(_norm_id(text))

    def has_number(self, x: Decimal) -> bool:
        """True if some reported number shows as `x` at x's precision ("2.1" matches 2.13; "$42" matches 42.0)."""
        places = max(0, -x.as_tuple().exponent)
        tolerance = Decimal(5) / (Decimal(10) ** (places + 1)) + Decimal("1e-9")
        return any(abs(n - x) <= tolerance for n in self.numbers)

    def quoted(self, word: str) -> bool:
        """True if `word` occurs in the free text of a result (a review saying "delivered fast")."""
        word = word.lower()
        return any(word in s.lower() and s.lower() not in ORDER_STATUSES for s in self.strings)

    def has_date(self, date: str) -> bool:
        return any(date in s for s in self.strings)


def problems(answer: str, facts: Facts) -> list[str]:
    """What in `answer` is not backed by `facts` (empty when the answer is grounded)."""
    found: list[str] = []
    for m in _ORDER_ID_RE.finditer(answer):
        if _norm_id(m.group(0)) not in facts.ids:
            found.append(f"order id {m.group(0)} not in any tool result")
    for m in _STATUS_RE.finditer(answer):
        status = _status_of(m.group(0))
        if status and status not in facts.statuses and (facts.order_status or not facts.quoted(m.group(0))):
            found.append(f"status '{m.group(0)}' not reported by any tool")
    for clause in _CLAUSE_RE.split(answer):  # "#W1 is delivered" must match what the tools said about #W1
        ids = {_norm_id(m.group(0)) for m in _ORDER_ID_RE.finditer(clause)} & facts.order_status.keys()
        words = {_status_of(m.group(0)) for m in _STATUS_RE.finditer(clause)} - {None}
        if len(ids) == 1 and words:
            actual = facts.order_status[next(iter(ids))]
            if words - {actual}:
                found.append(f"says {', '.join(sorted(words - {actual}))} for an order that is {actual}")
    for m in _MONEY_RE.finditer(answer):
        n = _num(m.group(1) or m.group(2))
        if n is not None and not facts.has_number(n):
            found.append(f"amount {m.group(0)} not in any tool result")
    for m in _DECIMAL_RE.finditer(answer):
        n = _num(m.group(1))
        if n is not None and not facts.has_number(n):
            found.append(f"number {m.group(1)} not in any tool result")
    for m in _DATE_RE.finditer(answer):
        date = m.group(1) or f"{m.group(2)}-{int(m.group(3)):02d}-{int(m.group(4)):02d}"
        if not facts.has_date(date):
            found.append(f"date {date} not in any tool result")
    for m in _LONG_NUMBER_RE.finditer(answer):
        if _norm_id(m.group(1)) not in facts.ids and not any(m.group(1) in s for s in facts.strings):
            found.append(f"number {m.group(1)} (tracking?) not in any tool result")
    return list(dict.fromkeys(found))


def _status_of(word: str) -> str | None:
    return STATUS_WORDS.get(word.lower(), STATUS_WORDS.get(word))


_CLAUSE_RE = re.compile(r"[.;!?\n。;!?]\s*|,\s+(?:and|but)\s+|,\s*而|,\s*但")
RENDER_MODULES = ("tools.orders", "tools.catalog", "tools.handoff", "tools.search", "tools.analytics.render")


@lru_cache(maxsize=1)
def _renderers() -> dict[type, Any]:
    """render_* functions of the tool modules, keyed by the result type of their first parameter."""
    import importlib
    import typing

    found: dict[type, Any] = {}
    for name in RENDER_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr, fn in vars(module).items():
            if not attr.startswith("render_") or not callable(fn) or getattr(fn, "__module__", None) != name:
                continue
            try:
                hints = typing.get_type_hints(fn)
            except Exception:  # noqa: BLE001 - a renderer with unresolvable hints is just not registered
                continue
            params = [h for k, h in hints.items() if k != "return"]
            if params and isinstance(params[0], type):
                found[params[0]] = fn
    return found


def render(result: Any, limit: int = 1500) -> str:
    """The compact text a tool result is shown as (to the model, and as the faithful fallback answer)."""
    fn = _renderers().get(type(result))
    if fn is None:
        method = getattr(result, "render", None) or getattr(result, "to_text", None)
        fn = (lambda _r: method()) if callable(method) else None
    if fn is not None:
        text = fn(result)
        return text if len(text) <= limit else text[: limit - 1] + "…"
    if isinstance(result, str):
        return result[:limit]
    data = to_jsonable(result)
    text = _compact(data)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _compact(data: Any, depth: int = 0) -> str:
    if isinstance(data, dict):
        parts = []
        for k, v in data.items():
            if v is None or v == [] or v == {}:
                continue
            inner = _compact(v, depth + 1)
            parts.append(f"{k}: {inner}")
        return ("; " if depth else "\n").join(parts) if depth == 0 else "{" + "; ".join(parts) + "}"
    if isinstance(data, list):
        shown = [_compact(v, depth + 1) for v in data[:10]]
        more = f" (+{len(data) - 10} more)" if len(data) > 10 else ""
        return "[" + ", ".join(shown) + "]" + more
    if isinstance(data, float):
        return f"{data:.2f}".rstrip("0").rstrip(".") if abs(data) < 1e12 else str(data)
    return json.dumps(data, ensure_ascii=False) if not isinstance(data, (str, int)) else str(data)


def is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def safe_answer(user_text: str) -> str:
    """What to say when the model stated facts that no tool reported (and there is nothing to render)."""
    if is_chinese(user_text):
        return "我需要先查询后才能告诉您订单的信息。请告诉我您的订单号(例如 #W1234567)。"
    return "I can only share order details after looking them up. Please tell me the order number (for example #W1234567)."


def faithful_answer(results: list[tuple[str, Any]], user_text: str) -> str:
    """The tool results of the turn, rendered by their templates, in place of an ungrounded answer."""
    if not results:
        return safe_answer(user_text)
    return "\n\n".join(dict.fromkeys(render(r) for _, r in results))  # a call the model repeated, said once


def as_model_result(result: Any) -> Any:
    return result.model_dump(mode="json") if isinstance(result, BaseModel) else to_jsonable(result)
