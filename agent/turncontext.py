"""What the turn graph (agent/graph.py) and the per-turn enums (agent/enums.py) need from the session that runs them.

The session (agent.session.AgentSession) satisfies these protocols; naming them here, not the session class, keeps
the graph and the enums from importing the module that imports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import BaseMessage

    from agent.toolspec import ToolSpec
    from tools.context import Role, ShopContext


class Conversation(Protocol):
    """Who is talking and what the conversation holds so far: what the per-turn enums are built from."""

    ctx: ShopContext
    role: Role
    customer_id: str | None
    history: list[BaseMessage]  # every message of the conversation
    all_results: list[tuple[str, Any]]  # (tool name, result) of every call so far


class TurnContext(Conversation, Protocol):
    """The graph's runtime context: what lasts between turns, and the session's own steps that a turn uses."""

    conversation_id: str
    model: BaseChatModel
    specs: dict[str, ToolSpec]  # the role's tools by name
    max_steps: int
    stats: dict[str, int]
    one_call_after_read: bool  # a look-up that answers a question asking for no change ends the model's part

    @property
    def handed_off(self) -> bool:
        """True once a person took the conversation over."""
        ...

    def prompt(self, turn: list[BaseMessage]) -> list[BaseMessage]:
        """What the model sees for this turn's messages."""
        ...

    def bound_for_turn(self, force_tool: bool = False, typed: str = "") -> BaseChatModel:
        """The model with the role's tools, generation constrained to this conversation's values."""
        ...

    def may_write(self, typed: str = "") -> bool:
        """Whether the turn's next model call would be offered a tool that changes an order."""
        ...

    def catalog_names(self) -> list[str]:
        """Product names and categories of the shop."""
        ...

    def note_result(self, tool: str, result: Any) -> None:
        """Keep a tool result of this conversation."""
        ...

    def handoff_summary(self, request: str) -> str:
        """What the person taking over reads."""
        ...

    def remember(self, turn: list[BaseMessage], meta: dict[str, Any]) -> None:
        """Add a finished turn to the memory and the log."""
        ...
