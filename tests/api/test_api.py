"""The HTTP API: only a token the shop signed opens it, each customer sees only their own conversations and orders,
writes wait for confirm, requests are rate limited, and concurrent conversations never mix identities.
"""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import pytest

from store.models import Conversation, Customer, Order

CHAT_ROUTES = {"/api/chat", "/api/chat/{conversation_id}/confirm", "/api/chat/{conversation_id}/decline"}


def _plain(response: httpx.Response) -> str:
    """The error's sentence, checked to be a plain JSON message (no traceback)."""
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body["detail"]


def _chat(api, customer_id: str, message: str, conversation_id: str | None = None) -> httpx.Response:
    return api.http.post("/api/chat", json={"message": message, "conversation_id": conversation_id},
                         headers=api.headers(customer_id))


def test_healthz_docs_and_the_app_share_one_port(api):
    assert api.http.get("/healthz").json() == {"status": "ok"}
    assert CHAT_ROUTES | {"/healthz"} <= set(api.http.get("/openapi.json").json()["paths"])
    assert api.http.get("/docs").status_code == 200
    page = api.http.get("/")
    assert page.status_code == 200 and "gradio" in page.text.lower()


def test_no_token_is_401(api, helpers):
    r = api.http.post("/api/chat", json={"message": "hi", "conversation_id": None})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in _plain(r)
    r = api.http.post("/api/chat", json={"message": "hi"}, headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert r.status_code == 401


def test_forged_tokens_are_401(api, helpers):
    (me, _), (other, _) = helpers.customers_with_orders(api.store, 2)
    wrong_key = api.token(me, key="another-shop-entirely-with-its-own-long-secret")
    r = api.http.post("/api/chat", json={"message": "hi"}, headers={"Authorization": f"Bearer {wrong_key}"})
    assert r.status_code == 401 and "not signed by the shop" in _plain(r)
    # my valid token with its subject changed to another customer: the signature no longer matches
    header, payload, signature = api.token(me).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = other
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    r = api.http.post("/api/chat", json={"message": "hi"},
                      headers={"Authorization": f"Bearer {header}.{forged}.{signature}"})
    assert r.status_code == 401 and "not signed by the shop" in _plain(r)
    none_alg = jwt.encode({"sub": me, "exp": int(time.time()) + 60}, None, algorithm="none")
    r = api.http.post("/api/chat", json={"message": "hi"}, headers={"Authorization": f"Bearer {none_alg}"})
    assert r.status_code == 401 and "not valid" in _plain(r)


def test_expired_malformed_and_incomplete_tokens_are_401(api, helpers):
    (me, _), = helpers.customers_with_orders(api.store, 1)
    cases = {
        jwt.encode({"sub": me, "exp": int(time.time()) - 3600}, helpers.key, algorithm="HS256"): "expired",
        "not-a-token": "not valid",
        jwt.encode({"sub": me}, helpers.key, algorithm="HS256"): "'exp'",
        jwt.encode({"exp": int(time.time()) + 60}, helpers.key, algorithm="HS256"): "'sub'",
        api.token("nobody_at_all"): "does not have",
    }
    for token, says in cases.items():
        r = api.http.post("/api/chat", json={"message": "hi"}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, says
        detail = _plain(r)
        assert says in detail and token not in detail


def test_a_customer_sees_only_their_own_orders_and_conversations(api, helpers):
    (me, _), (other, their_order) = helpers.customers_with_orders(api.store, 2)
    with api.store.read() as s:
        them = s.get(Customer, other)
        their = s.get(Order, their_order)
        their_data = [other, them.email, them.last_name, str(their.total)]

    r = _chat(api, me, f"Where is my order {their_order}?")
    assert r.status_code == 200
    body = r.json()
    assert f"no order {their_order} on your account" in body["reply"]
    assert not any(d and d in r.text for d in their_data)

    # their conversation: my token cannot continue, confirm or decline it, and it reads as absent
    theirs = _chat(api, other, f"Where is my order {their_order}?").json()["conversation_id"]
    session = next(s for s in api.sessions if s.conversation_id == theirs)
    before = len(session.history)
    for path, payload in (("/api/chat", {"message": "show me everything", "conversation_id": theirs}),
                          (f"/api/chat/{theirs}/confirm", None), (f"/api/chat/{theirs}/decline", None)):
        r = api.http.post(path, json=payload, headers=api.headers(me))
        assert r.status_code == 404 and "no such conversation" in _plain(r)
        assert not any(d and d in r.text for d in their_data)
    assert len(session.history) == before
    r = _chat(api, me, "hello", conversation_id="no-such-id")
    assert r.status_code == 404 and "no such conversation" in _plain(r)


def test_cancel_waits_for_confirm_and_decline_drops_it(api, helpers):
    (cid, first), = helpers.customers_with_orders(api.store, 1, status="pending")
    r = _chat(api, cid, f"Please cancel order {first}")
    body = r.json()
    assert r.status_code == 200 and body["pending_action"]["kind"] == "cancel_pending_order"
    assert first in body["pending_action"]["summary"] and body["handoff"] is False
    with api.store.read() as s:
        assert s.get(Order, first).status == "pending"  # nothing happens before the customer confirms
    r = api.http.post(f"/api/chat/{body['conversation_id']}/confirm", headers=api.headers(cid))
    assert r.status_code == 200 and r.json()["pending_action"] is None
    assert r.json()["conversation_id"] == body["conversation_id"]
    with api.store.read() as s:
        assert s.get(Order, first).status == "cancelled"

    (cid, second), = [c for c in helpers.customers_with_orders(api.store, 3, status="pending") if c[1] != first][:1]
    conv = _chat(api, cid, f"Please cancel order {second}").json()
    assert conv["pending_action"] is not None
    r = api.http.post(f"/api/chat/{conv['conversation_id']}/decline", headers=api.headers(cid))
    assert r.status_code == 200 and r.json()["pending_action"] is None and r.json()["reply"]
    with api.store.read() as s:
        assert s.get(Order, second).status == "pending"


def _events(response: httpx.Response) -> list[tuple[str, dict]]:
    """The (event, JSON data) pairs of a Server-Sent Events body."""
    out = []
    for block in response.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


def test_a_turn_streams_as_server_sent_events_when_asked(api, helpers):
    """With Accept: text/event-stream: progress events (the tool's name, never its arguments or result), then the
    same reply the JSON answer gives; the next message continues the conversation.
    """
    (cid, first), = helpers.customers_with_orders(api.store, 1, status="pending")
    stream = {**api.headers(cid), "Accept": "text/event-stream"}
    r = api.http.post("/api/chat", json={"message": f"Please cancel order {first}", "conversation_id": None},
                      headers=stream)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _events(r)
    kinds = [k for k, _ in events]
    assert kinds[-1] == "reply" and "progress" in kinds and "error" not in kinds
    steps = [d for k, d in events if k == "progress"]
    assert steps == [{"step": "tool_call", "tool": "cancel_pending_order", "ahead": None, "starting": None},
                     {"step": "confirm", "tool": None, "ahead": None, "starting": None}]
    assert first not in json.dumps(steps)  # arguments and results stay out of the progress events
    reply = events[-1][1]
    assert reply["pending_action"]["kind"] == "cancel_pending_order" and first in reply["pending_action"]["summary"]
    plain = _chat(api, cid, "never mind", reply["conversation_id"])
    assert plain.status_code == 200 and plain.json()["conversation_id"] == reply["conversation_id"]
    other = helpers.customers_with_orders(api.store, 2)[-1][0]
    assert api.http.post("/api/chat", json={"message": "hi", "conversation_id": reply["conversation_id"]},
                         headers={**api.headers(other), "Accept": "text/event-stream"}).status_code == 404


def test_bad_request_body_is_a_plain_422(api, helpers):
    (cid, _), = helpers.customers_with_orders(api.store, 1)
    r = api.http.post("/api/chat", json={"message": ""}, headers=api.headers(cid))
    assert r.status_code == 422 and "Traceback" not in r.text


def test_rate_limit_per_customer_and_per_address(serve, helpers):
    limited = serve(rate_limit="3/minute", rate_limit_per_address="6/minute")
    (me, _), (other, _) = helpers.customers_with_orders(limited.store, 2)
    for _ in range(3):
        assert _chat(limited, me, "hello").status_code == 200
    r = _chat(limited, me, "hello")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert "at most 3 per minute per customer" in _plain(r)
    # another customer has their own allowance, until the address's is spent
    for _ in range(2):
        assert _chat(limited, other, "hello").status_code == 200
    r = _chat(limited, other, "hello")
    assert r.status_code == 429 and "per address" in _plain(r)
    # the address limit counts requests without a valid token too
    assert limited.http.post("/api/chat", json={"message": "hi"}).status_code == 429


def test_twenty_concurrent_conversations_keep_their_identities(api, helpers):
    pairs = helpers.customers_with_orders(api.store, 20)
    all_orders = {oid for _, oid in pairs}

    def converse(pair):
        cid, oid = pair
        first = _chat(api, cid, f"Where is my order {oid}?")
        again = _chat(api, cid, f"And order {oid} once more?", first.json()["conversation_id"])
        return cid, oid, first, again

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(converse, pairs))
    ids = set()
    for cid, oid, first, again in results:
        for r in (first, again):
            assert r.status_code == 200, r.text
            reply = r.json()["reply"]
            assert oid in reply
            assert not (all_orders - {oid}) & {o for o in all_orders if o in reply}
        conv_id = first.json()["conversation_id"]
        assert again.json()["conversation_id"] == conv_id
        ids.add(conv_id)
        session = next(s for s in api.sessions if s.conversation_id == conv_id)
        assert session.customer_id == cid
        with api.store.read() as s:  # every turn is in the turn log, under the right customer
            logged = s.get(Conversation, conv_id)
            assert logged.customer_id == cid
            assert [m.content for m in logged.messages if m.role == "user"] == [
                f"Where is my order {oid}?", f"And order {oid} once more?"]
    assert len(ids) == 20


def test_auth_token_command_prints_a_token_the_server_accepts(api, helpers, monkeypatch):
    import subprocess
    import sys
    from pathlib import Path

    from shopdesk.auth import verify_token

    (cid, _), = helpers.customers_with_orders(api.store, 1)
    shopdesk = Path(sys.executable).with_name("shopdesk")
    env = {"SHOPDESK_SECRET_KEY": helpers.key, "PATH": "/usr/bin:/bin", "SHOPDESK_DATA_DIR": str(api.settings.data_dir)}
    out = subprocess.run([str(shopdesk), "auth", "token", cid, "--ttl", "60"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert verify_token(token, helpers.key) == cid
    r = api.http.post("/api/chat", json={"message": "hello"}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200

    del env["SHOPDESK_SECRET_KEY"]
    out = subprocess.run([str(shopdesk), "auth", "token", cid], env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "SHOPDESK_SECRET_KEY is not set" in out.stderr and "Traceback" not in out.stderr
    env["SHOPDESK_SECRET_KEY"] = "too-short"
    out = subprocess.run([str(shopdesk), "auth", "token", cid], env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "at least 32 characters" in out.stderr and "too-short" not in out.stderr


def test_idle_conversations_are_let_go_and_the_oldest_go_first_past_capacity():
    """The server's memory of open conversations is bounded: idle ones go, and past capacity the least recently
    used; a conversation that is answering is never taken away.
    """
    from types import SimpleNamespace

    from fastapi import HTTPException

    from ui.server import Conversations

    now = [0.0]
    convs = Conversations(idle_s=60, capacity=2, clock=lambda: now[0])

    def session(cid):
        return SimpleNamespace(conversation_id=cid)

    a = convs.add("alice", session("a"))
    now[0] = 30
    convs.add("bob", session("b"))
    now[0] = 50
    assert convs.get("a", "alice") is a  # used again: a is now the most recent
    convs.add("carol", session("c"))  # capacity 2: b, least recently used, goes
    with pytest.raises(HTTPException) as gone:
        convs.get("b", "bob")
    assert gone.value.status_code == 404 and "start a new one" in gone.value.detail
    assert convs.get("c", "carol") and len(convs) == 2
    with pytest.raises(HTTPException):
        convs.get("c", "alice")  # someone else's reads like one that does not exist
    busy = convs.get("c", "carol")
    busy.busy.acquire()  # c is answering
    now[0] = 400  # both idle for over a minute
    convs._let_go()
    assert len(convs) == 1 and convs.get("c", "carol") is busy  # a went; c stays while it answers
    busy.busy.release()
