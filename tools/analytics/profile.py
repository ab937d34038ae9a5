"""Marketer tool: everything the shop knows about one customer, with segment, value tier and churn risk."""

from __future__ import annotations

import math
from datetime import date

from sqlalchemy import func, select

from store.models import Order, OrderItem, Product
from tools.analytics.features import cutoff_of
from tools.analytics.models import CustomerProfile, RecentOrder
from tools.analytics.segments import as_float, as_probability, marketer_customer
from tools.analytics.snapshot import get_snapshot
from tools.context import ShopContext

RECENT_ORDERS = 5
TOP_CATEGORIES = 3


def get_customer_profile(ctx: ShopContext, customer: str) -> CustomerProfile:
    """Profile of one customer for marketing: orders, spend, favourite categories, segment, value and churn risk.

    Args:
        customer: Customer id or email address.
    """
    found = marketer_customer(ctx, customer)
    snap = get_snapshot(ctx)
    cutoff = cutoff_of(snap.as_of)
    with ctx.store.read() as s:
        orders = s.execute(
            select(Order.id, Order.created_at, Order.status, Order.total, func.count(OrderItem.id))
            .outerjoin(OrderItem, OrderItem.order_id == Order.id)
            .where(Order.customer_id == found.id, Order.created_at < cutoff)
            .group_by(Order.id, Order.created_at, Order.status, Order.total)
            .order_by(Order.created_at.desc())
            .limit(RECENT_ORDERS)
        ).all()
        categories = s.execute(
            select(Product.category, func.sum(OrderItem.quantity).label("n"))
            .join(OrderItem, OrderItem.product_id == Product.id)
            .join(Order, Order.id == OrderItem.order_id)
            .where(Order.customer_id == found.id, Order.created_at < cutoff, Order.status != "cancelled",
                   Product.category.isnot(None))
            .group_by(Product.category)
            .order_by(func.sum(OrderItem.quantity).desc(), Product.category)
            .limit(TOP_CATEGORIES)
        ).all()
    recent = [
        RecentOrder(order_id=o[0], date=o[1].date(), status=o[2], total_usd=round(as_float(o[3]), 2), items=int(o[4]))
        for o in orders
    ]
    notes = list(snap.notes)
    base = {
        "as_of": snap.as_of, "customer_id": found.id, "email": found.email, "name": found.name or None,
        "favourite_categories": [c[0] for c in categories], "recent_orders": recent, "currency": snap.currency,
    }
    if found.id not in snap.table.index:
        notes.append(f"No purchase on or before {snap.as_of}: no segment, value or churn score yet.")
        return CustomerProfile(
            **base, tenure_days=None, orders=0, cancelled_orders=sum(o.status == "cancelled" for o in recent),
            returned_orders=0, spend_usd=0.0, avg_order_value_usd=None, last_order_date=None, usual_gap_days=None,
            review_count=0, review_mean_rating=None, support_contacts=0, segment="No purchases", rfm=None, tier=None,
            value_12m_usd=None, expected_orders_12m=None, churn_probability=None, churn_reasons=[], notes=notes,
        )
    r = snap.table.loc[found.id]
    last_order = (cutoff.date().toordinal() - as_float(r["recency_days"]))
    gap = as_float(r["mean_gap_days"], float("nan"))
    rating = as_float(r["review_mean_rating"], float("nan"))
    expected = as_float(r["expected_orders_12m"], float("nan"))
    reasons = snap.reasons([found.id]) if snap.churn_method != "unavailable" else {"en": {}, "zh": {}}
    return CustomerProfile(
        **base,
        tenure_days=round(as_float(r["tenure_days"]), 1),
        orders=int(as_float(r["frequency"])),
        cancelled_orders=int(as_float(r["cancelled"])),
        returned_orders=int(as_float(r["returned"])),
        spend_usd=round(as_float(r["monetary_total"]), 2),
        avg_order_value_usd=round(as_float(r["avg_order_value"]), 2),
        last_order_date=date.fromordinal(int(last_order)),
        usual_gap_days=round(gap, 1) if math.isfinite(gap) else None,
        review_count=int(as_float(r["review_count"])),
        review_mean_rating=round(rating, 2) if math.isfinite(rating) else None,
        support_contacts=int(as_float(r["support_contacts"])),
        segment=r["segment"],
        rfm=r["rfm"],
        tier=r["tier"],
        value_12m_usd=round(as_float(r["value_12m_usd"]), 2),
        expected_orders_12m=round(expected, 3) if math.isfinite(expected) else None,
        churn_probability=as_probability(r["churn_probability"]),
        churn_reasons=reasons["en"].get(found.id, []),
        churn_reasons_zh=reasons["zh"].get(found.id, []),
        notes=notes,
    )
