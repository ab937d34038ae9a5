"""When the LLM server, the database or the search index is unreachable, the app says so and keeps running."""

from __future__ import annotations

import shutil

import pytest
from gradio_client import Client
from served_app import close_app


@pytest.fixture
def shop_url(sample_db_template, tmp_path):
    shutil.copyfile(sample_db_template, tmp_path / "shop.db")
    return f"sqlite:///{tmp_path / 'shop.db'}"


@pytest.fixture
def serve(tmp_path, helpers):
    """Serve build_app(settings) with the default session factory (what `shopdesk ui` runs)."""
    from shopdesk.settings import get_settings
    from ui.app import build_app

    apps = []

    def start(**overrides):
        settings = get_settings(data_dir=tmp_path / "data", marketer_password="pw", demo=True, **overrides)
        app = build_app(settings)
        port = helpers.free_port()
        app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        apps.append(app)
        return Client(f"http://127.0.0.1:{port}/", verbose=False)

    yield start
    for app in apps:
        close_app(app)


def _all_text(chat) -> str:
    return " ".join(c.get("text", "") for m in chat for c in m["content"])


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text and "Error:" not in text


def test_llm_server_unreachable(serve, shop_url, helpers):
    dead = f"http://127.0.0.1:{helpers.free_port()}/v1"
    client = serve(database_url=shop_url, llm_backend="vllm", vllm_url=dead, vllm_model="smollm2")
    _, status, backend, _ = client.predict("c000000", api_name="/customer_sign_in")
    assert "c000000" in status and backend == ""  # model details are for staff only
    chat, _ = client.predict("Where is my order #S0000001?", api_name="/customer_chat")
    text = chat[-1]["content"][0]["text"]
    assert "language model server is unreachable" in text
    _no_traceback(_all_text(chat))
    # The app keeps running.
    msg, _, _ = client.predict("nope", api_name="/marketer_sign_in")
    assert "Wrong password" in msg


def test_llm_server_unreachable_at_sign_in(serve, shop_url, helpers):
    dead = f"http://127.0.0.1:{helpers.free_port()}/v1"
    client = serve(database_url=shop_url, llm_backend="vllm", vllm_url=dead)  # no model name: asks the server
    chat, status, _, _ = client.predict("c000000", api_name="/customer_sign_in")
    assert chat == [] and "cannot reach the vLLM server" in status
    _no_traceback(status)


def test_database_unreachable(serve, helpers):
    dead = f"postgresql+psycopg://shop@127.0.0.1:{helpers.free_port()}/shop"
    client = serve(database_url=dead, llm_backend="fake")
    chat, status, _, _ = client.predict("c000000", api_name="/customer_sign_in")
    assert chat == [] and "database is unreachable" in status
    _no_traceback(status)
    msg, chat, _ = client.predict("pw", api_name="/marketer_sign_in")
    assert "database is unreachable" in msg
    # Still serving: a wrong password gets its own answer.
    msg, _, _ = client.predict("nope", api_name="/marketer_sign_in")
    assert "Wrong password" in msg


def test_search_index_unreachable(serve, shop_url, helpers):
    dead = f"http://127.0.0.1:{helpers.free_port()}"
    client = serve(database_url=shop_url, llm_backend="fake", chroma_url=dead)
    client.predict("pw", api_name="/marketer_sign_in")
    *_, quotes = client.predict("All", "All", 90, "category", "", api_name="/marketer_panels")
    assert quotes.startswith("Review insights:") and len(quotes) < 300
    _no_traceback(quotes)
