"""The marketer console's Journey panel and funnel chart: the handlers called directly on a hand-built shop, no
browser; the table rows and bar heights are the tools' own.
"""

from __future__ import annotations

import gradio as gr
import pytest
from journey_shop import ZH_COMPLAINT, build_journey_shop

from tools.analytics import get_customer_journey, journey_funnel
from ui import service


@pytest.fixture
def console(sqlite_store, tmp_path):
    from shopdesk.settings import get_settings
    from ui.app import AppServices, ConsoleState, MarketerHandlers

    build_journey_shop(sqlite_store)
    settings = get_settings(data_dir=tmp_path / "data")
    svc = AppServices(settings, store=sqlite_store)
    return MarketerHandlers(settings, svc), ConsoleState(), svc


def test_journey_panel_shows_the_timeline_and_transitions(console):
    handlers, state, svc = console
    table, summary = handlers.marketer_journey(state, " ann@example.com ")
    result = get_customer_journey(svc.marketer_context(), "ann")
    assert list(table.columns) == ["time", "stage", "what", "sentiment", "intent", "mentions"]
    assert table.values.tolist() == [s.row("en", result.currency) for s in result.steps]
    assert list(table["stage"]) == ["browse", "search", "cart", "purchase", "support", "review", "return"]
    support = table[table["stage"] == "support"].iloc[0]
    assert ZH_COMPLAINT in support["what"] and (support["sentiment"], support["intent"]) == ("negative",
                                                                                             "order status")
    assert "**Journey of ann** (Ann Lee, ann@example.com): 7 steps, 2024-03-01 to 2024-03-10." in summary
    assert "- browse → cart: 2.5 days (2024-03-01 → 2024-03-03)" in summary
    assert "Furthest funnel stage: **review**; has returned an order. Last step: return." in summary


def test_journey_panel_says_what_is_wrong(console):
    handlers, state, _ = console
    table, summary = handlers.marketer_journey(state, "ghost@example.com")
    assert summary == "Journey: I couldn't find a customer with id or email 'ghost@example.com'. Could you check it?"
    assert "Traceback" not in summary
    _, summary = handlers.marketer_journey(state, "   ")
    assert "Type a customer id or email" in summary
    with pytest.raises(gr.Error):
        handlers.marketer_journey(None, "ann")


def test_funnel_chart_uses_the_console_filters(console):
    handlers, state, svc = console
    chart, table, note = handlers.marketer_funnel(state, "All", "All", "category", "Headphones", "2024-02-01", "")
    result = journey_funnel(svc.marketer_context(), category="Headphones", start="2024-02-01")
    assert list(chart["stage"]) == service.FUNNEL_ORDER
    assert list(chart["customers"]) == [r.customers for r in result.rows]
    assert list(table["customers"]) == [r.customers for r in result.rows]
    assert table["dropped off"].tolist()[:3] == [r.dropped for r in result.rows[:3]]
    assert note.startswith(f"Funnel 2024-02-01 to {result.last_event} (category Headphones).")
    # "Reviews of: product" is not a category: the funnel then counts every category
    chart, _, note = handlers.marketer_funnel(state, "All", "All", "product", "Quiet Headphones", "", "")
    assert list(chart["customers"]) == [r.customers for r in journey_funnel(svc.marketer_context()).rows]
    _, _, note = handlers.marketer_funnel(state, "All", "All", "category", "", "2024-13-01", "")
    assert note == "Funnel: Please give the date as year-month-day (YYYY-MM-DD)."
    assert handlers.marketer_funnel_quiet(None, "All", "All", "category", "", "", "") == (gr.skip(),) * 3


def test_the_app_wires_the_journey_panel(console):
    from ui.app import build_app

    _, _, svc = console
    app = build_app(svc.settings, services=svc)
    names = {fn.api_name for fn in app.fns.values()}
    assert {"marketer_journey", "marketer_funnel", "marketer_panels"} <= names
