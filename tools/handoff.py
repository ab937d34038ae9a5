"""Hand the conversation to a human agent, with a summary so the customer does not have to repeat themselves."""

from __future__ import annotations

from pydantic import BaseModel, Field

from store.models import Conversation
from store.tickets import open_ticket
from tools.context import ShopContext
from tools.errors import ToolInputError
from tools.results import Fact, Lang, in_customer_view, tr

HANDOFF_MESSAGE = "YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON."
HANDOFF_MESSAGE_ZH = "正在为您转接人工客服,请稍候。"
CUSTOMER_HANDOFF_MESSAGE = "I'm passing you to a person from our support team. Please hold on."
MAX_SUMMARY = 2000


class HandoffResult(BaseModel):
    summary: str = Field(description="what the human agent needs to know (written by the model: not shown as fact)")
    message: str = Field(HANDOFF_MESSAGE, description="what to tell the customer")
    recorded: bool = Field(description="whether the conversation was marked as handed off in the store")
    ticket: int | None = Field(None, description="the handoff queue's ticket number; for the person-facing note "
                                                 "only (the model's rendering leaves it out)")

    def render(self, lang: Lang = "en") -> str:
        # The model's copy keeps the transfer line of the transcripts it was tuned on; a customer reads a sentence.
        first = CUSTOMER_HANDOFF_MESSAGE if in_customer_view() else HANDOFF_MESSAGE
        return tr(lang, f"{first}\nA person from our support team will reply here; you don't need to "
                        f"repeat your request.",
                  f"{HANDOFF_MESSAGE_ZH}\n客服人员会在这里回复您,您无需重复您的问题。")

    def facts(self) -> list[Fact]:
        return []


def transfer_to_human(ctx: ShopContext, summary: str) -> HandoffResult:
    """Transfer the customer to a human agent when the request cannot be handled with the other tools.

    Args:
        summary: A short summary of the customer's request and what was already done.
    """
    if not isinstance(summary, str) or not summary.strip():
        raise ToolInputError("summary is empty: summarise the customer's request for the human agent.",
                             user="I can pass you to a person. Could you tell me briefly what you need help with?",
                             user_zh="我可以为您转接人工客服。能简单说一下您需要什么帮助吗?")
    summary = " ".join(summary.split())[:MAX_SUMMARY]
    recorded, ticket = False, None
    if ctx.conversation_id:
        with ctx.store.transaction() as s:
            conv = s.get(Conversation, ctx.conversation_id)
            if conv is not None:
                conv.outcome = "handed_off"
                ticket = open_ticket(s, conv.id, ctx.customer_id, summary).id
                recorded = True
    ctx.pending_action = None  # a human takes over; nothing proposed by the bot stays armed
    return HandoffResult(summary=summary, recorded=recorded, ticket=ticket)

