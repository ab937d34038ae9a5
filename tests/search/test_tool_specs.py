"""The search tools as the agent sees them: ctx first, no identity argument, every argument documented."""

from __future__ import annotations

import inspect

from tools import search

TOOLS = [search.search_products, search.search_reviews, search.review_insights, search.recommend_products]


def test_signatures_and_docstrings():
    for fn in TOOLS:
        params = list(inspect.signature(fn).parameters)
        assert params[0] == "ctx", fn.__name__
        assert not {"customer_id", "user_id", "customer", "user"} & set(params), fn.__name__
        doc = inspect.getdoc(fn)
        assert doc and doc.splitlines()[0].endswith("."), fn.__name__
        for p in params[1:]:
            assert f"\n    {p}: " in doc, f"{fn.__name__} does not document {p} under Args:"


def test_agent_builds_schemas_and_finds_the_tools():
    from agent.toolspec import tool_spec
    from tools.registry import tool_functions

    spec = tool_spec(search.search_products)
    assert spec.schema["required"] == ["query"]
    assert set(spec.schema["properties"]) == {"query", "min_price", "max_price", "category", "min_rating",
                                              "in_stock", "k"}
    names = {fn.__name__ for fn in tool_functions("customer")}
    assert {"search_products", "search_reviews", "review_insights", "recommend_products"} <= names
    assert "recommend_products" not in {fn.__name__ for fn in tool_functions("marketer")}
