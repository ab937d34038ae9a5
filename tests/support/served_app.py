"""Stopping a Gradio app that a test served on 127.0.0.1."""

from __future__ import annotations


def close_app(app) -> None:
    """`app.close()`, finished here when its stop event raced the server's own loop.

    Blocks.close() sets an asyncio.Event from the calling thread while the server's loop may be adding a waiter to
    it: "RuntimeError: deque mutated during iteration" (seen once in `make test`, at a fixture's teardown). By then
    close() has already marked the app stopped, so a second call would return without closing the server: the port
    is freed here instead.
    """
    try:
        app.close()
    except RuntimeError:
        if app.server:
            app.server.close()
        app.app.startup_events_triggered = False
