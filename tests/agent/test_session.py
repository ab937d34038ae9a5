"""The agent turn driven by a scripted model over small stand-in tools: calls, validation, grounding, logging."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import BaseModel
from sqlalchemy import select

from agent.session import is_confirmation, open_session
from agent.testing import ScriptedChatModel, call
from store.models import Conversation, Customer, Message
from tools.context import ShopContext
from tools.errors import NotFoundError

ORDERS = {"#W100": ("alice", "processed", 42.5, "1234567890"), "#W200": ("bob", "pending", 10.0, None)}


class OrderInfo(BaseModel):
    order_id: str
    status: str
    total: float
    tracking_id: str | None = None

    def render(self) -> str:
        track = f", tracking {self.tracking_id}" if self.tracking_id else ""
        return f"Order {self.order_id} is {self.status}; total ${self.total:.2f}{track}."


def get_order_details(ctx: ShopContext, order_id: str) -> OrderInfo:
    """Status, total and tracking of one of the customer's orders.

    Args:
        order_id: The order id, like '#W1234567'.
    """
    owner, status, total, tracking = ORDERS.get(order_id, (None, None, 0, None))
    if owner != ctx.customer_id:
        raise NotFoundError(f"no order {order_id} for this customer")
    return OrderInfo(order_id=order_id, status=status, total=total, tracking_id=tracking)


@pytest.fixture
def shop(sqlite_store):
    with sqlite_store.transaction() as s:
        s.add_all([Customer(id="alice", email="alice@example.com"), Customer(id="bob", email="bob@example.com")])
    return sqlite_store


def session_for(settings, shop, script, customer="alice", tools=(get_order_details,)):
    model = ScriptedChatModel(script=list(script))
    return open_session(settings, "customer", customer, model=model, store=shop, tools=list(tools)), model


def run(session, text):
    return list(session.respond(text))


def test_tool_call_and_grounded_answer(settings, shop):
    session, model = session_for(settings, shop, [call("get_order_details", order_id="#W100"),
                                                  "Your order #W100 is processed, total $42.50."])
    events = run(session, "Where is my order #W100?")
    kinds = [e.kind for e in events]
    assert kinds[-1] == "final" and "tool_call" in kinds and "tool_result" in kinds
    tc = next(e for e in events if e.kind == "tool_call")
    assert (tc.name, tc.arguments) == ("get_order_details", {"order_id": "#W100"})
    assert events[-1].text == "Your order #W100 is processed, total $42.50."
    assert events[-1].data["grounding_replaced"] is False
    # the model saw the tool's schema without ctx, and the tool's rendering as the tool turn
    tools = model.requests[0]["tools"]
    assert tools[0]["function"]["parameters"]["properties"].keys() == {"order_id"}
    assert "Order #W100 is processed" in model.requests[1]["messages"][-1].content
    assert "".join(e.text for e in events if e.kind == "text") == events[-1].text


def test_wrong_status_is_replaced(settings, shop):
    session, _ = session_for(settings, shop, [call("get_order_details", order_id="#W100"),
                                              "Good news: order #W100 was delivered yesterday."])
    final = run(session, "where is #W100")[-1]
    assert final.data["grounding_replaced"] is True
    assert "delivered" not in final.text and "processed" in final.text and "1234567890" in final.text
    assert session.stats["grounding_replacements"] == 1


@pytest.mark.parametrize("answer", ["Your order #W999 is pending.", "The total is $99.00.",
                                    "It will arrive on 2024-05-03.", "Tracking number 5550001112."])
def test_invented_facts_are_replaced(settings, shop, answer):
    session, _ = session_for(settings, shop, [call("get_order_details", order_id="#W100"), answer])
    final = run(session, "status of #W100?")[-1]
    assert final.data["grounding_replaced"] is True
    assert final.text == "Order #W100 is processed; total $42.50, tracking 1234567890."


def test_order_facts_without_any_tool_are_replaced(settings, shop):
    session, _ = session_for(settings, shop, ["Your order has been delivered."])
    final = run(session, "我的订单到了吗?")[-1]
    assert final.data["grounding_replaced"] is True
    assert "delivered" not in final.text and "订单号" in final.text


def test_other_customers_order_is_not_found(settings, shop):
    session, model = session_for(settings, shop, [call("get_order_details", order_id="#W200"),
                                                  "I could not find that order on your account."])
    events = run(session, "Show me order #W200, I am bob's friend")
    result = next(e for e in events if e.kind == "tool_result")
    assert result.data["type"] == "NotFoundError" and "pending" not in result.text
    assert events[-1].text == "I could not find that order on your account."
    assert "error: no order #W200" in model.requests[1]["messages"][-1].content


def test_invalid_arguments_get_one_corrective_retry(settings, shop, monkeypatch):
    calls_seen = []
    monkeypatch.setitem(ORDERS, "#W300", ("alice", "delivered", 5.0, None))

    def spy(ctx: ShopContext, order_id: str) -> OrderInfo:
        """Order details.

        Args:
            order_id: The order id.
        """
        calls_seen.append(order_id)
        return get_order_details(ctx, order_id)

    spy.__name__ = "get_order_details"
    session, model = session_for(settings, shop, [call("get_order_details", order=300),
                                                  call("get_order_details", order_id="#W300"),
                                                  "Order #W300 is delivered."], tools=[spy])
    events = run(session, "status of W300")
    assert calls_seen == ["#W300"]  # the invalid call never reached the tool
    feedback = model.requests[1]["messages"][-1].content
    assert "error:" in feedback and "order" in feedback
    assert events[-1].text == "Order #W300 is delivered."


def test_second_invalid_call_gives_graceful_message(settings, shop):
    session, _ = session_for(settings, shop, [call("get_order_details", order_id=5), call("delete_everything"),
                                              "never reached"])
    events = run(session, "hi")
    assert not [e for e in events if e.kind == "tool_call"]
    assert events[-1].kind == "final" and "rephrase" in events[-1].text
    assert session.stats["invalid_calls"] == 2


def test_max_tool_steps_per_turn(settings, shop):
    script = [call("get_order_details", order_id="#W100")] * 10
    session, model = session_for(settings, shop, script)
    events = run(session, "loop forever")
    assert len([e for e in events if e.kind == "tool_call"]) == 4
    assert events[-1].meta.get("max_steps_reached") is True
    assert "processed" in events[-1].text


def test_turns_are_logged_and_memory_kept(settings, shop):
    session, model = session_for(settings, shop, [call("get_order_details", order_id="#W100"),
                                                  "Order #W100 is processed.", "You are welcome."])
    run(session, "where is #W100")
    run(session, "thanks")
    # second turn's prompt holds the first turn
    assert any("#W100" in str(m.content) for m in model.requests[2]["messages"])
    with shop.read() as s:
        conv = s.get(Conversation, session.conversation_id)
        rows = s.scalars(select(Message).where(Message.conversation_id == conv.id).order_by(Message.seq)).all()
        assert conv.customer_id == "alice" and conv.role == "customer"
        assert [r.role for r in rows] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
        assert rows[1].tool_calls[0]["name"] == "get_order_details"
        assert rows[3].meta["backend"] == "scripted" and rows[3].meta["latency_s"] >= 0
        assert isinstance(rows[0].created_at, datetime)


def test_customer_by_email_and_unknown_customer(settings, shop):
    from shopdesk.output import UserError

    session, _ = session_for(settings, shop, ["hello"], customer="bob@example.com")
    assert session.customer_id == "bob"
    with pytest.raises(UserError, match="no customer"):
        session_for(settings, shop, ["hello"], customer="mallory")


@pytest.mark.parametrize("text,expected", [("yes", True), ("Yes, please go ahead", True), ("confirm", True),
                                           ("好的", True), ("确认", True), ("ok", True), ("no", False),
                                           ("yes but not now", False), ("what about my other order?", False),
                                           ("不要", False)])
def test_is_confirmation(text, expected):
    assert is_confirmation(text) is expected


def test_undeclared_argument_keys_are_dropped_and_logged(settings, shop, caplog):
    # what vLLM returned for a forced call before --tool-strict-level parameter: the right id plus invented keys;
    # a customer_id among them must not widen access: the tool still answers for the signed-in customer only
    extra = call("get_order_details", order_id="#W200", customer_id="bob", arguments={"order_id": "#W200"})
    session, model = session_for(settings, shop, [extra, "I could not find that order on your account."])
    with caplog.at_level("WARNING", logger="agent.graph"):
        events = run(session, "where is #W200")
    tc = next(e for e in events if e.kind == "tool_call")
    assert tc.arguments == {"order_id": "#W200"}
    result = next(e for e in events if e.kind == "tool_result")
    assert result.data["type"] == "NotFoundError"
    assert events[-1].meta["dropped_arguments"] == [{"tool": "get_order_details", "keys": ["customer_id", "arguments"]}]
    assert "customer_id, arguments" in caplog.text
    # the history the model sees next holds the call as it ran
    assert model.requests[1]["messages"][-2].tool_calls[0]["args"] == {"order_id": "#W200"}


def test_dropping_never_fills_a_missing_required_argument(settings, shop):
    session, model = session_for(settings, shop, [call("get_order_details", order="#W100", id="#W100"),
                                                  call("get_order_details", order_id="#W100"),
                                                  "Order #W100 is processed."])
    events = run(session, "status of #W100")
    assert [e.arguments for e in events if e.kind == "tool_call"] == [{"order_id": "#W100"}]
    feedback = model.requests[1]["messages"][-1].content
    assert "order_id" in feedback and "ignored: order, id" in feedback


def test_direct_handoff_needs_no_model_and_is_logged(settings, shop):
    session, model = session_for(settings, shop, [call("get_order_details", order_id="#W100"),
                                                  "Order #W100 is processed."])
    run(session, "Where is my order #W100?")
    asked = len(model.requests)
    events = list(session.hand_off("Please transfer me to a human agent."))
    assert len(model.requests) == asked  # the button works whatever the model would have done
    assert [e.kind for e in events] == ["tool_call", "tool_result", "handoff", "final"]
    summary = events[0].arguments["summary"]
    assert events[0].name == "transfer_to_human" and summary == events[2].text
    assert "Customer alice" in summary and '"Where is my order #W100?"' in summary
    assert "get_order_details(order_id=#W100)" in summary
    assert events[-1].data["handoff"] is True and events[-1].meta["direct_handoff"] is True
    with shop.read() as s:
        conv = s.get(Conversation, session.conversation_id)
        assert conv.outcome == "handed_off"
        rows = s.scalars(select(Message).where(Message.conversation_id == conv.id).order_by(Message.seq)).all()
        assert [r.role for r in rows[-4:]] == ["user", "assistant", "tool", "assistant"]
        assert rows[-3].tool_calls[0]["name"] == "transfer_to_human" and rows[-1].meta["direct_handoff"] is True


def test_direct_handoff_disarms_a_pending_write(settings, shop):
    session, _ = session_for(settings, shop, ["Hello."])
    session.ctx.pending_action = {"tool": "cancel_pending_order", "summary": "Cancel order #W100 (refund $42.50)."}
    events = list(session.hand_off("I want a person"))
    assert "Awaiting their confirmation: Cancel order #W100" in events[0].arguments["summary"]
    assert "They had not asked anything yet." in events[0].arguments["summary"]
    assert session.ctx.pending_action is None


def test_repeated_failing_call_is_said_once_in_the_faithful_answer(settings, shop):
    script = [call("get_order_details", order_id="#W999")] * 3 + ["Your order #W999 is delivered."]
    session, _ = session_for(settings, shop, script)
    final = run(session, "where is #W999")[-1]
    assert final.data["grounding_replaced"] is True
    assert final.text == "no order #W999 for this customer"
