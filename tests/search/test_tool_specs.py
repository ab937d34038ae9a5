"""The search tools as the agent sees them: their schemas, and which roles are offered them."""

from __future__ import annotations

from tools import search


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
