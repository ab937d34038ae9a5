"""Per-customer features as of a date, computed by SQL aggregates inside the database (SQLite or PostgreSQL).

Only rows dated before the cut-off take part, so a feature table as of D never sees what happened after D.
A purchase is any order that was not cancelled; cancellations and returns are counted on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from store.db import Store
from store.models import Conversation, Customer, Order, Review

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
    "last_gap_days",
    "gap_trend",
    "overdue_ratio",
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
]


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


def day_key(col, dialect: str) -> ColumnElement:
    """The calendar day of a timestamp (for counting distinct purchase days)."""
    if dialect == "sqlite":
        return func.date(col)
    return func.date_trunc("day", col)


def to_day_number(moment: datetime) -> float:
    return (moment - EPOCH).total_seconds() / 86400.0


def data_span(store: Store) -> DataSpan:
    with store.read() as s:
        first, last, n = s.execute(select(func.min(Order.created_at), func.max(Order.created_at), func.count())).one()
        customers = s.execute(select(func.count()).select_from(Customer)).scalar_one()
    if isinstance(first, str):  # aggregates on SQLite may come back as text
        first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
    return DataSpan(first, last, int(n), int(customers))


def _purchase_aggregates(store: Store, cutoff: datetime) -> pd.DataFrame:
    dialect = store.engine.dialect.name
    o = Order.__table__
    day = day_number(o.c.created_at, dialect)
    bought = o.c.status.notin_(PURCHASE_STATUSES_EXCLUDED)
    cut = to_day_number(cutoff)
    total = o.c.total

    def when(cond, value, other=0):
        return case((cond, value), else_=other)

    q = (
        select(
            o.c.customer_id.label("customer_id"),
            func.count().label("orders_all"),
            func.sum(when(bought, 1)).label("frequency"),
            func.sum(when(o.c.status.in_(("cancelled",)), 1)).label("cancelled"),
            func.sum(when(o.c.status.in_(RETURN_STATUSES), 1)).label("returned"),
            func.min(when(bought, day, None)).label("first_day"),
            func.max(when(bought, day, None)).label("last_day"),
            func.count(func.distinct(when(bought, day_key(o.c.created_at, dialect), None))).label("purchase_days"),
            func.sum(when(bought, total)).label("monetary_total"),
            func.sum(when(and_(bought, day >= literal(cut - RECENT_ORDERS_DAYS)), 1)).label("orders_90d"),
            func.sum(
                when(and_(bought, day >= literal(cut - 2 * RECENT_ORDERS_DAYS), day < literal(cut - RECENT_ORDERS_DAYS)), 1)
            ).label("orders_prev_90d"),
            func.sum(when(and_(bought, day >= literal(cut - RECENT_SPEND_DAYS)), total)).label("spend_180d"),
            func.sum(
                when(and_(bought, day >= literal(cut - 2 * RECENT_SPEND_DAYS), day < literal(cut - RECENT_SPEND_DAYS)), total)
            ).label("spend_prev_180d"),
        )
        .where(o.c.created_at < cutoff)
        .group_by(o.c.customer_id)
    )
    # The second-to-last purchase, for the latest gap between orders: a window function in the database.
    ranked = (
        select(
            o.c.customer_id.label("customer_id"),
            day.label("day"),
            func.row_number().over(partition_by=o.c.customer_id, order_by=o.c.created_at.desc()).label("rn"),
        )
        .where(o.c.created_at < cutoff, bought)
        .subquery()
    )
    q2 = select(ranked.c.customer_id, ranked.c.day.label("prev_day")).where(ranked.c.rn == 2)
    with store.engine.connect() as conn:
        rows = conn.execute(q).all()
        prev = conn.execute(q2).all()
    df = pd.DataFrame(rows, columns=list(q.selected_columns.keys()))
    prev_df = pd.DataFrame(prev, columns=["customer_id", "prev_day"])
    df = df.merge(prev_df, on="customer_id", how="left")
    num = [c for c in df.columns if c != "customer_id"]
    df[num] = df[num].apply(pd.to_numeric, errors="coerce").astype(float)
    return df


def _side_aggregates(store: Store, cutoff: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    r = Review.__table__
    c = Conversation.__table__
    qr = (
        select(r.c.customer_id, func.avg(r.c.rating).label("review_mean_rating"), func.count().label("review_count"))
        .where(r.c.customer_id.isnot(None), r.c.created_at < cutoff)
        .group_by(r.c.customer_id)
    )
    qc = (
        select(c.c.customer_id, func.count().label("support_contacts"))
        .where(c.c.customer_id.isnot(None), c.c.role == "customer", c.c.started_at < cutoff)
        .group_by(c.c.customer_id)
    )
    with store.engine.connect() as conn:
        reviews = pd.DataFrame(conn.execute(qr).all(), columns=["customer_id", "review_mean_rating", "review_count"])
        contacts = pd.DataFrame(conn.execute(qc).all(), columns=["customer_id", "support_contacts"])
    return reviews, contacts


def build_features(store: Store, as_of: date) -> pd.DataFrame:
    """One row per customer with at least one purchase on or before `as_of`, indexed by customer id.

    Besides FEATURES, it carries the BG/NBD summary (`x` repeat purchase days, `t_x`, `T` in weeks) and
    `first_day`/`last_day` (days since 1970).
    """
    cutoff = cutoff_of(as_of)
    cut = to_day_number(cutoff)
    df = _purchase_aggregates(store, cutoff)
    df = df[df["frequency"].fillna(0) > 0].copy()
    reviews, contacts = _side_aggregates(store, cutoff)
    df = df.merge(reviews, on="customer_id", how="left").merge(contacts, on="customer_id", how="left")
    df = df.set_index("customer_id").sort_index()
    f = df["frequency"]
    df["recency_days"] = cut - df["last_day"]
    df["tenure_days"] = cut - df["first_day"]
    df["monetary_total"] = df["monetary_total"].fillna(0.0)
    df["avg_order_value"] = df["monetary_total"] / f
    span = df["last_day"] - df["first_day"]
    df["mean_gap_days"] = np.where(f > 1, span / (f - 1).clip(lower=1), np.nan)
    df["last_gap_days"] = df["last_day"] - df["prev_day"]
    df["gap_trend"] = df["last_gap_days"] / df["mean_gap_days"].where(df["mean_gap_days"] > 0)
    df["overdue_ratio"] = df["recency_days"] / df["mean_gap_days"].where(df["mean_gap_days"] > 0)
    for col in ("orders_90d", "orders_prev_90d", "spend_180d", "spend_prev_180d", "cancelled", "returned"):
        df[col] = df[col].fillna(0.0)
    df["spend_trend"] = (df["spend_180d"] - df["spend_prev_180d"]) / (df["spend_180d"] + df["spend_prev_180d"]).where(
        lambda s: s > 0
    )
    df["cancel_share"] = df["cancelled"] / df["orders_all"]
    df["return_share"] = df["returned"] / df["orders_all"]
    df["review_count"] = df["review_count"].fillna(0.0)
    df["support_contacts"] = df["support_contacts"].fillna(0.0)
    # BG/NBD summary in weeks: repeat purchase days, time of the last one, age at the cut-off.
    df["x"] = (df["purchase_days"] - 1).clip(lower=0)
    df["t_x"] = span / 7.0
    df["T"] = df["tenure_days"] / 7.0
    return df


def purchased_between(store: Store, start: datetime, end: datetime) -> set[str]:
    """Customers with a purchase in [start, end) — the churn labels' window."""
    o = Order.__table__
    q = (
        select(o.c.customer_id)
        .where(o.c.created_at >= start, o.c.created_at < end, o.c.status.notin_(PURCHASE_STATUSES_EXCLUDED))
        .distinct()
    )
    with store.engine.connect() as conn:
        return {row[0] for row in conn.execute(q)}
