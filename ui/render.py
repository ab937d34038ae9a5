"""Turning the agent's events into chat messages: streamed text, collapsible tool-call panels, confirm and handoff."""

from __future__ import annotations

import json
import logging
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

from agent.api import AgentEvent, ChatSession

log = logging.getLogger(__name__)

MAX_RESULT_CHARS = 1500  # a tool result panel shows this much; the full result stays in the conversation log


@dataclass
class ChatView:
    """What one browser session's chat shows, and the session that answers it (kept in a gr.State)."""

    session: ChatSession | None = None
    identity: str = ""  # who is signed in, as shown in the header
    messages: list[dict[str, Any]] = field(default_factory=list)
    awaiting_confirm: bool = False
    handed_off: bool = False
    _calls: dict[str, int] = field(default_factory=dict)  # call_id -> index of its panel in messages
    _call_names: dict[str, str] = field(default_factory=dict)
    _text_at: int | None = None  # index of the assistant message the current turn streams into
    _busy: threading.Lock = field(default_factory=threading.Lock, repr=False)  # one turn at a time per session

    def tool_name(self, event: AgentEvent) -> str | None:
        return event.name or self._call_names.get(event.call_id or "")

    def add_user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})
        self._text_at = None

    def say(self, text: str) -> None:
        self.messages.append({"role": "assistant", "content": text})
        self._text_at = None

    def apply(self, event: AgentEvent) -> None:
        """Show one agent event."""
        kind = event.kind
        if kind == "text":
            if self._text_at is None:
                self.messages.append({"role": "assistant", "content": ""})
                self._text_at = len(self.messages) - 1
            self.messages[self._text_at]["content"] += event.text
        elif kind == "tool_call":
            call_id = event.call_id or f"call_{len(self._calls)}"
            self._call_names[call_id] = event.name or "tool"
            args = json.dumps(event.arguments or {}, ensure_ascii=False, indent=1)
            self.messages.append(
                {
                    "role": "assistant",
                    "content": f"Arguments:\n```json\n{args}\n```",
                    "metadata": {"title": f"Tool: {event.name}", "id": call_id, "status": "pending"},
                }
            )
            self._calls[call_id] = len(self.messages) - 1
            self._text_at = None
        elif kind == "tool_result":
            text = event.text or json.dumps(event.data, ensure_ascii=False, default=str)
            if len(text) > MAX_RESULT_CHARS:
                text = text[:MAX_RESULT_CHARS] + " …"
            at = self._calls.get(event.call_id or "")
            if at is None:  # a result without its call: show it as its own panel
                self.messages.append(
                    {"role": "assistant", "content": "", "metadata": {"title": f"Tool: {self.tool_name(event) or 'tool'}"}}
                )
                at = len(self.messages) - 1
            panel = self.messages[at]
            panel["content"] += f"\n\nResult:\n```\n{text}\n```"
            panel["metadata"] = {**panel["metadata"], "status": "done"}
            if isinstance(event.data, dict) and "error" in event.data:
                panel["metadata"]["log"] = "failed"
            self._text_at = None
        elif kind == "confirm":
            self.awaiting_confirm = True
            self.say(f"**Please confirm:** {event.text}\n\nUse the Confirm or Cancel button below.")
        elif kind == "handoff":
            self.handed_off = True
            self.say(f"**You are being transferred to a human agent.** They will see this summary:\n\n> {event.text}")
        elif kind == "final":
            if isinstance(event.data, dict) and event.data.get("awaiting_confirmation"):
                self._text_at = None  # the confirm message already says it
            elif self._text_at is not None:
                # The final text may differ from what streamed (the grounding check can replace it).
                self.messages[self._text_at]["content"] = event.text
            elif event.text:
                self.say(event.text)
            self._text_at = None
        elif kind == "error":
            self.say(event.text)

    def finish_pending(self) -> None:
        """Close panels of calls that never got a result (the turn failed half-way)."""
        for at in self._calls.values():
            meta = self.messages[at].get("metadata") or {}
            if meta.get("status") == "pending":
                self.messages[at]["metadata"] = {**meta, "status": "done", "log": "no result"}


def _frames(exc: BaseException) -> list[str]:
    """Files of every frame of the exception and the ones it was raised from."""
    files: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        files += [f.filename for f in traceback.extract_tb(exc.__traceback__)]
        files.append(type(exc).__module__ or "")
        exc = exc.__cause__ or exc.__context__
    return files


def friendly_error(exc: BaseException) -> str:
    """One sentence for the user about what failed; never a traceback."""
    from shopdesk.output import UserError
    from tools.errors import NotFoundError, PolicyError

    if isinstance(exc, (UserError, NotFoundError, PolicyError)):
        return str(exc)
    where = " ".join(_frames(exc)).replace("\\", "/")
    if "chromadb" in where:
        return "The product search index is unreachable right now, so I cannot search products or reviews. Please try again later."
    if any(k in where for k in ("sqlalchemy", "psycopg", "sqlite3")):
        return "The shop database is unreachable right now. Please try again in a moment."
    if any(k in where for k in ("openai", "httpx", "httpcore", "requests", "urllib3")) or isinstance(exc, ConnectionError):
        return "The language model server is unreachable right now. Please try again in a moment."
    return "Sorry, something went wrong while answering. Please try again, or ask to talk to a human."


def run_turn(view: ChatView, message: str, handoff: bool = False):
    """Send `message` (with `handoff`: transfer to a human directly) and update `view` event by event; yields
    after every visible change."""
    if not view._busy.acquire(blocking=False):  # e.g. a button pressed while a reply still streams
        view.add_user(message)
        view.say("I am still answering your previous message; please send this again when I am done.")
        yield
        return
    try:
        view.add_user(message)
        view.awaiting_confirm = False
        yield
        if view.session is None:
            view.say("Please sign in first.")
            yield
            return
        try:
            events = view.session.hand_off(message) if handoff else view.session.respond(message)
            for event in events:
                view.apply(event)
                yield event
        except Exception as exc:  # the boundary: log the bug, tell the user in one sentence
            log.exception("turn failed")
            view.finish_pending()
            view.say(friendly_error(exc))
            yield
    finally:
        view._busy.release()
