"""Line breaks survive end to end: model text and tool templates with markdown tables and lists reach the UI intact."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from agent.backends import LocalChatModel
from agent.session import open_session
from agent.testing import ScriptedChatModel, call
from store.models import Customer
from tools.context import ShopContext
from ui.render import ChatView

TABLE = "Your orders:\n\n| Order | Status |\n|---|---|\n| #W100 | processed |\n| #W101 | delivered |\n\n- one\n- two"


class OrderRow(BaseModel):
    order_id: str
    status: str


class OrderTable(BaseModel):
    rows: list[OrderRow]

    def render(self) -> str:
        lines = ["Your orders:", "", "| Order | Status |", "|---|---|"]
        return "\n".join(lines + [f"| {r.order_id} | {r.status} |" for r in self.rows])


def orders() -> OrderTable:
    return OrderTable(rows=[OrderRow(order_id="#W100", status="processed"), OrderRow(order_id="#W101", status="delivered")])


def list_my_orders(ctx: ShopContext) -> OrderTable:
    """The signed-in customer's orders."""
    return orders()


@pytest.fixture
def shop(sqlite_store):
    with sqlite_store.transaction() as s:
        s.add(Customer(id="alice", email="alice@example.com"))
    return sqlite_store


def turn_through_ui(settings, shop, model, message="What are my orders?"):
    session = open_session(settings, "customer", "alice", model=model, store=shop, tools=[list_my_orders])
    view = ChatView(session=session)
    events = list(session.respond(message))
    for event in events:
        view.apply(event)
    return events, view.messages[-1]["content"]


def test_model_table_keeps_its_line_breaks(settings, shop):
    model = ScriptedChatModel(script=[call("list_my_orders"), TABLE], chunk_size=3)  # chunks split "\n|" pairs
    events, shown = turn_through_ui(settings, shop, model)
    assert events[-1].kind == "final" and events[-1].data["grounding_replaced"] is False
    assert events[-1].text == TABLE
    assert "".join(e.text for e in events if e.kind == "text") == TABLE
    assert shown == TABLE


def test_template_table_keeps_its_line_breaks(settings, shop):
    # the model states a status no tool reported: the answer is replaced by the tool's own (multi-line) rendering
    model = ScriptedChatModel(script=[call("list_my_orders"), "| #W100 | cancelled |"])
    events, shown = turn_through_ui(settings, shop, model)
    assert events[-1].data["grounding_replaced"] is True
    expected = orders().render()
    assert events[-1].text == expected and shown == expected
    assert len(shown.splitlines()) == 6


def test_in_process_backend_stream_keeps_line_breaks(settings, shop, monkeypatch):
    """The in-process backend's streaming join and tool-call parsing, with the model's token stream scripted."""
    outputs = iter(['<tool_call>{"name": "list_my_orders", "arguments": {}}</tool_call>', TABLE])

    def tokens(self, prompt, stop):
        text = next(outputs)
        yield from (text[i : i + 2] for i in range(0, len(text), 2))

    monkeypatch.setattr(LocalChatModel, "render", lambda self, messages, tools, tool_choice=None: "")
    monkeypatch.setattr(LocalChatModel, "_token_stream", tokens)
    events, shown = turn_through_ui(settings, shop, LocalChatModel(model_path="scripted"))
    assert [e.name for e in events if e.kind == "tool_call"] == ["list_my_orders"]
    assert events[-1].text == TABLE and shown == TABLE
