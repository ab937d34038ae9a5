"""Agent events as chat messages, and failures as one clear sentence (no server needed)."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy

from agent.api import AgentEvent
from ui.render import ChatView, friendly_error, run_turn


class ListSession:
    """A ChatSession that replays given events (or raises), to test the view without a model."""

    role = "customer"
    customer_id = "c1"
    conversation_id = "conv"

    def __init__(self, events, error: Exception | None = None):
        self.events, self.error = events, error

    def respond(self, message):
        yield from self.events
        if self.error:
            raise self.error

    def describe_backend(self):
        return {"backend": "list"}


def test_tool_call_becomes_a_collapsible_panel_and_text_streams():
    view = ChatView(session=ListSession([
        AgentEvent("tool_call", name="get_order_details", arguments={"order_id": "#W1"}, call_id="a"),
        AgentEvent("tool_result", name="get_order_details", call_id="a", text="Order #W1 is pending."),
        AgentEvent("text", text="Your order "),
        AgentEvent("text", text="is pending."),
        AgentEvent("final", text="Your order #W1 is pending."),
    ]))
    steps = list(run_turn(view, "where is #W1?"))
    user, panel, answer = view.messages
    assert user == {"role": "user", "content": "where is #W1?"}
    assert panel["metadata"] == {"title": "Tool: get_order_details", "id": "a", "status": "done"}
    assert '"order_id": "#W1"' in panel["content"] and "Order #W1 is pending." in panel["content"]
    assert answer == {"role": "assistant", "content": "Your order #W1 is pending."}  # final replaces the stream
    assert len(steps) == 6  # one update for the user's message, then one per event


def test_failed_tool_result_is_marked():
    view = ChatView(session=ListSession([
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
    list(run_turn(view, "cancel"))
    assert not view.awaiting_confirm


def test_handoff_is_announced():
    view = ChatView(session=ListSession([AgentEvent("handoff", text="wants a refund"), AgentEvent("final", text="Hold on.")]))
    list(run_turn(view, "human please"))
    assert view.handed_off and "transferred to a human" in view.messages[1]["content"]


def test_a_failing_turn_ends_with_a_sentence_and_closes_open_panels():
    err = httpx.ConnectError("[Errno 111] Connection refused")
    view = ChatView(session=ListSession([AgentEvent("tool_call", name="score_churn", arguments={}, call_id="a")], err))
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
