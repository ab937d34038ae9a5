"""One turn of the agent as a LangGraph graph: the place to read which step follows which.

    START ─┬─ hand_off ─────────────────────────────────────────────┐  the UI's "talk to a human"
           ├─ after_handoff ────────────────────────────────────────┤  a person took over: the bot stays quiet
           ├─ execute_pending ──────────────────────────────────────┤  Confirm (button, or a typed yes)
           ├─ decline_pending ──────────────────────────────────────┤  Cancel (button, or a bare typed no)
           ├─ discard_pending ─┐                                    │  any other message drops the proposal
           └───────────────────┴─► model ─┬─► answer ───────────────┤  reply rendered from the turn's results
                                   ▲   ▲  ├─► out_of_steps ─────────┤
                                   │   │  └─► validate ─┬─► give_up ┤  a call outside the schema (no grammar)
                                   │   └──── tools ◄────┘           │
                                   └──── (answer: facts without a   │
                                          look-up → one forced call)│
                                              tools ─► (confirm / handoff) ─┴─► record ─► END
                                              tools ─► answer: look-ups that answer a message asking for no change
                                                       (the model is not called again only to be cut)

The model decides what to do (which tool, which arguments under the grammar); code states the facts: the reply is
the rendering of the turn's tool results (`result.render(lang)`), plus the model's own words only when they state no
fact (agent.grounding). The model's text is therefore not streamed; the person sees each step as it happens.

Every node is `fn(state, runtime)`; `runtime.context` is the session (agent.turncontext.TurnContext, which
agent.session.AgentSession satisfies), which holds what lasts between turns. The state holds only this turn. Events
reach the caller through LangGraph's custom stream: tool_call / tool_result / confirm / handoff as they happen, and
the final event last, from `record`, after the turn is logged.
"""

from __future__ import annotations

import functools
import logging
import operator
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agent.api import AgentEvent
from agent.backends import LocalChatModel
from agent.confirmation import is_confirmation, is_refusal
from agent.enums import WHICH_ORDER, session_enums
from agent.focus import WHOLE_REPLY, asked_parts
from agent.grounding import ASK_FIRST, GENERIC_FAILURE, ErrorResult, compose, render, states_fact
from agent.parsing import OPEN
from agent.toolspec import ToolSpec, tool_spec
from agent.turncontext import TurnContext
from shopdesk.output import to_jsonable
from tools.analytics.models import RetentionOfferDraft
from tools.errors import ToolError
from tools.orders import OrderDetails, OrderList, discard_pending_action, execute_pending_action, is_write_tool
from tools.results import Lang, customer_view

log = logging.getLogger(__name__)

DECLINED = {
    "en": "OK, I have not made that change. Is there anything else I can help with?",
    "zh": "好的,我没有做这项更改。还有什么可以帮您的吗?",
}
NOTHING_PENDING = {
    "en": "There is no change waiting for your confirmation.",
    "zh": "目前没有等待您确认的更改。",
}
WITH_A_PERSON = {
    "en": "A person from our team has this conversation now and will reply here. Your message is added for them.",
    "zh": "我们的客服人员已接手此对话,会在这里回复您。您的留言已转给他们。",
}
MAX_TEXT_CHARS = 160  # longer model text states facts or rambles: it would be dropped, so generation stops there
MODEL_TOOL_MESSAGE_CHARS = 1500  # what the model reads of a result; the person reads all of it


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {**old, **new}


class TurnState(TypedDict, total=False):
    user_text: str
    action: str | None  # "handoff" | "confirm" | "decline" (buttons), None for a typed message
    lang: Lang  # the language the reply is rendered in
    started: float  # perf_counter() at the start, for the turn's latency
    messages: Annotated[list[BaseMessage], operator.add]  # this turn's messages, the user's first
    results: Annotated[list[Any], operator.add]  # this turn's tool results (typed), rendered into the reply
    meta: Annotated[dict[str, Any], _merge]  # the turn's log entry (steps, invalid calls, dropped text, ...)
    path: Annotated[list[str], operator.add]  # the nodes run, in order (logged in meta)
    ai: AIMessage  # the model's latest reply
    checked: list[tuple[dict, ToolSpec, dict]]  # validated calls: (call, spec, arguments)
    errors: list[tuple[dict, str]]  # rejected calls and what was wrong
    forced: bool  # the model was asked once to look facts up instead of stating them
    answered: bool  # the step's look-ups answer the turn (no change asked for): the reply is their rendering
    final: AgentEvent | None  # set by the node that ends the turn


# -- routing ----------------------------------------------------------------------------------------------------


def route_start(state: TurnState, runtime: Runtime) -> str:
    """The first node of a turn: a button press, a reply to a pending action, or the model."""
    session = runtime.context
    action = state.get("action")
    if session.handed_off:
        return "after_handoff"
    if action == "handoff":
        return "hand_off"
    if action in ("confirm", "decline"):
        return "execute_pending" if action == "confirm" else "decline_pending"
    if session.ctx.pending_action is None:
        return "model"
    if is_confirmation(state["user_text"]):
        return "execute_pending"
    return "decline_pending" if is_refusal(state["user_text"]) else "discard_pending"


def route_model(state: TurnState, runtime: Runtime) -> str:
    """The node after the model: answer, stop for too many steps, or validate its tool calls."""
    ai = state["ai"]
    if not ai.tool_calls and not ai.invalid_tool_calls:
        return "answer"
    if state["meta"]["steps"] > runtime.context.max_steps:
        return "out_of_steps"
    return "validate"


def route_validate(state: TurnState, runtime: Runtime) -> str:
    """The node after validation: give up on invalid calls, or run the tools."""
    return "give_up" if state["errors"] else "tools"


def route_tools(state: TurnState, runtime: Runtime) -> str:
    """The node after the tools: record the turn if it ended, answer if the look-up answers it, else the model."""
    if state.get("final") is not None:
        return "record"
    return "answer" if state.get("answered") else "model"


def route_answer(state: TurnState, runtime: Runtime) -> str:
    """The node after the answer: record the turn if it ended, else back to the model."""
    return "record" if state.get("final") is not None else "model"


# -- nodes ------------------------------------------------------------------------------------------------------


def model(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """Ask the model what to do next. Its text is not streamed to the person: a reply is rendered by code."""
    session = runtime.context
    starting = _ask(session.model, "starting")  # asked first: binding the turn's grammar waits for the model's load
    if starting:  # the person sees the assistant is starting up, not a frozen chat
        get_stream_writer()(AgentEvent(kind="status", data={"starting": True}))
    bound = session.bound_for_turn(force_tool=bool(state.get("forced")) and not state["results"],
                                   typed=state["user_text"] if state.get("action") is None else "",
                                   first=state["meta"]["steps"] == 0)
    # Under the grammar the model writes plain text or one call, so text means "no call": after a result its words
    # are not needed (the rendering answers), and before one only a short sentence without facts could be shown.
    budget = 0 if state["results"] else MAX_TEXT_CHARS
    if not starting and (ahead := _ask(session.model, "busy")):  # the person sees they are queued
        get_stream_writer()(AgentEvent(kind="status", data={"ahead": ahead}))
    merged: AIMessageChunk | None = None
    cut = False
    stream = bound.stream(session.prompt(state["messages"]))
    names = session.catalog_names()
    fact = None
    for chunk in stream:
        merged = chunk if merged is None else merged + chunk
        text = merged.content if isinstance(merged.content, str) else ""
        if text and not merged.tool_call_chunks and (len(text.strip()) > budget
                                                     or (fact := _fact_so_far(text, names))):
            stream.close()  # stops generation (in-process) or the server's request (vLLM)
            cut = True
            break
    meta: dict[str, Any] = {"steps": state["meta"]["steps"] + 1}
    if cut:  # a cut text is no sentence to show: the reply is the rendering, or the model is asked to look it up
        meta["model_text_cut"] = True
        session.stats["model_text_cut"] += 1
        if fact:  # it would have been dropped for stating a fact: counted as dropped, as before the cut
            meta["model_text_dropped"] = fact
            session.stats["model_text_dropped"] += 1
            log.info("cut model text that states a fact (%s): %r", fact, merged.content[:200])
        return {"ai": AIMessage(content=""), "meta": meta}
    return {"ai": _reply(merged), "meta": meta}


def _ask(model: Any, name: str) -> Any:
    """An in-process model's `starting()` (still loading or warming up) or `busy()` (calls already decoding or
    waiting on it); 0 for a server, which queues itself.
    """
    method = getattr(model, name, None)
    return method() if callable(method) else 0


def _fact_so_far(text: str, names: Any) -> str | None:
    """Why the words written so far (the last, maybe unfinished, one left out) already state a fact, else None: the
    text would be dropped (agent.grounding.compose), so there is no need to let the model finish it.
    """
    done = text[: max(text.rfind(" "), text.rfind("\n"), 0)]
    return states_fact(done, names) if done else None


def _reply(merged: AIMessageChunk | None) -> AIMessage:
    if merged is None:
        return AIMessage(content="")
    content = merged.content if isinstance(merged.content, str) else ""
    if not merged.tool_calls and not merged.invalid_tool_calls and OPEN in content:
        # a server-side parser (vLLM hermes) leaves a malformed call as text: read it the same way as locally
        return LocalChatModel.to_message(content)
    return AIMessage(content=content.strip(), tool_calls=merged.tool_calls,
                     invalid_tool_calls=merged.invalid_tool_calls, response_metadata=merged.response_metadata)


def validate(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """Check every call against its tool's schema; an invalid call never reaches a tool. Under the grammar an invalid
    call cannot be generated; this is the backstop for backends without one.
    """
    session = runtime.context
    ai, meta = state["ai"], state["meta"]
    checked, errors = [], []
    for tc in ai.tool_calls:
        spec = session.specs.get(tc["name"])
        if spec is None:
            errors.append((tc, f"unknown tool {tc['name']!r}"))
            continue
        args, dropped = spec.drop_undeclared(tc["args"])
        if dropped:
            log.warning("dropped undeclared argument(s) %s of a %s call", ", ".join(dropped), spec.name)
        try:
            checked.append((tc, spec, spec.validate(args)))
        except ValueError as exc:
            errors.append((tc, str(exc)))
    for tc in ai.invalid_tool_calls:
        errors.append(({"name": tc.get("name") or "invalid", "args": {}, "id": tc.get("id") or _new_id()},
                       tc.get("error") or "malformed call"))
    update: dict[str, Any] = {}
    if errors:
        session.stats["invalid_calls"] += len(errors)
        update = {"invalid_calls": meta.get("invalid_calls", 0) + len(errors),
                  "invalid_call_errors": [f"{tc.get('name')}: {err}" for tc, err in errors]}
        log.warning("invalid tool call(s): %s", "; ".join(update["invalid_call_errors"]))
    return {"checked": checked, "errors": errors, "meta": update}


def give_up(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """An invalid call (only possible without a grammar): a plain sentence, never the validation error."""
    results = state["results"]
    text = "\n\n".join(dict.fromkeys(render(r, state["lang"]) for r in results)) if results else \
        GENERIC_FAILURE[state["lang"]]
    return {"messages": [AIMessage(text)], "final": AgentEvent(kind="final", text=text)}


def tools(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """Run the validated calls in order; a proposed write (confirm) or a handoff ends the turn."""
    session = runtime.context
    write = get_stream_writer()
    messages: list[BaseMessage] = [AIMessage(state["ai"].content,
                                             tool_calls=[dict(tc, args=args) for tc, _, args in state["checked"]])]
    results: list[Any] = []
    for tc, spec, args in state["checked"]:
        write(AgentEvent(kind="tool_call", name=spec.name, arguments=args, call_id=tc["id"]))
        outcome = call_tool(session, spec, args, tc["id"], write, state["lang"])
        messages.extend(outcome.messages)
        if outcome.result is not None:
            results.append(outcome.result)
        if outcome.final is not None:
            # what the turn found before the proposal or handoff is said too, then the proposal itself
            parts = asked_parts(state["user_text"])
            earlier = [render(r, state["lang"], parts=parts) for r in [*state["results"], *results]]
            outcome.final.text = "\n\n".join(dict.fromkeys([*earlier, outcome.final.text]))
            return {"messages": messages, "results": results, "final": outcome.final}
    if (order_id := _picked_order(session, state, results)) is not None:
        spec, call_id = session.specs["get_order_details"], _new_id()
        args = spec.validate({"order_id": order_id})
        messages.append(AIMessage("", tool_calls=[{"name": spec.name, "args": args, "id": call_id,
                                                   "type": "tool_call"}]))
        write(AgentEvent(kind="tool_call", name=spec.name, arguments=args, call_id=call_id))
        outcome = call_tool(session, spec, args, call_id, write, state["lang"])
        messages.extend(outcome.messages)
        results.append(outcome.result)
    if _answers(session, state, results):
        # the model's next call could only add a look-up nobody asked for or words that are cut (the reply is the
        # rendering): the turn is answered without it
        return {"messages": messages, "results": results, "ai": AIMessage(""), "answered": True}
    return {"messages": messages, "results": results}


def _picked_order(session: TurnContext, state: TurnState, results: list[Any]) -> str | None:
    """The order whose tracking, address, items or payment the question asks for, when this step listed the
    customer's orders and the question singles one out of them ("the tracking number of my latest delivered order",
    "Where is my order?" with one order on its way: OrderList.picked). The list holds none of those details, so the
    turn reads that order's details, the same look-up the model makes for an order it is told; otherwise None.
    """
    parts = asked_parts(state["user_text"])
    lists = [r for r in results if isinstance(r, OrderList)]
    if not lists or not parts & OrderDetails.PARTS or "get_order_details" not in session.specs:
        return None
    picked = lists[-1].picked(parts)
    if not picked or len(picked) != 1:
        return None
    looked_up = {r.order_id for r in [*state["results"], *results] if isinstance(r, OrderDetails)}
    return None if picked[0].order_id in looked_up else picked[0].order_id


def _shown_parts(results: list[Any], parts: frozenset[str]) -> frozenset[str]:
    """`parts`, and "detailed" when the one order a list's question singled out was looked up: the list then says
    only which order it is, and the order's details say the rest.
    """
    details = {r.order_id for r in results if isinstance(r, OrderDetails)}
    for r in results:
        if isinstance(r, OrderList) and (picked := r.picked(parts)) and len(picked) == 1 \
                and picked[0].order_id in details:
            return parts | {"detailed"}
    return parts


def _answers(session: TurnContext, state: TurnState, results: list[Any]) -> bool:
    """True when this step's look-ups answer the turn: all succeeded, and the person asked for no change (the next
    call would be offered no write tool), or the change asked for is what this step made: a marketer's retention
    offer, drafted (the model's next call after it only ever ended the turn, ~1 s of prompt each: session 33). A
    failed call (an unknown order, a detail the tool asks for) goes back to the model.
    """
    if not (session.one_call_after_read and results and not any(isinstance(r, ErrorResult) for r in results)):
        return False
    return any(isinstance(r, RetentionOfferDraft) for r in results) or \
        not session.may_write(state["user_text"] if state.get("action") is None else "")


@dataclass
class CallOutcome:
    """What one tool call adds to the turn."""

    messages: list[BaseMessage]  # the tool message (what the model reads next), then the reply if the turn ends
    result: Any = None  # what the person reads (the typed result, or an ErrorResult); None for a proposed write
    final: AgentEvent | None = None  # the turn's final event when the call ends it (a proposed write, a handoff)


def call_tool(session: TurnContext, spec: ToolSpec, args: dict, call_id: str, write: Callable[[AgentEvent], None],
              lang: Lang) -> CallOutcome:
    """Run one call, streaming its tool_result (and confirm or handoff) events, and say what it adds to the turn."""
    ctx = session.ctx
    had_pending = ctx.pending_action is not None
    try:
        result = spec(ctx, args)
    except (ToolError, PermissionError) as exc:
        failed = ErrorResult(spec.name, exc)
        write(AgentEvent(kind="tool_result", name=spec.name, call_id=call_id, text=failed.render(lang),
                         data={"error": str(exc), "type": type(exc).__name__}))
        return CallOutcome([ToolMessage(f"error: {exc}", tool_call_id=call_id, name=spec.name)], failed)
    text = render(result, lang)
    data = to_jsonable(result)
    with customer_view(False):  # the model's copy keeps the ids it calls with (payment methods)
        for_model = render(result, "en", limit=MODEL_TOOL_MESSAGE_CHARS)
    messages: list[BaseMessage] = [ToolMessage(for_model, tool_call_id=call_id, name=spec.name)]
    write(AgentEvent(kind="tool_result", name=spec.name, call_id=call_id, text=text, data=data))
    session.note_result(spec.name, result)
    if ctx.pending_action is not None and (not had_pending or is_write_tool(spec.name)):
        write(AgentEvent(kind="confirm", name=spec.name, text=text, data=to_jsonable(ctx.pending_action)))
        return CallOutcome([*messages, AIMessage(text)], None,
                           AgentEvent(kind="final", text=text, data={"awaiting_confirmation": True}))
    if spec.name == "transfer_to_human":
        write(AgentEvent(kind="handoff", name=spec.name, text=getattr(result, "summary", "") or text, data=data))
        return CallOutcome([*messages, AIMessage(text)], result,
                           AgentEvent(kind="final", text=text, data={"handoff": True}))
    return CallOutcome(messages, result)


def answer(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """The reply: the renderings of the turn's results. Model words that state a fact are dropped; when the model
    answered with facts but looked nothing up, it is asked once to make the call instead.
    """
    session = runtime.context
    lang = state["lang"]
    text, why = compose(state["results"], state["ai"].content, lang, session.catalog_names())
    meta: dict[str, Any] = {}
    if why:
        meta = {"model_text_dropped": why}
        session.stats["model_text_dropped"] += 1
        log.info("dropped model text (%s): %r", why, state["ai"].content[:200])
    if state.get("forced") and not state["results"]:
        text = ""  # asked to look the facts up, it still did not: words alone do not answer the question
    if not text:
        if not state.get("forced") and not state["results"]:
            return {"meta": {**meta, "forced_tool": True}, "forced": True}
        text = ASK_FIRST[lang]
    # the person reads the parts their question asked for; the model remembers the whole reply, as it read the
    # whole result (a later decision is not steered by what this question happened to ask for)
    parts = _shown_parts(state["results"], asked_parts(state["user_text"])) if state["results"] else frozenset()
    question, change = _which_order(state, session, lang)
    if change:  # the list shows the orders the change asked for can be made to
        parts |= {change}
    shown = compose(state["results"], state["ai"].content, lang, session.catalog_names(), parts)[0] if parts \
        else text
    if question:
        text, shown = f"{text}\n\n{question}", f"{shown}\n\n{question}"
    if shown == text:
        return {"messages": [AIMessage(text)], "meta": meta, "final": AgentEvent(kind="final", text=text)}
    return {"messages": [AIMessage(shown, additional_kwargs={WHOLE_REPLY: text})], "meta": meta,
            "final": AgentEvent(kind="final", text=shown)}


# The question under a customer's order list when their message asks for a change to an order it does not name
# (agent.enums.WHICH_ORDER: the turn could only list their orders): the change asked for, or any.
_WHICH_ORDER = {
    "cancel_pending_order": ("Which order would you like to cancel? Tell me its number.",
                             "请问您想取消哪个订单?请告诉我订单号。"),
    "return_delivered_order_items": ("Which order would you like to return items from? Tell me its number.",
                                     "请问您想退哪个订单中的商品?请告诉我订单号。"),
    "modify_pending_order_address": ("Which order's delivery address should change? Tell me its number.",
                                     "请问要修改哪个订单的收货地址?请告诉我订单号。"),
}
_WHICH_ANY = ("Which order do you mean? Tell me its number.", "请问是哪个订单?请告诉我订单号。")


def _which_order(state: TurnState, session: TurnContext, lang: Lang) -> tuple[str | None, str | None]:
    """The question under the list when the message asks for a change to an order it does not name: which order,
    or, when no listed order's status allows the change, that none can be changed so (never a question about orders
    that cannot be chosen). With it, the one change asked for, whose orders the list then shows; else None.
    """
    lists = [r for r in state["results"] if isinstance(r, OrderList)]
    if not lists:
        return None, None
    asked = session_enums(session, state["user_text"]).get(WHICH_ORDER)
    if not asked:
        return None, None
    en, zh = _WHICH_ORDER.get(asked[0], _WHICH_ANY) if len(asked) == 1 else _WHICH_ANY
    question = zh if lang == "zh" else en
    if len(asked) != 1 or not lists[-1].orders:
        return question, None
    if not lists[-1].can(asked[0]):
        return lists[-1].none_can(asked[0], lang), None
    return question, asked[0]


def out_of_steps(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """End the turn with the tool results so far (or a generic failure) when the model used every step."""
    results = state["results"]
    text = "\n\n".join(dict.fromkeys(render(r, state["lang"]) for r in results)) or GENERIC_FAILURE[state["lang"]]
    return {"messages": [AIMessage(text)], "meta": {"max_steps_reached": True},
            "final": AgentEvent(kind="final", text=text)}


def execute_pending(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """The customer confirmed: code, not the model, carries out the proposed write (the tool re-checks policy)."""
    session = runtime.context
    ctx = session.ctx
    lang = state["lang"]
    write = get_stream_writer()
    pending = ctx.pending_action
    if pending is None:
        text = NOTHING_PENDING[lang]
        return {"messages": [AIMessage(text)], "final": AgentEvent(kind="final", text=text)}
    call_id = _new_id()
    write(AgentEvent(kind="tool_call", name=pending.tool, arguments=pending.arguments, call_id=call_id,
                     meta={"confirmed": True}))
    try:
        result = execute_pending_action(ctx)
    except ToolError as exc:  # refused by policy on the re-check (the data changed since the proposal)
        text = ErrorResult(pending.tool, exc).render(lang)
        write(AgentEvent(kind="tool_result", name=pending.tool, call_id=call_id, text=text,
                         data={"error": str(exc), "type": type(exc).__name__}))
        return {"messages": [AIMessage(text)], "final": AgentEvent(kind="final", text=text)}
    finally:
        ctx.pending_action = None
    text = render(result, lang)
    session.note_result(pending.tool, result)
    write(AgentEvent(kind="tool_result", name=pending.tool, call_id=call_id, text=text, data=to_jsonable(result)))
    return {"messages": [AIMessage(text)], "results": [result],
            "final": AgentEvent(kind="final", text=text, data={"executed": pending.tool})}


def decline_pending(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """Cancel: the proposed write is dropped and said so; the next message is a new question."""
    dropped = discard_pending_action(runtime.context.ctx)
    text = (DECLINED if dropped is not None else NOTHING_PENDING)[state["lang"]]
    return {"messages": [AIMessage(text)], "final": AgentEvent(kind="final", text=text, data={"declined": True})}


def discard_pending(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """A new question instead of a yes: the proposed write is dropped and the message answered as usual."""
    discard_pending_action(runtime.context.ctx)
    return {}


def after_handoff(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """A person has the conversation: the bot does not answer; the message is logged for them."""
    text = WITH_A_PERSON[state["lang"]]
    return {"messages": [AIMessage(text)], "final": AgentEvent(kind="final", text=text, data={"handoff": True})}


def hand_off(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """Transfer to a human with a summary built from the conversation, whatever the model would do."""
    from tools.handoff import transfer_to_human

    session = runtime.context
    write = get_stream_writer()
    spec = session.specs.get("transfer_to_human") or tool_spec(transfer_to_human)
    args = {"summary": session.handoff_summary(state["user_text"])}
    call_id = _new_id()
    messages: list[BaseMessage] = [AIMessage("", tool_calls=[{"name": spec.name, "args": args, "id": call_id,
                                                              "type": "tool_call"}])]
    write(AgentEvent(kind="tool_call", name=spec.name, arguments=args, call_id=call_id, meta={"direct": True}))
    outcome = call_tool(session, spec, args, call_id, write, state["lang"])
    messages.extend(outcome.messages)
    final = outcome.final
    if final is None:  # the tool refused (it never does for a non-empty summary); say so rather than go quiet
        results = [] if outcome.result is None else [outcome.result]
        text = "\n\n".join(render(r, state["lang"]) for r in results) or GENERIC_FAILURE[state["lang"]]
        final = AgentEvent(kind="final", text=text)
        messages.append(AIMessage(text))
    log.info("direct handoff of conversation %s", session.conversation_id)
    return {"messages": messages, "final": final}


def record(state: TurnState, runtime: Runtime) -> dict[str, Any]:
    """Keep the turn in the session's memory and the store's log, then send the final event."""
    session = runtime.context
    final = state["final"]
    meta = dict(state["meta"], path=state["path"] + ["record"],
                latency_s=round(time.perf_counter() - state["started"], 3))
    final.meta.update(meta)
    session.remember(state["messages"], meta)
    get_stream_writer()(final)
    return {}


# -- the graph --------------------------------------------------------------------------------------------------


def _traced(
    name: str, fn: Callable[[TurnState, Runtime], dict[str, Any]]
) -> Callable[[TurnState, Runtime], dict[str, Any]]:
    """`fn`, adding its name to the state's path (so a logged turn says which way it went), rendering in the
    customer's view (tools.results.customer_view) when the session is a customer's.
    """

    def node(state: TurnState, runtime: Runtime) -> dict[str, Any]:
        # what a customer reads names payment methods as they know them, never by internal id
        with customer_view(getattr(runtime.context, "role", None) == "customer"):
            return dict(fn(state, runtime), path=[name])

    node.__name__ = name
    return node


NODES = {fn.__name__: fn for fn in (hand_off, after_handoff, execute_pending, decline_pending, discard_pending, model,
                                    validate, give_up, tools, answer, out_of_steps)}
ENDINGS = ("hand_off", "after_handoff", "execute_pending", "decline_pending", "out_of_steps", "give_up")


@functools.cache
def turn_graph():
    """The compiled turn graph (stateless: the session passed as context holds the memory), built once."""
    graph = StateGraph(TurnState, context_schema=TurnContext)
    for name, fn in NODES.items():
        graph.add_node(name, _traced(name, fn))
    graph.add_node("record", record)
    graph.add_conditional_edges(START, route_start, ["hand_off", "after_handoff", "execute_pending",
                                                     "decline_pending", "discard_pending", "model"])
    graph.add_edge("discard_pending", "model")
    graph.add_conditional_edges("model", route_model, ["answer", "out_of_steps", "validate"])
    graph.add_conditional_edges("validate", route_validate, ["tools", "give_up"])
    graph.add_conditional_edges("tools", route_tools, ["model", "answer", "record"])
    graph.add_conditional_edges("answer", route_answer, ["model", "record"])
    for name in ENDINGS:
        graph.add_edge(name, "record")
    graph.add_edge("record", END)
    return graph.compile(name="shopdesk_turn")


def recursion_limit(max_steps: int) -> int:
    """Supersteps a turn may take: up to three per model step (model, validate, tools), the forced call, the ends."""
    return 3 * (max_steps + 2) + 6


def _new_id() -> str:
    return "call_" + uuid.uuid4().hex[:12]
