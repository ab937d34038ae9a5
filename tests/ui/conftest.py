"""The app on a copy of the sample shop, served on 127.0.0.1, answering with the real agent and a scripted model."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

import pytest
from served_app import close_app

ORDER_ID = re.compile(r"#[A-Z]\d+")
PRODUCT_ID = re.compile(r"\bproduct (\d{6,})")
SLOW_S = 2.0  # "slowly" in a message: the model thinks this long first (to see the UI while the bot works)


def shop_script(messages):
    """A scripted 'model' that picks the tool a trained model should pick, then reports the tool's own words."""
    from langchain_core.messages import AIMessage, ToolMessage

    from agent.testing import call

    last = messages[-1]
    if isinstance(last, ToolMessage):
        # Line breaks kept (tables and lists render); capped, because the scripted model streams instantly and
        # hundreds of 6-character updates in a burst outran the browser in the real-browser test.
        return AIMessage("Here is what I found.\n\n" + last.content[:400])
    text = last.content if isinstance(last.content, str) else ""
    lower = text.lower()
    if "slowly" in lower:
        time.sleep(SLOW_S)
    order = ORDER_ID.search(text)
    product = PRODUCT_ID.search(text)
    if product and not order:
        return call("get_product_details", product_id=product.group(1))
    if order and "cancel" in lower:
        return call("cancel_pending_order", order_id=order.group(), reason="no longer needed")
    if order:
        return call("get_order_details", order_id=order.group())
    if "churn" in lower:
        return call("score_churn", top_n=10)
    if "segment" in lower:
        return call("summarize_segments")
    if "human" in lower:
        return call("transfer_to_human", summary=f"The customer asked for a person: {text}")
    return AIMessage("I can help with your orders, returns, exchanges and products.")




@pytest.fixture(scope="module")
def shop(module_sample_store):
    """The module's own copy of the sample shop (the tests write: confirmed cancellations, conversation logs)."""
    return module_sample_store


@pytest.fixture(scope="module")
def served(shop, tmp_path_factory, shop_helpers):
    """build_app(settings) served on a free 127.0.0.1 port; every session gets its own ScriptedChatModel."""
    from agent.session import open_session
    from agent.testing import ScriptedChatModel
    from shopdesk.settings import get_settings
    from ui.app import build_app

    settings = get_settings(data_dir=tmp_path_factory.mktemp("ui-data"), marketer_password="s3cret-test",
                            demo=True)  # the customer picker
    sessions: list = []

    def factory(role, customer_id, conversation_id=None):
        model = ScriptedChatModel(fallback=shop_script, chunk_size=6)
        session = open_session(settings, role, customer_id, model=model, store=shop, conversation_id=conversation_id)
        sessions.append(session)
        return session

    app = build_app(settings, session_factory=factory, store=shop)
    port = shop_helpers.free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", app=app, store=shop, settings=settings, sessions=sessions)
    close_app(app)




def texts(chat) -> list[str]:
    """The plain text of each message of a Chatbot value as gradio_client returns it."""
    out = []
    for m in chat:
        content = m["content"]
        if isinstance(content, list):
            content = " ".join(c.get("text", "") for c in content if isinstance(c, dict))
        out.append(content)
    return out


@pytest.fixture(scope="session")
def helpers(shop_helpers):
    """Helper functions for the test modules (with importlib import mode a conftest cannot be imported)."""
    return SimpleNamespace(customers_with_orders=shop_helpers.customers_with_orders, texts=texts,
                           free_port=shop_helpers.free_port)


@pytest.fixture(autouse=True)
def _no_ticket_left_open(request):
    """A handoff leaves its customer's ticket open, and signing that customer in again reopens the handed-off
    conversation (as it must for a real customer). The tests share a few customers, so each test resolves the
    tickets it opened and the next one starts with the bot answering.
    """
    yield
    if "served" in request.fixturenames:
        from store.tickets import list_tickets, resolve

        store = request.getfixturevalue("served").store
        for ticket in list_tickets(store, "open"):
            resolve(store, ticket.number, "tests", "closed when the test ended")
