"""The tool-call text format and the schemas calls are validated against."""

from __future__ import annotations

import pytest

from agent.backends import LocalChatModel, to_chat_dicts
from agent.parsing import parse_tool_calls, safe_prefix_len
from agent.testing import call
from agent.toolspec import tool_spec
from tools.context import ShopContext


def modify_thing(ctx: ShopContext, order_id: str, item_ids: list[str], note: str | None = None, k: int = 3) -> dict:
    """Change something on an order.

    Args:
        order_id: The order, like '#W1'.
        item_ids: Item ids to change.
        note: Optional note.
        k: How many.
    """
    return {"order_id": order_id}


def test_parse_well_formed_and_text_before():
    content, calls = parse_tool_calls('Let me look.<tool_call>{"name": "a", "arguments": {"x": 1}}</tool_call>'
                                      '<tool_call>{"name": "b", "arguments": "{\\"y\\": 2}"}</tool_call>')
    assert content == "Let me look."
    assert [(c.name, c.arguments, c.error) for c in calls] == [("a", {"x": 1}, None), ("b", {"y": 2}, None)]


def test_parse_broken_json_keeps_name_and_error():
    _, calls = parse_tool_calls('<tool_call>{"name": "get_order_details", "arguments": {"order_id": #W1}}')
    assert calls[0].name == "get_order_details" and "not valid JSON" in calls[0].error


def test_plain_text_has_no_calls():
    assert parse_tool_calls("Your order is on its way.") == ("Your order is on its way.", [])


@pytest.mark.parametrize("text,n", [("hello", 5), ("hello <tool", 6), ("a<tool_call>{", 1), ("x<", 1)])
def test_safe_prefix_holds_back_partial_tag(text, n):
    assert safe_prefix_len(text) == n


def test_local_to_message_splits_valid_and_invalid():
    ai = LocalChatModel.to_message('<tool_call>{"name": "a", "arguments": {}}</tool_call>'
                                   '<tool_call>{"name": "b", "arguments": [1]}</tool_call>')
    assert [c["name"] for c in ai.tool_calls] == ["a"]
    assert [c["name"] for c in ai.invalid_tool_calls] == ["b"]


def test_schema_has_no_ctx_and_docstring_descriptions():
    spec = tool_spec(modify_thing)
    props = spec.schema["properties"]
    assert set(props) == {"order_id", "item_ids", "note", "k"}
    assert spec.schema["required"] == ["order_id", "item_ids"]
    assert props["order_id"]["description"] == "The order, like '#W1'."
    assert spec.description == "Change something on an order."
    assert spec.schema["additionalProperties"] is False


@pytest.mark.parametrize("args,where", [({"item_ids": ["1"]}, "order_id"),
                                        ({"order_id": 5, "item_ids": []}, "order_id"),
                                        ({"order_id": "#W1", "item_ids": "1"}, "item_ids"),
                                        ({"order_id": "#W1", "item_ids": [], "customer_id": "x"}, "customer_id"),
                                        ({"order_id": "#W1", "item_ids": [], "k": "3"}, "k"),
                                        ({"order_id": "#W1", "item_ids": [7]}, "item_ids.0"),
                                        ("#W1", "JSON object")])
def test_invalid_arguments_are_named(args, where):
    with pytest.raises(ValueError, match=where):
        tool_spec(modify_thing).validate(args)


def test_valid_arguments_keep_defaults_out():
    assert tool_spec(modify_thing).validate({"order_id": "#W1", "item_ids": ["1"]}) == {"order_id": "#W1",
                                                                                      "item_ids": ["1"]}


def test_template_renders_compact_tools_and_calls(shared_tokenizer_template):
    render = shared_tokenizer_template
    tools = [tool_spec(modify_thing).openai()]
    text = render([{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}, *to_chat_dicts(
        [call("modify_thing", order_id="#W1", item_ids=["1"])])], tools)
    assert "- modify_thing(order_id: string, item_ids: array, note?: any, k?: integer): Change something" in text
    arguments = '{"order_id": "#W1", "item_ids": ["1"]}'
    assert f'<tool_call>{{"name": "modify_thing", "arguments": {arguments}}}</tool_call>' in text


@pytest.fixture
def shared_tokenizer_template():
    from jinja2 import Environment

    from agent.backends import TEMPLATE

    env = Environment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda v: __import__("json").dumps(v, ensure_ascii=False)
    template = env.from_string(TEMPLATE.read_text())
    return lambda messages, tools: template.render(messages=messages, tools=tools, add_generation_prompt=True)
