"""Marketer tools over RFM segments: sizes and value per segment, and segment membership."""

from __future__ import annotations

from tools.analytics.churn import finite
from tools.analytics.models import SegmentLookup, SegmentMember, SegmentRow, SegmentSummary
from tools.analytics.rfm import SEGMENT_DESCRIPTIONS, SEGMENTS, normalise_segment
from tools.analytics.snapshot import Snapshot, customer_directory, find_customer, get_snapshot
from tools.context import ShopContext
from tools.errors import NotFoundError, ToolInputError, unknown_choice

MAX_LIMIT = 500


def unknown_segment(segment: str) -> ToolInputError:
    """The error for a segment name that is none of SEGMENTS (it suggests the closest one)."""
    return unknown_choice(f"unknown segment {segment!r}; segments are: {', '.join(SEGMENTS)}", str(segment), SEGMENTS,
                          "segment", "segments", "分群")


def customer_not_found(customer: str) -> NotFoundError:
    """The NotFoundError for a customer id or email that matches no customer."""
    shown = " ".join(str(customer).split())[:80]
    return NotFoundError(f"no customer with id or email {customer!r}",
                         user=f"I couldn't find a customer with id or email '{shown}'. Could you check it?",
                         user_zh=f"没有找到 ID 或邮箱为“{shown}”的顾客。能再确认一下吗?")


def segment_name(segment: str | None) -> str | None:
    """The segment as SEGMENTS spells it (None for no segment), or the unknown_segment error."""
    if not segment:
        return None
    name = normalise_segment(segment)
    if name is None:
        raise unknown_segment(segment)
    return name


def check_tier(tier: str | None) -> None:
    """A value tier is high, medium or low (or not given)."""
    if tier is not None and tier not in ("high", "medium", "low"):
        raise ToolInputError(f"tier must be 'high', 'medium' or 'low', got {tier!r}",
                             user="The value tiers are high, medium and low. Which one do you mean?",
                             user_zh="价值等级分为 high、medium 和 low。您指的是哪一个?")


def marketer_customer(ctx: ShopContext, customer: str):
    """The customer a marketer tool is about (id or email), after checking the caller is a marketer; the errors say
    what to give instead.
    """
    ctx.require_marketer()
    if not customer or not str(customer).strip():
        raise ToolInputError("give a customer id or email", user="Which customer do you mean? Give a customer id or "
                                                                  "email.",
                             user_zh="您指的是哪位顾客?请给出顾客 ID 或邮箱。")
    found = find_customer(ctx.store, customer)
    if found is None:
        raise customer_not_found(customer)
    return found


def as_float(v, default: float = 0.0) -> float:
    """`v` as a finite float, else `default` (None, NaN and infinities from the models become it)."""
    return finite(v, default)


def as_probability(v) -> float | None:
    """`v` as a probability rounded to 4 places, or None when it is missing or not finite."""
    x = finite(v)
    return None if x is None else round(x, 4)


def summarize_segments(ctx: ShopContext, as_of: str | None = None, horizon_days: int = 90) -> SegmentSummary:
    """Size, revenue share, average 12-month value and churn risk of every customer segment.

    Args:
        as_of: Date the figures describe, YYYY-MM-DD; default the day of the latest order.
        horizon_days: Churn risk means no purchase within this many days after as_of (7-365).
    """
    ctx.require_marketer()
    snap = get_snapshot(ctx, as_of, horizon_days)
    return segment_summary(snap)


def segment_summary(snap: Snapshot) -> SegmentSummary:
    """Size, revenue, value and churn risk of each segment."""
    t = snap.table
    n = len(t)
    total_revenue = as_float(t["monetary_total"].sum()) if n else 0.0
    rows: list[SegmentRow] = []
    for seg in SEGMENTS:
        part = t[t["segment"] == seg] if n else t
        k = len(part)
        revenue = as_float(part["monetary_total"].sum()) if k else 0.0
        rows.append(
            SegmentRow(
                segment=seg,
                description=SEGMENT_DESCRIPTIONS[seg],
                customers=k,
                share_of_customers=round(k / n, 4) if n else 0.0,
                revenue_usd=round(revenue, 2),
                revenue_share=round(min(1.0, revenue / total_revenue), 4) if total_revenue > 0 else 0.0,
                avg_value_12m_usd=round(as_float(part["value_12m_usd"].mean()), 2) if k else 0.0,
                avg_churn_probability=as_probability(part["churn_probability"].mean()) if k else None,
            )
        )
    return SegmentSummary(
        as_of=snap.as_of,
        horizon_days=snap.horizon_days,
        customers=n,
        churn_method=snap.churn_method,
        rows=rows,
        currency=snap.currency,
        notes=list(snap.notes),
    )


def member_rows(snap: Snapshot, ids: list[str]) -> list[SegmentMember]:
    """One row per customer in `ids`, in that order."""
    directory = customer_directory(snap.store, ids) if snap.store is not None else {}
    out = []
    for cid in ids:
        r = snap.table.loc[cid]
        out.append(
            SegmentMember(
                customer_id=cid,
                email=directory.get(cid, (None, ""))[0],
                segment=r["segment"],
                rfm=r["rfm"],
                recency_days=round(as_float(r["recency_days"]), 1),
                orders=int(as_float(r["frequency"])),
                spend_usd=round(as_float(r["monetary_total"]), 2),
                value_12m_usd=round(as_float(r["value_12m_usd"]), 2),
                tier=r["tier"],
                churn_probability=as_probability(r["churn_probability"]),
            )
        )
    return out


def lookup_segment(
    ctx: ShopContext, segment: str | None = None, customer: str | None = None, limit: int = 20
) -> SegmentLookup:
    """Which segment a customer is in, or the most valuable members of a segment.

    Args:
        segment: Segment name, e.g. "At risk" or "Champions" (give this or customer).
        customer: Customer id or email (give this or segment).
        limit: Most members to list, 1-500.
    """
    ctx.require_marketer()
    if not segment and not customer:
        raise ToolInputError("give a segment name (e.g. 'At risk') or a customer id or email",
                             user="Which segment or which customer do you mean? Give a segment name, or a customer "
                                  "id or email.",
                             user_zh="您指的是哪个分群或哪位顾客?请给出分群名称,或顾客 ID、邮箱。")
    if not 1 <= int(limit) <= MAX_LIMIT:
        raise ToolInputError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}",
                             user=f"I can list from 1 to {MAX_LIMIT} members. How many would you like?",
                             user_zh=f"我可以列出 1 到 {MAX_LIMIT} 位成员。您想看多少位?")
    snap = get_snapshot(ctx)
    if customer:
        found = find_customer(ctx.store, customer)
        if found is None:
            raise customer_not_found(customer)
        if found.id not in snap.table.index:
            return SegmentLookup(
                as_of=snap.as_of, customer=found.id, segment=None, members_total=0, rows=[], currency=snap.currency,
                notes=[f"Customer {found.id} has no purchase on or before {snap.as_of}, so has no segment yet."],
            )
        rows = member_rows(snap, [found.id])
        return SegmentLookup(
            as_of=snap.as_of, customer=found.id, segment=rows[0].segment,
            members_total=int((snap.table["segment"] == rows[0].segment).sum()), rows=rows, currency=snap.currency,
            notes=list(snap.notes),
        )
    name = normalise_segment(segment)
    if name is None:
        raise unknown_segment(segment)
    members = snap.table[snap.table["segment"] == name] if len(snap.table) else snap.table
    top = members.sort_values(["value_12m_usd", "monetary_total"], ascending=False).head(int(limit))
    return SegmentLookup(
        as_of=snap.as_of, segment=name, members_total=len(members), rows=member_rows(snap, list(top.index)),
        currency=snap.currency, notes=list(snap.notes),
    )
