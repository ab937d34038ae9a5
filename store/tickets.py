"""The handoff queue: a ticket for each conversation handed to a person, their replies in that same conversation
(messages with `meta.author == "staff"`), and the resolution note that closes it.

After a handoff the bot is out of the conversation: the customer's further messages and the staff's replies are
appended here, each with the next sequence number of the conversation's log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shopdesk.output import UserError
from store.db import Store
from store.models import Conversation, Message, Ticket

STAFF_AUTHOR = "staff"
REOPENED = "reopened_ticket"  # meta key of the customer message that opened a resolved ticket again: its number
MAX_TEXT_CHARS = 4000
APPEND_TRIES = 5  # two writers may take the same next sequence number; the loser retries with the next one

Speaker = Literal["customer", "assistant", "staff", "tool"]


@dataclass(frozen=True)
class TicketView:
    number: int
    conversation_id: str
    customer_id: str | None
    status: str
    summary: str
    created_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None

    @property
    def label(self) -> str:
        """How a person says the number: T-00042."""
        return ticket_label(self.number)


@dataclass(frozen=True)
class Line:
    """One message of a conversation as people read it (tool lines only for staff)."""

    seq: int
    speaker: Speaker
    text: str
    created_at: datetime
    staff: str | None = None  # who replied, on staff lines


def ticket_label(number: int) -> str:
    """The ticket's number as shown to people, e.g. T-00042."""
    return f"T-{number:05d}"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _view(t: Ticket) -> TicketView:
    return TicketView(t.id, t.conversation_id, t.customer_id, t.status, t.summary, t.created_at, t.resolved_at,
                      t.resolved_by, t.resolution)


def open_ticket(session: Session, conversation_id: str, customer_id: str | None, summary: str) -> Ticket:
    """The conversation's open ticket, or a new one (in the caller's transaction, so the handoff and its ticket are
    recorded together).
    """
    ticket = session.scalar(select(Ticket).where(Ticket.conversation_id == conversation_id, Ticket.status == "open"))
    if ticket is None:
        ticket = Ticket(conversation_id=conversation_id, customer_id=customer_id, status="open", summary=summary,
                        created_at=_now())
        session.add(ticket)
        session.flush()  # the number
    return ticket


def _latest(conversation_id: str):
    """The query for a conversation's latest ticket."""
    return select(Ticket).where(Ticket.conversation_id == conversation_id).order_by(Ticket.id.desc()).limit(1)


def ticket_for(store: Store, conversation_id: str) -> TicketView | None:
    """The conversation's latest ticket."""
    with store.read() as s:
        t = s.scalar(_latest(conversation_id))
        return _view(t) if t else None


def open_ticket_of(store: Store, customer_id: str) -> TicketView | None:
    """The customer's latest open ticket: the conversation a person has, which the chat page reopens on a reload."""
    with store.read() as s:
        t = s.scalar(select(Ticket).where(Ticket.customer_id == customer_id, Ticket.status == "open")
                     .order_by(Ticket.id.desc()))
        return _view(t) if t else None


def get_ticket(store: Store, number: int) -> TicketView:
    """The ticket with this number; a UserError if there is none."""
    with store.read() as s:
        t = s.get(Ticket, number)
        if t is None:
            raise UserError(f"there is no ticket {ticket_label(number)}")
        return _view(t)


def list_tickets(store: Store, status: str | None = "open") -> list[TicketView]:
    """Tickets, oldest first (the queue's order); `status` None lists all."""
    with store.read() as s:
        q = select(Ticket).order_by(Ticket.id)
        if status:
            q = q.where(Ticket.status == status)
        return [_view(t) for t in s.scalars(q)]


def lines(store: Store, conversation_id: str, after_seq: int = -1, *, staff_view: bool = False) -> list[Line]:
    """The conversation's messages after `after_seq`: what the customer wrote, the bot's replies and the staff's.
    `staff_view` adds one line per tool call (the customer never sees those).
    """
    out: list[Line] = []
    with store.read() as s:
        rows = s.scalars(select(Message).where(Message.conversation_id == conversation_id, Message.seq > after_seq)
                         .order_by(Message.seq))
        for m in rows:
            if m.role == "user":
                out.append(Line(m.seq, "customer", m.content, m.created_at))
            elif m.role == "assistant" and (m.meta or {}).get("author") == STAFF_AUTHOR:
                out.append(Line(m.seq, "staff", m.content, m.created_at, (m.meta or {}).get("staff")))
            elif m.role == "assistant" and m.tool_calls:
                if staff_view:
                    calls = "; ".join(
                        f"{tc.get('name')}({', '.join(f'{k}={v}' for k, v in (tc.get('arguments') or {}).items())})"
                        for tc in m.tool_calls
                    )
                    out.append(Line(m.seq, "tool", calls, m.created_at))
            elif m.role == "assistant" and m.content.strip():
                out.append(Line(m.seq, "assistant", m.content, m.created_at))
    return out


def _append(store: Store, conversation_id: str, role: str, text: str, meta: dict | None = None,
            within: Callable[[Session], dict | None] | None = None) -> Line:
    """Add a message with the conversation's next sequence number. `within(session)` runs in the same transaction
    first (a ticket check or reopen, so no other writer slips in between) and may add meta to the message.
    """
    text = (text or "").strip()
    if not text:
        raise UserError("the message is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise UserError(f"the message is longer than {MAX_TEXT_CHARS} characters")
    for attempt in range(APPEND_TRIES):
        try:
            with store.transaction() as s:
                if s.get(Conversation, conversation_id) is None:
                    raise UserError("there is no such conversation")
                extra = within(s) if within is not None else None
                meta_now = {**(meta or {}), **(extra or {})} or None
                last = s.scalar(select(func.max(Message.seq)).where(Message.conversation_id == conversation_id))
                seq = -1 if last is None else last
                now = _now()
                s.add(Message(conversation_id=conversation_id, seq=seq + 1, role=role, content=text, created_at=now,
                              meta=meta_now))
            break
        except IntegrityError:  # another writer took the number: the whole transaction, check included, again
            if attempt == APPEND_TRIES - 1:
                raise
    speaker: Speaker = "customer" if role == "user" else "staff"
    return Line(seq + 1, speaker, text, now, (meta or {}).get("staff"))


def customer_writes(store: Store, conversation_id: str, text: str) -> Line:
    """A customer's message to the person who has the conversation; a resolved ticket opens again, in the same
    transaction as the message, and the message records that it did (support stats count reopened tickets from it).
    """
    def reopen(s: Session) -> dict | None:
        t = s.scalar(_latest(conversation_id).with_for_update())
        if t is None or t.status != "resolved":
            return None
        t.status, t.resolved_at, t.resolved_by = "open", None, None
        return {REOPENED: t.id}

    return _append(store, conversation_id, "user", text, within=reopen)


def staff_reply(store: Store, number: int, staff: str, text: str) -> Line:
    """A staff member's reply on an open ticket, added to its conversation for the customer to read; the ticket is
    checked in the reply's own transaction, so a reply never lands on a ticket resolved a moment before.
    """
    ticket = get_ticket(store, number)

    def still_open(s: Session) -> None:
        t = s.get(Ticket, number, with_for_update=True)
        if t is None or t.status != "open":
            raise UserError(f"ticket {ticket.label} is resolved; the customer's next message opens it again")

    return _append(store, ticket.conversation_id, "assistant", text, {"author": STAFF_AUTHOR, "staff": staff},
                   within=still_open)


def resolve(store: Store, number: int, staff: str, note: str) -> TicketView:
    """Close a ticket with a note saying how it was resolved."""
    note = (note or "").strip()
    if not note:
        raise UserError("write a resolution note: how was it resolved?")
    with store.transaction() as s:
        t = s.get(Ticket, number)
        if t is None:
            raise UserError(f"there is no ticket {ticket_label(number)}")
        if t.status == "resolved":
            raise UserError(f"ticket {ticket_label(number)} is already resolved")
        t.status, t.resolved_at, t.resolved_by, t.resolution = "resolved", _now(), staff, note[:MAX_TEXT_CHARS]
    return _view(t)


def resolved_conversation_ids(store: Store) -> list[str]:
    """Conversations whose latest ticket is resolved, oldest ticket first."""
    with store.read() as s:
        latest = (select(Ticket.conversation_id, func.max(Ticket.id).label("last"))
                  .group_by(Ticket.conversation_id).subquery())
        rows = s.execute(select(Ticket.conversation_id).join(latest, Ticket.id == latest.c.last)
                         .where(Ticket.status == "resolved").order_by(Ticket.id)).all()
    return [r[0] for r in rows]
