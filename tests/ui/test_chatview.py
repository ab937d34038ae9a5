"""Agent events as chat messages, the working bubble, the buttons' session calls, and failures as one clear
sentence (no server needed).
"""

from __future__ import annotations

import threading

import httpx
import pytest
import sqlalchemy

from agent.api import AgentEvent
from ui.chatview import ChatView, as_text, friendly_error, run_action, run_turn, step_line


class ListSession:
    """A ChatSession that replays given events (or raises), to test the view without a model."""

    customer_id = "c1"
    conversation_id = "conv"

    def __init__(self, events, error: Exception | None = None, role: str = "customer"):
        self.events, self.error, self.role = events, error, role

    def respond(self, message):
        yield from self.events
        if self.error:
            raise self.error

    def describe_backend(self):
        return {"backend": "list"}


class PendingSession(ListSession):
    """A session with the typed confirmation API (agent.api.ChatSession): records what the UI called."""

    def __init__(self):
        super().__init__([])
        self.pending = None
        self.handed_off = False
        self.calls: list[tuple[str, str]] = []

    def respond(self, message):
        self.calls.append(("respond", message))
        if "cancel" in message:
            self.pending = {"tool": "cancel_pending_order", "arguments": {"order_id": "#W1"}, "summary": "Cancel #W1."}
            yield AgentEvent("tool_call", name="cancel_pending_order", arguments={"order_id": "#W1"}, call_id="a")
            yield AgentEvent("tool_result", name="cancel_pending_order", call_id="a", text="Cancel #W1?")
            yield AgentEvent("confirm", text="Cancel order #W1.")
            yield AgentEvent("final", text="Cancel order #W1.", data={"awaiting_confirmation": True})
        else:
            yield AgentEvent("final", text=f"Answer to: {message}")

    def confirm(self):
        self.calls.append(("confirm", ""))
        self.pending = None
        yield AgentEvent("tool_call", name="cancel_pending_order", arguments={"order_id": "#W1"}, call_id="b")
        yield AgentEvent("tool_result", name="cancel_pending_order", call_id="b", text="Order #W1 is cancelled.")
        yield AgentEvent("final", text="Order #W1 is cancelled.")

    def decline(self):
        self.calls.append(("decline", ""))
        self.pending = None
        yield AgentEvent("final", text="OK, order #W1 stays as it is.")


def test_tool_call_becomes_a_collapsible_panel_for_staff_and_text_streams():
    view = ChatView(session=ListSession(role="marketer", events=[
        AgentEvent("tool_call", name="get_order_details", arguments={"order_id": "#W1"}, call_id="a"),
        AgentEvent("tool_result", name="get_order_details", call_id="a", text="Order #W1 is pending."),
        AgentEvent("text", text="Your order "),
        AgentEvent("text", text="is pending."),
        AgentEvent("final", text="Your order #W1 is pending."),
    ]))
    steps = list(run_turn(view, "where is #W1?"))
    assert view.working is None and view.display() == view.messages  # the working bubble is gone
    user, panel, answer = view.messages
    assert user == {"role": "user", "content": "where is #W1?"}
    assert panel["metadata"] == {"title": "Tool: get_order_details", "id": "a", "status": "done"}
    assert '"order_id": "#W1"' in panel["content"] and "Order #W1 is pending." in panel["content"]
    assert answer == {"role": "assistant", "content": "Your order #W1 is pending."}  # final replaces the stream
    assert len(steps) == 6  # one update for the user's message, then one per event


def test_customers_see_a_plain_line_per_tool_step():
    view = ChatView(session=ListSession([
        AgentEvent("tool_call", name="get_order_details", arguments={"order_id": "#W2611340"}, call_id="a"),
        AgentEvent("tool_result", name="get_order_details", call_id="a", text="Order #W2611340 is pending.",
                   data={"order_id": "#W2611340"}),
        AgentEvent("tool_call", name="get_order_details", arguments={"order_id": "#X9"}, call_id="b"),
        AgentEvent("tool_result", name="get_order_details", call_id="b", text="error: /srv/shop.db: no order #X9",
                   data={"error": "no order #X9 in /srv/shop.db", "type": "NotFoundError"}),
        AgentEvent("final", text="Your order #W2611340 is pending."),
    ]))
    list(run_turn(view, "where are #W2611340 and #X9?"))
    _, found, failed, answer = view.messages
    assert found == {"role": "assistant", "content": "✓ Looked up order #W2611340"}
    assert failed == {"role": "assistant", "content": "✗ Couldn't look up order #X9"}  # no raw error, no path
    assert answer["content"] == "Your order #W2611340 is pending."
    assert not any("metadata" in m or "order_id" in m["content"] or "error" in m["content"] for m in view.messages)


@pytest.mark.parametrize("lang,line,without_order", [
    ("en", "? One more detail needed for order #W1", "One more detail needed"),
    ("zh", "? 订单 #W1 还需要您补充信息", "还需要您补充信息"),
])
def test_a_step_that_needs_an_answer_is_not_shown_as_failed(lang, line, without_order):
    """A cancellation asked for without a reason: the tool asks why (a ToolInputError). The step line says a detail
    is needed, not "✗ Couldn't prepare the cancellation" (the walk of session 17).
    """
    view = ChatView(session=ListSession([
        AgentEvent("tool_call", name="cancel_pending_order", arguments={"order_id": "#W1"}, call_id="a"),
        AgentEvent("tool_result", name="cancel_pending_order", call_id="a", text="Why would you like to cancel?",
                   data={"error": "reason must be ...", "type": "ToolInputError"}),
        AgentEvent("final", text="Why would you like to cancel?"),
    ]))
    list(run_turn(view, "请取消订单 #W1" if lang == "zh" else "cancel #W1 please"))
    assert view.messages[1] == {"role": "assistant", "content": line}
    assert step_line("search_products", {"query": "tv"}, "asks", lang) == without_order  # no order in the call


def test_the_working_bubble_shows_at_once_and_follows_the_tool_calls():
    view = ChatView(session=ListSession([
        AgentEvent("tool_call", name="get_order_details", arguments={"order_id": "#W1"}, call_id="a"),
        AgentEvent("tool_result", name="get_order_details", call_id="a", text="Order #W1 is pending."),
        AgentEvent("text", text="Your order "),
        AgentEvent("final", text="Your order #W1 is pending."),
    ]))
    turn = run_turn(view, "where is #W1?")
    next(turn)  # the first update, before the session is asked anything
    assert view.display() == [{"role": "user", "content": "where is #W1?"},
                              {"role": "assistant", "content": "_Working on it…_"}]
    next(turn)  # tool_call
    assert view.display()[-1]["content"] == "_Looking up order #W1…_"
    next(turn)  # tool_result: the model writes the answer
    assert view.display()[-1]["content"] == "_Writing the answer…_"
    next(turn)  # streamed text replaces the bubble
    assert view.display()[-1]["content"] == "Your order "
    list(turn)
    assert view.working is None and view.display() == view.messages


def test_a_queued_turn_shows_its_place_in_line_in_the_working_bubble():
    view = ChatView(session=ListSession([
        AgentEvent("status", data={"ahead": 2}),
        AgentEvent("final", text="Order #W1 is pending."),
    ]))
    turn = run_turn(view, "where is #W1?")
    next(turn)
    next(turn)  # status: other conversations are being answered first
    assert view.display()[-1]["content"] == "_Busy with other customers: 2 ahead of you. Your answer comes next…_"
    list(turn)
    assert view.working is None


def test_a_turn_while_the_model_starts_says_it_is_starting():
    view = ChatView(session=ListSession([
        AgentEvent("status", data={"starting": True}),
        AgentEvent("final", text="Order #W1 is pending."),
    ]))
    turn = run_turn(view, "where is #W1?")
    next(turn)
    next(turn)
    assert view.display()[-1]["content"] == "_Starting up: the first answer after a restart takes a little longer…_"
    list(turn)
    assert view.working is None


def test_failed_tool_result_is_marked():
    view = ChatView(session=ListSession(role="marketer", events=[
        AgentEvent("tool_call", name="get_order_details", arguments={"order_id": "#X"}, call_id="a"),
        AgentEvent("tool_result", name="get_order_details", call_id="a", text="error: no order #X",
                   data={"error": "no order #X"}),
        AgentEvent("final", text="I could not find that order."),
    ]))
    list(run_turn(view, "#X?"))
    assert view.messages[1]["metadata"]["log"] == "failed"


def test_confirm_shows_once_and_raises_the_buttons():
    view = ChatView(session=ListSession([
        AgentEvent("tool_call", name="cancel_pending_order", arguments={"order_id": "#W1"}, call_id="a"),
        AgentEvent("tool_result", name="cancel_pending_order", call_id="a", text="Cancel #W1?"),
        AgentEvent("confirm", text="Cancel order #W1? (yes/no)"),
        AgentEvent("final", text="Cancel order #W1? (yes/no)", data={"awaiting_confirmation": True}),
    ]))
    list(run_turn(view, "cancel #W1"))
    assert view.awaiting_confirm
    assert sum("Cancel order #W1?" in m["content"] for m in view.messages) == 1
    view.session = ListSession([AgentEvent("final", text="Kept as it is.")])
    list(run_turn(view, "never mind"))
    assert not view.awaiting_confirm


def test_cancel_button_declines_through_the_session_and_the_next_question_is_answered():
    session = PendingSession()
    view = ChatView(session=session)
    list(run_turn(view, "please cancel #W1"))
    assert view.awaiting_confirm  # session.pending is set: the buttons show
    list(run_action(view, "decline"))
    assert session.calls == [("respond", "please cancel #W1"), ("decline", "")]
    assert not view.awaiting_confirm and view.messages[-2]["content"] == "Cancel"  # the button pressed, as said
    assert view.messages[-1]["content"] == "OK, order #W1 stays as it is."
    list(run_turn(view, "where is my parcel?"))
    assert session.calls[-1] == ("respond", "where is my parcel?")
    assert view.messages[-1]["content"] == "Answer to: where is my parcel?" and not view.awaiting_confirm


def test_confirm_button_confirms_through_the_session():
    session = PendingSession()
    view = ChatView(session=session)
    list(run_turn(view, "please cancel #W1"))
    list(run_action(view, "confirm"))
    assert session.calls == [("respond", "please cancel #W1"), ("confirm", "")]  # no "confirm" text sent
    assert view.messages[-2]["content"] == "✓ Cancelled order #W1"
    assert view.messages[-1]["content"] == "Order #W1 is cancelled." and not view.awaiting_confirm


def test_a_persons_markup_is_shown_as_text():
    view = ChatView(session=ListSession([AgentEvent("final", text="ok")]))
    message = "<b>x</b> ![](http://127.0.0.1:1/x.png) <img src=http://127.0.0.1:1/y.png> # not a heading"
    list(run_turn(view, message))
    shown = view.messages[0]["content"]
    assert "<" not in shown and "![" not in shown
    assert shown == as_text(message)


def test_assistant_text_keeps_markdown_but_no_html_or_images():
    view = ChatView(session=ListSession([
        AgentEvent("text", text="| a |\n|---|\n| **1** | !"), AgentEvent("text", text="[](http://127.0.0.1:1/x.png)"),
        AgentEvent("final", text="| a |\n|---|\n| **1** | ![](http://127.0.0.1:1/x.png) <img src=x>"),
    ]))
    list(run_turn(view, "hi"))
    shown = view.messages[-1]["content"]
    assert shown.startswith("| a |\n|---|\n| **1** |")
    assert "![" not in shown and "<img" not in shown


def test_handoff_is_announced():
    view = ChatView(
        session=ListSession([AgentEvent("handoff", text="wants a refund"), AgentEvent("final", text="Hold on.")])
    )
    list(run_turn(view, "human please"))
    assert view.handed_off and "transferred to a human" in view.messages[1]["content"]
    assert "A person from our team will reply here" in view.note()
    list(run_turn(view, "human please", handoff=True))  # pressed again: no second transfer
    assert "already waiting for a person" in view.messages[-1]["content"]


def test_talk_to_human_queues_behind_a_reply_under_way():
    class Slow(ListSession):
        def __init__(self):
            super().__init__([])
            self.go = threading.Event()
            self.handed = []

        def respond(self, message):
            yield AgentEvent("text", text="a")
            self.go.wait(10)
            yield AgentEvent("final", text="a")

        def hand_off(self, message):
            self.handed.append(message)
            yield AgentEvent("handoff", text="summary")
            yield AgentEvent("final", text="Hold on.", data={"handoff": True})

    session = Slow()
    view = ChatView(session=session)
    first = run_turn(view, "one")
    next(first)
    next(first)  # the reply is streaming
    handoff = run_turn(view, "Please transfer me to a human agent.", handoff=True)
    next(handoff)  # not refused: queued, and the note says so
    assert view.handoff_queued and "as soon as this answer is done" in view.note()
    rest = []
    waiter = threading.Thread(target=lambda: rest.extend(handoff))
    waiter.start()
    session.go.set()
    list(first)
    waiter.join(10)
    assert session.handed == ["Please transfer me to a human agent."]
    assert view.handed_off and not view.handoff_queued
    assert [m["content"] for m in view.messages] == [
        "one", "a", "Please transfer me to a human agent.", view.word("handed_off")]


def test_a_failing_turn_ends_with_a_sentence_and_closes_open_panels():
    err = httpx.ConnectError("[Errno 111] Connection refused")
    view = ChatView(session=ListSession([AgentEvent("tool_call", name="score_churn", arguments={}, call_id="a")], err,
                                        role="marketer"))
    list(run_turn(view, "who churns?"))
    assert view.messages[1]["metadata"]["status"] == "done"
    assert view.messages[-1]["content"] == friendly_error(err)
    assert "Errno" not in view.messages[-1]["content"]


def _raised(exc):
    try:
        raise exc
    except Exception as e:  # noqa: BLE001 - the test wants the exception with its traceback
        return e


@pytest.mark.parametrize(
    "exc, words",
    [
        (httpx.ConnectError("refused"), "language model server"),
        (sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("could not connect")), "database"),
        (ValueError("some bug"), "something went wrong"),
    ],
)
def test_friendly_error(exc, words):
    assert words in friendly_error(_raised(exc))


def test_friendly_error_from_chroma_frames():
    import chromadb
    try:
        chromadb.HttpClient(host="127.0.0.1", port=9)  # nothing listens on the discard port
    except Exception as exc:  # noqa: BLE001 - whatever chromadb raises must read as the search index
        assert "search index" in friendly_error(exc)
    else:
        pytest.fail("HttpClient connected to a closed port")


def test_no_session_asks_to_sign_in():
    view = ChatView()
    list(run_turn(view, "hi"))
    assert view.messages[-1]["content"] == "Please sign in first."


def test_a_second_turn_while_one_streams_is_refused_not_interleaved():
    view = ChatView(session=ListSession([AgentEvent("text", text="a"), AgentEvent("final", text="a")]))
    first = run_turn(view, "one")
    next(first)  # the first turn is under way
    list(run_turn(view, "two"))
    assert "still answering" in view.messages[-1]["content"]
    list(first)
    assert view.messages[-1]["content"] == "a"
    list(run_turn(view, "three"))  # and the session is free again afterwards
    assert view.messages[-1]["content"] == "a" and view.messages[-2]["content"] == "three"
