"""Plain-text (markdown) renderings of the analytics results: the agent's faithful answer templates."""

from __future__ import annotations

from tools.analytics.models import (
    ChurnEvaluation,
    ChurnTable,
    CustomerProfile,
    RetentionOfferDraft,
    SegmentLookup,
    SegmentSummary,
)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.0f}%"


def _usd(v: float | None) -> str:
    return "n/a" if v is None else f"${v:,.2f}"


def _notes(notes: list[str]) -> str:
    return "".join(f"\nNote: {n}" for n in notes)


def render_segment_summary(result: SegmentSummary) -> str:
    head = f"Customer segments as of {result.as_of} ({result.customers} customers with a purchase)."
    if not result.customers:
        return head + _notes(result.notes)
    rows = [
        [r.segment, r.customers, _pct(r.share_of_customers), _usd(r.revenue_usd), _pct(r.revenue_share),
         _usd(r.avg_value_12m_usd), _pct(r.avg_churn_probability)]
        for r in result.rows
        if r.customers
    ]
    table = _table(
        ["Segment", "Customers", "Share", "Revenue (USD)", "Revenue share", "Avg 12-month value",
         f"Avg churn risk ({result.horizon_days} d)"],
        rows,
    )
    return f"{head}\n\n{table}{_notes(result.notes)}"


def render_segment_lookup(result: SegmentLookup) -> str:
    if result.customer and not result.rows:
        return f"Customer {result.customer} as of {result.as_of}: no segment." + _notes(result.notes)
    if result.customer:
        m = result.rows[0]
        head = (
            f"Customer {m.customer_id} is in segment {m.segment} (RFM {m.rfm}) as of {result.as_of}: {m.orders} orders, "
            f"{_usd(m.spend_usd)} spent, last order {m.recency_days:.0f} days ago, {m.tier} value tier "
            f"({_usd(m.value_12m_usd)} predicted over 12 months), churn risk {_pct(m.churn_probability)}."
        )
        return head + _notes(result.notes)
    head = f"Segment {result.segment} as of {result.as_of}: {result.members_total} customers"
    head += f" (top {len(result.rows)} by predicted value shown)." if result.rows else "."
    rows = [
        [m.customer_id, m.email or "", m.rfm, m.orders, _usd(m.spend_usd), _usd(m.value_12m_usd), m.tier,
         _pct(m.churn_probability)]
        for m in result.rows
    ]
    table = _table(["Customer", "Email", "RFM", "Orders", "Spent", "12-month value", "Tier", "Churn risk"], rows)
    return head + ("\n\n" + table if rows else "") + _notes(result.notes)


def render_churn_table(result: ChurnTable) -> str:
    filters = ", ".join(f"{k} {v}" for k, v in result.filters.items() if v is not None and k != "top_n")
    head = (
        f"Churn risk as of {result.as_of} (no purchase in the next {result.horizon_days} days; model: "
        f"{result.churn_method}){' for ' + filters if filters else ''}: {result.customers_scored} customers scored, "
        f"top {len(result.rows)} shown."
    )
    rows = [
        [r.rank, r.customer_id, _pct(r.churn_probability), _usd(r.value_12m_usd), _usd(r.value_at_risk_usd),
         r.segment, r.tier, r.reasons]
        for r in result.rows
    ]
    table = _table(["#", "Customer", "Churn risk", "12-month value", "Value at risk", "Segment", "Tier", "Why"], rows)
    return head + ("\n\n" + table if rows else "") + _notes(result.notes)


def render_customer_profile(p: CustomerProfile) -> str:
    lines = [f"Customer {p.customer_id}" + (f" ({p.name}, {p.email})" if p.name else f" ({p.email})" if p.email else "")
             + f" as of {p.as_of}:"]
    if p.orders:
        gap = f", usually every {p.usual_gap_days:.0f} days" if p.usual_gap_days else ""
        lines.append(
            f"- {p.orders} orders over {p.tenure_days:.0f} days{gap}; last on {p.last_order_date}; "
            f"{_usd(p.spend_usd)} spent ({_usd(p.avg_order_value_usd)} per order); "
            f"{p.cancelled_orders} cancelled, {p.returned_orders} returned"
        )
    else:
        lines.append("- no purchases yet")
    if p.favourite_categories:
        lines.append("- favourite categories: " + ", ".join(p.favourite_categories))
    if p.review_count:
        lines.append(f"- {p.review_count} reviews, average {p.review_mean_rating:.1f}/5")
    if p.support_contacts:
        lines.append(f"- {p.support_contacts} support conversations")
    lines.append(f"- segment: {p.segment}" + (f" (RFM {p.rfm})" if p.rfm else ""))
    if p.tier:
        lines.append(f"- value tier: {p.tier}, predicted 12-month value {_usd(p.value_12m_usd)}")
    if p.churn_probability is not None:
        why = f" because: {'; '.join(p.churn_reasons)}" if p.churn_reasons else ""
        lines.append(f"- churn risk: {_pct(p.churn_probability)}{why}")
    if p.recent_orders:
        lines.append("")
        lines.append(_table(["Order", "Date", "Status", "Total", "Items"],
                            [[o.order_id, o.date, o.status, _usd(o.total_usd), o.items] for o in p.recent_orders]))
    return "\n".join(lines) + _notes(p.notes)


def render_retention_offer(d: RetentionOfferDraft) -> str:
    head = (
        f"Draft retention offers for {d.target} as of {d.as_of} (not sent): {len(d.rows)} customers, "
        f"at most {_usd(d.max_total_cost_usd)} if all are redeemed."
    )
    rows = [
        [r.customer_id, r.segment, r.tier, _usd(r.value_12m_usd), _usd(r.coupon_usd), r.points, _usd(r.min_order_usd),
         r.expires_on]
        for r in d.rows
    ]
    table = _table(["Customer", "Segment", "Tier", "12-month value", "Coupon", "or points", "Min order", "Expires"], rows)
    sample = f"\n\nMessage to {d.rows[0].customer_id}: \"{d.rows[0].message}\"" if d.rows else ""
    return head + ("\n\n" + table if rows else "") + sample + _notes(d.notes)


def render_churn_evaluation(e: ChurnEvaluation) -> str:
    rows = [
        [name, f"{m.auc:.3f}", f"{m.pr_auc:.3f}", f"{m.brier:.4f}", f"{m.top_decile_lift:.3f}"]
        for name, m in (("ours (LightGBM)", e.ours), ("BG/NBD", e.bgnbd))
    ]
    head = (
        f"Churn evaluation as of {e.as_of}, horizon {e.horizon_days} days: {e.customers} customers, "
        f"churn rate {e.churn_rate:.3f} (trained on {e.train_customers} customers, churn rate {e.train_churn_rate:.3f})."
    )
    return head + "\n\n" + _table(["Model", "AUC", "PR-AUC", "Brier", "Top-decile lift"], rows) + _notes(e.notes)
