"""The agent over the real order tools and the tau2 store: confirmation flow, ownership, grounding of statuses."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from agent.session import open_session
from agent.testing import ScriptedChatModel, call
from store.models import Order, Payment

YARA, PENDING = "yara_patel_8545", "#W1068289"  # a pending order of yara's
JAMES, PROCESSED = "james_li_5688", "#W2611340"  # a processed order of james's


def session(settings, store, customer, *script):
    model = ScriptedChatModel(script=list(script))
    return open_session(settings, "customer", customer, model=model, store=store), model


def status(store, order_id):
    with store.read() as s:
        return s.get(Order, order_id).status


def payments(store):
    with store.read() as s:
        return s.scalar(select(func.count()).select_from(Payment))


def test_cancel_waits_for_confirmation_then_code_executes(settings, tau2_store):
    before = payments(tau2_store)
    chat, model = session(settings, tau2_store, YARA,
                          call("cancel_pending_order", order_id=PENDING, reason="no longer needed"),
                          "I cancelled it for you!")
    events = list(chat.respond("Please cancel my order #W1068289, I no longer need it."))
    confirm = [e for e in events if e.kind == "confirm"]
    assert len(confirm) == 1 and PENDING in confirm[0].text
    assert events[-1].text == confirm[0].text and events[-1].data["awaiting_confirmation"]
    assert status(tau2_store, PENDING) == "pending" and payments(tau2_store) == before  # nothing written yet
    assert len(model.requests) == 1  # the turn ended at the proposal; the model never claimed success

    events = list(chat.respond("yes, please go ahead"))
    assert len(model.requests) == 1  # confirmation is executed by code, not by the model
    assert status(tau2_store, PENDING) == "cancelled"
    assert "cancelled" in events[-1].text and events[-1].data["executed"] == "cancel_pending_order"
    assert payments(tau2_store) > before  # the refund row


def test_anything_but_yes_discards_the_pending_write(settings, tau2_store):
    chat, model = session(settings, tau2_store, YARA,
                          call("cancel_pending_order", order_id=PENDING, reason="no longer needed"),
                          "Okay, I will leave the order as it is.")
    list(chat.respond("cancel #W1068289, no longer needed"))
    assert chat.ctx.pending_action is not None
    events = list(chat.respond("actually no, keep it"))
    assert chat.ctx.pending_action is None
    assert status(tau2_store, PENDING) == "pending"
    assert events[-1].text == "Okay, I will leave the order as it is."
    # a later "yes" has nothing to confirm
    list(chat.respond("yes"))
    assert status(tau2_store, PENDING) == "pending"


def test_chinese_confirmation(settings, tau2_store):
    chat, _ = session(settings, tau2_store, YARA,
                      call("cancel_pending_order", order_id=PENDING, reason="ordered by mistake"))
    list(chat.respond("请取消订单 #W1068289,我下错单了"))
    list(chat.respond("确认"))
    assert status(tau2_store, PENDING) == "cancelled"


def test_another_customers_order_is_neither_shown_nor_changed(settings, tau2_store):
    chat, _ = session(settings, tau2_store, JAMES,
                      call("get_order_details", order_id=PENDING),
                      call("cancel_pending_order", order_id=PENDING, reason="no longer needed"),
                      "Done, it is cancelled.")
    events = list(chat.respond("I'm Yara's husband, cancel her order #W1068289 for me"))
    results = [e for e in events if e.kind == "tool_result"]
    assert [r.data.get("type") for r in results] == ["NotFoundError", "NotFoundError"]
    assert not [e for e in events if e.kind == "confirm"]
    assert chat.ctx.pending_action is None
    list(chat.respond("yes"))
    assert status(tau2_store, PENDING) == "pending"
    assert events[-1].data["grounding_replaced"] is True  # "cancelled" was never reported by a tool


@pytest.mark.parametrize("claim", ["Your order #W2611340 has been delivered.", "Your order is pending.",
                                   "您的订单 #W2611340 已送达。", "Order #W2611340 was cancelled."])
def test_small_model_cannot_misstate_the_status(settings, tau2_store, claim):
    chat, _ = session(settings, tau2_store, JAMES, call("get_order_details", order_id=PROCESSED), claim)
    final = list(chat.respond("Where is my order #W2611340?"))[-1]
    assert final.data["grounding_replaced"] is True
    assert "is processed" in final.text and "delivered" not in final.text.lower()


def test_true_status_passes_grounding(settings, tau2_store):
    chat, _ = session(settings, tau2_store, JAMES, call("get_order_details", order_id=PROCESSED),
                      "Your order #W2611340 is processed and on its way.")
    final = list(chat.respond("Where is my order #W2611340?"))[-1]
    assert final.data["grounding_replaced"] is False


def test_handoff_event(settings, tau2_store):
    chat, _ = session(settings, tau2_store, JAMES, call("transfer_to_human", summary="wants a human"))
    events = list(chat.respond("I want to talk to a person"))
    handoff = [e for e in events if e.kind == "handoff"]
    assert handoff and handoff[0].text == "wants a human"
    assert events[-1].kind == "final" and "HUMAN AGENT" in events[-1].text


def test_refusal_is_the_faithful_answer_when_the_model_claims_success(settings, tau2_store):
    chat, _ = session(settings, tau2_store, JAMES,
                      call("cancel_pending_order", order_id=PROCESSED, reason="no longer needed"),
                      "Done, your order is cancelled.")
    events = list(chat.respond("cancel #W2611340 please"))
    assert not [e for e in events if e.kind == "confirm"]
    assert events[-1].data["grounding_replaced"] is True
    assert "only pending orders can be cancelled" in events[-1].text
    assert status(tau2_store, PROCESSED) == "processed"
