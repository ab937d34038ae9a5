"""`shopdesk staff add/list/disable` and `shopdesk support stats --json` on a store in the test's data dir."""

from __future__ import annotations

import json
from datetime import datetime

from typer.testing import CliRunner


def _cli(*args: str, stdin: str | None = None):
    from shopdesk.cli import app

    return CliRunner().invoke(app, list(args), input=stdin)


def test_staff_accounts_from_the_command_line(settings):
    from store.db import open_store
    from store.staff import authenticate

    r = _cli("staff", "add", "Alice", "--role", "support", stdin="long-enough-password\n")
    assert r.exit_code == 0 and "added support account alice" in r.output
    assert _cli("staff", "add", "alice", "--role", "support", stdin="another-password\n").exit_code != 0
    assert "at least 8" in _cli("staff", "add", "bob", "--role", "marketer", stdin="short\n").output
    assert "unknown role" in _cli("staff", "add", "bob", "--role", "admin", stdin="long-enough-password\n").output
    listed = json.loads(_cli("staff", "list", "--json").output)
    assert listed == [{**listed[0], "name": "alice", "role": "support", "active": True}]
    assert "password" not in json.dumps(listed)

    store = open_store(settings.db_url)
    try:
        assert authenticate(store, "ALICE", "long-enough-password").name == "alice"
        assert authenticate(store, "alice", "wrong-password") is None
        assert _cli("staff", "disable", "alice").exit_code == 0
        assert authenticate(store, "alice", "long-enough-password") is None  # disabled accounts cannot sign in
    finally:
        store.dispose()


def test_support_stats_json(settings):
    from store.db import open_store
    from store.models import Conversation, Customer, Message
    from store.tickets import customer_writes, get_ticket, resolve
    from tools.context import ShopContext
    from tools.handoff import transfer_to_human

    store = open_store(settings.db_url)
    try:
        day = datetime(2026, 11, 2, 10, 0)
        with store.transaction() as s:
            s.add(Customer(id="c1"))
        with store.transaction() as s:
            for i in range(4):
                s.add(Conversation(id=f"conv{i}", role="customer", customer_id="c1", started_at=day, channel="chat"))
        with store.transaction() as s:
            for i in range(4):
                s.add(Message(conversation_id=f"conv{i}", seq=0, role="user", content="cancel #S1", created_at=day))
                s.add(Message(conversation_id=f"conv{i}", seq=1, role="assistant", content="", created_at=day,
                              tool_calls=[{"id": "a", "name": "cancel_pending_order", "arguments": {}}]))
                s.add(Message(conversation_id=f"conv{i}", seq=2, role="assistant", content="Cancel?", created_at=day,
                              meta={"latency_s": float(i + 1), "forced_tool": i == 1,
                                    **({"model_text_dropped": "fact"} if i == 2 else {})}))
            s.add(Message(conversation_id="conv0", seq=3, role="user", content="[Confirm]", created_at=day))
            s.add(Message(conversation_id="conv0", seq=4, role="assistant", content="Done", created_at=day,
                          meta={"latency_s": 0.5}))
        ctx = ShopContext(store=store, settings=settings, role="customer", customer_id="c1")
        ctx.conversation_id = "conv3"
        assert transfer_to_human(ctx, "wants a person").ticket == 1
        # a second handoff, resolved by staff, then the customer writes again: the ticket is reopened
        with store.transaction() as s:
            s.add(Conversation(id="conv4", role="customer", customer_id="c1", started_at=day, channel="chat"))
        ctx.conversation_id = "conv4"
        assert transfer_to_human(ctx, "wants a person").ticket == 2
        resolve(store, 2, "ana", "refund sent")
        customer_writes(store, "conv4", "It did not arrive after all.")
        assert get_ticket(store, 2).status == "open"
    finally:
        store.dispose()

    r = _cli("support", "stats", "--json", "--since", "2026-11-01", "--until", "2026-11-30")
    assert r.exit_code == 0, r.output
    stats = json.loads(r.output)
    assert stats["conversations"] == 5 and stats["handed_off"] == 2 and stats["contained"] == 3
    assert stats["containment"] == 0.6 and stats["handoff_rate"] == 0.4
    assert stats["confirmed_writes"] == {"cancel_pending_order": 1}
    assert stats["tools_used"] == {"cancel_pending_order": 4}
    # conv0-3 came to cancel; conv4 made no call of the agent's (the handoff came through the button's path)
    assert stats["intents"] == {"cancellation": 4, "other": 1}
    assert stats["tickets"] == {"open": 2, "resolved": 0, "reopened": 1}
    assert stats["reopen_rate"] == 1.0  # the one ticket that was ever resolved was reopened
    assert stats["reply_time_s"]["turns"] == 5 and stats["reply_time_s"]["p50"] == 2.0
    assert stats["guards"] == {"model_text_dropped": 1, "forced_tool": 1}
    assert stats["per_day"] == [{"day": "2026-11-02", "conversations": 5, "contained": 3, "handed_off": 2,
                                 "handoff_rate": 0.4}]
    empty = json.loads(_cli("support", "stats", "--json", "--since", "2027-01-01").output)
    assert empty["conversations"] == 0 and empty["containment"] is None
    assert "must be a date" in _cli("support", "stats", "--since", "yesterday").output
