"""The marketer tools' typed outputs on a simulated shop: consistent numbers, filters, units, no NaN, marketer only."""

import re

import pytest

from tools.analytics import (
    draft_retention_offer,
    get_customer_profile,
    lookup_segment,
    score_churn,
    summarize_segments,
)
from tools.analytics.offers import OfferPolicy
from tools.analytics.rfm import SEGMENT_ZH, SEGMENTS
from tools.context import ShopContext
from tools.errors import NotFoundError, ToolInputError


def test_summarize_segments(marketer, helpers):
    s = summarize_segments(marketer)
    helpers.assert_no_nan(s.model_dump(mode="json"))
    assert [r.segment for r in s.rows] == list(SEGMENTS)
    assert sum(r.customers for r in s.rows) == s.customers > 0
    assert sum(r.share_of_customers for r in s.rows) == pytest.approx(1.0, abs=1e-3)
    assert sum(r.revenue_share for r in s.rows) == pytest.approx(1.0, abs=1e-3)
    assert s.units["money"] == "USD" and "probability" in s.units["churn_probability"]
    champions = next(r for r in s.rows if r.segment == "Champions")
    lost = next(r for r in s.rows if r.segment == "Lost")
    assert champions.avg_value_12m_usd > lost.avg_value_12m_usd
    assert champions.avg_churn_probability < lost.avg_churn_probability
    text = s.render()
    assert str(s.as_of) in text and "Champions" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| Segment")]
    assert [line.split(" | ")[0][2:] for line in rows] == list(SEGMENTS)  # every segment, none left out
    champions_line = next(line for line in rows if line.startswith("| Champions |"))
    assert f"${champions.revenue_usd:.2f}" in champions_line


def test_lookup_segment_by_name_and_by_customer(marketer):
    res = lookup_segment(marketer, segment="champions", limit=5)
    assert res.segment == "Champions" and 0 < len(res.rows) <= 5 <= res.members_total
    values = [m.value_12m_usd for m in res.rows]
    assert values == sorted(values, reverse=True)
    one = res.rows[0]
    by_email = lookup_segment(marketer, customer=one.email.upper())
    assert by_email.rows[0].customer_id == one.customer_id and by_email.segment == "Champions"
    assert one.customer_id in by_email.render() and one.customer_id in by_email.render("zh")
    with pytest.raises(ToolInputError, match="segments are") as info:
        lookup_segment(marketer, segment="whales")
    assert info.value.user_message().startswith("I couldn't find a segment called 'whales'. The segments are: ")
    assert "unknown segment" not in info.value.user_message() and "分群" in info.value.user_message("zh")
    with pytest.raises(ToolInputError) as info:
        lookup_segment(marketer, segment="champs")
    assert info.value.user_message() == "I couldn't find a segment called 'champs'. Did you mean Champions?"
    with pytest.raises(ToolInputError):
        lookup_segment(marketer)
    with pytest.raises(NotFoundError):
        lookup_segment(marketer, customer="nobody@example.com")


def test_score_churn_ranks_filters_and_explains(marketer, helpers):
    t = score_churn(marketer, top_n=10)
    helpers.assert_no_nan(t.model_dump(mode="json"))
    assert len(t.rows) == 10 and t.churn_method == "lightgbm"
    probs = [r.churn_probability for r in t.rows]
    assert probs == sorted(probs, reverse=True)
    assert all(r.reasons for r in t.rows)
    assert all(r.value_at_risk_usd == pytest.approx(r.churn_probability * r.value_12m_usd, abs=0.01) for r in t.rows)
    high = score_churn(marketer, top_n=50, tier="high", min_value=1.0)
    assert high.rows and all(r.tier == "high" and r.value_12m_usd >= 1.0 for r in high.rows)
    at_risk = score_churn(marketer, top_n=5, segment="At risk")
    assert all(r.segment == "At risk" for r in at_risk.rows)
    assert "Churn risk as of" in t.render() and t.rows[0].customer_id in t.render()
    assert all(f"| {r.rank} | {r.customer_id} |" in t.render() for r in t.rows)  # every row, not a header alone
    with pytest.raises(ToolInputError):
        score_churn(marketer, top_n=0)
    with pytest.raises(ToolInputError):
        score_churn(marketer, segment="nope")
    with pytest.raises(ToolInputError, match="horizon_days"):
        score_churn(marketer, horizon_days=2000)


def test_the_chinese_churn_table_and_profile_give_reasons_and_segments_in_chinese(marketer):
    # a Chinese-speaking marketer reads the reasons in Chinese and each segment as its translation beside its name;
    # the English table is unchanged
    t = score_churn(marketer, top_n=5)
    zh, en = t.render("zh"), t.render("en")
    for r in t.rows:
        assert r.reasons_zh and not re.search(r"[a-z]{3,}", r.reasons_zh.replace("BG/NBD", ""))
        assert f"| {r.reasons_zh} |" in zh and f"| {r.reasons} |" in en and r.reasons_zh not in en
        assert f"| {SEGMENT_ZH[r.segment]}({r.segment}) |" in zh and f"| {r.segment} |" in en
    p = get_customer_profile(marketer, t.rows[0].customer_id)
    assert len(p.churn_reasons_zh) == len(p.churn_reasons) > 0
    text = p.render("zh")
    assert ";".join(p.churn_reasons_zh) in text and "; ".join(p.churn_reasons) not in text
    assert f"{SEGMENT_ZH[p.segment]}({p.segment})" in text


def test_customer_profile(marketer, helpers):
    top = score_churn(marketer, top_n=1, tier="high").rows[0]
    p = get_customer_profile(marketer, top.customer_id)
    helpers.assert_no_nan(p.model_dump(mode="json"))
    assert p.customer_id == top.customer_id and p.tier == "high"
    assert p.orders >= 1 and p.spend_usd > 0 and p.recent_orders
    assert p.favourite_categories and set(p.favourite_categories) <= {"Headphones", "Laptops", "Cameras", "Phones"}
    assert p.churn_probability == pytest.approx(top.churn_probability)
    assert p.churn_reasons
    assert p.last_order_date == max(o.date for o in p.recent_orders if o.status != "cancelled")
    text = p.render()
    assert p.customer_id in text and p.segment in text
    assert all(o.order_id in text for o in p.recent_orders)
    with pytest.raises(NotFoundError):
        get_customer_profile(marketer, "c9999")


def test_retention_offer_stays_within_policy(marketer, helpers):
    policy = OfferPolicy()
    d = draft_retention_offer(marketer, segment="At risk")
    helpers.assert_no_nan(d.model_dump(mode="json"))
    assert d.sent is False and d.rows
    for r in d.rows:
        assert policy.min_coupon_usd <= r.coupon_usd <= policy.max_coupon_usd
        assert r.coupon_usd <= policy.max_share_of_order * r.min_order_usd + 1e-9
        assert r.points == r.coupon_usd * policy.points_per_usd
        assert f"${r.coupon_usd:.2f} off" in r.message and r.expires_on.isoformat() in r.message
    assert d.max_total_cost_usd == pytest.approx(sum(r.coupon_usd for r in d.rows))
    # Bigger predicted value never gets a smaller coupon.
    ordered = sorted(d.rows, key=lambda r: r.value_12m_usd)
    assert [r.coupon_usd for r in ordered] == sorted(r.coupon_usd for r in ordered)
    picked = draft_retention_offer(marketer, customers=[d.rows[0].customer_id, "c0001@example.com"])
    assert {r.customer_id for r in picked.rows} <= {d.rows[0].customer_id, "c0001"}
    assert "not sent" in picked.render() and "尚未发送" in picked.render("zh")
    with pytest.raises(ToolInputError):
        draft_retention_offer(marketer)


def test_tools_are_for_marketers_only(shop, settings):
    customer = ShopContext(store=shop, settings=settings, role="customer", customer_id="c0001")
    for call in (lambda: summarize_segments(customer), lambda: score_churn(customer),
                 lambda: get_customer_profile(customer, "c0002"), lambda: lookup_segment(customer, segment="Lost"),
                 lambda: draft_retention_offer(customer, segment="Lost")):
        with pytest.raises(PermissionError):
            call()


def test_snapshot_is_cached_per_session(marketer):
    summarize_segments(marketer)
    cached = dict(marketer.cache["analytics_snapshots"])
    score_churn(marketer, top_n=3)
    assert marketer.cache["analytics_snapshots"] == cached


def test_amounts_render_in_the_shops_currency(sqlite_store, settings, helpers):
    """A GBP shop: every table and sentence shows pounds, the units say GBP, and the facts match the text."""
    from store.shop import set_shop_currency

    helpers.simulate_shop(sqlite_store, n_customers=200, seed=3)
    with sqlite_store.transaction() as s:
        set_shop_currency(s, "GBP", has_orders=False)
    ctx = ShopContext(store=sqlite_store, settings=settings, role="marketer")
    churn = score_churn(ctx, top_n=5)
    top = churn.rows[0].customer_id
    results = [summarize_segments(ctx), churn, lookup_segment(ctx, segment="Lost"), get_customer_profile(ctx, top),
               draft_retention_offer(ctx, customers=[top])]
    for result in results:
        text = result.render("en") + result.render("zh")
        assert "£" in text and "$" not in text, type(result).__name__
        assert result.currency == "GBP" and result.units["money"] == "GBP"
        assert "USD" not in " ".join(result.units.values())
        amounts = [f.value for f in result.facts() if f.kind == "amount"]
        assert amounts and all(str(a).startswith(("£", "-£")) and str(a) in text for a in amounts)
    assert f"£{churn.rows[0].value_12m_usd:.2f}" in churn.render()
