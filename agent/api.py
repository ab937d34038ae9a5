"""The agent as the UI sees it: a chat session that turns one user message into a stream of events.

The UI (and the eval harness) depend only on this module; how the agent works inside is agent/'s business.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

EventKind = Literal["text", "status", "tool_call", "tool_result", "confirm", "handoff", "final", "error"]


@dataclass
class AgentEvent:
    """One step of a turn.

    - text: a streamed piece of text (reserved: replies are rendered by code from results, so none stream today).
    - status: the turn waits for the model, which is answering other conversations (`data["ahead"]`: how many) or
      still starting after a restart (`data["starting"]`: True).
    - tool_call: the agent calls `name` with `arguments` (`call_id` links the result).
    - tool_result: what the tool returned (`data` is the typed result as JSON, `text` its rendering).
    - confirm: a write waits for the customer's yes/no (`text` states the exact action, `data` the action).
    - handoff: the conversation goes to a human (`text` is the summary for them).
    - final: the turn's reply (`text`), rendered from the turn's tool results; `meta["model_text_dropped"]` says why
      the model's own words were left out, when they were.
    - error: something the user should know went wrong (`text` is a clear sentence, never a traceback).
    """

    kind: EventKind
    text: str = ""
    name: str | None = None
    arguments: dict[str, Any] | None = None
    call_id: str | None = None
    data: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


class ChatSession(Protocol):
    """A conversation of one signed-in person with the agent; keeps its own memory."""

    role: str
    customer_id: str | None
    conversation_id: str

    def respond(self, message: str) -> Iterator[AgentEvent]:
        """Run one turn for `message`, yielding events; the last one is `final` (or `error`)."""
        ...

    def hand_off(self, message: str) -> Iterator[AgentEvent]:
        """Transfer to a human at once (the UI's button), whatever the model would do; yields tool_call,
        tool_result, handoff and final events, and logs the turn with `message` as the user's.
        """
        ...

    def describe_backend(self) -> dict[str, Any]:
        """Which backend, model and adapter answer (shown in the UI)."""
        ...

    @property
    def pending(self) -> Any:
        """The write waiting for the customer's explicit yes (tools.context.PendingAction), or None."""
        ...

    @property
    def handed_off(self) -> bool:
        """True once the conversation went to a human: the bot answers no more (respond() says a person will reply)."""
        ...

    def confirm(self) -> Iterator[AgentEvent]:
        """Carry out the pending write (the UI's Confirm button): code re-checks the policy and writes; yields
        tool_call, tool_result and final events. With nothing pending, one final event says so.
        """
        ...

    def decline(self) -> Iterator[AgentEvent]:
        """Drop the pending write (the UI's Cancel button); yields one final event. The next message is answered
        as a new question.
        """
        ...
