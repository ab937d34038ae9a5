"""Per-customer features as of a date, computed by SQL aggregates inside the database (SQLite or PostgreSQL).

Only rows dated before the cut-off take part, so a feature table as of D never sees what happened after D.
A purchase is any order that was not cancelled and is not a return document (a negative total: an imported credit
note); cancellations and returns are counted on their own.
Each order is one purchase occasion (importers merge same-day transactions of a customer, as the BG/NBD papers do).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Integer, and_, case, func, select
from sqlalchemy.sql.elements import ColumnElement

from store.db import Store
from store.models import Conversation, Customer, Event, Message, Order, Review, Ticket
from tools.analytics.intents import stated_purchase_intent

EPOCH = datetime(1970, 1, 1)
RECENT_ORDERS_DAYS = 90  # window of the "orders in the last 90 days" trend features
RECENT_SPEND_DAYS = 180  # window of the spend trend features
PURCHASE_STATUSES_EXCLUDED = ("cancelled",)
RETURN_STATUSES = ("return requested",)

FEATURES = [
    "recency_days",
    "frequency",
    "monetary_total",
    "avg_order_value",
    "tenure_days",
    "mean_gap_days",
    "overdue_ratio",
    "timing_skew",
    "orders_90d",
    "orders_prev_90d",
    "spend_180d",
    "spend_prev_180d",
    "spend_trend",
    "cancel_share",
    "return_share",
    "review_mean_rating",
    "review_count",
    "support_contacts",
    "return_value_share",
    "season_share",
    "bgnbd_p_alive",
    "bgnbd_expected_orders",
]
# Journey signals (store.models.Event, support messages, handoff tickets). Not in FEATURES: on the 5,000-customer
# sample shop they moved the churn AUC by +0.0006 (as of 2026-05-31) and +0.0017 (2026-07-31), within noise, and the
# top-decile lift by 0 and -0.005 (bench/churn_journey_signals.py). Shops with real event exports can measure again.
JOURNEY_FEATURES = [
    "views_30d",
    "views_90d",
    "carts_90d",
    "browse_recency_days",
    "abandoned_cart_days_90d",
    "negative_support_messages",
    "open_handoffs",
]
# What customers' own words say (tools.analytics.intents.stated_purchase_intent over their reviews and support
# messages): how many texts say they will buy again, abandon, or wait. Computed with the journey signals, and not in
# FEATURES either: on the sample shop they moved the churn AUC by +0.0002 and -0.0006 (bench/churn_journey_signals.py,
# bench/README.md), and its reviews' words follow their stars, which are a feature already.
WORDS_FEATURES = ["said_buy_again", "said_abandon", "said_wait"]
SAID = {"buy again": "said_buy_again", "abandon": "said_abandon", "wait": "said_wait"}
BGNBD_FIT_ROWS = 20_000  # as in value.py: a sample this size pins BG/NBD's four parameters down


@dataclass(frozen=True)
class DataSpan:
    """First and last order dates in the shop (None when there are no orders)."""

    first: datetime | None
    last: datetime | None
    orders: int
    customers: int


def cutoff_of(as_of: date) -> datetime:
    """Orders on the as-of day count: the cut-off is the start of the next day."""
    return datetime.combine(as_of, datetime.min.time()) + timedelta(days=1)


def day_number(col, dialect: str) -> ColumnElement:
    """Days since 1970-01-01 (float) of a timestamp column, computed by the database."""
    if dialect == "sqlite":
        return func.julianday(col) - 2440587.5
    return func.extract("epoch", col) / 86400.0


def to_day_number(moment: datetime) -> float:
    """Days since EPOCH, with the fraction of the day."""
    return (moment - EPOCH).total_seconds() / 86400.0


def data_span(store: Store) -> DataSpan:
    """The first and last order times, the number of orders and the number of customers."""
    with store.read() as s:
        first, last, n = s.execute(select(func.min(Order.created_at), func.max(Order.created_at), func.count())).one()
        customers = s.execute(select(func.count()).select_from(Customer)).scalar_one()
    if isinstance(first, str):  # aggregates on SQLite may come back as text
        first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
    return DataSpan(first, last, int(n), int(customers))


def _purchase_aggregates(store: Store, cutoffs: list[datetime], horizon_days: int = 90) -> list[pd.DataFrame]:
    """One grouped scan of the orders for all cut-offs: filtered aggregates per cut-off, grouped by customer.

    FILTER clauses skip the rows an aggregate does not want (cheaper than CASE inside SUM: half the CPU on SQLite);
    windows compare the raw timestamp column, and only the first, last and mean purchase times go through the
    database's date arithmetic. The scan follows the (customer_id, created_at) index, so grouping needs no sort.
    Large shops are split into customer ranges scanned by parallel connections.
    """
    o = Order.__table__
    queries = []
    for lo, hi in _customer_ranges(store):
        q = _purchase_query(store.engine.dialect.name, cutoffs, horizon_days)
        if lo is not None:
            q = q.where(o.c.customer_id >= lo)
        if hi is not None:
            q = q.where(o.c.customer_id < hi)
        queries.append(q)
    if len(queries) == 1:
        frames = [_frame(store, queries[0])]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(queries)) as pool:
            frames = list(pool.map(lambda q: _frame(store, q), queries))
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df = df.set_index("customer_id")
    out = []
    for k in range(len(cutoffs)):
        part = df[[c for c in df.columns if c.endswith(f"_{k}")]].rename(columns=lambda c: c.rsplit("_", 1)[0])
        out.append(part)
    return out


def horizon_months(cut: datetime, horizon_days: int) -> list[int]:
    """The calendar months the horizon after a cut-off touches (the season the churn label is about)."""
    return sorted({(cut + timedelta(days=d)).month for d in range(0, max(horizon_days, 1), 7)})


def _purchase_query(dialect: str, cutoffs: list[datetime], horizon_days: int = 90):
    o = Order.__table__
    last_cut = max(cutoffs)
    bought = and_(o.c.status.notin_(PURCHASE_STATUSES_EXCLUDED), o.c.total >= 0)
    # SQLite keeps timestamps as ISO text: the month is characters 6-7 (cheaper than strftime on every row).
    month = func.substr(o.c.created_at, 6, 2).cast(Integer) if dialect == "sqlite" else func.extract(
        "month", o.c.created_at)
    cols = [o.c.customer_id.label("customer_id")]
    for k, cut in enumerate(cutoffs):

        def within(*conds, days: tuple[int, int] | None = None, cut=cut):
            """Filter: the order is before this cut-off, and inside [cut - days[0], cut - days[1]) if given."""
            parts = list(conds)
            if days is not None:
                parts.append(o.c.created_at >= cut - timedelta(days=days[0]))
            if days is not None and days[1]:
                parts.append(o.c.created_at < cut - timedelta(days=days[1]))
            elif cut != last_cut:
                parts.append(o.c.created_at < cut)
            return and_(*parts) if parts else None

        def agg(expr, *conds, **kw):
            cond = within(*conds, **kw)
            return expr if cond is None else expr.filter(cond)

        cols += [
            agg(func.count()).label(f"orders_all_{k}"),
            agg(func.count(), bought).label(f"frequency_{k}"),
            agg(func.count(), o.c.status.in_(RETURN_STATUSES)).label(f"returned_{k}"),
            agg(func.count(), o.c.status.in_(PURCHASE_STATUSES_EXCLUDED)).label(f"cancelled_{k}"),
            agg(func.sum(-o.c.total), o.c.total < 0).label(f"returned_value_{k}"),
            agg(func.count(), bought, month.in_(horizon_months(cut, horizon_days))).label(f"season_orders_{k}"),
            day_number(agg(func.min(o.c.created_at), bought), dialect).label(f"first_day_{k}"),
            day_number(agg(func.max(o.c.created_at), bought), dialect).label(f"last_day_{k}"),
            agg(func.avg(day_number(o.c.created_at, dialect)), bought).label(f"mean_day_{k}"),
            agg(func.sum(o.c.total), bought).label(f"monetary_total_{k}"),
            agg(func.count(), bought, days=(RECENT_ORDERS_DAYS, 0)).label(f"orders_90d_{k}"),
            agg(func.count(), bought, days=(2 * RECENT_ORDERS_DAYS, RECENT_ORDERS_DAYS)).label(f"orders_prev_90d_{k}"),
            agg(func.sum(o.c.total), bought, days=(RECENT_SPEND_DAYS, 0)).label(f"spend_180d_{k}"),
            agg(func.sum(o.c.total), bought, days=(2 * RECENT_SPEND_DAYS, RECENT_SPEND_DAYS)).label(
                f"spend_prev_180d_{k}"
            ),
        ]
    return select(*cols).where(o.c.created_at < last_cut).group_by(o.c.customer_id)


PARALLEL_FROM_ORDERS = 500_000  # below this one scan is quick; above it, one range per core


def _customer_ranges(store: Store) -> list[tuple[str | None, str | None]]:
    """Customer-id ranges splitting the customers evenly, one per core (a single open range for small shops)."""
    import os

    parts = min(2, os.cpu_count() or 1)
    with store.engine.connect() as conn:
        orders = conn.execute(select(func.count()).select_from(Order.__table__)).scalar_one()
        if parts < 2 or orders < PARALLEL_FROM_ORDERS:
            return [(None, None)]
        c = Customer.__table__
        n = conn.execute(select(func.count()).select_from(c)).scalar_one()
        edges = [
            conn.execute(select(c.c.id).order_by(c.c.id).offset(n * i // parts).limit(1)).scalar_one()
            for i in range(1, parts)
        ]
    bounds = [None, *edges, None]
    return list(itertools.pairwise(bounds))


def _side_aggregates(store: Store, cutoffs: list[datetime], journey: bool = False) -> list[pd.DataFrame]:
    r = Review.__table__
    c = Conversation.__table__
    last_cut = max(cutoffs)
    rev_cols, con_cols = [r.c.customer_id], [c.c.customer_id]
    for k, cut in enumerate(cutoffs):
        rev_cols += [
            func.avg(case((r.c.created_at < cut, r.c.rating), else_=None)).label(f"review_mean_rating_{k}"),
            func.sum(case((r.c.created_at < cut, 1), else_=0)).label(f"review_count_{k}"),
        ]
        con_cols.append(func.sum(case((c.c.started_at < cut, 1), else_=0)).label(f"support_contacts_{k}"))
    qr = select(*rev_cols).where(r.c.customer_id.isnot(None), r.c.created_at < last_cut).group_by(r.c.customer_id)
    qc = (
        select(*con_cols)
        .where(c.c.customer_id.isnot(None), c.c.role == "customer", c.c.started_at < last_cut)
        .group_by(c.c.customer_id)
    )
    reviews, contacts = _frame(store, qr), _frame(store, qc)
    out = []
    for k, cut in enumerate(cutoffs):
        part = reviews[["customer_id", f"review_mean_rating_{k}", f"review_count_{k}"]].merge(
            contacts[["customer_id", f"support_contacts_{k}"]], on="customer_id", how="outer"
        )
        part = part.set_index("customer_id").rename(columns=lambda c: c.rsplit("_", 1)[0]).astype(float)
        out.append(part.join(_journey_aggregates(store, cut), how="outer") if journey else part)
    return out


def _journey_aggregates(store: Store, cut: datetime) -> pd.DataFrame:
    """Journey signals before `cut`, per customer: views in the last 30 and 90 days, carts in the last 90, days since
    the last view, search or cart, days in the last 90 with a cart and no purchase, negative support messages (the
    customer's own words through index.sentiment), handoff tickets still open at `cut`, and WORDS_FEATURES: the
    reviews and support messages whose words say buy again, abandon or wait.
    """
    from index.sentiment import analyze

    dialect = store.engine.dialect.name
    e = Event.__table__
    since90, since30 = cut - timedelta(days=90), cut - timedelta(days=30)
    browse = e.c.kind.in_(("view", "search", "cart"))
    q = (
        select(
            e.c.customer_id,
            func.sum(case((and_(e.c.kind == "view", e.c.occurred_at >= since30), 1), else_=0)).label("views_30d"),
            func.sum(case((and_(e.c.kind == "view", e.c.occurred_at >= since90), 1), else_=0)).label("views_90d"),
            func.sum(case((and_(e.c.kind == "cart", e.c.occurred_at >= since90), 1), else_=0)).label("carts_90d"),
            (to_day_number(cut) - func.max(case((browse, day_number(e.c.occurred_at, dialect)), else_=None)))
            .label("browse_recency_days"),
        )
        .where(e.c.occurred_at < cut)
        .group_by(e.c.customer_id)
    )
    day = func.date(e.c.occurred_at)
    days = (
        select(e.c.customer_id.label("customer_id"),
               func.max(case((e.c.kind == "cart", 1), else_=0)).label("cart"),
               func.max(case((e.c.kind == "purchase", 1), else_=0)).label("bought"))
        .where(e.c.occurred_at >= since90, e.c.occurred_at < cut, e.c.kind.in_(("cart", "purchase")))
        .group_by(e.c.customer_id, day)
        .subquery()
    )
    abandoned = func.sum(case((and_(days.c.cart == 1, days.c.bought == 0), 1), else_=0))
    qa = select(days.c.customer_id, abandoned.label("abandoned_cart_days_90d")).group_by(days.c.customer_id)
    t = Ticket.__table__
    qt = (select(t.c.customer_id, func.count().label("open_handoffs"))
          .where(t.c.customer_id.isnot(None), t.c.created_at < cut,
                 (t.c.resolved_at.is_(None)) | (t.c.resolved_at >= cut))
          .group_by(t.c.customer_id))
    frame = _frame(store, q).set_index("customer_id")
    for extra in (_frame(store, qa), _frame(store, qt)):
        frame = frame.join(extra.set_index("customer_id"), how="outer")
    negative: dict[str, float] = {}
    said: dict[str, dict[str, float]] = {col: {} for col in WORDS_FEATURES}

    def count_said(cid: str, text: str) -> None:
        col = SAID.get(stated_purchase_intent(text) or "")
        if col:
            said[col][cid] = said[col].get(cid, 0.0) + 1.0

    with store.read() as s:
        rows = s.execute(
            select(Conversation.customer_id, Message.content)
            .join(Message, Message.conversation_id == Conversation.id)
            .where(Conversation.role == "customer", Conversation.customer_id.isnot(None), Message.role == "user",
                   Message.created_at < cut)
        )
        for cid, text in rows:
            if text and analyze(text, kind="message").sentiment == "negative":
                negative[cid] = negative.get(cid, 0.0) + 1.0
            if text:
                count_said(cid, text)
        reviews = s.execute(select(Review.customer_id, Review.title, Review.text)
                            .where(Review.customer_id.isnot(None), Review.created_at < cut))
        for cid, title, text in reviews:
            count_said(cid, " ".join(x for x in (title, text) if x))
    # outer join: a customer who wrote to support or reviewed but has no event still counts
    frame = frame.join(pd.Series(negative, dtype=float, name="negative_support_messages"), how="outer")
    for col, counts in said.items():
        frame = frame.join(pd.Series(counts, dtype=float, name=col), how="outer")
    return frame.reindex(columns=JOURNEY_FEATURES + WORDS_FEATURES).astype(float)


def _frame(store: Store, q) -> pd.DataFrame:
    """Run a query into a DataFrame: plain tuples (pandas probing SQLAlchemy rows costs more than the query)."""
    with store.engine.connect() as conn:
        # Straight from the driver's cursor: SQLAlchemy's per-row processing cost more than SQLite's scan.
        rows = conn.execute(q).cursor.fetchall()
    df = pd.DataFrame.from_records(rows, columns=list(q.selected_columns.keys()))
    for col in df.columns[1:]:
        if df[col].dtype == object:  # Decimal sums on PostgreSQL, NULL-only columns
            df[col] = pd.to_numeric(df[col], errors="coerce")
    df[df.columns[1:]] = df[df.columns[1:]].astype(float)
    return df


def build_feature_sets(store: Store, as_ofs: list[date], horizon_days: int = 90,
                       journey: bool = False) -> list[pd.DataFrame]:
    """Feature tables as of several dates from one scan of the orders (e.g. the training and the scoring date).

    Each has one row per customer with at least one purchase on or before its date, indexed by customer id.
    Besides FEATURES it carries the BG/NBD summary (`x` repeat purchases, `t_x`, `T` in weeks), `first_day` and
    `last_day` (days since 1970), and the counts behind the shares (`orders_all`, `cancelled`, `returned`).
    """
    cutoffs = [cutoff_of(d) for d in as_ofs]
    purchases = _purchase_aggregates(store, cutoffs, horizon_days)
    sides = _side_aggregates(store, cutoffs, journey)  # journey: JOURNEY_FEATURES too (not in the default model)
    return [
        _add_bgnbd(_finish(p, s, to_day_number(c)), horizon_days)
        for p, s, c in zip(purchases, sides, cutoffs, strict=True)
    ]


def build_features(store: Store, as_of: date, horizon_days: int = 90, journey: bool = False) -> pd.DataFrame:
    """The feature table as of one date (see build_feature_sets)."""
    return build_feature_sets(store, [as_of], horizon_days, journey)[0]


def _add_bgnbd(df: pd.DataFrame, horizon_days: int, seed: int = 0) -> pd.DataFrame:
    """BG/NBD's view as features: P(alive) and the expected purchases in the horizon, from a fit on this table only
    (so on nothing after its cut-off).
    """
    from tools.analytics import bgnbd

    df["bgnbd_p_alive"] = np.nan
    df["bgnbd_expected_orders"] = np.nan
    fit = df if len(df) <= BGNBD_FIT_ROWS else df.sample(BGNBD_FIT_ROWS, random_state=seed)
    try:
        params = bgnbd.fit_bgnbd(fit["x"], fit["t_x"], fit["T"])
    except ValueError:
        return df
    df.attrs["bgnbd_params"] = params  # the value model fits the same sample: it reuses these
    x, t_x, T = df["x"], df["t_x"], df["T"]
    df["bgnbd_p_alive"] = bgnbd.prob_alive(params, x, t_x, T)
    df["bgnbd_expected_orders"] = np.nan_to_num(bgnbd.expected_purchases(params, x, t_x, T, horizon_days / 7.0),
                                                nan=0.0, posinf=0.0)
    return df


def _finish(df: pd.DataFrame, side: pd.DataFrame, cut: float) -> pd.DataFrame:
    df = df[df["frequency"].fillna(0) > 0].join(side, how="left").sort_index()
    df.index.name = "customer_id"
    f = df["frequency"]
    df["recency_days"] = cut - df["last_day"]
    df["tenure_days"] = cut - df["first_day"]
    df["monetary_total"] = df["monetary_total"].fillna(0.0)
    df["avg_order_value"] = df["monetary_total"] / f
    span = df["last_day"] - df["first_day"]
    df["mean_gap_days"] = (span / (f - 1)).where(f > 1)
    df["overdue_ratio"] = df["recency_days"] / df["mean_gap_days"].where(df["mean_gap_days"] > 0)
    # Where the purchases sit between the first and the last: below 0 they bunch early (slowing down), above 0 late.
    df["timing_skew"] = ((df["mean_day"] - df["first_day"]) / span.where(span > 0) - 0.5).where(f > 2)
    for col in ("orders_90d", "orders_prev_90d", "spend_180d", "spend_prev_180d", "cancelled", "returned",
                "returned_value", "season_orders"):
        df[col] = df[col].fillna(0.0)
    both = df["spend_180d"] + df["spend_prev_180d"]
    df["spend_trend"] = (df["spend_180d"] - df["spend_prev_180d"]) / both.where(both > 0)
    df["cancel_share"] = df["cancelled"] / df["orders_all"]
    df["return_share"] = df["returned"] / df["orders_all"]
    df["return_value_share"] = df["returned_value"] / df["monetary_total"].where(df["monetary_total"] > 0)
    # Seasonality: the share of past purchases that fell in the calendar months the horizon covers.
    df["season_share"] = df["season_orders"] / f
    df["review_count"] = df["review_count"].fillna(0.0)
    df["support_contacts"] = df["support_contacts"].fillna(0.0)
    # no event, message, ticket or stated intent is a count of 0; a browse recency stays unknown
    for col in JOURNEY_FEATURES + WORDS_FEATURES:
        if col in df and col != "browse_recency_days":
            df[col] = df[col].fillna(0.0)
    # BG/NBD summary in weeks: repeat purchases, time of the last one, age at the cut-off.
    df["x"] = (f - 1).clip(lower=0)
    df["t_x"] = span / 7.0
    df["T"] = df["tenure_days"] / 7.0
    return df


def purchased_between(store: Store, start: datetime, end: datetime) -> set[str]:
    """Customers with a purchase in [start, end) — the churn labels' window."""
    o = Order.__table__
    q = (
        select(o.c.customer_id)
        .where(o.c.created_at >= start, o.c.created_at < end, o.c.status.notin_(PURCHASE_STATUSES_EXCLUDED),
               o.c.total >= 0)
        .distinct()
    )
    with store.engine.connect() as conn:
        return {row[0] for row in conn.execute(q)}


def spent_between(store: Store, start: datetime, end: datetime) -> pd.Series:
    """Each customer's purchase spend in [start, end) — the realised value a value prediction is judged on."""
    o = Order.__table__
    q = (
        select(o.c.customer_id, func.sum(o.c.total))
        .where(o.c.created_at >= start, o.c.created_at < end, o.c.status.notin_(PURCHASE_STATUSES_EXCLUDED),
               o.c.total >= 0)
        .group_by(o.c.customer_id)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(q).all()
    return pd.Series({cid: float(v or 0) for cid, v in rows}, dtype=float)
