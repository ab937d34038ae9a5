"""The agent loop: one chat session of a signed-in customer or marketer with role-scoped tools.

    session = open_session(settings, "customer", "james_li_5688")
    for event in session.respond("Where is my order #W2611340?"):
        print(event.kind, event.text)

The loop is plain code around a LangChain chat model (`bind_tools`): validation of every call against its schema
(one corrective retry), confirmation of writes in the next user turn (executed by code, never by the model),
grounding of the final answer, and a log of every turn in the store.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from agent.api import AgentEvent
from agent.backends import LocalChatModel, describe, make_chat_model
from agent.grounding import Facts, faithful_answer, is_chinese, problems, render
from agent.parsing import OPEN
from agent.toolspec import ToolSpec, tool_spec
from shopdesk.output import UserError, to_jsonable
from shopdesk.settings import Settings
from store.db import Store
from tools.context import ShopContext
from tools.errors import ToolError, ToolInputError

log = logging.getLogger(__name__)

MAX_TOOL_STEPS = 4
HISTORY_MESSAGES = 16

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

_YES = re.compile(
    r"^(yes|y|yeah|yep|sure|ok|okay|confirm|confirmed|go ahead|please do|do it|proceed|correct|that's right|"
    r"是|是的|确认|确定|好的|好|可以|对|行|没问题)\b",
    re.I,
)
_NO = re.compile(r"\b(no|not|don't|dont|cancel that|stop|wait)\b|不|别|取消吧", re.I)


def is_confirmation(message: str) -> bool:
    """Does the customer's reply confirm the pending action (yes / confirm / ok / 是 / 确认 / 好的 ...)?"""
    text = message.strip().lower()
    if not text or _NO.search(text):
        return False
    return bool(_YES.match(text)) or text in {"是", "确认", "好的", "好", "可以", "对", "行"}


def _orders_module():
    try:
        import tools.orders as orders
    except ImportError:
        return None
    return orders


def _is_write_tool(name: str) -> bool:
    orders = _orders_module()
    if orders is not None and hasattr(orders, "is_write_tool"):
        return bool(orders.is_write_tool(name))
    return name.startswith(("cancel_", "modify_", "return_", "exchange_"))


class AgentSession:
    """A conversation with memory; `respond()` runs one turn and yields AgentEvents (see agent.api)."""

    def __init__(self, *, ctx: ShopContext, model: BaseChatModel, specs: list[ToolSpec], conversation_id: str,
                 max_steps: int = MAX_TOOL_STEPS, channel: str = "chat", log_turns: bool = True):
        self.ctx = ctx
        self.role = ctx.role
        self.customer_id = ctx.customer_id
        self.conversation_id = conversation_id
        self.model = model
        self.specs = {s.name: s for s in specs}
        self.bound = model.bind_tools([s.openai() for s in specs]) if specs else model
        self.max_steps = max_steps
        self.system = SystemMessage(SYSTEM_PROMPTS[ctx.role])
        self.history: list[BaseMessage] = []
        self.facts = Facts()
        self.all_results: list[tuple[str, Any]] = []
        self.channel = channel
        self.log_turns = log_turns
        self.stats = {"grounding_replacements": 0, "invalid_calls": 0}
        self._seq = 0
        self._backend = describe(model)
        if log_turns:
            self._start_conversation()

    # -- public API (agent.api.ChatSession) ------------------------------------------------------------------

    def describe_backend(self) -> dict[str, Any]:
        return dict(self._backend, tools=sorted(self.specs))

    def respond(self, message: str) -> Iterator[AgentEvent]:
        start = time.perf_counter()
        turn: list[BaseMessage] = [HumanMessage(message)]
        meta: dict[str, Any] = {"grounding_replaced": False, "steps": 0}
        final: AgentEvent | None = None
        try:
            if self.ctx.pending_action is not None:
                if is_confirmation(message):
                    final = yield from self._run_pending(turn)
                else:
                    self._discard_pending()
            if final is None:
                final = yield from self._loop(turn, message, meta)
        except ToolError as exc:  # a confirmed write refused by policy on re-check
            final = AgentEvent(kind="final", text=str(exc))
            turn.append(AIMessage(final.text))
        meta["latency_s"] = round(time.perf_counter() - start, 3)
        final.meta.update(meta)
        final.data = dict(final.data or {}, grounding_replaced=meta["grounding_replaced"])
        self.history.extend(turn)
        if self.log_turns:
            self._log_turn(turn, meta)
        yield final

    def hand_off(self, message: str = "Please transfer me to a human agent.") -> Iterator[AgentEvent]:
        """Transfer to a human now, without asking the model: calls transfer_to_human with a summary built from
        the conversation, logs the turn like any other, and yields the same events as a model-made handoff."""
        from tools.handoff import transfer_to_human

        start = time.perf_counter()
        spec = self.specs.get("transfer_to_human") or tool_spec(transfer_to_human)
        args = {"summary": self.handoff_summary(message)}
        call_id = _new_id()
        turn: list[BaseMessage] = [HumanMessage(message),
                                   AIMessage("", tool_calls=[{"name": spec.name, "args": args, "id": call_id,
                                                              "type": "tool_call"}])]
        meta: dict[str, Any] = {"direct_handoff": True, "grounding_replaced": False, "steps": 0}
        yield AgentEvent(kind="tool_call", name=spec.name, arguments=args, call_id=call_id, meta={"direct": True})
        final = yield from self._run_tool(spec, args, call_id, turn, [])
        if final is None:  # the tool refused (it never does for a non-empty summary); say so rather than go quiet
            final = AgentEvent(kind="final", text="Sorry, I could not reach a human agent. Please try again.")
            turn.append(AIMessage(final.text))
        log.info("direct handoff of conversation %s", self.conversation_id)
        meta["latency_s"] = round(time.perf_counter() - start, 3)
        final.meta.update(meta)
        final.data = dict(final.data or {}, grounding_replaced=False)
        self.history.extend(turn)
        if self.log_turns:
            self._log_turn(turn, meta)
        yield final

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
            pending = self.ctx.pending_action.get("summary") or self.ctx.pending_action.get("tool")
            parts.append(f"Awaiting their confirmation: {pending}")
        return " ".join(parts)

    # -- the loop ---------------------------------------------------------------------------------------------

    def _prompt(self, turn: list[BaseMessage]) -> list[BaseMessage]:
        past = self.history[-HISTORY_MESSAGES:]
        while past and not isinstance(past[0], HumanMessage):  # never start mid tool exchange
            past = past[1:]
        return [self.system, *past, *turn]

    def _call_model(self, turn: list[BaseMessage]) -> Iterator[AgentEvent | AIMessage]:
        merged: AIMessageChunk | None = None
        for chunk in self.bound.stream(self._prompt(turn)):
            merged = chunk if merged is None else merged + chunk
            if isinstance(chunk.content, str) and chunk.content:
                yield AgentEvent(kind="text", text=chunk.content)
        if merged is None:
            yield AIMessage(content="")
            return
        content = merged.content if isinstance(merged.content, str) else ""
        if not merged.tool_calls and not merged.invalid_tool_calls and OPEN in content:
            # a server-side parser (vLLM hermes) leaves a malformed call as text: read it the same way as locally
            yield LocalChatModel.to_message(content)
            return
        yield AIMessage(content=content.strip(), tool_calls=merged.tool_calls,
                        invalid_tool_calls=merged.invalid_tool_calls, response_metadata=merged.response_metadata)

    def _loop(self, turn: list[BaseMessage], user_text: str, meta: dict[str, Any]):
        results: list[tuple[str, Any]] = []
        retried = False
        for step in range(self.max_steps + 1):
            ai = None
            for item in self._call_model(turn):
                if isinstance(item, AgentEvent):
                    yield item
                else:
                    ai = item
            meta["steps"] = step + 1
            calls = list(ai.tool_calls)
            invalid = [(tc.get("name") or "", tc.get("args"), tc.get("error") or "malformed call", tc.get("id"))
                       for tc in ai.invalid_tool_calls]
            if not calls and not invalid:
                return self._final(ai.content, results, user_text, turn, meta)
            if step == self.max_steps:
                break
            checked, errors = [], []
            for tc in calls:
                spec = self.specs.get(tc["name"])
                if spec is None:
                    errors.append((tc, f"unknown tool {tc['name']!r}; use one of: {', '.join(self.specs)}"))
                    continue
                # small models (and servers that constrain only the call envelope) add keys the tool does not
                # have; they carry nothing the tool would use (identity comes from ctx), so they are dropped
                args, dropped = spec.drop_undeclared(tc["args"])
                if dropped:
                    log.warning("dropped undeclared argument(s) %s of a %s call", ", ".join(dropped), spec.name)
                    meta.setdefault("dropped_arguments", []).append({"tool": spec.name, "keys": dropped})
                try:
                    checked.append((tc, spec, spec.validate(args)))
                except ValueError as exc:
                    ignored = f" (undeclared argument(s) ignored: {', '.join(dropped)})" if dropped else ""
                    errors.append((tc, str(exc) + ignored))
            for name, args, error, call_id in invalid:
                errors.append(({"name": name or "invalid", "args": {}, "id": call_id or _new_id()}, error))
            if errors:
                self.stats["invalid_calls"] += len(errors)
                meta["invalid_calls"] = meta.get("invalid_calls", 0) + len(errors)
                if retried:
                    text = ("抱歉,我没能处理这个请求。请换个说法,或要求转人工客服。" if is_chinese(user_text) else
                            "Sorry, I could not process that request. Could you rephrase it, or ask for a human agent?")
                    turn.append(AIMessage(text))
                    return AgentEvent(kind="final", text=text)
                retried = True  # one corrective retry: the model sees what was wrong; no tool runs this step
                bad = [{"name": tc["name"], "args": tc["args"] if isinstance(tc["args"], dict) else {},
                        "id": tc["id"] or _new_id(), "type": "tool_call"} for tc, _ in errors]
                good = [{"name": tc["name"], "args": tc["args"], "id": tc["id"], "type": "tool_call"}
                        for tc, _, _ in checked]
                turn.append(AIMessage(ai.content, tool_calls=bad + good))
                for (tc, err), b in zip(errors, bad):
                    turn.append(ToolMessage(f"error: {err}. Call the tool again with valid arguments.",
                                            tool_call_id=b["id"], name=tc["name"]))
                for tc, _, _ in checked:
                    turn.append(ToolMessage("not run: fix the invalid call first", tool_call_id=tc["id"],
                                            name=tc["name"]))
                continue
            turn.append(AIMessage(ai.content, tool_calls=[dict(tc, args=args) for tc, _, args in checked]))
            for tc, spec, args in checked:
                yield AgentEvent(kind="tool_call", name=spec.name, arguments=args, call_id=tc["id"])
                outcome = yield from self._run_tool(spec, args, tc["id"], turn, results)
                if outcome is not None:
                    return outcome
        meta["max_steps_reached"] = True
        text = faithful_answer(results, user_text)
        turn.append(AIMessage(text))
        return AgentEvent(kind="final", text=text)

    def _run_tool(self, spec: ToolSpec, args: dict, call_id: str, turn: list[BaseMessage],
                  results: list[tuple[str, Any]]):
        had_pending = self.ctx.pending_action is not None
        try:
            result = spec(self.ctx, args)
        except ToolError as exc:
            text = f"error: {exc}"
            if not isinstance(exc, ToolInputError):  # a refusal or not-found is the faithful answer if the model errs
                results.append((spec.name, str(exc)))
            turn.append(ToolMessage(text, tool_call_id=call_id, name=spec.name))
            yield AgentEvent(kind="tool_result", name=spec.name, call_id=call_id, text=text,
                             data={"error": str(exc), "type": type(exc).__name__})
            return None
        except PermissionError as exc:
            text = f"error: not allowed ({exc})"
            turn.append(ToolMessage(text, tool_call_id=call_id, name=spec.name))
            yield AgentEvent(kind="tool_result", name=spec.name, call_id=call_id, text=text, data={"error": str(exc)})
            return None
        text = render(result)
        data = to_jsonable(result)
        turn.append(ToolMessage(text, tool_call_id=call_id, name=spec.name))
        yield AgentEvent(kind="tool_result", name=spec.name, call_id=call_id, text=text, data=data)
        if self.ctx.pending_action is not None and (not had_pending or _is_write_tool(spec.name)):
            summary = getattr(result, "summary", None) or self.ctx.pending_action.get("summary") or text
            yield AgentEvent(kind="confirm", name=spec.name, text=summary, data=to_jsonable(self.ctx.pending_action))
            turn.append(AIMessage(summary))
            return AgentEvent(kind="final", text=summary, data={"awaiting_confirmation": True})
        self.facts.add(result)
        results.append((spec.name, result))
        self.all_results.append((spec.name, result))
        if spec.name == "transfer_to_human":
            summary = getattr(result, "summary", None) or text
            yield AgentEvent(kind="handoff", name=spec.name, text=summary, data=data)
            answer = getattr(result, "message", None) or text
            turn.append(AIMessage(answer))
            return AgentEvent(kind="final", text=answer, data={"handoff": True})
        return None

    def _final(self, answer: str, results: list[tuple[str, Any]], user_text: str, turn: list[BaseMessage],
               meta: dict[str, Any]) -> AgentEvent:
        found = problems(answer, self.facts)
        if not answer.strip():
            found = found or ["empty answer"]
        if found:
            meta["grounding_replaced"] = True
            meta["grounding_problems"] = found
            self.stats["grounding_replacements"] += 1
            log.info("grounding replaced an answer: %s", "; ".join(found))
            recent = results or self._last_results()
            answer = faithful_answer(recent, user_text)
        turn.append(AIMessage(answer))
        return AgentEvent(kind="final", text=answer)

    def _last_results(self) -> list[tuple[str, Any]]:
        return self.all_results[-1:]

    # -- confirmation -----------------------------------------------------------------------------------------

    def _run_pending(self, turn: list[BaseMessage]):
        orders = _orders_module()
        if orders is None or not hasattr(orders, "execute_pending_action"):
            raise RuntimeError("tools.orders.execute_pending_action is missing: writes cannot be confirmed")
        pending = self.ctx.pending_action or {}
        name = pending.get("tool") or pending.get("name") or "pending_action"
        call_id = _new_id()
        yield AgentEvent(kind="tool_call", name=name, arguments=pending.get("arguments"), call_id=call_id,
                         meta={"confirmed": True})
        self.ctx.confirmed = True
        try:
            result = orders.execute_pending_action(self.ctx)
        finally:
            self.ctx.confirmed = False
            self.ctx.pending_action = None
        text = render(result)
        self.facts.add(result)
        yield AgentEvent(kind="tool_result", name=name, call_id=call_id, text=text, data=to_jsonable(result))
        turn.append(AIMessage(text))
        return AgentEvent(kind="final", text=text, data={"executed": name})

    def _discard_pending(self) -> None:
        orders = _orders_module()
        if orders is not None and hasattr(orders, "discard_pending_action"):
            orders.discard_pending_action(self.ctx)
        self.ctx.pending_action = None
        self.ctx.confirmed = False

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

    def _log_turn(self, turn: list[BaseMessage], meta: dict[str, Any]) -> None:
        from store.models import Message

        now = _now()
        info = {"backend": self._backend.get("backend"), "model": self._backend.get("model"),
                "adapter": self._backend.get("adapter")}
        with self.ctx.store.transaction() as s:
            for i, m in enumerate(turn):
                row = Message(conversation_id=self.conversation_id, seq=self._seq, created_at=now,
                              role=_role(m), content=m.content if isinstance(m.content, str) else json.dumps(m.content))
                if isinstance(m, AIMessage) and m.tool_calls:
                    row.tool_calls = [{"id": tc["id"], "name": tc["name"], "arguments": tc["args"]} for tc in m.tool_calls]
                if isinstance(m, ToolMessage):
                    row.tool_call_id = m.tool_call_id
                    row.name = m.name
                if i == len(turn) - 1:
                    row.meta = dict(info, **to_jsonable(meta))
                s.add(row)
                self._seq += 1


def _role(m: BaseMessage) -> str:
    return {"human": "user", "ai": "assistant", "tool": "tool", "system": "system"}.get(m.type, m.type)


def _from_row(m) -> BaseMessage:
    if m.role == "user":
        return HumanMessage(m.content)
    if m.role == "tool":
        return ToolMessage(m.content, tool_call_id=m.tool_call_id or "", name=m.name)
    calls = [{"id": tc["id"], "name": tc["name"], "args": tc["arguments"], "type": "tool_call"} for tc in m.tool_calls or []]
    return AIMessage(m.content, tool_calls=calls)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _new_id() -> str:
    return "call_" + uuid.uuid4().hex[:12]


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
) -> AgentSession:
    """A chat session for a signed-in `role` (customer sessions need `customer_id`: an id or email)."""
    from tools.registry import tool_functions

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
    ctx = ShopContext(store=store, settings=settings, role=role, customer_id=customer_id)  # type: ignore[arg-type]
    conversation_id = conversation_id or uuid.uuid4().hex
    ctx.conversation_id = conversation_id
    specs = [tool_spec(fn) for fn in (tools if tools is not None else tool_functions(role))]
    model = model if model is not None else make_chat_model(settings, adapter=adapter)
    return AgentSession(ctx=ctx, model=model, specs=specs, conversation_id=conversation_id, channel=channel,
                        log_turns=log_turns)
