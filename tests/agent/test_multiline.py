"""Line breaks survive end to end: a result's multi-line rendering (a markdown table) and the model's fact-free
words (a reply without a result; after a result they are cut) reach the UI intact, on the scripted and the in-process
backend.
"""

from __future__ import annotations

from pydantic import BaseModel

from agent.backends import LocalChatModel
from agent.session import open_session
from agent.testing import ScriptedChatModel, call
from tools.context import ShopContext
from ui.chatview import ChatView

TABLE = "Your orders:\n\n| Order | Status |\n|---|---|\n| #W100 | processed |\n| #W101 | delivered |\n\n- one\n- two"


class OrderRow(BaseModel):
    order_id: str
    status: str


class OrderTable(BaseModel):
    rows: list[OrderRow]

    def render(self, lang: str = "en") -> str:
        lines = ["Your orders:" if lang == "en" else "您的订单:", "", "| Order | Status |", "|---|---|"]
        return "\n".join(lines + [f"| {r.order_id} | {r.status} |" for r in self.rows])


def orders() -> OrderTable:
    return OrderTable(rows=[OrderRow(order_id="#W100", status="processed"),
                            OrderRow(order_id="#W101", status="delivered")])


def list_my_orders(ctx: ShopContext) -> OrderTable:
    """The signed-in customer's orders."""
    return orders()


def turn_through_ui(settings, shop, model, message="What are my orders?", call_after_result=False):
    session = open_session(settings, "customer", "alice", model=model, store=shop, tools=[list_my_orders])
    session.one_call_after_read = not call_after_result  # True: the model's words after the result are read
    view = ChatView(session=session)
    events = list(session.respond(message))
    for event in events:
        view.apply(event)
    return events, view.messages[-1]["content"]


def test_the_rendered_table_keeps_its_line_breaks(settings, shop):
    # the model starts to write the table itself: after the result its text is cut at the first chunk; the person
    # reads the tool's own multi-line rendering
    model = ScriptedChatModel(script=[call("list_my_orders"), TABLE], chunk_size=3)
    events, shown = turn_through_ui(settings, shop, model, call_after_result=True)
    expected = orders().render()
    assert events[-1].kind == "final" and events[-1].meta["model_text_cut"] is True
    assert "model_text_dropped" not in events[-1].meta
    assert events[-1].text == expected and shown == expected
    assert len(shown.splitlines()) == 6
    assert not [e for e in events if e.kind == "text"]


def test_wrong_facts_in_a_model_table_never_show(settings, shop):
    model = ScriptedChatModel(script=[call("list_my_orders"), "| #W100 | cancelled |"])
    events, shown = turn_through_ui(settings, shop, model, call_after_result=True)
    assert events[-1].text == orders().render() and shown == orders().render()
    assert "cancelled" not in shown


def test_fact_free_lines_of_the_model_keep_their_breaks(settings, shop):
    # without a result the model's fact-free words are the reply, line breaks included (chunks split "\n" pairs)
    model = ScriptedChatModel(script=["Hello!\nHow can I help?\n\nAsk me anything."], chunk_size=3)
    events, shown = turn_through_ui(settings, shop, model, message="hi")
    expected = "Hello!\nHow can I help?\n\nAsk me anything."
    assert [e.kind for e in events] == ["final"] and "model_text_cut" not in events[-1].meta
    assert events[-1].text == expected and shown == expected


def test_fact_free_lines_of_the_model_after_the_table_are_cut(settings, shop):
    model = ScriptedChatModel(script=[call("list_my_orders"), "Sure!\nHere they are:"], chunk_size=3)
    events, shown = turn_through_ui(settings, shop, model, call_after_result=True)
    expected = orders().render()
    assert events[-1].text == expected and shown == expected and events[-1].meta["model_text_cut"] is True


def test_the_chinese_rendering_keeps_its_line_breaks(settings, shop):
    model = ScriptedChatModel(script=[call("list_my_orders"), TABLE])
    events, shown = turn_through_ui(settings, shop, model, message="我的订单有哪些?")
    assert events[-1].text == orders().render("zh") and shown == orders().render("zh")
    assert shown.startswith("您的订单:\n\n| Order | Status |")


def test_in_process_backend_stream_keeps_line_breaks(settings, shop, monkeypatch):
    """The in-process backend's streaming join and tool-call parsing, with the model's token stream scripted."""
    outputs = iter(['<tool_call>{"name": "list_my_orders", "arguments": {}}</tool_call>', TABLE])

    def tokens(self, prompt, stop, *grammar):
        text = next(outputs)
        yield from (text[i : i + 2] for i in range(0, len(text), 2))

    monkeypatch.setattr(LocalChatModel, "prompt_text", lambda self, *args, **kwargs: "")
    monkeypatch.setattr(LocalChatModel, "_token_stream", tokens)
    events, shown = turn_through_ui(settings, shop, LocalChatModel(model_path="scripted"))
    assert [e.name for e in events if e.kind == "tool_call"] == ["list_my_orders"]
    assert events[-1].text == orders().render() and shown == orders().render()
