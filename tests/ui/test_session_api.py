"""The app's buttons and Clear drive the ChatSession API (agent/api.py), checked on a recording fake session."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from gradio_client import Client
from served_app import close_app

from agent.api import AgentEvent
from tools.context import PendingAction


class FakeSession:
    """A ChatSession with the typed confirmation API: proposes a cancellation for "cancel ...", answers the rest."""

    def __init__(self, role: str, customer_id: str | None):
        self.role, self.customer_id = role, customer_id
        self.conversation_id = f"conv-{id(self)}"
        self.pending: PendingAction | None = None
        self.handed_off = False
        self.calls: list[tuple[str, str]] = []
        self.model_calls = 0  # what a real session would send to the model

    def describe_backend(self):
        return {"backend": "fake-session"}

    def respond(self, message):
        self.calls.append(("respond", message))
        if self.handed_off:
            yield AgentEvent("final", text="A person from our team will reply here.")
            return
        self.model_calls += 1
        if message.startswith("cancel"):
            self.pending = PendingAction("cancel_pending_order", {"order_id": "#S1"}, "Cancel order #S1.")
            yield AgentEvent("confirm", text="Cancel order #S1.")
            yield AgentEvent("final", text="Cancel order #S1.", data={"awaiting_confirmation": True})
            return
        yield AgentEvent("final", text=f"Answer {len(self.calls)}: {message}")

    def confirm(self):
        self.calls.append(("confirm", ""))
        self.pending = None
        yield AgentEvent("final", text="Order #S1 is cancelled.")

    def decline(self):
        self.calls.append(("decline", ""))
        self.pending = None
        yield AgentEvent("final", text="OK, order #S1 stays as it is.")

    def hand_off(self, message):
        self.calls.append(("hand_off", message))
        self.handed_off = True
        yield AgentEvent("handoff", text="summary for the person")
        yield AgentEvent("final", text="Transferred.", data={"handoff": True})


@pytest.fixture(scope="module")
def app(shop, tmp_path_factory, helpers):
    from shopdesk.settings import get_settings
    from ui.app import build_app

    settings = get_settings(data_dir=tmp_path_factory.mktemp("fake-data"), marketer_password="pw", demo=True)
    sessions: list[FakeSession] = []

    def factory(role, customer_id, conversation_id=None):
        from datetime import datetime

        from store.models import Conversation

        sessions.append(FakeSession(role, customer_id))
        if conversation_id is not None:  # reopened after a reload: the conversation is logged already
            sessions[-1].conversation_id, sessions[-1].handed_off = conversation_id, True
            return sessions[-1]
        with shop.transaction() as s:  # after a handoff the app writes the customer's messages to this conversation
            s.add(Conversation(id=sessions[-1].conversation_id, role=role, customer_id=customer_id,
                               started_at=datetime.now()))
        return sessions[-1]

    demo = build_app(settings, session_factory=factory, store=shop)
    port = helpers.free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", sessions=sessions, store=shop)
    close_app(demo)


@pytest.fixture
def signed_in(app, helpers):
    (cid, _), = helpers.customers_with_orders(app.store, 1)
    client = Client(app.url, verbose=False)
    client.predict(cid, api_name="/customer_sign_in")
    return client, app.sessions[-1], cid


def test_cancel_button_declines_and_the_next_question_is_answered(signed_in, helpers):
    client, session, _ = signed_in
    chat, _ = client.predict("cancel my order", api_name="/customer_chat")
    assert session.pending is not None and "Please confirm" in helpers.texts(chat)[-1]
    chat, _ = client.predict(api_name="/customer_cancel")
    assert session.calls[-1] == ("decline", "") and session.pending is None
    assert helpers.texts(chat)[-2:] == ["Cancel", "OK, order #S1 stays as it is."]
    chat, _ = client.predict("where is my parcel?", api_name="/customer_chat")
    assert session.calls[-1] == ("respond", "where is my parcel?")
    assert helpers.texts(chat)[-1].endswith(": where is my parcel?")
    said = [m for kind, m in session.calls if kind == "respond"]
    assert not {"confirm", "cancel", "yes", "no"} & {m.lower() for m in said}  # a button never sends a word


def test_confirm_button_confirms(signed_in, helpers):
    client, session, _ = signed_in
    client.predict("cancel my order", api_name="/customer_chat")
    chat, _ = client.predict(api_name="/customer_confirm")
    assert session.calls == [("respond", "cancel my order"), ("confirm", "")]
    assert helpers.texts(chat)[-1] == "Order #S1 is cancelled."


def test_clear_opens_a_new_session_for_the_same_customer(app, signed_in, helpers):
    client, old, cid = signed_in
    client.predict("first question", api_name="/customer_chat")
    chat, note = client.predict(api_name="/customer_clear")
    new = app.sessions[-1]
    assert new is not old and new.role == "customer" and new.customer_id == cid
    assert len(chat) == 1 and "New conversation" in helpers.texts(chat)[0] and note == ""
    chat, _ = client.predict("second question", api_name="/customer_chat")
    assert new.calls == [("respond", "second question")] and old.calls == [("respond", "first question")]
    assert "first question" not in " ".join(helpers.texts(chat))


def test_after_a_handoff_messages_go_to_the_person(signed_in, helpers):
    client, session, _ = signed_in
    chat, note = client.predict(api_name="/talk_to_human")
    assert session.calls == [("hand_off", "Please transfer me to a human agent.")]
    assert "transferred to a human agent" in helpers.texts(chat)[-1] and "will reply here" in note
    chat, note = client.predict("are you there?", api_name="/customer_chat")
    assert session.model_calls == 0 and ("respond", "are you there?") not in session.calls and "will reply here" in note
    assert helpers.texts(chat)[-2:] == ["are you there?", "Sent to our support team; they will reply here."]
    chat, note = client.predict(api_name="/talk_to_human")  # pressed again: no second transfer
    assert [c for c, _ in session.calls].count("hand_off") == 1
    assert "already waiting for a person" in helpers.texts(chat)[-1]


def test_markup_in_a_message_is_sent_as_typed_and_shown_as_text(signed_in, helpers):
    client, session, _ = signed_in
    message = "<b>x</b> ![](http://127.0.0.1:1/x.png)"
    chat, _ = client.predict(message, api_name="/customer_chat")
    assert session.calls[-1] == ("respond", message)  # the agent gets what the person typed
    shown = helpers.texts(chat)[-2]
    assert "<b>" not in shown and "![" not in shown and "<" not in helpers.texts(chat)[-1]
