"""Analytics results as the console's tables and chart data, built from the tools' own result models."""

from __future__ import annotations

from datetime import date

from shopdesk.output import to_jsonable
from ui import service


def _churn(probabilities):
    from tools.analytics.models import ChurnRow, ChurnTable

    rows = [
        ChurnRow(rank=i + 1, customer_id=f"c{i}", churn_probability=p, value_12m_usd=100.0, value_at_risk_usd=100 * p,
                 segment="At risk", tier="high", last_order_days_ago=30.0, orders=2, reasons="no order for 30 days")
        for i, p in enumerate(probabilities)
    ]
    return ChurnTable(as_of=date(2026, 10, 31), horizon_days=90, churn_method="lightgbm", filters={},
                      customers_scored=40, rows=rows)


def test_churn_view_buckets_every_row_once(tmp_path):
    probs = [0.0, 0.19, 0.2, 0.55, 0.81, 1.0]
    view = service.churn_view(to_jsonable(_churn(probs)))
    assert view.as_of == "2026-10-31" and view.scored == 40
    assert list(view.table["churn_probability"]) == sorted(probs, reverse=True)
    assert dict(zip(view.risk["risk"], view.risk["customers"], strict=True)) == {
        "0-20%": 2, "20-40%": 1, "40-60%": 1, "60-80%": 0, "80-100%": 2}
    path = service.write_csv(view.table, tmp_path, "c.csv")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("rank,customer_id") and len(lines) == len(probs) + 1


def test_churn_columns_are_named_in_the_shops_currency():
    pounds = to_jsonable(_churn([0.5]).model_copy(update={"currency": "GBP"}))
    cols = list(service.churn_view(pounds).table.columns)
    assert "value_12m_gbp" in cols and "value_at_risk_gbp" in cols and not any(c.endswith("_usd") for c in cols)
    assert "value_12m_usd" in service.churn_view(to_jsonable(_churn([0.5]))).table.columns  # a dollar shop as before


def test_empty_churn_result_says_so():
    view = service.churn_view(to_jsonable(_churn([])))
    assert view.table.empty and view.note and int(view.risk["customers"].sum()) == 0


def test_segments_view():
    from tools.analytics.models import SegmentRow, SegmentSummary

    rows = [SegmentRow(segment=s, description="", customers=n, share_of_customers=0.5, revenue_usd=1.0,
                       revenue_share=0.5, avg_value_12m_usd=1.0) for s, n in (("Champions", 3), ("Lost", 5))]
    result = SegmentSummary(as_of=date(2026, 10, 31), horizon_days=90, customers=8, churn_method="lightgbm", rows=rows)
    view = service.segments_view(to_jsonable(result))
    assert dict(zip(view.sizes["segment"], view.sizes["customers"], strict=True)) == {"Champions": 3, "Lost": 5}
    assert view.as_of == "2026-10-31"


def test_insights_view():
    from tools import search
    result = search.ReviewInsights(
        scope="category Headphones", reviews=3, average_rating=3.7, rating_distribution={"1": 1, "5": 2},
        sentiment_share={"positive": 0.67, "negative": 0.33},
        top_positive=[search.AspectCount(aspect="sound", mentions=2, quotes=['review r1: """great sound"""'])],
        top_negative=[search.AspectCount(aspect="battery", mentions=1, quotes=['review r2: """battery died"""'])],
        trend=[], as_of="2026-10-31",
    )
    view = service.insights_view(to_jsonable(result))
    assert view.subject == "category Headphones"
    assert view.aspects.to_dict("records") == [
        {"aspect": "sound", "sentiment": "positive", "mentions": 2},
        {"aspect": "battery", "sentiment": "negative", "mentions": 1},
    ]
    assert list(view.ratings["reviews"]) == [1, 2]
    assert view.quotes == ["**sound** (positive): “great sound” (review r1)",
                           "**battery** (negative): “battery died” (review r2)"]


def test_call_tool_passes_only_filters_the_tool_takes(monkeypatch):
    import tools.registry

    seen = {}

    def score_churn(ctx, segment=None, tier=None):
        seen.update(segment=segment, tier=tier)
        return {"rows": []}

    monkeypatch.setattr(tools.registry, "tool_functions", lambda role: [score_churn])
    service.call_tool("score_churn", None, segment="All", tier="high", horizon_days=90)
    assert seen == {"segment": None, "tier": "high"}
