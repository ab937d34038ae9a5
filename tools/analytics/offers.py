"""Marketer tool: draft retention offers sized by customer value, inside the shop's offer policy. Nothing is sent."""

from __future__ import annotations

import math
from datetime import timedelta

from pydantic import BaseModel, Field

from tools.analytics.models import OfferRow, RetentionOfferDraft, money
from tools.analytics.rfm import normalise_segment
from tools.analytics.segments import as_float, as_probability, customer_not_found, unknown_segment
from tools.analytics.snapshot import customer_directory, find_customer, get_snapshot
from tools.context import ShopContext
from tools.errors import ToolInputError
from tools.results import iso

MAX_CUSTOMERS = 200


class OfferPolicy(BaseModel):
    """Bounds every drafted offer stays within."""

    share_of_value: float = Field(0.10, gt=0, le=0.5, description="coupon = this share of predicted 12-month value")
    min_coupon_usd: float = Field(5.0, ge=0, description="USD, smallest coupon worth sending")
    max_coupon_usd: float = Field(50.0, gt=0, description="USD, largest coupon the shop allows")
    max_share_of_order: float = Field(0.5, gt=0, le=1, description="coupon at most this share of the minimum order")
    valid_days: int = Field(30, ge=1, le=365, description="days the coupon stays valid")
    points_per_usd: int = Field(100, ge=1, description="loyalty points worth 1 USD")


def size_coupon(value_12m: float, avg_order_value: float, policy: OfferPolicy) -> tuple[float, float]:
    """(coupon USD, minimum order USD): a share of predicted value, clipped to the policy, in whole dollars."""
    coupon = min(policy.max_coupon_usd, max(policy.min_coupon_usd, policy.share_of_value * max(value_12m, 0.0)))
    coupon = float(math.floor(coupon))
    min_order = max(coupon / policy.max_share_of_order, round(max(avg_order_value, 0.0)))
    return coupon, float(math.ceil(min_order))


def _message(name: str | None, coupon: float, min_order: float, expires, segment: str, currency: str = "USD") -> str:
    hello = f"Hi {name.split()[0]}," if name else "Hi,"
    lead = {
        "Can't lose them": "You have been one of our best customers and we miss you.",
        "At risk": "It has been a while since your last order, and we would love to see you again.",
        "Hibernating": "We have plenty of new things since your last visit.",
        "Lost": "We have plenty of new things since your last visit.",
        "Champions": "Thank you for being one of our best customers.",
        "Loyal": "Thank you for shopping with us so often.",
    }.get(segment, "Thank you for shopping with us.")
    return (
        f"{hello} {lead} Here is {money(coupon, currency)} off your next order of "
        f"{money(min_order, currency)} or more, "
        f"valid until {iso(expires)}."
    )


def draft_retention_offer(
    ctx: ShopContext, segment: str | None = None, customers: list[str] | None = None
) -> RetentionOfferDraft:
    """Draft a retention offer (coupon or points, sized by customer value) for a segment or listed customers.

    Args:
        segment: Segment to target, e.g. "At risk" (give this or customers).
        customers: Customer ids or emails to target (at most 200).
    """
    ctx.require_marketer()
    if not segment and not customers:
        raise ToolInputError("give a segment name (e.g. 'At risk') or a list of customer ids or emails",
                             user="Who should the offer go to? Give a segment name, or customer ids or emails.",
                             user_zh="优惠要发给谁?请给出分群名称,或顾客 ID、邮箱。")
    if customers and len(customers) > MAX_CUSTOMERS:
        raise ToolInputError(f"at most {MAX_CUSTOMERS} customers per draft, got {len(customers)}",
                             user=f"A draft can cover at most {MAX_CUSTOMERS} customers; please pick fewer.",
                             user_zh=f"一份草稿最多包含 {MAX_CUSTOMERS} 位顾客;请减少人数。")
    policy = OfferPolicy()
    snap = get_snapshot(ctx)
    notes = list(snap.notes)
    t = snap.table
    name = None
    if customers:
        ids = []
        for c in customers:
            found = find_customer(ctx.store, str(c))
            if found is None:
                raise customer_not_found(str(c))
            if found.id not in t.index:
                notes.append(f"{found.id} has no purchase yet and gets no offer.")
            elif found.id not in ids:
                ids.append(found.id)
        target = ", ".join(ids) if ids else "no eligible customers"
    else:
        name = normalise_segment(segment)
        if name is None:
            raise unknown_segment(segment)
        members = t[t["segment"] == name] if len(t) else t
        # The most valuable members first; a draft covers at most MAX_CUSTOMERS of them.
        members = members.sort_values("value_12m_usd", ascending=False)
        if len(members) > MAX_CUSTOMERS:
            notes.append(f"The segment has {len(members)} customers; "
                         f"this draft covers the {MAX_CUSTOMERS} most valuable.")
        ids = list(members.index[:MAX_CUSTOMERS])
        target = f"segment {name}"
    expires = snap.as_of + timedelta(days=policy.valid_days)
    directory = customer_directory(ctx.store, ids)
    rows = []
    for cid in ids:
        r = t.loc[cid]
        value = as_float(r["value_12m_usd"])
        coupon, min_order = size_coupon(value, as_float(r["avg_order_value"]), policy)
        email, name_ = directory.get(cid, (None, ""))
        rows.append(
            OfferRow(
                customer_id=cid, email=email, segment=r["segment"], tier=r["tier"], value_12m_usd=round(value, 2),
                churn_probability=as_probability(r["churn_probability"]), coupon_usd=coupon,
                points=int(coupon * policy.points_per_usd), min_order_usd=min_order, expires_on=expires,
                message=_message(name_ or None, coupon, min_order, expires, r["segment"], snap.currency),
            )
        )
    if not rows:
        notes.append("No customer to draft an offer for.")
    return RetentionOfferDraft(
        as_of=snap.as_of, target=target, target_segment=name, policy=policy.model_dump(), rows=rows,
        max_total_cost_usd=round(sum(r.coupon_usd for r in rows), 2), currency=snap.currency, notes=notes,
    )
