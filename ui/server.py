r"""One server for a shop: the Gradio app at `/` and the HTTP API under `/api`, one FastAPI app on one port.

    shopdesk ui --port 7860          # the app, the API, and the API's reference at http://127.0.0.1:7860/docs
    TOKEN=$(shopdesk auth token c000001)
    curl -s http://127.0.0.1:7860/api/chat -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
         -d '{"message": "Where is my order #S0000001?", "conversation_id": null}'

A customer proves who they are with the token the shop signed (shopdesk.auth). A conversation belongs to the customer
who opened it: anyone else gets 404 for it. Conversations live in this process's memory.

Staff sign in with their account (`POST /api/staff/sign-in` gives a session token that expires) to work the handoff
queue (`/api/tickets`) and read the support figures (`/api/support/stats`). After a handoff the bot is out of the
conversation: the customer's messages go to the ticket, and the staff's replies come back through
`GET /api/conversations/{conversation_id}/messages`.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import gradio as gr
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.sse import EventSourceResponse, format_sse_event
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, Field

from agent.api import AgentEvent, ChatSession
from shopdesk.auth import STAFF_SESSION_S, TokenError, issue_staff_token, secret_key, verify_staff_token
from shopdesk.output import UserError
from shopdesk.settings import Settings, get_settings
from store import tickets as ticket_store
from store.models import Conversation as ConversationRow
from store.staff import get_staff
from store.supportstats import support_stats
from ui.app import CSS, HUMAN_REQUEST, AppServices, SessionFactory, build_app
from ui.chatview import WORDS, friendly_error
from ui.signin import SignInRefused, StaffSession, customer_from_token

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 4000
GRACEFUL_SHUTDOWN_S = 5


class ChatRequest(BaseModel):
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, description="What the customer wrote.")
    conversation_id: str | None = Field(None, description="The id from a previous reply; null starts a conversation.")


class PendingActionOut(BaseModel):
    """A change the bot proposed; it happens only when the customer confirms it."""

    kind: str = Field(description="Which change, e.g. cancel_pending_order.")
    summary: str = Field(description="Exactly what will happen, for the customer to read before confirming.")


class ChatReply(BaseModel):
    conversation_id: str = Field(description="Send it with the next message to continue this conversation.")
    reply: str = Field(description="The assistant's answer (markdown).")
    pending_action: PendingActionOut | None = Field(
        None, description="A change waiting for POST /api/chat/{conversation_id}/confirm or /decline."
    )
    handoff: bool = Field(description="True once a person from the shop took the conversation over.")
    ticket: str | None = Field(None, description="The handoff's ticket number (e.g. T-00042), once handed off.")


class Progress(BaseModel):
    """What the bot is doing during a streamed turn."""

    step: str = Field(description="status (waiting for the model), tool_call (running a tool), confirm (a change "
                                  "waits for the customer's yes or no).")
    tool: str | None = Field(None, description="The tool being run, for tool_call.")
    ahead: int | None = Field(None, description="Conversations ahead of this one, for status.")
    starting: bool | None = Field(None, description="For status: the assistant is still starting after a restart.")

    @classmethod
    def of(cls, event: AgentEvent) -> Progress:
        data = event.data if event.kind == "status" and isinstance(event.data, dict) else {}
        return cls(step=event.kind, tool=event.name if event.kind == "tool_call" else None, ahead=data.get("ahead"),
                   starting=data.get("starting"))


STREAMED = {200: {"content": {"text/event-stream": {"description": "With `Accept: text/event-stream`: events "
                                                                   "`progress`, then `reply` or `error`."}}}}


class Said(BaseModel):
    seq: int = Field(description="Position in the conversation; pass the last one as `after` to get only newer ones.")
    sender: ticket_store.Speaker = Field(description="customer, assistant (the bot), staff (a person from the shop); "
                                                     "tool (a tool call) only in staff views.")
    text: str = Field(description="The message as written (plain text; render it as text, not HTML).")
    created_at: str


class ConversationMessages(BaseModel):
    conversation_id: str
    handoff: bool
    ticket: str | None = None
    ticket_status: str | None = Field(None, description="open or resolved")
    messages: list[Said]


class StaffSignInRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class StaffToken(BaseModel):
    token: str = Field(description="Send as `Authorization: Bearer <token>` to the staff routes.")
    role: str
    expires_in: int = Field(description="Seconds until the session ends.")


class TicketOut(BaseModel):
    number: int
    label: str
    conversation_id: str
    customer_id: str | None
    status: str
    summary: str = Field(description="The bot's summary for the person taking over.")
    created_at: str
    resolved_by: str | None = None
    resolution: str | None = None


class TicketDetail(TicketOut):
    transcript: list[Said] = Field(description="The whole conversation, tool calls included (sender `tool`).")


class StaffText(BaseModel):
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


class ResolveRequest(BaseModel):
    note: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS, description="How it was resolved.")


class Problem(BaseModel):
    detail: str = Field(description="What went wrong, in a sentence for a person.")


class Health(BaseModel):
    status: str = "ok"


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No token, or one that is forged, expired or malformed."},
    403: {"model": Problem, "description": "Signed in, but this staff role may not do that."},
    404: {"model": Problem, "description": "No such conversation for this customer."},
    409: {"model": Problem, "description": "The conversation is still answering a previous message."},
    429: {"model": Problem, "description": "Too many requests; `Retry-After` says when to try again."},
}


@dataclass
class Conversation:
    owner: str  # the customer id the opening token named
    session: ChatSession
    busy: threading.Lock = field(default_factory=threading.Lock)


class Conversations:
    """Open API conversations by id, each owned by the customer who opened it. A conversation idle for `idle_s`
    seconds is let go (its turns stay in the turn log), and at most `capacity` are held, the least recently used
    going first, so the server's memory does not grow with every conversation it ever had.
    """

    def __init__(self, idle_s: float = 2 * 3600, capacity: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._by_id: OrderedDict[str, tuple[Conversation, float]] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()
        self.idle_s, self.capacity, self._clock = idle_s, capacity, clock

    def add(self, owner: str, session: ChatSession) -> Conversation:
        conv = Conversation(owner=owner, session=session)
        with self._lock:
            self._by_id[session.conversation_id] = (conv, self._clock())
            self._let_go()
        return conv

    def get(self, conversation_id: str, customer_id: str) -> Conversation:
        """The customer's own conversation; anyone else's, or one let go, reads exactly like one that does not
        exist.
        """
        with self._lock:
            self._let_go()
            found = self._by_id.get(conversation_id)
            if found is not None and found[0].owner == customer_id:
                self._by_id[conversation_id] = (found[0], self._clock())
                self._by_id.move_to_end(conversation_id)
                return found[0]
        raise HTTPException(404, "There is no such conversation on your account (a conversation ends after "
                                 f"{self.idle_s / 60:.0f} min without a message; start a new one).")

    def __len__(self) -> int:
        return len(self._by_id)

    def _let_go(self) -> None:
        now = self._clock()
        while self._by_id:
            key, (conv, last) = next(iter(self._by_id.items()))
            if len(self._by_id) <= self.capacity and now - last < self.idle_s:
                break
            if conv.busy.locked():  # answering right now: never pulled out from under a turn
                self._by_id.move_to_end(key)
                break
            del self._by_id[key]


class RateLimits:
    """A moving window per customer and per client address (limits' in-memory storage)."""

    def __init__(self, per_customer: str, per_address: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._items = {"customer": parse(per_customer), "address": parse(per_address)}

    def hit(self, scope: str, key: str) -> None:
        item = self._items[scope]
        if self._limiter.hit(item, scope, key):
            return
        reset = self._limiter.get_window_stats(item, scope, key).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        raise HTTPException(
            429, f"Too many requests: at most {item.amount} per {_window(item)} per {scope}. Please wait {wait} s.",
            headers={"Retry-After": str(wait)},
        )


def _window(item) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def _said(line: ticket_store.Line) -> Said:
    return Said(seq=line.seq, sender=line.speaker, text=line.text, created_at=line.created_at.isoformat())


def _ticket_out(t: ticket_store.TicketView, model: type[TicketOut] = TicketOut, **extra) -> TicketOut:
    return model(number=t.number, label=t.label, conversation_id=t.conversation_id, customer_id=t.customer_id,
                 status=t.status, summary=t.summary, created_at=t.created_at.isoformat(), resolved_by=t.resolved_by,
                 resolution=t.resolution, **extra)


def build_api(settings: Settings, services: AppServices) -> FastAPI:
    """The FastAPI app with the chat API and /healthz; `build_server` mounts the Gradio app on it."""
    api = FastAPI(
        title="shopdesk",
        summary="The shop's support assistant over HTTP: customers authenticate with the token their shop signed.",
        version="0.1.0",
    )
    conversations = Conversations()
    limits = RateLimits(settings.rate_limit, settings.rate_limit_per_address)
    bearer = HTTPBearer(auto_error=False, description="The customer token the shop signed (HS256 JWT).")

    def signed_in_customer(request: Request,
                           credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        limits.hit("address", _address(request))  # before the token: guessing tokens is rate limited too
        if credentials is None:
            raise _unauthorized("Sign in first: send the token your shop signed as `Authorization: Bearer <token>`.")
        try:
            customer_id = customer_from_token(settings, services.store(), credentials.credentials)
        except TokenError as exc:
            raise _unauthorized(str(exc)) from None
        limits.hit("customer", customer_id)
        return customer_id

    def turn(conv: Conversation, start: Callable[[ChatSession], Iterator[AgentEvent]],
             message: str | None = None) -> Iterator[AgentEvent | ChatReply]:
        """One turn of the bot: its progress events (status, tool_call, confirm), then the ChatReply. Once a person
        has the conversation, `message` goes to them instead (the bot is out, and its log must not interleave with
        the staff's replies). The caller holds `conv.busy`.
        """
        session = conv.session
        reply = ""
        if session.handed_off:
            ticket = ticket_store.ticket_for(services.store(), session.conversation_id)
            label = ticket.label if ticket else "?"
            if message is not None:
                ticket_store.customer_writes(services.store(), session.conversation_id, message)
                reply = f"{WORDS['sent_to_staff']['en']} {WORDS['ticket']['en'].format(ticket=label)}"
            else:
                reply = f"{WORDS['already_handed_off']['en']} {WORDS['ticket']['en'].format(ticket=label)}"
        else:
            for event in start(session):
                if event.kind in ("final", "error"):
                    reply = event.text or reply
                elif event.kind == "confirm":
                    reply = event.text
                if event.kind in ("status", "tool_call", "confirm"):
                    yield event
            if session.handed_off:  # this turn handed off: the customer is told the ticket number
                ticket = ticket_store.ticket_for(services.store(), session.conversation_id)
                if ticket is not None:
                    reply = f"{reply}\n\n{WORDS['ticket']['en'].format(ticket=ticket.label)}".strip()
        pending = session.pending
        ticket = ticket_store.ticket_for(services.store(), session.conversation_id) if session.handed_off else None
        yield ChatReply(
            conversation_id=session.conversation_id,
            reply=reply,
            pending_action=PendingActionOut(kind=pending.tool, summary=pending.summary) if pending else None,
            handoff=session.handed_off,
            ticket=ticket.label if ticket else None,
        )

    def take(conv: Conversation) -> None:
        if not conv.busy.acquire(blocking=False):
            raise HTTPException(409, "I am still answering your previous message; send this again when I am done.")

    def run(conv: Conversation, start: Callable[[ChatSession], Iterator[AgentEvent]],
            message: str | None = None, request: Request | None = None) -> ChatReply | EventSourceResponse:
        """The turn's ChatReply; as Server-Sent Events when the request accepts `text/event-stream`: a `progress`
        event per step (what the bot is doing, never a tool's arguments or raw result), then `reply` with the
        ChatReply, or `error` with a sentence for the person.
        """
        take(conv)
        if request is not None and "text/event-stream" in request.headers.get("accept", ""):
            return EventSourceResponse(stream(conv, turn(conv, start, message)))
        try:
            *_, reply = turn(conv, start, message)
            return reply
        except UserError as exc:
            raise HTTPException(422, str(exc)) from None
        except Exception as exc:  # the boundary: log the bug, tell the person in one sentence
            log.exception("API turn failed in conversation %s", conv.session.conversation_id)
            raise HTTPException(500, friendly_error(exc)) from None
        finally:
            conv.busy.release()

    def stream(conv: Conversation, events: Iterator[AgentEvent | ChatReply]) -> Iterator[bytes]:
        try:
            for event in events:
                if isinstance(event, ChatReply):
                    yield format_sse_event(event="reply", data_str=event.model_dump_json())
                else:
                    yield format_sse_event(event="progress", data_str=Progress.of(event).model_dump_json())
        except UserError as exc:
            yield format_sse_event(event="error", data_str=Problem(detail=str(exc)).model_dump_json())
        except Exception as exc:  # the boundary, as in run()
            log.exception("API turn failed in conversation %s", conv.session.conversation_id)
            yield format_sse_event(event="error", data_str=Problem(detail=friendly_error(exc)).model_dump_json())
        finally:
            conv.busy.release()

    def open_or_get(conversation_id: str | None, owner: str, role: str, customer_id: str | None) -> Conversation:
        """The owner's conversation `conversation_id`, or with None a new `role` session owned by `owner` (a failure
        to open one is a 500 with a sentence for the person, the bug in the log).
        """
        if conversation_id is not None:
            return conversations.get(conversation_id, owner)
        try:
            session = services.open_chat(role, customer_id)
        except Exception as exc:
            log.exception("opening a %s API conversation failed", role)
            raise HTTPException(500, friendly_error(exc)) from None
        return conversations.add(owner, session)

    @api.get("/healthz", response_model=Health, tags=["service"])
    def healthz() -> Health:
        """The server is up."""
        return Health()

    @api.post("/api/chat", response_model=ChatReply, responses={**ERRORS, **STREAMED}, tags=["chat"])
    def chat(body: ChatRequest, request: Request, customer_id: str = Depends(signed_in_customer)):
        """Send the customer's message; with `conversation_id` null a new conversation starts. With
        `Accept: text/event-stream` the turn streams as Server-Sent Events: `progress` while the bot works, then
        `reply` (the same JSON as the plain answer) or `error`.
        """
        conv = open_or_get(body.conversation_id, customer_id, "customer", customer_id)
        return run(conv, lambda s: s.respond(body.message), body.message, request)

    @api.post("/api/chat/{conversation_id}/confirm", response_model=ChatReply, responses=ERRORS, tags=["chat"])
    def confirm(conversation_id: str, customer_id: str = Depends(signed_in_customer)) -> ChatReply:
        """Carry out the change waiting for the customer's confirmation."""
        return run(conversations.get(conversation_id, customer_id), lambda s: s.confirm())

    @api.post("/api/chat/{conversation_id}/decline", response_model=ChatReply, responses=ERRORS, tags=["chat"])
    def decline(conversation_id: str, customer_id: str = Depends(signed_in_customer)) -> ChatReply:
        """Drop the change waiting for the customer's confirmation."""
        return run(conversations.get(conversation_id, customer_id), lambda s: s.decline())

    @api.post("/api/chat/{conversation_id}/handoff", response_model=ChatReply, responses=ERRORS, tags=["chat"])
    def handoff(conversation_id: str, customer_id: str = Depends(signed_in_customer)) -> ChatReply:
        """Hand the conversation to a person now (a "Talk to a human" button): the reply gives the ticket number."""
        return run(conversations.get(conversation_id, customer_id), lambda s: s.hand_off(HUMAN_REQUEST["en"]))

    @api.get("/api/conversations/{conversation_id}/messages", response_model=ConversationMessages, responses=ERRORS,
             tags=["chat"])
    def messages(conversation_id: str, after: int = -1,
                 customer_id: str = Depends(signed_in_customer)) -> ConversationMessages:
        """The conversation as the customer sees it (their messages, the bot's and the staff's replies), after the
        message numbered `after`: poll it for a person's reply after a handoff.
        """
        store = services.store()
        with store.read() as s:
            row = s.get(ConversationRow, conversation_id)
            if row is None or row.customer_id != customer_id:
                raise HTTPException(404, "There is no such conversation on your account.")
            handed_off = row.outcome == "handed_off"
        ticket = ticket_store.ticket_for(store, conversation_id)
        return ConversationMessages(
            conversation_id=conversation_id, handoff=handed_off or ticket is not None,
            ticket=ticket.label if ticket else None, ticket_status=ticket.status if ticket else None,
            messages=[_said(line) for line in ticket_store.lines(store, conversation_id, after)],
        )

    # ---- staff ----

    staff_bearer = HTTPBearer(auto_error=False, scheme_name="StaffSession",
                              description="A staff session token from POST /api/staff/sign-in.")

    def signing_key() -> str:
        try:
            return secret_key(settings)
        except UserError:
            raise HTTPException(503, "Staff sign-in over the API needs SHOPDESK_SECRET_KEY to be set.") from None

    def signed_in_staff(request: Request,
                        credentials: HTTPAuthorizationCredentials | None = Depends(staff_bearer)) -> StaffSession:
        limits.hit("address", _address(request))
        if credentials is None:
            raise _unauthorized("Sign in first: POST /api/staff/sign-in, then send `Authorization: Bearer <token>`.")
        try:
            name, role = verify_staff_token(credentials.credentials, signing_key())
        except TokenError as exc:
            raise _unauthorized(str(exc)) from None
        account = get_staff(services.store(), name)
        if account is None or not account.active or account.role != role:
            raise _unauthorized("This staff account is disabled or changed; please sign in again.")
        return StaffSession(name=name, role=role, expires_at=math.inf)

    def support_agent(staff: StaffSession = Depends(signed_in_staff)) -> StaffSession:
        if staff.role != "support":
            raise HTTPException(403, "The handoff inbox is for support agents.")
        return staff

    @api.post("/api/staff/sign-in", response_model=StaffToken, responses=ERRORS, tags=["staff"])
    def staff_sign_in(body: StaffSignInRequest, request: Request) -> StaffToken:
        """A staff session for a staff account's name and password; failed tries are throttled per account and
        per address.
        """
        key = signing_key()
        try:
            staff = services.staff_sign_in.sign_in(services.store(), body.name, body.password, _address(request))
        except SignInRefused as exc:
            if exc.retry_after:
                raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
            raise _unauthorized(str(exc)) from None
        return StaffToken(token=issue_staff_token(staff.name, staff.role, key), role=staff.role,
                          expires_in=STAFF_SESSION_S)

    def marketer(staff: StaffSession = Depends(signed_in_staff)) -> StaffSession:
        if staff.role != "marketer":
            raise HTTPException(403, "The analytics chat is for marketers.")
        limits.hit("customer", f"staff:{staff.name}")
        return staff

    @api.post("/api/marketer/chat", response_model=ChatReply, responses={**ERRORS, **STREAMED}, tags=["staff"])
    def marketer_chat(body: ChatRequest, request: Request, staff: StaffSession = Depends(marketer)):
        """The marketer's analytics chat (segments, churn, customer value, reviews), for a marketer's staff session;
        streamed like /api/chat with `Accept: text/event-stream`.
        """
        owner = f"staff:{staff.name}"  # never equal to a customer id, so neither side can reach the other's
        conv = open_or_get(body.conversation_id, owner, "marketer", None)
        return run(conv, lambda s: s.respond(body.message), body.message, request)

    @api.get("/api/tickets", response_model=list[TicketOut], responses=ERRORS, tags=["staff"])
    def list_tickets(status: str | None = "open", staff: StaffSession = Depends(support_agent)) -> list[TicketOut]:
        """The handoff queue, oldest first (`status`: open, resolved, or empty for all)."""
        return [_ticket_out(t) for t in ticket_store.list_tickets(services.store(), status or None)]

    @contextmanager
    def refused_as(status: int) -> Iterator[None]:
        """A UserError inside becomes an HTTP error with this status and the error's sentence."""
        try:
            yield
        except UserError as exc:
            raise HTTPException(status, str(exc)) from None

    def _ticket(number: int) -> ticket_store.TicketView:
        with refused_as(404):
            return ticket_store.get_ticket(services.store(), number)

    @api.get("/api/tickets/{number}", response_model=TicketDetail, responses=ERRORS, tags=["staff"])
    def ticket_detail(number: int, staff: StaffSession = Depends(support_agent)) -> TicketDetail:
        """A ticket with the bot's summary and the whole conversation."""
        t = _ticket(number)
        lines = ticket_store.lines(services.store(), t.conversation_id, staff_view=True)
        return _ticket_out(t, TicketDetail, transcript=[_said(line) for line in lines])

    @api.post("/api/tickets/{number}/reply", response_model=Said, responses=ERRORS, tags=["staff"])
    def ticket_reply(number: int, body: StaffText, staff: StaffSession = Depends(support_agent)) -> Said:
        """Reply to the customer in their conversation."""
        _ticket(number)
        with refused_as(409):
            return _said(ticket_store.staff_reply(services.store(), number, staff.name, body.message))

    @api.post("/api/tickets/{number}/resolve", response_model=TicketOut, responses=ERRORS, tags=["staff"])
    def ticket_resolve(number: int, body: ResolveRequest, staff: StaffSession = Depends(support_agent)) -> TicketOut:
        """Close the ticket with a note on how it was resolved."""
        _ticket(number)
        with refused_as(409):
            return _ticket_out(ticket_store.resolve(services.store(), number, staff.name, body.note))

    @api.get("/api/support/stats", responses=ERRORS, tags=["staff"])
    def stats(since: date | None = None, until: date | None = None,
              staff: StaffSession = Depends(signed_in_staff)) -> dict[str, Any]:
        """The support figures (what `shopdesk support stats --json` prints), for any staff role."""
        return support_stats(services.store(), since, until)

    return api


def build_server(settings: Settings | None = None, *, session_factory: SessionFactory | None = None,
                 store=None, services: AppServices | None = None) -> FastAPI:
    """The API and the Gradio app on one FastAPI app; they share the store, how sessions open, and the search
    indexes and chat models the sessions use: one AppServices, `services` if given (its settings, store and factory
    then rule), else one made from the other arguments.
    """
    if services is None:
        settings = settings or get_settings()
        services = AppServices(settings, session_factory, store)
    else:
        settings = services.settings
    api = build_api(settings, services)
    # Mounted last, at "/": the API's routes, /docs and /openapi.json match before the app's.
    return gr.mount_gradio_app(api, build_app(settings, services=services), path="/", css=CSS, show_error=False)


_TOKEN_IN_URL = re.compile(r"(?i)(\btoken=)[^&\s\"]*")


class RedactTokens(logging.Filter):
    """Access-log lines show `token=<redacted>`: a chat link carries the customer's token in its query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN_IN_URL.sub(r"\1<redacted>", a) if isinstance(a, str) else a
                                for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = _TOKEN_IN_URL.sub(r"\1<redacted>", record.msg)
        return True


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve until interrupted (Ctrl+C or SIGTERM)."""
    # An open browser tab holds streams (gradio's queue) that never end by themselves: at shutdown they get a few
    # seconds, then the server stops anyway (without the timeout, SIGTERM waited for every tab to close).
    config = uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())  # after Config, which configures the loggers
    uvicorn.Server(config).run()
