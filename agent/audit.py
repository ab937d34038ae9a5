"""The fact auditor: is every fact in an assistant message true of the order, product or customer it is said about?

    wrong = audit(reply, store, customer_id="c000150", results=session.all_results, typed=["Where is #S0000422?"])
    # [WrongFact(kind="date", value="2025-04-06", about="order:#S0001220", why="not a date of this order"), ...]

A fact belongs to the entity named before it in the same sentence (else the one named after it), else to the last
entity named earlier in the message, so an "Items:" or "Tracking ..." line belongs to the order above it. A table
row and a cited review keep their entity to themselves, and a blank line starts afresh. Orders, products and reviews
are checked against the store as it is now; analytics numbers (segments, churn, profiles, offers) against the facts
of the conversation's tool results bound to the customer or segment of the line, since those are model outputs, not
store rows. Quoted text (review quotes, catalog descriptions, drafted messages, echoed queries) is data and is not
audited.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from itertools import combinations
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from shopdesk.output import to_jsonable
from store.models import Customer, Fulfillment, Order, PaymentMethod, Product, Review, Variant


@dataclass(frozen=True)
class WrongFact:
    """One fact of a message that is not true of the entity it is said about."""

    kind: str  # order_id, status, amount, date, tracking_id, item_id, product_id, product_name, rating, number, ...
    value: str  # as written in the message
    about: str | None  # "order:#W2611340", "product:9523456873", "customer:c000150", "segment:At risk", None
    why: str
    line: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.value!r} about {self.about or 'nothing named'}: {self.why}"


# -- what a message says -----------------------------------------------------------------------------------------

_W = "A-Za-z0-9_"  # ASCII word characters: \w would also match the CJK text around an id
ORDER_ID_RE = re.compile(rf"(?<![{_W}#])#\s?([A-Z]{{1,2}}\d{{4,10}})(?![{_W}])"
                         rf"|(?<![{_W}#])([A-Z]{{1,2}}\d{{5,10}})(?![{_W}])")
LONG_NUMBER_RE = re.compile(rf"(?<![{_W}.,$£€¥₹#])\d{{7,}}(?![{_W}]|[.,]\d)")
CUSTOMER_RE = re.compile(rf"(?<![{_W}@.])(?:c\d{{6}}|[a-z]+(?:_[a-z]+)+_\d{{4}})(?![{_W}@])")
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
DATE_RES = (
    re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]"),
    re.compile(r"\b(" + "|".join(m[:3] for m in _MONTHS) + r")[a-z]*\.?\s+(\d{1,2}),?\s+(\d{4})\b", re.I),
)
_NUM = r"\d[\d,]*(?:\.\d+)?"
# An amount in any currency a shop may sell in (tools.analytics.models.CURRENCY_SIGNS): "$54", "£12.50", "EUR 9",
# "30 美元", "12 pounds".
_CODES = r"USD|GBP|EUR|JPY|CNY|RMB|INR"
_AFTER = r"美元|英镑|欧元|日元|人民币|dollars?\b|pounds?\b|euros?\b"
AMOUNT_RE = re.compile(rf"(?:US\$|\$|£|€|¥|₹|(?:{_CODES})\s?)\s?({_NUM})|({_NUM})\s?(?:{_AFTER}|(?:{_CODES})\b)", re.I)
PERCENT_RE = re.compile(r"(\d+(?:\.\d+)?)\s?[%％]")
_RATING_TAIL = r"(?:\s?/\s?5(?![\d.])|\s?out of 5\b|\s?[(（]满分\s?5[)）]|\s?(?:stars?\b|颗星|星))"
RATING_RE = re.compile(
    rf"(?:\brating\b|\brated\b|评分|评级)\s*(?:of|is|:|：|为)?\s*(\d(?:\.\d+)?)(?![\d.]){_RATING_TAIL}?"
    rf"|(\d(?:\.\d+)?){_RATING_TAIL}", re.I)
TRACKING_LABEL_RE = re.compile(
    r"(?:\btracking(?:\s+(?:number|no\.?|id|code|#))?s?\b|快递单号|运单号|物流单号|追踪号|跟踪号|追踪单号)"
    r"\s*(?:is|are|:|：|为|是)?\s*(?:#\s*)?", re.I)
TRACKING_VALUE_RE = re.compile(r"\d[\w-]*")
PLAIN_NUMBER_RE = re.compile(r"(?<![\d.,])\d[\d,]*(?:\.\d+)?(?![\d])")
# Not figures: metric names ("12-month value", "1-5 stars"), list numbering ("1. ", "2) ") and the star buckets of a
# rating histogram ("1 star: 0, 2 stars: 2", "1 星:0": a count per star, not a rating).
METRIC_NAME_RE = re.compile(r"\b12[- ]months?\b|12\s?个月|\b1-5\b|\b0-1\b|^\s*\d{1,3}[.)](?=\s)"
                            r"|\b[1-5] stars?(?=\s?[:：]\s?\d)|(?<![\d.])[1-5]\s?星(?=\s?[:：]\s?\d)")
QUOTE_RES = (
    re.compile(r'"""[\s\S]*?"""'),
    re.compile(r'(?<!\d)"[^"\n]*"'),  # an opening quote, not an inch mark (LG 48" Class)
    re.compile(r"“[^”\n]*”"),
    re.compile(r"「[^」\n]*」|『[^』\n]*』"),
    re.compile(r"(?<![A-Za-z])'[^'\n]{1,300}'(?![A-Za-z])"),
)
SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=\S)|(?<=[。！？])")

# Status words a reply may use, and the store statuses each one is true of.
STATUS_WORDS: dict[str, frozenset[str]] = {
    "pending": frozenset({"pending"}),
    "processed": frozenset({"processed"}),
    "delivered": frozenset({"delivered"}),
    "cancelled": frozenset({"cancelled"}),
    "canceled": frozenset({"cancelled"}),
    "return requested": frozenset({"return requested"}),
    "exchange requested": frozenset({"exchange requested"}),
    "待处理": frozenset({"pending"}),
    "待发货": frozenset({"pending"}),
    "已处理": frozenset({"processed"}),
    "处理中": frozenset({"processed"}),
    "已送达": frozenset({"delivered"}),
    "已签收": frozenset({"delivered"}),
    "已交付": frozenset({"delivered"}),
    "已妥投": frozenset({"delivered"}),
    "已取消": frozenset({"cancelled"}),
    "退货申请": frozenset({"return requested"}),
    "已申请退货": frozenset({"return requested"}),
    "退货中": frozenset({"return requested"}),
    "换货申请": frozenset({"exchange requested"}),
    "已申请换货": frozenset({"exchange requested"}),
    "换货中": frozenset({"exchange requested"}),
}
STATUS_RE = re.compile("|".join(
    rf"\b{re.escape(w)}\b" if w.isascii() else re.escape(w) for w in sorted(STATUS_WORDS, key=len, reverse=True)),
    re.I)
# A status word after these states a rule or a future ("only pending orders can be cancelled", "将变为已取消"),
# not what the order is now.
_NOT_A_CLAIM_EN = {"only", "can", "cannot", "can't", "could", "be", "become", "becomes", "will", "would", "once",
                   "if", "not", "no", "never", "unless", "until", "longer"}
_NOT_A_CLAIM_ZH = re.compile(r"只有|才能|可以|可|将|会|能|变为|变成|未|不|没有|无法")


@dataclass
class _Mention:
    start: int
    end: int
    kind: str  # id (an order or a review, as the store says), order, product, review, customer, segment, name
    key: str
    text: str


@dataclass
class _Found:
    start: int
    end: int
    kind: str  # status, amount, date, tracking_id, long_number, rating, percent, number
    value: str  # as written
    norm: Any = None  # parsed value


# -- what the store says ------------------------------------------------------------------------------------------


def _money(x: Any) -> Decimal:
    return Decimal(str(x)).quantize(Decimal("0.01"))


def _dec(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None


def _same_number(shown: Decimal, actual: Decimal) -> bool:
    """True if `actual` reads as `shown` at the precision it is shown with ("$54" is 54.04, "4.4" is 4.43)."""
    places = max(0, -shown.as_tuple().exponent)
    return abs(shown - actual) <= Decimal(5) / (Decimal(10) ** (places + 1)) + Decimal("1e-9")


@dataclass
class _OrderFacts:
    id: str
    customer_id: str
    status: str
    amounts: set[Decimal]
    dates: set[str]
    tracking: set[str]
    item_ids: set[str]
    product_ids: set[str]
    names: set[str]


@dataclass
class _ProductFacts:
    id: str
    name: str
    prices: set[Decimal]
    ratings: list[float]  # the catalog's rating, and the mean of the product's reviews
    variant_ids: set[str]
    dates: set[str]


class Auditor:
    """Checks messages against one store; the catalog (names, id shapes) is read once, orders at every message."""

    def __init__(self, store, *, segments: Iterable[str] | None = None):
        self.store = store
        with store.read() as s:
            self.product_names: dict[str, list[str]] = {}
            for pid, name in s.execute(select(Product.id, Product.name)):
                if name and len(name.strip()) >= 3:
                    self.product_names.setdefault(name.strip(), []).append(pid)
            self.order_shapes = {(oid.lstrip("#")[:1], len(oid.lstrip("#"))) for oid in s.scalars(select(Order.id))}
        names = sorted(self.product_names, key=len, reverse=True)
        self.name_re = re.compile(
            "|".join(rf"(?<![A-Za-z0-9]){re.escape(n)}(?![A-Za-z0-9])" for n in names)) if names else None
        if segments is None:
            try:
                from tools.analytics.rfm import SEGMENTS

                segments = SEGMENTS
            except ImportError:  # analytics not installed: no segment entities
                segments = ()
        self.segments = sorted(segments, key=len, reverse=True)
        self.segment_re = re.compile("|".join(rf"(?<![A-Za-z]){re.escape(n)}(?![A-Za-z])" for n in self.segments)) \
            if self.segments else None

    # -- store lookups, fresh per message (a write between turns changes them) ----------------------------------

    def _lookup(self, ids: set[str], customers: set[str], numbers: set[str]) -> dict[str, Any]:
        """The store's rows for the ids a message names: orders, reviews, products, items, tracking numbers."""
        found: dict[str, Any] = {"order": {}, "product": {}, "review": {}, "customer": {}, "tracking": {},
                                 "variant": {}, "order_digits": {}}
        orders = {"#" + i for i in ids}
        with self.store.read() as s:
            for rid in ids:
                if (r := s.get(Review, rid)) is not None:
                    found["review"][rid] = r
            products = set()
            for n in numbers:
                if s.get(Product, n) is not None:
                    products.add(n)
                elif (v := s.get(Variant, n)) is not None:
                    found["variant"][n] = v.product_id
            for n in numbers:
                for f in s.scalars(select(Fulfillment).where(Fulfillment.tracking_id.like(f"%{n}%"))):
                    if n in f.tracking_id.split(","):  # a fulfillment may hold several ids, comma-separated
                        found["tracking"][n] = f.order_id
                if n not in found["tracking"] and n not in found["variant"] and n not in products:
                    hits = [o for o in s.scalars(select(Order.id).where(Order.id.like(f"%{n}")))
                            if o.lstrip("#").lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == n]
                    if len(hits) == 1:  # an order id written without its letters ("2611340")
                        found["order_digits"][n] = hits[0]
            orders |= set(found["tracking"].values()) | set(found["order_digits"].values())
            for oid in orders:
                o = s.scalar(select(Order).where(Order.id == oid).options(
                    selectinload(Order.items), selectinload(Order.fulfillments), selectinload(Order.payments)))
                if o is not None:
                    found["order"][oid] = self._order_facts(s, o)
            for pid in products:
                p = s.scalar(select(Product).where(Product.id == pid).options(selectinload(Product.variants)))
                found["product"][pid] = self._product_facts(s, p)
            for c in customers:
                cust = s.get(Customer, c) or s.scalars(select(Customer).where(Customer.email == c)).first()
                if cust is not None:
                    found["customer"][c] = cust.id
        return found

    def _order_facts(self, s, o: Order) -> _OrderFacts:
        amounts: set[Decimal] = {_money(o.total)}
        prices = [_money(li.unit_price) for li in o.items]
        for li in o.items:
            amounts.add(_money(li.unit_price) * (li.quantity or 1))
        amounts.add(sum((_money(li.unit_price) * (li.quantity or 1) for li in o.items), Decimal("0.00")))
        for k in range(1, min(len(prices), 8) + 1):  # a return or cancel of some of the items
            for combo in combinations(prices, k):
                amounts.add(sum(combo, Decimal("0.00")))
        net: dict[str | None, Decimal] = {}
        refunds = Decimal("0.00")
        for p in o.payments:
            amounts.add(_money(p.amount))
            sign = 1 if p.kind == "payment" else -1
            net[p.payment_method_id] = net.get(p.payment_method_id, Decimal("0")) + sign * _money(p.amount)
            refunds += _money(p.amount) if p.kind == "refund" else 0
        amounts |= {abs(v) for v in net.values()} | {refunds}
        for key in ("return_refund_amount", "exchange_price_difference"):
            if (o.details or {}).get(key) is not None:
                amounts.add(abs(_money(o.details[key])))
        product_ids = {li.product_id for li in o.items if li.product_id}
        variants = list(s.scalars(select(Variant).where(Variant.product_id.in_(product_ids)))) if product_ids else []
        amounts |= {_money(v.price) for v in variants}  # the options an item can change to, and their prices
        per_item = []
        for li in o.items:
            diffs = {abs(_money(v.price) - _money(li.unit_price)) for v in variants if v.product_id == li.product_id}
            amounts |= diffs
            per_item.append({_money(v.price) - _money(li.unit_price) for v in variants
                             if v.product_id == li.product_id})
        if 2 <= len(per_item) <= 3:  # several items changed at once: the differences add up
            sums = {Decimal("0")}
            for diffs in per_item:
                sums |= {a + d for a in sums for d in diffs}
            amounts |= {abs(x) for x in sums}
        for pm in s.scalars(select(PaymentMethod).where(PaymentMethod.customer_id == o.customer_id)):
            if pm.balance is not None:
                amounts.add(_money(pm.balance))
        dates = {o.created_at.date().isoformat(), o.updated_at.date().isoformat()}
        dates |= {f.shipped_at.date().isoformat() for f in o.fulfillments if f.shipped_at}
        dates |= {p.created_at.date().isoformat() for p in o.payments if p.created_at}
        return _OrderFacts(
            id=o.id, customer_id=o.customer_id, status=o.status, amounts=amounts, dates=dates,
            tracking={t for f in o.fulfillments for t in f.tracking_id.split(",") if t},
            item_ids={li.variant_id for li in o.items if li.variant_id} | {v.id for v in variants},
            product_ids=product_ids, names={li.name for li in o.items if li.name},
        )

    def _product_facts(self, s, p: Product) -> _ProductFacts:
        reviews = list(s.execute(select(Review.rating, Review.created_at).where(Review.product_id == p.id)))
        ratings = [p.rating] if p.rating is not None else []
        if reviews:  # what the search index shows when the catalog states none, and what insights average
            ratings.append(sum(r for r, _ in reviews) / len(reviews))
        dates = {d.date().isoformat() for _, d in reviews if d}
        if p.updated_at:
            dates.add(p.updated_at.date().isoformat())
        prices = {_money(v.price) for v in p.variants}
        for text in (p.name, p.brand):  # "$100 Nintendo eShop Gift Card (4 X $25)": amounts of the name itself
            prices |= {_money(_dec(m.group(1) or m.group(2))) for m in AMOUNT_RE.finditer(text or "")}
        return _ProductFacts(id=p.id, name=p.name, prices=prices, ratings=ratings,
                             variant_ids={v.id for v in p.variants}, dates=dates)

    # -- the audit ------------------------------------------------------------------------------------------------

    def audit(self, text: str, *, customer_id: str | None = None, results: Iterable[Any] = (),
              typed: Iterable[str] = ()) -> list[WrongFact]:
        """The wrong facts of `text`: a customer's message when `customer_id` is given (only their own orders may be
        named), else a marketer's; `results` are the conversation's tool results ((name, result) pairs or results),
        `typed` what the person wrote (an id they typed may be echoed back, with no facts about it).
        """
        typed = list(typed)
        masked = _mask_quotes(text)
        lines = masked.split("\n")
        per_line = [self._mentions(line, customer_id is None) for line in lines]
        ids = {m.key for ms in per_line for m in ms if m.kind == "id"}
        found = self._lookup(
            ids={_core(i) for i in ids},
            customers={m.key for ms in per_line for m in ms if m.kind == "customer"},
            numbers={m.group(0) for line in lines for m in LONG_NUMBER_RE.finditer(line)},
        )
        for ms in per_line:
            for m in ms:
                if m.kind == "id":
                    core = _core(m.key)
                    if "#" + core in found["order"]:
                        m.kind, m.key = "order", "#" + core
                    elif core in found["review"]:
                        m.kind, m.key = "review", core
                    elif m.key.startswith("#") or (core[:1], len(core)) in self.order_shapes:
                        m.kind, m.key = "order", "#" + core  # names an order that does not exist
            ms[:] = [m for m in ms if m.kind != "id"]
        echo = {"#" + _core(m.group(0)) for t in typed for m in ORDER_ID_RE.finditer(t)}
        echo |= {m.group(0) for t in typed for m in LONG_NUMBER_RE.finditer(t)}
        check = _Checker(self, found, customer_id, echo, _ResultFacts(results))
        carried: tuple[str, str] | None = None
        for line, original, mentions in zip(lines, text.split("\n"), per_line, strict=True):
            if not line.strip():
                carried = None
                continue
            is_row = line.lstrip().startswith("|")
            if is_row and set(line.strip()) <= set("|-: "):
                continue
            check.line = original.strip()
            after = check.run_line(line, mentions, carried)
            if not is_row and (after is None or after[0] != "review"):
                carried = after  # a table row, and a cited review, keep their entity to themselves
        return check.wrong

    def _mentions(self, line: str, marketer: bool) -> list[_Mention]:
        """Entities named on a line: orders, products (by id or catalog name), reviews, customers, segments."""
        out: list[_Mention] = []
        taken: list[tuple[int, int]] = []

        def add(start: int, end: int, kind: str, key: str) -> None:
            if any(a < end and start < b for a, b in taken):
                return
            taken.append((start, end))
            out.append(_Mention(start, end, kind, key, line[start:end]))

        if self.name_re is not None:
            for m in self.name_re.finditer(line):
                add(m.start(), m.end(), "name", m.group(0))
        for m in EMAIL_RE.finditer(line):
            add(m.start(), m.end(), "customer", m.group(0))
        for m in ORDER_ID_RE.finditer(line):  # an order or a review (R00000001): the store tells which
            add(m.start(), m.end(), "id", m.group(0))
        for m in CUSTOMER_RE.finditer(line):
            add(m.start(), m.end(), "customer", m.group(0))
        if marketer and self.segment_re is not None:
            for m in self.segment_re.finditer(line):
                if _is_segment_mention(line, m.start(), m.end()):
                    add(m.start(), m.end(), "segment", m.group(0))
        return sorted(out, key=lambda x: x.start)


def _is_segment_mention(line: str, start: int, end: int) -> bool:
    """A segment name in a table cell of its own, or next to the word "segment" (not "New" or "Lost" in a sentence).
    A Chinese rendering shows the name in brackets after its translation ("| 冠军客户(Champions) |"): the two count
    as one.
    """
    before, after = line[:start].rstrip(), line[end:].lstrip()
    if re.search(r"[\u4e00-\u9fff][(（]$", before) and after[:1] in (")", "）"):
        before, after = re.sub(r"[\u4e00-\u9fff]+[(（]$", "", before).rstrip(), after[1:].lstrip()
    if before.endswith("|") and after.startswith("|"):
        return True
    return bool(re.search(r"(?:segment|Segment|segments|分群|细分)\s*[:：]?\s*$", before)
                or re.match(r"(?:segment\b|分群)", after))


def _core(order_id: str) -> str:
    return order_id.replace("#", "").replace(" ", "")


def _mask_quotes(text: str) -> str:
    """`text` with quoted spans blanked (same length, newlines kept): quotes are data, not the bot's claims."""
    chars = list(text)
    for rx in QUOTE_RES:
        for m in rx.finditer("".join(chars)):
            for i in range(m.start(), m.end()):
                if chars[i] != "\n":
                    chars[i] = " "
    return "".join(chars)


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


class _ResultFacts:
    """The facts the conversation's tool results state, by the entity each is about (for analytics numbers)."""

    def __init__(self, results: Iterable[Any]):
        self.numbers: dict[str | None, list[Decimal]] = {}
        self.dates: dict[str | None, set[str]] = {}
        for item in results:
            result = item[1] if isinstance(item, tuple) and len(item) == 2 else item
            facts = getattr(result, "facts", None)
            for f in facts() if callable(facts) else ():  # tools.results.Fact
                self._add(_norm_about(f.about), f.value)
            self._walk(to_jsonable(result), None)

    def _add(self, about: str | None, value: Any) -> None:
        if value is None or isinstance(value, bool):
            return
        if isinstance(value, (int, float, Decimal)):
            self.numbers.setdefault(about, []).append(Decimal(str(value)))
            return
        text = str(value)
        for m in DATE_RES[0].finditer(text):
            self.dates.setdefault(about, set()).add(m.group(0))
        for token in re.findall(r"\d[\d,]*(?:\.\d+)?%?", text):
            n = _dec(token.rstrip("%"))
            if n is not None:
                self.numbers.setdefault(about, []).extend([n, n / 100] if token.endswith("%") else [n])

    def _walk(self, data: Any, about: str | None, top: bool = True) -> None:
        """Every number and date of a result's data, bound to the customer, order or segment of the row it is in
        (the result's own top-level fields are about the result as a whole).
        """
        if isinstance(data, dict):
            if not top:
                if isinstance(data.get("customer_id"), str):
                    about = f"customer:{data['customer_id']}"
                elif isinstance(data.get("order_id"), str):
                    about = f"order:{data['order_id']}"
                elif isinstance(data.get("segment"), str) and about is None:
                    about = f"segment:{data['segment'].lower()}"
            for k, v in data.items():
                if isinstance(k, str) and re.fullmatch(r"\d+(?:\.\d+)?", k):
                    self._add(about, k)
                self._walk(v, about, top=False)
        elif isinstance(data, (list, tuple)):
            self._add(about, len(data))
            for v in data:
                self._walk(v, about, top=False)
        else:
            self._add(about, data)

    def has_number(self, about: str | None, shown: Decimal, percent: bool) -> bool:
        keys = [None] if about is None else [about, None]
        for key in keys:
            for v in self.numbers.get(key, []):
                if _same_number(shown, v * 100 if percent else v):
                    return True
        return False

    def anywhere(self, shown: Decimal, percent: bool) -> bool:
        return any(_same_number(shown, v * 100 if percent else v) for vs in self.numbers.values() for v in vs)

    def has_date(self, about: str | None, value: str) -> bool:
        keys = list(self.dates) if about == "*" else ([None] if about is None else [about, None])
        return any(value in self.dates.get(k, ()) for k in keys)


def _norm_about(about: str | None) -> str | None:
    if not about:
        return None
    kind, _, key = about.partition(":")
    return f"{kind}:{key.lower()}" if kind == "segment" else about


class _Checker:
    """Walks the lines of one message, binding each fact to its entity and checking it."""

    def __init__(self, auditor: Auditor, found: dict[str, Any], customer_id: str | None, echo: set[str],
                 results: _ResultFacts):
        self.a = auditor
        self.found = found
        self.customer_id = customer_id
        self.marketer = customer_id is None
        self.echo = echo  # order ids and numbers the person typed: saying them back states nothing
        self.results = results
        self.wrong: list[WrongFact] = []
        self.line = ""

    def flag(self, kind: str, value: str, about: tuple[str, str] | None, why: str) -> None:
        label = f"{about[0]}:{about[1]}" if about else None
        fact = WrongFact(kind=kind, value=value, about=label, why=why, line=self.line)
        if fact not in self.wrong:
            self.wrong.append(fact)

    # -- entities ---------------------------------------------------------------------------------------------

    def _owned_by(self, mention: _Mention, current: tuple[str, str] | None) -> bool:
        """A name or id that is a fact of the current entity (an order's item, a review's product, ...)."""
        if current is None:
            return False
        kind, key = current
        if kind == "order" and (o := self.found["order"].get(key)):
            return (mention.kind == "name" and mention.key in o.names) or (
                mention.kind == "product" and mention.key in o.product_ids)
        if kind == "review" and (r := self.found["review"].get(key)):
            return (mention.kind == "product" and mention.key == r.product_id) or (
                mention.kind == "name" and r.product_id in self.a.product_names.get(mention.key, []))
        if kind == "product" and mention.kind in ("name", "product"):
            return key in self.a.product_names.get(mention.key, []) or key == mention.key
        return kind == "customer" and mention.kind == "segment"  # the segment column of a customer's row

    def _entity(self, mention: _Mention) -> tuple[str, str]:
        """The entity a mention names, flagging ids that name nothing (or someone else's order)."""
        if mention.kind == "order":
            o = self.found["order"].get(mention.key)
            if o is None:
                if mention.key not in self.echo:
                    self.flag("order_id", mention.text, None, "no such order in the shop")
            elif self.customer_id and o.customer_id != self.customer_id and mention.key not in self.echo:
                self.flag("order_id", mention.text, ("order", mention.key), "an order of another customer")
            return ("order", mention.key)
        if mention.kind == "name":
            ids = self.a.product_names.get(mention.key, [])
            return ("product", ids[0]) if len(ids) == 1 else ("name", mention.key)
        if mention.kind == "customer":
            cid = self.found["customer"].get(mention.key)
            if cid is None:
                self.flag("customer_id", mention.text, None, "no such customer in the shop")
                return ("customer", mention.key)
            if self.customer_id and cid != self.customer_id:
                self.flag("customer_id", mention.text, ("customer", cid), "another customer")
            return ("customer", cid)
        if mention.kind == "segment":
            return ("segment", mention.key.lower())
        return (mention.kind, mention.key)

    # -- one line ---------------------------------------------------------------------------------------------

    def run_line(self, line: str, mentions: list[_Mention], carried: tuple[str, str] | None) -> tuple[str, str] | None:
        """Check one line; returns the entity a following line without one of its own belongs to."""
        extra = []  # long numbers that name a product, or an order without its letters; the rest are facts
        for m in LONG_NUMBER_RE.finditer(line):
            if any(x.start <= m.start() < x.end for x in mentions):
                continue
            if m.group(0) in self.found["product"]:
                extra.append(_Mention(m.start(), m.end(), "product", m.group(0), m.group(0)))
            elif m.group(0) in self.found["order_digits"]:
                extra.append(_Mention(m.start(), m.end(), "order", self.found["order_digits"][m.group(0)], m.group(0)))
        mentions = sorted(mentions + extra, key=lambda x: x.start)
        bounds = [0] + [m.end() for m in SENTENCE_END_RE.finditer(line)
                        if not any(x.start < m.end() < x.end for x in mentions)] + [len(line)]
        current = carried
        for lo, hi in itertools.pairwise(bounds):
            if lo < hi:
                current = self._sentence(line, lo, hi, [m for m in mentions if lo <= m.start < hi], current)
        return current

    def _sentence(self, line: str, lo: int, hi: int, mentions: list[_Mention],
                  carried: tuple[str, str] | None) -> tuple[str, str] | None:
        text = line
        anchors: list[tuple[int, tuple[str, str]]] = []  # where each entity of this sentence is named
        for m in mentions:
            text = _blank(text, m.start, m.end)
            if self._owned_by(m, anchors[-1][1] if anchors else carried):
                continue
            anchors.append((m.start, self._entity(m)))

        def owner_at(pos: int) -> tuple[str, str] | None:
            before = [e for p, e in anchors if p <= pos]
            return before[-1] if before else anchors[0][1] if anchors else carried

        for f in _extract(text, lo, hi, marketer=self.marketer):
            self._check(f, owner_at(f.start), own=bool(anchors))
        return anchors[-1][1] if anchors else carried

    # -- one fact ---------------------------------------------------------------------------------------------

    def _check(self, f: _Found, about: tuple[str, str] | None, own: bool) -> None:
        kind = about[0] if about else None
        if kind == "order":
            self._check_order(f, about)
        elif kind == "product":
            self._check_product(f, about)
        elif kind == "review":
            self._check_review(f, about)
        elif kind in ("customer", "segment") and self.marketer:
            self._check_analytics(f, about, strict=own)
        else:
            self._check_unbound(f)

    def _check_order(self, f: _Found, about: tuple[str, str]) -> None:
        o: _OrderFacts | None = self.found["order"].get(about[1])
        if f.kind in ("number", "percent", "rating"):
            return  # counts of items and the like: not an order's fact the store keeps
        if o is None:
            self.flag(f.kind, f.value, about, "said about an order that does not exist")
            return
        if self.customer_id and o.customer_id != self.customer_id:
            self.flag(f.kind, f.value, about, "a fact about another customer's order")
            return
        if f.kind == "status":
            if o.status not in f.norm:
                self.flag("status", f.value, about, f"the order is {o.status}")
        elif f.kind == "amount":
            if not any(_same_number(f.norm, a) for a in o.amounts):
                self.flag("amount", f.value, about, "not this order's total, an item price, a payment or a refund")
        elif f.kind == "date":
            if f.norm not in o.dates:
                self.flag("date", f.value, about, "not a date of this order")
        elif f.kind == "tracking_id":
            if f.norm not in o.tracking:
                other = self.found["tracking"].get(f.norm)
                self.flag("tracking_id", f.value, about,
                          f"the tracking number of order {other}" if other else "not a tracking number of this order")
        elif f.kind == "long_number":
            n = f.norm
            if n in o.tracking or n in o.item_ids or n in o.product_ids:
                return
            if n in self.found["tracking"]:
                self.flag("tracking_id", f.value, about, f"the tracking number of order {self.found['tracking'][n]}")
            elif n in self.found["variant"]:
                self.flag("item_id", f.value, about, "not an item of this order")
            elif n not in self.echo:
                self.flag("number", f.value, about, "no tracking number, item or product of the shop has this id")

    def _check_product(self, f: _Found, about: tuple[str, str]) -> None:
        p: _ProductFacts | None = self.found["product"].get(about[1])
        if p is None:
            with self.a.store.read() as s:
                row = s.scalar(select(Product).where(Product.id == about[1]).options(selectinload(Product.variants)))
                p = self.a._product_facts(s, row) if row is not None else None
            self.found["product"][about[1]] = p
        if p is None:
            return
        if f.kind == "amount":
            if not any(_same_number(f.norm, a) for a in p.prices):
                self.flag("price", f.value, about, "not a price of this product")
        elif f.kind == "rating":
            if not p.ratings:
                self.flag("rating", f.value, about, "the product has no rating")
            elif not any(_same_number(f.norm, Decimal(str(r))) for r in p.ratings):
                self.flag("rating", f.value, about, f"the catalog rating is {p.ratings[0]:g}")
        elif f.kind == "date":
            if f.norm not in p.dates and not self.results.has_date("*", f.norm):
                self.flag("date", f.value, about, "not a date of this product or its reviews")
        elif f.kind == "tracking_id":
            self.flag("tracking_id", f.value, about, "a tracking number said about a product")
        elif f.kind == "long_number":
            if f.norm not in p.variant_ids and f.norm != p.id:
                self._check_unbound(f)
        elif self.marketer and f.kind in ("number", "percent"):
            self._check_unbound(f)

    def _check_review(self, f: _Found, about: tuple[str, str]) -> None:
        r = self.found["review"].get(about[1])
        if r is None:
            if f.kind in ("rating", "date"):
                self.flag(f.kind, f.value, about, "no such review")
            return
        if f.kind == "rating":
            if not _same_number(f.norm, Decimal(r.rating)):
                self.flag("rating", f.value, about, f"the review gave {r.rating} stars")
        elif f.kind == "date":
            if r.created_at is not None and f.norm != r.created_at.date().isoformat():
                self.flag("date", f.value, about, "not the date of this review")
        elif f.kind == "long_number":
            if f.norm != r.product_id:
                self._check_unbound(f)
        elif self.marketer and f.kind in ("number", "percent", "amount"):
            self._check_unbound(f)

    def _check_analytics(self, f: _Found, about: tuple[str, str], strict: bool) -> None:
        """Numbers about a customer or a segment: stated for it by a tool result (or by the result as a whole).
        A line that only follows an entity's line is held to the conversation's results as a whole.
        """
        key = f"{about[0]}:{about[1]}"
        if f.kind == "date":
            if not self.results.has_date(key if strict else "*", f.norm):
                self.flag("date", f.value, about, "no tool result states this date for it")
        elif f.kind in ("amount", "percent", "number", "rating"):
            percent = f.kind == "percent"
            ok = self.results.has_number(key, f.norm, percent) if strict else self.results.anywhere(f.norm, percent)
            if not ok:
                self.flag(f.kind, f.value, about, "no tool result states this number for it")
        else:
            self._check_unbound(f)

    def _check_unbound(self, f: _Found) -> None:
        """A fact with no entity: a marketer's numbers must be in some tool result; ids must exist (and be the
        customer's); the rest cannot be bound, so is not judged.
        """
        if self.marketer and f.kind in ("number", "amount", "percent", "rating", "date"):
            if f.kind == "date":
                if not self.results.has_date("*", f.norm):
                    self.flag("date", f.value, None, "no tool result states this date")
            elif not self.results.anywhere(f.norm, f.kind == "percent"):
                self.flag(f.kind, f.value, None, "no tool result states this number")
            return
        if f.kind not in ("tracking_id", "long_number") or f.norm in self.echo:
            return
        n = f.norm
        if n in self.found["tracking"]:
            order = self.found["order"].get(self.found["tracking"][n])
            if self.customer_id and order is not None and order.customer_id != self.customer_id:
                self.flag("tracking_id", f.value, None, "the tracking number of another customer's order")
        elif f.kind == "tracking_id":
            self.flag("tracking_id", f.value, None, "not a tracking number of any order")
        elif n not in self.found["variant"] and n not in self.found["product"] and n not in self.found["order_digits"]:
            self.flag("number", f.value, None, "no tracking number, item or product of the shop has this id")


def _extract(text: str, lo: int, hi: int, *, marketer: bool) -> list[_Found]:
    """The facts stated in text[lo:hi] (entity names already blanked), each consumed once."""
    seg = " " * lo + text[lo:hi] + " " * (len(text) - hi)
    out: list[_Found] = []
    for m in METRIC_NAME_RE.finditer(seg):
        seg = _blank(seg, m.start(), m.end())
    for m in TRACKING_LABEL_RE.finditer(seg):
        pos = m.end()
        while True:
            v = TRACKING_VALUE_RE.match(seg, pos)
            if v is None:
                break
            out.append(_Found(v.start(), v.end(), "tracking_id", v.group(0), v.group(0)))
            seg = _blank(seg, v.start(), v.end())
            more = re.compile(r"\s*(?:,|、|/|and|和)\s*(?=\d)").match(seg, v.end())
            if more is None:
                break
            pos = more.end()
    for rx in DATE_RES:
        for m in rx.finditer(seg):
            iso = _iso_date(m)
            if iso:
                out.append(_Found(m.start(), m.end(), "date", m.group(0), iso))
                seg = _blank(seg, m.start(), m.end())
    for m in LONG_NUMBER_RE.finditer(seg):
        out.append(_Found(m.start(), m.end(), "long_number", m.group(0), m.group(0)))
        seg = _blank(seg, m.start(), m.end())
    for m in AMOUNT_RE.finditer(seg):
        n = _dec(m.group(1) or m.group(2))
        if n is not None:
            out.append(_Found(m.start(), m.end(), "amount", m.group(0).strip(), n))
            seg = _blank(seg, m.start(), m.end())
    for m in RATING_RE.finditer(seg):
        n = _dec(m.group(1) or m.group(2))
        if n is not None and n <= 5:
            out.append(_Found(m.start(), m.end(), "rating", m.group(0).strip(), n))
            seg = _blank(seg, m.start(), m.end())
    for m in PERCENT_RE.finditer(seg):
        n = _dec(m.group(1))
        if n is not None:
            out.append(_Found(m.start(), m.end(), "percent", m.group(0), n))
            seg = _blank(seg, m.start(), m.end())
    for m in STATUS_RE.finditer(seg):
        if _is_status_claim(seg, m.start()):
            out.append(_Found(m.start(), m.end(), "status", m.group(0), STATUS_WORDS[_status_key(m.group(0))]))
    if marketer:
        for m in PLAIN_NUMBER_RE.finditer(seg):
            n = _dec(m.group(0))
            if n is not None:
                out.append(_Found(m.start(), m.end(), "number", m.group(0), n))
    return sorted(out, key=lambda f: f.start)


def _status_key(word: str) -> str:
    return word if word in STATUS_WORDS else word.lower()


def _is_status_claim(text: str, start: int) -> bool:
    """Does the status word at `start` say what the order is (not a rule, a future or a negation)?"""
    clause = re.split(r"[,，。;；:：!?！？]", text[max(0, start - 40):start])[-1]
    if _NOT_A_CLAIM_ZH.search(clause):
        return False
    words = re.findall(r"[A-Za-z']+", clause.lower())[-3:]
    return not (set(words) & _NOT_A_CLAIM_EN)


def _iso_date(m: re.Match) -> str | None:
    a, b, c = m.groups()
    try:
        if a.isdigit():
            return date(int(a), int(b), int(c)).isoformat()
        month = next(i for i, name in enumerate(_MONTHS, 1) if name.startswith(a.lower()[:3]))
        return date(int(c), month, int(b)).isoformat()
    except (ValueError, StopIteration):
        return None


def audit(text: str, store, *, customer_id: str | None = None, results: Iterable[Any] = (),
          typed: Iterable[str] = ()) -> list[WrongFact]:
    """The wrong facts in one assistant message (see Auditor.audit); builds the catalog index each call."""
    return Auditor(store).audit(text, customer_id=customer_id, results=results, typed=typed)


__all__ = ["Auditor", "WrongFact", "audit"]
