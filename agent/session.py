"""A chat session of a signed-in customer or marketer with role-scoped tools: memory, turn log, public API.

    session = open_session(settings, "customer", "james_li_5688")
    for event in session.respond("Where is my order #W2611340?"):
        print(event.kind, event.text)

Each turn runs through the LangGraph turn graph (agent/graph.py): the model chooses the tool and its arguments under a
grammar (agent/grammar.py, with this conversation's ids as enums: agent/enums.py), code renders the reply from the
results, and a proposed write waits for `confirm()` or `decline()`. The session is the graph's context and holds what
lasts between turns.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from agent.api import AgentEvent
from agent.backends import describe, make_chat_model
from agent.enums import session_enums
from agent.focus import WHOLE_REPLY
from agent.graph import recursion_limit, turn_graph
from agent.toolspec import ToolSpec, tool_spec
from shopdesk.output import UserError, to_jsonable
from shopdesk.settings import Settings
from store.db import Store
from store.supportstats import CONFIRM_MESSAGE, DECLINE_MESSAGE
from tools.context import PendingAction, ShopContext
from tools.results import Lang, lang_of

if TYPE_CHECKING:
    from agent.backends import ModelCache
    from index.shared import IndexRegistry

log = logging.getLogger(__name__)

MAX_TOOL_STEPS = 4
HISTORY_TURNS = 2  # finished turns the model sees (their question and the rendered reply): enough for a follow-up
# What the model reads of an earlier reply: its first lines say what it answered (the order, the table's heading and
# first rows). A marketer's whole table runs to thousands of tokens, and the model would prefill it again every turn.
HISTORY_REPLY_CHARS = 800

SYSTEM_PROMPTS = {
    "customer": (
        "You are the shop's support assistant, talking with a signed-in customer. "
        "Look facts up with the tools; never guess order ids, statuses, amounts or dates. "
        "Order changes are confirmed by the customer before they happen. "
        "If you cannot help, transfer to a human. Reply briefly, in the customer's language."
    ),
    "marketer": (
        "You are the shop's marketing analyst assistant. Use the tools for segments, churn, customer value and "
        "reviews; quote numbers only from tool results, with their as-of date. Reply briefly, in the user's language."
    ),
}

class AgentSession:
    """A conversation with memory; `respond()` runs one turn through the turn graph (agent.graph) and yields
    AgentEvents (see agent.api).
    """

    # After a look-up whose result answers a message that asked for no change, the reply is the rendering: the model
    # is not called again only to write words that would be cut (issue 15: one model call per such turn).
    one_call_after_read = True

    def __init__(self, *, ctx: ShopContext, model: BaseChatModel, specs: list[ToolSpec], conversation_id: str,
                 max_steps: int = MAX_TOOL_STEPS, channel: str = "chat", log_turns: bool = True):
        self.ctx = ctx
        self.role = ctx.role
        self.customer_id = ctx.customer_id
        self.conversation_id = conversation_id
        self.model = model
        self.specs = {s.name: s for s in specs}
        self.tools = [s.openai() for s in specs]
        self.max_steps = max_steps
        self.system = SystemMessage(SYSTEM_PROMPTS[ctx.role])
        self.history: list[BaseMessage] = []  # every message of the conversation (the log, the handoff summary)
        self.turns: list[tuple[BaseMessage, BaseMessage]] = []  # (question, rendered reply) of finished turns
        self.all_results: list[tuple[str, Any]] = []
        self.lang: Lang = "en"
        self.channel = channel
        self.log_turns = log_turns
        self.stats = {"model_text_dropped": 0, "model_text_cut": 0, "invalid_calls": 0}
        self._handed_off = False
        self._seq = 0
        self._backend = describe(model)
        self._catalog_names: list[str] | None = None
        if log_turns:
            self._start_conversation()

    # -- public API (agent.api.ChatSession) ------------------------------------------------------------------

    def describe_backend(self) -> dict[str, Any]:
        return dict(self._backend, tools=sorted(self.specs))

    @property
    def pending(self) -> PendingAction | None:
        return self.ctx.pending_action

    @property
    def handed_off(self) -> bool:
        return self._handed_off

    def respond(self, message: str) -> Iterator[AgentEvent]:
        self.lang = lang_of(message) if message.strip() else self.lang
        return self._turn(message, None)

    def confirm(self) -> Iterator[AgentEvent]:
        return self._turn(CONFIRM_MESSAGE, "confirm")

    def decline(self) -> Iterator[AgentEvent]:
        return self._turn(DECLINE_MESSAGE, "decline")

    def hand_off(self, message: str = "Please transfer me to a human agent.") -> Iterator[AgentEvent]:
        """Transfer to a human now, without asking the model: calls transfer_to_human with a summary built from
        the conversation, logs the turn like any other, and yields the same events as a model-made handoff.
        """
        return self._turn(message, "handoff")

    def handoff_summary(self, request: str) -> str:
        """What the human agent reads: who, what they asked (their latest messages), what the tools did."""
        who = f"Customer {self.customer_id}" if self.customer_id else f"A {self.role}"
        asked = [m.content for m in self.history if isinstance(m, HumanMessage) and isinstance(m.content, str)]
        parts = [f"{who} asked for a human agent ({request.strip()})."]
        if asked:
            parts.append("Their messages: " + " | ".join(f'"{t.strip()}"' for t in asked[-5:]) + ".")
        else:
            parts.append("They had not asked anything yet.")
        done = []
        for m in self.history:
            for tc in getattr(m, "tool_calls", None) or []:
                shown = ", ".join(f"{k}={v}" for k, v in (tc.get("args") or {}).items() if k != "summary")
                done.append(f"{tc['name']}({shown})")
        if done:
            parts.append("Tools used: " + "; ".join(done[-8:]) + ".")
        if self.ctx.pending_action:
            parts.append(f"Awaiting their confirmation: {self.ctx.pending_action.summary}")
        return " ".join(parts)

    # -- what the turn graph uses -----------------------------------------------------------------------------

    def _turn(self, message: str, action: str | None) -> Iterator[AgentEvent]:
        state = {"user_text": message, "action": action, "lang": self.lang, "started": time.perf_counter(),
                 "messages": [HumanMessage(message)], "results": [], "meta": {"steps": 0}, "path": [],
                 "forced": False, "final": None}
        yield from turn_graph().stream(state, context=self, stream_mode="custom",
                                       config={"recursion_limit": recursion_limit(self.max_steps)})

    def prompt(self, turn: list[BaseMessage]) -> list[BaseMessage]:
        """What the model sees: the system turn, the last finished turns as question and rendered reply (their tool
        exchanges left out, so an old task does not steer a new one), this turn.
        """
        past = [m for question, reply in self.turns[-HISTORY_TURNS:] for m in (question, _first_lines(reply))]
        return [self.system, *past, *turn]

    def bound_for_turn(self, force_tool: bool = False, typed: str = "", first: bool = False) -> BaseChatModel:
        """The model with the role's tools, generation constrained to calls whose arguments come from this
        conversation's values (agent.enums) where a tool takes an id, name or category; `typed` is this turn's
        message (not in the history until the turn ends), whose ids count as typed. On the turn's `first` model call
        a message that asks for a look-up (agent.grammar.CALL_FIRST) allows only a call.
        """
        if not self.tools:
            return self.model
        from agent.grammar import CALL_FIRST, bind_constrained

        enums = session_enums(self, typed)
        call_first = any(enums.pop(CALL_FIRST, ()))
        return bind_constrained(self.model, self.tools, enums,
                                tool_choice="required" if force_tool or (first and call_first) else None)

    def may_write(self, typed: str = "") -> bool:
        """Whether the turn's next model call may act on what was looked up: a tool that changes an order, offered only
        when the person asked for that change (agent.enums NOT_ASKED), or a marketer's retention offer, when the
        message asks for one ("rank the at-risk customers and draft them an offer"). Otherwise a look-up's result is
        the answer, with no call after it.
        """
        from agent.enums import asks_for_offer
        from agent.grammar import CALL_FIRST, constrained_tools
        from tools.orders import is_write_tool

        if self.role == "marketer" and asks_for_offer(typed):
            return True
        enums = session_enums(self, typed)
        enums.pop(CALL_FIRST, None)
        return any(is_write_tool(t["function"]["name"]) for t in constrained_tools(self.tools, enums))

    def note_result(self, tool: str, result: Any) -> None:
        """A tool result of this conversation (its ids become valid arguments of later calls)."""
        self.all_results.append((tool, result))
        if tool == "transfer_to_human":
            self._handed_off = True

    def catalog_names(self) -> list[str]:
        """Product names and categories of the shop: model text naming one states a fact and is dropped."""
        if self._catalog_names is None:
            from sqlalchemy import select

            from store.models import Product

            with self.ctx.store.read() as s:
                rows = s.execute(select(Product.name, Product.category, Product.brand)).all()
            self._catalog_names = sorted({n for row in rows for n in row if n}, key=len, reverse=True)
        return self._catalog_names

    def remember(self, turn: list[BaseMessage], meta: dict[str, Any]) -> None:
        """Add a finished turn to the memory and, unless disabled, to the store's log."""
        self.history.extend(turn)
        last = next((m for m in reversed(turn) if isinstance(m, AIMessage) and not m.tool_calls), None)
        if last is not None and isinstance(turn[0], HumanMessage):
            self.turns.append((turn[0], AIMessage(last.additional_kwargs.get(WHOLE_REPLY, last.content))))
        if self.log_turns:
            self._log_turn(turn, meta)

    # -- turn log ---------------------------------------------------------------------------------------------

    def _start_conversation(self) -> None:
        from store.models import Conversation

        with self.ctx.store.transaction() as s:
            conv = s.get(Conversation, self.conversation_id)
            if conv is None:
                s.add(Conversation(id=self.conversation_id, role=self.role, customer_id=self.customer_id,
                                   started_at=_now(), channel=self.channel))
            else:
                self._seq = max((m.seq for m in conv.messages), default=-1) + 1
                self.history = [_from_row(m) for m in conv.messages if m.role != "system"]
                self.turns = _turns(self.history)
                self._handed_off = conv.outcome == "handed_off"

    def _log_turn(self, turn: list[BaseMessage], meta: dict[str, Any]) -> None:
        from sqlalchemy import func, select

        from store.models import Message

        now = _now()
        info = {"backend": self._backend.get("backend"), "model": self._backend.get("model"),
                "adapter": self._backend.get("adapter")}
        with self.ctx.store.transaction() as s:
            # staff replies (the handoff inbox) are logged in the same conversation: continue after the last row
            last = s.scalar(select(func.max(Message.seq)).where(Message.conversation_id == self.conversation_id))
            self._seq = max(self._seq, -1 if last is None else last + 1)
            for i, m in enumerate(turn):
                row = Message(conversation_id=self.conversation_id, seq=self._seq, created_at=now,
                              role=_role(m), content=m.content if isinstance(m.content, str) else json.dumps(m.content))
                if isinstance(m, AIMessage) and m.tool_calls:
                    row.tool_calls = [{"id": tc["id"], "name": tc["name"], "arguments": tc["args"]}
                                      for tc in m.tool_calls]
                if isinstance(m, ToolMessage):
                    row.tool_call_id = m.tool_call_id
                    row.name = m.name
                if i == len(turn) - 1:
                    row.meta = dict(info, **to_jsonable(meta))
                s.add(row)
                self._seq += 1


def _first_lines(reply: BaseMessage, limit: int = HISTORY_REPLY_CHARS) -> BaseMessage:
    """`reply` cut after its last whole line within `limit` characters (a first line longer than that is cut at
    `limit`); a shorter reply is returned as it is.
    """
    text = reply.content if isinstance(reply.content, str) else ""
    if len(text) <= limit:
        return reply
    cut = text.rfind("\n", 0, limit + 1)
    return AIMessage(text[: cut if cut > 0 else limit].rstrip())


def _turns(history: list[BaseMessage]) -> list[tuple[BaseMessage, BaseMessage]]:
    """(question, reply) pairs of a logged conversation: each user message and the last plain reply after it."""
    pairs: list[tuple[BaseMessage, BaseMessage]] = []
    question: BaseMessage | None = None
    reply: BaseMessage | None = None
    for m in [*history, HumanMessage("")]:
        if isinstance(m, HumanMessage):
            if question is not None and reply is not None:
                pairs.append((question, reply))
            question, reply = m, None
        elif isinstance(m, AIMessage) and not m.tool_calls:
            reply = AIMessage(m.content)
    return pairs


def _role(m: BaseMessage) -> str:
    return {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}.get(m.type, m.type)


def _from_row(m) -> BaseMessage:
    if m.role == "user":
        return HumanMessage(m.content)
    if m.role == "tool":
        return ToolMessage(m.content, tool_call_id=m.tool_call_id or "", name=m.name)
    calls = [{"id": tc["id"], "name": tc["name"], "args": tc["arguments"], "type": "tool_call"}
             for tc in m.tool_calls or []]
    return AIMessage(m.content, tool_calls=calls)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def resolve_customer(store: Store, customer: str) -> str:
    """A customer id from an id or an email; UserError if there is no such customer."""
    from sqlalchemy import select

    from store.models import Customer

    with store.read() as s:
        if s.get(Customer, customer) is not None:
            return customer
        found = s.scalars(select(Customer.id).where(Customer.email == customer)).first()
    if found is None:
        raise UserError(f"no customer with id or email {customer!r} in the store")
    return found


def warm_up(settings: Settings, models: ModelCache | None = None) -> dict[str, int]:
    """Load the chat model the sessions will use (into `models`) and, in-process, compute each role's fixed prompt
    prefix (its system text and tools), which every call of that role starts with: the first turns then reuse it
    instead of waiting for the load and a ~700-token prefill. Returns the tokens computed per role (empty when the
    model is served elsewhere, e.g. vLLM, whose own prefix caching does this).
    """
    from agent.backends import LocalChatModel

    if settings.llm_backend != "local":
        return {}
    model = make_chat_model(settings, models=models)
    if not isinstance(model, LocalChatModel):
        return {}
    computed = {}
    with model.loaded_models.warming(model.cache_key):  # a first turn meanwhile is told the assistant is starting
        for role, text in SYSTEM_PROMPTS.items():
            tools = [spec.openai() for spec in role_specs(role)]  # what AgentSession prompts with
            computed[role] = model.prefill(model.prompt_text([SystemMessage(text)], tools))
    return computed


def role_specs(role: str, tools: list[Callable] | None = None) -> list[ToolSpec]:
    """The tool specs a `role`'s sessions bind: `tools`, else the role's registered tools."""
    from tools.registry import tool_functions

    return [tool_spec(fn) for fn in (tools if tools is not None else tool_functions(role))]


def open_session(
    settings: Settings,
    role: str,
    customer_id: str | None = None,
    *,
    model: BaseChatModel | None = None,
    store: Store | None = None,
    conversation_id: str | None = None,
    tools: list[Callable] | None = None,
    adapter: str | None = None,
    channel: str = "chat",
    log_turns: bool = True,
    indexes: IndexRegistry | None = None,
    models: ModelCache | None = None,
) -> AgentSession:
    """A chat session for a signed-in `role` (customer sessions need `customer_id`: an id or email). `indexes` and
    `models`: the search indexes its tools use and the cache the chat model is loaded into (the owner's, shared among
    its sessions; default: the process's).
    """
    if role not in SYSTEM_PROMPTS:
        raise UserError(f"unknown role {role!r}; expected customer or marketer")
    if store is None:
        from store.db import open_store

        store = open_store(settings.db_url)
    if role == "customer":
        if not customer_id:
            raise UserError("a customer session needs the signed-in customer id")
        customer_id = resolve_customer(store, customer_id)
    else:
        customer_id = None
    shared = {} if indexes is None else {"indexes": indexes}
    ctx = ShopContext(store=store, settings=settings, role=role, customer_id=customer_id,  # type: ignore[arg-type]
                      **shared)
    conversation_id = conversation_id or uuid.uuid4().hex
    ctx.conversation_id = conversation_id
    specs = role_specs(role, tools)
    model = model if model is not None else make_chat_model(settings, adapter=adapter, models=models)
    return AgentSession(ctx=ctx, model=model, specs=specs, conversation_id=conversation_id, channel=channel,
                        log_turns=log_turns)
