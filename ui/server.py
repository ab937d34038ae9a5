"""One server for a shop: the Gradio app at `/` and the HTTP API under `/api`, one FastAPI app on one port.

    shopdesk ui --port 7860          # the app, the API, and the API's reference at http://127.0.0.1:7860/docs
    TOKEN=$(shopdesk auth token c000001)
    curl -s http://127.0.0.1:7860/api/chat -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
         -d '{"message": "Where is my order #S0000001?", "conversation_id": null}'

A customer proves who they are with the token the shop signed (shopdesk.auth). A conversation belongs to the customer
who opened it: anyone else gets 404 for it. Conversations live in this process's memory.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, Field

from agent.api import AgentEvent, ChatSession
from shopdesk.auth import TokenError
from shopdesk.settings import Settings, get_settings
from ui.app import CSS, AppServices, SessionFactory, build_app
from ui.render import friendly_error
from ui.signin import customer_from_token

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


class Problem(BaseModel):
    detail: str = Field(description="What went wrong, in a sentence for a person.")


class Health(BaseModel):
    status: str = "ok"


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No token, or one that is forged, expired or malformed."},
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
    """Open API conversations by id, each owned by the customer who opened it."""

    def __init__(self) -> None:
        self._by_id: dict[str, Conversation] = {}
        self._lock = threading.Lock()

    def add(self, owner: str, session: ChatSession) -> Conversation:
        conv = Conversation(owner=owner, session=session)
        with self._lock:
            self._by_id[session.conversation_id] = conv
        return conv

    def get(self, conversation_id: str, customer_id: str) -> Conversation:
        """The customer's own conversation; anyone else's reads exactly like one that does not exist."""
        with self._lock:
            conv = self._by_id.get(conversation_id)
        if conv is None or conv.owner != customer_id:
            raise HTTPException(404, "There is no such conversation on your account.")
        return conv


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

    def run(conv: Conversation, start: Callable[[ChatSession], Iterator[AgentEvent]]) -> ChatReply:
        if not conv.busy.acquire(blocking=False):
            raise HTTPException(409, "I am still answering your previous message; send this again when I am done.")
        try:
            reply = ""
            for event in start(conv.session):
                if event.kind in ("final", "error"):
                    reply = event.text or reply
                elif event.kind == "confirm":
                    reply = event.text
        except Exception as exc:  # the boundary: log the bug, tell the person in one sentence
            log.exception("API turn failed in conversation %s", conv.session.conversation_id)
            raise HTTPException(500, friendly_error(exc)) from None
        finally:
            conv.busy.release()
        pending = conv.session.pending
        return ChatReply(
            conversation_id=conv.session.conversation_id,
            reply=reply,
            pending_action=PendingActionOut(kind=pending.tool, summary=pending.summary) if pending else None,
            handoff=conv.session.handed_off,
        )

    @api.get("/healthz", response_model=Health, tags=["service"])
    def healthz() -> Health:
        """The server is up."""
        return Health()

    @api.post("/api/chat", response_model=ChatReply, responses=ERRORS, tags=["chat"])
    def chat(body: ChatRequest, customer_id: str = Depends(signed_in_customer)) -> ChatReply:
        """Send the customer's message; with `conversation_id` null a new conversation starts."""
        if body.conversation_id is None:
            try:
                session = services.open_chat("customer", customer_id)
            except Exception as exc:
                log.exception("opening an API conversation failed")
                raise HTTPException(500, friendly_error(exc)) from None
            conv = conversations.add(customer_id, session)
        else:
            conv = conversations.get(body.conversation_id, customer_id)
        return run(conv, lambda s: s.respond(body.message))

    @api.post("/api/chat/{conversation_id}/confirm", response_model=ChatReply, responses=ERRORS, tags=["chat"])
    def confirm(conversation_id: str, customer_id: str = Depends(signed_in_customer)) -> ChatReply:
        """Carry out the change waiting for the customer's confirmation."""
        return run(conversations.get(conversation_id, customer_id), lambda s: s.confirm())

    @api.post("/api/chat/{conversation_id}/decline", response_model=ChatReply, responses=ERRORS, tags=["chat"])
    def decline(conversation_id: str, customer_id: str = Depends(signed_in_customer)) -> ChatReply:
        """Drop the change waiting for the customer's confirmation."""
        return run(conversations.get(conversation_id, customer_id), lambda s: s.decline())

    return api


def build_server(settings: Settings | None = None, *, session_factory: SessionFactory | None = None,
                 store=None) -> FastAPI:
    """The API and the Gradio app on one FastAPI app; they share the store and how sessions open."""
    settings = settings or get_settings()
    services = AppServices(settings, session_factory, store)
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
