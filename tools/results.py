"""The result protocol every tool result follows: it renders itself for a person and lists the facts it states.

    result.render("en")   # the complete text a person reads (English or Chinese); code, not the model, writes it
    result.facts()        # [Fact(kind="date", value="2026-08-09", about="order:#S0001220"), ...]

A reply that carries facts is built from `render(lang)` alone; `facts()` is what an auditor checks a reply against,
bound to the entity each fact is said about (so a date of one order can never pass as another order's date).

The value convention (every renderer follows it, in both languages):
- a Fact's `value` is exactly the text render() prints for it, in English and Chinese alike;
- amounts: `usd(x)` -> "$1234.56" (dollar sign, two decimals, no thousands separator; "-$5.00" below zero);
- dates: `iso(d)` -> "2026-08-09" (a datetime shows its date);
- ratings: `stars(x)` -> the stored rating, not rounded to one place (4.4 -> "4.4", 4.0 -> "4.0", 4.25 -> "4.25");
- shares and probabilities: `pct(x)` -> "42%"; counts and quantities: the plain integer ("3");
- ids, names, statuses, tiers and segment names: as stored (a Chinese rendering shows a status as "已处理(processed)").
A fact about an entity (`about="order:#W1"`) is printed on a line that also names that entity (its id, or its name
where it has no id), so an auditor can bind facts to entities line by line.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from index.text import has_cjk

Lang = Literal["en", "zh"]
FactKind = Literal[
    "order_id", "status", "amount", "date", "tracking_id", "carrier", "item_id", "product_id", "product_name",
    "price", "rating", "quantity", "customer_id", "segment", "tier", "count", "share", "probability", "category",
    "review_id", "text", "payment_method", "address", "email", "name", "metric",
]


class Fact(BaseModel):
    """One fact a result states, and the entity it is about ("order:#W1", "product:P1", "customer:c1", ...)."""

    kind: FactKind
    value: str
    about: str | None = Field(None, description="kind:id of the entity the fact is about; None for the whole result")


@runtime_checkable
class Renders(Protocol):
    def render(self, lang: Lang = "en") -> str: ...

    def facts(self) -> list[Fact]: ...


_CUSTOMER_VIEW: ContextVar[bool] = ContextVar("shopdesk_customer_view", default=False)


@contextmanager
def customer_view(on: bool = True) -> Iterator[None]:
    """Render for a customer inside this block: internal ids a customer does not know (payment-method ids such as
    `paypal_3048018`) are left out and the method is named as the customer knows it ("PayPal", "Visa credit card
    ending 4920"). The model's own copy of a result is rendered outside it and keeps the ids it must call with.
    """
    token = _CUSTOMER_VIEW.set(on)
    try:
        yield
    finally:
        _CUSTOMER_VIEW.reset(token)


def in_customer_view() -> bool:
    """Whether the text being rendered is for a customer (see `customer_view`)."""
    return _CUSTOMER_VIEW.get()


def lang_of(text: str) -> Lang:
    """The language to answer in: Chinese when the text has CJK ideographs, else English."""
    return "zh" if has_cjk(text) else "en"


# ---------------------------------------------------------------- the shared formatting of fact values


def tr(lang: Lang, en: str, zh: str) -> str:
    """The text for `lang`: English or simplified Chinese."""
    return zh if lang == "zh" else en


def usd(x: float | Decimal | int | None) -> str:
    """An amount in USD: "$1234.56" ("-$5.00" below zero)."""
    value = Decimal(str(x or 0)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"-${-value}" if value < 0 else f"${value}"


def iso(d: date | datetime | str | None) -> str:
    """A date as YYYY-MM-DD."""
    if isinstance(d, datetime):
        return d.date().isoformat()
    if isinstance(d, date):
        return d.isoformat()
    return str(d or "")[:10]


def stars(x: float | int | None) -> str:
    """A rating as stored: 4.4 -> "4.4", 4 -> "4.0", 4.25 -> "4.25" (at most two decimals)."""
    if x is None:
        return ""
    text = f"{float(x):.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def pct(x: float | None) -> str:
    """A share or probability 0-1 as a whole percent: 0.4234 -> "42%"."""
    return "" if x is None else f"{100 * x:.0f}%"


def na(lang: Lang) -> str:
    """"n/a" in `lang`."""
    return tr(lang, "n/a", "无")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table, one row per line (a cell's "|" is shown as "/" so it cannot split the row)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def cell(value: Any) -> str:
    """A value as a table cell shows it (and as its fact states it)."""
    return str(value).replace("|", "/").replace("\n", " ")


ORDER_STATUS_ZH = {
    "pending": "待处理",
    "processed": "已处理",
    "delivered": "已送达",
    "cancelled": "已取消",
    "return requested": "退货申请中",
    "exchange requested": "换货申请中",
}


CANCEL_REASON_ZH = {"no longer needed": "不再需要", "ordered by mistake": "下错单了"}  # tools.policy's reasons


def stored_word(word: str, zh_words: dict[str, str], lang: Lang) -> str:
    """A stored English word as shown: itself, or in Chinese its translation with the word beside it."""
    zh = zh_words.get(word)
    return f"{zh}({word})" if lang == "zh" and zh else word


def status_text(status: str, lang: Lang) -> str:
    """An order status as shown: "processed", or "已处理(processed)" in Chinese (the stored word stays visible)."""
    return stored_word(status, ORDER_STATUS_ZH, lang)


def reason_text(reason: str, lang: Lang) -> str:
    """A cancellation reason as shown: "ordered by mistake", or "下错单了(ordered by mistake)" in Chinese."""
    return stored_word(reason, CANCEL_REASON_ZH, lang)


def fact(kind: FactKind, value: Any, about: str | None = None) -> Fact:
    """A fact of `kind` with its value as text, about `about` (kind:id) or the whole result."""
    return Fact(kind=kind, value=str(value), about=about)


def unbound_facts(result: Renders, lang: Lang = "en") -> list[str]:
    """Facts of `result` its own rendering does not state where it should: a fact missing from render(lang), or one
    about an entity that is on no line together with that entity's id or name. Empty when the result is sound.
    """
    text = result.render(lang)
    lines = text.splitlines()
    problems = []
    for f in result.facts():
        if f.value not in text:
            problems.append(f"{f.kind} {f.value!r} ({f.about}) is not in the {lang} rendering")
        elif f.about is not None:
            entity = f.about.split(":", 1)[1]
            if not any(entity in line and f.value in line for line in lines):
                problems.append(f"{f.kind} {f.value!r} is on no line that names {f.about} ({lang})")
    return problems
