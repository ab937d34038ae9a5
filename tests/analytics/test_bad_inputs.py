"""Bad input: clear messages or sensible results, never a crash and never a NaN."""

from datetime import date, datetime

import pytest

from shopdesk.output import UserError
from store.importers.transactions import parse_columns
from tools.analytics import draft_retention_offer, get_customer_profile, lookup_segment, score_churn, summarize_segments
from tools.analytics.evaluate import evaluate_churn, evaluate_file
from tools.context import ShopContext
from tools.errors import ToolInputError


def _ctx(store, settings):
    return ShopContext(store=store, settings=settings, role="marketer")


def test_empty_shop_gives_empty_results_with_a_note(sqlite_store, settings, helpers):
    ctx = _ctx(sqlite_store, settings)
    s = summarize_segments(ctx)
    assert s.customers == 0 and all(r.customers == 0 for r in s.rows)
    assert any("no orders" in n for n in s.notes)
    t = score_churn(ctx)
    assert t.rows == [] and t.churn_method == "unavailable"
    assert lookup_segment(ctx, segment="Lost").rows == []
    assert draft_retention_offer(ctx, segment="Lost").rows == []
    for result in (s, t):
        helpers.assert_no_nan(result.model_dump(mode="json"))
    with pytest.raises(UserError, match="no orders"):
        evaluate_churn(sqlite_store, datetime(2024, 1, 1).date())


def test_as_of_outside_the_data(marketer):
    with pytest.raises(ToolInputError, match="before the shop's first order"):
        summarize_segments(marketer, as_of="1990-01-01")
    with pytest.raises(ToolInputError, match="in the future"):
        score_churn(marketer, as_of="2999-01-01")
    with pytest.raises(ToolInputError, match="after the latest order"):
        summarize_segments(marketer, as_of="2025-06-30")
    with pytest.raises(ToolInputError, match="YYYY-MM-DD"):
        summarize_segments(marketer, as_of="last tuesday")


def test_one_order_customers_and_no_repeat_purchases(sqlite_store, settings, helpers):
    """Nobody ever bought twice: segments still work; value falls back to past spend; churn says why it cannot."""
    rows = [(f"u{i:03d}", datetime(2024, 1, 1 + i % 28, 12), 10.0 + i, "delivered") for i in range(60)]
    helpers.add_orders(sqlite_store, rows)
    ctx = _ctx(sqlite_store, settings)
    s = summarize_segments(ctx)
    helpers.assert_no_nan(s.model_dump(mode="json"))
    assert s.customers == 60 and s.churn_method == "unavailable"
    assert any("repeat" in n for n in s.notes)
    t = score_churn(ctx)
    assert t.rows == [] and any("Churn cannot be estimated" in n for n in t.notes)
    p = get_customer_profile(ctx, "u001")
    helpers.assert_no_nan(p.model_dump(mode="json"))
    assert p.orders == 1 and p.usual_gap_days is None and p.churn_probability is None
    assert p.tier in ("high", "medium", "low")
    offer = draft_retention_offer(ctx, customers=["u001"])
    assert offer.rows and offer.rows[0].coupon_usd >= 5


def test_short_history_falls_back_to_bgnbd(sqlite_store, settings, helpers):
    """Less history than the horizon: no training window, so BG/NBD scores churn (and says so)."""
    rows = []
    for i in range(40):
        rows.append((f"k{i:02d}", datetime(2024, 3, 1, 9), 20.0, "delivered"))
        if i % 2:
            rows.append((f"k{i:02d}", datetime(2024, 3, 10 + i % 15, 9), 25.0, "delivered"))
    helpers.add_orders(sqlite_store, rows)
    t = score_churn(_ctx(sqlite_store, settings), top_n=5)
    helpers.assert_no_nan(t.model_dump(mode="json"))
    assert t.churn_method == "bgnbd" and len(t.rows) == 5
    assert any("BG/NBD" in n for n in t.notes)
    assert all(r.reasons for r in t.rows)


def test_customer_without_purchases_has_a_profile(sqlite_store, settings, helpers):
    helpers.add_orders(sqlite_store, [("a", datetime(2024, 1, 1), 10.0, "delivered"),
                                      ("b", datetime(2024, 1, 2), 10.0, "cancelled")])
    p = get_customer_profile(_ctx(sqlite_store, settings), "b@example.com")
    assert p.segment == "No purchases" and p.orders == 0 and p.notes


def test_horizon_longer_than_the_data(sqlite_store, helpers):
    helpers.simulate_shop(sqlite_store, n_customers=80, seed=3)
    with pytest.raises(UserError, match="horizon is longer than the data"):
        evaluate_churn(sqlite_store, helpers.END.date(), 90)
    with pytest.raises(UserError, match="no training window"):
        evaluate_churn(sqlite_store, datetime(2023, 1, 20).date(), 90)


@pytest.mark.parametrize(
    "text,message",
    [
        ("id,day,total\n1,2024-01-01,5.0\n2,2024-13-01,3.0\n", "line 3: field 'date'"),
        ("id,day,total\n1,2024-01-01,5.0\n2,2024-01-02,abc\n", "line 3: field 'amount'"),
        ("id,day,total\n1,2024-01-01,5\n,2024-01-02,3\n", "line 3: field 'customer'"),
        ("who,when\n1,2024-01-01\n", "unknown column 'id'"),
        ("", "empty"),
    ],
)
def test_bad_transaction_files_name_the_line_and_field(tmp_path, text, message):
    path = tmp_path / "tx.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        evaluate_file(path, parse_columns("customer=id,date=day,amount=total"), date(2024, 1, 1), 90, tmp_path)
