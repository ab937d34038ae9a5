"""The agent turn driven by a scripted model over small stand-in tools: the reply is the rendering of the results,
the model's words after a result are cut (never read), its facts never show, invalid calls give up plainly, pending
writes, handoffs, memory and logging.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel
from sqlalchemy import select

from agent.confirmation import is_confirmation, is_refusal
from agent.graph import DECLINED, MAX_TEXT_CHARS, NOTHING_PENDING, WITH_A_PERSON
from agent.grounding import ASK_FIRST, GENERIC_FAILURE
from agent.session import open_session
from agent.testing import ScriptedChatModel, call
from store.models import Conversation, Message
from tools.context import PendingAction, ShopContext
from tools.results import Fact

from fake_orders import NOT_FOUND, NOT_FOUND_ZH, OrderInfo, get_order_details, info


class Proposal(BaseModel):
    summary: str

    def render(self, lang: str = "en") -> str:
        return self.summary + " Shall I go ahead?"

    def facts(self) -> list[Fact]:
        return []


def cancel_pending_order(ctx: ShopContext, order_id: str) -> Proposal:
    """Propose cancelling one of the customer's pending orders (runs only after the customer confirms).

    Args:
        order_id: The order id, like '#W1234567'.
    """
    summary = f"Cancel order {order_id}."
    ctx.pending_action = PendingAction(tool="cancel_pending_order", arguments={"order_id": order_id}, summary=summary)
    return Proposal(summary=summary)


class CountingModel(ScriptedChatModel):
    """A scripted model that counts the text chunks the graph read from it (generation stops when it stops reading)."""

    pulled: int = 0

    def _stream(self, *args, **kwargs):
        for chunk in super()._stream(*args, **kwargs):
            self.pulled += bool(chunk.message.content)
            yield chunk


def session_for(settings, shop, script, customer="alice", tools=(get_order_details,), model_class=ScriptedChatModel,
                call_after_result=False, **kwargs):
    """A session over a scripted model. `call_after_result`: the model is called again after a look-up even when the
    message asked for no change (the path a turn takes after a failed call or when a change was asked for), so the
    script's words after a result are read; by default, as shipped, such a turn is answered by the rendering.
    """
    model = model_class(script=list(script))
    session = open_session(settings, "customer", customer, model=model, store=shop, tools=list(tools), **kwargs)
    session.one_call_after_read = not call_after_result
    return session, model


def run(session, text):
    return list(session.respond(text))


def shown(events) -> list[str]:
    """Every text a person can read in a turn: the tool results' renderings, confirmations and the reply."""
    return [e.text for e in events if e.kind in ("tool_result", "confirm", "final", "error", "text")]


# -- the reply is the rendering ---------------------------------------------------------------------------------


def test_tool_call_and_the_reply_is_the_rendering(settings, shop):
    # as shipped: a look-up that answers a message asking for no change ends the model's part of the turn, with one
    # model call; the reply is the rendering
    session, model = session_for(settings, shop, [call("get_order_details", order_id="#W100"),
                                                  "Your order #W100 is processed, total $42.50."])
    events = run(session, "Where is my order #W100?")
    kinds = [e.kind for e in events]
    assert kinds == ["tool_call", "tool_result", "final"]  # the model's text is not streamed
    tc = events[0]
    assert (tc.name, tc.arguments) == ("get_order_details", {"order_id": "#W100"})
    assert events[-1].text == info("#W100").render("en") == events[1].text
    assert events[-1].meta["path"] == ["model", "validate", "tools", "answer", "record"]
    assert events[-1].meta["steps"] == 1 and events[-1].meta["latency_s"] >= 0
    assert len(model.requests) == 1 and "model_text_cut" not in events[-1].meta
    assert "grounding_replaced" not in (events[-1].data or {})
    # the model saw the tool's schema without ctx
    tools = model.requests[0]["tools"]
    assert tools[0]["function"]["parameters"]["properties"].keys() == {"order_id"}


def test_after_a_result_the_model_is_called_again_and_its_words_are_cut(settings, shop):
    # the path of a turn that asked for a change or whose call failed: even true facts in the model's words after a
    # result never show (its text is cut), what a person reads is rendered by code
    session, model = session_for(settings, shop, [call("get_order_details", order_id="#W100"),
                                                  "Your order #W100 is processed, total $42.50."],
                                 call_after_result=True)
    events = run(session, "Where is my order #W100?")
    assert events[-1].text == info("#W100").render("en") == events[1].text
    assert events[-1].meta["model_text_cut"] is True and "model_text_dropped" not in events[-1].meta
    assert events[-1].meta["path"] == ["model", "validate", "tools", "model", "answer", "record"]
    assert events[-1].meta["steps"] == 2
    # the model read the tool's English rendering as the tool turn
    assert model.requests[1]["messages"][-1].content == info("#W100").render("en")


def test_a_message_asking_for_a_change_calls_the_model_after_the_look_up(settings, shop):
    # "check it, then cancel it": the look-up does not end the turn, the model goes on to propose the change
    session, model = session_for(settings, shop, [call("get_order_details", order_id="#W102"),
                                                  call("cancel_pending_order", order_id="#W102")],
                                 tools=(get_order_details, cancel_pending_order))
    events = run(session, "Check my order #W102 and cancel it please")
    assert [e.name for e in events if e.kind == "tool_call"] == ["get_order_details", "cancel_pending_order"]
    assert len(model.requests) == 2 and events[-1].data["awaiting_confirmation"]
    assert session.pending is not None and session.pending.tool == "cancel_pending_order"


def test_a_failed_look_up_goes_back_to_the_model(settings, shop):
    session, model = session_for(settings, shop, [call("get_order_details", order_id="#W999"),
                                                  call("get_order_details", order_id="#W100")])
    events = run(session, "Where is my order #W999? Or maybe #W100")
    assert len(model.requests) == 2
    assert events[-1].meta["path"] == ["model", "validate", "tools", "model", "validate", "tools", "answer",
                                       "record"]
    assert info("#W100").render("en") in events[-1].text


@pytest.mark.parametrize("words", ["Happy to help!", "Happy to help! " * 20])
def test_fact_free_model_words_after_a_result_are_cut(settings, shop, words):
    # after a result the model's words are not needed: generation stops at their first chunk, the reply is exactly
    # the rendering (fact-free words included: they are never read, so never shown)
    session, model = session_for(settings, shop, [call("get_order_details", order_id="#W100"), words],
                                 model_class=CountingModel, call_after_result=True)
    events = run(session, "Where is my order #W100?")
    final = events[-1]
    assert final.text == info("#W100").render("en")
    assert all("Happy" not in text for text in shown(events))
    assert final.meta["model_text_cut"] is True
    assert "model_text_dropped" not in final.meta and session.stats["model_text_dropped"] == 0
    assert model.pulled == 1 and len(model.requests) == 2


@pytest.mark.parametrize("answer", ["Good news: order #W100 was delivered yesterday.", "Your order #W999 is pending.",
                                    "The total is $99.00.", "It will arrive on 2024-05-03.",
                                    "Tracking number 5550001112.", "您的订单已送达。"])
def test_the_models_wrong_facts_never_show(settings, shop, answer):
    session, _ = session_for(settings, shop, [call("get_order_details", order_id="#W100"), answer],
                             call_after_result=True)
    events = run(session, "status of #W100?")
    assert events[-1].text == "Order #W100 is processed; total $42.50, tracking 1234567890."
    assert all(answer not in text for text in shown(events))
    assert "delivered" not in events[-1].text and "已送达" not in events[-1].text
    # cut at the first chunk after the result, not read to the end and then dropped
    assert events[-1].meta["model_text_cut"] is True
    assert "model_text_dropped" not in events[-1].meta and session.stats["model_text_dropped"] == 0


def test_a_fact_free_answer_without_a_tool_is_kept(settings, shop):
    session, model = session_for(settings, shop, ["Hello! How can I help you today?"])
    events = run(session, "hi")
    assert [e.kind for e in events] == ["final"]
    assert events[-1].text == "Hello! How can I help you today?"
    assert events[-1].meta["path"] == ["model", "answer", "record"]
    assert len(model.requests) == 1 and "forced_tool" not in events[-1].meta
    assert "model_text_cut" not in events[-1].meta and "model_text_dropped" not in events[-1].meta


FACT_FREE_160 = ("Hello there, I am glad you wrote to us today and I would be happy to help you with whatever you "
                 "need, so please tell me more about what you are looking for now.")


def test_a_fact_free_answer_of_max_text_chars_is_read_in_full_and_kept(settings, shop):
    assert len(FACT_FREE_160) == MAX_TEXT_CHARS
    session, model = session_for(settings, shop, [FACT_FREE_160])
    final = run(session, "hi")[-1]
    assert final.text == FACT_FREE_160 and final.meta["path"] == ["model", "answer", "record"]
    assert "model_text_cut" not in final.meta and "forced_tool" not in final.meta and len(model.requests) == 1


def test_a_chinese_question_gets_the_chinese_rendering(settings, shop):
    session, model = session_for(settings, shop, [call("get_order_details", order_id="#W100"),
                                                  "您的订单 #W100 已送达。"], call_after_result=True)
    events = run(session, "我的订单 #W100 到哪了?")
    assert events[-1].text == info("#W100").render("zh")
    assert next(e for e in events if e.kind == "tool_result").text == info("#W100").render("zh")
    assert "已送达" not in events[-1].text
    # the model reads the English rendering; only the person's reply follows their language
    assert model.requests[1]["messages"][-1].content == info("#W100").render("en")


# -- the forced tool call ---------------------------------------------------------------------------------------


def test_facts_without_a_tool_force_one_tool_call(settings, shop):
    session, model = session_for(settings, shop, ["Your order #W100 has been delivered.",
                                                  call("get_order_details", order_id="#W100"),
                                                  "Here it is."], call_after_result=True)
    events = run(session, "Where is my order #W100?")
    assert [e.kind for e in events] == ["tool_call", "tool_result", "final"]
    assert events[-1].text == info("#W100").render("en")
    assert "delivered" not in events[-1].text and "Here it is." not in events[-1].text
    meta = events[-1].meta
    # the short text before any result was read and dropped (it states a fact); the words after the result were cut
    assert meta["forced_tool"] is True and meta["model_text_dropped"].startswith("contains")
    assert meta["model_text_cut"] is True and session.stats["model_text_dropped"] == 1
    assert meta["path"] == ["model", "answer", "model", "validate", "tools", "model", "answer", "record"]
    assert [r["kwargs"].get("tool_choice") for r in model.requests] == [None, "required", None]
    # the forced request does not carry the dropped words
    assert all("delivered" not in str(m.content) for m in model.requests[1]["messages"])


@pytest.mark.parametrize("long_text", [FACT_FREE_160[:-1] + "!!", "Let me tell you all about your order. " * 10])
def test_a_too_long_text_before_any_result_is_cut_and_forces_one_tool_call(settings, shop, long_text):
    assert len(long_text.strip()) > MAX_TEXT_CHARS
    session, model = session_for(settings, shop, [long_text, call("get_order_details", order_id="#W100"),
                                                  "Here it is."], model_class=CountingModel, call_after_result=True)
    events = run(session, "Where is my order #W100?")
    assert [e.kind for e in events] == ["tool_call", "tool_result", "final"]
    assert events[-1].text == info("#W100").render("en")
    meta = events[-1].meta
    # cut, not read and dropped: an empty text is no answer, so the model is asked once to make the call
    assert meta["model_text_cut"] is True and meta["forced_tool"] is True
    assert "model_text_dropped" not in meta and session.stats["model_text_dropped"] == 0
    assert meta["path"] == ["model", "answer", "model", "validate", "tools", "model", "answer", "record"]
    assert [r["kwargs"].get("tool_choice") for r in model.requests] == [None, "required", None]
    # read up to just past the limit (8-character chunks), then one chunk after the result
    assert model.pulled == MAX_TEXT_CHARS // 8 + 1 + 1
    assert all(long_text.strip()[:20] not in str(m.content) for m in model.requests[1]["messages"])


def test_a_too_long_text_again_after_the_forced_call_asks_first(settings, shop):
    session, model = session_for(settings, shop, ["Hello! " * 30, "Hello! " * 30])
    events = run(session, "Where is my order #W100?")
    assert [e.kind for e in events] == ["final"] and events[-1].text == ASK_FIRST["en"]
    assert events[-1].meta["model_text_cut"] is True and events[-1].meta["forced_tool"] is True
    assert len(model.requests) == 2


@pytest.mark.parametrize("question,lang", [("Where is my order #W100?", "en"), ("我的订单 #W100 在哪?", "zh")])
def test_facts_again_after_the_forced_call_ask_first(settings, shop, question, lang):
    session, model = session_for(settings, shop, ["It was delivered on 2024-05-03.", "It is delivered, #W100."])
    events = run(session, question)
    assert [e.kind for e in events] == ["final"]
    assert events[-1].text == ASK_FIRST[lang]
    assert len(model.requests) == 2 and events[-1].meta["forced_tool"] is True


# -- tool errors ------------------------------------------------------------------------------------------------


def test_a_tool_error_reaches_the_person_as_a_sentence(settings, shop):
    session, model = session_for(settings, shop, [call("get_order_details", order_id="#W200"),
                                                  "Order #W200 is pending."])
    events = run(session, "Show me order #W200, I am bob's friend")
    result = next(e for e in events if e.kind == "tool_result")
    assert result.data["type"] == "NotFoundError" and result.text == NOT_FOUND
    assert events[-1].text == NOT_FOUND
    assert all("error" not in text.lower() and "pending" not in text for text in shown(events))
    # the model reads the model-facing error
    assert model.requests[1]["messages"][-1].content == "error: no order #W200 for this customer"


def test_a_tool_error_in_chinese(settings, shop):
    session, _ = session_for(settings, shop, [call("get_order_details", order_id="#W200"), "好的。"])
    events = run(session, "帮我查一下订单 #W200")
    assert events[-1].text == NOT_FOUND_ZH and events[-1].meta["model_text_cut"] is True
    assert all("error" not in text.lower() for text in shown(events))


def test_a_repeated_failing_call_is_said_once(settings, shop):
    script = [call("get_order_details", order_id="#W999")] * 3 + ["Your order #W999 is delivered."]
    session, _ = session_for(settings, shop, script)
    final = run(session, "where is #W999")[-1]
    assert final.text == NOT_FOUND


# -- invalid calls: give up with a plain sentence ---------------------------------------------------------------


def spy_tool(seen: list[str]):
    def get_order_details_spy(ctx: ShopContext, order_id: str) -> OrderInfo:
        """Order details.

        Args:
            order_id: The order id.
        """
        seen.append(order_id)
        return get_order_details(ctx, order_id)

    get_order_details_spy.__name__ = "get_order_details"
    return get_order_details_spy


@pytest.mark.parametrize("bad", [
    call("get_order_details", order=300),
    call("get_order_details", order_id=5),
    call("delete_everything"),
    # a malformed call left as text (what vLLM's hermes parser does with one)
    '<tool_call>{"name": "get_order_details", "arguments": {order_id: #W100}}</tool_call>',
], ids=["missing-argument", "wrong-type", "unknown-tool", "malformed"])
def test_an_invalid_call_gives_up_with_a_plain_sentence(settings, shop, bad):
    seen: list[str] = []
    session, model = session_for(settings, shop, [bad, call("get_order_details", order_id="#W100"), "never reached"],
                                 tools=[spy_tool(seen)])
    events = run(session, "status of W100")
    assert seen == []  # the invalid call never reached the tool, and there was no corrective retry
    assert len(model.requests) == 1
    assert [e.kind for e in events] == ["final"]
    assert events[-1].text == GENERIC_FAILURE["en"]
    assert events[-1].meta["invalid_calls"] == 1 and session.stats["invalid_calls"] == 1
    assert events[-1].meta["path"] == ["model", "validate", "give_up", "record"]
    for word in ("error", "required", "unknown tool", "not of type", "malformed", "delete_everything"):
        assert word not in events[-1].text.lower()


def test_giving_up_after_a_result_says_the_result(settings, shop):
    session, _ = session_for(settings, shop, [call("get_order_details", order_id="#W100"), call("delete_everything"),
                                              "never reached"], call_after_result=True)
    events = run(session, "status of #W100, then delete everything")
    assert events[-1].text == info("#W100").render("en")
    assert events[-1].meta["invalid_calls"] == 1
    assert events[-1].meta["invalid_call_errors"] == ["delete_everything: unknown tool 'delete_everything'"]


def test_giving_up_in_chinese(settings, shop):
    session, _ = session_for(settings, shop, [call("no_such_tool")])
    assert run(session, "帮我查订单")[-1].text == GENERIC_FAILURE["zh"]


def test_undeclared_argument_keys_are_dropped_and_logged(settings, shop, caplog):
    # what vLLM returned for a forced call before --tool-strict-level parameter: the right id plus invented keys;
    # a customer_id among them must not widen access: the tool still answers for the signed-in customer only
    extra = call("get_order_details", order_id="#W200", customer_id="bob", arguments={"order_id": "#W200"})
    session, model = session_for(settings, shop, [extra, "Sorry."])
    with caplog.at_level("WARNING", logger="agent.graph"):
        events = run(session, "where is #W200")
    tc = next(e for e in events if e.kind == "tool_call")
    assert tc.arguments == {"order_id": "#W200"}
    result = next(e for e in events if e.kind == "tool_result")
    assert result.data["type"] == "NotFoundError"
    assert "customer_id, arguments" in caplog.text
    assert "invalid_calls" not in events[-1].meta
    # the history the model sees next holds the call as it ran
    assert model.requests[1]["messages"][-2].tool_calls[0]["args"] == {"order_id": "#W200"}


def test_dropping_never_fills_a_missing_required_argument(settings, shop):
    seen: list[str] = []
    session, model = session_for(settings, shop, [call("get_order_details", order="#W100", id="#W100"),
                                                  call("get_order_details", order_id="#W100")],
                                 tools=[spy_tool(seen)])
    events = run(session, "status of #W100")
    assert seen == [] and not [e for e in events if e.kind == "tool_call"]
    assert events[-1].text == GENERIC_FAILURE["en"] and "order_id" not in events[-1].text
    assert events[-1].meta["invalid_calls"] == 1 and len(model.requests) == 1


def test_max_tool_steps_per_turn(settings, shop):
    script = [call("get_order_details", order_id="#W100")] * 10
    session, _ = session_for(settings, shop, script, call_after_result=True)
    events = run(session, "loop forever")
    assert len([e for e in events if e.kind == "tool_call"]) == 4
    assert events[-1].meta.get("max_steps_reached") is True
    assert events[-1].text == info("#W100").render("en")  # said once


# -- memory, follow-ups and logging -----------------------------------------------------------------------------


def test_turns_are_logged_and_memory_kept(settings, shop):
    session, model = session_for(settings, shop, [call("get_order_details", order_id="#W100"),
                                                  "Order #W100 is processed.", "You are welcome."],
                                 call_after_result=True)
    run(session, "where is #W100")
    run(session, "thanks")
    # the second turn's prompt holds the first turn as question and rendered reply
    assert [(type(m), m.content) for m in model.requests[2]["messages"][1:]] == [
        (HumanMessage, "where is #W100"), (AIMessage, info("#W100").render("en")), (HumanMessage, "thanks")]
    with shop.read() as s:
        conv = s.get(Conversation, session.conversation_id)
        rows = s.scalars(select(Message).where(Message.conversation_id == conv.id).order_by(Message.seq)).all()
        assert conv.customer_id == "alice" and conv.role == "customer"
        assert [r.role for r in rows] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
        assert rows[1].tool_calls[0]["name"] == "get_order_details"
        assert rows[3].content == info("#W100").render("en")
        assert rows[3].meta["backend"] == "scripted" and rows[3].meta["latency_s"] >= 0
        assert rows[3].meta["model_text_cut"] is True and "model_text_dropped" not in rows[3].meta
        assert rows[3].meta["path"][-1] == "record"
        assert rows[5].content == "You are welcome." and "model_text_cut" not in rows[5].meta
        assert isinstance(rows[0].created_at, datetime)


def test_a_follow_up_sees_only_the_last_two_turns_and_is_answered_with_its_own_result(settings, shop):
    session, model = session_for(settings, shop, [
        call("get_order_details", order_id="#W100"), "Here you go.",
        call("get_order_details", order_id="#W101"), "Here you go.",
        call("get_order_details", order_id="#W102"), "Here you go.",
        # the fourth question: the model repeats the previous answer, is made to look the order up, then starts
        # to repeat the previous answer again (cut)
        info("#W102").render("en"), call("get_order_details", order_id="#W101"), info("#W102").render("en"),
    ], call_after_result=True)
    questions = ["where is #W100", "and #W101?", "and #W102?", "and #W101 again?"]
    finals = [run(session, q)[-1] for q in questions[:3]]
    assert [f.text for f in finals] == [info(o).render("en") for o in ("#W100", "#W101", "#W102")]
    first_request = len(model.requests)
    final = run(session, questions[3])[-1]
    prompt = model.requests[first_request]["messages"]
    assert isinstance(prompt[0], SystemMessage)
    assert [(type(m), m.content) for m in prompt[1:]] == [
        (HumanMessage, questions[1]), (AIMessage, finals[1].text),
        (HumanMessage, questions[2]), (AIMessage, finals[2].text),
        (HumanMessage, questions[3])]
    assert not any(isinstance(m, ToolMessage) or getattr(m, "tool_calls", None) for m in prompt)
    # the reply is this turn's result, never an earlier answer copied by the model
    assert final.text == info("#W101").render("en")
    assert "#W102" not in final.text and final.meta["forced_tool"] is True
    assert final.meta["model_text_dropped"] and final.meta["model_text_cut"] is True


def test_the_model_reads_the_first_lines_of_a_long_earlier_reply(settings, shop):
    from agent.session import HISTORY_REPLY_CHARS

    session, _ = session_for(settings, shop, [])
    rows = [f"| {i} | c{i:06d} | 0.{i:02d} | reasons of row {i} |" for i in range(200)]
    table = "\n".join(["Churn risk as of 2026-10-31: 200 customers scored.", "", *rows])
    session.turns = [(HumanMessage("Which customers will churn?"), AIMessage(table)),
                     (HumanMessage("thanks"), AIMessage("You are welcome."))]
    prompt = session.prompt([HumanMessage("Tell me about c000003.")])
    read = prompt[2].content
    assert len(read) <= HISTORY_REPLY_CHARS and table.startswith(read)
    assert read.endswith(rows[len(read.splitlines()) - 3])  # whole lines: the last one read is a complete row
    assert prompt[4].content == "You are welcome."  # a short reply is read whole
    assert session.turns[0][1].content == table  # what the person read is not changed


def test_a_reopened_conversation_keeps_the_last_turns(settings, shop):
    session, _ = session_for(settings, shop, [call("get_order_details", order_id="#W100"), "Sure."])
    run(session, "where is #W100")
    again, model = session_for(settings, shop, ["You are welcome."], conversation_id=session.conversation_id)
    run(again, "thanks")
    assert [m.content for m in model.requests[0]["messages"][1:]] == [
        "where is #W100", info("#W100").render("en"), "thanks"]


def test_customer_by_email_and_unknown_customer(settings, shop):
    from shopdesk.output import UserError

    session, _ = session_for(settings, shop, ["hello"], customer="bob@example.com")
    assert session.customer_id == "bob"
    with pytest.raises(UserError, match="no customer"):
        session_for(settings, shop, ["hello"], customer="mallory")


@pytest.mark.parametrize("text,expected", [("yes", True), ("Yes, please go ahead", True), ("confirm", True),
                                           ("好的", True), ("确认", True), ("ok", True), ("no", False),
                                           ("yes but not now", False), ("what about my other order?", False),
                                           ("不要", False), ("是的，请继续", True), ("OK thanks, that's all.", False),
                                           ("好的,谢谢。", False), ("ok, and where is #W101?", False)])
def test_is_confirmation(text, expected):
    assert is_confirmation(text) is expected


@pytest.mark.parametrize("text,expected", [("no", True), ("No.", True), ("cancel", True), ("不用了", True),
                                           ("no thanks", True), ("yes", False), ("no, where is #W101?", False),
                                           ("cancel order #W102 instead", False)])
def test_is_refusal(text, expected):
    assert is_refusal(text) is expected


# -- a pending write: confirm(), decline(), a typed no, a new question ------------------------------------------


def proposing(settings, shop, *then):
    session, model = session_for(settings, shop, [call("cancel_pending_order", order_id="#W102"), *then],
                                 tools=(get_order_details, cancel_pending_order))
    events = run(session, "cancel #W102 please")
    assert [e.kind for e in events] == ["tool_call", "tool_result", "confirm", "final"]
    assert events[-1].text == "Cancel order #W102. Shall I go ahead?" and events[-1].data["awaiting_confirmation"]
    assert session.pending == PendingAction("cancel_pending_order", {"order_id": "#W102"}, "Cancel order #W102.")
    return session, model


def test_decline_drops_the_write_and_the_next_question_is_answered_by_the_model(settings, shop):
    session, model = proposing(settings, shop, call("get_order_details", order_id="#W101"), "Sure.")
    asked = len(model.requests)
    events = list(session.decline())
    assert [e.kind for e in events] == ["final"] and events[-1].text == DECLINED["en"]
    assert events[-1].meta["path"] == ["decline_pending", "record"]
    assert session.pending is None and len(model.requests) == asked
    after = run(session, "where is #W101?")
    assert len(model.requests) == asked + 1  # answered by the model's look-up
    assert after[-1].text == info("#W101").render("en")
    assert DECLINED["en"] not in after[-1].text and "#W102" not in after[-1].text


@pytest.mark.parametrize("typed", ["no", "No thanks.", "cancel", "不用了"])
def test_a_typed_bare_no_declines(settings, shop, typed):
    session, model = proposing(settings, shop)
    asked = len(model.requests)
    events = run(session, typed)
    assert events[-1].text == DECLINED["zh" if typed == "不用了" else "en"]
    assert events[-1].meta["path"] == ["decline_pending", "record"]
    assert session.pending is None and len(model.requests) == asked


def test_a_new_question_while_a_write_is_pending_drops_it_and_is_answered(settings, shop):
    session, model = proposing(settings, shop, call("get_order_details", order_id="#W100"), "Sure.")
    events = run(session, "actually, where is my order #W100?")
    assert session.pending is None
    assert events[-1].meta["path"][:2] == ["discard_pending", "model"]
    assert events[-1].text == info("#W100").render("en")
    # the model was asked the new question, without the old proposal's tool exchange
    prompt = model.requests[-1]["messages"]
    assert prompt[-1].content == "actually, where is my order #W100?"
    assert not any(isinstance(m, ToolMessage) for m in prompt)
    # a later yes has nothing to confirm
    asked = len(model.requests)
    late = list(session.confirm())
    assert late[-1].text == NOTHING_PENDING["en"] and len(model.requests) == asked


def test_confirm_and_decline_with_nothing_pending(settings, shop):
    session, model = session_for(settings, shop, [])
    assert [e.text for e in session.confirm()] == [NOTHING_PENDING["en"]]
    assert [e.text for e in session.decline()] == [NOTHING_PENDING["en"]]
    assert model.requests == []


# -- handoff ----------------------------------------------------------------------------------------------------


def test_direct_handoff_needs_no_model_and_is_logged(settings, shop):
    session, model = session_for(settings, shop, [call("get_order_details", order_id="#W100"), "Sure."])
    run(session, "Where is my order #W100?")
    asked = len(model.requests)
    events = list(session.hand_off("Please transfer me to a human agent."))
    assert len(model.requests) == asked  # the button works whatever the model would have done
    assert [e.kind for e in events] == ["tool_call", "tool_result", "handoff", "final"]
    summary = events[0].arguments["summary"]
    assert events[0].name == "transfer_to_human" and summary == events[2].text and events[0].meta["direct"] is True
    assert "Customer alice" in summary and '"Where is my order #W100?"' in summary
    assert "get_order_details(order_id=#W100)" in summary
    assert events[-1].data["handoff"] is True and events[-1].meta["path"] == ["hand_off", "record"]
    assert session.handed_off is True
    with shop.read() as s:
        conv = s.get(Conversation, session.conversation_id)
        assert conv.outcome == "handed_off"
        rows = s.scalars(select(Message).where(Message.conversation_id == conv.id).order_by(Message.seq)).all()
        assert [r.role for r in rows[-4:]] == ["user", "assistant", "tool", "assistant"]
        assert rows[-3].tool_calls[0]["name"] == "transfer_to_human"
        assert rows[-1].meta["path"] == ["hand_off", "record"]


def test_direct_handoff_disarms_a_pending_write(settings, shop):
    session, _ = session_for(settings, shop, ["Hello."])
    session.ctx.pending_action = PendingAction("cancel_pending_order", {"order_id": "#W102"},
                                               "Cancel order #W102 (refund $7.25).")
    events = list(session.hand_off("I want a person"))
    assert "Awaiting their confirmation: Cancel order #W102" in events[0].arguments["summary"]
    assert "They had not asked anything yet." in events[0].arguments["summary"]
    assert session.pending is None


@pytest.mark.parametrize("how", ["model", "button"])
def test_after_a_handoff_the_model_is_not_asked_again(settings, shop, how):
    from tools.handoff import transfer_to_human

    session, model = session_for(settings, shop, [call("transfer_to_human", summary="wants a person"), "never"],
                                 tools=(get_order_details, transfer_to_human))
    handoff = run(session, "I want a person") if how == "model" else list(session.hand_off("I want a person"))
    assert handoff[-1].data["handoff"] is True and session.handed_off is True
    asked = len(model.requests)
    later = run(session, "hello? where is #W100?")
    assert len(model.requests) == asked
    assert [e.kind for e in later] == ["final"] and later[-1].text == WITH_A_PERSON["en"]
    assert later[-1].meta["path"] == ["after_handoff", "record"]
    assert run(session, "还在吗?")[-1].text == WITH_A_PERSON["zh"]
    assert [e.text for e in session.confirm()] == [WITH_A_PERSON["zh"]]
    assert len(model.requests) == asked
    with shop.read() as s:  # the customer's messages are kept for the person
        rows = s.scalars(select(Message).where(Message.conversation_id == session.conversation_id)
                         .order_by(Message.seq)).all()
        assert "hello? where is #W100?" in [r.content for r in rows if r.role == "user"]
    # the conversation stays with the person when it is opened again
    again, other = session_for(settings, shop, ["never"], conversation_id=session.conversation_id)
    assert again.handed_off is True
    assert run(again, "anyone?")[-1].text == WITH_A_PERSON["en"] and other.requests == []
