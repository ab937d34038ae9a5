"""The server `shopdesk ui` runs (the HTTP API and the Gradio app on one port), on 127.0.0.1, on a copy of the sample
shop, with a scripted model in every session.
"""

from __future__ import annotations

import re
import threading
import time
from types import SimpleNamespace

import httpx
import pytest

KEY = "test-secret-key-that-is-long-enough-0123456789"
ORDER_ID = re.compile(r"#[A-Z]\d+")


def order_script(messages):
    """A scripted 'model': an order id and "cancel" proposes the cancellation, an order id alone looks it up, "human"
    hands off.
    """
    from langchain_core.messages import AIMessage, ToolMessage

    from agent.testing import call

    last = messages[-1]
    if isinstance(last, ToolMessage):
        return AIMessage("Here is what I found.")
    text = last.content if isinstance(last.content, str) else ""
    order = ORDER_ID.search(text)
    if order and "cancel" in text.lower():
        return call("cancel_pending_order", order_id=order.group(), reason="no longer needed")
    if order:
        return call("get_order_details", order_id=order.group())
    if "human" in text.lower():
        return call("transfer_to_human", summary=f"The customer asked for a person: {text}")
    return AIMessage("I can help with your orders.")


@pytest.fixture(scope="module")
def shop(module_sample_store):
    """The module's own copy of the sample shop (the tests write: cancellations, conversation logs)."""
    return module_sample_store




class Served(SimpleNamespace):
    def token(self, customer_id: str, ttl: int = 600, key: str = KEY) -> str:
        from shopdesk.auth import issue_token

        return issue_token(customer_id, ttl, key)

    def headers(self, customer_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(customer_id)}"}


@pytest.fixture(scope="module")
def serve(shop, tmp_path_factory, shop_helpers):
    """`serve(**settings)` -> Served: build_server on a free 127.0.0.1 port, stopped when the module ends."""
    import uvicorn

    from agent.session import open_session
    from agent.testing import ScriptedChatModel
    from shopdesk.settings import get_settings
    from ui.server import build_server

    servers = []

    def start(**overrides) -> Served:
        settings = get_settings(data_dir=tmp_path_factory.mktemp("api-data"), secret_key=KEY, **overrides)
        sessions: list = []

        def factory(role, customer_id, conversation_id=None):
            session = open_session(settings, role, customer_id, model=ScriptedChatModel(fallback=order_script),
                                   store=shop, conversation_id=conversation_id)
            sessions.append(session)
            return session

        port = shop_helpers.free_port()
        server = uvicorn.Server(uvicorn.Config(build_server(settings, session_factory=factory, store=shop),
                                               host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while not server.started:
            assert thread.is_alive() and time.time() < deadline, "the server did not start"
            time.sleep(0.05)
        servers.append((server, thread))
        return Served(url=url, store=shop, settings=settings, sessions=sessions,
                      http=httpx.Client(base_url=url, timeout=60))

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def api(serve):
    """The server with limits no test reaches."""
    return serve(rate_limit="10000/minute", rate_limit_per_address="10000/minute")




@pytest.fixture(scope="session")
def helpers(shop_helpers):
    """Helper functions for the test modules (with importlib import mode a conftest cannot be imported)."""
    return SimpleNamespace(customers_with_orders=shop_helpers.customers_with_orders,
                           free_port=shop_helpers.free_port, key=KEY)
