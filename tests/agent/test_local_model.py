"""The in-process backend on the real SmolLM2: template rendering, streaming, tool calls under the grammar (and the
prefill fallback without it), a turn with a tool.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from agent.backends import LocalChatModel, ModelCache
from agent.session import open_session
from agent.testing import ScriptedChatModel
from agent.toolspec import tool_spec
from tools.orders import get_order_details

pytestmark = pytest.mark.slow


@pytest.fixture
def local(shared_models_dir):
    models = ModelCache()  # the test's own: the process's default cache is left alone
    model = LocalChatModel(model_path=str(shared_models_dir), adapter=None, max_new_tokens=64, torch_threads=2,
                           loaded_models=models)
    yield model
    models.clear()


def test_prompt_uses_the_tool_template(local):
    spec = tool_spec(get_order_details)
    prompt = local.prompt_text([SystemMessage("Be brief."), HumanMessage("Where is #W1?")], [spec.openai()])
    assert "- get_order_details(order_id: string):" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_streaming_matches_invoke(local):
    msgs = [HumanMessage("Say hello in three words.")]
    chunks = [c.content for c in local.stream(msgs)]
    assert len([c for c in chunks if c]) > 1
    assert "".join(chunks).strip() == local.invoke(msgs).content


def test_forced_tool_call_is_parsed(local):
    spec = tool_spec(get_order_details)
    bound = local.bind_tools([spec.openai()], tool_choice="get_order_details", enums={"order_id": ["#W2611340"]})
    ai = bound.invoke([HumanMessage("Where is my order #W2611340?")])
    # the base model, forced under the grammar: exactly one valid call, with the only order id it may name
    assert [c["name"] for c in ai.tool_calls] == ["get_order_details"] and not ai.invalid_tool_calls
    assert ai.tool_calls[0]["args"] == {"order_id": "#W2611340"}
    assert ai.response_metadata["raw_text"].startswith('<tool_call>{"name": "get_order_details", "arguments": {')


def test_without_the_grammar_a_forced_call_is_prefilled(local):
    spec = tool_spec(get_order_details)
    bound = local.bind_tools([spec.openai()], tool_choice="get_order_details", grammar=False)
    prompt = local.prompt_text([HumanMessage("Where is #W1?")], [spec.openai()], "get_order_details", grammar=False)
    assert prompt.endswith('<tool_call>{"name": "get_order_details", "arguments": {"order_id": "')
    ai = bound.invoke([HumanMessage("Where is my order #W2611340?")])
    names = [c["name"] for c in ai.tool_calls] + [c["name"] for c in ai.invalid_tool_calls]
    assert names[:1] == ["get_order_details"]
    assert "<tool_call>" in ai.response_metadata["raw_text"]


def test_streaming_under_the_grammar_never_shows_call_markup(local):
    spec = tool_spec(get_order_details)
    bound = local.bind_tools([spec.openai()], enums={"order_id": ["#W2611340"]})
    msgs = [HumanMessage("Say hello in three words.")]
    chunks = list(bound.stream(msgs))
    shown = "".join(c.content for c in chunks if isinstance(c.content, str))
    assert "<tool_call>" not in shown and "<|im_start|>" not in shown
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    raw = merged.response_metadata["raw_text"]
    if merged.tool_call_chunks:  # the grammar's other way out: one valid call, shown as nothing
        assert raw.startswith("<tool_call>") and not shown.strip() and not merged.invalid_tool_calls
    else:
        assert shown.strip() == raw.strip()


def test_turn_with_a_real_model_and_a_tool(settings, tau2_store, local):
    """The first step is the real model forced to call the tool; the answer is the real model's own text."""
    spec = tool_spec(get_order_details)
    forced = local.bind_tools([spec.openai()], tool_choice="get_order_details")
    free = local.bind_tools([spec.openai()])
    model = ScriptedChatModel(script=[lambda msgs: forced.invoke(msgs)], fallback=lambda msgs: free.invoke(msgs))
    session = open_session(settings, "customer", "james_li_5688", model=model, store=tau2_store,
                           tools=[get_order_details])
    events = list(session.respond("Where is my order #W2611340?"))
    kinds = [e.kind for e in events]
    assert kinds[-1] == "final" and events[-1].text.strip()
    calls = [e for e in events if e.kind == "tool_call"]
    if calls:  # the model filled valid arguments: the tool ran and its result went back into the prompt
        assert calls[0].name == "get_order_details" and "tool_result" in kinds
        assert any(m.type == "tool" for m in model.requests[-1]["messages"])
    else:  # it did not: the invalid call was fed back once and never reached the tool
        assert session.stats["invalid_calls"] >= 1
    # whatever the small model said, it cannot misstate this order's status
    if "delivered" in events[-1].text.lower() or "pending" in events[-1].text.lower():
        pytest.fail(f"ungrounded status reached the customer: {events[-1].text!r}")
