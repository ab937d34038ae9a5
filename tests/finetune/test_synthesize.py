"""Synthesis plays conversations through the real agent: every tool result is the tool's real output on the store."""

from __future__ import annotations

import random

import pytest

from finetune.synthesize import Planner, ShopView, load_bitext, play, read_shop, shown_id, with_order_id
from finetune.transcripts import parse_row


@pytest.fixture
def planner_env(tau2_store, settings):
    view = read_shop(tau2_store, exclude=set())
    return tau2_store, settings, view


def _planner(view: ShopView, seed: int = 0) -> Planner:
    return Planner(view, load_bitext(), random.Random(seed))


def _tool_messages(t):
    calls = {tc["id"]: tc["function"] for m in t.messages for tc in m.get("tool_calls") or []}
    return [(calls[m["tool_call_id"]], m["content"]) for m in t.messages if m["role"] == "tool"]


def test_bitext_order_ids_are_replaced_by_real_ones():
    bitext = load_bitext()
    assert len(bitext["cancel_order"]) > 50 and len(bitext["track_order"]) > 50
    u = next(u for u in bitext["track_order"] if u["entity_type"] == "order_id")
    text = with_order_id(u, "#W2611340")
    assert "#W2611340" in text and u["text"][u["start"]:u["end"]] not in text
    assert shown_id("#W2611340", random.Random(1)).endswith("2611340")


def test_status_conversation_carries_the_real_tool_output(planner_env):
    from agent.grounding import render
    from tools.context import ShopContext
    from tools.orders import get_order_details

    store, settings, view = planner_env
    plan = _planner(view).status("en")
    t = play(plan, settings, store)
    parse_row(t.to_openai())  # a valid transcript
    assert t.messages[0]["role"] == "system" and t.tools
    assert {f["function"]["name"] for f in t.tools} >= {"get_order_details", "cancel_pending_order"}
    ((call, content),) = _tool_messages(t)
    assert call["name"] == "get_order_details"
    ctx = ShopContext(store=store, settings=settings, role="customer", customer_id=plan.customer_id)
    assert content == render(get_order_details(ctx, **call["arguments"]))
    assert t.customer_id == plan.customer_id and t.meta["kind"] == "status"


def test_cancel_is_confirmed_then_executed_and_code_turns_are_not_learned(planner_env):
    from store.models import Order

    store, settings, view = planner_env
    plan = _planner(view, seed=2).cancel("en", confirm=True)
    order_id = plan.script[0]["tool_calls"][0]["arguments"]["order_id"]
    t = play(plan, settings, store)
    with store.read() as s:
        assert s.get(Order, order_id).status == "cancelled"
    assistants = [m for m in t.messages if m["role"] == "assistant"]
    assert assistants[0]["tool_calls"][0]["function"]["name"] == "cancel_pending_order"
    # the confirmation summary and the executed result are written by the agent's code: context only
    assert [m.get("weight", 1) for m in assistants] == [1, 0, 0]
    assert "Shall I go ahead" in assistants[1]["content"]


def test_other_customers_order_is_not_found_and_chinese_works(planner_env):
    store, settings, view = planner_env
    plan = _planner(view, seed=3).other_customer("zh")
    t = play(plan, settings, store)
    ((call, content),) = _tool_messages(t)
    assert content.startswith("error:") and "no order" in content
    assert any("\u4e00" <= ch <= "\u9fff" for ch in t.messages[1]["content"])


def test_return_is_multi_step_with_real_item_and_payment_ids(planner_env):
    store, settings, view = planner_env
    plan = _planner(view, seed=4).return_items("en")
    t = play(plan, settings, store)
    names = [c["name"] for c, _ in _tool_messages(t)]
    assert names == ["get_order_details", "return_delivered_order_items"]
    details, proposal = _tool_messages(t)
    args = proposal[0]["arguments"]
    assert args["item_ids"][0] in details[1] and args["payment_method_id"] in details[1]
    assert "Shall I go ahead" in proposal[1]


def test_handoff_and_refusal(planner_env):
    store, settings, view = planner_env
    p = _planner(view, seed=5)
    t = play(p.handoff("en"), settings, store)
    assert [c["name"] for c, _ in _tool_messages(t)] == ["transfer_to_human"]
    t = play(p.refusal("en"), settings, store)
    assert not _tool_messages(t) and t.messages[-1]["content"].startswith("Sorry")


def test_marketer_conversations_carry_real_analytics_output(sample_store, settings):
    from agent.grounding import render
    from tools.analytics import segments
    from tools.context import ShopContext
    from tools.registry import MARKETER_TOOLS

    view = read_shop(sample_store, exclude=set())
    p = _planner(view, seed=6)
    seen = {}
    for lang in ("en", "zh", "en", "zh") * 6:
        plan = p.marketer(lang)
        assert plan.role == "marketer" and plan.customer_id is None
        call = plan.script[0]["tool_calls"][0]
        assert call["name"] in MARKETER_TOOLS
        seen.setdefault(call["name"], (plan, lang))
    assert {"summarize_segments", "score_churn", "search_reviews"} <= set(seen)
    plan, lang = seen["summarize_segments"]
    t = play(plan, settings, sample_store)
    parse_row(t.to_openai())
    ((call, content),) = _tool_messages(t)
    ctx = ShopContext(store=sample_store, settings=settings, role="marketer")
    assert content == render(segments.summarize_segments(ctx, **call["arguments"]))
    assert {f["function"]["name"] for f in t.tools} == set(MARKETER_TOOLS)
    assert t.meta["kind"] == "m-segments" and t.meta["lang"] == lang


def test_flows_option_restricts_the_mix_and_names_unknown_flows():
    from finetune.synthesize import CUSTOMER_FLOWS, pick_flows

    assert pick_flows(None, None, "sample") == (list(CUSTOMER_FLOWS), 0.15)
    assert pick_flows(None, None, "tau2") == (list(CUSTOMER_FLOWS), 0.0)
    assert pick_flows(["products", "recommend"], None, "sample") == (["products", "recommend"], 0.0)
    assert pick_flows(["marketer"], None, "sample") == ([], 1.0)
    assert pick_flows(["products", "marketer"], 0.6, "sample") == (["products"], 0.6)
    with pytest.raises(ValueError, match="unknown flow.*prodcts.*known: status"):
        pick_flows(["prodcts"], None, "sample")


def test_every_marketer_request_kind_plays_without_a_tool_error(sample_store, settings):
    """Each kind of marketer request (by tool and argument names) runs for real: no segment name or argument the
    synthesizer writes is one the tools refuse, so no training conversation teaches a failing call."""
    view = read_shop(sample_store, exclude=set())
    p = _planner(view, seed=3)
    kinds: dict[tuple, object] = {}
    for i in range(200):
        plan = p.marketer("en" if i % 2 else "zh")
        call = plan.script[0]["tool_calls"][0]
        kinds.setdefault((call["name"], tuple(sorted(call["arguments"]))), plan)
    assert {("score_churn", ("tier",)), ("score_churn", ("segment",)), ("draft_retention_offer", ("customers",)),
            ("draft_retention_offer", ("segment",)), ("search_products", ("query",)), ("summarize_segments", ())} <= set(kinds)
    for (name, _), plan in kinds.items():
        if name in ("search_products", "search_reviews", "review_insights"):
            continue  # these need a built search index (tests/index); their only argument is free text
        t = play(plan, settings, sample_store)
        for call, content in _tool_messages(t):
            assert not content.startswith("error"), (call, content[:300])


def test_product_detail_and_review_questions(sample_store, tau2_store, settings):
    from agent.grounding import render
    from tools.catalog import get_product_details
    from tools.context import ShopContext

    p = _planner(read_shop(sample_store, exclude=set()), seed=2)
    plan = p.product_details("en")
    call = plan.script[0]["tool_calls"][0]
    assert call["name"] == "get_product_details" and call["arguments"]["product_id"] in plan.turns[0]
    t = play(plan, settings, sample_store)
    ((_, content),) = _tool_messages(t)
    ctx = ShopContext(store=sample_store, settings=settings, role="customer", customer_id=plan.customer_id)
    assert content == render(get_product_details(ctx, **call["arguments"]))
    plan = p.reviews("zh")
    call = plan.script[0]["tool_calls"][0]
    assert call["name"] == "search_reviews" and call["arguments"]["product"] in plan.turns[0]
    assert call["arguments"]["product"] in p.view.reviewed
    # the tau2 shop has no reviews: no review question is planned there
    assert _planner(read_shop(tau2_store, exclude=set())).reviews("en") is None
