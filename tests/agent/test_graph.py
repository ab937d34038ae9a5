"""The turn runs through the LangGraph graph (agent/graph.py): its shape, the path each kind of turn takes, and
events streamed while the model is still generating."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from pydantic import BaseModel, Field
from sqlalchemy import select

from agent.graph import turn_graph
from agent.session import open_session
from agent.testing import ScriptedChatModel, call
from store.models import Customer, Message, Order
from tools.context import ShopContext
from tools.errors import NotFoundError

YARA, PENDING = "yara_patel_8545", "#W1068289"  # a pending order of yara's (tau2)


class Status(BaseModel):
    order_id: str
    status: str

    def render(self) -> str:
        return f"Order {self.order_id} is {self.status}."


def get_order_details(ctx: ShopContext, order_id: str) -> Status:
    """Status of one of the customer's orders.

    Args:
        order_id: The order id, like '#W1234567'.
    """
    if order_id != "#W100":
        raise NotFoundError(f"no order {order_id} for this customer")
    return Status(order_id=order_id, status="processed")


@pytest.fixture
def shop(sqlite_store):
    with sqlite_store.transaction() as s:
        s.add(Customer(id="alice", email="alice@example.com"))
    return sqlite_store


def chat(settings, store, script, customer="alice", tools=(get_order_details,), model=None):
    model = model or ScriptedChatModel(script=list(script))
    return open_session(settings, "customer", customer, model=model, store=store,
                        tools=list(tools) if tools is not None else None)


def path(events) -> list[str]:
    return events[-1].meta["path"]


def test_compiled_graph_has_the_turn_nodes_and_edges():
    g = turn_graph().get_graph()
    assert set(g.nodes) == {"__start__", "__end__", "hand_off", "execute_pending", "discard_pending", "model",
                            "validate", "correct", "give_up", "tools", "answer", "out_of_steps", "record"}
    edges = {(e.source, e.target) for e in g.edges}
    assert {("__start__", "model"), ("__start__", "execute_pending"), ("__start__", "discard_pending"),
            ("__start__", "hand_off"), ("discard_pending", "model"), ("model", "validate"), ("model", "answer"),
            ("model", "out_of_steps"), ("validate", "tools"), ("validate", "correct"), ("validate", "give_up"),
            ("correct", "model"), ("tools", "model"), ("tools", "record"), ("record", "__end__")} <= edges
    # every way out of a turn goes through record, which logs it
    assert {s for s, t in edges if t == "__end__"} == {"record"}


TOOL_AND_ANSWER = ["model", "validate", "tools", "model", "answer", "record"]


@pytest.mark.parametrize("script,expected", [
    (["Hello! How can I help?"], ["model", "answer", "record"]),
    ([call("get_order_details", order_id="#W100"), "Order #W100 is processed."], TOOL_AND_ANSWER),
    ([call("get_order_details", order="#W100"), call("get_order_details", order_id="#W100"),
      "Order #W100 is processed."], ["model", "validate", "correct", *TOOL_AND_ANSWER]),
    ([call("get_order_details", order=1), call("no_such_tool")],
     ["model", "validate", "correct", "model", "validate", "give_up", "record"]),
    ([call("get_order_details", order_id="#W100")] * 9,
     ["model", "validate", "tools"] * 4 + ["model", "out_of_steps", "record"]),
], ids=["answer", "tool", "corrected", "give-up", "out-of-steps"])
def test_each_kind_of_turn_takes_its_path(settings, shop, script, expected):
    events = list(chat(settings, shop, script).respond("where is #W100"))
    assert path(events) == expected
    assert events[-1].kind == "final" and [e.kind for e in events].count("final") == 1


def test_path_is_in_the_logged_turn(settings, shop):
    session = chat(settings, shop, [call("get_order_details", order_id="#W100"), "Order #W100 is processed."])
    list(session.respond("where is #W100"))
    with shop.read() as s:
        last = s.scalars(select(Message).where(Message.conversation_id == session.conversation_id)
                         .order_by(Message.seq.desc())).first()
        assert last.meta["path"] == TOOL_AND_ANSWER and last.meta["steps"] == 2


def test_more_steps_than_the_default_recursion_limit_allows(settings, shop):
    session = chat(settings, shop, [call("get_order_details", order_id="#W100")] * 30)
    session.max_steps = 9  # 3 supersteps per step: more than LangGraph's default limit of 25
    events = list(session.respond("loop"))
    assert len([e for e in events if e.kind == "tool_call"]) == 9
    assert events[-1].meta["max_steps_reached"] is True


def test_confirmation_paths(settings, tau2_store):
    session = chat(settings, tau2_store, [call("cancel_pending_order", order_id=PENDING, reason="no longer needed"),
                                          call("cancel_pending_order", order_id=PENDING, reason="no longer needed"),
                                          "OK, I left it as it is."], customer=YARA, tools=None)
    proposed = list(session.respond("cancel #W1068289 please"))
    assert path(proposed) == ["model", "validate", "tools", "record"]
    assert [e.kind for e in proposed if e.kind != "text"] == ["tool_call", "tool_result", "confirm", "final"]
    assert path(list(session.respond("no, keep it"))) == ["discard_pending", "model", "validate", "tools", "record"]
    done = list(session.respond("yes"))  # confirms the second proposal
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
    assert events[-1].kind == "final" and "pending" in events[-1].text
    assert session.ctx.pending_action is None
    with tau2_store.read() as s:
        assert s.get(Order, PENDING).status == "processed"


def test_handoff_paths(settings, tau2_store):
    session = chat(settings, tau2_store, [call("transfer_to_human", summary="wants a person")], customer=YARA,
                   tools=None)
    assert path(list(session.respond("a human please"))) == ["model", "validate", "tools", "record"]
    direct = list(session.hand_off("a human please"))
    assert path(direct) == ["hand_off", "record"] and direct[-1].meta["direct_handoff"] is True


class GatedModel(ScriptedChatModel):
    """Streams a first piece, then waits until the caller has received it before finishing."""

    seen: Any = Field(default_factory=threading.Event)

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        self.requests.append({"messages": list(messages)})
        yield ChatGenerationChunk(message=AIMessageChunk(content="Hello, "))
        if not self.seen.wait(10):
            raise AssertionError("the first piece did not reach the caller while the model was generating")
        yield ChatGenerationChunk(message=AIMessageChunk(content="how can I help?"))


def test_text_reaches_the_caller_while_the_model_generates(settings, shop):
    model = GatedModel()
    events = []
    for event in chat(settings, shop, [], model=model).respond("hi"):
        events.append(event)
        if event.kind == "text":
            model.seen.set()
    assert [e.text for e in events if e.kind == "text"] == ["Hello, ", "how can I help?"]
    assert events[-1].text == "Hello, how can I help?"


def test_a_bug_in_a_tool_reaches_the_caller(settings, shop):
    def get_order_details(ctx: ShopContext, order_id: str) -> Status:
        """Status of an order.

        Args:
            order_id: The order id.
        """
        raise RuntimeError("database on fire")

    session = chat(settings, shop, [call("get_order_details", order_id="#W100")], tools=[get_order_details])
    with pytest.raises(RuntimeError, match="database on fire"):
        list(session.respond("where is #W100"))
