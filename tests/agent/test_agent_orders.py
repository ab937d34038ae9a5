"""The agent over the real order tools and the tau2 store: the confirmation flow through the session API and typed
replies, ownership, and replies rendered from the results whatever the model claims.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from agent.focus import asked_parts
from agent.graph import DECLINED, NOTHING_PENDING, WITH_A_PERSON
from agent.grounding import render
from agent.session import open_session
from agent.testing import ScriptedChatModel, call
from store.models import Order, Payment
from tools.context import PendingAction, ShopContext
from tools.orders import get_order_details
from tools.results import customer_view

YARA, PENDING = "yara_patel_8545", "#W1068289"  # a pending order of yara's
JAMES, PROCESSED, OTHER = "james_li_5688", "#W2611340", "#W3632959"  # two processed orders of james's


def session(settings, store, customer, *script, call_after_result=False):
    """A session over a scripted model; `call_after_result`: the model is called again after every look-up (the path
    of a turn that asked for a change), so the script's words after a result are read.
    """
    model = ScriptedChatModel(script=list(script))
    chat = open_session(settings, "customer", customer, model=model, store=store)
    chat.one_call_after_read = not call_after_result
    return chat, model


def status(store, order_id):
    with store.read() as s:
        return s.get(Order, order_id).status


def payments(store):
    with store.read() as s:
        return s.scalar(select(func.count()).select_from(Payment))


def details(settings, store, customer, order_id, lang="en", question="") -> str:
    """What the person should read for `order_id`: the tool result's own rendering, in the customer's view, narrowed
    to the parts `question` asks for alone (agent.focus: "Where is ...?" is the first line and the tracking).
    """
    ctx = ShopContext(store=store, settings=settings, role="customer", customer_id=customer)
    with customer_view():
        return render(get_order_details(ctx, order_id), lang, parts=asked_parts(question))


def shown(events) -> list[str]:
    return [e.text for e in events if e.kind in ("tool_result", "confirm", "final", "error", "text")]


def propose_cancel(settings, store, *then):
    chat, model = session(settings, store, YARA,
                          call("cancel_pending_order", order_id=PENDING, reason="no longer needed"), *then)
    events = list(chat.respond("Please cancel my order #W1068289, I no longer need it."))
    confirm = [e for e in events if e.kind == "confirm"]
    assert len(confirm) == 1 and PENDING in confirm[0].text
    assert events[-1].text == confirm[0].text and events[-1].data["awaiting_confirmation"]
    assert isinstance(chat.pending, PendingAction) and chat.pending.tool == "cancel_pending_order"
    assert chat.pending.arguments["order_id"] == PENDING
    assert len(model.requests) == 1  # the turn ended at the proposal; the model never claimed success
    return chat, model


def test_cancel_waits_for_confirmation_then_code_executes(settings, tau2_store):
    before = payments(tau2_store)
    chat, model = propose_cancel(settings, tau2_store, "I cancelled it for you!")
    assert status(tau2_store, PENDING) == "pending" and payments(tau2_store) == before  # nothing written yet

    events = list(chat.respond("yes, please go ahead"))
    assert len(model.requests) == 1  # confirmation is executed by code, not by the model
    assert status(tau2_store, PENDING) == "cancelled"
    assert "cancelled" in events[-1].text and events[-1].data["executed"] == "cancel_pending_order"
    assert "I cancelled it for you!" not in events[-1].text
    assert payments(tau2_store) > before  # the refund row
    assert chat.pending is None


def test_a_customer_reads_the_refund_method_by_name_and_the_model_by_id(settings, tau2_store):
    chat, model = propose_cancel(settings, tau2_store)
    with tau2_store.read() as s:
        method = s.scalar(select(Payment.payment_method_id).where(Payment.order_id == PENDING))
    proposal = next(m for m in chat.history if type(m).__name__ == "ToolMessage")
    assert method in proposal.content  # what the model reads, to call with
    confirm_text = chat.history[-1].content
    assert PENDING in confirm_text and method not in confirm_text
    done = list(chat.confirm())
    assert done[-1].data["executed"] == "cancel_pending_order" and method not in done[-1].text
    assert all(method not in text for text in shown(done))


def test_the_confirm_button_executes_the_pending_write(settings, tau2_store):
    chat, model = propose_cancel(settings, tau2_store)
    events = list(chat.confirm())
    assert [e.kind for e in events] == ["tool_call", "tool_result", "final"]
    assert events[0].name == "cancel_pending_order" and events[0].meta["confirmed"] is True
    assert events[-1].text == events[1].text and events[-1].data["executed"] == "cancel_pending_order"
    assert len(model.requests) == 1 and chat.pending is None
    assert status(tau2_store, PENDING) == "cancelled"
    # a second click has nothing to confirm
    assert [e.text for e in chat.confirm()] == [NOTHING_PENDING["en"]]


def test_the_cancel_button_declines_and_the_next_question_is_answered_normally(settings, tau2_store):
    chat, model = propose_cancel(settings, tau2_store, call("get_order_details", order_id=PENDING),
                                 "Here are the details.")
    events = list(chat.decline())
    assert [e.kind for e in events] == ["final"] and events[-1].text == DECLINED["en"]
    assert chat.pending is None and len(model.requests) == 1
    assert status(tau2_store, PENDING) == "pending"

    after = list(chat.respond("What is in order #W1068289?"))
    assert len(model.requests) == 3  # the model was asked: a look-up, then its words (cut after the result)
    assert [e.name for e in after if e.kind == "tool_call"] == ["get_order_details"]
    # "What is in ...?" asks for the items: the order's first line and its items
    assert after[-1].text == details(settings, tau2_store, YARA, PENDING, question="What is in order #W1068289?")
    assert after[-1].meta["model_text_cut"]
    assert DECLINED["en"] not in after[-1].text
    assert status(tau2_store, PENDING) == "pending"


@pytest.mark.parametrize("typed,lang", [("no", "en"), ("nope", "en"), ("不用了", "zh")])
def test_a_typed_bare_no_declines(settings, tau2_store, typed, lang):
    chat, model = propose_cancel(settings, tau2_store)
    events = list(chat.respond(typed))
    assert events[-1].text == DECLINED[lang] and events[-1].data["declined"] is True
    assert chat.pending is None and len(model.requests) == 1
    assert status(tau2_store, PENDING) == "pending"


def test_a_new_question_drops_the_pending_write_and_is_answered(settings, tau2_store):
    chat, model = propose_cancel(settings, tau2_store, call("get_order_details", order_id=PENDING), "Sure.")
    question = "actually, keep it. What items are in it?"
    events = list(chat.respond(question))
    assert chat.pending is None
    assert events[-1].meta["path"][:2] == ["discard_pending", "model"]
    assert events[-1].text == details(settings, tau2_store, YARA, PENDING, question=question)
    assert status(tau2_store, PENDING) == "pending"
    # a later yes has nothing to confirm: typed, it is a message for the model; clicked, code says so
    later = list(chat.respond("yes"))
    assert later[-1].meta["path"][0] == "model" and not [e for e in later if e.kind == "tool_call"]
    asked = len(model.requests)
    assert [e.text for e in chat.confirm()] == [NOTHING_PENDING["en"]] and len(model.requests) == asked
    assert status(tau2_store, PENDING) == "pending"


def test_chinese_confirmation(settings, tau2_store):
    chat, _ = session(settings, tau2_store, YARA,
                      call("cancel_pending_order", order_id=PENDING, reason="ordered by mistake"))
    proposed = list(chat.respond("请取消订单 #W1068289,我下错单了"))
    assert proposed[-1].text == next(e for e in proposed if e.kind == "confirm").text
    done = list(chat.respond("确认"))
    assert status(tau2_store, PENDING) == "cancelled"
    assert done[-1].data["executed"] == "cancel_pending_order" and PENDING in done[-1].text
    assert any("\u4e00" <= ch <= "\u9fff" for ch in done[-1].text)  # rendered in the customer's language


def test_another_customers_order_is_neither_shown_nor_changed(settings, tau2_store):
    chat, _ = session(settings, tau2_store, JAMES,
                      call("get_order_details", order_id=PENDING),
                      call("cancel_pending_order", order_id=PENDING, reason="no longer needed"),
                      "Done, it is cancelled.")
    events = list(chat.respond("I'm Yara's husband, cancel her order #W1068289 for me"))
    results = [e for e in events if e.kind == "tool_result"]
    assert [r.data.get("type") for r in results] == ["NotFoundError", "NotFoundError"]
    assert not [e for e in events if e.kind == "confirm"]
    assert chat.pending is None
    # the reply is the tools' sentence (said once), never the model's claim nor the model-facing error
    assert events[-1].text == results[0].text
    assert "cancelled" not in events[-1].text and "Done" not in events[-1].text
    assert all("error" not in text.lower() for text in shown(events))
    list(chat.respond("yes"))
    assert status(tau2_store, PENDING) == "pending"


@pytest.mark.parametrize("claim", ["Your order #W2611340 has been delivered.", "Your order is pending.",
                                   "您的订单 #W2611340 已送达。", "Order #W2611340 was cancelled.",
                                   "Your order #W2611340 is processed and on its way."])
def test_the_models_status_claims_never_show(settings, tau2_store, claim):
    # wrong claims and true ones alike: after the result the model's text is cut, the person reads the rendering
    chat, _ = session(settings, tau2_store, JAMES, call("get_order_details", order_id=PROCESSED), claim,
                      call_after_result=True)
    final = list(chat.respond("Where is my order #W2611340?"))[-1]
    assert final.text == details(settings, tau2_store, JAMES, PROCESSED, question="Where is my order #W2611340?")
    assert claim not in final.text and final.meta["model_text_cut"] is True
    assert "model_text_dropped" not in final.meta and chat.stats["model_text_dropped"] == 0
    assert "processed" in final.text and "delivered" not in final.text.lower()


def test_a_chinese_status_question_gets_the_chinese_rendering(settings, tau2_store):
    chat, _ = session(settings, tau2_store, JAMES, call("get_order_details", order_id=PROCESSED),
                      "您的订单已送达。")
    question = "我的订单 #W2611340 到哪了?"
    final = list(chat.respond(question))[-1]
    assert final.text == details(settings, tau2_store, JAMES, PROCESSED, "zh", question)
    assert final.text != details(settings, tau2_store, JAMES, PROCESSED, "en", question)
    assert "已送达" not in final.text


def test_the_next_task_is_answered_with_its_own_result(settings, tau2_store):
    chat, model = session(settings, tau2_store, JAMES,
                          call("get_order_details", order_id=PROCESSED), "Here is your order.",
                          # the model copies its previous answer (read and dropped: it states facts); it is made
                          # to look the new order up
                          "Your order #W2611340 is processed.", call("get_order_details", order_id=OTHER),
                          "Here is your order.", call_after_result=True)
    first = list(chat.respond("Where is my order #W2611340?"))[-1]
    second = list(chat.respond("And my order #W3632959?"))[-1]
    assert first.text == details(settings, tau2_store, JAMES, PROCESSED, question="Where is my order #W2611340?")
    assert second.text == details(settings, tau2_store, JAMES, OTHER)
    assert second.meta["forced_tool"] is True and second.meta["model_text_dropped"] and second.meta["model_text_cut"]
    assert PROCESSED not in second.text
    # the model saw the first task only as its question and rendered reply: the whole rendering, of which the
    # person read the parts "Where is ...?" asked for
    prompt = model.requests[2]["messages"]
    whole = details(settings, tau2_store, JAMES, PROCESSED)
    assert first.text != whole
    assert [m.content for m in prompt[1:]] == ["Where is my order #W2611340?", whole, "And my order #W3632959?"]


def test_handoff_event_and_the_bot_stays_quiet_after(settings, tau2_store):
    chat, model = session(settings, tau2_store, JAMES, call("transfer_to_human", summary="wants a human"),
                          "never reached")
    events = list(chat.respond("I want to talk to a person"))
    handoff = [e for e in events if e.kind == "handoff"]
    assert handoff and handoff[0].text == "wants a human"
    assert events[-1].kind == "final" and events[-1].data["handoff"] is True
    assert "wants a human" not in events[-1].text  # the summary is for the person taking over
    assert chat.handed_off is True
    asked = len(model.requests)
    later = list(chat.respond("Hello? Where is my order #W2611340?"))
    assert len(model.requests) == asked
    assert [e.kind for e in later] == ["final"] and later[-1].text == WITH_A_PERSON["en"]


def test_refusal_is_the_reply_when_the_model_claims_success(settings, tau2_store):
    chat, _ = session(settings, tau2_store, JAMES,
                      call("cancel_pending_order", order_id=PROCESSED, reason="no longer needed"),
                      "Done, your order is cancelled.")
    events = list(chat.respond("cancel #W2611340 please"))
    assert not [e for e in events if e.kind == "confirm"] and chat.pending is None
    result = next(e for e in events if e.kind == "tool_result")
    assert result.data["type"] == "PolicyError"
    assert events[-1].text == result.text
    assert "only pending orders can be cancelled" in events[-1].text and "Done" not in events[-1].text
    assert not events[-1].text.lower().startswith("error")
    assert status(tau2_store, PROCESSED) == "processed"


@pytest.mark.parametrize("claim", ["OK, I won't cancel the order.", "I have changed your address."])
def test_model_words_claiming_an_action_never_show(settings, tau2_store, claim):
    chat, _ = session(settings, tau2_store, JAMES, call("get_order_details", order_id=PROCESSED), claim,
                      call_after_result=True)
    question = "What items are in my order #W2611340?"
    final = list(chat.respond(question))[-1]
    assert final.text == details(settings, tau2_store, JAMES, PROCESSED, question=question)


class BusyModel(ScriptedChatModel):
    """A model already answering `ahead` other conversations (as LocalChatModel.busy() reports)."""

    ahead: int = 0
    warming: bool = False

    def busy(self) -> int:
        return self.ahead

    def starting(self) -> bool:
        return self.warming


def test_a_queued_turn_says_how_many_are_ahead_before_it_waits(settings, tau2_store):
    model = BusyModel(script=[call("get_order_details", order_id=PROCESSED)], ahead=2)
    chat = open_session(settings, "customer", JAMES, model=model, store=tau2_store)
    events = list(chat.respond("Where is my order #W2611340?"))
    assert events[0].kind == "status" and events[0].data == {"ahead": 2}
    assert events[-1].kind == "final" and PROCESSED in events[-1].text
    model.ahead = 0
    later = list(chat.respond("Thanks!"))
    assert "status" not in [e.kind for e in later]  # nobody ahead: nothing to say


def test_a_turn_while_the_model_starts_says_so_rather_than_a_queue(settings, tau2_store):
    """After a restart the warm-up's prefills are in flight: the customer hears the assistant is starting, not that
    other customers are ahead of them.
    """
    model = BusyModel(script=[call("get_order_details", order_id=PROCESSED)], ahead=1, warming=True)
    chat = open_session(settings, "customer", JAMES, model=model, store=tau2_store)
    events = list(chat.respond("Where is my order #W2611340?"))
    assert events[0].kind == "status" and events[0].data == {"starting": True}
    assert [e.kind for e in events].count("status") == 1
    assert events[-1].kind == "final" and PROCESSED in events[-1].text
