"""Synthesis plays conversations through the real agent: every tool result is the tool's real output on the store, and
every call of the model becomes one training example holding exactly what the agent sent it.
"""

from __future__ import annotations

import json
import random

import pytest

from agent.evaluate import EvalCase
from finetune.phrases import SAY
from finetune.synthesize import (
    Plan,
    Planner,
    ShopView,
    Task,
    case_messages,
    eval_customers,
    load_bitext,
    play,
    read_shop,
    shown_id,
    with_order_id,
)
from finetune.transcripts import parse_row


@pytest.fixture
def planner_env(tau2_store, settings):
    view = read_shop(tau2_store, exclude=set())
    return tau2_store, settings, view


def _planner(view: ShopView, seed: int = 0) -> Planner:
    return Planner(view, load_bitext(), random.Random(seed))


def _calls(m: dict) -> list[tuple[str, dict]]:
    return [(tc["function"]["name"], tc["function"]["arguments"]) for tc in m.get("tool_calls") or []]


def _target(example) -> dict:
    return example.messages[-1]


def _check_format(examples) -> None:
    """Each example is valid, and its only learnable message is the last one (the scripted reply)."""
    for e in examples:
        parse_row(e.to_openai())
        assert e.messages[0]["role"] == "system" and e.tools
        *context, target = e.messages
        assert target["role"] == "assistant" and target.get("weight", 1) == 1
        assert all(m.get("weight") == 0 for m in context if m["role"] == "assistant")


def test_bitext_order_ids_are_replaced_by_real_ones():
    bitext = load_bitext()
    assert len(bitext["cancel_order"]) > 50 and len(bitext["track_order"]) > 50
    u = next(u for u in bitext["track_order"] if u["entity_type"] == "order_id")
    text = with_order_id(u, "#W2611340")
    assert "#W2611340" in text and u["text"][u["start"]:u["end"]] not in text
    assert shown_id("#W2611340", random.Random(1)).endswith("2611340")


def test_status_gives_the_call_then_an_empty_reply_over_the_real_tool_output(planner_env):
    from agent.graph import MODEL_TOOL_MESSAGE_CHARS
    from agent.grounding import render
    from tools.context import ShopContext
    from tools.orders import get_order_details

    store, settings, view = planner_env
    plan = _planner(view).single("status", "en")
    examples = play(plan, settings, store)
    _check_format(examples)
    assert [e.meta["target"] for e in examples] == ["call:get_order_details", "empty"]
    first, second = examples
    assert [m["role"] for m in first.messages] == ["system", "user", "assistant"]
    ((name, args),) = _calls(_target(first))
    assert {f["function"]["name"] for f in first.tools} >= {"get_order_details", "cancel_pending_order"}
    # the second call sees the first one (not learnable) and the result as the model reads it: English, cut
    assert [m["role"] for m in second.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert second.messages[2]["weight"] == 0 and _calls(second.messages[2]) == [(name, args)]
    ctx = ShopContext(store=store, settings=settings, role="customer", customer_id=plan.customer_id)
    assert second.messages[3]["content"] == render(get_order_details(ctx, **args), "en", limit=MODEL_TOOL_MESSAGE_CHARS)
    assert _target(second) == {"role": "assistant", "content": ""}
    assert first.customer_id == plan.customer_id and first.meta["kind"] == "status"
    assert first.meta["conversation_id"] == second.meta["conversation_id"]


def test_later_turns_see_past_questions_and_rendered_replies_not_old_tool_messages(planner_env):
    from tools.orders import WRITE_TOOLS

    store, settings, view = planner_env
    p = _planner(view, seed=1)
    first = p.status("en")
    follow = p.linked(first, "en", first.note["customer"])  # a follow-up question, or "cancel it" (pending)
    plan = Plan.of("customer", first.note["customer"], "en", [first, follow])
    examples = play(plan, settings, store)
    _check_format(examples)
    later = [e for e in examples if e.meta["turn"] == 1]
    assert later and all(e.meta["kind"] in ("follow-up", "cancel-it") for e in later)
    head = later[0].messages
    # system, the first question, its rendered reply (context), then the follow-up
    assert [m["role"] for m in head[:4]] == ["system", "user", "assistant", "user"]
    assert head[1]["content"] == first.turns[0] and head[2]["weight"] == 0 and head[2]["content"].startswith("Order ")
    assert not any(m["role"] == "tool" for m in head[:4])
    assert _calls(_target(later[0]))[0][1]["order_id"] == first.order["id"]
    if follow.kind == "follow-up":
        assert not any(name in WRITE_TOOLS for e in examples for name, _ in _calls(_target(e)))


def test_cancel_is_confirmed_by_the_button_and_code_turns_are_no_examples(planner_env):
    from store.models import Order

    store, settings, view = planner_env
    task = _planner(view, seed=2).cancel("en", outcome="confirm")
    task.turns[-1] = {"action": "confirm"}
    plan = Plan.of("customer", task.note["customer"], "en", [task])
    order_id = task.order["id"]
    examples = play(plan, settings, store)
    _check_format(examples)
    with store.read() as s:
        assert s.get(Order, order_id).status == "cancelled"
    # the proposal ends the turn, the confirmation is code: the model was called once
    assert [e.meta["target"] for e in examples] == ["call:cancel_pending_order"]


def test_a_cancellation_without_a_reason_asks_why_then_proposes_with_the_answer(planner_env):
    from store.models import Order

    store, settings, view = planner_env
    task = _planner(view, seed=3).cancel_no_reason("en")
    task.turns[-1] = {"action": "confirm"}
    plan = Plan.of("customer", task.note["customer"], "en", [task])
    examples = play(plan, settings, store)
    _check_format(examples)
    calls = [[(n, json.loads(a) if isinstance(a, str) else a) for n, a in _calls(_target(e))] for e in examples]
    oid = task.order["id"]
    reason = task.steps[1][0]["tool_calls"][0]["arguments"]["reason"]
    # the first call leaves the reason out, the tool asks the policy's question, and the rendering ends the turn
    assert calls[0] == [("cancel_pending_order", {"order_id": oid})]
    asked = examples[1].messages[-2]
    assert asked["role"] == "tool" and "Ask the customer" in asked["content"] and calls[1] == []
    # the answer gives the reason, and the proposal carries it
    assert calls[2] == [("cancel_pending_order", {"order_id": oid, "reason": reason})]
    assert "cancel" not in task.turns[1].lower()
    with store.read() as s:
        assert s.get(Order, oid).status == "cancelled"


def test_decline_then_a_new_question_is_answered_normally(planner_env):
    from agent.graph import DECLINED
    from store.models import Order

    store, settings, view = planner_env
    p = _planner(view, seed=3)
    cancel = p.cancel("en", outcome="decline")
    cancel.turns[-1] = {"action": "decline"}
    c = cancel.note["customer"]
    status = p.status("en", c)
    examples = play(Plan.of("customer", c, "en", [cancel, status]), settings, store)
    _check_format(examples)
    assert [e.meta["target"] for e in examples] == ["call:cancel_pending_order", "call:get_order_details", "empty"]
    seen = examples[1].messages
    assert {"role": "user", "content": "[Cancel]"} in seen
    assert any(m["role"] == "assistant" and m["content"] == DECLINED["en"] for m in seen)
    with store.read() as s:
        assert s.get(Order, cancel.order["id"]).status == "pending"


def test_other_customers_order_is_not_found_and_chinese_works(planner_env):
    store, settings, view = planner_env
    plan = _planner(view, seed=3).single("other_customer", "zh")
    examples = play(plan, settings, store)
    _check_format(examples)
    call, after = examples
    assert any("\u4e00" <= ch <= "\u9fff" for ch in call.messages[1]["content"])
    assert after.messages[-2]["role"] == "tool" and after.messages[-2]["content"].startswith("error:")
    assert "no order" in after.messages[-2]["content"] and after.meta["target"] == "empty"


def test_return_is_carried_through_in_one_turn_with_the_ids_just_read(planner_env):
    store, settings, view = planner_env
    p = _planner(view, seed=4)
    for _ in range(5):
        task = p.return_items("en")
        if not task.kind.endswith("declined"):
            break
    plan = Plan.of("customer", task.note["customer"], "en", [task])
    examples = play(plan, settings, store)
    _check_format(examples)
    lookup, proposal = examples[:2]
    assert lookup.meta["target"] == "call:get_order_details" and proposal.meta["target"] == (
        "call:return_delivered_order_items")
    assert lookup.meta["turn"] == proposal.meta["turn"] == 0
    details = proposal.messages[-2]["content"]
    ((_, args),) = _calls(_target(proposal))
    assert all(i in details for i in args["item_ids"]) and args["payment_method_id"] in details


def test_status_questions_that_name_a_cancellation_or_return_never_write(planner_env):
    from tools.orders import WRITE_TOOLS

    store, settings, view = planner_env
    p = _planner(view, seed=5)
    for lang in ("en", "zh") * 3:
        plan = p.single("status_confusable", lang)
        assert any(w in plan.turns[0].lower() for w in ("cancel", "return", "refund", "取消", "退"))
        examples = play(plan, settings, store)
        assert [e.meta["target"] for e in examples] == ["call:get_order_details", "empty"]
        assert not any(name in WRITE_TOOLS for e in examples for name, _ in _calls(_target(e)))


def test_handoff_refusal_and_greeting(planner_env):
    from agent.grounding import states_fact

    store, settings, view = planner_env
    p = _planner(view, seed=5)
    examples = play(p.single("handoff", "en"), settings, store)
    assert [e.meta["target"] for e in examples] == ["call:transfer_to_human"]
    for flow in ("refusal", "greeting"):
        (e,) = play(p.single(flow, "zh"), settings, store)
        assert e.meta["target"] == "text" and states_fact(_target(e)["content"]) is None


def test_fact_free_sentences_survive_the_grounding_check():
    from agent.grounding import states_fact
    from finetune.phrases import HANDOFF_SUMMARY

    for kind, by_lang in SAY.items():
        for lang, text in by_lang.items():
            assert states_fact(text) is None, (kind, lang, text)
    assert set(HANDOFF_SUMMARY) == {"en", "zh"}


def test_conversations_hold_two_to_four_tasks_of_one_customer(planner_env):
    from finetune.synthesize import CUSTOMER_FLOWS

    _, _, view = planner_env
    p = _planner(view, seed=6)
    flows = list(CUSTOMER_FLOWS)
    sizes = []
    for i in range(60):
        plan = p.conversation("zh" if i % 3 == 0 else "en", flows, [CUSTOMER_FLOWS[f] for f in flows])
        if plan is None:
            continue
        sizes.append(plan.kind.count("+") + 1)
        assert len(plan.turns) == len(plan.script) == len(plan.tasks)
        assert len({plan.customer_id}) == 1 and plan.customer_id in view.customers
    assert set(sizes) >= {2, 3, 4} and max(sizes) == 4
    assert sum(n >= 2 for n in sizes) >= 0.85 * len(sizes)  # one task only when a handoff ends it at once


def test_marketer_conversations_carry_real_analytics_output(sample_store, settings):
    from agent.grounding import render
    from tools.analytics import segments
    from tools.context import ShopContext
    from tools.registry import MARKETER_TOOLS

    view = read_shop(sample_store, exclude=set())
    p = _planner(view, seed=6)
    task = p.marketer_task("en", "segments")
    examples = play(Plan.of("marketer", None, "en", [task]), settings, sample_store)
    _check_format(examples)
    call, after = examples
    ((name, args),) = _calls(_target(call))
    assert name == "summarize_segments" and after.meta["target"] == "empty"
    ctx = ShopContext(store=sample_store, settings=settings, role="marketer")
    assert after.messages[-2]["content"] == render(segments.summarize_segments(ctx, **args), "en", limit=1500)
    assert {f["function"]["name"] for f in call.tools} == set(MARKETER_TOOLS)
    assert call.meta["kind"] == "m-segments" and call.meta["role"] == "marketer" and call.customer_id is None


def test_marketer_argument_shapes(sample_store):
    """Customers named by id go to `customers`, never to `segment`; a tier word to `tier`; a plain category word to
    the catalog's exact category name.
    """
    view = read_shop(sample_store, exclude=set())
    p = _planner(view, seed=7)
    shapes: dict[str, list[tuple[str, dict]]] = {}
    for i in range(300):
        task = p.marketer_task("en" if i % 2 else "zh")
        step = task.steps[0][0]
        shapes.setdefault(task.kind, []).append((task.turns[0], step["tool_calls"][0] if isinstance(step, dict)
                                                 else step))
    for text, call in shapes["m-offer-customers"]:
        assert call["name"] == "draft_retention_offer" and set(call["arguments"]) == {"customers"}
        assert all(c in text for c in call["arguments"]["customers"])
    for _text, call in shapes["m-churn-tier"]:
        assert call["arguments"]["tier"] in ("high", "medium", "low") and set(call["arguments"]) == {"tier"}
    for _text, call in shapes["m-insights"]:
        assert call["name"] == "review_insights" and call["arguments"]["category"] in view.categories
    assert any(call["arguments"]["category"] not in text for text, call in shapes["m-insights"])  # a plain word
    assert shapes["m-segments"] and shapes["m-refuse"]


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
    synthesizer writes is one the tools refuse, so no training example teaches a failing call.
    """
    view = read_shop(sample_store, exclude=set())
    p = _planner(view, seed=3)
    kinds: dict[tuple, Task] = {}
    for i in range(200):
        task = p.marketer_task("en" if i % 2 else "zh")
        if task is None or not task.steps[0] or not isinstance(task.steps[0][0], dict):
            continue
        call = task.steps[0][0]["tool_calls"][0]
        kinds.setdefault((call["name"], tuple(sorted(call["arguments"]))), task)
    assert {("score_churn", ("tier",)), ("score_churn", ("segment",)), ("draft_retention_offer", ("customers",)),
            ("draft_retention_offer", ("segment",)), ("search_products", ("query",)), ("summarize_segments", ()),
            ("review_insights", ("category",))} <= set(kinds)
    for (name, _), task in kinds.items():
        if name in ("search_products", "search_reviews", "review_insights"):
            continue  # these need a built search index (tests/index); their only argument is free text
        for e in play(Plan.of("marketer", None, "en", [task]), settings, sample_store):
            for m in e.messages:
                assert not (m["role"] == "tool" and m["content"].startswith("error")), m["content"][:300]


def test_product_detail_and_review_questions(sample_store, tau2_store, settings):
    from agent.grounding import render
    from tools.catalog import get_product_details
    from tools.context import ShopContext

    p = _planner(read_shop(sample_store, exclude=set()), seed=2)
    plan = p.single("product_details", "en")
    call = plan.script[0][0]["tool_calls"][0]
    assert call["name"] == "get_product_details" and call["arguments"]["product_id"] in plan.turns[0]
    _, after = play(plan, settings, sample_store)
    ctx = ShopContext(store=sample_store, settings=settings, role="customer", customer_id=plan.customer_id)
    assert after.messages[-2]["content"] == render(get_product_details(ctx, **call["arguments"]), "en", limit=1500)
    plan = p.single("reviews", "zh")
    call = plan.script[0][0]["tool_calls"][0]
    assert call["name"] == "search_reviews" and call["arguments"]["product"] in plan.turns[0]
    assert call["arguments"]["product"] in p.view.reviewed
    # the tau2 shop has no reviews: no review question is planned there
    assert _planner(read_shop(tau2_store, exclude=set())).reviews("en") is None


def test_eval_customers_come_from_every_case_file(tmp_path):
    (tmp_path / "cases.jsonl").write_text(json.dumps({"id": "a", "customer": "c000001", "turns": ["hi"]}) + "\n")
    (tmp_path / "conversations.jsonl").write_text(json.dumps(
        {"id": "b", "customer": None, "turns": ["Tell me about c000150.", {"action": "confirm"},
                                                {"action": "handoff", "message": "ask mia_jackson_2250"}]}) + "\n")
    assert {"c000001", "c000150", "mia_jackson_2250"} <= eval_customers(tmp_path)
    case = EvalCase(id="c", turns=["a", {"action": "decline"}, {"action": "handoff", "message": "b"}])
    assert case_messages(case) == ["a", "b"]
