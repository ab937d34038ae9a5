"""Marketer tool: the ranked churn table (who is likely to stop buying, what they are worth, and why)."""

from __future__ import annotations

from typing import Literal

from tools.analytics.models import ChurnRow, ChurnTable
from tools.analytics.segments import as_float, check_tier, segment_name
from tools.analytics.snapshot import Snapshot, customer_directory, get_snapshot
from tools.context import ShopContext
from tools.errors import ToolInputError

MAX_TOP_N = 1000


def score_churn(
    ctx: ShopContext,
    top_n: int = 20,
    segment: str | None = None,
    tier: Literal["high", "medium", "low"] | None = None,
    min_value: float | None = None,
    horizon_days: int = 90,
    as_of: str | None = None,
) -> ChurnTable:
    """Customers most likely to stop buying, ranked by churn probability, with value and reasons.

    Args:
        top_n: How many customers to list, 1-1000.
        segment: Only this segment, e.g. "Champions" or "At risk".
        tier: Only this value tier: "high", "medium" or "low".
        min_value: Only customers whose predicted 12-month value is at least this many USD.
        horizon_days: Churn means no purchase within this many days after as_of (7-365).
        as_of: Date to score as of, YYYY-MM-DD; default the day of the latest order.
    """
    ctx.require_marketer()
    if not 1 <= int(top_n) <= MAX_TOP_N:
        raise ToolInputError(f"top_n must be between 1 and {MAX_TOP_N}, got {top_n}",
                             user=f"I can list from 1 to {MAX_TOP_N} customers. How many would you like?",
                             user_zh=f"我可以列出 1 到 {MAX_TOP_N} 位顾客。您想看多少位?")
    check_tier(tier)
    seg_name = segment_name(segment)
    snap = get_snapshot(ctx, as_of, horizon_days)
    return churn_table(snap, int(top_n), seg_name, tier, min_value)


def churn_table(
    snap: Snapshot, top_n: int = 20, segment: str | None = None, tier: str | None = None, min_value: float | None = None
) -> ChurnTable:
    """The customers most likely to churn, filtered and ranked, with reasons and contact details."""
    filters = {"segment": segment, "tier": tier, "min_value_usd": min_value, "top_n": top_n}
    notes = list(snap.notes)
    t = snap.table
    if len(t) and snap.churn_method != "unavailable":
        if segment:
            t = t[t["segment"] == segment]
        if tier:
            t = t[t["tier"] == tier]
        if min_value is not None:
            t = t[t["value_12m_usd"] >= float(min_value)]
        matched = len(t)
        top = t.sort_values(["churn_probability", "value_12m_usd"], ascending=[False, False]).head(top_n)
    else:
        matched, top = 0, t.iloc[0:0]
    ids = list(top.index)
    reasons = snap.reasons(ids)
    directory = customer_directory(snap.store, ids) if snap.store is not None else {}
    rows = []
    for rank, cid in enumerate(ids, start=1):
        r = top.loc[cid]
        p = min(1.0, max(0.0, as_float(r["churn_probability"])))
        value = as_float(r["value_12m_usd"])
        rows.append(
            ChurnRow(
                rank=rank,
                customer_id=cid,
                email=directory.get(cid, (None, ""))[0],
                churn_probability=round(p, 4),
                value_12m_usd=round(value, 2),
                value_at_risk_usd=round(p * value, 2),
                segment=r["segment"],
                tier=r["tier"],
                last_order_days_ago=round(as_float(r["recency_days"]), 1),
                orders=int(as_float(r["frequency"])),
                reasons="; ".join(reasons["en"].get(cid, [])),
                reasons_zh=";".join(reasons["zh"].get(cid, [])),
            )
        )
    if len(snap.table) and matched == 0 and snap.churn_method != "unavailable":
        notes.append("No customer matches these filters.")
    return ChurnTable(
        as_of=snap.as_of, horizon_days=snap.horizon_days, churn_method=snap.churn_method, filters=filters,
        customers_scored=matched, rows=rows, currency=snap.currency, notes=notes,
    )
