"""Hand the conversation to a human agent, with a summary so the customer does not have to repeat themselves."""

from __future__ import annotations

from pydantic import BaseModel, Field

from store.models import Conversation
from tools.context import ShopContext
from tools.errors import ToolInputError

HANDOFF_MESSAGE = "YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON."
MAX_SUMMARY = 2000


class HandoffResult(BaseModel):
    summary: str = Field(description="what the human agent needs to know")
    message: str = Field(HANDOFF_MESSAGE, description="what to tell the customer")
    recorded: bool = Field(description="whether the conversation was marked as handed off in the store")


def transfer_to_human(ctx: ShopContext, summary: str) -> HandoffResult:
    """Transfer the customer to a human agent when the request cannot be handled with the other tools.

    Args:
        summary: A short summary of the customer's request and what was already done.
    """
    if not isinstance(summary, str) or not summary.strip():
        raise ToolInputError("summary is empty: summarise the customer's request for the human agent.")
    summary = " ".join(summary.split())[:MAX_SUMMARY]
    recorded = False
    if ctx.conversation_id:
        with ctx.store.transaction() as s:
            conv = s.get(Conversation, ctx.conversation_id)
            if conv is not None:
                conv.outcome = "handed_off"
                recorded = True
    ctx.pending_action = None  # a human takes over; nothing proposed by the bot stays armed
    return HandoffResult(summary=summary, recorded=recorded)


def render_handoff(r: HandoffResult) -> str:
    return HANDOFF_MESSAGE
