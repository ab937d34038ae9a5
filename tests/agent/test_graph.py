"""The turn runs through the LangGraph graph (agent/graph.py): its shape, the path each kind of turn takes, and
what the person reads (never the model's streamed text).
"""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from sqlalchemy import select

from agent.graph import turn_graph
from agent.grounding import GENERIC_FAILURE
from agent.session import open_session
from agent.testing import ScriptedChatModel, call
from store.models import Message, Order
from tools.context import ShopContext

from fake_orders import OrderInfo, get_order_details, info

YARA, PENDING = "yara_patel_8545", "#W1068289"  # a pending order of yara's (tau2)


def chat(settings, store, script, customer="alice", tools=(get_order_details,), model=None, call_after_result=False):
    """A session over a scripted model; `call_after_result`: the model is called again after every look-up (the path
    of a turn that asked for a change), not only after a failed one.
    """
    model = model or ScriptedChatModel(script=list(script))
    session = open_session(settings, "customer", customer, model=model, store=store,
                           tools=list(tools) if tools is not None else None)
    session.one_call_after_read = not call_after_result
    return session


def path(events) -> list[str]:
    return events[-1].meta["path"]


def test_compiled_graph_has_the_turn_nodes_and_edges():
    g = turn_graph().get_graph()
    assert set(g.nodes) == {"__start__", "__end__", "hand_off", "after_handoff", "execute_pending", "decline_pending",
                            "discard_pending", "model", "validate", "give_up", "tools", "answer", "out_of_steps",
                            "record"}
    edges = {(e.source, e.target) for e in g.edges}
    assert {("__start__", "model"), ("__start__", "execute_pending"), ("__start__", "decline_pending"),
            ("__start__", "discard_pending"), ("__start__", "hand_off"), ("__start__", "after_handoff"),
            ("discard_pending", "model"), ("model", "validate"), ("model", "answer"), ("model", "out_of_steps"),
            ("validate", "tools"), ("validate", "give_up"), ("tools", "model"), ("tools", "answer"),
            ("tools", "record"),
            ("answer", "model"), ("answer", "record"), ("record", "__end__")} <= edges
    # no corrective retry: an invalid call never goes back to the model
    assert ("validate", "model") not in edges and "correct" not in g.nodes
    # every way out of a turn goes through record, which logs it
    assert {s for s, t in edges if t == "__end__"} == {"record"}
    assert {s for s, t in edges if t == "record"} == {"hand_off", "after_handoff", "execute_pending",
                                                     "decline_pending", "tools", "answer", "out_of_steps", "give_up"}


TOOL_AND_ANSWER = ["model", "validate", "tools", "answer", "record"]  # a look-up answers: one model call
TOOL_MODEL_ANSWER = ["model", "validate", "tools", "model", "answer", "record"]  # the model is called after it


@pytest.mark.parametrize("script,expected", [
    (["Hello! How can I help?"], ["model", "answer", "record"]),
    ([call("get_order_details", order_id="#W100"), "Order #W100 is processed."], TOOL_AND_ANSWER),
    (["Order #W100 is delivered.", call("get_order_details", order_id="#W100"), "Here it is."],
     ["model", "answer", *TOOL_AND_ANSWER]),
    (["Order #W100 is delivered.", "It is delivered."], ["model", "answer", "model", "answer", "record"]),
    ([call("get_order_details", order=1), call("get_order_details", order_id="#W100")],
     ["model", "validate", "give_up", "record"]),
    ([call("no_such_tool")], ["model", "validate", "give_up", "record"]),
    ([call("get_order_details", order_id="#W100")] * 9,
     ["model", "validate", "tools"] * 4 + ["model", "out_of_steps", "record"]),
], ids=["answer", "tool", "forced", "forced-ask-first", "give-up-schema", "give-up-unknown-tool", "out-of-steps"])
def test_each_kind_of_turn_takes_its_path(settings, shop, script, expected):
    events = list(chat(settings, shop, script, call_after_result="out_of_steps" in expected).respond("where is #W100"))
    assert path(events) == expected
    assert events[-1].kind == "final" and [e.kind for e in events].count("final") == 1
    assert "text" not in [e.kind for e in events]


@pytest.mark.parametrize("call_after_result,expected,steps", [(False, TOOL_AND_ANSWER, 1),
                                                             (True, TOOL_MODEL_ANSWER, 2)])
def test_path_is_in_the_logged_turn(settings, shop, call_after_result, expected, steps):
    session = chat(settings, shop, [call("get_order_details", order_id="#W100"), "Order #W100 is processed."],
                   call_after_result=call_after_result)
    list(session.respond("where is #W100"))
    with shop.read() as s:
        last = s.scalars(select(Message).where(Message.conversation_id == session.conversation_id)
                         .order_by(Message.seq.desc())).first()
        assert last.meta["path"] == expected and last.meta["steps"] == steps
        assert bool(last.meta.get("model_text_cut")) == call_after_result
        assert last.content == info("#W100").render()


def test_invalid_calls_are_counted_in_the_logged_turn(settings, shop):
    session = chat(settings, shop, [call("get_order_details", order=1)])
    list(session.respond("where is #W100"))
    with shop.read() as s:
        last = s.scalars(select(Message).where(Message.conversation_id == session.conversation_id)
                         .order_by(Message.seq.desc())).first()
        assert last.meta["invalid_calls"] == 1 and last.meta["path"] == ["model", "validate", "give_up", "record"]
        assert last.content == GENERIC_FAILURE["en"]


def test_more_steps_than_the_default_recursion_limit_allows(settings, shop):
    session = chat(settings, shop, [call("get_order_details", order_id="#W100")] * 30, call_after_result=True)
    session.max_steps = 9  # 3 supersteps per step: more than LangGraph's default limit of 25
    events = list(session.respond("loop"))
    assert len([e for e in events if e.kind == "tool_call"]) == 9
    assert events[-1].meta["max_steps_reached"] is True


def test_the_forced_call_fits_in_the_recursion_limit(settings, shop):
    # the forced call on top of a long turn: answer -> model once more, then tool steps until the budget is spent
    session = chat(settings, shop, ["Order #W100 is delivered."] + [call("get_order_details", order_id="#W100")] * 30,
                   call_after_result=True)
    session.max_steps = 9
    events = list(session.respond("loop"))
    # the step budget counts model calls, the one that stated facts included
    assert len([e for e in events if e.kind == "tool_call"]) == session.max_steps - 1
    assert events[-1].meta["max_steps_reached"] is True and events[-1].meta["forced_tool"] is True


def test_confirmation_paths(settings, tau2_store):
    session = chat(settings, tau2_store, [call("cancel_pending_order", order_id=PENDING, reason="no longer needed"),
                                          call("cancel_pending_order", order_id=PENDING, reason="no longer needed"),
                                          call("cancel_pending_order", order_id=PENDING, reason="no longer needed"),
                                          call("cancel_pending_order", order_id=PENDING, reason="no longer needed"),
                                          ], customer=YARA, tools=None)
    proposed = list(session.respond("cancel #W1068289 please"))
    assert path(proposed) == ["model", "validate", "tools", "record"]
    assert [e.kind for e in proposed] == ["tool_call", "tool_result", "confirm", "final"]
    # a message that is neither yes nor a bare no drops the proposal and goes to the model
    assert path(list(session.respond("no, keep it, but what about the price?")))[:2] == ["discard_pending", "model"]
    assert path(list(session.respond("no"))) == ["decline_pending", "record"]  # a bare typed no
    assert session.pending is None
    list(session.respond("cancel it after all"))
    assert path(list(session.decline())) == ["decline_pending", "record"]  # the Cancel button
    list(session.respond("cancel it, really"))
    done = list(session.respond("yes"))  # a typed yes
    assert path(done) == ["execute_pending", "record"] and done[-1].data["executed"] == "cancel_pending_order"
    with tau2_store.read() as s:
        assert s.get(Order, PENDING).status == "cancelled"


def test_confirm_button_path(settings, tau2_store):
    session = chat(settings, tau2_store, [call("cancel_pending_order", order_id=PENDING, reason="no longer needed")],
                   customer=YARA, tools=None)
    list(session.respond("cancel #W1068289 please"))
    done = list(session.confirm())
    assert path(done) == ["execute_pending", "record"] and done[-1].data["executed"] == "cancel_pending_order"
    with tau2_store.read() as s:
        assert s.get(Order, PENDING).status == "cancelled"


def test_confirmed_write_refused_on_recheck_ends_the_turn(settings, tau2_store):
    session = chat(settings, tau2_store, [call("cancel_pending_order", order_id=PENDING, reason="no longer needed")],
                   customer=YARA, tools=None)
    list(session.respond("cancel #W1068289"))
    with tau2_store.transaction() as s:  # it shipped meanwhile
        s.get(Order, PENDING).status = "processed"
    events = list(session.respond("yes"))
    assert path(events) == ["execute_pending", "record"]
    assert events[-1].kind == "final" and "error" not in events[-1].text.lower()
    assert events[-1].text == next(e for e in events if e.kind == "tool_result").text
    assert events[-1].data is None or "executed" not in events[-1].data
    assert session.ctx.pending_action is None
    with tau2_store.read() as s:
        assert s.get(Order, PENDING).status == "processed"


def test_handoff_paths(settings, tau2_store):
    session = chat(settings, tau2_store, [call("transfer_to_human", summary="wants a person")], customer=YARA,
                   tools=None)
    assert path(list(session.respond("a human please"))) == ["model", "validate", "tools", "record"]
    assert path(list(session.respond("hello?"))) == ["after_handoff", "record"]
    assert path(list(session.confirm())) == ["after_handoff", "record"]
    # the button again: a person already has the conversation, so no second transfer
    assert path(list(session.hand_off("a human please"))) == ["after_handoff", "record"]
    fresh = chat(settings, tau2_store, [], customer=YARA, tools=None)
    direct = list(fresh.hand_off("a human please"))
    assert path(direct) == ["hand_off", "record"] and direct[0].meta["direct"] is True


class StreamingModel(ScriptedChatModel):
    """Streams its reply in pieces, the way a real backend does."""

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        self.requests.append({"messages": list(messages)})
        for piece in ("Hello, ", "how can I ", "help?"):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


def test_the_models_text_is_not_streamed_to_the_person(settings, shop):
    # a reply may be replaced by renderings, so nothing the model writes reaches the person before the check
    events = list(chat(settings, shop, [], model=StreamingModel()).respond("hi"))
    assert [e.kind for e in events] == ["final"]
    assert events[-1].text == "Hello, how can I help?"


def test_a_bug_in_a_tool_reaches_the_caller(settings, shop):
    def get_order_details(ctx: ShopContext, order_id: str) -> OrderInfo:
        """Status of an order.

        Args:
            order_id: The order id.
        """
        raise RuntimeError("database on fire")

    session = chat(settings, shop, [call("get_order_details", order_id="#W100")], tools=[get_order_details])
    with pytest.raises(RuntimeError, match="database on fire"):
        list(session.respond("where is #W100"))


def test_a_drafted_retention_offer_ends_the_marketers_turn(settings, sample_store):
    """The message asks for an offer, so a look-up in its turn goes back to the model (the customers to target);
    the draft itself is the change asked for: no model call after it.
    """
    model = ScriptedChatModel(script=[call("score_churn", tier="high", top_n=3),
                                      call("draft_retention_offer", segment="At risk"), "Words after the draft."])
    session = open_session(settings, "marketer", None, model=model, store=sample_store)
    events = list(session.respond("Rank the high-value customers by churn risk and draft them a retention offer."))
    assert path(events) == ["model", "validate", "tools", "model", "validate", "tools", "answer", "record"]
    assert "Words after the draft." not in events[-1].text and "At risk" in events[-1].text
