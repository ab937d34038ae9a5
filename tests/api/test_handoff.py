"""Staff accounts and the handoff inbox over the real server: throttled staff sign-in, the demo's marketer password
only in demo mode, a ticket for every handoff, the agent's reply reaching the customer, resolution and the redacted
export, and customer text shown as text.
"""

from __future__ import annotations

import re

import pytest
from gradio_client import Client
from sqlalchemy import select

from store.models import Message, Ticket
from store.staff import add_staff
from tools.handoff import HandoffResult

PASSWORD = "correct-horse-battery"
LABEL = re.compile(r"T-\d{5}")


def _sign_in(api, name: str, password: str = PASSWORD):
    return api.http.post("/api/staff/sign-in", json={"name": name, "password": password})


def _staff_headers(api, name: str) -> dict[str, str]:
    r = _sign_in(api, name)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture(scope="module")
def agent(api):
    add_staff(api.store, "dana", "support", PASSWORD)
    return _staff_headers(api, "dana")


def _hand_off(api, customer_id: str, message: str = "I want to talk to a human please") -> dict:
    r = api.http.post("/api/chat", json={"message": message, "conversation_id": None},
                      headers=api.headers(customer_id))
    assert r.status_code == 200, r.text
    return r.json()


def test_wrong_staff_password_is_throttled_per_account(serve):
    server = serve(rate_limit="10000/minute", rate_limit_per_address="10000/minute")
    add_staff(server.store, "tom", "support", PASSWORD)
    add_staff(server.store, "ann", "support", PASSWORD)
    for _ in range(5):
        r = _sign_in(server, "tom", "wrong-password")
        assert r.status_code == 401 and r.json() == {"detail": "Wrong staff name or password."}
    r = _sign_in(server, "tom")  # even the right password waits now
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in r.json()["detail"]
    assert _sign_in(server, "ann").status_code == 200  # another account is not locked out by tom's tries
    assert _sign_in(server, "nobody", PASSWORD).status_code == 401


def test_staff_tokens_are_not_customer_tokens(api, agent, helpers):
    (cid, _), = helpers.customers_with_orders(api.store, 1)
    r = api.http.post("/api/chat", json={"message": "hi"}, headers=agent)
    assert r.status_code == 401  # a staff session cannot chat as a customer
    r = api.http.get("/api/tickets", headers=api.headers(cid))
    assert r.status_code == 401  # nor a customer token open the inbox
    add_staff(api.store, "mia", "marketer", PASSWORD)
    r = api.http.get("/api/tickets", headers=_staff_headers(api, "mia"))
    assert r.status_code == 403  # the inbox is for support agents
    assert api.http.get("/api/support/stats", headers=_staff_headers(api, "mia")).status_code == 200


@pytest.mark.parametrize("demo", [True, False])
def test_marketer_password_works_only_in_demo_mode(serve, demo):
    server = serve(demo=demo)
    add_staff(server.store, f"mark-{int(demo)}", "marketer", PASSWORD)
    client = Client(server.url + "/", verbose=False)
    msg, _, _ = client.predict("marketer", "", api_name="/marketer_sign_in")
    assert (msg == "") is demo
    if not demo:
        assert "staff name" in msg
        msg, _, _ = client.predict("marketer", f"mark-{int(demo)}", api_name="/marketer_sign_in")
        assert msg == "Wrong staff name or password."
    msg, _, _ = client.predict(PASSWORD, f"mark-{int(demo)}", api_name="/marketer_sign_in")
    assert msg == ""  # a marketer's own staff account opens the console in both modes


def test_handoff_opens_a_ticket_the_inbox_shows(api, agent, helpers):
    (cid, _), = helpers.customers_with_orders(api.store, 1)
    body = _hand_off(api, cid)
    assert body["handoff"] is True and LABEL.fullmatch(body["ticket"])
    assert f"Your ticket number is **{body['ticket']}**" in body["reply"]
    number = int(body["ticket"][2:])
    with api.store.read() as s:
        ticket = s.get(Ticket, number)
        assert ticket.status == "open" and ticket.conversation_id == body["conversation_id"]
        assert ticket.customer_id == cid
    queue = api.http.get("/api/tickets", headers=agent).json()
    mine = next(t for t in queue if t["number"] == number)
    assert "asked for a person" in mine["summary"]
    detail = api.http.get(f"/api/tickets/{number}", headers=agent).json()
    said = [(m["sender"], m["text"]) for m in detail["transcript"]]
    assert ("customer", "I want to talk to a human please") in said
    assert any(sender == "tool" and "transfer_to_human" in text for sender, text in said)


def test_model_sees_the_same_handoff_text_as_before(api, helpers):
    """The ticket number is for people: the rendering the model reads is unchanged, byte for byte."""
    before = ("YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON.\nA person from our support team will reply "
              "here; you don't need to repeat your request.")
    assert HandoffResult(summary="s", recorded=True, ticket=7).render("en") == before
    (cid, _), = helpers.customers_with_orders(api.store, 1)
    body = _hand_off(api, cid)
    with api.store.read() as s:
        tool_rows = s.scalars(select(Message).where(Message.conversation_id == body["conversation_id"],
                                                    Message.role == "tool")).all()
    assert [m.content for m in tool_rows] == [before]


def test_agent_reply_reaches_the_customer_and_the_bot_stays_quiet(api, agent, helpers):
    (cid, _), (other, _) = helpers.customers_with_orders(api.store, 2)
    body = _hand_off(api, cid)
    conv, number = body["conversation_id"], int(body["ticket"][2:])
    session = next(s for s in api.sessions if s.conversation_id == conv)
    asked = len(session.model.requests)

    r = api.http.post("/api/chat", json={"message": "My parcel is lost", "conversation_id": conv},
                      headers=api.headers(cid))
    assert r.status_code == 200 and body["ticket"] in r.json()["reply"] and r.json()["handoff"] is True
    r = api.http.post(f"/api/tickets/{number}/reply", json={"message": "Hi, I am Dana. I have sent a new one."},
                      headers=agent)
    assert r.status_code == 200 and r.json()["sender"] == "staff"
    assert len(session.model.requests) == asked  # the bot was not asked anything after the handoff

    seen = api.http.get(f"/api/conversations/{conv}/messages", headers=api.headers(cid)).json()
    said = [(m["sender"], m["text"]) for m in seen["messages"]]
    assert said[-2:] == [("customer", "My parcel is lost"), ("staff", "Hi, I am Dana. I have sent a new one.")]
    assert seen["ticket"] == body["ticket"] and seen["ticket_status"] == "open"
    assert not any(sender == "tool" for sender, _ in said)  # tool calls are for staff
    newer = api.http.get(f"/api/conversations/{conv}/messages", params={"after": seen["messages"][-2]["seq"]},
                         headers=api.headers(cid)).json()["messages"]
    assert [m["sender"] for m in newer] == ["staff"]
    r = api.http.get(f"/api/conversations/{conv}/messages", headers=api.headers(other))
    assert r.status_code == 404  # another customer cannot read it


def test_resolved_conversation_exports_redacted(api, agent, helpers):
    from finetune.redact import redact_all
    from finetune.transcripts import export_from_store
    from store.tickets import resolved_conversation_ids

    (cid, _), = helpers.customers_with_orders(api.store, 1)
    body = _hand_off(api, cid)
    conv, number = body["conversation_id"], int(body["ticket"][2:])
    api.http.post("/api/chat", json={"message": "Call me on +1 415-555-0134 or mail jo.smith@example.com",
                                     "conversation_id": conv}, headers=api.headers(cid))
    api.http.post(f"/api/tickets/{number}/reply", json={"message": "Done: I refunded it to jo.smith@example.com."},
                  headers=agent)
    assert conv not in resolved_conversation_ids(api.store)
    r = api.http.post(f"/api/tickets/{number}/resolve", json={"note": "Refunded by hand"}, headers=agent)
    assert r.status_code == 200 and r.json()["status"] == "resolved" and r.json()["resolved_by"] == "dana"
    assert number not in [t["number"] for t in api.http.get("/api/tickets", headers=agent).json()]
    assert conv in resolved_conversation_ids(api.store)

    resolved = set(resolved_conversation_ids(api.store))
    found, counts = redact_all([t for t in export_from_store(api.store) if t.conversation_id in resolved])
    mine = next(t for t in found if t.conversation_id == conv)
    text = "\n".join(m["content"] for m in mine.messages)
    assert "jo.smith@example.com" not in text and "415-555-0134" not in text
    assert "<EMAIL_1>" in text and "<PHONE_1>" in text and counts["EMAIL"] >= 2
    assert {"role": "assistant", "content": "Done: I refunded it to <EMAIL_1>."} in mine.messages  # the person's reply

    r = api.http.post(f"/api/tickets/{number}/reply", json={"message": "One more thing"}, headers=agent)
    assert r.status_code == 409 and "resolved" in r.json()["detail"]
    api.http.post("/api/chat", json={"message": "It came back broken", "conversation_id": conv},
                  headers=api.headers(cid))
    assert number in [t["number"] for t in api.http.get("/api/tickets", headers=agent).json()]  # open again
    assert conv not in resolved_conversation_ids(api.store)


def test_customer_html_reaches_staff_as_text(api, agent, helpers):
    from store.tickets import get_ticket, lines
    from ui.app import ticket_markdown
    from ui.chatview import ChatView

    (cid, _), = helpers.customers_with_orders(api.store, 1)
    body = _hand_off(api, cid)
    conv, number = body["conversation_id"], int(body["ticket"][2:])
    markup = '<script>alert(1)</script><img src="https://example.com/x.png"> **bold** ![i](https://example.com/i.png)'
    api.http.post("/api/chat", json={"message": markup, "conversation_id": conv}, headers=api.headers(cid))
    shown = ticket_markdown(get_ticket(api.store, number), lines(api.store, conv, staff_view=True))
    assert "<script" not in shown and "<img" not in shown and "![" not in shown and "**bold**" not in shown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    # and the staff's words reach the customer's chat as text too
    view = ChatView()
    view.show_staff_reply(99, "<b>hi</b> ![x](https://example.com/x.png)")
    assert "<b>" not in view.messages[-1]["content"] and "![" not in view.messages[-1]["content"]


def test_inbox_in_the_app(api, helpers):
    """The Staff tab through the app's own API: sign in, see the ticket, reply, resolve."""
    add_staff(api.store, "lee", "support", PASSWORD)
    (cid, _), = helpers.customers_with_orders(api.store, 1)
    body = _hand_off(api, cid, "please get me a human, my order is wrong")
    number = int(body["ticket"][2:])
    client = Client(api.url + "/", verbose=False)
    msg = client.predict("lee", "wrong-one", api_name="/staff_sign_in")
    assert "Wrong staff name or password" in str(msg)
    msg = client.predict("lee", PASSWORD, api_name="/staff_sign_in")
    assert "Signed in as" in str(msg)
    picked, count = client.predict(None, api_name="/inbox_list")
    assert "open ticket" in count
    shown = client.predict(number, api_name="/inbox_show")
    assert body["ticket"] in shown and "my order is wrong" in shown
    _, shown, status = client.predict(number, "We are on it.", api_name="/inbox_reply")
    assert "We are on it." in shown and status == "Reply sent."
    seen = api.http.get(f"/api/conversations/{body['conversation_id']}/messages", headers=api.headers(cid)).json()
    assert seen["messages"][-1] == {**seen["messages"][-1], "sender": "staff", "text": "We are on it."}
    _, _, _, status, count = client.predict(number, "Sent the right size", api_name="/inbox_resolve")
    assert f"{body['ticket']} resolved" in status
    assert count == status.split("resolved. ", 1)[1]  # the queue's count under the list follows at once


def test_talk_to_a_human_route_gives_the_ticket(api, helpers):
    (cid, oid), = helpers.customers_with_orders(api.store, 1)
    r = api.http.post("/api/chat", json={"message": f"Where is my order {oid}?"}, headers=api.headers(cid))
    conv = r.json()["conversation_id"]
    r = api.http.post(f"/api/chat/{conv}/handoff", headers=api.headers(cid))
    body = r.json()
    assert r.status_code == 200 and body["handoff"] is True and LABEL.fullmatch(body["ticket"])
    assert f"Your ticket number is **{body['ticket']}**" in body["reply"]
    again = api.http.post(f"/api/chat/{conv}/handoff", headers=api.headers(cid)).json()
    assert again["ticket"] == body["ticket"] and "already waiting" in again["reply"]


def test_twenty_concurrent_handoffs_and_replies_keep_their_customers(api, agent, helpers):
    from concurrent.futures import ThreadPoolExecutor

    customers = [cid for cid, _ in helpers.customers_with_orders(api.store, 20)]
    assert len(set(customers)) == 20

    def hand_off(cid: str) -> tuple[str, dict]:
        return cid, _hand_off(api, cid, f"a human please, I am {cid}")

    with ThreadPoolExecutor(20) as pool:
        opened = dict(pool.map(hand_off, customers))
    numbers = {cid: int(body["ticket"][2:]) for cid, body in opened.items()}
    assert len(set(numbers.values())) == 20  # one ticket each
    with api.store.read() as s:
        for cid, number in numbers.items():
            assert s.get(Ticket, number).customer_id == cid

    def reply(cid: str) -> int:
        return api.http.post(f"/api/tickets/{numbers[cid]}/reply", json={"message": f"Hello {cid}"},
                             headers=agent).status_code

    def read(cid: str) -> tuple[str, list[tuple[str, str]]]:
        r = api.http.get(f"/api/conversations/{opened[cid]['conversation_id']}/messages", headers=api.headers(cid))
        return cid, [(m["sender"], m["text"]) for m in r.json()["messages"]]

    with ThreadPoolExecutor(20) as pool:
        assert set(pool.map(reply, customers)) == {200}
        seen = dict(pool.map(read, customers))
    for cid, said in seen.items():
        assert ("customer", f"a human please, I am {cid}") in said and said[-1] == ("staff", f"Hello {cid}")
        others = [c for c in customers if c != cid]
        assert not any(o in text for _, text in said for o in others)  # nobody else's words


def test_marketer_chat_api_needs_a_marketer_session(api, agent, helpers):
    add_staff(api.store, "max", "marketer", PASSWORD)
    marketer = _staff_headers(api, "max")
    r = api.http.post("/api/marketer/chat", json={"message": "hello"})
    assert r.status_code == 401
    assert api.http.post("/api/marketer/chat", json={"message": "hello"}, headers=agent).status_code == 403
    (cid, _), = helpers.customers_with_orders(api.store, 1)
    r = api.http.post("/api/marketer/chat", json={"message": "hello"}, headers=api.headers(cid))
    assert r.status_code == 401  # a customer token is not a staff session
    r = api.http.post("/api/marketer/chat", json={"message": "hello"}, headers=marketer)
    assert r.status_code == 200, r.text
    conv = r.json()["conversation_id"]
    assert next(s for s in api.sessions if s.conversation_id == conv).role == "marketer"
    r = api.http.post("/api/chat", json={"message": "hi", "conversation_id": conv}, headers=api.headers(cid))
    assert r.status_code == 404  # the marketer's conversation is out of a customer's reach
