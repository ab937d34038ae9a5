"""Typed results of the marketer analytics tools: flat rows the agent renders as tables and the UI as charts.

Every result carries `as_of` (the date the figures describe) and `units` (what each number is measured in).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, Field

Tier = Literal["high", "medium", "low"]
ChurnMethod = Literal["lightgbm", "bgnbd", "unavailable"]

COMMON_UNITS = {
    "money": "USD",
    "churn_probability": "probability 0-1 of no purchase within horizon_days after as_of",
    "value_12m_usd": "USD, expected spend in the 12 months after as_of (BG/NBD x Gamma-Gamma)",
    "days": "days",
}

# The tail every result ends with (fields keep their place in each model, so the JSON keeps its key order).
Units = Annotated[dict[str, str], Field(default_factory=lambda: dict(COMMON_UNITS))]
Notes = Annotated[list[str], Field(default_factory=list)]


class CustomerRef(BaseModel):
    """The head of a per-customer row: who it is about."""

    customer_id: str
    email: str | None = None


class SegmentRow(BaseModel):
    segment: str
    description: str
    customers: int = Field(ge=0)
    share_of_customers: float = Field(ge=0, le=1, description="fraction 0-1")
    revenue_usd: float = Field(description="USD spent up to as_of by the segment's customers")
    revenue_share: float = Field(ge=0, le=1, description="fraction 0-1 of all revenue up to as_of")
    avg_value_12m_usd: float = Field(description="USD, mean predicted 12-month value")
    avg_churn_probability: float | None = Field(None, description="probability 0-1, mean over the segment")


class SegmentSummary(BaseModel):
    as_of: date
    horizon_days: int
    customers: int = Field(description="customers with at least one purchase up to as_of")
    churn_method: ChurnMethod
    rows: list[SegmentRow]
    units: Units
    notes: Notes


class SegmentMember(CustomerRef):
    segment: str
    rfm: str = Field(description="R, F and M scores 1-5, e.g. '545'")
    recency_days: float = Field(description="days since the last purchase, as of as_of")
    orders: int
    spend_usd: float
    value_12m_usd: float
    tier: Tier
    churn_probability: float | None = None


class SegmentLookup(BaseModel):
    as_of: date
    segment: str | None = None
    customer: str | None = None
    members_total: int = Field(description="customers in the segment (all, not only the rows shown)")
    rows: list[SegmentMember]
    units: Units
    notes: Notes


class ChurnRow(BaseModel):
    rank: int
    customer_id: str
    email: str | None = None
    churn_probability: float = Field(ge=0, le=1)
    value_12m_usd: float
    value_at_risk_usd: float = Field(description="USD, churn_probability x value_12m_usd")
    segment: str
    tier: Tier
    last_order_days_ago: float
    orders: int
    reasons: str = Field(description="plain words, from the model's own feature contributions")


class ChurnTable(BaseModel):
    as_of: date
    horizon_days: int
    churn_method: ChurnMethod
    filters: dict[str, str | float | int | None]
    customers_scored: int = Field(description="customers matching the filters, before top_n")
    rows: list[ChurnRow]
    units: Units
    notes: Notes


class RecentOrder(BaseModel):
    order_id: str
    date: date
    status: str
    total_usd: float
    items: int


class CustomerProfile(BaseModel):
    as_of: date
    customer_id: str
    email: str | None = None
    name: str | None = None
    tenure_days: float | None = Field(None, description="days since the first purchase")
    orders: int = Field(description="purchases (orders not cancelled) up to as_of")
    cancelled_orders: int
    returned_orders: int
    spend_usd: float
    avg_order_value_usd: float | None
    last_order_date: date | None
    usual_gap_days: float | None = Field(None, description="mean days between purchases")
    favourite_categories: list[str]
    recent_orders: list[RecentOrder]
    review_count: int
    review_mean_rating: float | None = Field(None, description="stars 1-5")
    support_contacts: int
    segment: str
    rfm: str | None
    tier: Tier | None
    value_12m_usd: float | None
    expected_orders_12m: float | None
    churn_probability: float | None
    churn_reasons: list[str]
    units: Units
    notes: Notes


class OfferRow(CustomerRef):
    segment: str
    tier: Tier
    value_12m_usd: float
    churn_probability: float | None
    coupon_usd: float = Field(ge=0, description="USD off the next order")
    points: int = Field(ge=0, description="loyalty points, the same value as the coupon (100 points = 1 USD)")
    min_order_usd: float = Field(description="USD, smallest order the coupon applies to")
    expires_on: date
    message: str


class RetentionOfferDraft(BaseModel):
    as_of: date
    target: str
    policy: dict[str, float | int | str]
    rows: list[OfferRow]
    max_total_cost_usd: float = Field(description="USD if every coupon were redeemed")
    sent: bool = Field(False, description="drafts only: nothing is sent to customers")
    units: Units
    notes: Notes


class Metrics(BaseModel):
    auc: float
    pr_auc: float
    brier: float
    top_decile_lift: float


class ChurnEvaluation(BaseModel):
    as_of: date
    horizon_days: int
    ours: Metrics
    bgnbd: Metrics
    customers: int
    churn_rate: float
    train_customers: int
    train_churn_rate: float
    bgnbd_params: dict[str, float]
    notes: Notes
