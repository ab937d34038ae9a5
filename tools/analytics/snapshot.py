"""One consistent analytics picture of the shop as of a date: features, RFM segments, value tiers, churn scores.

The tools share it, so a segment's churn risk and a customer's profile agree; it is cached per session in
`ShopContext.cache` (keyed by as-of date and horizon) because training the churn model is the costly part.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select

from store.db import Store
from store.models import Customer
from store.shop import shop_currency
from tools.analytics import bgnbd
from tools.analytics.churn import (
    ChurnModel,
    InsufficientData,
    finite,
    label_churn,
    reasons_from_contributions,
    reasons_from_history,
    train_churn_model,
)
from tools.analytics.features import DataSpan, build_feature_sets, data_span
from tools.analytics.rfm import score_rfm
from tools.analytics.value import ValueModel, fit_value_model, predict_value
from tools.errors import ToolInputError
from tools.results import Lang

MIN_HORIZON, MAX_HORIZON = 7, 365


@dataclass
class Snapshot:
    as_of: date
    horizon_days: int
    span: DataSpan
    table: pd.DataFrame  # one row per customer with a purchase up to as_of
    churn_method: str
    churn_model: ChurnModel | None
    value_model: ValueModel | None
    notes: list[str] = field(default_factory=list)
    store: Store | None = None
    timings: dict[str, dict[str, float]] = field(default_factory=dict)  # wall and CPU seconds per phase (for the bench)
    currency: str = "USD"  # the shop's, for every amount shown

    def reasons(self, customer_ids: list[str]) -> dict[Lang, dict[str, list[str]]]:
        """Plain-word churn reasons for some customers, in English and Chinese ({"en": {id: [...]}, "zh": ...}); the
        model's contributions are computed once, and only for them.
        """
        out: dict[Lang, dict[str, list[str]]] = {"en": {}, "zh": {}}
        if not customer_ids:
            return out
        rows = self.table.loc[customer_ids]
        contrib = self.churn_model.contributions(rows) if self.churn_model is not None else None
        for lang, by_id in out.items():
            for i, cid in enumerate(customer_ids):
                by_id[cid] = (reasons_from_contributions(rows.iloc[i], contrib[i], self.churn_model.features,
                                                         currency=self.currency, lang=lang)
                              if contrib is not None
                              else reasons_from_history(rows.iloc[i], finite(rows.iloc[i].get("p_alive")), lang))
        return out

def parse_date(value: str | date | None, name: str = "as_of") -> date | None:
    """`value` as a date; a ToolInputError naming `name` if it is not YYYY-MM-DD."""
    if value is None or isinstance(value, date):
        return value.date() if isinstance(value, datetime) else value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ToolInputError(f"{name} must be a date written YYYY-MM-DD, got {value!r}",
                             user="Please give the date as year-month-day (YYYY-MM-DD).",
                             user_zh="请按 年-月-日(YYYY-MM-DD)的格式给出日期。") from None


def resolve_as_of(span: DataSpan, as_of: date | None, horizon_days: int) -> date:
    """The as-of date to use (default: the day of the latest order), checked against the data."""
    if span.first is None:
        return as_of or date.today()
    first, last = span.first.date(), span.last.date()
    if as_of is None:
        return last
    pick = (f"Please pick a date from {first} to {last}, the span of the shop's orders.",
            f"请选择 {first} 到 {last} 之间的日期(本店订单的时间范围)。")
    if as_of < first:
        raise ToolInputError(f"as_of {as_of} is before the shop's first order ({first}); "
                             f"pick a date from {first} to {last}",
                             user=pick[0], user_zh=pick[1])
    if as_of > date.today():
        raise ToolInputError(f"as_of {as_of} is in the future; pick a date from {first} to {last}",
                             user=pick[0], user_zh=pick[1])
    if (as_of - last).days > horizon_days:
        raise ToolInputError(
            f"as_of {as_of} is more than {horizon_days} days after the latest order ({last}), so every customer "
            f"would count as churned; pick a date from {first} to {last}",
            user=pick[0], user_zh=pick[1],
        )
    return as_of


def check_horizon(horizon_days: int) -> None:
    """Raise a ToolInputError if the horizon is outside MIN_HORIZON..MAX_HORIZON days."""
    if not MIN_HORIZON <= int(horizon_days) <= MAX_HORIZON:
        raise ToolInputError(f"horizon_days must be between {MIN_HORIZON} and {MAX_HORIZON}, got {horizon_days}",
                             user=f"The churn horizon must be from {MIN_HORIZON} to {MAX_HORIZON} days. Which would "
                                  f"you like?",
                             user_zh=f"流失时间窗口须在 {MIN_HORIZON} 到 {MAX_HORIZON} 天之间。您想用多少天?")


def build_snapshot(store: Store, as_of: date | str | None = None, horizon_days: int = 90) -> Snapshot:
    """Features, segments, value and churn scores of every customer as of one day."""
    check_horizon(horizon_days)
    span = data_span(store)
    day = resolve_as_of(span, parse_date(as_of), horizon_days)
    currency = shop_currency(store)
    notes: list[str] = []
    if span.orders == 0:
        notes.append("The shop has no orders yet, so there is nothing to segment or score.")
        return Snapshot(day, horizon_days, span, _empty_table(), "unavailable", None, None, notes, store,
                        currency=currency)
    clock = _Clock()
    # One scan of the orders gives both the scoring features (as of the day) and the churn model's training set.
    train_feats, feats = build_feature_sets(store, [day - timedelta(days=horizon_days), day], horizon_days)
    clock.lap("features")
    if len(feats) == 0:
        notes.append(f"No customer had a purchase on or before {day}.")
        return Snapshot(day, horizon_days, span, _empty_table(), "unavailable", None, None, notes, store,
                        currency=currency)
    table = feats.join(score_rfm(feats))
    clock.lap("rfm")
    value_model = fit_value_model(feats)
    notes += value_model.notes
    table = table.join(predict_value(value_model, feats))
    clock.lap("value")
    churn_model: ChurnModel | None = None
    try:
        churn_model = train_churn_model(store, day, horizon_days, frame=label_churn(train_feats, feats))
        clock.lap("churn_training")
        table["churn_probability"] = churn_model.predict(table)
        clock.lap("churn_scoring")
        method = "lightgbm"
    except InsufficientData as exc:
        if value_model.bgnbd is not None:
            notes.append(f"Churn model not trained ({exc}); churn probabilities come from BG/NBD instead.")
            table["churn_probability"] = bgnbd.prob_no_purchase(
                value_model.bgnbd, table["x"], table["t_x"], table["T"], horizon_days / 7.0
            )
            method = "bgnbd"
        else:
            notes.append(f"Churn cannot be estimated yet: {exc}, and no customer has a repeat purchase.")
            table["churn_probability"] = np.nan
            method = "unavailable"
    table["value_at_risk_usd"] = (table["churn_probability"].fillna(0.0) * table["value_12m_usd"]).astype(float)
    return Snapshot(day, horizon_days, span, table, method, churn_model, value_model, notes, store, clock.laps,
                    currency)


class _Clock:
    def __init__(self):
        self.laps: dict[str, dict[str, float]] = {}
        self._last = (time.perf_counter(), time.process_time())

    def lap(self, name: str) -> None:
        now = (time.perf_counter(), time.process_time())
        self.laps[name] = {"wall_s": round(now[0] - self._last[0], 3), "cpu_s": round(now[1] - self._last[1], 3)}
        self._last = now


def _empty_table() -> pd.DataFrame:
    cols = ["segment", "tier", "value_12m_usd", "churn_probability", "monetary_total", "frequency", "recency_days"]
    return pd.DataFrame(columns=cols, index=pd.Index([], name="customer_id"))


def get_snapshot(ctx, as_of: str | date | None = None, horizon_days: int = 90) -> Snapshot:
    """The session's cached snapshot for (as_of, horizon), built on first use."""
    cache = ctx.cache.setdefault("analytics_snapshots", {})
    key = (str(parse_date(as_of)), int(horizon_days))
    if key not in cache:
        cache[key] = build_snapshot(ctx.store, as_of, horizon_days)
    return cache[key]


def customer_directory(store: Store, ids: list[str]) -> dict[str, tuple[str | None, str]]:
    """Email and name of the given customers (looked up only for the rows shown)."""
    out: dict[str, tuple[str | None, str]] = {}
    if not ids:
        return out
    with store.read() as s:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for c in s.execute(select(Customer).where(Customer.id.in_(chunk))).scalars():
                out[c.id] = (c.email, c.name)
    return out


def find_customer(store: Store, customer: str) -> Customer | None:
    """A customer by id or by email (case-insensitive)."""
    key = customer.strip()
    with store.read() as s:
        found = s.get(Customer, key)
        if found is None and "@" in key:
            from sqlalchemy import func

            found = s.execute(select(Customer).where(func.lower(Customer.email) == key.lower())).scalars().first()
        if found is not None:
            s.expunge(found)
        return found
